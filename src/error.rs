//! The crate's one error type, and [`FormatError`], why a file is not a
//! usable cache file.
//!
//! Every failure carries the path it happened on, because "permission
//! denied" without a path is useless to someone debugging a cache directory.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Errors returned by epcache's fallible operations.
///
/// Scanning and consulting never fail: problems inside a path entry become
/// [diagnostics](crate::Distribution::diagnostics), and cache problems
/// become a miss and a scan. Errors come from operations a caller
/// explicitly asked for, such as asking an interpreter for its `sys.path`
/// or pruning and clearing the cache directory.
///
/// [`kind`](Error::kind) says what failed, [`path`](Error::path) where;
/// the underlying I/O error, if any, is the [`source`](std::error::Error::source).
/// It converts into an [`io::Error`] that keeps the I/O error's kind.
#[derive(Debug)]
pub struct Error {
    action: &'static str,
    path: PathBuf,
    cause: Cause,
}

#[derive(Debug)]
enum Cause {
    Io(io::Error),
    Refused(String),
    Python(String),
}

/// What kind of failure an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An I/O operation on the path failed; the
    /// [`io_error`](Error::io_error) says how.
    Io,
    /// The cache directory was refused: it belongs to another user, is
    /// writable by others, lies under a symlink, or is not one epcache made.
    Refused,
    /// A Python interpreter could not be run or gave an unusable answer.
    Python,
}

impl Error {
    /// An I/O error, with the action and path it belongs to.
    pub(crate) fn io(action: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        Error {
            action,
            path: path.as_ref().to_path_buf(),
            cause: Cause::Io(source),
        }
    }

    /// The cache directory at `root` is refused, for reason `why`.
    pub(crate) fn refused(action: &'static str, root: &Path, why: impl Into<String>) -> Self {
        Error {
            action,
            path: root.to_path_buf(),
            cause: Cause::Refused(why.into()),
        }
    }

    /// The interpreter `executable` failed as `message` says.
    pub(crate) fn python(executable: &Path, message: String) -> Self {
        Error {
            action: "python interpreter",
            path: executable.to_path_buf(),
            cause: Cause::Python(message),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self.cause {
            Cause::Io(_) => ErrorKind::Io,
            Cause::Refused(_) => ErrorKind::Refused,
            Cause::Python(_) => ErrorKind::Python,
        }
    }

    /// The path this error is about: the file or directory, or the
    /// interpreter that was run.
    pub fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    /// The underlying I/O error, for an [`ErrorKind::Io`].
    pub fn io_error(&self) -> Option<&io::Error> {
        match &self.cause {
            Cause::Io(err) => Some(err),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (action, path) = (self.action, self.path.display());
        match &self.cause {
            Cause::Io(err) => write!(f, "{action} {path}: {err}"),
            Cause::Refused(why) | Cause::Python(why) => write!(f, "{action} {path}: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::Io(err) => Some(err),
            _ => None,
        }
    }
}

/// An I/O error keeps its kind, a refusal becomes `PermissionDenied`, an
/// interpreter failure `Other`; the message is the whole [`Error`]'s, path
/// included.
impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match &err.cause {
            Cause::Io(source) => source.kind(),
            Cause::Refused(_) => io::ErrorKind::PermissionDenied,
            Cause::Python(_) => io::ErrorKind::Other,
        };
        io::Error::new(kind, err)
    }
}

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_io_error_with_kind_and_path() {
        let err = Error::io(
            "opening",
            "/x/y",
            io::Error::new(io::ErrorKind::NotFound, "gone"),
        );
        assert_eq!(err.kind(), ErrorKind::Io);
        assert_eq!(err.to_string(), "opening /x/y: gone");
        assert!(std::error::Error::source(&err).is_some());
        let io: io::Error = err.into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        assert_eq!(io.to_string(), "opening /x/y: gone");

        let refused = Error::refused("using cache directory", Path::new("/c"), "not yours");
        assert_eq!(refused.kind(), ErrorKind::Refused);
        assert_eq!(refused.path(), Some(Path::new("/c")));
        assert_eq!(refused.to_string(), "using cache directory /c: not yours");
        assert_eq!(
            io::Error::from(refused).kind(),
            io::ErrorKind::PermissionDenied
        );
    }
}

/// Why a file is not a usable cache file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// Shorter than its header says.
    Truncated,
    /// Longer than its header says.
    TrailingBytes,
    /// Not an epcache index file at all.
    BadMagic,
    /// Written by another format version.
    Version {
        /// The version the file says it has.
        found: u32,
        /// The one this build reads and writes.
        expected: u32,
    },
    /// The checksum of the head, or of the whole file, does not match.
    Checksum,
    /// The checksum of one section or block does not match.
    SectionChecksum(String),
    /// A section or block does not decode, or points out of range.
    Invalid(String),
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatError::Truncated => f.write_str("truncated"),
            FormatError::TrailingBytes => f.write_str("has trailing bytes"),
            FormatError::BadMagic => f.write_str("not an epcache index file"),
            FormatError::Version { found, expected } => {
                write!(f, "format version {found}, expected {expected}")
            }
            FormatError::Checksum => f.write_str("checksum mismatch"),
            FormatError::SectionChecksum(what) => write!(f, "checksum mismatch in the {what}"),
            FormatError::Invalid(why) => write!(f, "invalid: {why}"),
        }
    }
}

impl std::error::Error for FormatError {}

//! The crate's one error type.
//!
//! Every I/O failure carries the path it happened on, because "permission
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
#[derive(Debug)]
pub enum Error {
    /// An I/O operation on `path` failed.
    Io {
        /// What was being done, e.g. "reading" or "renaming".
        action: &'static str,
        /// The path the operation was on.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A Python interpreter could not be run or gave an unusable answer.
    Python {
        /// The interpreter that was asked.
        executable: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl Error {
    /// Wraps an I/O error with the action and path it belongs to.
    pub fn io(action: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// The path this error is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Io { path, .. } => path,
            Error::Python { executable, .. } => executable,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io {
                action,
                path,
                source,
            } => write!(f, "{action} {}: {source}", path.display()),
            Error::Python {
                executable,
                message,
            } => write!(f, "python interpreter {}: {message}", executable.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

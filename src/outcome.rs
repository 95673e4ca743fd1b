//! What a consult did and why, for callers, `status` and tests.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::FormatError;

/// Why a cache file or directory could not be used, in a [`Lookup`] or a
/// [`Publish`].
///
/// Equal causes are of the same variant and, for I/O, have the same
/// context, path and [`io::ErrorKind`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// An I/O operation failed.
    Io(IoCause),
    /// The file is not a sound index file.
    Format(FormatError),
    /// What was found is not usable, for the reason given (not a regular
    /// file, too large, not a directory ...).
    Refused(String),
}

/// An I/O error, with what was being done and on which path.
#[derive(Clone, Debug)]
pub struct IoCause {
    context: String,
    path: Option<PathBuf>,
    source: Arc<io::Error>,
}

impl IoCause {
    /// `source`, which happened while doing `context` (text that ends
    /// before the `: ` of the message; empty for none), on `path`.
    pub(crate) fn new(context: String, path: Option<&Path>, source: io::Error) -> IoCause {
        IoCause {
            context,
            path: path.map(Path::to_path_buf),
            source: Arc::new(source),
        }
    }

    /// The same error, said to have happened on `file`, whose name leads
    /// the message.
    pub(crate) fn in_file(&self, file: &Path) -> IoCause {
        IoCause {
            context: format!("{}: {}", file.display(), self.context),
            path: Some(file.to_path_buf()),
            source: Arc::clone(&self.source),
        }
    }

    /// The path the operation was on, when known.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The underlying I/O error.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }

    /// Its kind.
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

impl PartialEq for IoCause {
    fn eq(&self, other: &IoCause) -> bool {
        self.context == other.context && self.path == other.path && self.kind() == other.kind()
    }
}

impl Eq for IoCause {}

impl fmt::Display for IoCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.context.is_empty() {
            self.source.fmt(f)
        } else {
            write!(f, "{}: {}", self.context, self.source)
        }
    }
}

impl std::error::Error for IoCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Io(io) => io.fmt(f),
            Cause::Format(err) => err.fmt(f),
            Cause::Refused(why) => f.write_str(why),
        }
    }
}

impl Cause {
    /// An I/O cause; see [`IoCause`].
    pub(crate) fn io(context: String, path: Option<&Path>, source: io::Error) -> Cause {
        Cause::Io(IoCause::new(context, path, source))
    }
}

/// What reading the cache file gave.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lookup {
    /// The file matched the path entry's current key; nothing was scanned.
    Hit,
    /// A provisional file matched the key and its fingerprint checked out
    /// (one listing plus `entries` stats); nothing was parsed.
    HitVerified {
        /// How many metadata entries were stat-ed to verify it.
        entries: usize,
    },
    /// A provisional file matched the key, but the directory's metadata
    /// entries changed in a way the key cannot see.
    FingerprintMismatch,
    /// There is no cache file for this path entry yet.
    NoFile,
    /// The file describes an earlier (or later) state of the path entry.
    Stale,
    /// The file is damaged or not an index file; the cause says how.
    Corrupt(Cause),
    /// The file belongs to another path entry (a hash collision or a file
    /// copied into place).
    PathDiffers,
    /// The file belongs to another user and is never trusted.
    NotOwned,
    /// The cache directory or file could not be used; the cause says why.
    Unusable(Cause),
    /// The path entry does not exist, so there is nothing to cache.
    NoEntry,
    /// The cache is turned off (`EPCACHE_DISABLE`, or no cache directory).
    Disabled,
    /// The file was not read because a rebuild was asked for.
    Skipped,
}

/// What happened about writing a new cache file after a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Publish {
    /// A new file was renamed into place.
    Published,
    /// The path entry is too fresh for a normal index, so a provisional one
    /// was published (by `rebuild` only): readers verify its fingerprint
    /// until it settles.
    PublishedProvisional {
        /// How long until it settles and the next verified consult promotes it.
        settles_in: Duration,
    },
    /// A provisional file was verified after settling and republished as a
    /// normal one.
    Promoted,
    /// The path entry changed less than the settle time ago.
    TooFresh {
        /// How long until it may be published.
        remaining: Duration,
    },
    /// The path entry has a timestamp in the future.
    InFuture {
        /// How far ahead of the clock it is.
        ahead: Duration,
    },
    /// The path entry changed while it was being scanned, or its path now
    /// names another directory or file than the one that was scanned.
    ChangedDuringScan,
    /// Some read of the scan failed in a way that may not last (permission
    /// denied, too many open files, an I/O error): the answer says what
    /// was missed, and caching it would keep it missed.
    Incomplete,
    /// The index is too large for one cache file: a [`Cause::Refused`]
    /// that says how large.
    TooLarge(Cause),
    /// The cache directory belongs to another user, is writable by others
    /// or is a symlink: a [`Cause::Refused`] that says which.
    ForeignOwned(Cause),
    /// Creating or writing the file failed.
    Unwritable(Cause),
    /// The cache is turned off.
    Disabled,
}

/// The full story of one consult or rebuild.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// What reading the cache file gave.
    pub lookup: Lookup,
    /// What happened about writing, when a scan took place and there was
    /// something to write.
    pub publish: Option<Publish>,
}

impl Outcome {
    /// An outcome of `lookup`, then `publish` when there was a write to
    /// decide on.
    pub fn new(lookup: Lookup, publish: Option<Publish>) -> Outcome {
        Outcome { lookup, publish }
    }

    /// Whether the answer came from the cache file without a scan.
    pub fn is_hit(&self) -> bool {
        self.lookup.is_hit()
    }
}

impl Lookup {
    /// Whether the file answered without a scan ([`Hit`](Lookup::Hit) or
    /// [`HitVerified`](Lookup::HitVerified)).
    pub fn is_hit(&self) -> bool {
        matches!(self, Lookup::Hit | Lookup::HitVerified { .. })
    }

    /// A stable one-word code, used in JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            Lookup::Hit => "hit",
            Lookup::HitVerified { .. } => "hit-verified",
            Lookup::FingerprintMismatch => "fingerprint-mismatch",
            Lookup::NoFile => "no-file",
            Lookup::Stale => "stale",
            Lookup::Corrupt(_) => "corrupt",
            Lookup::PathDiffers => "path-differs",
            Lookup::NotOwned => "not-owned",
            Lookup::Unusable(_) => "unusable",
            Lookup::NoEntry => "no-entry",
            Lookup::Disabled => "disabled",
            Lookup::Skipped => "skipped",
        }
    }
}

impl Publish {
    /// A stable one-word code, used in JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            Publish::Published => "published",
            Publish::PublishedProvisional { .. } => "published-provisional",
            Publish::Promoted => "promoted",
            Publish::TooFresh { .. } => "too-fresh",
            Publish::InFuture { .. } => "in-future",
            Publish::ChangedDuringScan => "changed-during-scan",
            Publish::Incomplete => "incomplete",
            Publish::TooLarge(_) => "too-large",
            Publish::ForeignOwned(_) => "foreign-owned",
            Publish::Unwritable(_) => "unwritable",
            Publish::Disabled => "disabled",
        }
    }
}

impl fmt::Display for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lookup::Hit => f.write_str("hit: the cache file matches the path entry"),
            Lookup::HitVerified { entries } => write!(
                f,
                "hit: provisional file verified by listing the directory and {entries} stats"
            ),
            Lookup::FingerprintMismatch => f.write_str(
                "miss: the provisional file's fingerprint no longer matches the directory",
            ),
            Lookup::NoFile => f.write_str("miss: no cache file"),
            Lookup::Stale => f.write_str("miss: the path entry changed since the file was written"),
            Lookup::Corrupt(why) => write!(f, "miss: the cache file is corrupt ({why})"),
            Lookup::PathDiffers => f.write_str("miss: the cache file describes another path entry"),
            Lookup::NotOwned => f.write_str("miss: the cache file belongs to another user"),
            Lookup::Unusable(why) => write!(f, "miss: the cache cannot be used ({why})"),
            Lookup::NoEntry => f.write_str("the path entry does not exist"),
            Lookup::Disabled => f.write_str("the cache is disabled"),
            Lookup::Skipped => f.write_str("not read: rebuild requested"),
        }
    }
}

impl fmt::Display for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Publish::Published => f.write_str("published"),
            Publish::PublishedProvisional { settles_in } => write!(
                f,
                "published provisionally: readers verify it until it settles in {:.1} s",
                settles_in.as_secs_f64()
            ),
            Publish::Promoted => {
                f.write_str("promoted: the verified provisional file was republished as settled")
            }
            Publish::TooFresh { remaining } => write!(
                f,
                "not published: the path entry changed too recently (settles in {:.1} s)",
                remaining.as_secs_f64()
            ),
            Publish::InFuture { ahead } => write!(
                f,
                "not published: the path entry has a timestamp {:.1} s in the future",
                ahead.as_secs_f64()
            ),
            Publish::ChangedDuringScan => {
                f.write_str("not published: the path entry changed during the scan")
            }
            Publish::Incomplete => f.write_str(
                "not published: the scan could not read everything (see the diagnostics)",
            ),
            Publish::TooLarge(why) => write!(f, "not published: {why}"),
            Publish::ForeignOwned(why) => write!(f, "not published: {why}"),
            Publish::Unwritable(why) => write!(f, "not published: {why}"),
            Publish::Disabled => f.write_str("not published: the cache is disabled"),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.lookup.fmt(f)?;
        if let Some(publish) = &self.publish {
            write!(f, "; {publish}")?;
        }
        Ok(())
    }
}

//! The key of a path entry: what one `stat` says about its contents, and
//! what an index stores to say which state of the entry it describes.

use std::io;
use std::path::Path;

use crate::platform::{self, FileInfo};

/// What one `stat` of a path entry says about its contents.
///
/// The device number is deliberately not part of it: every NFS client (and
/// every FUSE mount) numbers its mounts itself, so one directory seen from
/// several machines sharing a home directory has one inode, mtime and ctime
/// but a different `st_dev` on each. Without the device they agree on the
/// key and share one index file (see `docs/design.md`, "One home shared by
/// many machines"). Another directory is still told apart by its inode and
/// by a ctime that no one can set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Key {
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Status change time, nanoseconds since the Unix epoch (Unix only;
    /// equal to `mtime_ns` elsewhere).
    pub ctime_ns: i64,
    /// Inode number (Unix only; 0 elsewhere).
    pub inode: u64,
    /// Size in bytes as reported by `stat`.
    pub size: u64,
}

impl Key {
    /// Stats `path` (following symlinks, as `os.listdir` does).
    pub fn observe(path: &Path) -> io::Result<Key> {
        platform::stat(path).map(|info| Key::from_info(&info))
    }

    /// The key a `stat` gives.
    pub(crate) fn from_info(info: &FileInfo) -> Key {
        Key {
            mtime_ns: info.mtime_ns,
            ctime_ns: info.ctime_ns,
            inode: info.inode,
            size: info.size,
        }
    }

    /// The later of mtime and ctime: the last moment anything about the
    /// entry changed that a reader could notice.
    pub fn newest_change_ns(&self) -> i64 {
        self.mtime_ns.max(self.ctime_ns)
    }
}

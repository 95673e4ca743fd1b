//! The file-system calls epcache makes, behind one small, safe interface.
//!
//! On Unix everything goes through `rustix`: files are opened relative to a
//! directory descriptor (`openat`), never block (`O_NONBLOCK`, so a FIFO
//! planted where a file should be cannot hang a reader), and are typed
//! with `fstat` on the descriptor that was opened, so what was checked is
//! what is read. The cache directory is worked on through descriptors
//! opened with `O_NOFOLLOW`, so a symlink at or below the cache root is
//! never followed.
//!
//! Only Linux is built and tested in CI. The other platforms get the
//! simplest correct behaviour `std` allows, weaker where noted: on Windows
//! there is no descriptor-relative access (each call joins paths), no
//! owner or mode checks, and no ctime, inode or device in the key.
//!
//! * `unix` (and `portable`, its path-based stand-in elsewhere): opening,
//!   stat-ing and listing through descriptors, positioned reads.
//! * [`read_buf`]: the aligned buffer files are read into.
//! * [`pipeline`]: working on a directory listing while it is listed.
//!
//! What the other layers decide from a [`FileInfo`] (whom to trust, when a
//! key is fresh) lives with them; this layer only reports what it saw.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) mod pipeline;
#[cfg(not(unix))]
mod portable;
pub(crate) mod read_buf;
#[cfg(unix)]
mod unix;

#[cfg(not(unix))]
use portable as imp;
#[cfg(unix)]
use unix as imp;

/// What one `stat` says about a file: everything epcache decides on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FileInfo {
    pub kind: FileKind,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Status change time (Unix); equal to `mtime_ns` elsewhere.
    pub ctime_ns: i64,
    /// Inode number (Unix; 0 elsewhere).
    pub inode: u64,
    /// Device number (Unix; 0 elsewhere).
    pub device: u64,
    pub size: u64,
    /// Owner (Unix; 0 elsewhere, where ownership is not checked).
    pub uid: u32,
    /// Permission bits (Unix; 0 elsewhere).
    pub mode: u32,
}

/// The type of a file as `stat` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum FileKind {
    Dir,
    #[default]
    Regular,
    Symlink,
    /// A FIFO, socket or device: never read, because a read may block or
    /// never end.
    Other,
}

/// What a file system is, as far as reading it goes (see
/// [`DirHandle::file_system`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileSystem {
    /// Local and served from the page cache: a short read of a regular
    /// file means its end.
    Local,
    /// Every operation is a round trip (a network file system, FUSE): its
    /// latency, not the CPU, bounds a scan, so many reads should be in
    /// flight at once.
    Remote,
    /// Anything else, or unknown.
    Other,
}

impl FileSystem {
    /// Whether a read of a regular file that returns fewer bytes than
    /// asked for has reached the end of the file (see
    /// [`read_buf::ShortRead`]). FUSE and network file systems may
    /// return less before the end; elsewhere the answer is the cautious
    /// `false`.
    pub(crate) fn short_reads_end_files(self) -> bool {
        self == FileSystem::Local
    }
}

impl FileInfo {
    pub(crate) fn is_dir(&self) -> bool {
        self.kind == FileKind::Dir
    }

    pub(crate) fn is_regular(&self) -> bool {
        self.kind == FileKind::Regular
    }
}

/// A short name for a file type, for diagnostics.
pub(crate) fn kind_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Dir => "a directory",
        FileKind::Regular => "a regular file",
        FileKind::Symlink => "a symbolic link",
        FileKind::Other => "a FIFO, socket or device",
    }
}

/// Whether an I/O error means "it is gone": `ENOENT`, or `ESTALE` from an
/// NFS server that already removed it.
pub(crate) fn is_gone(err: &io::Error) -> bool {
    if err.kind() == io::ErrorKind::NotFound {
        return true;
    }
    #[cfg(unix)]
    {
        err.raw_os_error() == Some(rustix::io::Errno::STALE.raw_os_error())
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// Whether an I/O error is `ELOOP`: a symlink that leads back to itself,
/// which is a fact about the tree, not a passing failure.
pub(crate) fn is_symlink_loop(err: &io::Error) -> bool {
    #[cfg(unix)]
    {
        err.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
    }
    #[cfg(not(unix))]
    {
        let _ = err;
        false
    }
}

/// Turns bytes printed by `os.fsencode` back into an OS string.
///
/// On Unix this is exact. On Windows Python's file system encoding is
/// UTF-8, so the bytes are decoded as UTF-8 (lossily, which only affects
/// unpaired surrogates that no real path contains).
pub(crate) fn os_string_from_bytes(bytes: Vec<u8>) -> OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        OsString::from_vec(bytes)
    }
    #[cfg(not(unix))]
    {
        OsString::from(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// The bytes a path is identified by: its file name for the cache, and
/// what the cache file header records.
pub(crate) fn path_bytes(path: &Path) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::borrow::Cow::Borrowed(path.as_os_str().as_bytes())
    }
    #[cfg(not(unix))]
    {
        match path.to_string_lossy() {
            std::borrow::Cow::Borrowed(s) => std::borrow::Cow::Borrowed(s.as_bytes()),
            std::borrow::Cow::Owned(s) => std::borrow::Cow::Owned(s.into_bytes()),
        }
    }
}

/// The inverse of [`path_bytes`].
pub(crate) fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    PathBuf::from(os_string_from_bytes(bytes.to_vec()))
}

pub(crate) use imp::{
    current_uid, fstat, keep_open, lstat, open_nofollow, open_path_entry, read_exact_at, stat,
    DirHandle,
};

/// Nanoseconds since the Unix epoch, negative before it.
pub(crate) fn system_time_ns(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// The clock, in nanoseconds since the Unix epoch.
pub(crate) fn now_ns() -> i64 {
    system_time_ns(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    /// The listing names what `std::fs::read_dir` names, with the types
    /// `d_type` gives, in a directory big enough to need several calls.
    #[test]
    fn lists_what_read_dir_lists() {
        let dir = tempfile::tempdir().unwrap();
        let long = "n".repeat(200);
        for i in 0..400 {
            std::fs::write(dir.path().join(format!("f{i}-{long}")), b"").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.dist-info")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("sub.dist-info", dir.path().join("link")).unwrap();

        let mut listed = Vec::new();
        DirHandle::open(dir.path())
            .unwrap()
            .for_each_entry(|name, is_dir| listed.push((name.to_owned(), is_dir)))
            .unwrap();
        let mut expected: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let kind = entry.file_type().unwrap();
                let is_dir = (!kind.is_symlink()).then(|| kind.is_dir());
                (entry.file_name(), is_dir)
            })
            .collect();
        listed.sort();
        expected.sort();
        assert_eq!(listed.len(), 400 + 1 + usize::from(cfg!(unix)));
        assert_eq!(listed, expected);
    }

    #[cfg(unix)]
    #[test]
    fn fifos_open_without_blocking_and_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("METADATA");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let handle = DirHandle::open(dir.path()).unwrap();
        let (_, info) = handle.open_file(&["METADATA"], &mut Vec::new()).unwrap();
        assert_eq!(info.kind, FileKind::Other);
        let (_, info) = open_path_entry(&fifo).unwrap();
        assert_eq!(info.kind, FileKind::Other);
    }

    #[cfg(unix)]
    #[test]
    fn nofollow_calls_refuse_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink("file", dir.path().join("flink")).unwrap();
        assert!(DirHandle::open_nofollow(&dir.path().join("link")).is_err());
        let handle = DirHandle::open_nofollow(dir.path()).unwrap();
        assert!(handle.open_subdir(OsStr::new("link")).is_err());
        assert!(handle.open_subdir(OsStr::new("real")).is_ok());
        assert!(handle.open_file_nofollow(OsStr::new("flink")).is_err());
        assert!(handle.open_file_nofollow(OsStr::new("file")).is_ok());
        assert!(handle.create_new_file(OsStr::new("flink")).is_err());
        assert_eq!(
            handle.lstat_child(OsStr::new("link")).unwrap().kind,
            FileKind::Symlink
        );
        assert_eq!(
            handle.stat_child(OsStr::new("link")).unwrap().kind,
            FileKind::Dir
        );
    }

    #[test]
    fn system_time_conversion_handles_pre_epoch() {
        use std::time::Duration;
        const SEC: i64 = 1_000_000_000;
        assert_eq!(system_time_ns(UNIX_EPOCH + Duration::from_secs(2)), 2 * SEC);
        assert_eq!(
            system_time_ns(UNIX_EPOCH - Duration::from_secs(2)),
            -2 * SEC
        );
    }
}

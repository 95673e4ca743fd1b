//! The few things that differ between Unix and Windows, in one place.
//!
//! Only Linux is built and tested in CI. The Windows side is kept to the
//! simplest correct behaviour and says so where it is weaker.

use std::ffi::OsString;

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

use std::fs::Metadata;
use std::path::{Path, PathBuf};

use crate::freshness::Key;

/// The freshness key of a directory or zip file from its metadata.
///
/// On Unix the key includes ctime, inode and device, which change when a
/// tree is restored with preserved mtimes. On Windows only the modification
/// time and size are available through `std`, so a restore that preserves
/// mtimes is not detected there.
pub(crate) fn key_from_metadata(meta: &Metadata) -> Key {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Key {
            mtime_ns: meta
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.mtime_nsec()),
            ctime_ns: meta
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.ctime_nsec()),
            inode: meta.ino(),
            device: meta.dev(),
            size: meta.size(),
        }
    }
    #[cfg(not(unix))]
    {
        let mtime_ns = meta
            .modified()
            .ok()
            .map_or(0, |t| crate::freshness::system_time_ns(t));
        Key {
            mtime_ns,
            ctime_ns: mtime_ns,
            inode: 0,
            device: 0,
            size: meta.len(),
        }
    }
}

/// Whether a file or directory belongs to the effective user. Always true
/// on Windows, where ownership is not checked.
pub(crate) fn owned_by_current_user(meta: &Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        meta.uid() == unsafe { libc::geteuid() }
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        true
    }
}

/// Whether users other than the owner may create or remove entries in a
/// directory. Always false on Windows, whose ACLs `std` cannot read.
pub(crate) fn writable_by_others(meta: &Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o022 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

/// Creates one directory that only its owner can enter.
pub(crate) fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
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

/// Replaces `to` with `from`.
///
/// On Windows a rename onto a file that a reader holds open can fail with
/// `PermissionDenied` for a moment; `std::fs::rename` (MoveFileEx with
/// REPLACE_EXISTING) succeeds once the reader closes it, so retry briefly.
/// `tempfile`'s `persist` is not used because it cannot replace an open
/// file there.
pub(crate) fn replace_file(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut attempts = 0;
    loop {
        match std::fs::rename(from, to) {
            Err(err)
                if cfg!(windows)
                    && err.kind() == std::io::ErrorKind::PermissionDenied
                    && attempts < 20 =>
            {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Whether an I/O error means "it is gone": `ENOENT`, or `ESTALE` from an
/// NFS server that already removed it.
pub(crate) fn is_gone(err: &std::io::Error) -> bool {
    if err.kind() == std::io::ErrorKind::NotFound {
        return true;
    }
    #[cfg(unix)]
    {
        err.raw_os_error() == Some(libc::ESTALE)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// Whether a file or directory belongs to root (uid 0). Always false on
/// Windows.
pub(crate) fn owned_by_root(meta: &Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.uid() == 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

/// Creates (or truncates) a file readable only by its owner and writes
/// `bytes` to it.
pub(crate) fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

/// Opens the file `parts` names inside `dir` (`["x.dist-info",
/// "METADATA"]`) for reading. `scratch` is reused to build the name, so
/// opening allocates nothing.
///
/// On Unix this is `openat` on the directory's descriptor: the kernel
/// resolves only the last components instead of the whole path, which is a
/// measurable part of a scan that opens two files per distribution. On
/// Windows it opens the joined path.
pub(crate) fn open_in(
    dir: &DirHandle,
    parts: &[&str],
    scratch: &mut Vec<u8>,
) -> std::io::Result<std::fs::File> {
    #[cfg(unix)]
    {
        use std::os::fd::{AsRawFd, FromRawFd};
        scratch.clear();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                scratch.push(b'/');
            }
            scratch.extend_from_slice(part.as_bytes());
        }
        scratch.push(0);
        let name = std::ffi::CStr::from_bytes_with_nul(scratch).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "file name holds a NUL byte",
            )
        })?;
        // SAFETY: `name` is a valid NUL-terminated string and the descriptor
        // belongs to `dir`, which outlives the call.
        let fd = unsafe {
            libc::openat(
                dir.file.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by openat and is owned by no one else.
        Ok(unsafe { std::fs::File::from_raw_fd(fd) })
    }
    #[cfg(not(unix))]
    {
        let _ = scratch;
        std::fs::File::open(
            parts
                .iter()
                .fold(dir.path.clone(), |path, part| path.join(part)),
        )
    }
}

/// A directory that files are opened relative to (see [`open_in`]).
pub(crate) struct DirHandle {
    #[cfg(unix)]
    file: std::fs::File,
    #[cfg(not(unix))]
    path: PathBuf,
}

impl DirHandle {
    /// Opens a directory for [`open_in`].
    pub(crate) fn open(path: &Path) -> std::io::Result<DirHandle> {
        #[cfg(unix)]
        {
            Ok(DirHandle {
                file: std::fs::File::open(path)?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(DirHandle {
                path: path.to_path_buf(),
            })
        }
    }

    /// Whether a read of a regular file opened through this handle that
    /// returns fewer bytes than asked for has reached the end of the file
    /// (see [`crate::read_buf::ShortRead`]).
    ///
    /// On Linux that is known for the local file systems whose reads are
    /// served from the page cache and stop only at the file's size, at an
    /// error, or on a fatal signal: ext2/3/4, XFS, Btrfs, F2FS, tmpfs, and
    /// overlayfs (which passes reads to the file system beneath it, in
    /// practice one of these). FUSE and network file systems may return
    /// less before the end, and everywhere else, including all other
    /// platforms, the answer is the cautious `false`.
    pub(crate) fn short_reads_end_files(&self) -> bool {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::os::fd::AsRawFd;
            let mut stats = std::mem::MaybeUninit::<libc::statfs>::uninit();
            // SAFETY: the descriptor belongs to `self`, and `stats` is only
            // read after fstatfs reports that it filled it in.
            let stats = unsafe {
                if libc::fstatfs(self.file.as_raw_fd(), stats.as_mut_ptr()) != 0 {
                    return false;
                }
                stats.assume_init()
            };
            [
                libc::EXT4_SUPER_MAGIC,
                libc::XFS_SUPER_MAGIC,
                libc::BTRFS_SUPER_MAGIC,
                libc::F2FS_SUPER_MAGIC,
                libc::TMPFS_MAGIC,
                libc::OVERLAYFS_SUPER_MAGIC,
            ]
            .contains(&stats.f_type)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            false
        }
    }
}

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

/// Calls `f` with `name` NUL-terminated, in a stack buffer when it fits
/// (every name a directory listing gives does), so that a system call on
/// one child allocates nothing.
#[cfg(unix)]
fn with_c_name<R>(
    name: &[u8],
    f: impl FnOnce(&std::ffi::CStr) -> std::io::Result<R>,
) -> std::io::Result<R> {
    const ON_STACK: usize = 384;
    let nul_inside = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "file name holds a NUL byte",
        )
    };
    if name.len() >= ON_STACK {
        return f(&std::ffi::CString::new(name).map_err(|_| nul_inside())?);
    }
    let mut buf = [0u8; ON_STACK];
    buf[..name.len()].copy_from_slice(name);
    f(std::ffi::CStr::from_bytes_with_nul(&buf[..=name.len()]).map_err(|_| nul_inside())?)
}

/// A directory that files are opened relative to (see [`open_in`]).
pub(crate) struct DirHandle {
    #[cfg(unix)]
    file: std::fs::File,
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    path: PathBuf,
}

/// The `(name, d_type)` of each `linux_dirent64` record in what one
/// `getdents64` call returned. A record is `d_ino: u64, d_off: i64,
/// d_reclen: u16, d_type: u8`, then the NUL-terminated name, padded to
/// `d_reclen` bytes.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn dirents(mut records: &[u8]) -> impl Iterator<Item = (&[u8], u8)> {
    const NAME_AT: usize = 19;
    std::iter::from_fn(move || {
        let reclen = usize::from(u16::from_ne_bytes([*records.get(16)?, *records.get(17)?]));
        let record = records.get(..reclen).filter(|r| r.len() > NAME_AT)?;
        records = &records[reclen..];
        let name = &record[NAME_AT..];
        let len = memchr::memchr(0, name).unwrap_or(name.len());
        Some((&name[..len], record[18]))
    })
}

impl DirHandle {
    /// Opens a directory for [`open_in`].
    pub(crate) fn open(path: &Path) -> std::io::Result<DirHandle> {
        Ok(DirHandle {
            #[cfg(unix)]
            file: std::fs::File::open(path)?,
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            path: path.to_path_buf(),
        })
    }

    /// Calls `each(name, is_dir)` for every entry of the directory but `.`
    /// and `..`, in directory order. `is_dir` is `None` when the listing
    /// does not say (a symlink, or a file system without `d_type`), so the
    /// caller must stat. Call it once per handle.
    ///
    /// On Linux this is `getdents64` on the handle's own descriptor into
    /// one buffer: no second open of the directory and no allocation per
    /// entry, which `std::fs::read_dir` makes three of (its entry, the name
    /// it hands out, and the caller's copy). Elsewhere it is `read_dir`.
    pub(crate) fn for_each_entry(
        &self,
        each: impl FnMut(&std::ffi::OsStr, Option<bool>),
    ) -> std::io::Result<()> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            self.getdents(each)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let mut each = each;
            for entry in std::fs::read_dir(&self.path)? {
                let entry = entry?;
                let is_dir = match entry.file_type() {
                    Ok(kind) if !kind.is_symlink() => Some(kind.is_dir()),
                    _ => None,
                };
                each(&entry.file_name(), is_dir);
            }
            Ok(())
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn getdents(
        &self,
        mut each: impl FnMut(&std::ffi::OsStr, Option<bool>),
    ) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        use std::os::unix::ffi::OsStrExt;
        // About a hundred entries per call, where glibc's readdir asks for
        // 32 KiB. A call costs in proportion to the entries it returns
        // (ext4 hashes each name of an indexed directory), and the caller
        // hands work to other threads between calls: one 32 KiB call kept
        // them waiting for 0.3 ms, while a few more calls cost microseconds.
        let mut buf = vec![0u8; 4 * 1024];
        loop {
            // SAFETY: the descriptor belongs to `self` and the kernel writes
            // at most `buf.len()` bytes into `buf`.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    self.file.as_raw_fd(),
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            };
            let filled = match usize::try_from(n) {
                Ok(0) => return Ok(()),
                Ok(filled) => filled,
                Err(_) => {
                    let err = std::io::Error::last_os_error();
                    if err.kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(err);
                }
            };
            for (name, d_type) in dirents(&buf[..filled]) {
                if name != b"." && name != b".." {
                    let is_dir = match d_type {
                        libc::DT_DIR => Some(true),
                        libc::DT_LNK | libc::DT_UNKNOWN => None,
                        _ => Some(false),
                    };
                    each(std::ffi::OsStr::from_bytes(name), is_dir);
                }
            }
        }
    }

    /// The freshness key of the child `name`, following a symlink as
    /// opening it would.
    ///
    /// On Unix this is `fstatat` on the handle's descriptor, which resolves
    /// one name instead of a whole path. Elsewhere it stats the joined
    /// path.
    pub(crate) fn key_of(&self, name: &std::ffi::OsStr) -> std::io::Result<Key> {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            use std::os::unix::ffi::OsStrExt;
            let stat = with_c_name(name.as_bytes(), |name| {
                let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
                // SAFETY: `name` is NUL-terminated, the descriptor belongs
                // to `self`, and `stat` is only read after fstatat filled it.
                unsafe {
                    if libc::fstatat(self.file.as_raw_fd(), name.as_ptr(), stat.as_mut_ptr(), 0)
                        != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(stat.assume_init())
                }
            })?;
            let ns =
                |secs: i64, nanos: i64| secs.saturating_mul(1_000_000_000).saturating_add(nanos);
            #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
            Ok(Key {
                mtime_ns: ns(stat.st_mtime as i64, stat.st_mtime_nsec as i64),
                ctime_ns: ns(stat.st_ctime as i64, stat.st_ctime_nsec as i64),
                inode: stat.st_ino as u64,
                device: stat.st_dev as u64,
                size: stat.st_size as u64,
            })
        }
        #[cfg(not(unix))]
        {
            std::fs::metadata(self.path.join(name)).map(|meta| key_from_metadata(&meta))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

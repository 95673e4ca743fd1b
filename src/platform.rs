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

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

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
    /// [`crate::read_buf::ShortRead`]). FUSE and network file systems may
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

    /// Whether it belongs to the effective user. Always true on Windows.
    pub(crate) fn owned_by_current_user(&self) -> bool {
        self.uid == current_uid()
    }

    /// Whether it belongs to root. Always false on Windows.
    pub(crate) fn owned_by_root(&self) -> bool {
        cfg!(unix) && self.uid == 0
    }

    /// Whether users other than the owner may write it (for a directory:
    /// create or remove entries in it). Always false on Windows.
    pub(crate) fn writable_by_others(&self) -> bool {
        self.mode & 0o022 != 0
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

#[cfg(unix)]
mod imp {
    use std::ffi::OsStr;
    use std::fs::File;
    use std::io;
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    use rustix::fs::{AtFlags, FileType, Mode, OFlags, CWD};

    use super::{FileInfo, FileKind, FileSystem};

    /// Every descriptor epcache opens: closed on exec, never a controlling
    /// terminal, and never blocking on open or read (a FIFO opens at once
    /// and is then refused by its type).
    fn base_flags() -> OFlags {
        OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK
    }

    pub(crate) fn current_uid() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    fn info(stat: &rustix::fs::Stat) -> FileInfo {
        let ns = |secs: i64, nanos: i64| secs.saturating_mul(1_000_000_000).saturating_add(nanos);
        let kind = match FileType::from_raw_mode(stat.st_mode as _) {
            FileType::Directory => FileKind::Dir,
            FileType::RegularFile => FileKind::Regular,
            FileType::Symlink => FileKind::Symlink,
            _ => FileKind::Other,
        };
        // The field types differ between architectures.
        #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
        FileInfo {
            kind,
            mtime_ns: ns(stat.st_mtime as i64, stat.st_mtime_nsec as i64),
            ctime_ns: ns(stat.st_ctime as i64, stat.st_ctime_nsec as i64),
            inode: stat.st_ino as u64,
            device: stat.st_dev as u64,
            size: u64::try_from(stat.st_size).unwrap_or(0),
            uid: stat.st_uid as u32,
            mode: stat.st_mode as u32 & 0o7777,
        }
    }

    /// `stat`, following symlinks.
    pub(crate) fn stat(path: &Path) -> io::Result<FileInfo> {
        Ok(info(&rustix::fs::statat(CWD, path, AtFlags::empty())?))
    }

    /// `lstat`: a symlink is described, not followed.
    pub(crate) fn lstat(path: &Path) -> io::Result<FileInfo> {
        Ok(info(&rustix::fs::statat(
            CWD,
            path,
            AtFlags::SYMLINK_NOFOLLOW,
        )?))
    }

    /// `fstat` of an open file.
    pub(crate) fn fstat(file: &impl AsFd) -> io::Result<FileInfo> {
        Ok(info(&rustix::fs::fstat(file)?))
    }

    /// Opens a `sys.path` entry for reading, following symlinks as
    /// `os.listdir` does, and says what it is. A directory comes back as a
    /// [`DirHandle`] to list and read relative to; anything else as a file.
    pub(crate) fn open_path_entry(path: &Path) -> io::Result<(File, FileInfo)> {
        let fd = rustix::fs::openat(CWD, path, OFlags::RDONLY | base_flags(), Mode::empty())?;
        let info = fstat(&fd)?;
        Ok((File::from(fd), info))
    }

    /// Opens a file for reading without following a symlink in its last
    /// component and without blocking, and says what it is.
    pub(crate) fn open_nofollow(path: &Path) -> io::Result<(File, FileInfo)> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | base_flags();
        let fd = rustix::fs::openat(CWD, path, flags, Mode::empty())?;
        let info = fstat(&fd)?;
        Ok((File::from(fd), info))
    }

    /// The lowest descriptor number a file kept open for long gets.
    const KEPT_OPEN_MIN: i32 = 256;

    /// A file that stays open for as long as an index lives (the index
    /// file it reads parts of), moved to a descriptor numbered 256 or more
    /// when the limit allows. A program numbers its own descriptors from
    /// the lowest free one; one that prints or relies on those numbers
    /// (pytest's capture does) sees the same numbers as without epcache.
    pub(crate) fn keep_open(file: File) -> File {
        match rustix::io::fcntl_dupfd_cloexec(&file, KEPT_OPEN_MIN) {
            Ok(moved) => File::from(moved),
            Err(_) => file,
        }
    }

    /// Appends exactly `len` bytes of `file`, from `offset` on, to `buf`,
    /// with positioned reads (`pread`), which leave the file offset alone
    /// and so may run on one descriptor from several threads. The bytes
    /// land in `buf`'s spare capacity, which is not zeroed first. A file
    /// that ends sooner is an `UnexpectedEof` error, and `buf` is as it was.
    pub(crate) fn read_exact_at(
        file: &File,
        buf: &mut Vec<u8>,
        offset: u64,
        len: usize,
    ) -> io::Result<()> {
        let start = buf.len();
        let target = start + len;
        buf.reserve_exact(len);
        while buf.len() < target {
            let at = offset + (buf.len() - start) as u64;
            match rustix::io::pread(file, rustix::buffer::spare_capacity(buf), at) {
                Ok(0) => {
                    buf.truncate(start);
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(err) => {
                    buf.truncate(start);
                    return Err(err.into());
                }
            }
        }
        // The spare capacity may have been larger than asked for.
        buf.truncate(target);
        Ok(())
    }

    /// A directory that files are opened, listed and stat-ed relative to,
    /// through its descriptor: a rename or symlink swap of its path after
    /// it was opened changes nothing that is read through it.
    #[derive(Debug)]
    pub(crate) struct DirHandle {
        fd: OwnedFd,
    }

    impl DirHandle {
        /// A directory already opened (by [`open_path_entry`]).
        pub(crate) fn from_file(file: File) -> DirHandle {
            DirHandle {
                fd: OwnedFd::from(file),
            }
        }

        /// Opens a directory, following symlinks.
        #[cfg(test)]
        pub(crate) fn open(path: &Path) -> io::Result<DirHandle> {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | base_flags();
            Ok(DirHandle {
                fd: rustix::fs::openat(CWD, path, flags, Mode::empty())?,
            })
        }

        /// Opens a directory whose last component must not be a symlink.
        pub(crate) fn open_nofollow(path: &Path) -> io::Result<DirHandle> {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | base_flags();
            Ok(DirHandle {
                fd: rustix::fs::openat(CWD, path, flags, Mode::empty())?,
            })
        }

        /// Opens the subdirectory `name`, which must not be a symlink.
        pub(crate) fn open_subdir(&self, name: &OsStr) -> io::Result<DirHandle> {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | base_flags();
            Ok(DirHandle {
                fd: rustix::fs::openat(&self.fd, name, flags, Mode::empty())?,
            })
        }

        /// `fstat` of the directory itself.
        pub(crate) fn info(&self) -> io::Result<FileInfo> {
            fstat(&self.fd)
        }

        /// Opens the file `parts` names inside the directory
        /// (`["x.dist-info", "METADATA"]`) for reading, following symlinks,
        /// and says what it is. `scratch` is reused to build the name, so
        /// opening allocates nothing.
        pub(crate) fn open_file(
            &self,
            parts: &[&str],
            scratch: &mut Vec<u8>,
        ) -> io::Result<(File, FileInfo)> {
            scratch.clear();
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    scratch.push(b'/');
                }
                scratch.extend_from_slice(part.as_bytes());
            }
            let fd = rustix::fs::openat(
                &self.fd,
                &scratch[..],
                OFlags::RDONLY | base_flags(),
                Mode::empty(),
            )?;
            let info = fstat(&fd)?;
            Ok((File::from(fd), info))
        }

        /// Opens the file `name` for reading without following a symlink.
        pub(crate) fn open_file_nofollow(&self, name: &OsStr) -> io::Result<(File, FileInfo)> {
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | base_flags();
            let fd = rustix::fs::openat(&self.fd, name, flags, Mode::empty())?;
            let info = fstat(&fd)?;
            Ok((File::from(fd), info))
        }

        /// Creates the file `name`, which must not exist (not even as a
        /// dangling symlink), readable and writable by its owner only.
        pub(crate) fn create_new_file(&self, name: &OsStr) -> io::Result<File> {
            let flags = OFlags::WRONLY
                | OFlags::CREATE
                | OFlags::EXCL
                | OFlags::NOFOLLOW
                | OFlags::CLOEXEC
                | OFlags::NOCTTY;
            let fd = rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o600))?;
            Ok(File::from(fd))
        }

        /// Creates the subdirectory `name`, private to its owner.
        pub(crate) fn create_subdir(&self, name: &OsStr) -> io::Result<()> {
            Ok(rustix::fs::mkdirat(
                &self.fd,
                name,
                Mode::from_raw_mode(0o700),
            )?)
        }

        /// Renames `from` to `to`, both in this directory. A symlink at
        /// `to` is replaced, never followed.
        pub(crate) fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
            Ok(rustix::fs::renameat(&self.fd, from, &self.fd, to)?)
        }

        /// Gives the file `existing` the second name `new`, both in this
        /// directory; fails if `new` exists (even as a symlink).
        pub(crate) fn link(&self, existing: &OsStr, new: &OsStr) -> io::Result<()> {
            Ok(rustix::fs::linkat(
                &self.fd,
                existing,
                &self.fd,
                new,
                AtFlags::empty(),
            )?)
        }

        /// Removes the file (or symlink) `name`.
        pub(crate) fn remove_file(&self, name: &OsStr) -> io::Result<()> {
            Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())?)
        }

        /// Removes the empty subdirectory `name`.
        pub(crate) fn remove_dir(&self, name: &OsStr) -> io::Result<()> {
            Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)?)
        }

        /// Stats the child `name`, following a symlink as opening it would.
        pub(crate) fn stat_child(&self, name: &OsStr) -> io::Result<FileInfo> {
            Ok(info(&rustix::fs::statat(&self.fd, name, AtFlags::empty())?))
        }

        /// Stats the child `name` itself, not what a symlink points to.
        pub(crate) fn lstat_child(&self, name: &OsStr) -> io::Result<FileInfo> {
            Ok(info(&rustix::fs::statat(
                &self.fd,
                name,
                AtFlags::SYMLINK_NOFOLLOW,
            )?))
        }

        /// Calls `each(name, is_dir)` for every entry of the directory but
        /// `.` and `..`, in directory order. `is_dir` is `None` when the
        /// listing does not say (a symlink, or a file system without
        /// `d_type`), so the caller must stat. Each call lists from the
        /// start; calls on one handle must not overlap.
        ///
        /// On Linux this is `getdents64` on the handle's own descriptor
        /// into one buffer: no second open of the directory and no
        /// allocation per entry, which `std::fs::read_dir` makes three of.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        pub(crate) fn for_each_entry(
            &self,
            mut each: impl FnMut(&OsStr, Option<bool>),
        ) -> io::Result<()> {
            // About a hundred entries per call, where glibc's readdir asks
            // for 32 KiB. A call costs in proportion to the entries it
            // returns (ext4 hashes each name of an indexed directory), and
            // the caller hands work to other threads between calls: one
            // 32 KiB call kept them waiting for 0.3 ms.
            // The descriptor's position is shared by every listing of it
            // (a provisional rebuild lists it before and after the scan).
            rustix::fs::seek(&self.fd, rustix::fs::SeekFrom::Start(0))?;
            let mut buf = Vec::with_capacity(4 * 1024);
            let mut dir = rustix::fs::RawDir::new(&self.fd, buf.spare_capacity_mut());
            while let Some(entry) = dir.next() {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(err) => return Err(err.into()),
                };
                let name = entry.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                let is_dir = match entry.file_type() {
                    FileType::Directory => Some(true),
                    FileType::Symlink | FileType::Unknown => None,
                    _ => Some(false),
                };
                each(OsStr::from_bytes(name), is_dir);
            }
            Ok(())
        }

        /// `read_dir` of the descriptor's directory, where `getdents64` is
        /// not available.
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        pub(crate) fn for_each_entry(
            &self,
            mut each: impl FnMut(&OsStr, Option<bool>),
        ) -> io::Result<()> {
            let dup = rustix::fs::openat(
                &self.fd,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | base_flags(),
                Mode::empty(),
            )?;
            for entry in rustix::fs::Dir::new(dup)? {
                let entry = entry?;
                let name = entry.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                let is_dir = match entry.file_type() {
                    FileType::Directory => Some(true),
                    FileType::Symlink | FileType::Unknown => None,
                    _ => Some(false),
                };
                each(OsStr::from_bytes(name), is_dir);
            }
            Ok(())
        }

        /// What kind of file system the handle is on, from one `fstatfs`.
        ///
        /// On Linux, [`FileSystem::Local`] is known for the local file
        /// systems whose reads are served from the page cache and stop only
        /// at the file's size, at an error, or on a fatal signal: ext2/3/4,
        /// XFS, Btrfs, F2FS, tmpfs, and overlayfs (which passes reads to the
        /// file system beneath it, in practice one of these).
        /// [`FileSystem::Remote`] is every file system whose operations are
        /// round trips to a server or a user-space daemon: NFS, SMB/CIFS,
        /// 9p, Ceph, Lustre, GPFS, AFS, Coda, and FUSE (sshfs, virtiofs,
        /// gcsfuse ...). Everything else, and a failed `fstatfs`, is
        /// [`FileSystem::Other`].
        pub(crate) fn file_system(&self) -> FileSystem {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            {
                const LOCAL: [u64; 6] = [
                    0xEF53,      // ext2/3/4
                    0x5846_5342, // XFS
                    0x9123_683E, // Btrfs
                    0xF2F5_2010, // F2FS
                    0x0102_1994, // tmpfs
                    0x794C_7630, // overlayfs
                ];
                const REMOTE: [u64; 14] = [
                    0x6969,      // NFS
                    0x517B,      // SMB
                    0xFF53_4D42, // CIFS
                    0xFE53_4D42, // SMB2
                    0x0102_1997, // 9p (v9fs)
                    0x00C3_6400, // Ceph
                    0x0BD0_0BD0, // Lustre
                    0x4750_4653, // GPFS
                    0x5346_414F, // AFS
                    0x6B41_4653, // kAFS
                    0x7375_7245, // Coda
                    0x6573_5546, // FUSE
                    0x564C,      // NCP
                    0x2003_0528, // OrangeFS
                ];
                match rustix::fs::fstatfs(&self.fd) {
                    Ok(stats) if LOCAL.contains(&(stats.f_type as u64)) => FileSystem::Local,
                    Ok(stats) if REMOTE.contains(&(stats.f_type as u64)) => FileSystem::Remote,
                    _ => FileSystem::Other,
                }
            }
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            {
                FileSystem::Other
            }
        }
    }
}

#[cfg(not(unix))]
mod imp {
    //! Path-based stand-ins. A `DirHandle` is its path; nothing here can
    //! refuse symlinks or check owners, which Windows users would have to
    //! get from ACLs.

    use std::ffi::OsStr;
    use std::fs::{self, File};
    use std::io;
    use std::path::{Path, PathBuf};

    use super::{FileInfo, FileKind, FileSystem};

    pub(crate) fn current_uid() -> u32 {
        0
    }

    fn info(meta: &fs::Metadata) -> FileInfo {
        let kind = if meta.is_dir() {
            FileKind::Dir
        } else if meta.is_file() {
            FileKind::Regular
        } else if meta.file_type().is_symlink() {
            FileKind::Symlink
        } else {
            FileKind::Other
        };
        let mtime_ns = meta
            .modified()
            .ok()
            .map_or(0, crate::freshness::system_time_ns);
        FileInfo {
            kind,
            mtime_ns,
            ctime_ns: mtime_ns,
            size: meta.len(),
            ..FileInfo::default()
        }
    }

    pub(crate) fn stat(path: &Path) -> io::Result<FileInfo> {
        fs::metadata(path).map(|m| info(&m))
    }

    pub(crate) fn lstat(path: &Path) -> io::Result<FileInfo> {
        fs::symlink_metadata(path).map(|m| info(&m))
    }

    pub(crate) fn fstat(file: &File) -> io::Result<FileInfo> {
        file.metadata().map(|m| info(&m))
    }

    pub(crate) fn open_path_entry(path: &Path) -> io::Result<(File, FileInfo)> {
        let file = File::open(path)?;
        let info = fstat(&file)?;
        Ok((file, info))
    }

    pub(crate) fn open_nofollow(path: &Path) -> io::Result<(File, FileInfo)> {
        open_path_entry(path)
    }

    /// A file kept open for long, as it is: handles are not numbered from
    /// the lowest free one here.
    pub(crate) fn keep_open(file: File) -> File {
        file
    }

    /// Appends exactly `len` bytes of `file`, from `offset` on, to `buf`.
    /// `seek_read` takes the position with each call (it also moves the
    /// file pointer, which nothing here relies on), and the buffer is
    /// zeroed before it is read into.
    #[cfg(windows)]
    pub(crate) fn read_exact_at(
        file: &File,
        buf: &mut Vec<u8>,
        offset: u64,
        len: usize,
    ) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        let start = buf.len();
        buf.resize(start + len, 0);
        let mut done = 0;
        while done < len {
            match file.seek_read(&mut buf[start + done..], offset + done as u64) {
                Ok(0) => {
                    buf.truncate(start);
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                Ok(n) => done += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    buf.truncate(start);
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Neither Unix nor Windows: no positioned read in `std`, so each
    /// read seeks the handle's cursor, under a lock so that two threads
    /// never move it under each other.
    #[cfg(not(windows))]
    pub(crate) fn read_exact_at(
        file: &File,
        buf: &mut Vec<u8>,
        offset: u64,
        len: usize,
    ) -> io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        static CURSOR: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = CURSOR.lock().unwrap_or_else(|p| p.into_inner());
        let mut handle = file;
        handle.seek(SeekFrom::Start(offset))?;
        let start = buf.len();
        let read = handle.take(len as u64).read_to_end(buf)?;
        if read < len {
            buf.truncate(start);
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    #[derive(Debug)]
    pub(crate) struct DirHandle {
        path: PathBuf,
    }

    impl DirHandle {
        pub(crate) fn open(path: &Path) -> io::Result<DirHandle> {
            if !fs::metadata(path)?.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    "not a directory",
                ));
            }
            Ok(DirHandle {
                path: path.to_path_buf(),
            })
        }

        pub(crate) fn open_nofollow(path: &Path) -> io::Result<DirHandle> {
            Self::open(path)
        }

        pub(crate) fn open_subdir(&self, name: &OsStr) -> io::Result<DirHandle> {
            Self::open(&self.path.join(name))
        }

        pub(crate) fn info(&self) -> io::Result<FileInfo> {
            stat(&self.path)
        }

        pub(crate) fn open_file(
            &self,
            parts: &[&str],
            _scratch: &mut Vec<u8>,
        ) -> io::Result<(File, FileInfo)> {
            let path = parts.iter().fold(self.path.clone(), |p, part| p.join(part));
            let file = File::open(path)?;
            let info = fstat(&file)?;
            Ok((file, info))
        }

        pub(crate) fn open_file_nofollow(&self, name: &OsStr) -> io::Result<(File, FileInfo)> {
            let file = File::open(self.path.join(name))?;
            let info = fstat(&file)?;
            Ok((file, info))
        }

        pub(crate) fn create_new_file(&self, name: &OsStr) -> io::Result<File> {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(self.path.join(name))
        }

        pub(crate) fn create_subdir(&self, name: &OsStr) -> io::Result<()> {
            fs::create_dir(self.path.join(name))
        }

        /// A rename onto a file that a reader holds open can fail with
        /// `PermissionDenied` for a moment on Windows; it succeeds once the
        /// reader closes it, so retry briefly.
        pub(crate) fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
            let (from, to) = (self.path.join(from), self.path.join(to));
            let mut attempts = 0;
            loop {
                match fs::rename(&from, &to) {
                    Err(err) if err.kind() == io::ErrorKind::PermissionDenied && attempts < 20 => {
                        attempts += 1;
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    other => return other,
                }
            }
        }

        pub(crate) fn link(&self, existing: &OsStr, new: &OsStr) -> io::Result<()> {
            fs::hard_link(self.path.join(existing), self.path.join(new))
        }

        pub(crate) fn remove_file(&self, name: &OsStr) -> io::Result<()> {
            fs::remove_file(self.path.join(name))
        }

        pub(crate) fn remove_dir(&self, name: &OsStr) -> io::Result<()> {
            fs::remove_dir(self.path.join(name))
        }

        pub(crate) fn stat_child(&self, name: &OsStr) -> io::Result<FileInfo> {
            stat(&self.path.join(name))
        }

        pub(crate) fn lstat_child(&self, name: &OsStr) -> io::Result<FileInfo> {
            lstat(&self.path.join(name))
        }

        pub(crate) fn for_each_entry(
            &self,
            mut each: impl FnMut(&OsStr, Option<bool>),
        ) -> io::Result<()> {
            for entry in fs::read_dir(&self.path)? {
                let entry = entry?;
                let is_dir = match entry.file_type() {
                    Ok(kind) if !kind.is_symlink() => Some(kind.is_dir()),
                    _ => None,
                };
                each(&entry.file_name(), is_dir);
            }
            Ok(())
        }

        /// Unknown without `fstatfs`: the cautious answer.
        pub(crate) fn file_system(&self) -> FileSystem {
            FileSystem::Other
        }
    }
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
}

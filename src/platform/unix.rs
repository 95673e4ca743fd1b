//! The Unix implementation, through `rustix`: descriptor-relative opens
//! and stats, positioned reads, and [`DirHandle`], whose listing is
//! `getdents64` into one reused buffer on Linux.

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
            report_entry(entry.file_name().to_bytes(), entry.file_type(), &mut each);
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
            report_entry(entry.file_name().to_bytes(), entry.file_type(), &mut each);
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

/// Hands one listed name to `each`, with whether it is a directory when
/// the listing says (`None` for a symlink or an unknown type, which the
/// caller must stat); `.` and `..` are not reported.
fn report_entry(name: &[u8], file_type: FileType, each: &mut impl FnMut(&OsStr, Option<bool>)) {
    if name == b"." || name == b".." {
        return;
    }
    let is_dir = match file_type {
        FileType::Directory => Some(true),
        FileType::Symlink | FileType::Unknown => None,
        _ => Some(false),
    };
    each(OsStr::from_bytes(name), is_dir);
}

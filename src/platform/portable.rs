//! Everywhere but Unix (Windows): path-based stand-ins built on `std`.
//! A `DirHandle` is its path; nothing here can refuse symlinks or check
//! owners, which Windows users would have to get from ACLs.

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
    let mtime_ns = meta.modified().ok().map_or(0, super::system_time_ns);
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

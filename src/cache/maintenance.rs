//! Removing what the cache no longer needs: `prune` and `clear`.
//!
//! Both act only on a cache root that carries epcache's own
//! `CACHEDIR.TAG`, only on names epcache itself creates (`v<digits>/`,
//! `.trash-*/`, and inside those 64-hex index files and `.tmp-*` files),
//! and only through descriptors opened without following symlinks. So an
//! `EPCACHE_DIR` pointed at user data, or a symlink planted in the cache,
//! can make them refuse or skip, never delete something epcache did not
//! write.
//!
//! Both run while other processes consult and publish. `clear` renames the
//! versioned directory aside in one step, so a concurrent reader sees the
//! old directory or none, never half of one; deleting the renamed copy
//! then tolerates entries vanishing under it (`ENOENT`, NFS's `ESTALE`).

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::Path;
use std::time::Duration;

use crate::cache::dir::{
    index_file_name, is_index_file_name, versioned_name, CacheDir, TEMP_PREFIX,
};
use crate::cache::read_index_file;
use crate::error::{Error, Result};
use crate::index::format;
use crate::platform::{self, is_gone, DirHandle, FileKind};

/// How often a directory delete starts over when entries appear in it
/// before it gives up and reports the directory as not empty.
const DELETE_ATTEMPTS: usize = 5;

/// What `prune` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneReport {
    /// Temporary files older than the limit, left by killed writers.
    pub temp_files: usize,
    /// Index files whose path entry no longer exists.
    pub orphaned: usize,
    /// Files in the versioned directory that are not valid index files.
    pub invalid: usize,
    /// Directories of other format versions, and leftovers of an
    /// interrupted `clear`.
    pub old_versions: usize,
}

/// What `clear` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClearReport {
    /// The versioned directory that was removed, if there was one.
    pub removed: Option<std::path::PathBuf>,
}

/// [`CacheDir::prune`].
pub(super) fn prune(cache: &CacheDir, temp_age: Duration) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    let Some(root) = cache.open_for_maintenance()? else {
        return Ok(report);
    };
    prune_versioned(cache, &root, temp_age, &mut report)?;
    prune_root(cache, &root, temp_age, &mut report)?;
    Ok(report)
}

fn prune_versioned(
    cache: &CacheDir,
    root: &DirHandle,
    temp_age: Duration,
    report: &mut PruneReport,
) -> Result<()> {
    let path = cache.versioned();
    let versioned = match root.open_subdir(OsStr::new(&versioned_name())) {
        Ok(dir) => dir,
        Err(err) if is_gone(&err) => return Ok(()),
        Err(err) => return Err(Error::io("opening", &path, err)),
    };
    for name in list(&versioned, &path)? {
        let Some(text) = name.to_str() else { continue };
        let Ok(info) = versioned.lstat_child(&name) else {
            continue;
        };
        if info.kind == FileKind::Dir {
            continue;
        }
        if text.starts_with(TEMP_PREFIX) {
            report.temp_files +=
                usize::from(remove_stale_temp(&versioned, &name, temp_age, &path)?);
        } else if is_index_file_name(&name) {
            match index_file_verdict(&versioned, &name) {
                Verdict::Keep => {}
                Verdict::Orphaned => {
                    report.orphaned += usize::from(remove_file(&versioned, &name, &path)?)
                }
                Verdict::Invalid => {
                    report.invalid += usize::from(remove_file(&versioned, &name, &path)?)
                }
            }
        }
    }
    Ok(())
}

fn prune_root(
    cache: &CacheDir,
    root: &DirHandle,
    temp_age: Duration,
    report: &mut PruneReport,
) -> Result<()> {
    let current = versioned_name();
    for name in list(root, cache.root())? {
        let Some(text) = name.to_str() else { continue };
        // A writer of the tag killed before it linked it.
        if text.starts_with(TEMP_PREFIX) {
            report.temp_files +=
                usize::from(remove_stale_temp(root, &name, temp_age, cache.root())?);
            continue;
        }
        let is_other_version = text != current
            && text
                .strip_prefix('v')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !(is_other_version || text.starts_with(TRASH_PREFIX)) {
            continue;
        }
        if root
            .lstat_child(&name)
            .is_ok_and(|i| i.kind == FileKind::Dir)
            && remove_cache_dir(root, &name, &cache.root().join(&name))?
        {
            report.old_versions += 1;
        }
    }
    Ok(())
}

/// [`CacheDir::clear`].
pub(super) fn clear(cache: &CacheDir) -> Result<ClearReport> {
    let Some(root) = cache.open_for_maintenance()? else {
        return Ok(ClearReport::default());
    };
    let versioned = cache.versioned();
    let current = OsString::from(versioned_name());
    if root
        .lstat_child(&current)
        .is_ok_and(|info| info.kind != FileKind::Dir)
    {
        return Err(Error::io(
            "clearing",
            &versioned,
            io::Error::new(
                io::ErrorKind::InvalidData,
                "not a directory epcache made; left alone",
            ),
        ));
    }
    let aside = OsString::from(format!(
        "{TRASH_PREFIX}{}-{}",
        std::process::id(),
        platform::now_ns()
    ));
    match root.rename(&current, &aside) {
        Ok(()) => {}
        Err(err) if is_gone(&err) => return Ok(ClearReport::default()),
        Err(err) => return Err(Error::io("renaming", &versioned, err)),
    }
    remove_cache_dir(&root, &aside, &cache.root().join(&aside))?;
    Ok(ClearReport {
        removed: Some(versioned),
    })
}

/// Directories being deleted by `clear` are renamed to this prefix first.
const TRASH_PREFIX: &str = ".trash-";

enum Verdict {
    Keep,
    Orphaned,
    Invalid,
}

fn index_file_verdict(dir: &DirHandle, name: &OsStr) -> Verdict {
    let Ok(bytes) = read_index_file(dir, name) else {
        // Vanished, unreadable, or not a file of the user's: nothing to
        // decide about it here.
        return Verdict::Keep;
    };
    match format::check_whole(&bytes) {
        Ok(head) => {
            let path = format::head_path(&head);
            // The name carries the inode: a path entry recreated since (a
            // new venv at the old place) has another file now. On a home
            // shared by machines that see different directories at this
            // path, that file may be another machine's; it rebuilds it at
            // its next consult.
            match platform::stat(&path) {
                Ok(info) if name.to_str() == Some(&index_file_name(&path, info.inode)) => {
                    Verdict::Keep
                }
                _ => Verdict::Orphaned,
            }
        }
        Err(_) => Verdict::Invalid,
    }
}

/// The names in a directory.
fn list(dir: &DirHandle, path: &Path) -> Result<Vec<OsString>> {
    let mut names = Vec::new();
    match dir.for_each_entry(|name, _| names.push(name.to_owned())) {
        Ok(()) => Ok(names),
        Err(err) if is_gone(&err) => Ok(names),
        Err(err) => Err(Error::io("listing", path, err)),
    }
}

/// Removes a file; `false` when someone else removed it first.
fn remove_file(dir: &DirHandle, name: &OsStr, dir_path: &Path) -> Result<bool> {
    match dir.remove_file(name) {
        Ok(()) => Ok(true),
        Err(err) if is_gone(&err) => Ok(false),
        Err(err) => Err(Error::io("removing", dir_path.join(name), err)),
    }
}

/// Removes the temporary file `name` if it is a file at least `temp_age`
/// old: a writer killed between creating and renaming it.
fn remove_stale_temp(
    dir: &DirHandle,
    name: &OsStr,
    temp_age: Duration,
    path: &Path,
) -> Result<bool> {
    let Ok(info) = dir.lstat_child(name) else {
        return Ok(false);
    };
    let age_ns = platform::now_ns().saturating_sub(info.mtime_ns).max(0);
    if info.kind == FileKind::Dir || Duration::from_nanos(age_ns as u64) < temp_age {
        return Ok(false);
    }
    remove_file(dir, name, path)
}

/// Whether epcache creates files of this name in a versioned directory.
fn is_cache_file_name(name: &OsStr) -> bool {
    is_index_file_name(name) || name.to_str().is_some_and(|n| n.starts_with(TEMP_PREFIX))
}

/// Deletes a versioned (or renamed-aside) directory that others may be
/// deleting or writing into too: its index and temporary files, then the
/// directory. Anything else in it was not made by epcache and is left, and
/// so is the directory, which is then reported as not empty. Entries that
/// keep appearing make it start over, and after a few attempts it fails
/// rather than pretend it succeeded. `false` when it was already gone.
fn remove_cache_dir(parent: &DirHandle, name: &OsStr, path: &Path) -> Result<bool> {
    for _ in 0..DELETE_ATTEMPTS {
        let dir = match parent.open_subdir(name) {
            Ok(dir) => dir,
            Err(err) if is_gone(&err) => return Ok(false),
            Err(err) => return Err(Error::io("opening", path, err)),
        };
        let mut foreign = 0;
        for child in list(&dir, path)? {
            match dir.lstat_child(&child) {
                // Published or removed by another process meanwhile.
                Err(err) if is_gone(&err) => {}
                Ok(info) if info.kind != FileKind::Dir && is_cache_file_name(&child) => {
                    remove_file(&dir, &child, path)?;
                }
                _ => foreign += 1,
            }
        }
        match parent.remove_dir(name) {
            Ok(()) => return Ok(true),
            Err(err) if is_gone(&err) => return Ok(false),
            Err(err) if err.kind() == io::ErrorKind::DirectoryNotEmpty && foreign == 0 => continue,
            Err(err) if err.kind() == io::ErrorKind::DirectoryNotEmpty => {
                return Err(Error::io(
                    "removing",
                    path,
                    io::Error::new(
                        io::ErrorKind::DirectoryNotEmpty,
                        format!("it holds {foreign} entries epcache did not create; left in place"),
                    ),
                ))
            }
            Err(err) => return Err(Error::io("removing", path, err)),
        }
    }
    Err(Error::io(
        "removing",
        path,
        io::Error::new(
            io::ErrorKind::DirectoryNotEmpty,
            "entries keep appearing while it is deleted",
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tagged_cache() -> (tempfile::TempDir, CacheDir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CacheDir::new(tmp.path().join("cache"));
        dir.open_for_writing().unwrap();
        (tmp, dir)
    }

    #[test]
    fn clear_removes_only_what_epcache_made() {
        let (_tmp, dir) = tagged_cache();
        let versioned = dir.versioned();
        fs::write(versioned.join("a".repeat(64)), b"x").unwrap();
        fs::write(versioned.join(".tmp-1"), b"x").unwrap();
        assert!(dir.clear().unwrap().removed.is_some());
        assert!(!versioned.exists());

        dir.open_for_writing().unwrap();
        fs::write(versioned.join("notes.txt"), b"mine").unwrap();
        let err = dir.clear().unwrap_err().to_string();
        assert!(err.contains("did not create"), "{err}");
        let trash: Vec<_> = fs::read_dir(dir.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(TRASH_PREFIX))
            .collect();
        assert_eq!(trash.len(), 1);
        assert_eq!(
            fs::read(dir.root().join(&trash[0]).join("notes.txt")).unwrap(),
            b"mine"
        );
    }

    #[test]
    fn an_untagged_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        fs::create_dir_all(data.join("v1")).unwrap();
        fs::write(data.join("v1").join("b".repeat(64)), b"precious").unwrap();
        fs::create_dir_all(data.join("v7")).unwrap();
        let dir = CacheDir::new(&data);
        assert!(dir.prune(Duration::ZERO).is_err());
        assert!(dir.clear().is_err());
        assert!(data.join("v1").join("b".repeat(64)).exists());
        assert!(data.join("v7").exists());
    }

    #[cfg(unix)]
    #[test]
    fn prune_never_follows_a_symlinked_old_version() {
        let (tmp, dir) = tagged_cache();
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::write(elsewhere.join("c".repeat(64)), b"precious").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.root().join("v0")).unwrap();
        fs::create_dir(dir.root().join("v9")).unwrap();
        fs::write(dir.root().join("v9").join("d".repeat(64)), b"old").unwrap();
        let report = dir.prune(Duration::ZERO).unwrap();
        assert_eq!(report.old_versions, 1);
        assert!(!dir.root().join("v9").exists());
        assert!(elsewhere.join("c".repeat(64)).exists());
    }
}

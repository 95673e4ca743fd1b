//! Removing what the cache no longer needs: `prune` and `clear`.
//!
//! Both run while other processes consult and publish. `clear` renames the
//! versioned directory aside in one step, so a concurrent reader sees the
//! old directory or none, never half of one; deleting the renamed copy
//! then tolerates entries vanishing under it (`ENOENT`, NFS's `ESTALE`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::cache::TEMP_PREFIX;
use crate::cache_dir::{is_index_file_name, CacheDir};
use crate::error::{Error, Result};
use crate::format::{self, FORMAT_VERSION};
use crate::platform::{self, is_gone};

/// How often a tree delete starts over when entries appear under it before
/// it gives up and reports the directory as not empty.
const DELETE_ATTEMPTS: usize = 5;

/// What `prune` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
pub struct ClearReport {
    /// The versioned directory that was removed, if there was one.
    pub removed: Option<PathBuf>,
}

impl CacheDir {
    /// Removes temporary files older than `temp_age`, index files whose path
    /// entry is gone or that do not decode, and directories of other format
    /// versions.
    pub fn prune(&self, temp_age: Duration) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        self.check_readable()
            .map_err(|r| refused(self.root(), r.reason()))?;
        self.prune_versioned(temp_age, &mut report)?;
        self.prune_root(&mut report)?;
        Ok(report)
    }

    fn prune_versioned(&self, temp_age: Duration, report: &mut PruneReport) -> Result<()> {
        let versioned = self.versioned();
        let Some(entries) = read_dir_if_present(&versioned)? else {
            return Ok(());
        };
        let now = SystemTime::now();
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let path = entry.path();
            let name = entry.file_name();
            if name.to_string_lossy().starts_with(TEMP_PREFIX) {
                let age = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| now.duration_since(t).unwrap_or_default());
                if age.is_ok_and(|age| age >= temp_age) && remove_file(&path)? {
                    report.temp_files += 1;
                }
            } else if is_index_file_name(&name) {
                match index_file_verdict(&path) {
                    Verdict::Keep => {}
                    Verdict::Orphaned => report.orphaned += usize::from(remove_file(&path)?),
                    Verdict::Invalid => report.invalid += usize::from(remove_file(&path)?),
                }
            }
        }
        Ok(())
    }

    fn prune_root(&self, report: &mut PruneReport) -> Result<()> {
        let Some(entries) = read_dir_if_present(self.root())? else {
            return Ok(());
        };
        let current = format!("v{FORMAT_VERSION}");
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_other_version = name != current
                && name
                    .strip_prefix('v')
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            let is_trash = name.starts_with(TRASH_PREFIX);
            if (is_other_version || is_trash) && entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path())?;
                report.old_versions += 1;
            }
        }
        Ok(())
    }

    /// Removes the versioned directory: renamed aside atomically, then
    /// deleted.
    pub fn clear(&self) -> Result<ClearReport> {
        self.check_readable()
            .map_err(|r| refused(self.root(), r.reason()))?;
        let versioned = self.versioned();
        let aside = self.root().join(format!(
            "{TRASH_PREFIX}{}-{}",
            std::process::id(),
            crate::freshness::now_ns()
        ));
        match fs::rename(&versioned, &aside) {
            Ok(()) => {}
            Err(err) if is_gone(&err) => return Ok(ClearReport::default()),
            Err(err) => return Err(Error::io("renaming", &versioned, err)),
        }
        remove_tree(&aside)?;
        Ok(ClearReport {
            removed: Some(versioned),
        })
    }
}

/// Directories being deleted by `clear` are renamed to this prefix first.
const TRASH_PREFIX: &str = ".trash-";

enum Verdict {
    Keep,
    Orphaned,
    Invalid,
}

fn index_file_verdict(path: &Path) -> Verdict {
    let Ok(bytes) = fs::read(path) else {
        // Vanished or unreadable: nothing to decide now.
        return Verdict::Keep;
    };
    match format::split(&bytes) {
        Ok(parts) if parts.checksum_ok => {
            if fs::metadata(platform::path_from_bytes(parts.path)).is_ok() {
                Verdict::Keep
            } else {
                Verdict::Orphaned
            }
        }
        _ => Verdict::Invalid,
    }
}

fn refused(root: &Path, why: &str) -> Error {
    Error::io(
        "using cache directory",
        root,
        io::Error::new(io::ErrorKind::PermissionDenied, why.to_owned()),
    )
}

fn read_dir_if_present(dir: &Path) -> Result<Option<fs::ReadDir>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(Some(entries)),
        Err(err) if is_gone(&err) => Ok(None),
        Err(err) => Err(Error::io("listing", dir, err)),
    }
}

/// Removes a file; `false` when someone else removed it first.
fn remove_file(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(err) if is_gone(&err) => Ok(false),
        Err(err) => Err(Error::io("removing", path, err)),
    }
}

/// Deletes a directory tree that others may be deleting too. Entries that
/// vanish are fine; entries that keep appearing make it start over from
/// the top, and after a few attempts it fails rather than pretend it
/// succeeded.
pub(crate) fn remove_tree(root: &Path) -> Result<()> {
    for _ in 0..DELETE_ATTEMPTS {
        match remove_tree_once(root)? {
            Pass::Done => return Ok(()),
            Pass::Retry => continue,
        }
    }
    Err(Error::io(
        "removing",
        root,
        io::Error::new(
            io::ErrorKind::DirectoryNotEmpty,
            "entries keep appearing while it is deleted",
        ),
    ))
}

enum Pass {
    Done,
    Retry,
}

/// One bottom-up pass: walkdir's contents-first order yields every entry
/// before the directory that holds it, so each directory is empty when its
/// turn comes, unless something new appeared in it meanwhile.
fn remove_tree_once(root: &Path) -> Result<Pass> {
    let walk = walkdir::WalkDir::new(root)
        .contents_first(true)
        .follow_links(false);
    for entry in walk {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) if err.io_error().is_some_and(is_gone) => continue,
            Err(err) => {
                let path = err.path().unwrap_or(root).to_path_buf();
                return Err(Error::io("listing", path, err.into()));
            }
        };
        let path = entry.path();
        if !entry.file_type().is_dir() {
            remove_file(path)?;
            continue;
        }
        match fs::remove_dir(path) {
            Ok(()) => {}
            Err(err) if is_gone(&err) => {}
            Err(err) if err.kind() == io::ErrorKind::DirectoryNotEmpty => return Ok(Pass::Retry),
            Err(err) => return Err(Error::io("removing", path, err)),
        }
    }
    Ok(Pass::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_tree_removes_a_lone_file() {
        // What `clear` renamed aside may be a file if someone replaced the
        // directory with one; it goes like any entry.
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, b"x").unwrap();
        remove_tree(&file).unwrap();
        assert!(!file.exists());
    }

    #[test]
    fn remove_tree_deletes_nested_trees_and_tolerates_absence() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("t");
        fs::create_dir_all(root.join("a/b/c")).unwrap();
        fs::write(root.join("a/b/c/f"), b"x").unwrap();
        fs::write(root.join("g"), b"x").unwrap();
        remove_tree(&root).unwrap();
        assert!(!root.exists());
        remove_tree(&root).unwrap();
    }
}

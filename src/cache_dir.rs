//! Where index files live, and whether it is safe to read or write there.
//!
//! The cache root (`$EPCACHE_DIR`, or `epcache` in the per-user cache
//! directory) holds a `CACHEDIR.TAG` and one subdirectory per format
//! version (`v1`). Each index file is named by the blake3 hash of the
//! absolute path entry's bytes.
//!
//! Safety rules (Unix): a directory owned by another user, or writable by
//! other users, is never used. A missing directory is created private to
//! the user, but never inside a directory that belongs to another
//! (non-root) user: that is the `sudo` case, where root would otherwise
//! leave root-owned files in someone's home.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use crate::format::FORMAT_VERSION;
use crate::platform;

/// The environment variable that overrides the cache location.
pub const ENV_DIR: &str = "EPCACHE_DIR";

const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by epcache.\n\
# For information about cache directory tags, see https://bford.info/cachedir/\n";

/// A cache root and its versioned subdirectory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheDir {
    root: PathBuf,
}

impl CacheDir {
    /// A cache rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        CacheDir { root: root.into() }
    }

    /// `$EPCACHE_DIR` when set and non-empty, otherwise `epcache` inside the
    /// per-user cache directory (`$XDG_CACHE_HOME` or `~/.cache` on Linux).
    /// `None` when neither can be determined (no home directory).
    pub fn from_env() -> Option<Self> {
        match std::env::var_os(ENV_DIR) {
            Some(dir) if !dir.is_empty() => Some(CacheDir::new(dir)),
            _ => directories::BaseDirs::new()
                .map(|base| CacheDir::new(base.cache_dir().join("epcache"))),
        }
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding index files of the current format version.
    pub fn versioned(&self) -> PathBuf {
        self.root.join(format!("v{FORMAT_VERSION}"))
    }

    /// The index file for an absolute path entry.
    pub fn index_file(&self, absolute_entry: &Path) -> PathBuf {
        let hash = blake3::hash(&platform::path_bytes(absolute_entry));
        self.versioned().join(hash.to_hex().as_str())
    }

    /// Whether existing cache directories may be read: each one that exists
    /// must be a directory owned by the user and not writable by others.
    pub(crate) fn check_readable(&self) -> Result<(), WriteRefusal> {
        for dir in [self.root.clone(), self.versioned()] {
            match std::fs::metadata(&dir) {
                Ok(meta) => check_own_private_dir(&dir, &meta)?,
                Err(err) if platform::is_gone(&err) => return Ok(()),
                Err(err) => return Err(unwritable("stat", &dir, &err)),
            }
        }
        Ok(())
    }

    /// What [`prepare_for_writing`](Self::prepare_for_writing) would refuse,
    /// without creating anything.
    pub(crate) fn check_writable(&self) -> Result<(), WriteRefusal> {
        for dir in [self.root.clone(), self.versioned()] {
            match std::fs::metadata(&dir) {
                Ok(meta) => check_own_private_dir(&dir, &meta)?,
                Err(err) if platform::is_gone(&err) => return check_may_create_under(&dir),
                Err(err) => return Err(unwritable("stat", &dir, &err)),
            }
        }
        Ok(())
    }

    /// Makes sure the versioned directory exists and may be written to,
    /// creating what is missing.
    pub(crate) fn prepare_for_writing(&self) -> Result<PathBuf, WriteRefusal> {
        let versioned = self.versioned();
        for dir in [self.root.clone(), versioned.clone()] {
            match std::fs::metadata(&dir) {
                Ok(meta) => check_own_private_dir(&dir, &meta)?,
                Err(err) if platform::is_gone(&err) => self.create(&dir)?,
                Err(err) => {
                    return Err(WriteRefusal::Unwritable(format!(
                        "cannot stat {}: {err}",
                        dir.display()
                    )))
                }
            }
        }
        Ok(versioned)
    }

    fn create(&self, dir: &Path) -> Result<(), WriteRefusal> {
        check_may_create_under(dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|err| unwritable("creating", parent, &err))?;
        }
        match platform::create_private_dir(dir) {
            Ok(()) => {}
            // Another process won the race to create it; it is checked on
            // the next publish like any existing directory.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(unwritable("creating", dir, &err)),
        }
        if dir == self.root {
            // The tag only helps backup tools skip the cache; failing to
            // write it is no reason to stop.
            let _ =
                platform::write_private_file(&dir.join("CACHEDIR.TAG"), CACHEDIR_TAG.as_bytes());
        }
        Ok(())
    }
}

/// Why the cache directory cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WriteRefusal {
    /// A directory belongs to another user or is writable by others.
    Foreign(String),
    /// Creating or writing failed.
    Unwritable(String),
}

fn unwritable(action: &str, path: &Path, err: &io::Error) -> WriteRefusal {
    WriteRefusal::Unwritable(format!("{action} {}: {err}", path.display()))
}

impl WriteRefusal {
    /// The human-readable reason.
    pub(crate) fn reason(&self) -> &str {
        match self {
            WriteRefusal::Foreign(why) | WriteRefusal::Unwritable(why) => why,
        }
    }
}

fn check_own_private_dir(dir: &Path, meta: &std::fs::Metadata) -> Result<(), WriteRefusal> {
    if !meta.is_dir() {
        return Err(WriteRefusal::Unwritable(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    if !platform::owned_by_current_user(meta) {
        return Err(WriteRefusal::Foreign(format!(
            "{} belongs to another user",
            dir.display()
        )));
    }
    if platform::writable_by_others(meta) {
        return Err(WriteRefusal::Foreign(format!(
            "{} is writable by other users",
            dir.display()
        )));
    }
    Ok(())
}

/// Refuses to create `dir` when its nearest existing ancestor belongs to
/// another ordinary user.
fn check_may_create_under(dir: &Path) -> Result<(), WriteRefusal> {
    let Some(ancestor) = dir
        .ancestors()
        .skip(1)
        .find(|a| !a.as_os_str().is_empty() && a.exists())
    else {
        return Ok(());
    };
    let meta = std::fs::metadata(ancestor).map_err(|err| unwritable("stat", ancestor, &err))?;
    if !platform::owned_by_current_user(&meta) && !platform::owned_by_root(&meta) {
        return Err(WriteRefusal::Foreign(format!(
            "would create {} inside {}, which belongs to another user",
            dir.display(),
            ancestor.display()
        )));
    }
    Ok(())
}

/// Whether a file name in the versioned directory is an index file
/// (64 lower-case hex digits).
pub(crate) fn is_index_file_name(name: &OsStr) -> bool {
    name.to_str().is_some_and(|n| {
        n.len() == 64
            && n.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_file_is_named_by_blake3_of_the_path() {
        let dir = CacheDir::new("/c");
        let file = dir.index_file(Path::new("/site"));
        assert_eq!(file.parent().unwrap(), Path::new("/c/v1"));
        let name = file.file_name().unwrap();
        assert!(is_index_file_name(name));
        assert_eq!(
            name.to_str().unwrap(),
            blake3::hash(b"/site").to_hex().as_str()
        );
        assert_ne!(file, dir.index_file(Path::new("/site/")));
    }

    #[test]
    fn creates_private_directories_with_a_tag() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CacheDir::new(tmp.path().join("a/b"));
        let versioned = dir.prepare_for_writing().unwrap();
        assert!(versioned.is_dir());
        assert!(tmp.path().join("a/b/CACHEDIR.TAG").is_file());
        assert!(dir.check_readable().is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&versioned).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[cfg(unix)]
    #[test]
    fn refuses_directories_others_can_write() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = CacheDir::new(tmp.path().join("c"));
        dir.prepare_for_writing().unwrap();
        std::fs::set_permissions(dir.root(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(dir
            .check_readable()
            .unwrap_err()
            .reason()
            .contains("writable by other users"));
        assert!(matches!(
            dir.prepare_for_writing(),
            Err(WriteRefusal::Foreign(_))
        ));
    }

    #[test]
    fn a_file_in_the_way_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("file");
        std::fs::write(&path, b"x").unwrap();
        let dir = CacheDir::new(&path);
        assert!(dir
            .check_readable()
            .unwrap_err()
            .reason()
            .contains("not a directory"));
        assert!(dir.prepare_for_writing().is_err());
    }
}

//! Where index files live, and whether it is safe to read or write there.
//!
//! The cache root (`$EPCACHE_DIR`, or `epcache` in the per-user cache
//! directory) holds a `CACHEDIR.TAG` and one subdirectory per format
//! version (`v1`). Each index file is named by the blake3 hash of the
//! absolute path entry's bytes.
//!
//! Whom it trusts is `trust`'s rule. Writing goes through descriptors
//! opened with `O_NOFOLLOW`; a missing directory is created private to
//! the user. `clear` and `prune` are in `maintenance`.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::maintenance::{self, ClearReport, PruneReport};
use super::trust::{
    check_links_above, check_may_create_under, check_own_private_dir, owned_by_current_user,
    refusal_for_open, unwritable, WriteRefusal,
};
use crate::error::Result;
use crate::index::format::FORMAT_VERSION;
use crate::platform::{self, now_ns, DirHandle};

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
        self.root.join(versioned_name())
    }

    /// The index file for an absolute path entry whose inode is `inode`.
    pub fn index_file(&self, absolute_entry: &Path, inode: u64) -> PathBuf {
        self.versioned()
            .join(index_file_name(absolute_entry, inode))
    }

    /// Whether existing cache directories may be read: each one that exists
    /// must be a directory, not a symlink, owned by the user and not
    /// writable by others.
    pub(crate) fn check_readable(&self) -> Result<(), WriteRefusal> {
        self.check_existing(|_| Ok(()))
    }

    /// What [`open_for_writing`](Self::open_for_writing) would refuse,
    /// without creating anything.
    pub(crate) fn check_writable(&self) -> Result<(), WriteRefusal> {
        self.check_existing(check_may_create_under)
    }

    /// Checks the root and the versioned directory, without following
    /// symlinks, as far as they exist; `missing` judges the first one
    /// that does not.
    fn check_existing(
        &self,
        missing: impl Fn(&Path) -> Result<(), WriteRefusal>,
    ) -> Result<(), WriteRefusal> {
        check_links_above(&self.root)?;
        for dir in [self.root.clone(), self.versioned()] {
            match platform::lstat(&dir) {
                Ok(info) => check_own_private_dir(&dir, &info)?,
                Err(err) if platform::is_gone(&err) => return missing(&dir),
                Err(err) => return Err(unwritable("stat", &dir, err)),
            }
        }
        Ok(())
    }

    /// The versioned directory, opened for publishing: created when
    /// missing, and checked through the descriptor that is then written
    /// through, so no symlink at or below the root is ever followed.
    pub(crate) fn open_for_writing(&self) -> Result<DirHandle, WriteRefusal> {
        let root = self.open_or_create_root()?;
        let name = OsString::from(versioned_name());
        let versioned_path = self.versioned();
        let versioned = match root.open_subdir(&name) {
            Ok(dir) => dir,
            Err(err) if platform::is_gone(&err) => {
                match root.create_subdir(&name) {
                    Ok(()) => {}
                    // Another process won the race; it is checked below.
                    Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(err) => return Err(unwritable("creating", &versioned_path, err)),
                }
                root.open_subdir(&name)
                    .map_err(|err| refusal_for_open(&versioned_path, err))?
            }
            Err(err) => return Err(refusal_for_open(&versioned_path, err)),
        };
        let info = versioned
            .info()
            .map_err(|err| unwritable("stat", &versioned_path, err))?;
        check_own_private_dir(&versioned_path, &info)?;
        Ok(versioned)
    }

    /// The root, opened without following a symlink. When this process
    /// created it, or found it empty (the same for a directory the user
    /// made for the cache), it is tagged before anything goes in, so that
    /// a root without epcache's tag never holds epcache's files.
    fn open_or_create_root(&self) -> Result<DirHandle, WriteRefusal> {
        check_links_above(&self.root)?;
        let mut created = false;
        let root = match DirHandle::open_nofollow(&self.root) {
            Ok(root) => root,
            Err(err) if platform::is_gone(&err) => {
                created = self.create_root()?;
                DirHandle::open_nofollow(&self.root)
                    .map_err(|err| refusal_for_open(&self.root, err))?
            }
            Err(err) => return Err(refusal_for_open(&self.root, err)),
        };
        let info = root
            .info()
            .map_err(|err| unwritable("stat", &self.root, err))?;
        check_own_private_dir(&self.root, &info)?;
        if created || is_new_root(&root) {
            write_tag(&root);
        }
        Ok(root)
    }

    /// Creates the missing root and its missing ancestors; `true` when this
    /// process made the root itself.
    fn create_root(&self) -> Result<bool, WriteRefusal> {
        check_may_create_under(&self.root)?;
        if let Some(parent) = self.root.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|err| unwritable("creating", parent, err))?;
        }
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        match builder.create(&self.root) {
            Ok(()) => Ok(true),
            // Another process won the race to create it; whatever is there
            // is checked through its descriptor like any existing root.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(err) => Err(unwritable("creating", &self.root, err)),
        }
    }

    /// The root, opened for `prune` and `clear`: it must be a directory of
    /// the user's, not a symlink, and carry epcache's own `CACHEDIR.TAG`,
    /// so that a mistyped `EPCACHE_DIR` cannot turn them on user data.
    /// `Ok(None)` when there is no cache at all.
    pub(crate) fn open_for_maintenance(&self) -> crate::Result<Option<DirHandle>> {
        check_links_above(&self.root).map_err(|r| refused(&self.root, &r.reason()))?;
        let root = match DirHandle::open_nofollow(&self.root) {
            Ok(root) => root,
            Err(err) if platform::is_gone(&err) => return Ok(None),
            Err(err) => {
                return Err(refused(
                    &self.root,
                    &refusal_for_open(&self.root, err).reason(),
                ))
            }
        };
        let info = root
            .info()
            .map_err(|err| crate::Error::io("stat", &self.root, err))?;
        check_own_private_dir(&self.root, &info).map_err(|r| refused(&self.root, &r.reason()))?;
        if !has_own_tag(&root) {
            // A root being created right now is tagged before it gets any
            // content: until then there is nothing to do either way.
            if is_new_root(&root) {
                return Ok(None);
            }
            // The creator may have linked the tag in between the two looks
            // above, so that the second saw the tag as foreign content;
            // look for it once more before refusing.
            if has_own_tag(&root) {
                return Ok(Some(root));
            }
            return Err(refused(
                &self.root,
                "it holds no CACHEDIR.TAG written by epcache, so it is not treated as an epcache cache",
            ));
        }
        Ok(Some(root))
    }

    /// Removes temporary files older than `temp_age`, index files whose path
    /// entry is gone or that do not decode, and directories of other format
    /// versions.
    ///
    /// Fails, deleting nothing, when the root is not an epcache cache (no
    /// `CACHEDIR.TAG` of epcache's), is a symlink, or belongs to another
    /// user.
    pub fn prune(&self, temp_age: Duration) -> Result<PruneReport> {
        maintenance::prune(self, temp_age)
    }

    /// Removes the versioned directory: renamed aside atomically, then
    /// deleted.
    ///
    /// Fails, deleting nothing, when the root is not an epcache cache (see
    /// [`prune`](Self::prune)).
    pub fn clear(&self) -> Result<ClearReport> {
        maintenance::clear(self)
    }
}

/// The versioned directory's name: `v` and the format version.
pub(crate) fn versioned_name() -> String {
    format!("v{FORMAT_VERSION}")
}

/// The name of the index file for an absolute path entry: the blake3 hash
/// of its bytes and its inode number, in hex.
///
/// The inode is in the name so that two different directories at one path
/// (one environment at `/opt/venv` on some machines sharing the home
/// directory, another on the others) get a file each instead of replacing
/// each other's forever. Machines that see the same directory see the same
/// inode (NFS hands out the server's), so they share its file. A directory
/// recreated at the same path gets a new file; `prune` removes the old one.
pub(crate) fn index_file_name(absolute_entry: &Path, inode: u64) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&platform::path_bytes(absolute_entry));
    hasher.update(b"\0");
    hasher.update(&inode.to_le_bytes());
    hasher.finalize().to_hex().to_string()
}

/// Writes `CACHEDIR.TAG` into a root this process created. `O_EXCL` and
/// `O_NOFOLLOW` through the root's own descriptor: an existing file or
/// symlink of that name is left alone, never written through. The tag only
/// helps backup tools skip the cache (and lets `prune` and `clear` know the
/// directory), so failing to write it is no reason to stop.
///
/// The tag appears whole: it is written to a temporary file that is then
/// hard-linked to its name, which fails rather than replace anything, so a
/// concurrent `prune` never reads a half-written tag.
fn write_tag(root: &DirHandle) {
    let Ok((temp, mut file)) = create_temp_file(root) else {
        return;
    };
    if file.write_all(CACHEDIR_TAG.as_bytes()).is_ok() {
        let _ = root.link(&temp, OsStr::new(TAG_NAME));
    }
    let _ = root.remove_file(&temp);
}

/// The prefix of temporary files in cache directories.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// A new file named `.tmp-<pid>-<nanoseconds>-<n>`: unique among writers
/// of this machine, and `O_EXCL` settles the rare clash.
pub(crate) fn create_temp_file(dir: &DirHandle) -> io::Result<(OsString, std::fs::File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut attempts = 0;
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = OsString::from(format!(
            "{TEMP_PREFIX}{}-{}-{n}",
            std::process::id(),
            now_ns()
        ));
        match dir.create_new_file(&name) {
            Ok(file) => return Ok((name, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => {
                attempts += 1
            }
            Err(err) => return Err(err),
        }
    }
}

/// Whether the root holds epcache's own tag: a regular file of the user's,
/// not a symlink, with exactly the text epcache writes.
fn has_own_tag(root: &DirHandle) -> bool {
    let Ok((mut file, info)) = root.open_file_nofollow(OsStr::new(TAG_NAME)) else {
        return false;
    };
    if !info.is_regular() || !owned_by_current_user(&info) {
        return false;
    }
    let mut text = Vec::new();
    let read = (&mut file)
        .take(CACHEDIR_TAG.len() as u64 + 1)
        .read_to_end(&mut text);
    read.is_ok() && text == CACHEDIR_TAG.as_bytes()
}

/// Whether a root holds nothing yet but, perhaps, the temporary file of
/// a tag being written (a listing that fails counts as holding more).
fn is_new_root(dir: &DirHandle) -> bool {
    let mut other = false;
    let listed = dir.for_each_entry(|name, _| {
        other |= !name.to_str().is_some_and(|n| n.starts_with(TEMP_PREFIX));
    });
    listed.is_ok() && !other
}

const TAG_NAME: &str = "CACHEDIR.TAG";

fn refused(root: &Path, why: &str) -> crate::Error {
    crate::Error::refused("using cache directory", root, why)
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
    fn index_file_is_named_by_blake3_of_the_path_and_inode() {
        let dir = CacheDir::new("/c");
        let file = dir.index_file(Path::new("/site"), 7);
        let versioned = format!("/c/v{FORMAT_VERSION}");
        assert_eq!(file.parent().unwrap(), Path::new(&versioned));
        let name = file.file_name().unwrap();
        assert!(is_index_file_name(name));
        assert_eq!(
            name.to_str().unwrap(),
            blake3::hash(b"/site\0\x07\0\0\0\0\0\0\0").to_hex().as_str()
        );
        assert_ne!(file, dir.index_file(Path::new("/site/"), 7));
        assert_ne!(file, dir.index_file(Path::new("/site"), 8));
    }

    #[test]
    fn creates_private_directories_with_a_tag() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CacheDir::new(tmp.path().join("a/b"));
        dir.open_for_writing().unwrap();
        let versioned = dir.versioned();
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
        dir.open_for_writing().unwrap();
        std::fs::set_permissions(dir.root(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(dir
            .check_readable()
            .unwrap_err()
            .reason()
            .contains("writable by other users"));
        assert!(matches!(
            dir.open_for_writing().map(drop),
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
        assert!(dir.open_for_writing().is_err());
    }
}

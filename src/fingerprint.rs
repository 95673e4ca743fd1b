//! The fingerprint that lets a provisional index be trusted.
//!
//! An index published inside the settle window (by an installer's
//! `rebuild`) cannot rely on the directory's timestamp alone: a second
//! change in the same clock tick would leave it unchanged. Like git's
//! "racy" entries, such an index carries a fingerprint that a reader checks
//! instead: the sorted names of every child that can hold metadata, each
//! with its own mtime, ctime and inode. Listing the directory and stat-ing
//! those children is cheaper than parsing them, and it sees every added,
//! removed, renamed or replaced metadata directory, and every file created,
//! removed or renamed inside one.

use std::path::Path;

use wincode::{SchemaRead, SchemaWrite};

use crate::scan::may_hold_metadata;

/// One child of the directory as the fingerprint records it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, SchemaWrite, SchemaRead)]
struct Entry {
    name: String,
    mtime_ns: i64,
    ctime_ns: i64,
    inode: u64,
}

/// The encoded fingerprint of a directory and how many children it
/// covers, or `None` when the directory cannot be listed.
pub(crate) fn take(dir: &Path) -> Option<(Vec<u8>, usize)> {
    let mut entries = Vec::new();
    for child in std::fs::read_dir(dir).ok()? {
        let child = child.ok()?;
        let name = child.file_name();
        // A name that is not UTF-8 is skipped by the scanner, but it still
        // must show up here so that its appearance is noticed.
        let name = name.to_string_lossy();
        if !may_hold_metadata(&name) {
            continue;
        }
        // The entry's own stat is taken relative to the listing's directory
        // descriptor (no path walk). Symlinks are followed, as the scanner's
        // reads do; a dangling one is recorded with zeros: its appearance
        // still changes the listing.
        let meta = match child.metadata() {
            Ok(meta) if meta.file_type().is_symlink() => std::fs::metadata(child.path()),
            other => other,
        };
        let key = meta.map_or_else(
            |_| crate::freshness::Key::default(),
            |m| crate::platform::key_from_metadata(&m),
        );
        entries.push(Entry {
            name: name.into_owned(),
            mtime_ns: key.mtime_ns,
            ctime_ns: key.ctime_ns,
            inode: key.inode,
        });
    }
    // Listing order may differ between two listings of the same contents.
    entries.sort_unstable();
    let count = entries.len();
    Some((wincode::serialize(&entries).ok()?, count))
}

/// How many children an encoded fingerprint covers.
pub(crate) fn entry_count(encoded: &[u8]) -> Option<usize> {
    wincode::deserialize_exact::<Vec<Entry>>(encoded)
        .ok()
        .map(|e| e.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn sees_added_removed_and_touched_metadata_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::create_dir(dir.join("a-1.dist-info")).unwrap();
        fs::create_dir(dir.join("pkg")).unwrap();
        let (first, n) = take(dir).unwrap();
        assert_eq!(n, 1);
        assert_eq!(entry_count(&first), Some(1));
        assert_eq!(take(dir).unwrap().0, first, "stable when nothing changed");

        fs::write(dir.join("pkg/mod.py"), b"").unwrap();
        fs::write(dir.join("other.py"), b"").unwrap();
        assert_eq!(
            take(dir).unwrap().0,
            first,
            "non-metadata changes are ignored"
        );

        fs::write(dir.join("a-1.dist-info/entry_points.txt"), b"").unwrap();
        let touched = take(dir).unwrap().0;
        assert_ne!(
            touched, first,
            "a file created inside a metadata dir is seen"
        );

        fs::create_dir(dir.join("b-1.dist-info")).unwrap();
        let added = take(dir).unwrap();
        assert_eq!(added.1, 2);
        fs::remove_dir(dir.join("b-1.dist-info")).unwrap();
        assert_eq!(take(dir).unwrap().0, touched);
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_metadata_is_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let site = tmp.path().join("site");
        let elsewhere = tmp.path().join("real-1.dist-info");
        fs::create_dir(&site).unwrap();
        fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, site.join("real-1.dist-info")).unwrap();
        let before = take(&site).unwrap().0;
        fs::write(elsewhere.join("entry_points.txt"), b"[g]\na = b\n").unwrap();
        assert_ne!(
            take(&site).unwrap().0,
            before,
            "a change behind the link is seen"
        );
    }

    #[test]
    fn unlistable_directory_has_no_fingerprint() {
        assert!(take(Path::new("/nonexistent/epcache")).is_none());
    }
}

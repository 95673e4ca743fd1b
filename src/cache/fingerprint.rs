//! The fingerprint that lets a provisional index be trusted.
//!
//! An index published inside the settle window (by an installer's
//! `rebuild`) cannot rely on the directory's timestamp alone: a second
//! change in the same clock tick would leave it unchanged. Like git's
//! "racy" entries, such an index carries a fingerprint that a reader checks
//! instead: the names of every child that can hold metadata, each
//! with its own mtime, ctime and inode. Listing the directory and stat-ing
//! those children is cheaper than parsing them, and it sees every added,
//! removed, renamed or replaced metadata directory, and every file created,
//! removed or renamed inside one.

use std::ffi::{OsStr, OsString};

use wincode::{SchemaRead, SchemaWrite};

use crate::index::Key;
use crate::platform::pipeline::{process_while_listing, Parallelism};
use crate::platform::{is_gone, is_symlink_loop, DirHandle};
use crate::scan::may_hold_metadata;

/// One child of the directory as the fingerprint records it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, SchemaWrite, SchemaRead)]
struct Entry {
    name: String,
    mtime_ns: i64,
    ctime_ns: i64,
    inode: u64,
}

/// Names per block of stats handed to another thread while the listing
/// goes on (see [`process_while_listing`]).
const BLOCK: usize = 32;

/// The encoded fingerprint of a directory and how many children it
/// covers, or `None` when the directory cannot be listed or a child cannot
/// be stat-ed.
pub(crate) fn take(handle: &DirHandle) -> Option<(Vec<u8>, usize)> {
    let mut listed = Ok(());
    let done = process_while_listing(
        Parallelism::for_file_system(handle.file_system(), BLOCK),
        |found| {
            listed = handle.for_each_entry(|name, _| {
                // A name that is not UTF-8 is skipped by the scanner, but it
                // still must show up here so that its appearance is noticed.
                if may_hold_metadata(name.as_encoded_bytes()) {
                    found(name.to_owned());
                }
            });
        },
        || (),
        |(), names| -> Vec<Option<Key>> { names.iter().map(|name| key_of(handle, name)).collect() },
    );
    listed.ok()?;
    let mut entries = Vec::new();
    for block in done {
        for (name, key) in block.items.into_iter().zip(block.result) {
            entries.push(entry(name, key?));
        }
    }
    // Kept in listing order, which [`same`] tries first: sorting four
    // hundred names costs as much as a tenth of the whole check.
    let count = entries.len();
    Some((wincode::serialize(&entries).ok()?, count))
}

/// Whether two encoded fingerprints describe the same children.
///
/// Two listings of an unchanged directory usually come in the same order,
/// so the encodings are compared first. Nothing promises that order,
/// though, and fingerprints written by earlier versions are sorted, so
/// when the bytes differ the entries are compared as sets. A fingerprint
/// that cannot be decoded matches nothing.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    let sorted = |encoded: &[u8]| {
        let mut entries = wincode::deserialize_exact::<Vec<Entry>>(encoded).ok()?;
        entries.sort_unstable();
        Some(entries)
    };
    match (sorted(a), sorted(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// A child's key, taken relative to the directory's descriptor (no path
/// walk) and following symlinks, as the scanner's reads do. A dangling one
/// is recorded with zeros: its appearance still changes the listing. Any
/// other failure leaves the fingerprint untaken: a stat that failed for
/// now would record zeros that a later, successful one never matches.
fn key_of(handle: &DirHandle, name: &OsStr) -> Option<Key> {
    match handle.stat_child(name) {
        Ok(info) => Some(Key::from_info(&info)),
        Err(err) if is_gone(&err) || is_symlink_loop(&err) => Some(Key::default()),
        Err(_) => None,
    }
}

fn entry(name: OsString, key: Key) -> Entry {
    Entry {
        name: name
            .into_string()
            .unwrap_or_else(|name| name.to_string_lossy().into_owned()),
        mtime_ns: key.mtime_ns,
        ctime_ns: key.ctime_ns,
        inode: key.inode,
    }
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
        let (first, n) = take(&DirHandle::open(dir).unwrap()).unwrap();
        assert_eq!(n, 1);
        assert_eq!(entry_count(&first), Some(1));
        let now = || take(&DirHandle::open(dir).unwrap()).unwrap().0;
        assert!(same(&now(), &first), "stable when nothing changed");

        fs::write(dir.join("pkg/mod.py"), b"").unwrap();
        fs::write(dir.join("other.py"), b"").unwrap();
        assert!(same(&now(), &first), "non-metadata changes are ignored");

        fs::write(dir.join("a-1.dist-info/entry_points.txt"), b"").unwrap();
        let touched = now();
        assert!(
            !same(&touched, &first),
            "a file created inside a metadata dir is seen"
        );

        fs::create_dir(dir.join("b-1.dist-info")).unwrap();
        let added = take(&DirHandle::open(dir).unwrap()).unwrap();
        assert_eq!(added.1, 2);
        assert!(!same(&added.0, &touched));
        fs::remove_dir(dir.join("b-1.dist-info")).unwrap();
        assert!(same(&now(), &touched));
    }

    fn encoded(names: &[&str]) -> Vec<u8> {
        let entries: Vec<Entry> = names
            .iter()
            .enumerate()
            .map(|(i, name)| Entry {
                name: (*name).to_owned(),
                mtime_ns: i as i64,
                ctime_ns: 7,
                inode: 9,
            })
            .collect();
        wincode::serialize(&entries).unwrap()
    }

    #[test]
    fn fingerprints_are_compared_as_sets() {
        let listed = encoded(&["b-1.dist-info", "a-1.dist-info"]);
        let mut sorted: Vec<Entry> = wincode::deserialize_exact(&listed).unwrap();
        sorted.sort_unstable();
        let sorted = wincode::serialize(&sorted).unwrap();
        assert_ne!(listed, sorted);
        assert!(same(&listed, &sorted), "another order is the same set");
        assert!(same(&listed, &listed));
        // The same names with their times swapped are different entries.
        let swapped = encoded(&["a-1.dist-info", "b-1.dist-info"]);
        assert!(!same(&listed, &swapped));
        assert!(!same(&listed, &encoded(&["b-1.dist-info"])));
        assert!(!same(&listed, b"\xff\xff garbage"));
        assert!(!same(b"\xff", b"\xfe"));
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
        let before = take(&DirHandle::open(&site).unwrap()).unwrap().0;
        fs::write(elsewhere.join("entry_points.txt"), b"[g]\na = b\n").unwrap();
        assert!(
            !same(&take(&DirHandle::open(&site).unwrap()).unwrap().0, &before),
            "a change behind the link is seen"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_child_that_cannot_be_stat_ed_leaves_no_fingerprint() {
        // A symlink through a file is ENOTDIR, which counts as gone; one
        // that is too long a chain of links is ELOOP, also a fact of the
        // tree. Neither stops the fingerprint.
        let tmp = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("loop.dist-info", tmp.path().join("loop.dist-info")).unwrap();
        std::os::unix::fs::symlink("nowhere", tmp.path().join("gone.dist-info")).unwrap();
        let (_, n) = take(&DirHandle::open(tmp.path()).unwrap()).unwrap();
        assert_eq!(n, 2);
    }

    /// A provisional index file carries its fingerprint, so the
    /// fingerprint's encoding is part of the file format: a change to it
    /// must come with a new `FORMAT_VERSION` and a new golden file (made
    /// with `EPCACHE_BLESS=1 cargo test --lib golden`), never by accident.
    #[test]
    fn golden_fingerprint_bytes() {
        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(format!("fingerprint-v{}.bin", crate::index::FORMAT_VERSION));
        let entries = vec![
            entry("Foo_Bar-1.0.dist-info".into(), Key::default()),
            Entry {
                name: "ünïcode-2.0.egg-info".to_owned(),
                mtime_ns: -1_000_000_007,
                ctime_ns: 1_690_000_000_000_000_002,
                inode: u64::MAX - 4242,
            },
            Entry {
                name: "legacy.egg-link".to_owned(),
                mtime_ns: i64::MAX,
                ctime_ns: i64::MIN,
                inode: 0,
            },
        ];
        let bytes = wincode::serialize(&entries).unwrap();
        if std::env::var_os("EPCACHE_BLESS").is_some() {
            fs::write(&golden, &bytes).unwrap();
        }
        let expected = fs::read(&golden).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; a new format version needs its golden file (EPCACHE_BLESS=1)",
                golden.display()
            )
        });
        assert!(
            bytes == expected,
            "the fingerprint's encoding changed without a new FORMAT_VERSION"
        );
        assert_eq!(entry_count(&expected), Some(3));
        assert!(same(&expected, &bytes));
    }
}

//! Every corruption of a real index file gives a miss and the correct
//! answer, and the consult (or the first query) that noticed it heals the
//! file.
//!
//! A consult checks the file's head; the rest is checked part by part as
//! queries read it. So damage in the head, or a file of the wrong length,
//! is a miss at the consult, and damage elsewhere is a hit whose first
//! query reading the damaged part rescans and republishes
//! ([`Index::late_outcome`] says so). Either way the answer is the scan's.
//!
//! The damaged bytes are written in place (same inode, same owner), the way
//! a crash, a bad disk or a stray editor would leave them.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use epcache::{scan, Cache, Index, Lookup, Publish};

/// A site of about 20 distributions with entry points, its published index
/// file, and the file's bytes.
struct Fixture {
    _tmp: tempfile::TempDir,
    site: PathBuf,
    other: PathBuf,
    root: PathBuf,
    file: PathBuf,
    bytes: Vec<u8>,
    expected: Index,
}

fn fixture() -> Fixture {
    let tmp = tempdir();
    let site = make_site(&tmp.path().join("site"), 20);
    // Unusual but valid content, so the payload has some variety.
    write_dist(
        &site,
        "Odd.Name_pkg",
        "1.0rc1+local",
        &[
            ("console_scripts", "odd", "odd.cli:main [extra1,extra2]"),
            ("gui_scripts", "odd-gui", "odd.gui:run"),
            ("épcache.ünicode", "naïve", "naïve:entry"),
        ],
    );
    let other = make_site(&tmp.path().join("other"), 3);
    set_mtime_ago(&site, Duration::from_secs(3600));
    set_mtime_ago(&other, Duration::from_secs(3600));
    let root = tmp.path().join("cache");
    let cache = cache(&root);
    assert_eq!(
        cache.consult(&site).outcome.publish,
        Some(Publish::Published)
    );
    assert_eq!(cache.consult(&site).outcome.lookup, Lookup::Hit);
    let file = index_file(&root, &site);
    let bytes = fs::read(&file).unwrap();
    let expected = scan(&site);
    assert!(expected.len() == 21 && expected.entry_point_count() > 20);
    Fixture {
        _tmp: tmp,
        site,
        other,
        root,
        file,
        bytes,
        expected,
    }
}

/// Replaces a file's contents in place: same inode, same owner. (Not with
/// `O_TRUNC`, which makes ext4 flush the rewritten file on close and the
/// thousands of rewrites here slow.)
fn overwrite(file: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut handle = fs::OpenOptions::new().write(true).open(file).unwrap();
    handle.write_all(bytes).unwrap();
    handle.set_len(bytes.len() as u64).unwrap();
}

fn cache(root: &Path) -> Cache {
    Cache::at(root).with_settle(Duration::ZERO)
}

impl Fixture {
    /// Puts `damaged` in place of the index file, consults, reads every
    /// part through the answer, and checks: the right answer, a miss of an
    /// allowed kind (at the consult, or when a query first read the
    /// damaged part), a republished file, and a hit next time. Returns the
    /// lookup.
    fn check(&self, cache: &Cache, damaged: &[u8], what: &str) -> Lookup {
        self.check_where(cache, damaged, what).0
    }

    /// [`check`](Self::check), and whether the consult itself found it
    /// (rather than a query after it).
    fn check_where(&self, cache: &Cache, damaged: &[u8], what: &str) -> (Lookup, bool) {
        overwrite(&self.file, damaged);
        let consulted = cache.consult(&self.site);
        let answer = every_answer(&consulted.index, &self.expected);
        assert_eq!(
            answer,
            every_answer(&self.expected, &self.expected),
            "{what}: wrong answer"
        );
        assert_eq!(consulted.index, self.expected, "{what}: wrong answer");
        // Damage the head does not show is found by the query that reads
        // the damaged part, and reported as the consult would have.
        let at_consult = consulted.index.late_outcome().is_none();
        let outcome = match consulted.index.late_outcome() {
            Some(late) => {
                assert!(
                    consulted.outcome.is_hit(),
                    "{what}: a scanned answer found damage"
                );
                late.clone()
            }
            None => consulted.outcome.clone(),
        };
        let lookup = outcome.lookup.clone();
        assert!(
            matches!(lookup, Lookup::Corrupt(_) | Lookup::PathDiffers),
            "{what}: expected a corrupt or foreign file, got {outcome}"
        );
        assert_eq!(
            outcome.publish,
            Some(Publish::Published),
            "{what}: not healed"
        );
        assert_eq!(
            fs::read(&self.file).unwrap().len(),
            self.bytes.len(),
            "{what}: the healed file differs in size"
        );
        let next = cache.consult(&self.site);
        assert_eq!(
            next.outcome.lookup,
            Lookup::Hit,
            "{what}: no hit after healing"
        );
        assert_eq!(
            every_answer(&next.index, &self.expected),
            answer,
            "{what}: wrong answer after healing"
        );
        assert!(
            next.index.late_outcome().is_none(),
            "{what}: the healed file is damaged"
        );
        (lookup, at_consult)
    }
}

#[test]
fn every_truncation_is_a_miss_and_heals() {
    let f = fixture();
    let cache = cache(&f.root);
    assert!(
        f.bytes.len() > 500,
        "index file only {} bytes",
        f.bytes.len()
    );
    // The head says how long the file is, so a file of another length is
    // a miss at the consult itself, before any query.
    for len in 0..f.bytes.len() {
        let (lookup, at_consult) =
            f.check_where(&cache, &f.bytes[..len], &format!("truncated to {len}"));
        assert!(
            matches!(lookup, Lookup::Corrupt(_)) && at_consult,
            "length {len}: {lookup}"
        );
    }
    // Extra bytes at the end are caught too.
    let mut longer = f.bytes.clone();
    longer.extend_from_slice(b"\0");
    let (_, at_consult) = f.check_where(&cache, &longer, "one byte appended");
    assert!(at_consult, "a longer file was trusted");
}

#[test]
fn random_bit_flips_are_misses_and_heal() {
    let f = fixture();
    let cache = cache(&f.root);
    let mut rng = XorShift::new(0x5eed_0fe9_cac4);
    let bits = f.bytes.len() as u64 * 8;
    // Every bit of the fixed header, then random ones over the whole file.
    let mut flips: Vec<u64> = (0..104 * 8).step_by(3).collect();
    flips.extend((0..300).map(|_| rng.below(bits)));
    for bit in flips {
        let mut damaged = f.bytes.clone();
        damaged[(bit / 8) as usize] ^= 1 << (bit % 8);
        let lookup = f.check(&cache, &damaged, &format!("bit {bit} flipped"));
        assert!(matches!(lookup, Lookup::Corrupt(_)), "bit {bit}: {lookup}");
    }
}

#[test]
fn an_empty_file_and_a_file_of_another_path_entry_are_misses() {
    let f = fixture();
    let cache = cache(&f.root);
    let lookup = f.check(&cache, b"", "empty file");
    assert!(matches!(lookup, Lookup::Corrupt(_)), "{lookup}");

    // A genuine, intact index file of another path entry, copied over.
    assert_eq!(
        cache.consult(&f.other).outcome.publish,
        Some(Publish::Published)
    );
    let other_bytes = fs::read(index_file(&f.root, &f.other)).unwrap();
    assert_eq!(
        f.check(&cache, &other_bytes, "other path entry's file"),
        Lookup::PathDiffers
    );
    // The other entry's own file is untouched and still hits.
    assert_eq!(cache.consult(&f.other).outcome.lookup, Lookup::Hit);

    // The same through the binary: `status` names the problem and a query
    // answers correctly.
    overwrite(&f.file, &other_bytes);
    let status = run_json(epcache(&f.root).arg("status").arg("--json").arg(&f.site));
    assert_eq!(first(&status)["verdict"], "path-differs", "{status}");
    let dists = run_json(
        epcache_settle(&f.root, "0")
            .args(["distributions", "--json"])
            .arg(&f.site),
    );
    assert_eq!(summarize_json(&dists), summarize(&f.expected));
    let status = run_json(epcache(&f.root).arg("status").arg("--json").arg(&f.site));
    assert_eq!(first(&status)["verdict"], "hit", "{status}");
}

/// A minimal zip archive holding one stored file.
fn zip_bytes() -> Vec<u8> {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    writer.start_file("METADATA", options).unwrap();
    writer.write_all(b"Name: zipped\nVersion: 1\n").unwrap();
    writer.finish().unwrap().into_inner()
}

#[test]
fn foreign_files_are_corrupt_misses() {
    let f = fixture();
    let cache = cache(&f.root);
    let mut rng = XorShift::new(42);
    let mut magic_then_noise = epcache::MAGIC.to_vec();
    magic_then_noise.extend(rng.bytes(200));
    let foreign: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", rng.bytes(f.bytes.len())),
        ("one random byte", rng.bytes(1)),
        ("a zip file", zip_bytes()),
        (
            "a text file",
            b"Signature: not an index\nhello, world\n".to_vec(),
        ),
        ("the magic then noise", magic_then_noise),
        ("a long run of zeros", vec![0; 1 << 16]),
    ];
    for (what, bytes) in foreign {
        let lookup = f.check(&cache, &bytes, what);
        assert!(matches!(lookup, Lookup::Corrupt(_)), "{what}: {lookup}");
    }
}

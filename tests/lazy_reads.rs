//! An index read from a cache file reads its parts when a query first
//! needs them, through the handle the consult opened. Whatever happens to
//! the file between the consult and the query — truncated in place, a
//! part damaged, replaced by a rename — the answer is the right one:
//! from the parts as they were when the consult trusted the file, or from
//! a scan that replaces it (and heals the file), never a mix of wrong
//! bytes, never a panic.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use epcache::{scan, Cache, Environment, Index, Lookup, Publish, Selection};

/// A site of 150 distributions (three pages, four buckets of keys, a few
/// groups) and one with a diagnostic, its published file and the file's
/// bytes.
struct Fixture {
    _tmp: tempfile::TempDir,
    site: PathBuf,
    root: PathBuf,
    file: PathBuf,
    bytes: Vec<u8>,
    expected: Index,
}

fn fixture() -> Fixture {
    let tmp = tempdir();
    let site = make_site(&tmp.path().join("site"), 150);
    let odd = write_dist(
        &site,
        "Odd.Name_pkg",
        "1.0rc1+local",
        &[("épcache.ünicode", "naïve", "naïve:entry")],
    );
    fs::write(
        odd.join("entry_points.txt"),
        "[épcache.ünicode]\nnaïve = naïve:entry\nthis line has no equals sign\n",
    )
    .unwrap();
    set_mtime_ago(&site, Duration::from_secs(3600));
    let root = tmp.path().join("cache");
    let cache = cache(&root);
    assert_eq!(
        cache.consult(&site).outcome.publish,
        Some(Publish::Published)
    );
    let file = index_file(&root, &site);
    let bytes = fs::read(&file).unwrap();
    let expected = scan(&site);
    assert!(
        expected.diagnostic_count() > 0,
        "no diagnostic in the fixture"
    );
    Fixture {
        _tmp: tmp,
        site,
        root,
        file,
        bytes,
        expected,
    }
}

fn cache(root: &Path) -> Cache {
    Cache::at(root).with_settle(Duration::ZERO)
}

/// Replaces a file's contents in place: same inode, so an index that has
/// it open reads the new bytes.
fn overwrite(file: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut handle = fs::OpenOptions::new().write(true).open(file).unwrap();
    handle.write_all(bytes).unwrap();
    handle.set_len(bytes.len() as u64).unwrap();
}

impl Fixture {
    /// A consult that trusts the file (its head is intact).
    fn hit(&self, cache: &Cache) -> Index {
        let consulted = cache.consult(&self.site);
        assert_eq!(
            consulted.outcome.lookup,
            Lookup::Hit,
            "{}",
            consulted.outcome
        );
        consulted.index
    }

    /// `index` found damage while answering: it says what, it answers as a
    /// scan does, and the file is healed for the next consult.
    fn check_healed(&self, cache: &Cache, index: &Index, answer: &[String], damage: &str) {
        assert_eq!(
            answer,
            every_answer(&self.expected, &self.expected),
            "{damage}: wrong answer"
        );
        assert_eq!(index, &self.expected, "{damage}: wrong answer");
        let late = index
            .late_outcome()
            .unwrap_or_else(|| panic!("{damage}: went unnoticed"));
        match &late.lookup {
            Lookup::Corrupt(why) => assert!(why.to_string().contains(damage), "{damage}: {why}"),
            other => panic!("{damage}: {other}"),
        }
        assert_eq!(
            late.publish,
            Some(Publish::Published),
            "{damage}: not healed"
        );
        let next = self.hit(cache);
        assert_eq!(
            fs::read(&self.file).unwrap().len(),
            self.bytes.len(),
            "{damage}: healed to another size"
        );
        assert_eq!(every_answer(&next, &self.expected), answer, "{damage}");
        assert!(
            next.late_outcome().is_none(),
            "{damage}: healed file damaged"
        );
    }
}

#[test]
fn a_file_truncated_after_the_consult_answers_from_a_scan_and_heals() {
    let f = fixture();
    let cache = cache(&f.root);
    let head_len = 200;
    for keep in [0, head_len, f.bytes.len() / 3, f.bytes.len() - 1] {
        let index = f.hit(&cache);
        overwrite(&f.file, &f.bytes[..keep]);
        let answer = every_answer(&index, &f.expected);
        f.check_healed(&cache, &index, &answer, "truncated");
    }
}

/// What a query read before the file was cut stays as it was read (the
/// parts are kept); what it had not read comes from the scan.
#[test]
fn parts_read_before_a_truncation_are_kept() {
    let f = fixture();
    let cache = cache(&f.root);
    let index = f.hit(&cache);
    let env = Environment::from_indexes(vec![index.clone()]);
    let group = Selection::group("console_scripts");
    let before: Vec<_> = env.entry_points(&group).collect();
    assert!(!before.is_empty());
    let rendered = |eps: &[epcache::EntryPoint<'_>]| -> Vec<String> {
        eps.iter()
            .map(|ep| format!("{} {} {:?}", ep.name, ep.value, ep.dist.name()))
            .collect()
    };
    let before_text = rendered(&before);
    overwrite(&f.file, &f.bytes[..f.bytes.len() / 2]);
    // The group's part was read: the same answer, nothing noticed yet.
    let again: Vec<_> = env.entry_points(&group).collect();
    assert_eq!(rendered(&again), before_text);
    assert!(index.late_outcome().is_none());
    // The listing was not: it finds the truncation and comes from a scan.
    assert_eq!(
        summarize(&index),
        summarize(&f.expected),
        "the listing after the truncation"
    );
    assert!(
        index.late_outcome().is_some(),
        "the truncation went unnoticed"
    );
    // Views taken before still read what they read.
    assert_eq!(rendered(&before), before_text);
    let answer = every_answer(&index, &f.expected);
    f.check_healed(&cache, &index, &answer, "truncated");
}

/// Every section and block of the file, damaged in place: the consult
/// checks only the head and trusts the file; the query that reads the
/// damaged part notices, rescans, answers right and republishes.
#[test]
fn each_damaged_part_is_found_by_the_query_that_reads_it() {
    let f = fixture();
    let cache = cache(&f.root);
    let layout = epcache::inspect(&f.bytes).unwrap();
    assert!(layout.checksum_ok);
    let mut parts = layout.sections.clone();
    parts.extend(layout.blocks.clone());
    let kinds: Vec<&str> = [
        "entry diagnostics",
        "diagnosed list",
        "group directory",
        "page directory",
        "key directory",
        "part of group",
        "page",
        "bucket",
    ]
    .to_vec();
    for kind in &kinds {
        assert!(
            parts.iter().any(|p| p.name.starts_with(kind) && p.len > 0),
            "no {kind} in the file"
        );
    }
    for part in parts.iter().filter(|p| p.len > 0) {
        let mut damaged = f.bytes.clone();
        damaged[(part.offset + part.len / 2) as usize] ^= 0x20;
        overwrite(&f.file, &damaged);
        let index = f.hit(&cache);
        let answer = every_answer(&index, &f.expected);
        // The message names the kind of part ("checksum mismatch in the
        // page", "... in the part of a group", "... in the bucket of keys").
        let kind = part.name.split(' ').next().expect("a name");
        let damage = format!("checksum mismatch in the {kind}");
        f.check_healed(&cache, &index, &answer, &damage);
    }
}

/// A file replaced by rename after the consult (a newer index published
/// by another process) is not what the open index reads: it answers as of
/// its consult, from the file it opened, without noticing anything.
#[test]
fn an_index_keeps_reading_the_file_it_opened() {
    let f = fixture();
    let cache = cache(&f.root);
    let index = f.hit(&cache);
    let before = scan(&f.site);
    write_dist(
        &f.site,
        "newcomer",
        "9.9",
        &[("console_scripts", "new", "new:main")],
    );
    set_mtime_ago(&f.site, Duration::from_secs(1800));
    let other = Cache::at(&f.root).with_settle(Duration::ZERO);
    let republished = other.consult(&f.site);
    assert_eq!(republished.outcome.lookup, Lookup::Stale);
    assert_eq!(republished.outcome.publish, Some(Publish::Published));
    assert_ne!(fs::read(&f.file).unwrap(), f.bytes, "not replaced");
    assert_eq!(
        every_answer(&index, &before),
        every_answer(&before, &before),
        "the open index changed its answer"
    );
    assert!(index.late_outcome().is_none());
    let after = cache.consult(&f.site);
    assert_eq!(after.outcome.lookup, Lookup::Hit);
    assert_eq!(after.index.len(), before.len() + 1);
}

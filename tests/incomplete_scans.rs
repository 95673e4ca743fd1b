//! A scan that could not read everything is never published.
//!
//! When a read fails for any reason other than "not found" (too many open
//! files, permission denied, an I/O error), the scan's index is missing
//! distributions' names, versions or entry points. The process that made
//! it still gets that answer, with its diagnostics, but no index file is
//! written — neither a normal one nor, from `rebuild`, a provisional one —
//! so that a later healthy process scans again and sees everything.
//!
//! Real processes meet real limits here: the binary runs under a tiny
//! descriptor limit (`prlimit --nofile`), and as `nobody` (via `setpriv`)
//! beside a `*.dist-info` it may not read. Diagnostics that come from the
//! files' content (a line without `=`, bytes that are not UTF-8) are not
//! failures to read: those indexes are still published.

mod common;

use std::fs;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Distributions in the sites under test.
const COUNT: usize = 40;

/// Descriptor limits tried, from one too small for the dynamic loader to
/// ones that leave the scan plenty. Somewhere in between the listing works
/// but opening a distribution's files fails with EMFILE; exactly where
/// depends on what the binary (and its reader threads) hold open, so every
/// limit is tried.
const NOFILE_LIMITS: RangeInclusive<u32> = 3..=16;

/// How long ago the settled sites last changed.
const LONG_AGO: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------
// Helpers

/// A site of [`COUNT`] distributions whose directory changed long ago, so
/// that a consult with settle time zero publishes a normal index.
fn settled_site(tmp: &Path) -> PathBuf {
    let site = make_site(&tmp.join("site"), COUNT);
    set_mtime_ago(&site, LONG_AGO);
    site
}

/// `args SITE` with the cache off: the answer a fresh scan gives.
fn fresh_answer(args: &[&str], site: &Path) -> String {
    let mut cmd = Command::new(BIN);
    cmd.env("EPCACHE_DISABLE", "1").env_remove("EPCACHE_DIR");
    stdout_text(&run_ok(cmd.args(args).arg(site)))
}

fn stdout_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The JSON a run printed, if it printed any.
fn json_of(output: &Output) -> Option<Value> {
    serde_json::from_slice(&output.stdout).ok()
}

/// Whether a diagnostic says the descriptor table was full (EMFILE, or
/// ENFILE for the whole system).
fn is_out_of_descriptors(diagnostic: &str) -> bool {
    ["os error 24", "os error 23", "Too many open files"]
        .iter()
        .any(|sign| diagnostic.contains(sign))
}

/// `(distributions, entry points)` as `rebuild --json` reports them.
fn rebuilt_counts(rebuilt: &Value) -> (u64, u64) {
    let row = first(rebuilt);
    let count = |field: &str| {
        row[field]
            .as_u64()
            .unwrap_or_else(|| panic!("no {field} count in {rebuilt}"))
    };
    (count("distributions"), count("entry_points"))
}

/// The queries a healthy process makes; each must match a fresh scan.
const QUERIES: [&[&str]; 3] = [
    &["distributions", "--json"],
    &["entry-points", "--json"],
    &["entry-points", "--json", "--group", "console_scripts"],
];

/// Runs every query through the cache with `cmd` and compares it with a
/// fresh scan; `context` says what happened before.
fn assert_answers_match_a_fresh_scan(cmd: impl Fn() -> Command, site: &Path, context: &str) {
    for args in QUERIES {
        let cached = stdout_text(&run_ok(cmd().args(args).arg(site)));
        let fresh = fresh_answer(args, site);
        assert!(
            cached == fresh,
            "{context}: a healthy `{}` answered differently from a fresh scan \
             (an incomplete index was published and trusted); {}",
            args.join(" "),
            first_difference(&cached, &fresh)
        );
    }
}

/// Asserts that a run whose scan was incomplete left no index file.
fn assert_not_published(cache_root: &Path, site: &Path, context: &str) {
    let file = index_file(cache_root, site);
    assert!(
        !file.exists(),
        "{context}: the incomplete scan was published as {}",
        file.display()
    );
}

// ---------------------------------------------------------------------------
// Too many open files

fn have_tool(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The binary under a descriptor limit of `nofile`, with the given cache
/// root and settle time.
fn with_nofile(nofile: u32, cache_root: &Path, settle_secs: &str) -> Command {
    let template = epcache_settle(cache_root, settle_secs);
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--nofile={nofile}:{nofile}"))
        .arg("--")
        .arg(BIN)
        .stdin(Stdio::null());
    for (key, value) in template.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    cmd
}

#[test]
fn a_scan_that_ran_out_of_descriptors_is_not_published() {
    if !have_tool("prlimit") {
        println!("skipped: prlimit is not installed, so no descriptor limit can be set");
        return;
    }
    let tmp = tempdir();
    let site = settled_site(tmp.path());
    let mut listed_but_unread = Vec::new();
    for nofile in NOFILE_LIMITS {
        let cache_root = tmp.path().join(format!("cache-{nofile}"));
        let context = format!("`distributions --json` under --nofile={nofile}");
        let faulty = run(with_nofile(nofile, &cache_root, "0")
            .args(["distributions", "--json"])
            .arg(&site));
        let Some(answer) = json_of(&faulty) else {
            // Too few descriptors to start at all: nothing was scanned.
            assert_not_published(&cache_root, &site, &context);
            continue;
        };
        let listed = summarize_json(&answer).len();
        let failed_reads = json_diagnostics(&answer)
            .into_iter()
            .filter(|d| is_out_of_descriptors(d))
            .count();
        if listed == COUNT && failed_reads > 0 {
            listed_but_unread.push(nofile);
        }
        if listed < COUNT || failed_reads > 0 {
            assert_not_published(&cache_root, &site, &context);
        }
        assert_answers_match_a_fresh_scan(|| epcache_settle(&cache_root, "0"), &site, &context);
    }
    assert!(
        !listed_but_unread.is_empty(),
        "no descriptor limit in {NOFILE_LIMITS:?} let the listing work while \
         opening metadata failed; the test proved nothing"
    );
    println!("listed but could not read files under --nofile={listed_but_unread:?}");
}

#[test]
fn a_rebuild_that_ran_out_of_descriptors_publishes_nothing() {
    if !have_tool("prlimit") {
        println!("skipped: prlimit is not installed, so no descriptor limit can be set");
        return;
    }
    let tmp = tempdir();
    // A settled site with settle time zero publishes a normal index; a
    // fresh one with a long settle time, a provisional one.
    let settled = settled_site(tmp.path());
    let fresh = make_site(&tmp.path().join("fresh-site"), COUNT);
    for (site, settle) in [(&settled, "0"), (&fresh, "3600")] {
        let expected = rebuilt_counts(&run_json(
            epcache(&tmp.path().join("unused"))
                .env("EPCACHE_DISABLE", "1")
                .args(["rebuild", "--json"])
                .arg(site),
        ));
        let mut incomplete = Vec::new();
        for nofile in NOFILE_LIMITS {
            let cache_root = tmp.path().join(format!("cache-{settle}-{nofile}"));
            let context = format!(
                "`rebuild` of {} with settle time {settle} under --nofile={nofile}",
                site.display()
            );
            let faulty = run(with_nofile(nofile, &cache_root, settle)
                .args(["rebuild", "--json"])
                .arg(site));
            let counts = json_of(&faulty).map(|rebuilt| rebuilt_counts(&rebuilt));
            if counts != Some(expected) {
                if counts.is_some() {
                    incomplete.push(nofile);
                }
                assert_not_published(&cache_root, site, &context);
            }
            assert_answers_match_a_fresh_scan(
                || epcache_settle(&cache_root, settle),
                site,
                &context,
            );
        }
        assert!(
            !incomplete.is_empty(),
            "no descriptor limit in {NOFILE_LIMITS:?} made `rebuild` of {} \
             (settle {settle}) read less than everything; the test proved nothing",
            site.display()
        );
    }
}

// ---------------------------------------------------------------------------
// Permission denied

/// Which part of one distribution `nobody` is kept from reading.
const UNREADABLE: [&str; 3] = ["", "METADATA", "entry_points.txt"];

/// An empty cache root owned by `nobody`.
fn nobodys_cache(tmp: &Path, name: &str) -> PathBuf {
    let root = tmp.join(name);
    fs::create_dir(&root).unwrap();
    chmod(&root, 0o700);
    chown(&root, NOBODY);
    root
}

#[test]
fn a_scan_denied_one_distribution_is_not_published() {
    if !require_root("a_scan_denied_one_distribution_is_not_published") {
        return;
    }
    if !have_tool("setpriv") {
        println!("skipped: needs setpriv to run the binary as another user");
        return;
    }
    let tmp = tempdir();
    let site = settled_site(tmp.path());
    let bin = binary_for_nobody(tmp.path());
    let dist = site.join(dist_dir_name("pkg003", "1.3.0"));
    for (i, part) in UNREADABLE.into_iter().enumerate() {
        let target = dist.join(part);
        let old_mode = mode(&target);
        for command in ["distributions", "rebuild"] {
            let cache_root = nobodys_cache(tmp.path(), &format!("cache-{i}-{command}"));
            let context = format!("`{command}` as nobody with {} unreadable", target.display());
            chmod(&target, 0);
            let faulty = run(epcache_as_nobody(&bin, &cache_root)
                .args([command, "--json"])
                .arg(&site));
            chmod(&target, old_mode);
            if command == "distributions" {
                let denied = json_diagnostics(&json_of(&faulty).unwrap_or_default())
                    .into_iter()
                    .any(|d| d.contains("os error 13"));
                assert!(
                    denied,
                    "{context}: no EACCES diagnostic: {}",
                    describe(&faulty)
                );
            }
            assert_not_published(&cache_root, &site, &context);
            assert_answers_match_a_fresh_scan(
                || epcache_as_nobody(&bin, &cache_root),
                &site,
                &context,
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Content diagnostics

/// A site whose files hold text importlib would choke on: an entry point
/// line without `=`, and bytes that are not UTF-8 in METADATA and in
/// entry_points.txt.
fn site_with_bad_content(site: &Path) {
    make_site(site, 5);
    let no_equals = write_dist(
        site,
        "noequals",
        "1.0",
        &[("console_scripts", "ok", "ok:main")],
    );
    fs::write(
        no_equals.join("entry_points.txt"),
        "[console_scripts]\nok = ok:main\nthis line has no equals sign\n",
    )
    .unwrap();
    let bad_bytes = write_dist(
        site,
        "badbytes",
        "2.0",
        &[("console_scripts", "bb", "bb:main")],
    );
    let mut metadata = b"Metadata-Version: 2.1\nName: badbytes\nSummary: caf\xe9\n".to_vec();
    metadata.extend_from_slice(b"Version: 2.0\n\nbody \xff\xfe\n");
    fs::write(bad_bytes.join("METADATA"), metadata).unwrap();
    fs::write(
        bad_bytes.join("entry_points.txt"),
        b"[console_scripts]\nbb = bb:main\nbad = caf\xe9:main\n",
    )
    .unwrap();
}

/// `status --json` of one path entry: its verdict.
fn verdict(cmd: &mut Command, site: &Path) -> String {
    let status = run_json(cmd.args(["status", "--json"]).arg(site));
    first(&status)["verdict"]
        .as_str()
        .unwrap_or_else(|| panic!("no verdict in {status}"))
        .to_owned()
}

#[test]
fn indexes_with_content_diagnostics_are_still_published() {
    let tmp = tempdir();
    let settled = tmp.path().join("site");
    site_with_bad_content(&settled);
    set_mtime_ago(&settled, LONG_AGO);
    let fresh = tmp.path().join("fresh-site");
    site_with_bad_content(&fresh);

    let all = ["distributions", "--json"];
    let scanned = fresh_answer(&all, &settled);
    let found = json_diagnostics(&serde_json::from_str(&scanned).unwrap());
    for (file, problem) in [
        ("METADATA", "not valid UTF-8"),
        ("entry_points.txt", "not valid UTF-8"),
        ("entry_points.txt", "no '='"),
    ] {
        assert!(
            found
                .iter()
                .any(|d| d.starts_with(file) && d.contains(problem)),
            "no {file} diagnostic saying {problem:?}: {found:?}"
        );
    }

    // A consult publishes a normal index, and the next one is a hit.
    let root = tmp.path().join("cache");
    let first_answer = stdout_text(&run(epcache_settle(&root, "0").args(all).arg(&settled)));
    assert_eq!(first_answer, scanned);
    assert!(
        index_file(&root, &settled).is_file(),
        "nothing was published"
    );
    assert_eq!(verdict(&mut epcache_settle(&root, "0"), &settled), "hit");
    let second_answer = stdout_text(&run(epcache_settle(&root, "0").args(all).arg(&settled)));
    assert_eq!(second_answer, scanned, "the hit lost something");

    // A rebuild of a fresh directory publishes a provisional index.
    let root = tmp.path().join("cache-provisional");
    let rebuilt = run_json(
        epcache_settle(&root, "3600")
            .args(["rebuild", "--json"])
            .arg(&fresh),
    );
    assert_eq!(
        first(&rebuilt)["publish"],
        "published-provisional",
        "{rebuilt}"
    );
    assert_eq!(
        verdict(&mut epcache_settle(&root, "3600"), &fresh),
        "hit-verified"
    );
    let answer = stdout_text(&run(epcache_settle(&root, "3600").args(all).arg(&fresh)));
    assert_eq!(answer, fresh_answer(&all, &fresh));
}

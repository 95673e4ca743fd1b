//! The cache's decision table, through the library, with timestamps set
//! explicitly: when a file is trusted, when it is rebuilt, and when a scan
//! is published.
//!
//! Setting an mtime also sets ctime to now, so tests that must publish use
//! a settle time of zero; the settle rule itself is tested with a real one.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use epcache::{scan, Cache, Lookup, Outcome, Publish};

const HOUR: Duration = Duration::from_secs(3600);

/// A site with `count` distributions whose mtime lies an hour back, and a
/// cache root beside it that does not exist yet.
fn setup(count: usize) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempdir();
    let site = make_site(&tmp.path().join("site"), count);
    set_mtime_ago(&site, HOUR);
    let root = tmp.path().join("cache");
    (tmp, site, root)
}

fn publishing(root: &Path) -> Cache {
    Cache::at(root).with_settle(Duration::ZERO)
}

fn hit() -> Outcome {
    Outcome::new(Lookup::Hit, None)
}

fn published(lookup: Lookup) -> Outcome {
    Outcome::new(lookup, Some(Publish::Published))
}

/// Consults and checks the answer against a fresh scan.
fn consult_checked(cache: &Cache, site: &Path) -> Outcome {
    let consulted = cache.consult(site);
    let expected = scan(site);
    assert_eq!(
        summarize(&consulted.index),
        summarize(&expected),
        "wrong answer ({})",
        consulted.outcome
    );
    assert_eq!(consulted.index, expected);
    consulted.outcome
}

/// Makes sure the next change to `path` gets a ctime other than the one it
/// has now, however coarse the file system clock.
fn next_tick() {
    std::thread::sleep(Duration::from_millis(30));
}

#[test]
fn fresh_publish_then_hit() {
    let (_tmp, site, root) = setup(6);
    let cache = publishing(&root);
    let file = index_file(&root, &site);
    assert!(!file.exists());

    assert_eq!(consult_checked(&cache, &site), published(Lookup::NoFile));
    assert!(file.is_file(), "nothing was published");
    assert_eq!(consult_checked(&cache, &site), hit());
    // Another process (a new Cache) hits too, even with the default settle
    // time: settling matters for publishing only.
    assert_eq!(consult_checked(&Cache::at(&root), &site), hit());

    // The binary agrees and reports the hit.
    let status = run_json(epcache(&root).arg("status").arg("--json").arg(&site));
    assert_eq!(first(&status)["verdict"], "hit", "{status}");
    assert_eq!(first(&status)["distributions"], 6, "{status}");
    let dists = run_json(epcache(&root).args(["distributions", "--json"]).arg(&site));
    assert_eq!(summarize_json(&dists), summarize(&scan(&site)));
}

#[test]
fn adding_or_removing_a_distribution_makes_the_file_stale() {
    let (_tmp, site, root) = setup(4);
    let cache = publishing(&root);
    assert_eq!(consult_checked(&cache, &site), published(Lookup::NoFile));
    let before = summarize(&cache.consult(&site).index);

    write_dist(
        &site,
        "added",
        "2.0",
        &[("console_scripts", "added", "added:main")],
    );
    assert_eq!(consult_checked(&cache, &site), published(Lookup::Stale));
    let after = cache.consult(&site);
    assert_eq!(after.outcome, hit());
    assert_ne!(summarize(&after.index), before);
    assert!(after
        .index
        .distributions()
        .any(|d| d.name() == Some("added")));

    fs::remove_dir_all(site.join(dist_dir_name("added", "2.0"))).unwrap();
    assert_eq!(consult_checked(&cache, &site), published(Lookup::Stale));
    let removed = cache.consult(&site);
    assert_eq!(removed.outcome, hit());
    assert_eq!(summarize(&removed.index), before);
}

#[test]
fn an_mtime_moved_backwards_is_stale() {
    let (_tmp, site, root) = setup(4);
    let cache = publishing(&root);
    let published_at = mtime(&site);
    assert_eq!(consult_checked(&cache, &site), published(Lookup::NoFile));

    // A branch switch or a restore: new contents, and an mtime *earlier*
    // than the one in the file.
    write_dist(
        &site,
        "older",
        "0.1",
        &[("console_scripts", "older", "older:main")],
    );
    set_mtime(&site, published_at - HOUR);
    assert!(mtime(&site) < published_at);
    assert_eq!(consult_checked(&cache, &site), published(Lookup::Stale));
    assert_eq!(consult_checked(&cache, &site), hit());
}

#[test]
fn a_directory_changed_within_the_settle_time_is_not_published() {
    let tmp = tempdir();
    let site = make_site(&tmp.path().join("site"), 3);
    let root = tmp.path().join("cache");
    let file = index_file(&root, &site);

    // Just modified, default-like settle time of 10 s.
    let cache = Cache::at(&root).with_settle(Duration::from_secs(10));
    let consulted = cache.consult(&site);
    assert_eq!(consulted.index, scan(&site));
    assert_eq!(consulted.outcome.lookup, Lookup::NoFile);
    match consulted.outcome.publish {
        Some(Publish::TooFresh { remaining }) => {
            assert!(remaining > Duration::ZERO && remaining <= Duration::from_secs(10))
        }
        other => panic!("expected TooFresh, got {other:?}"),
    }
    assert!(!file.exists(), "a too-fresh scan was published");
    assert!(list_tree(&root.join(versioned_name())).is_empty());

    let status = run_json(
        epcache_settle(&root, "10")
            .arg("status")
            .arg("--json")
            .arg(&site),
    );
    assert_eq!(
        first(&status)["settledness"]["state"],
        "too-fresh",
        "{status}"
    );
    assert_eq!(first(&status)["verdict"], "no-file", "{status}");

    // Once the settle time has passed without a change, it publishes.
    let cache = Cache::at(&root).with_settle(Duration::from_millis(300));
    let remaining = match cache.consult(&site).outcome.publish {
        Some(Publish::TooFresh { remaining }) => remaining,
        // A slow machine may already be past 300 ms.
        Some(Publish::Published) => Duration::ZERO,
        other => panic!("unexpected {other:?}"),
    };
    if !file.exists() {
        std::thread::sleep(remaining + Duration::from_millis(50));
        assert_eq!(consult_checked(&cache, &site), published(Lookup::NoFile));
    }
    assert_eq!(consult_checked(&cache, &site), hit());
}

#[test]
fn a_future_mtime_is_never_published() {
    let (_tmp, site, root) = setup(3);
    set_mtime(&site, SystemTime::now() + HOUR);
    let file = index_file(&root, &site);

    // Even with no settle time at all.
    let cache = publishing(&root);
    for _ in 0..2 {
        let consulted = cache.consult(&site);
        assert_eq!(consulted.index, scan(&site));
        assert_eq!(consulted.outcome.lookup, Lookup::NoFile);
        match consulted.outcome.publish {
            Some(Publish::InFuture { ahead }) => {
                assert!(
                    ahead > Duration::from_secs(3000) && ahead <= HOUR,
                    "{ahead:?}"
                )
            }
            other => panic!("expected InFuture, got {other:?}"),
        }
        assert!(!file.exists(), "an index with a future mtime was published");
    }
    // `status` says why nothing is published.
    let status = run_json(
        epcache_settle(&root, "0")
            .arg("status")
            .arg("--json")
            .arg(&site),
    );
    let status = first(&status);
    assert_eq!(status["settledness"]["state"], "in-future", "{status}");
    assert!(
        status["settledness"]["seconds"].as_f64().unwrap() > 3000.0,
        "{status}"
    );
    assert_eq!(status["verdict"], "no-file", "{status}");
    assert!(!file.exists());

    // Not even an installer's rebuild publishes: a provisional file would
    // never settle, and the timestamp needs a person's attention.
    let rebuilt = cache.rebuild(&site);
    assert_eq!(rebuilt.index, scan(&site));
    assert!(
        matches!(rebuilt.outcome.publish, Some(Publish::InFuture { .. })),
        "{}",
        rebuilt.outcome
    );
    assert!(!file.exists(), "a rebuild published a future-dated entry");

    // Changing it brings the timestamp back to now, and it publishes.
    write_dist(
        &site,
        "later",
        "1.0",
        &[("console_scripts", "later", "l:main")],
    );
    assert_eq!(consult_checked(&cache, &site), published(Lookup::NoFile));
    assert_eq!(consult_checked(&cache, &site), hit());
}

#[test]
fn a_tree_restored_with_the_same_mtime_is_detected() {
    let tmp = tempdir();
    let site = make_site(&tmp.path().join("site"), 5);
    let t0 = set_mtime_ago(&site, HOUR);
    let backup = tmp.path().join("backup");
    cp_a(&site, &backup);
    assert_eq!(mtime(&backup), t0, "cp -a did not preserve the mtime");
    let root = tmp.path().join("cache");
    let cache = publishing(&root);

    // The live tree moves on to state B, but keeps the mtime t0 (say, a
    // build with SOURCE_DATE_EPOCH); B is published under that mtime.
    write_dist(
        &site,
        "only-in-b",
        "1.0",
        &[("console_scripts", "b", "b:main")],
    );
    set_mtime(&site, t0);
    assert_eq!(consult_checked(&cache, &site), published(Lookup::NoFile));
    assert_eq!(consult_checked(&cache, &site), hit());
    let state_b = summarize(&scan(&site));

    // Then the backup of state A (same mtime, new inode and ctime) is
    // restored at the same path. Trusting the mtime would answer B. The
    // new inode names another index file, so B's is not even read.
    fs::remove_dir_all(&site).unwrap();
    fs::rename(&backup, &site).unwrap();
    assert_eq!(mtime(&site), t0);
    let consulted = cache.consult(&site);
    assert_eq!(consulted.outcome, published(Lookup::NoFile));
    assert_eq!(consulted.index, scan(&site));
    assert_ne!(summarize(&consulted.index), state_b);
    assert!(!consulted
        .index
        .distributions()
        .any(|d| d.name() == Some("only-in-b")));
    assert_eq!(consult_checked(&cache, &site), hit());

    // In place: same inode, contents changed, mtime put back exactly. Only
    // ctime tells.
    let t1 = mtime(&site);
    next_tick();
    write_dist(
        &site,
        "sneaky",
        "1.0",
        &[("console_scripts", "sneaky", "s:main")],
    );
    set_mtime(&site, t1);
    assert_eq!(mtime(&site), t1);
    assert_eq!(consult_checked(&cache, &site), published(Lookup::Stale));
    assert_eq!(consult_checked(&cache, &site), hit());
}

#[test]
fn a_file_of_another_path_entry_is_not_trusted() {
    let tmp = tempdir();
    let site = make_site(&tmp.path().join("site"), 4);
    let other = tmp.path().join("other");
    make_site(&other, 2);
    write_dist(
        &other,
        "elsewhere",
        "1.0",
        &[("console_scripts", "x", "x:main")],
    );
    set_mtime_ago(&site, HOUR);
    set_mtime_ago(&other, HOUR);
    let root = tmp.path().join("cache");
    let cache = publishing(&root);
    assert_eq!(consult_checked(&cache, &site), published(Lookup::NoFile));
    assert_eq!(consult_checked(&cache, &other), published(Lookup::NoFile));

    let site_file = index_file(&root, &site);
    fs::copy(index_file(&root, &other), &site_file).unwrap();
    let consulted = cache.consult(&site);
    assert_eq!(consulted.outcome, published(Lookup::PathDiffers));
    assert_eq!(consulted.index, scan(&site));
    assert_eq!(consult_checked(&cache, &site), hit());
    assert_eq!(consult_checked(&cache, &other), hit());
}

/// Changing the directory while a large scan runs: the scan's answer is
/// returned but never published. A mutator toggles a file every
/// millisecond, so the key changes during (almost) every scan of 300
/// distributions; the test asks only for one such scan in many tries.
#[test]
fn a_change_during_the_scan_is_not_published() {
    let tmp = tempdir();
    let site = make_big_site(&tmp.path().join("site"), 300);
    let root = tmp.path().join("cache");
    let file = index_file(&root, &site);
    let expected = scan(&site);
    let cache = publishing(&root);
    let stop = AtomicBool::new(false);
    let mut outcomes = Vec::new();

    std::thread::scope(|s| {
        s.spawn(|| {
            let marker = site.join("marker.txt");
            while !stop.load(Ordering::Relaxed) {
                fs::write(&marker, "x").unwrap();
                std::thread::sleep(Duration::from_millis(1));
                fs::remove_file(&marker).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let _ = fs::remove_file(&file);
            let consulted = cache.rebuild(&site);
            // A plain file is not metadata: every state has the same answer.
            assert_eq!(consulted.index, expected);
            assert_eq!(consulted.outcome.lookup, Lookup::Skipped);
            let publish = consulted.outcome.publish.clone().unwrap();
            match publish {
                Publish::ChangedDuringScan => {
                    assert!(!file.exists(), "published although changed during the scan");
                    outcomes.push(publish);
                    break;
                }
                Publish::Published => outcomes.push(publish),
                other => panic!("unexpected {other:?}"),
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(
        outcomes.last(),
        Some(&Publish::ChangedDuringScan),
        "no change during a scan in {} tries",
        outcomes.len()
    );
}

/// A venv recreated at the same path has a new inode, so a new index file
/// name: the old file is never read again, and `prune` removes it while
/// keeping the new one (and the files of entries that did not change).
#[test]
fn a_recreated_path_entry_gets_a_new_file_and_prune_removes_the_old() {
    let tmp = tempdir();
    let site = make_site(&tmp.path().join("site"), 4);
    let other = make_site(&tmp.path().join("other"), 2);
    let root = tmp.path().join("cache");
    let cache = publishing(&root);
    assert_eq!(consult_checked(&cache, &site), published(Lookup::NoFile));
    assert_eq!(consult_checked(&cache, &other), published(Lookup::NoFile));
    let old_file = index_file(&root, &site);
    let other_file = index_file(&root, &other);

    // Built beside the old one and renamed into place, as `python -m venv`
    // into a temporary name would: the old inode is still in use when the
    // new directory is made, so the numbers differ. (A directory made
    // right after the old one was removed often gets its inode back; then
    // the name stays and the key's ctime tells the two apart.)
    let replacement = make_site(&tmp.path().join("site.new"), 3);
    fs::remove_dir_all(&site).unwrap();
    fs::rename(&replacement, &site).unwrap();
    let new_file = index_file(&root, &site);
    assert_ne!(new_file, old_file, "the inode is part of the name");
    assert_eq!(consult_checked(&cache, &site), published(Lookup::NoFile));
    assert_eq!(consult_checked(&cache, &site), hit());

    let report = cache
        .dir()
        .unwrap()
        .prune(Duration::from_secs(3600))
        .unwrap();
    assert_eq!(report.orphaned, 1, "{report:?}");
    assert!(!old_file.exists(), "the old entry's file was kept");
    assert!(new_file.exists() && other_file.exists());
    assert_eq!(consult_checked(&cache, &site), hit());
    assert_eq!(consult_checked(&cache, &other), hit());
}

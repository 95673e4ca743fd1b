//! Provisional indexes: what an installer's rebuild publishes inside the
//! settle window, and how readers verify, reject and promote them.
//!
//! Real directories, real timestamps and the real binary where processes
//! matter. Nothing here asserts a timing.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::churn::{explain, states_during, Churn};
use epcache::Key;
use epcache::{Cache, Lookup, Publish};

const BIN: &str = env!("CARGO_BIN_EXE_epcache");

fn add_dist(site: &Path, name: &str) {
    let dir = site.join(format!("{name}-1.0.dist-info"));
    fs::create_dir(&dir).unwrap();
    fs::write(
        dir.join("METADATA"),
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n\n"),
    )
    .unwrap();
    fs::write(
        dir.join("entry_points.txt"),
        format!("[console_scripts]\n{name} = {name}:main\n"),
    )
    .unwrap();
}

fn names(index: &epcache::Index) -> BTreeSet<String> {
    index
        .distributions()
        .filter_map(|d| d.name().map(str::to_owned))
        .collect()
}

/// Name and entry points of each distribution, in order.
type Summary = Vec<(Option<String>, Vec<(String, String, String)>)>;

fn summary(index: &epcache::Index) -> Summary {
    index
        .distributions()
        .map(|d| {
            let eps = d
                .entry_points()
                .map(|e| (e.group.into(), e.name.into(), e.value.into()))
                .collect();
            (d.name().map(Into::into), eps)
        })
        .collect()
}

fn epcache(cache_root: &Path, settle: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("EPCACHE_DIR", cache_root)
        .env("EPCACHE_SETTLE_SECS", settle)
        .env_remove("EPCACHE_DISABLE")
        .output()
        .expect("run epcache")
}

fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "epcache failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("epcache printed JSON")
}

struct Fixture {
    _tmp: tempfile::TempDir,
    site: PathBuf,
    cache: PathBuf,
}

fn fixture(dists: &[&str]) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site-packages");
    fs::create_dir(&site).unwrap();
    for name in dists {
        add_dist(&site, name);
    }
    let cache = tmp.path().join("cache");
    Fixture {
        _tmp: tmp,
        site,
        cache,
    }
}

#[test]
fn install_then_rebuild_publishes_a_provisional_index_that_readers_verify() {
    let f = fixture(&["alpha", "beta"]);
    // The "install": a new distribution appears just before the rebuild.
    add_dist(&f.site, "gamma");
    let site = f.site.to_str().unwrap();

    let rebuilt = json(&epcache(&f.cache, "10", &["rebuild", "--json", site]));
    assert_eq!(rebuilt[0]["publish"], "published-provisional", "{rebuilt}");

    let status = json(&epcache(&f.cache, "10", &["status", "--json", site]));
    assert_eq!(status[0]["verdict"], "hit-verified", "{status}");
    assert_eq!(status[0]["provisional"], true);
    assert_eq!(status[0]["fingerprint_entries"], 3);
    assert_eq!(status[0]["settledness"]["state"], "too-fresh");

    let eps = json(&epcache(&f.cache, "10", &["entry-points", "--json", site]));
    let got: BTreeSet<_> = eps
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, ["alpha", "beta", "gamma"].map(String::from).into());

    let cache = Cache::at(&f.cache).with_settle(Duration::from_secs(10));
    let consulted = cache.consult(&f.site);
    assert_eq!(consulted.outcome.lookup, Lookup::HitVerified { entries: 3 });
    assert_eq!(
        consulted.outcome.publish, None,
        "an unsettled provisional file is not promoted"
    );
    assert_eq!(summary(&consulted.index), summary(&epcache::scan(&f.site)));
}

#[test]
fn an_ordinary_consult_never_publishes_inside_the_window() {
    let f = fixture(&["alpha"]);
    let cache = Cache::at(&f.cache).with_settle(Duration::from_secs(10));
    let consulted = cache.consult(&f.site);
    assert!(
        matches!(consulted.outcome.publish, Some(Publish::TooFresh { .. })),
        "{:?}",
        consulted.outcome
    );
    assert!(!cache.index_file(&f.site).unwrap().exists());
}

/// Replaces the key stored in an index file's head and fixes the head's
/// checksum, following the layout in `docs/format.md`: the key at offsets
/// 32..64 (mtime, ctime, inode, size, little-endian), the head checksum at
/// 8..16 (xxh3-64 of bytes 16 to the end of the head), and the head's
/// length `104 + 24 × section_count + path_len` (those two counts at 100
/// and 96).
fn rewrite_key(bytes: &[u8], key: Key) -> Vec<u8> {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let head_len = 104 + 24 * u32_at(100) + u32_at(96);
    let mut out = bytes.to_vec();
    let fields = [
        key.mtime_ns.to_le_bytes(),
        key.ctime_ns.to_le_bytes(),
        key.inode.to_le_bytes(),
        key.size.to_le_bytes(),
    ];
    for (i, field) in fields.iter().enumerate() {
        out[32 + 8 * i..40 + 8 * i].copy_from_slice(field);
    }
    let sum = xxhash_rust::xxh3::xxh3_64(&out[16..head_len]);
    out[8..16].copy_from_slice(&sum.to_le_bytes());
    out
}

#[test]
fn a_change_the_key_cannot_see_is_caught_by_the_fingerprint() {
    let f = fixture(&["alpha", "beta"]);
    let cache = Cache::at(&f.cache).with_settle(Duration::from_secs(10));
    let rebuilt = cache.rebuild(&f.site);
    assert!(matches!(
        rebuilt.outcome.publish,
        Some(Publish::PublishedProvisional { .. })
    ));

    // The listing changes; then the stored key is made to equal the new key,
    // as if both changes had happened within one clock tick.
    add_dist(&f.site, "sneaky");
    let file = cache.index_file(&f.site).unwrap();
    let forged = rewrite_key(&fs::read(&file).unwrap(), Key::observe(&f.site).unwrap());
    fs::write(&file, forged).unwrap();

    let consulted = cache.consult(&f.site);
    assert_eq!(consulted.outcome.lookup, Lookup::FingerprintMismatch);
    assert!(names(&consulted.index).contains("sneaky"));
    assert_eq!(summary(&consulted.index), summary(&epcache::scan(&f.site)));
}

#[test]
fn a_file_added_inside_a_metadata_directory_is_caught_too() {
    let f = fixture(&["alpha"]);
    let cache = Cache::at(&f.cache).with_settle(Duration::from_secs(10));
    fs::remove_file(f.site.join("alpha-1.0.dist-info/entry_points.txt")).unwrap();
    cache.rebuild(&f.site);
    // An installer finishing its write after the rebuild: the directory's
    // own key does not change, the dist-info's timestamps do.
    fs::write(
        f.site.join("alpha-1.0.dist-info/entry_points.txt"),
        "[g]\nlate = m:f\n",
    )
    .unwrap();
    let consulted = cache.consult(&f.site);
    assert_eq!(consulted.outcome.lookup, Lookup::FingerprintMismatch);
    let eps: Vec<_> = consulted
        .index
        .distributions()
        .flat_map(|d| {
            d.entry_points()
                .map(|e| e.name.to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(eps, ["late"]);
}

#[test]
fn the_first_verified_consult_after_settling_promotes_the_file() {
    let f = fixture(&["alpha", "beta"]);
    let settle = Duration::from_millis(1500);
    let cache = Cache::at(&f.cache).with_settle(settle);
    let rebuilt = cache.rebuild(&f.site);
    assert!(
        matches!(
            rebuilt.outcome.publish,
            Some(Publish::PublishedProvisional { .. })
        ),
        "{:?}",
        rebuilt.outcome
    );
    assert!(matches!(
        cache.consult(&f.site).outcome.lookup,
        Lookup::HitVerified { .. }
    ));

    let key = Key::observe(&f.site).unwrap();
    wait_until_settled(&key, settle);
    let promoted = cache.consult(&f.site);
    assert_eq!(promoted.outcome.lookup, Lookup::HitVerified { entries: 2 });
    assert_eq!(promoted.outcome.publish, Some(Publish::Promoted));

    let later = cache.consult(&f.site);
    assert_eq!(
        later.outcome.lookup,
        Lookup::Hit,
        "promoted files skip verification"
    );
    assert_eq!(cache.status(&f.site).fingerprint_entries, None);
    assert_eq!(summary(&later.index), summary(&epcache::scan(&f.site)));
}

fn wait_until_settled(key: &Key, settle: Duration) {
    let newest = key.newest_change_ns();
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        if now - newest > settle.as_nanos() as i64 + 50_000_000 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Consults and rebuilds race an installer for a few seconds with a settle
/// time long enough that rebuilds publish provisional files. Every answer
/// is a state the tree was in while that consult ran (less distributions
/// removed while it read them), never an older one a provisional file
/// still describes, and once the tree settles every consult equals a
/// fresh scan.
///
/// The installer changes one whole distribution at a time by rename, as
/// `tests/concurrency.rs` does (see `common::churn`): a file written in
/// place inside a `*.dist-info` in the same timestamp tick as a
/// fingerprint is what provisional files cannot see (docs/design.md).
#[test]
fn churn_with_provisional_rebuilds_converges() {
    let f = fixture(&["base0", "base1", "base2"]);
    let settle = "1";
    let mut churn = Churn::new(&f.site, f._tmp.path(), names(&epcache::scan(&f.site)));
    let stop = Arc::new(AtomicBool::new(false));

    let workers: Vec<_> = (0..6)
        .map(|i| {
            let (site, cache, stop) = (f.site.clone(), f.cache.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut answers, mut provisional) = (Vec::new(), 0);
                let site = site.to_str().unwrap().to_owned();
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    let command = if (round + i) % 3 == 0 {
                        "rebuild"
                    } else {
                        "distributions"
                    };
                    round += 1;
                    let start = Instant::now();
                    let output = epcache(&cache, settle, &[command, "--json", &site]);
                    let end = Instant::now();
                    let value = json(&output);
                    if command == "distributions" {
                        let got: BTreeSet<String> = value
                            .as_array()
                            .unwrap()
                            .iter()
                            .filter_map(|d| d["name"].as_str().map(str::to_owned))
                            .collect();
                        answers.push((start, end, got));
                    } else if value[0]["publish"] == "published-provisional" {
                        provisional += 1;
                    }
                }
                (answers, provisional)
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(3);
    let mut n = 0;
    while Instant::now() < deadline {
        churn.add(&format!("churn{n}"));
        std::thread::sleep(Duration::from_millis(15));
        if n % 2 == 1 {
            churn.remove(&format!("churn{}", n - 1));
        }
        n += 1;
        std::thread::sleep(Duration::from_millis(15));
    }
    stop.store(true, Ordering::Relaxed);

    let changes = churn.changes();
    let (mut answered, mut exact, mut published) = (0, 0, 0);
    for worker in workers {
        let (answers, provisional) = worker.join().unwrap();
        published += provisional;
        for (start, end, answer) in answers {
            answered += 1;
            match explain(changes, start, end, &answer) {
                Some(is_state) => exact += usize::from(is_state),
                None => panic!(
                    "an answer no state during its consult explains: {answer:?}\n\
                     states then: {:?}",
                    states_during(changes, start, end)
                ),
            }
        }
    }
    eprintln!(
        "provisional churn: {} changes, {answered} answers ({exact} exactly a state), \
         {published} provisional files published",
        changes.len() - 1
    );
    assert!(answered > 0);
    assert!(published > 0, "no rebuild published a provisional file");

    wait_until_settled(&Key::observe(&f.site).unwrap(), Duration::from_secs(1));
    let fresh = summary(&epcache::scan(&f.site));
    let cache = Cache::at(&f.cache).with_settle(Duration::from_secs(1));
    for _ in 0..3 {
        assert_eq!(summary(&cache.consult(&f.site).index), fresh);
    }
    assert!(
        cache.consult(&f.site).outcome.is_hit(),
        "a settled entry is served from the cache"
    );
    let site = f.site.to_str().unwrap();
    for _ in 0..3 {
        let listed = json(&epcache(&f.cache, "1", &["distributions", "--json", site]));
        let got: BTreeSet<String> = listed
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["name"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(&got, churn.state());
    }
}

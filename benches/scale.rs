//! How a query's cost grows with the size of the environment.
//!
//! ```text
//! cargo bench --bench scale
//! EPCACHE_SCALE_SIZES=400,2000,10000 cargo bench --bench scale
//! ```
//!
//! For 400, 2,000, 10,000 and 100,000 generated distributions
//! (`scripts/gen-site-packages.py --light`, kept in `target/bench-scale/`
//! and reused), with each index published, it measures:
//!
//! * in the process: a warm `entry_points(group="pytest11")` (consult plus
//!   query), a warm `version(name)`, a warm full listing (every
//!   distribution's name and version), and a cold scan;
//! * whole processes: `epcache entry-points --group pytest11 DIR` answered
//!   from the index, against `epcache --version` (the process floor); and
//!   the same for a group whose answer has the same size in every tree
//!   (`epcache.scale.probe`: one distribution with three entry points,
//!   added to each generated tree), which shows what the size of the
//!   environment alone costs. (pytest11's answer grows with the tree: 46
//!   rows at 400 distributions, 1,033 at 10,000.)
//!
//! Sizes are interleaved within each round and the figures are medians, so
//! the ratios to 400 come from one run under the same conditions. Under
//! `cargo test` it runs once on two small trees as a smoke test.

mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use epcache::{Cache, Environment, Selection};

const DEFAULT_SIZES: &[usize] = &[400, 2_000, 10_000, 100_000];
const SMOKE_SIZES: &[usize] = &[40, 80];

struct Tree {
    count: usize,
    dir: PathBuf,
    cache: Cache,
    index_len: u64,
    /// A distribution from the middle of the listing, for `version()`.
    probe_name: String,
}

fn sizes() -> Vec<usize> {
    if !common::bench_mode() {
        return SMOKE_SIZES.to_vec();
    }
    match std::env::var("EPCACHE_SCALE_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|s| s.trim().parse().expect("EPCACHE_SCALE_SIZES: numbers"))
            .collect(),
        Err(_) => DEFAULT_SIZES.to_vec(),
    }
}

/// The light tree of `count` distributions, generated once and reused.
fn tree_dir(count: usize) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-scale");
    let dir = root.join(format!("site-{count}"));
    let done = root.join(format!("site-{count}.done"));
    if !done.exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-site-packages.py");
        let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
        let status = Command::new(python)
            .arg(script)
            .arg(&dir)
            .args(["--light", "--count", &count.to_string()])
            .status()
            .expect("cannot run python3 scripts/gen-site-packages.py");
        assert!(status.success(), "gen-site-packages.py failed");
        std::fs::write(&done, "").unwrap();
    }
    add_probe(&dir);
    dir
}

/// The group whose answer is the same in every tree.
const PROBE_GROUP: &str = "epcache.scale.probe";

/// Adds (once) the distribution that declares [`PROBE_GROUP`].
fn add_probe(dir: &Path) {
    let probe = dir.join("zz_scale_probe-1.0.dist-info");
    if probe.join("entry_points.txt").exists() {
        return;
    }
    std::fs::create_dir_all(&probe).unwrap();
    std::fs::write(
        probe.join("METADATA"),
        "Metadata-Version: 2.1\nName: zz-scale-probe\nVersion: 1.0\n",
    )
    .unwrap();
    std::fs::write(
        probe.join("entry_points.txt"),
        format!("[{PROBE_GROUP}]\none = probe:one\ntwo = probe:two\nthree = probe:three\n"),
    )
    .unwrap();
}

fn prepare(count: usize) -> Tree {
    let dir = tree_dir(count);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-scale")
        .join(format!("cache-{count}"));
    let _ = std::fs::remove_dir_all(&root);
    let cache = Cache::at(&root).with_settle(Duration::ZERO);
    let published = cache.rebuild(&dir);
    assert!(published.index.is_complete(), "{}", dir.display());
    assert!(
        cache.consult(&dir).outcome.is_hit(),
        "the index was not published"
    );
    let index_len = cache
        .index_file(&dir)
        .and_then(|f| std::fs::metadata(f).ok())
        .map_or(0, |m| m.len());
    let names: Vec<String> = published
        .index
        .distributions()
        .filter_map(|d| d.name().map(str::to_owned))
        .collect();
    Tree {
        count,
        dir,
        cache,
        index_len,
        probe_name: names[names.len() / 2].clone(),
    }
}

fn group_query(tree: &Tree) -> usize {
    let consulted = tree.cache.consult(&tree.dir);
    let env = Environment::from_indexes(vec![consulted.index]);
    env.entry_points(&Selection::group("pytest11")).count()
}

fn version_query(tree: &Tree) -> Option<String> {
    let consulted = tree.cache.consult(&tree.dir);
    let env = Environment::from_indexes(vec![consulted.index]);
    env.version(&tree.probe_name).map(str::to_owned)
}

fn full_listing(tree: &Tree) -> usize {
    let consulted = tree.cache.consult(&tree.dir);
    consulted
        .index
        .distributions()
        .map(|d| d.name().map_or(0, str::len) + d.version().map_or(0, str::len))
        .sum()
}

fn time<R>(f: impl FnOnce() -> R) -> Duration {
    let started = Instant::now();
    black_box(f());
    started.elapsed()
}

fn process(args: &[&str]) -> Duration {
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_epcache"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("cannot run epcache");
    let elapsed = started.elapsed();
    assert!(status.success(), "epcache {args:?} failed");
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

const KINDS: [&str; 6] = ["group", "version", "listing", "process", "cold", "probe"];

fn main() {
    let sizes = sizes();
    let (rounds, cold_rounds) = if common::bench_mode() {
        (31, 5)
    } else {
        (3, 1)
    };
    let trees: Vec<Tree> = sizes.iter().map(|&n| prepare(n)).collect();
    // [tree][kind] -> samples
    let mut samples = vec![vec![Vec::new(); KINDS.len()]; trees.len()];
    let mut floor = Vec::new();
    for round in 0..rounds {
        floor.push(process(&["--version"]));
        for (t, tree) in trees.iter().enumerate() {
            let dir = tree.dir.to_str().expect("UTF-8 path");
            let cache_root = tree.cache.dir().unwrap().root().to_owned();
            samples[t][0].push(time(|| group_query(tree)));
            samples[t][1].push(time(|| version_query(tree)));
            samples[t][2].push(time(|| full_listing(tree)));
            let group_process = |group: &str| {
                let started = Instant::now();
                let status = Command::new(env!("CARGO_BIN_EXE_epcache"))
                    .args(["entry-points", "--group", group, dir])
                    .env("EPCACHE_DIR", &cache_root)
                    .stdout(Stdio::null())
                    .status()
                    .expect("cannot run epcache");
                assert!(status.success());
                started.elapsed()
            };
            samples[t][3].push(group_process("pytest11"));
            samples[t][5].push(group_process(PROBE_GROUP));
            if round < cold_rounds {
                samples[t][4].push(time(|| epcache::scan(&tree.dir)));
            }
        }
    }
    let floor = median(floor);
    let medians: Vec<Vec<Duration>> = samples
        .into_iter()
        .map(|kinds| kinds.into_iter().map(median).collect())
        .collect();
    println!("scale: medians of {rounds} interleaved rounds ({cold_rounds} for cold scans); x = relative to {}", sizes[0]);
    println!(
        "  whole-process floor (`epcache --version`): {}",
        common::human(floor)
    );
    println!(
        "{:>8} {:>10}  {:>16} {:>16} {:>16} {:>18} {:>18} {:>16}",
        "dists",
        "index",
        "warm group",
        "warm version",
        "warm listing",
        "process group",
        "process 3 eps",
        "cold scan"
    );
    for (tree, m) in trees.iter().zip(&medians) {
        let rel = |k: usize| m[k].as_secs_f64() / medians[0][k].as_secs_f64();
        println!(
            "{:>8} {:>8} KB  {:>9} {:>5.2}x {:>9} {:>5.2}x {:>9} {:>5.2}x {:>11} {:>5.2}x {:>11} {:>5.2}x {:>9} {:>5.1}x",
            tree.count,
            tree.index_len / 1024,
            common::human(m[0]),
            rel(0),
            common::human(m[1]),
            rel(1),
            common::human(m[2]),
            rel(2),
            common::human(m[3]),
            rel(3),
            common::human(m[5]),
            rel(5),
            common::human(m[4]),
            rel(4),
        );
    }
}

//! Median timings of epcache's cold scan, warm consult and the floor, as
//! one line of JSON, for `scripts/compare.py`.
//!
//! ```text
//! cargo run --release --example timings -- [DIR] [--samples N] [--processes N]
//! ```
//!
//! Without `DIR` (or `EPCACHE_BENCH_SITE`), a 400-distribution tree is
//! generated with `scripts/gen-site-packages.py`. The index is published
//! into a private temporary cache (settle time zero) and a consult is
//! checked to be a hit. Then two kinds of figures are taken:
//!
//! * in process, the three routines interleaved, so that background noise
//!   spreads evenly over them (median of `--samples`):
//!   * `cold_scan_ns`: `epcache::scan(DIR)`;
//!   * `warm_consult_ns`: `Cache::consult(DIR)` answered from the file;
//!   * `floor_ns`: `std::fs::metadata(DIR)` plus `std::fs::read(index file)`;
//! * the same three as the first and only call in a fresh process
//!   (`first_*_ns`, median of `--processes` runs of this binary), which is
//!   what a command-line tool pays and what importlib's first
//!   `entry_points()` call is compared with. Process start-up is not
//!   included: the child times the call itself.

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--once") {
        once(&args[1..]);
        return;
    }
    let mut samples = 301usize;
    let mut processes = 21usize;
    let mut dir = std::env::var_os("EPCACHE_BENCH_SITE").map(PathBuf::from);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut number = || {
            args.next()
                .and_then(|s| s.parse::<usize>().ok())
                .filter(|&n| n > 0)
                .unwrap_or_else(|| usage())
        };
        match arg.as_str() {
            "--samples" => samples = number(),
            "--processes" => processes = number(),
            "-h" | "--help" => usage(),
            path if !path.starts_with('-') => dir = Some(PathBuf::from(path)),
            _ => usage(),
        }
    }
    let site = common::site_packages_at(dir, common::DEFAULT_COUNT);
    let dir = &site.dir;
    let warm = common::warm(dir);
    let (dists, entry_points) = {
        let index = epcache::scan(dir);
        (index.len(), index.entry_point_count())
    };

    // Fresh processes first, while this process is still small.
    let mut firsts: [Vec<u64>; 3] = Default::default();
    for _ in 0..processes {
        for (i, what) in ["floor", "consult", "scan"].into_iter().enumerate() {
            firsts[i].push(run_once(what, dir, &warm));
        }
    }
    let first = firsts.map(|mut t| {
        t.sort_unstable();
        t[t.len() / 2]
    });

    let medians = common::floor_warm_cold(dir, &warm, samples);
    let index_bytes = std::fs::metadata(&warm.index_file).map_or(0, |m| m.len());
    let report = serde_json::json!({
        "path_entry": dir,
        "distributions": dists,
        "entry_points": entry_points,
        "index_file_bytes": index_bytes,
        "samples": samples,
        "floor_ns": medians[0].as_nanos() as u64,
        "warm_consult_ns": medians[1].as_nanos() as u64,
        "cold_scan_ns": medians[2].as_nanos() as u64,
        "processes": processes,
        "first_floor_ns": first[0],
        "first_warm_consult_ns": first[1],
        "first_cold_scan_ns": first[2],
    });
    println!("{report}");
}

/// Runs this binary with `--once WHAT` and returns the nanoseconds it
/// reports.
fn run_once(what: &str, dir: &Path, warm: &common::Warm) -> u64 {
    let exe = std::env::current_exe().expect("the path of this binary");
    let out = Command::new(exe)
        .arg("--once")
        .arg(what)
        .arg(dir)
        .arg(&warm.cache_root)
        .arg(&warm.index_file)
        .output()
        .expect("running a child timing process");
    assert!(
        out.status.success(),
        "child `--once {what}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the child prints nanoseconds")
}

/// Child mode: `--once floor|consult|scan DIR CACHE_ROOT INDEX_FILE` times
/// one call, the first of its kind in this process, and prints nanoseconds.
fn once(args: &[String]) {
    let [what, dir, cache_root, index_file] = args else {
        usage()
    };
    let dir = Path::new(dir);
    let cache = epcache::Cache::at(cache_root).with_settle(Duration::ZERO);
    let start = Instant::now();
    match what.as_str() {
        "floor" => {
            let meta = std::fs::metadata(dir).unwrap();
            let bytes = std::fs::read(index_file).unwrap();
            black_box((meta, bytes));
        }
        "consult" => {
            let consulted = cache.consult(dir);
            let elapsed = start.elapsed();
            assert!(consulted.outcome.is_hit(), "{}", consulted.outcome);
            println!("{}", elapsed.as_nanos());
            return;
        }
        "scan" => {
            black_box(epcache::scan(dir));
        }
        _ => usage(),
    }
    println!("{}", start.elapsed().as_nanos());
}

fn usage() -> ! {
    eprintln!("usage: timings [DIR] [--samples N] [--processes N]");
    std::process::exit(2)
}

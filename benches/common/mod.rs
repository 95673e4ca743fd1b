//! Shared set-up for the benchmarks and `examples/timings.rs`: a generated
//! site-packages directory and a small median-of-N timer.
//!
//! The tree comes from `scripts/gen-site-packages.py`, which is
//! deterministic, so every run measures byte-identical input. Set
//! `EPCACHE_BENCH_SITE=DIR` to measure an existing directory instead
//! (`scripts/compare.py` does this so that Python and Rust see the same
//! tree), and `EPCACHE_BENCH_COUNT=N` to change the size (default 400).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Default number of distributions in the generated tree.
pub const DEFAULT_COUNT: usize = 400;

/// The size used when the benches run as smoke tests under `cargo test`.
pub const SMOKE_COUNT: usize = 40;

/// A site-packages directory to measure, deleted on drop when generated.
pub struct Site {
    /// The path entry.
    pub dir: PathBuf,
    /// Keeps the generated tree alive; `None` for `EPCACHE_BENCH_SITE`.
    _temp: Option<tempfile::TempDir>,
}

/// The directory named by `EPCACHE_BENCH_SITE`, or a freshly generated one.
///
/// Exits the process with a message when the tree cannot be generated
/// (most likely: no `python3`), since nothing can be measured without it.
pub fn site_packages() -> Site {
    let count = if bench_mode() {
        DEFAULT_COUNT
    } else {
        SMOKE_COUNT
    };
    site_packages_at(
        std::env::var_os("EPCACHE_BENCH_SITE").map(PathBuf::from),
        count,
    )
}

/// `dir` when given (it must exist), otherwise a freshly generated tree of
/// `EPCACHE_BENCH_COUNT` or else `default_count` distributions.
pub fn site_packages_at(dir: Option<PathBuf>, default_count: usize) -> Site {
    if let Some(dir) = dir {
        let dir = std::path::absolute(dir).expect("absolute path");
        if !dir.is_dir() {
            fail(&format!("{} is not a directory", dir.display()));
        }
        return Site { dir, _temp: None };
    }
    let count = std::env::var("EPCACHE_BENCH_COUNT")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(default_count);
    let temp = tempfile::Builder::new()
        .prefix("epcache-bench-")
        .tempdir()
        .unwrap_or_else(|e| fail(&format!("cannot create a temporary directory: {e}")));
    let dir = temp.path().join("site-packages");
    generate(&dir, count);
    Site {
        dir,
        _temp: Some(temp),
    }
}

/// Runs `scripts/gen-site-packages.py DIR --count N`.
fn generate(dir: &Path, count: usize) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-site-packages.py");
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let status = Command::new(&python)
        .arg(&script)
        .arg(dir)
        .arg("--count")
        .arg(count.to_string())
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => fail(&format!(
            "{} {} failed ({status})",
            python.to_string_lossy(),
            script.display()
        )),
        Err(e) => fail(&format!(
            "cannot run {} to generate the benchmark tree: {e}\n\
             (install python3, set PYTHON=/path/to/python3, or point \
             EPCACHE_BENCH_SITE at an existing site-packages)",
            python.to_string_lossy()
        )),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("epcache bench: {message}");
    std::process::exit(2)
}

/// Whether the binary runs as a benchmark (`cargo bench`) rather than as a
/// quick smoke test (`cargo test --all-targets` runs benches without
/// `--bench`).
pub fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Median of per-call times: `samples` samples, each timing `batch` calls
/// and dividing. Several routines are interleaved sample by sample, so that
/// noise from other processes spreads evenly over all of them.
pub fn interleaved_medians(
    samples: usize,
    routines: &mut [(&str, usize, &mut dyn FnMut())],
) -> Vec<Duration> {
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(samples); routines.len()];
    // One untimed warm-up round.
    for (_, _, f) in routines.iter_mut() {
        f();
    }
    for _ in 0..samples {
        for (i, (_, batch, f)) in routines.iter_mut().enumerate() {
            let start = Instant::now();
            for _ in 0..*batch {
                f();
            }
            times[i].push(start.elapsed() / *batch as u32);
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort_unstable();
            t[t.len() / 2]
        })
        .collect()
}

/// A duration in the most readable unit.
pub fn human(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// A private cache holding a freshly published index for `dir`, checked to
/// answer the next consult from the file.
pub struct Warm {
    /// The cache, with settle time zero so that the new tree publishes.
    pub cache: epcache::Cache,
    /// The index file the cache keeps for `dir`.
    pub index_file: PathBuf,
    /// The cache root `cache` was opened at.
    pub cache_root: PathBuf,
    _root: tempfile::TempDir,
}

/// Publishes the index of `dir` into a new private cache and checks that a
/// consult is then a hit with the same answer as a scan.
pub fn warm(dir: &Path) -> Warm {
    let root = tempfile::Builder::new()
        .prefix("epcache-bench-cache-")
        .tempdir()
        .unwrap_or_else(|e| fail(&format!("cannot create a temporary directory: {e}")));
    let cache_root = root.path().join("cache");
    let cache = epcache::Cache::at(&cache_root).with_settle(Duration::ZERO);
    let rebuilt = cache.rebuild(dir);
    assert_eq!(
        rebuilt.outcome.publish,
        Some(epcache::Publish::Published),
        "publishing the benchmark index: {}",
        rebuilt.outcome
    );
    let consulted = cache.consult(dir);
    assert!(
        consulted.outcome.is_hit(),
        "a consult after publishing must hit, got: {}",
        consulted.outcome
    );
    assert_eq!(
        consulted.index,
        epcache::scan(dir),
        "hit differs from a scan"
    );
    let index_file = cache.index_file(dir).expect("the cache is enabled");
    Warm {
        cache,
        index_file,
        cache_root,
        _root: root,
    }
}

/// Medians of the floor (`stat` of `dir` plus reading the index file), a
/// warm consult and a cold scan, interleaved sample by sample:
/// `[floor, warm, cold]`.
pub fn floor_warm_cold(dir: &Path, warm: &Warm, samples: usize) -> [Duration; 3] {
    use std::hint::black_box;
    let mut floor = || {
        let meta = std::fs::metadata(black_box(dir)).unwrap();
        let bytes = std::fs::read(black_box(&warm.index_file)).unwrap();
        black_box((meta, bytes));
    };
    let mut consult = || {
        let consulted = warm.cache.consult(black_box(dir));
        assert!(consulted.outcome.is_hit());
        black_box(consulted);
    };
    let mut cold = || {
        black_box(epcache::scan(black_box(dir)));
    };
    let medians = interleaved_medians(
        samples,
        &mut [
            ("floor", 20, &mut floor),
            ("warm", 20, &mut consult),
            ("cold", 1, &mut cold),
        ],
    );
    [medians[0], medians[1], medians[2]]
}

//! Issue 5's benchmark: a consult of a provisional index (verified by one
//! listing plus a stat per metadata entry) against a cold scan and a
//! settled hit, measured in one run on one generated tree.
//!
//! ```text
//! cargo bench --bench provisional
//! ```
//!
//! The provisional file is made the way an installer makes it: `rebuild`
//! with a settle time longer than the tree's age. Target: the provisional
//! consult costs under a third of a cold scan.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode};
use epcache::{Cache, Lookup, Publish};

/// A cache whose settle time the tree never reaches during the run, so its
/// rebuild is provisional and every consult verifies.
struct Provisional {
    cache: Cache,
    _root: tempfile::TempDir,
}

fn provisional(dir: &std::path::Path) -> Provisional {
    let root = tempfile::Builder::new()
        .prefix("epcache-bench-provisional-")
        .tempdir()
        .expect("temporary directory");
    let cache = Cache::at(root.path().join("cache")).with_settle(Duration::from_secs(24 * 3600));
    let rebuilt = cache.rebuild(dir);
    assert!(
        matches!(
            rebuilt.outcome.publish,
            Some(Publish::PublishedProvisional { .. })
        ),
        "expected a provisional publish, got: {}",
        rebuilt.outcome
    );
    let consulted = cache.consult(dir);
    assert!(
        matches!(consulted.outcome.lookup, Lookup::HitVerified { .. }),
        "expected a verified hit, got: {}",
        consulted.outcome
    );
    assert_eq!(
        consulted.index,
        epcache::scan(dir),
        "verified hit differs from a scan"
    );
    Provisional { cache, _root: root }
}

fn bench(c: &mut Criterion, site: &common::Site, warm: &common::Warm, prov: &Provisional) {
    let dir = &site.dir;
    let mut group = c.benchmark_group("provisional");
    group.bench_function("settled-hit", |b| {
        b.iter(|| warm.cache.consult(black_box(dir)))
    });
    group.bench_function("provisional-hit", |b| {
        b.iter(|| prov.cache.consult(black_box(dir)))
    });
    group.sampling_mode(SamplingMode::Flat).sample_size(30);
    group.bench_function("cold-scan", |b| b.iter(|| epcache::scan(black_box(dir))));
    group.finish();
}

/// The same three, interleaved in one loop, so the ratio comes from one run.
fn ratios(site: &common::Site, warm: &common::Warm, prov: &Provisional) {
    let dir = &site.dir;
    let mut settled = || {
        black_box(warm.cache.consult(black_box(dir)));
    };
    let mut verified = || {
        black_box(prov.cache.consult(black_box(dir)));
    };
    let mut cold = || {
        black_box(epcache::scan(black_box(dir)));
    };
    let medians = common::interleaved_medians(
        201,
        &mut [
            ("settled", 20, &mut settled),
            ("provisional", 5, &mut verified),
            ("cold", 1, &mut cold),
        ],
    );
    let [settled, verified, cold] = medians[..] else {
        unreachable!()
    };
    let entries = match prov.cache.consult(dir).outcome.lookup {
        Lookup::HitVerified { entries } => entries,
        other => panic!("expected a verified hit, got {other}"),
    };
    let share = verified.as_secs_f64() / cold.as_secs_f64();
    println!();
    println!("provisional consult (interleaved median of 201 samples, same process):");
    println!("  settled hit:                  {}", common::human(settled));
    println!(
        "  provisional hit (1 listing + {entries} stats): {}",
        common::human(verified)
    );
    println!("  cold scan:                    {}", common::human(cold));
    println!(
        "  provisional/cold = {share:.3} (target < 0.333: {})",
        if share < 1.0 / 3.0 { "met" } else { "MISSED" }
    );
    println!(
        "  provisional/settled = {:.1}x",
        verified.as_secs_f64() / settled.as_secs_f64()
    );
}

fn main() {
    let site = common::site_packages();
    let warm = common::warm(&site.dir);
    let prov = provisional(&site.dir);
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion, &site, &warm, &prov);
    criterion.final_summary();
    if common::bench_mode() {
        ratios(&site, &warm, &prov);
    }
}

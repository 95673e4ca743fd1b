//! Warm consult against the floor and against a cold scan (issue 3's
//! benchmark), measured in one run on one generated tree.
//!
//! ```text
//! cargo bench --bench consult
//! ```
//!
//! * `floor`: `std::fs::metadata(DIR)` plus `std::fs::read` of the index
//!   file, the least any mtime-validated cache can do;
//! * `warm`: `Cache::consult(DIR)` answering from a published index file;
//! * `cold`: `epcache::scan(DIR)`.
//!
//! Criterion measures each. Afterwards an interleaved median-of-N loop in
//! the same process prints the ratios warm/floor (target ≤ 3) and cold/warm,
//! so that they come from one run under the same conditions.

mod common;

use std::hint::black_box;

use criterion::{Criterion, SamplingMode};

fn consult(c: &mut Criterion, site: &common::Site, warm: &common::Warm) {
    let dir = &site.dir;
    let mut group = c.benchmark_group("consult");
    group.bench_function("floor", |b| {
        b.iter(|| {
            let meta = std::fs::metadata(black_box(dir)).unwrap();
            let bytes = std::fs::read(black_box(&warm.index_file)).unwrap();
            (meta, bytes)
        })
    });
    group.bench_function("warm", |b| {
        b.iter(|| {
            let consulted = warm.cache.consult(black_box(dir));
            debug_assert!(consulted.outcome.is_hit());
            consulted
        })
    });
    // Milliseconds per call: flat sampling keeps the run to seconds.
    group.sampling_mode(SamplingMode::Flat).sample_size(30);
    group.bench_function("cold", |b| b.iter(|| epcache::scan(black_box(dir))));
    group.finish();
}

/// The same three routines, interleaved, median of per-call times.
fn ratios(site: &common::Site, warm: &common::Warm) {
    let dir = &site.dir;
    let [floor, warm_t, cold] = common::floor_warm_cold(dir, warm, 301);
    let file_len = std::fs::metadata(&warm.index_file).map_or(0, |m| m.len());
    println!();
    println!("consult ratios (interleaved median of 301 samples, same process):");
    println!(
        "  floor (stat + read {file_len} B index): {}",
        common::human(floor)
    );
    println!(
        "  warm consult:                    {}",
        common::human(warm_t)
    );
    println!("  cold scan:                       {}", common::human(cold));
    let warm_floor = warm_t.as_secs_f64() / floor.as_secs_f64();
    let cold_warm = cold.as_secs_f64() / warm_t.as_secs_f64();
    println!(
        "  warm/floor = {warm_floor:.2}x (target <= 3x: {})",
        if warm_floor <= 3.0 { "met" } else { "MISSED" }
    );
    println!("  cold/warm  = {cold_warm:.1}x");
}

fn main() {
    let site = common::site_packages();
    let warm = common::warm(&site.dir);
    eprintln!(
        "consult bench: {} -> {}",
        site.dir.display(),
        warm.index_file.display()
    );
    let mut criterion = Criterion::default().configure_from_args();
    consult(&mut criterion, &site, &warm);
    criterion.final_summary();
    if common::bench_mode() {
        ratios(&site, &warm);
    }
}

//! Cold scan of a generated site-packages (issue 2's benchmark).
//!
//! ```text
//! cargo bench --bench scan
//! ```
//!
//! `scripts/gen-site-packages.py` writes 400 distributions into a temporary
//! directory at start-up; the benchmark then times `epcache::scan` on it.
//! "Cold" means no epcache cache file is involved: every call lists the
//! directory and reads every METADATA header block and entry_points.txt.
//! The operating system's page cache is warm after the first iteration, as
//! it is for importlib.metadata in `scripts/compare.py`.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use std::hint::black_box;

fn scan(c: &mut Criterion) {
    let site = common::site_packages();
    let index = epcache::scan(&site.dir);
    assert!(
        index.len() >= 300 || !common::bench_mode(),
        "the benchmark tree must hold at least 300 distributions, found {}",
        index.len()
    );
    eprintln!(
        "scan bench: {} ({} distributions, {} entry points)",
        site.dir.display(),
        index.len(),
        index.entry_point_count()
    );
    let mut group = c.benchmark_group("scan");
    group.throughput(Throughput::Elements(index.len() as u64));
    // Milliseconds per call: flat sampling keeps the run to seconds.
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("cold", |b| b.iter(|| epcache::scan(black_box(&site.dir))));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = scan
}
criterion_main!(benches);

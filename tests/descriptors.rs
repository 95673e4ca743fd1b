//! An index read from a cache file keeps that file open for as long as it
//! lives, on a descriptor numbered out of the way: a program that numbers
//! its own descriptors from the lowest free one (pytest's capture prints
//! them) sees the same numbers with epcache as without.
//!
//! One test in its own binary, so that no other test opens or closes
//! descriptors meanwhile.

mod common;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::Duration;

use common::*;
use epcache::{Cache, Lookup};

fn lowest_free(probe: &std::path::Path) -> i32 {
    File::open(probe).unwrap().as_raw_fd()
}

#[test]
fn an_open_index_leaves_the_low_descriptor_numbers_alone() {
    let tmp = tempdir();
    let site = make_site(&tmp.path().join("site"), 10);
    set_mtime_ago(&site, Duration::from_secs(3600));
    let cache = Cache::at(tmp.path().join("cache")).with_settle(Duration::ZERO);
    cache.consult(&site);
    let probe = site.join("pkg000-1.0.0.dist-info").join("METADATA");
    let before = lowest_free(&probe);
    let consulted = cache.consult(&site);
    assert_eq!(consulted.outcome.lookup, Lookup::Hit);
    assert_eq!(consulted.index.len(), 10, "the index reads its file");
    assert_eq!(
        lowest_free(&probe),
        before,
        "the index file took a low number"
    );
    drop(consulted);
    assert_eq!(lowest_free(&probe), before);
}

//! A process that cannot start another thread (a pids limit, an address
//! space too small for a thread's stack) still gets the full answer: the
//! scan and the provisional check fall back to the calling thread.
//!
//! Thread creation is made to fail by asking `std` for an absurd default
//! stack size (`RUST_MIN_STACK`), which every `mmap` of a stack refuses;
//! the calling thread, whose stack already exists, is unaffected.

mod common;

use std::process::Command;

use common::*;

/// Far more address space than any machine has.
const IMPOSSIBLE_STACK: &str = "1000000000000000";

#[test]
fn scan_without_threads_gives_the_same_answer() {
    let tmp = tempdir();
    // Enough distributions that a second reader thread is wanted.
    let site = make_big_site(&tmp.path().join("site"), 120);
    let answer = |stack: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.env("EPCACHE_DISABLE", "1").env_remove("RUST_MIN_STACK");
        if let Some(stack) = stack {
            cmd.env("RUST_MIN_STACK", stack);
        }
        let out = run_ok(cmd.args(["distributions", "--json"]).arg(&site));
        assert!(stderr_is_clean(&out.stderr), "{}", describe(&out));
        out.stdout
    };
    let threaded = answer(None);
    let alone = answer(Some(IMPOSSIBLE_STACK));
    assert_eq!(summarize_json(&parse_json(&alone)).len(), 120);
    assert_eq!(
        String::from_utf8_lossy(&alone),
        String::from_utf8_lossy(&threaded)
    );
}

#[test]
fn provisional_rebuild_and_check_without_threads() {
    let tmp = tempdir();
    let site = make_big_site(&tmp.path().join("site"), 120);
    let cache_root = tmp.path().join("cache");
    let run_alone = |args: &[&str]| {
        // A long settle time keeps the fresh directory's index provisional,
        // so the consult below must take and compare a fingerprint.
        let mut cmd = epcache_settle(&cache_root, "3600");
        cmd.env("RUST_MIN_STACK", IMPOSSIBLE_STACK);
        run_ok(cmd.args(args).arg(&site))
    };
    let rebuilt = run_alone(&["rebuild"]);
    assert!(stderr_is_clean(&rebuilt.stderr), "{}", describe(&rebuilt));
    let status = run_alone(&["status", "--json"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("provisional"), "{status}");
    let consulted = run_alone(&["distributions", "--json"]);
    assert_eq!(summarize_json(&parse_json(&consulted.stdout)).len(), 120);
}

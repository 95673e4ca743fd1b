//! A process that cannot start another thread (a pids limit, an address
//! space too small for a thread's stack) still gets the full answer: the
//! scan and the provisional check fall back to the calling thread.
//!
//! Thread creation is made to fail by asking `std` for an absurd default
//! stack size (`RUST_MIN_STACK`), which every `mmap` of a stack refuses;
//! the calling thread, whose stack already exists, is unaffected.
//!
//! That the limit held is checked, not assumed: each run goes under
//! `strace -f -e trace=clone,clone3`, which lists every thread the process
//! starts. A limited run must start none, and the same run without the
//! limit must start at least one, so that the workload really wants a
//! helper and the limited run really took the fallback. Without a working
//! `strace` the answers are still compared, and the thread counts are
//! skipped with a message.

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// Far more address space than any machine has.
const IMPOSSIBLE_STACK: &str = "1000000000000000";

/// Runs commands under `strace` to count the threads they start.
struct ThreadCounter {
    /// Where the traces go; `None` when `strace` cannot trace here.
    dir: Option<PathBuf>,
    runs: usize,
}

impl ThreadCounter {
    /// A counter writing its traces into `dir`, or one that only runs the
    /// commands when `strace` is missing or may not trace (no ptrace in a
    /// container, say), after saying so for `test`.
    fn new(dir: &Path, test: &str) -> Self {
        let probe = Command::new("strace")
            .args(["-f", "-qq", "-e", "trace=clone,clone3", "-o", "/dev/null"])
            .args(["--", "true"])
            .output();
        let why = match probe {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(format!(
                "strace cannot trace here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(err) => Some(format!("strace cannot run: {err}")),
        };
        if let Some(why) = &why {
            let _ = writeln!(
                std::io::stderr(),
                "skipping the thread counts of {test}: {why}"
            );
        }
        ThreadCounter {
            dir: why.is_none().then(|| dir.to_path_buf()),
            runs: 0,
        }
    }

    /// Runs `cmd` as [`run_ok`] does; returns its output and, when it
    /// could be traced, how many threads it started.
    fn run_ok(&mut self, cmd: &Command) -> (Output, Option<usize>) {
        let Some(dir) = &self.dir else {
            return (run_ok(&mut copy_of(cmd)), None);
        };
        self.runs += 1;
        let trace = dir.join(format!("strace-{}.txt", self.runs));
        let mut traced = Command::new("strace");
        traced
            .args(["-f", "-qq", "-e", "trace=clone,clone3", "-o"])
            .arg(&trace)
            .arg("--")
            .arg(cmd.get_program())
            .args(cmd.get_args());
        copy_env(cmd, &mut traced);
        let output = run_ok(&mut traced);
        let text = fs::read_to_string(&trace)
            .unwrap_or_else(|e| panic!("reading the trace {}: {e}", trace.display()));
        (output, Some(threads_started(&text)))
    }
}

/// A new `Command` with the program, arguments and environment of `cmd`.
fn copy_of(cmd: &Command) -> Command {
    let mut copy = Command::new(cmd.get_program());
    copy.args(cmd.get_args());
    copy_env(cmd, &mut copy);
    copy
}

fn copy_env(from: &Command, to: &mut Command) {
    for (key, value) in from.get_envs() {
        match value {
            Some(value) => to.env(key, value),
            None => to.env_remove(key),
        };
    }
}

/// How many threads an `strace -f -e trace=clone,clone3` log shows
/// started: calls with `CLONE_THREAD` that returned a thread id. Failed
/// calls (`= -1 EAGAIN`) do not count. A call that another thread
/// interrupted in the log is joined from its `<unfinished ...>` and
/// `<... resumed>` halves first.
fn threads_started(log: &str) -> usize {
    let mut unfinished: HashMap<&str, String> = HashMap::new();
    let mut started = 0;
    for line in log.lines() {
        let (pid, call) = line.split_once(char::is_whitespace).unwrap_or(("", line));
        let call = call.trim_start();
        let whole = if let Some(head) = call.strip_suffix("<unfinished ...>") {
            unfinished.insert(pid, head.to_owned());
            continue;
        } else if call.starts_with("<... ") {
            let tail = call.split_once("resumed>").map_or(call, |(_, tail)| tail);
            unfinished.remove(pid).unwrap_or_default() + tail
        } else {
            call.to_owned()
        };
        let result = whole
            .rsplit_once(") = ")
            .and_then(|(_, result)| result.split_whitespace().next())
            .and_then(|result| result.parse::<i64>().ok());
        if whole.contains("CLONE_THREAD") && result.is_some_and(|tid| tid > 0) {
            started += 1;
        }
    }
    started
}

/// Checks a limited run and its unlimited twin: no thread in the first,
/// at least one in the second (`what` names them in messages).
fn assert_limit_held(what: &str, limited: Option<usize>, unlimited: Option<usize>) {
    let (Some(limited), Some(unlimited)) = (limited, unlimited) else {
        return;
    };
    assert_eq!(
        limited, 0,
        "{what}: {limited} thread(s) started despite RUST_MIN_STACK={IMPOSSIBLE_STACK}, \
         so the run did not test the fallback"
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if unlimited == 0 && cpus == 1 {
        let _ = writeln!(
            std::io::stderr(),
            "{what}: one CPU, so no helper is wanted even without the limit; \
             the fallback is not exercised here"
        );
        return;
    }
    assert!(
        unlimited > 0,
        "{what}: without the limit no thread started either, so this run no \
         longer wants a helper and the limited run proves nothing"
    );
}

#[test]
fn scan_without_threads_gives_the_same_answer() {
    let tmp = tempdir();
    // Enough distributions that a second reader thread is wanted.
    let site = make_big_site(&tmp.path().join("site"), 120);
    let mut counter = ThreadCounter::new(tmp.path(), "scan_without_threads_gives_the_same_answer");
    let mut answer = |stack: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.env("EPCACHE_DISABLE", "1").env_remove("RUST_MIN_STACK");
        if let Some(stack) = stack {
            cmd.env("RUST_MIN_STACK", stack);
        }
        let (out, threads) = counter.run_ok(cmd.args(["distributions", "--json"]).arg(&site));
        assert!(stderr_is_clean(&out.stderr), "{}", describe(&out));
        (out.stdout, threads)
    };
    let (threaded, unlimited) = answer(None);
    let (alone, limited) = answer(Some(IMPOSSIBLE_STACK));
    assert_limit_held("distributions", limited, unlimited);
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
    let mut counter =
        ThreadCounter::new(tmp.path(), "provisional_rebuild_and_check_without_threads");
    // The same runs with and without the limit, each on a cache of its own.
    let mut run = |cache: &str, stack: Option<&str>, args: &[&str]| {
        // A long settle time keeps the fresh directory's index provisional,
        // so the consults below must take and compare a fingerprint.
        let mut cmd = epcache_settle(&tmp.path().join(cache), "3600");
        cmd.env_remove("RUST_MIN_STACK");
        if let Some(stack) = stack {
            cmd.env("RUST_MIN_STACK", stack);
        }
        let (out, threads) = counter.run_ok(cmd.args(args).arg(&site));
        assert!(stderr_is_clean(&out.stderr), "{}", describe(&out));
        (out, threads)
    };
    let mut consulted = Vec::new();
    for args in [
        &["rebuild"][..],
        &["status", "--json"][..],
        &["distributions", "--json"][..],
    ] {
        let (_, unlimited) = run("cache-threaded", None, args);
        let (out, limited) = run("cache-alone", Some(IMPOSSIBLE_STACK), args);
        assert_limit_held(&args.join(" "), limited, unlimited);
        consulted.push(out.stdout);
    }
    let status = String::from_utf8_lossy(&consulted[1]);
    assert!(status.contains("provisional"), "{status}");
    assert_eq!(summarize_json(&parse_json(&consulted[2])).len(), 120);
}

#[test]
fn thread_starts_are_read_from_strace_logs() {
    let log = "\
100   clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, \
child_tid=0x7f, parent_tid=0x7f, exit_signal=0, stack=0x7f, stack_size=0x1fff00, tls=0x7f} \
=> {parent_tid=[101]}, 88) = 101
100   clone3({flags=CLONE_VM|CLONE_THREAD, stack_size=0x1fff00} <unfinished ...>
101   read(3, \"\", 4096) = 0
100   <... clone3 resumed> => {parent_tid=[102]}, 88) = 102
100   clone3({flags=CLONE_VM|CLONE_THREAD, stack_size=0x1fff00}, 88) = -1 EAGAIN (Resource temporarily unavailable)
100   clone3({flags=CLONE_VM|CLONE_VFORK, exit_signal=SIGCHLD, stack=0x7f, stack_size=0x9000}, 88) = 103
";
    assert_eq!(threads_started(log), 2);
    assert_eq!(threads_started(""), 0);
}

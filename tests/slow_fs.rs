//! Slow and shared file systems, on the FUSE harness `examples/slowfs.rs`
//! (a passthrough that delays every operation and serves many at once).
//!
//! * Through a slow mount, a cold consult (a scan with many reads in
//!   flight) and a warm one (the index file) answer exactly as the
//!   machine's own `importlib.metadata` does on the same mount.
//! * One home shared by many machines: four "machines", each a mount
//!   namespace of its own with its own slowfs mount (so its own `st_dev`,
//!   and the source's inode numbers) at the same path, two of them serving
//!   environment A and two environment B, consult through one shared
//!   `EPCACHE_DIR`. After one scan per environment every consult on every
//!   machine is a hit, and every answer is its own environment's.
//! * Attribute caching: with a 3 s `attr_timeout`, a change made behind the
//!   mount's back (another machine's install) is seen by epcache exactly
//!   when a long-running stock process's mtime-keyed lookup sees it.
//!
//! They skip (with a message) without /dev/fuse, or without root when
//! fusermount3 is missing or /dev/fuse may not be opened; the
//! namespace test also without root, `unshare` and `nsenter`. Under CI
//! (`CI=true`) a missing harness binary or oracle fails them instead.
//! The harness must be built first (`cargo build --example slowfs`, as
//! `scripts/test.sh` does): `cargo test` builds examples only as test
//! harnesses.

mod common;
// Shared with tests/conformance.rs, which uses all of them.
#[allow(dead_code)]
#[path = "conformance/model.rs"]
mod model;
#[allow(dead_code)]
#[path = "conformance/oracle.rs"]
mod oracle;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use epcache::{Cache, Environment, Lookup, Selection};
use model::{assert_same, lib_dists, lib_eps, EpView};

/// Hang guards, not timing assertions.
const MOUNT_GUARD: Duration = Duration::from_secs(30);
const EXIT_GUARD: Duration = Duration::from_secs(10);

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1"))
}

fn skip_or_fail(test: &str, why: &str) {
    assert!(!in_ci(), "{test}: {why}");
    println!("skipped {test}: {why}");
}

// ---------------------------------------------------------------------------
// The harness

/// The slowfs binary `cargo test` built beside this test.
fn slowfs_binary() -> Option<PathBuf> {
    let test_exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/slow_fs-<hash> -> target/<profile>/examples/slowfs
    let profile_dir = test_exe.parent()?.parent()?;
    let candidate = profile_dir.join("examples").join("slowfs");
    candidate.is_file().then_some(candidate)
}

fn is_root() -> bool {
    euid() == 0
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The harness, when this machine can mount it; otherwise why not.
fn harness() -> Result<PathBuf, String> {
    if !Path::new("/dev/fuse").exists() {
        return Err("no /dev/fuse".into());
    }
    if !is_root() {
        if !have("fusermount3") {
            return Err("neither root nor fusermount3".into());
        }
        // fuser opens /dev/fuse itself before it falls back to fusermount3,
        // and gives up when it may not (a /dev/fuse of mode 0600).
        if let Err(err) = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
        {
            return Err(format!("not root, and /dev/fuse cannot be opened: {err}"));
        }
    }
    slowfs_binary().ok_or_else(|| {
        "no target/<profile>/examples/slowfs (run `cargo build --example slowfs` first)".into()
    })
}

/// The harness for `test`, and whether a Python can run there too when
/// `python` says so; `None` after saying why the test is skipped.
fn harness_for(test: &str, python: bool) -> Option<PathBuf> {
    let binary = match harness() {
        Ok(binary) => binary,
        Err(why) => {
            skip_or_fail(test, &why);
            return None;
        }
    };
    if python {
        if let Err(why) = oracle::available() {
            skip_or_fail(
                test,
                &format!("python3 (importlib.metadata) cannot run: {why}"),
            );
            return None;
        }
    }
    Some(binary)
}

/// A running slowfs mount. Dropping it stops the harness, which unmounts.
struct SlowFs {
    child: Child,
    mountpoint: PathBuf,
}

impl SlowFs {
    fn mount(binary: &Path, source: &Path, mountpoint: &Path, args: &[&str]) -> SlowFs {
        fs::create_dir_all(mountpoint).unwrap();
        let child = Command::new(binary)
            .arg(source)
            .arg(mountpoint)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut mount = SlowFs {
            child,
            mountpoint: mountpoint.to_path_buf(),
        };
        let parent_dev = fs::metadata(mountpoint.parent().unwrap()).unwrap().dev();
        let deadline = Instant::now() + MOUNT_GUARD;
        while !fs::metadata(mountpoint).is_ok_and(|m| m.dev() != parent_dev) {
            if let Some(status) = mount.child.try_wait().unwrap() {
                panic!(
                    "slowfs exited ({status}) before mounting: {}",
                    mount.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "slowfs did not mount within {MOUNT_GUARD:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
        mount
    }

    fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut err, &mut text);
        }
        text
    }
}

impl Drop for SlowFs {
    fn drop(&mut self) {
        stop(&mut self.child);
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mountpoint)
            .stderr(Stdio::null())
            .status();
    }
}

/// SIGTERM, then SIGKILL if it has not exited within [`EXIT_GUARD`].
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + EXIT_GUARD;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn oracle_eps(o: &oracle::Oracle) -> Vec<EpView> {
    o.entry_points
        .clone()
        .unwrap_or_else(|| panic!("importlib raised: {:?}", o.entry_points_error))
}

// ---------------------------------------------------------------------------
// Answers through a slow mount

#[test]
fn a_slow_mount_answers_as_stock_cold_and_warm() {
    let Some(binary) = harness_for("a_slow_mount_answers_as_stock_cold_and_warm", true) else {
        return;
    };
    let tmp = tempdir();
    let source = make_site(&tmp.path().join("site"), 48);
    set_mtime_ago(&source, Duration::from_secs(3600));
    let mnt = tmp.path().join("mnt");
    let _mount = SlowFs::mount(&binary, &source, &mnt, &["--delay-us", "200"]);

    let stock = oracle::run(std::slice::from_ref(&mnt), &[]);
    let cache = Cache::at(tmp.path().join("cache")).with_settle(Duration::ZERO);
    for (round, want_lookup) in [("cold", Lookup::NoFile), ("warm", Lookup::Hit)] {
        let consulted = cache.consult(&mnt);
        assert_eq!(consulted.outcome.lookup, want_lookup, "{round}");
        let env = Environment::from_indexes(vec![consulted.index]);
        assert_same(
            &format!("{round}: distributions()"),
            &stock.dist_views(),
            &lib_dists(&env),
        );
        assert_same(
            &format!("{round}: entry_points()"),
            &oracle_eps(&stock),
            &lib_eps(&env, &Selection::all()),
        );
    }
}

// ---------------------------------------------------------------------------
// One home shared by many machines

/// A "machine": a mount namespace of its own, made by `unshare`, in which
/// slowfs mounts one environment at the shared path. Commands run in it
/// through `nsenter`.
struct Machine {
    /// `unshare ... slowfs`, whose pid names the namespace.
    child: Child,
    name: String,
}

impl Machine {
    fn start(binary: &Path, name: &str, source: &Path, at: &Path) -> Machine {
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--"])
            .arg(binary)
            .arg(source)
            .arg(at)
            .args(["--delay-us", "50"])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run unshare");
        let mut machine = Machine {
            child,
            name: name.to_owned(),
        };
        machine.wait_until_mounted(at);
        machine
    }

    /// Polls the namespace's mount table for the slowfs mount at `at`.
    fn wait_until_mounted(&mut self, at: &Path) {
        let mountinfo = format!("/proc/{}/mountinfo", self.child.id());
        let needle = format!(" {} ", at.display());
        let deadline = Instant::now() + MOUNT_GUARD;
        loop {
            let table = fs::read_to_string(&mountinfo).unwrap_or_default();
            if table
                .lines()
                .any(|line| line.contains(&needle) && line.contains("slowfs"))
            {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!(
                    "{}: slowfs exited ({status}) before mounting: {err}",
                    self.name
                );
            }
            assert!(
                Instant::now() < deadline,
                "{}: no mount within {MOUNT_GUARD:?}",
                self.name
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// `epcache ARGS` inside this machine's namespace.
    fn epcache(&self, cache_root: &Path, args: &[&str]) -> Output {
        let ns = format!("--mount=/proc/{}/ns/mnt", self.child.id());
        let output = Command::new("nsenter")
            .arg(ns)
            .arg("--")
            .arg(BIN)
            .args(args)
            .env("EPCACHE_DIR", cache_root)
            .env("EPCACHE_SETTLE_SECS", "0")
            .env_remove("EPCACHE_DISABLE")
            .output()
            .expect("cannot run nsenter");
        assert!(
            output.status.success(),
            "{}: {}",
            self.name,
            describe(&output)
        );
        output
    }

    /// The device number this machine sees at `at`.
    fn device_of(&self, at: &Path) -> u64 {
        let ns = format!("--mount=/proc/{}/ns/mnt", self.child.id());
        let out = Command::new("nsenter")
            .arg(ns)
            .args(["--", "stat", "-c", "%d"])
            .arg(at)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // slowfs unmounts on SIGTERM; the namespace goes with the process.
        stop(&mut self.child);
    }
}

#[test]
fn machines_sharing_a_home_converge_and_never_mix_environments() {
    let test = "machines_sharing_a_home_converge_and_never_mix_environments";
    let Some(binary) = harness_for(test, false) else {
        return;
    };
    if !is_root() || !have("unshare") || !have("nsenter") {
        println!("skipped {test}: mount namespaces need root, unshare and nsenter");
        return;
    }
    let tmp = tempdir();
    let env_a = make_site(&tmp.path().join("env-a"), 30);
    let env_b = make_site(&tmp.path().join("env-b"), 17);
    write_dist(
        &env_b,
        "only-in-b",
        "2.0",
        &[("console_scripts", "b", "b:main")],
    );
    for env in [&env_a, &env_b] {
        set_mtime_ago(env, Duration::from_secs(3600));
    }
    let truth = |env: &Path| expected_entry_points(vec![epcache::scan(env)]);
    let (truth_a, truth_b) = (truth(&env_a), truth(&env_b));
    assert_ne!(truth_a, truth_b);

    // The path every machine sees its environment at, and the shared home.
    let shared_path = tmp.path().join("opt-venv");
    fs::create_dir_all(&shared_path).unwrap();
    let home_cache = tmp.path().join("home-cache");
    let machines: Vec<(Machine, &PathBuf, &Vec<SelectedEp>)> = [
        ("node1", &env_a, &truth_a),
        ("node2", &env_b, &truth_b),
        ("node3", &env_a, &truth_a),
        ("node4", &env_b, &truth_b),
    ]
    .into_iter()
    .map(|(name, env, truth)| (Machine::start(&binary, name, env, &shared_path), env, truth))
    .collect();
    let devices: Vec<u64> = machines
        .iter()
        .map(|(m, _, _)| m.device_of(&shared_path))
        .collect();
    let mut distinct = devices.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        4,
        "every machine has its own st_dev: {devices:?}"
    );

    let path = shared_path.to_str().unwrap();
    let rounds = 6;
    let (mut consults, mut hits, mut wrong) = (0, 0, 0);
    let mut misses_after_settling = Vec::new();
    for round in 0..rounds {
        for (machine, _, truth) in &machines {
            let status = parse_json(
                &machine
                    .epcache(&home_cache, &["status", "--json", path])
                    .stdout,
            );
            let hit = first(&status)["verdict"] == "hit";
            let answer = machine.epcache(&home_cache, &["entry-points", "--json", path]);
            let answer = entry_points_json(&parse_json(&answer.stdout));
            consults += 1;
            hits += usize::from(hit);
            if answer != **truth {
                wrong += 1;
            }
            if round > 0 && !hit {
                let why = &first(&status)["reason"];
                misses_after_settling.push(format!("round {round}: {}: {why}", machine.name));
            }
        }
    }
    println!(
        "shared home: {} machines, 2 environments at one path, {rounds} rounds: \
         {hits}/{consults} consults were hits, {wrong} wrong answers",
        machines.len()
    );
    assert_eq!(
        wrong, 0,
        "a machine was answered with another environment's index"
    );
    assert!(
        misses_after_settling.is_empty(),
        "after the first round every consult must be a hit:\n{}",
        misses_after_settling.join("\n")
    );
    // One scan per environment: the first machine of each in round 0.
    assert_eq!(hits, consults - 2);
}

// ---------------------------------------------------------------------------
// Attribute caching

/// A stock Python that stays up and answers `entry_points()` (the names,
/// sorted) on one path entry for every line it reads: importlib.metadata's
/// own per-process lookup, keyed on the directory's mtime, lives across
/// the queries.
struct StockProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl StockProcess {
    fn start(entry: &Path) -> StockProcess {
        let code = "import sys, importlib.metadata as m\n\
                    sys.path[:] = [sys.argv[1]]\n\
                    for _ in sys.stdin:\n\
                    \x20   print(' '.join(sorted(e.name for e in m.entry_points(group='console_scripts'))), flush=True)\n";
        let mut child = Command::new(oracle::python())
            .args(["-c", code])
            .arg(entry)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot start python");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        StockProcess {
            child,
            stdin,
            stdout,
        }
    }

    fn names(&mut self) -> Vec<String> {
        writeln!(self.stdin, "q").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.split_whitespace().map(str::to_owned).collect()
    }
}

impl Drop for StockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn epcache_names(cache: &Cache, entry: &Path) -> (Lookup, Vec<String>) {
    let consulted = cache.consult(entry);
    let env = Environment::from_indexes(vec![consulted.index]);
    let mut names: Vec<String> = env
        .entry_points(&Selection::group("console_scripts"))
        .map(|e| e.name.to_owned())
        .collect();
    names.sort();
    (consulted.outcome.lookup, names)
}

#[test]
fn inside_the_attribute_window_epcache_answers_as_a_stock_process_does() {
    let test = "inside_the_attribute_window_epcache_answers_as_a_stock_process_does";
    let Some(binary) = harness_for(test, true) else {
        return;
    };
    const WINDOW: Duration = Duration::from_secs(3);
    let tmp = tempdir();
    let source = make_site(&tmp.path().join("site"), 10);
    set_mtime_ago(&source, Duration::from_secs(3600));
    let mnt = tmp.path().join("mnt");
    let _mount = SlowFs::mount(&binary, &source, &mnt, &["--attr-timeout", "3"]);
    let cache = Cache::at(tmp.path().join("cache")).with_settle(Duration::ZERO);

    let mut stock = StockProcess::start(&mnt);
    let before = stock.names();
    let (lookup, ours) = epcache_names(&cache, &mnt);
    assert_eq!((lookup, &ours), (Lookup::NoFile, &before));
    assert_eq!(epcache_names(&cache, &mnt), (Lookup::Hit, before.clone()));

    // Another machine installs: the source changes behind the mount's back.
    write_dist(
        &source,
        "late-arrival",
        "1.0",
        &[("console_scripts", "late", "late:main")],
    );
    let changed = Instant::now();
    let (lookup, ours) = epcache_names(&cache, &mnt);
    let theirs = stock.names();
    assert!(
        changed.elapsed() < WINDOW,
        "the machine was too slow to look inside the window; nothing was checked"
    );
    assert_eq!(
        lookup,
        Lookup::Hit,
        "inside the window the key still matches"
    );
    assert_eq!(ours, before);
    assert_eq!(
        ours, theirs,
        "inside the window: epcache and the stock process agree"
    );

    // Once the cached attributes expire, both see the change.
    thread::sleep(WINDOW + Duration::from_millis(500));
    let (lookup, ours) = epcache_names(&cache, &mnt);
    let theirs = stock.names();
    assert_ne!(lookup, Lookup::Hit, "after the window the key differs");
    assert!(ours.contains(&"late".to_owned()), "{ours:?}");
    assert_eq!(
        ours, theirs,
        "after the window: epcache and the stock process agree"
    );
}

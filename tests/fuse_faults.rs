//! I/O errors from a real file system: a scan that met one is never
//! published, and the next healthy consult sees everything.
//!
//! `tests/fuse/faultfs.py` mounts a site directory through FUSE and makes
//! chosen reads fail with EIO: reading one distribution's METADATA,
//! opening its entry_points.txt, or listing the path entry itself. The
//! real binary consults the mount with settle time zero, so a complete
//! scan would be published. Each test proves that:
//!
//! * the answer still holds everything that could be read, and says what
//!   could not ("Input/output error (os error 5)");
//! * no index file is written, by the consult or by `rebuild`, which
//!   reports `"publish": "incomplete"`;
//! * once the file system is healthy again — the same mount, so the path
//!   entry's key (inode, mtime, ctime, size) is unchanged — a consult
//!   through the cache answers exactly like a fresh scan.
//!
//! The mount is healed, not remounted, so that nothing but the fault
//! changes between the two consults. Another test shows that the
//! passthrough serves the source unchanged, inode numbers and modes
//! included.
//!
//! The tests skip (with a message) without /dev/fuse, without root or
//! `fusermount3`, or without a Python that has mfusepy: the pinned test
//! venv (`bash scripts/make-venv.sh target/test-venv`) or
//! `$EPCACHE_FUSE_PYTHON`.

mod common;

use std::fs;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Distributions in the site under test.
const COUNT: usize = 12;

/// The distribution the faults hit.
const FAULTY: &str = "pkg003";

/// How long ago the site last changed.
const LONG_AGO: Duration = Duration::from_secs(3600);

/// Hang guards, not timing assertions: a run of the binary, the wait for
/// the mount to appear, and the wait for the harness to exit.
const RUN_GUARD: Duration = Duration::from_secs(120);

/// The address space a run may use: far more than any run here needs.
const MEMORY_LIMIT: u64 = 3 << 30;
const MOUNT_GUARD: Duration = Duration::from_secs(30);
const EXIT_GUARD: Duration = Duration::from_secs(10);

/// Names the Python that runs the harness, instead of the test venv's.
const PYTHON_VAR: &str = "EPCACHE_FUSE_PYTHON";

// ---------------------------------------------------------------------------
// Can FUSE run here?

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn harness() -> PathBuf {
    repo().join("tests").join("fuse").join("faultfs.py")
}

/// Whether `python` can import mfusepy (which also loads libfuse).
fn imports_mfusepy(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import mfusepy"])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The Python to run the harness with, or why there is none.
fn fuse_python() -> Result<PathBuf, String> {
    if let Some(python) = std::env::var_os(PYTHON_VAR) {
        let python = PathBuf::from(python);
        assert!(
            imports_mfusepy(&python),
            "${PYTHON_VAR} is {}, which cannot import mfusepy",
            python.display()
        );
        return Ok(python);
    }
    let venv_python = repo().join("target/test-venv/bin/python");
    if imports_mfusepy(&venv_python) {
        Ok(venv_python)
    } else {
        Err(format!(
            "{} cannot import mfusepy (run: bash scripts/make-venv.sh target/test-venv, \
             or set ${PYTHON_VAR})",
            venv_python.display()
        ))
    }
}

fn have_fusermount3() -> bool {
    Command::new("fusermount3")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Why no FUSE file system can be mounted here, if so.
fn fuse_unavailable() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("/dev/fuse does not exist".to_owned());
    }
    if euid() != 0 && !have_fusermount3() {
        return Some("not root, and fusermount3 is not installed".to_owned());
    }
    None
}

/// The Python to run the harness with, or `None` after printing why the
/// test is skipped.
fn python_or_skip() -> Option<PathBuf> {
    let python = match fuse_unavailable() {
        Some(reason) => Err(reason),
        None => fuse_python(),
    };
    python.map_err(|reason| println!("skipped: {reason}")).ok()
}

// ---------------------------------------------------------------------------
// The mount

/// A running `faultfs.py`. Dropping it stops the harness and makes sure
/// the mount is gone, whether or not the test failed.
struct FaultFs {
    child: Child,
    mountpoint: PathBuf,
    /// While this file exists the faults are injected (`--faults-while`).
    switch: PathBuf,
    /// The harness's stderr.
    log: PathBuf,
}

impl FaultFs {
    /// Mounts `source` at `mountpoint` with the faults `fault_args` armed,
    /// and waits until the mount serves. `None` (after printing why) when
    /// this machine does not let the harness mount.
    fn mount(
        python: &Path,
        source: &Path,
        mountpoint: &Path,
        fault_args: &[&str],
    ) -> Option<FaultFs> {
        let work = mountpoint.parent().unwrap();
        let switch = work.join("faults-on");
        let log = work.join("faultfs.log");
        fs::write(&switch, "").unwrap();
        let child = Command::new(python)
            .arg(harness())
            .arg(source)
            .arg(mountpoint)
            .arg("--foreground")
            .arg("--faults-while")
            .arg(&switch)
            .args(fault_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let mut fs = FaultFs {
            child,
            mountpoint: mountpoint.canonicalize().unwrap(),
            switch,
            log,
        };
        fs.wait_until_mounted().then_some(fs)
    }

    /// Polls until the mount point is on another device than its parent.
    /// `false` when the harness gave up because mounting is not permitted.
    fn wait_until_mounted(&mut self) -> bool {
        let parent_dev = fs::metadata(self.mountpoint.parent().unwrap())
            .unwrap()
            .dev();
        let deadline = Instant::now() + MOUNT_GUARD;
        loop {
            if fs::metadata(&self.mountpoint).is_ok_and(|m| m.dev() != parent_dev) {
                return true;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = self.log_text();
                if not_permitted(&log) {
                    println!("skipped: the harness may not mount here: {log}");
                    return false;
                }
                panic!("faultfs exited ({status}) before mounting: {log}");
            }
            assert!(
                Instant::now() < deadline,
                "faultfs did not mount within {MOUNT_GUARD:?}: {}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Turns the faults off; the mount stays as it is.
    fn heal(&self) {
        fs::remove_file(&self.switch).unwrap();
    }

    /// Stops the harness (SIGTERM makes it unmount and exit) and returns
    /// how it exited; `None` if it is still running after [`EXIT_GUARD`].
    fn stop(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + EXIT_GUARD;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) => thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        None
    }
}

impl Drop for FaultFs {
    fn drop(&mut self) {
        let exited = self.stop().is_some();
        if is_mounted(&self.mountpoint) {
            force_unmount(&self.mountpoint);
        }
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether the harness's complaint is that it may not mount at all.
fn not_permitted(log: &str) -> bool {
    ["Operation not permitted", "Permission denied"]
        .iter()
        .any(|sign| log.contains(sign))
}

/// Whether `path` is a mount point, from /proc/self/mountinfo, which
/// (unlike a `stat`) cannot hang on a stuck file system.
fn is_mounted(path: &Path) -> bool {
    let wanted = path.to_string_lossy();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(&*wanted))
}

/// Unmounts what the harness left behind, lazily if it is busy.
fn force_unmount(path: &Path) {
    let attempts: [(&str, &[&str]); 2] = [("fusermount3", &["-u", "-z"]), ("umount", &["-l"])];
    for (tool, args) in attempts {
        let _ = Command::new(tool)
            .args(args)
            .arg(path)
            .stderr(Stdio::null())
            .status();
        if !is_mounted(path) {
            return;
        }
    }
    eprintln!("warning: {} is still mounted", path.display());
}

/// What the cache's key sees of a path entry.
#[derive(Debug, PartialEq, Eq)]
struct Key {
    device: u64,
    inode: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    size: u64,
}

impl Key {
    fn of(path: &Path) -> Key {
        let m = fs::metadata(path).unwrap();
        let ns = |secs: i64, nsecs: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsecs);
        Key {
            device: m.dev(),
            inode: m.ino(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
            size: m.size(),
        }
    }
}

// ---------------------------------------------------------------------------
// Running the binary

/// Runs a command that must succeed with nothing but warnings on stderr,
/// killing it (and failing) if it hangs.
fn run_guarded_ok(cmd: &mut Command) -> Output {
    let (output, killed) = run_guarded(cmd, RUN_GUARD, MEMORY_LIMIT);
    assert!(!killed, "{cmd:?} did not finish within {RUN_GUARD:?}");
    assert!(
        output.status.success() && stderr_is_clean(&output.stderr),
        "{cmd:?} failed: {}",
        describe(&output)
    );
    output
}

fn stdout_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The binary through the cache at `cache_root`, settle time zero.
fn consult(cache_root: &Path, args: &[&str], path_entry: &Path) -> String {
    stdout_text(&run_guarded_ok(
        epcache_settle(cache_root, "0").args(args).arg(path_entry),
    ))
}

/// The binary with the cache off: what a fresh scan answers.
fn fresh_answer(args: &[&str], path_entry: &Path) -> String {
    let mut cmd = Command::new(BIN);
    cmd.env("EPCACHE_DISABLE", "1").env_remove("EPCACHE_DIR");
    stdout_text(&run_guarded_ok(cmd.args(args).arg(path_entry)))
}

// ---------------------------------------------------------------------------
// Answers

/// The queries a healthy consult makes; each must match a fresh scan.
const QUERIES: [&[&str]; 2] = [&["distributions", "--json"], &["entry-points", "--json"]];

/// Whether a diagnostic reports EIO.
fn is_eio(diagnostic: &str) -> bool {
    diagnostic.contains("Input/output error") || diagnostic.contains("os error 5")
}

/// The names in `distributions --json` output.
fn json_names(distributions: &Value) -> Vec<String> {
    summarize_json(distributions)
        .into_iter()
        .filter_map(|(name, ..)| name)
        .collect()
}

/// Every diagnostic an in-process scan of `path_entry` gives: the path
/// entry's own and each distribution's.
fn scan_diagnostics(path_entry: &Path) -> Vec<String> {
    let index = epcache::scan(path_entry);
    let own = index.diagnostics().map(str::to_owned);
    let per_dist: Vec<String> = index
        .distributions()
        .flat_map(|d| d.diagnostics().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    own.chain(per_dist).collect()
}

/// Asserts that no index file exists for `path_entry`.
fn assert_not_published(cache_root: &Path, path_entry: &Path, context: &str) {
    let file = index_file(cache_root, path_entry);
    assert!(
        !file.exists(),
        "{context}: the incomplete scan was published as {}",
        file.display()
    );
}

// ---------------------------------------------------------------------------
// The scenario

/// One injected fault.
struct Fault {
    /// What fails, for messages.
    what: &'static str,
    /// The harness's arguments that inject it.
    args: [&'static str; 2],
    /// Whether the other distributions can still be listed and read.
    others_readable: bool,
}

/// A site of [`COUNT`] distributions whose directory changed long ago.
fn settled_site(tmp: &Path) -> PathBuf {
    let site = make_site(&tmp.join("site"), COUNT);
    set_mtime_ago(&site, LONG_AGO);
    site
}

/// `pkg000`..: every distribution's name, but the faulty one's.
fn other_names() -> Vec<String> {
    (0..COUNT)
        .map(|i| format!("pkg{i:03}"))
        .filter(|name| name != FAULTY)
        .collect()
}

/// A settled site in a new temporary directory, served at its `mnt` by the
/// harness with `args`; `None` (with the reason printed) where FUSE or the
/// harness's Python is not available.
fn mounted_site(args: &[&str]) -> Option<(tempfile::TempDir, PathBuf, FaultFs)> {
    let python = python_or_skip()?;
    let tmp = tempdir();
    let source = settled_site(tmp.path());
    let mountpoint = tmp.path().join("mnt");
    fs::create_dir(&mountpoint).unwrap();
    let faultfs = FaultFs::mount(&python, &source, &mountpoint, args)?;
    Some((tmp, source, faultfs))
}

/// Mounts a site with `fault` armed, consults it, and checks the answer,
/// that nothing was published, and that a healthy consult sees everything.
fn check_fault(fault: &Fault) {
    let Some((tmp, source, faultfs)) = mounted_site(&fault.args) else {
        return;
    };
    let cache_root = tmp.path().join("cache");
    let mnt = faultfs.mountpoint.clone();
    let key = Key::of(&mnt);
    let context = format!("with EIO {}", fault.what);

    // (a) The answer holds what could be read, and says what could not.
    let answer = parse_json(consult(&cache_root, &["distributions", "--json"], &mnt).as_bytes());
    let names = json_names(&answer);
    if fault.others_readable {
        for name in other_names() {
            assert!(
                names.contains(&name),
                "{context}: {name} is missing: {answer}"
            );
        }
        let diagnostics = json_diagnostics(&answer);
        assert!(
            diagnostics.iter().any(|d| is_eio(d)),
            "{context}: no EIO diagnostic in the answer: {diagnostics:?}"
        );
    }
    assert!(names.len() <= COUNT, "{context}: too many names: {names:?}");

    // (b) Nothing is published, neither by that consult nor by a rebuild.
    assert_not_published(&cache_root, &mnt, &format!("{context}, a consult"));
    let rebuilt = parse_json(consult(&cache_root, &["rebuild", "--json"], &mnt).as_bytes());
    assert_eq!(
        first(&rebuilt)["publish"],
        "incomplete",
        "{context}: rebuild says {rebuilt}"
    );
    assert_not_published(&cache_root, &mnt, &format!("{context}, a rebuild"));

    // The library's own scan says what went wrong.
    let diagnostics = scan_diagnostics(&mnt);
    assert!(
        diagnostics.iter().any(|d| is_eio(d)),
        "{context}: no EIO diagnostic from epcache::scan: {diagnostics:?}"
    );

    // (c) Healed, same key: a consult through the cache answers like a
    // fresh scan, which sees everything.
    faultfs.heal();
    assert_eq!(
        Key::of(&mnt),
        key,
        "healing the mount changed the path entry's key; the test proves nothing"
    );
    for args in QUERIES {
        let cached = consult(&cache_root, args, &mnt);
        let fresh = fresh_answer(args, &mnt);
        assert!(
            cached == fresh,
            "{context}, then healed: `{}` through the cache answered differently \
             from a fresh scan (an incomplete index was published and trusted); {}",
            args.join(" "),
            first_difference(&cached, &fresh)
        );
    }
    let healed = parse_json(fresh_answer(&["distributions", "--json"], &mnt).as_bytes());
    let everything = parse_json(fresh_answer(&["distributions", "--json"], &source).as_bytes());
    assert_eq!(summarize_json(&healed), summarize_json(&everything));
    assert_eq!(summarize_json(&healed).len(), COUNT);
    assert!(
        index_file(&cache_root, &mnt).is_file(),
        "{context}, then healed: a complete scan was not published"
    );
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn eio_reading_metadata_is_not_published() {
    check_fault(&Fault {
        what: "reading pkg003's METADATA",
        args: ["--eio", "pkg003-*.dist-info/METADATA"],
        others_readable: true,
    });
}

#[test]
fn eio_opening_entry_points_is_not_published() {
    check_fault(&Fault {
        what: "opening pkg003's entry_points.txt",
        args: ["--eio-open", "pkg003-*.dist-info/entry_points.txt"],
        others_readable: true,
    });
}

#[test]
fn eio_listing_the_path_entry_is_not_published() {
    check_fault(&Fault {
        what: "listing the path entry",
        args: ["--eio", "."],
        others_readable: false,
    });
}

/// `(name, inode, is_dir, is_file)` of every entry of `dir`, sorted, as
/// the listing itself reports them (`d_ino`, `d_type`).
fn listing(dir: &Path) -> Vec<(String, u64, bool, bool)> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let kind = e.file_type().unwrap();
            (name, e.ino(), kind.is_dir(), kind.is_file())
        })
        .collect();
    entries.sort();
    entries
}

#[test]
fn faultfs_serves_the_source_unchanged() {
    let Some((_tmp, source, faultfs)) = mounted_site(&["--delay-us", "100"]) else {
        return;
    };
    let mnt = faultfs.mountpoint.clone();

    // Listings carry the source's inode numbers and types, as getdents
    // sees them, and files read the same.
    assert_eq!(listing(&mnt), listing(&source));
    let dist = dist_dir_name(FAULTY, "1.3.0");
    assert_eq!(listing(&mnt.join(&dist)), listing(&source.join(&dist)));
    let metadata = Path::new(&dist).join("METADATA");
    assert_eq!(
        fs::read(mnt.join(&metadata)).unwrap(),
        fs::read(source.join(&metadata)).unwrap()
    );
    let (in_mount, in_source) = (Key::of(&mnt), Key::of(&source));
    assert_eq!(
        (
            in_mount.inode,
            in_mount.mtime_ns,
            in_mount.ctime_ns,
            in_mount.size
        ),
        (
            in_source.inode,
            in_source.mtime_ns,
            in_source.ctime_ns,
            in_source.size
        )
    );

    // So a scan of the mount finds what a scan of the source finds.
    for args in QUERIES {
        let through_mount = parse_json(fresh_answer(args, &mnt).as_bytes());
        let direct = parse_json(fresh_answer(args, &source).as_bytes());
        if args[0] == "distributions" {
            assert_eq!(summarize_json(&through_mount), summarize_json(&direct));
        } else {
            assert_eq!(
                entry_points_json(&through_mount),
                entry_points_json(&direct)
            );
        }
    }

    // SIGTERM unmounts cleanly.
    let mut faultfs = faultfs;
    let status = faultfs.stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "faultfs did not exit cleanly on SIGTERM: {status:?}"
    );
    assert!(!is_mounted(&mnt), "faultfs exited but left {mnt:?} mounted");
    assert!(
        faultfs.log_text().is_empty(),
        "faultfs printed: {}",
        faultfs.log_text()
    );
}

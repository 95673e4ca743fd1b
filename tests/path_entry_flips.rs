//! A path entry that is a symlink, flipped `A -> B -> A` while epcache
//! scans it, must never leave B's contents cached under A's key.
//!
//! Deploy tools switch `current -> releases/N` by renaming a new symlink
//! over the old one. The key of a path entry is a `stat` that follows the
//! link, taken before and after the scan; the scan resolves the path on
//! its own. When the link points at A for both `stat`s but at B when the
//! scan opens it, the index of B is published under A's key, and every
//! later consult of `current -> A` trusts it.
//!
//! Each test builds two settled, distinct path entries (different
//! distribution names and counts), starts a separate flipper process that
//! swaps `current` between them by atomic rename as fast as it can, and
//! runs epcache on `current` until the cache file holds one side's key over
//! the other side's contents, or a cap on runs and time is reached. Then
//! the flipper stops, `current` is pointed at the side whose key the file
//! holds, and one consult of `current` must give exactly that side's fresh
//! scan. Nothing here asserts timings; the time cap only bounds the loop.
//!
//! Covered: a directory (through the real binary, and in-process through
//! the library) and a zip file on `sys.path` (through the binary).
//!
//! Not covered, because it cannot go wrong here: a zip replaced by
//! *rename* (a copy or a hard link renamed over `current.zip`) rather than
//! through a symlink. ext4 hands the freed inode number straight back, and
//! a copy keeps mtime and size, so only ctime tells `A` from `A -> B -> A`;
//! on this kernel ctime is fine-grained once it has been observed
//! (multigrain timestamps), and in 5,000 such cycles, by copy and by hard
//! link, the key after never equalled the key before. The writer refuses
//! to publish (`changed-during-scan`), and no wrong answer is cached. On a
//! kernel with coarse ctime a collision inside one clock tick would be
//! possible, but the next rename gives a new key, so it could not be
//! trusted beyond that tick.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::*;
use epcache::Cache;
use epcache::Key;

/// The tests take turns: each one keeps a flipper busy on a core, and two
/// at once would only slow each other down.
static SERIAL: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// At most this many consults or rebuilds while the flipper runs.
const MAX_RUNS: usize = 2_000;

/// And for at most this long.
const MAX_TIME: Duration = Duration::from_secs(8);

/// How old the two sides are: far past any settle time.
const OLD: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------
// The flipper

/// Swaps a symlink between targets by renaming a fresh link over it, in a
/// loop, until killed.
const FLIP_SCRIPT: &str = r#"
import os, sys
link, temp, *targets = sys.argv[1:]
print("flipping", flush=True)
while True:
    for target in targets:
        os.symlink(target, temp)
        os.replace(temp, link)
"#;

/// A child process flipping `link` between two targets.
struct Flipper {
    child: Child,
    link: PathBuf,
    temp: PathBuf,
}

impl Flipper {
    /// Starts flipping `link` between `targets` and returns once the
    /// process is in its loop.
    fn start(link: &Path, targets: [&Path; 2]) -> Flipper {
        let temp = link.with_extension("flipping");
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(FLIP_SCRIPT)
            .arg(link)
            .arg(&temp)
            .args(targets)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the python3 flipper");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "flipping", "the flipper did not start");
        Flipper {
            child,
            link: link.to_path_buf(),
            temp,
        }
    }

    /// Kills the flipper and points the link at `target`.
    fn stop_at(mut self, target: &Path) {
        let exited = self.child.try_wait().unwrap();
        assert!(exited.is_none(), "the flipper stopped early: {exited:?}");
        self.kill();
        point(&self.link, target);
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Killed between its symlink and its rename.
        let _ = fs::remove_file(&self.temp);
    }
}

impl Drop for Flipper {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Points `link` at `target` atomically: a new link renamed over it.
fn point(link: &Path, target: &Path) {
    let temp = link.with_extension("pointing");
    let _ = fs::remove_file(&temp);
    symlink(target, &temp).unwrap();
    fs::rename(&temp, link).unwrap();
}

// ---------------------------------------------------------------------------
// The two sides

/// One target of the flipped link.
struct Side {
    path: PathBuf,
    key: Key,
    dists: usize,
    /// `distributions --json` with the cache off.
    fresh: Vec<DistSummary>,
}

impl Side {
    /// Ages a built path entry and records what it is.
    fn settle(path: PathBuf) -> Side {
        set_mtime_ago(&path, OLD);
        let key = Key::observe(&path).unwrap();
        let fresh = fresh_answer(&path);
        assert!(!fresh.is_empty(), "{} holds nothing", path.display());
        Side {
            dists: fresh.len(),
            key,
            fresh,
            path,
        }
    }
}

fn fresh_answer(path: &Path) -> Vec<DistSummary> {
    let mut cmd = Command::new(BIN);
    cmd.env("EPCACHE_DISABLE", "1")
        .args(["distributions", "--json"])
        .arg(path);
    summarize_json(&run_json(&mut cmd))
}

/// A temporary directory with a cache root, two sides and a link.
struct Scene {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    link: PathBuf,
    sides: [Side; 2],
}

impl Scene {
    /// `build` makes side `0` or `1` at the path it is given.
    fn new(names: [&str; 2], link: &str, build: impl Fn(usize, &Path)) -> Scene {
        let tmp = tempdir();
        let sides = [0, 1].map(|i| {
            let path = tmp.path().join(names[i]);
            build(i, &path);
            Side::settle(path)
        });
        assert_ne!(sides[0].dists, sides[1].dists, "the sides must differ");
        let link = tmp.path().join(link);
        point(&link, &sides[0].path);
        Scene {
            root: tmp.path().join("cache"),
            _tmp: tmp,
            link,
            sides,
        }
    }

    /// The side whose key the cache file for the link holds, if any, and
    /// whether the file's contents are the other side's.
    fn cached(&self) -> Option<(usize, bool)> {
        let status = Cache::at(&self.root).status(&self.link);
        let (key, dists) = (status.header?.key, status.distributions?);
        let side = self.sides.iter().position(|s| s.key == key)?;
        Some((side, dists != self.sides[side].dists))
    }
}

// ---------------------------------------------------------------------------
// The race and the verdict

/// How a race went.
struct Race {
    runs: usize,
    /// The run after which the cache file first held one side's key over
    /// other contents.
    poisoned_at: Option<usize>,
}

/// Runs `once` on the link while a flipper swaps it, until the cache file
/// is poisoned or the cap is reached; leaves the link pointing at the side
/// whose key the file holds, and returns that side.
fn race(scene: &Scene, mut once: impl FnMut(usize)) -> (Race, usize) {
    let [a, b] = &scene.sides;
    let flipper = Flipper::start(&scene.link, [&b.path, &a.path]);
    let started = Instant::now();
    let mut race = Race {
        runs: 0,
        poisoned_at: None,
    };
    while race.runs < MAX_RUNS && started.elapsed() < MAX_TIME {
        once(race.runs);
        race.runs += 1;
        if let Some((_, true)) = scene.cached() {
            race.poisoned_at = Some(race.runs);
            break;
        }
    }
    // A fix that never publishes would pass the check below for nothing.
    let side = scene
        .cached()
        .map(|(side, _)| side)
        .expect("no index was published during the race");
    flipper.stop_at(&scene.sides[side].path);
    for s in &scene.sides {
        assert_eq!(
            Key::observe(&s.path).unwrap(),
            s.key,
            "{} changed during the race",
            s.path.display()
        );
    }
    (race, side)
}

/// The real binary on the link, with a settle time of 0.
fn epcache_on(scene: &Scene, command: &str) -> Command {
    let mut cmd = epcache_settle(&scene.root, "0");
    cmd.args([command, "--json"]).arg(&scene.link);
    cmd
}

/// Runs the binary once on the link; rebuilds and consults alternate.
fn run_binary(scene: &Scene, run: usize) {
    let command = if run.is_multiple_of(2) {
        "distributions"
    } else {
        "rebuild"
    };
    run_ok(&mut epcache_on(scene, command));
}

/// After the race, one consult of the link (now pointing at `side`) must
/// give that side's fresh scan.
fn assert_consult_is_fresh(scene: &Scene, race: &Race, side: usize) {
    let status = run_json(&mut epcache_on(scene, "status"));
    let got = summarize_json(&run_json(&mut epcache_on(scene, "distributions")));
    let want = &scene.sides[side];
    assert!(
        got == want.fresh,
        "after {} runs while {} flipped (cache file poisoned after run {:?}), \
         consulting it as -> {} gave {} distributions (first {:?}), \
         a fresh scan gives {} (first {:?}); status said {} ({})",
        race.runs,
        scene.link.display(),
        race.poisoned_at,
        want.path.display(),
        got.len(),
        got.first().map(|d| &d.2),
        want.dists,
        want.fresh.first().map(|d| &d.2),
        first(&status)["verdict"],
        first(&status)["reason"],
    );
}

// ---------------------------------------------------------------------------
// Directories

fn directory_scene() -> Scene {
    Scene::new(["release-a", "release-b"], "current", |i, path| {
        if i == 0 {
            make_site(path, 150);
        } else {
            make_big_site(path, 280);
        }
    })
}

#[test]
fn a_directory_link_flipped_during_scans_caches_only_what_it_points_at() {
    let _turn = one_at_a_time();
    let scene = directory_scene();
    let (race, side) = race(&scene, |run| run_binary(&scene, run));
    assert_consult_is_fresh(&scene, &race, side);
}

#[test]
fn in_process_consults_of_a_flipped_directory_link_cache_only_what_it_points_at() {
    let _turn = one_at_a_time();
    let scene = directory_scene();
    let cache = Cache::at(&scene.root).with_settle(Duration::ZERO);
    let (race, side) = race(&scene, |run| {
        if run.is_multiple_of(2) {
            cache.consult(&scene.link);
        } else {
            cache.rebuild(&scene.link);
        }
    });
    assert_consult_is_fresh(&scene, &race, side);
}

// ---------------------------------------------------------------------------
// Zip files

/// Writes a zip holding `count` wheels' metadata, `PREFIXNNN-1.0.dist-info/`
/// with METADATA and entry_points.txt, as a zipapp would.
const ZIP_SCRIPT: &str = r#"
import sys, zipfile
path, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
    for i in range(count):
        name = f"{prefix}{i:03}"
        info = f"{name}-1.0.dist-info"
        z.writestr(f"{name}/__init__.py", "")
        z.writestr(f"{info}/METADATA",
                   f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n\n")
        z.writestr(f"{info}/entry_points.txt",
                   f"[console_scripts]\n{name}-cli = {name}.cli:main\n")
"#;

fn make_zip(path: &Path, prefix: &str, count: usize) {
    let status = Command::new("python3")
        .arg("-c")
        .arg(ZIP_SCRIPT)
        .arg(path)
        .arg(prefix)
        .arg(count.to_string())
        .status()
        .expect("running python3");
    assert!(status.success(), "building {} failed", path.display());
}

#[test]
fn a_zip_link_flipped_during_scans_caches_only_what_it_points_at() {
    let _turn = one_at_a_time();
    let scene = Scene::new(["a.zip", "b.zip"], "current.zip", |i, path| {
        if i == 0 {
            make_zip(path, "zipa", 150);
        } else {
            make_zip(path, "zipb", 280);
        }
    });
    let (race, side) = race(&scene, |run| run_binary(&scene, run));
    assert_consult_is_fresh(&scene, &race, side);
}

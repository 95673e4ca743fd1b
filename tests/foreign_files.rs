//! Nothing outside an epcache cache is ever written, followed or deleted.
//!
//! Every test runs the real binary against directories that are not
//! epcache's own, and compares everything in them (kind, owner, mode,
//! contents, symlink targets) before and after:
//!
//! * `sudo -E`: root with a user's `HOME`, where `~/.cache/epcache` or
//!   `~/.cache` is the user's symlink to a directory of root's that looks
//!   like a cache. `prune`, `clear`, a consult and a rebuild must leave it
//!   alone and create nothing in it.
//! * `EPCACHE_DIR` at a folder of user data without epcache's own
//!   `CACHEDIR.TAG` (none, or another tool's): `prune` and `clear` delete
//!   nothing. They may refuse, but only with a one-line message.
//! * Symlinks below the root (`v1`, an index file) are never followed:
//!   nothing is deleted or written through them and nothing read through
//!   them is trusted. Index files that are not plausible regular files (a
//!   symlink to `/dev/zero`, a FIFO, a sparse 64 GiB file) are not read:
//!   every command ends by itself and answers like a scan.
//! * The `CACHEDIR.TAG` race: in a shared sticky directory, another user
//!   keeps swapping in a cache root whose tag is a symlink to a root-owned
//!   file while root creates that cache root. The file never changes.
//!
//! Other users are real: `nobody` (65534) owns the homes, symlinks and
//! directories, and runs the attacker's loop (in the system `python3`) and
//! the binary through `setpriv`. The tests that involve another user need
//! root and print why when they skip; the others run as anyone. Every run
//! is guarded: it is killed if it has not ended after [`HANG_GUARD`] and
//! may not use more than [`MEMORY_LIMIT`] of address space, so a hang or a
//! runaway allocation fails the test instead of the machine. The guard
//! only catches hangs; no test asserts how long anything takes.
//!
//! The tests accept any refusal the fixed code chooses (an exit status of
//! 1 with one line on stderr for `prune` and `clear`; a consult, rebuild or
//! status still succeeds and answers like a scan), and only forbid effects.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{lchown, symlink, MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread::{self};
use std::time::{Duration, Instant};

use common::*;

/// The other user.
/// The signature line every cache directory tag starts with.
const TAG_SIGNATURE: &str = "Signature: 8a477f597d28d172789f06886806bc55\n";

/// A valid cache directory tag that another tool wrote.
const OTHER_TOOL_TAG: &str = concat!(
    "Signature: 8a477f597d28d172789f06886806bc55\n",
    "# This file is a cache directory tag created by another tool.\n",
);

/// How long one run of the binary may go on before it counts as hung.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// The address space one run of the binary may use.
const MEMORY_LIMIT: u64 = 2 << 30;

/// What the race test allows itself.
const RACE_RUNS: usize = 300;
const RACE_TIME: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Who runs

/// A Python that `nobody` can run (not root's pyenv shims), if any.
fn python_for_nobody() -> Option<PathBuf> {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .map(PathBuf::from)
        .find(|python| {
            setpriv_nobody()
                .arg(python)
                .args(["-I", "-c", "pass"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

// ---------------------------------------------------------------------------
// What a directory holds

/// A path's kind, owner, permission bits and contents (a file's bytes or a
/// symlink's target), never following a symlink or opening anything else.
#[derive(Debug, PartialEq, Eq)]
struct Node {
    kind: &'static str,
    uid: u32,
    mode: u32,
    content: Vec<u8>,
}

impl Node {
    /// One line for a failure message; contents by length and hash.
    fn summary(&self) -> String {
        format!(
            "{} uid {} mode {:o}, {} bytes ({})",
            self.kind,
            self.uid,
            self.mode,
            self.content.len(),
            &blake3::hash(&self.content).to_hex()[..12]
        )
    }
}

type Snapshot = BTreeMap<PathBuf, Node>;

/// Everything at and below `root`, keyed by path relative to `root`.
fn snapshot(root: &Path) -> Snapshot {
    let mut out = Snapshot::new();
    record(root, root, &mut out);
    out
}

fn record(root: &Path, path: &Path, out: &mut Snapshot) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    let kind = meta.file_type();
    let (name, content) = if kind.is_symlink() {
        (
            "symlink",
            fs::read_link(path).unwrap().into_os_string().into_vec(),
        )
    } else if kind.is_file() {
        ("file", fs::read(path).unwrap())
    } else if kind.is_dir() {
        ("dir", Vec::new())
    } else {
        ("special", Vec::new())
    };
    let relative = path.strip_prefix(root).unwrap().to_path_buf();
    out.insert(
        relative,
        Node {
            kind: name,
            uid: meta.uid(),
            mode: meta.permissions().mode() & 0o7777,
            content,
        },
    );
    if kind.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            record(root, &entry.unwrap().path(), out);
        }
    }
}

/// What differs between two snapshots of `root`, one line each.
fn differences(root: &Path, before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let show = |p: &Path| root.join(p).display().to_string();
    let mut out = Vec::new();
    for (path, node) in before {
        match after.get(path) {
            None => out.push(format!("deleted {}", show(path))),
            Some(now) if now != node => out.push(format!(
                "changed {}: {} -> {}",
                show(path),
                node.summary(),
                now.summary()
            )),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        out.push(format!("created {}", show(path)));
    }
    out
}

// ---------------------------------------------------------------------------
// Directories and files the tests build

/// The tag the binary writes, byte for byte, read from a cache it made, so
/// that planted data carries epcache's own tag whatever its wording.
fn epcache_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let tmp = tempdir();
        let site = old_site(tmp.path());
        let root = genuine_cache(tmp.path(), "cache", &site);
        fs::read_to_string(root.join("CACHEDIR.TAG")).unwrap()
    })
}

/// An index-file name: 64 lower-case hex digits.
fn hex_name(digit: char) -> String {
    digit.to_string().repeat(64)
}

/// A site with a few distributions, changed an hour ago, so that a
/// consult with a settle time of zero publishes.
fn old_site(tmp: &Path) -> PathBuf {
    let site = make_site(&tmp.join("site"), 5);
    set_mtime_ago(&site, Duration::from_secs(3600));
    site
}

/// Fills `dir` with precious data named like what `prune` and `clear`
/// remove: `v1/` holding a 64-hex file and an old `.tmp-*` file, other
/// versions, `.trash-*` directories, a 64-hex file at the top, and (when
/// given) a `CACHEDIR.TAG`. The directory is private and the caller's, so
/// that ownership and permissions alone would allow using it.
fn plant_cache_shaped_data(dir: &Path, tag: Option<&str>) {
    for sub in [
        versioned_name().as_str(),
        "v1",
        "v7",
        ".trash-old",
        ".trash-4242-1700000000000000000",
    ] {
        fs::create_dir_all(dir.join(sub)).unwrap();
        fs::write(dir.join(sub).join("keep.txt"), b"precious\n").unwrap();
    }
    fs::write(
        dir.join(versioned_name()).join(hex_name('a')),
        b"precious, not an index file\n",
    )
    .unwrap();
    let temp = dir.join(versioned_name()).join(".tmp-Ab12Cd");
    fs::write(&temp, b"precious, not a temporary file\n").unwrap();
    set_mtime_ago(&temp, Duration::from_secs(86_400));
    fs::write(dir.join(hex_name('b')), b"precious\n").unwrap();
    fs::write(dir.join("notes.txt"), b"precious\n").unwrap();
    if let Some(tag) = tag {
        fs::write(dir.join("CACHEDIR.TAG"), tag).unwrap();
    }
    chmod(dir, 0o700);
}

/// A symlink that `nobody` made.
fn nobodys_symlink(target: &Path, link: &Path) {
    symlink(target, link).unwrap();
    lchown(link, Some(NOBODY), Some(NOBODY)).unwrap();
}

/// A directory that belongs to `nobody`.
fn nobodys_dir(dir: &Path) -> PathBuf {
    fs::create_dir(dir).unwrap();
    chmod(dir, 0o755);
    chown(dir, NOBODY);
    dir.to_path_buf()
}

/// A real epcache cache at `tmp/name`, made by the binary, holding a
/// published index file for `site`.
fn genuine_cache(tmp: &Path, name: &str, site: &Path) -> PathBuf {
    let root = tmp.join(name);
    run_ok(epcache_settle(&root, "0").arg("rebuild").arg(site));
    assert!(index_file(&root, site).is_file());
    let tag = fs::read_to_string(root.join("CACHEDIR.TAG")).unwrap();
    assert!(tag.starts_with(TAG_SIGNATURE), "{tag:?}");
    root
}

/// A shared directory like `/tmp`: root's, writable by all, sticky.
fn sticky_dir(tmp: &Path) -> PathBuf {
    let shared = tmp.join("shared");
    fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    shared
}

/// A root-owned file that nobody may change.
fn victim_file(tmp: &Path) -> (PathBuf, Vec<u8>) {
    let victim = tmp.join("victim");
    let bytes = b"root's precious file\n".to_vec();
    fs::write(&victim, &bytes).unwrap();
    chmod(&victim, 0o600);
    (victim, bytes)
}

// ---------------------------------------------------------------------------
// Running the binary

/// What the tests ask the binary to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Prune,
    Clear,
    /// `distributions --json SITE`.
    Consult,
    Rebuild,
    Status,
}

use Action::*;

impl Action {
    fn args(self, site: &Path) -> Vec<OsString> {
        let words: &[&str] = match self {
            Prune => &["prune", "--temp-age", "0", "--json"],
            Clear => &["clear", "--json"],
            Consult => &["distributions", "--json"],
            Rebuild => &["rebuild", "--json"],
            Status => &["status", "--json"],
        };
        let mut args: Vec<OsString> = words.iter().map(OsString::from).collect();
        if matches!(self, Consult | Rebuild | Status) {
            args.push(site.into());
        }
        args
    }
}

/// The binary with `EPCACHE_DIR` at `root` and a settle time of zero.
fn at_root(root: &Path, action: Action, site: &Path) -> Command {
    let mut cmd = epcache_settle(root, "0");
    cmd.args(action.args(site));
    cmd
}

/// The binary as `sudo -E` runs it for a user: root, with the user's
/// `HOME`, no `EPCACHE_DIR` and no `XDG_CACHE_HOME`.
fn sudo_e(home: &Path, action: Action, site: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("EPCACHE_DIR")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("EPCACHE_DISABLE")
        .env("EPCACHE_SETTLE_SECS", "0")
        .env("HOME", home)
        .stdin(Stdio::null())
        .args(action.args(site));
    cmd
}

/// A copy of the binary run as `nobody`, with `EPCACHE_DIR` at `root`.
fn as_nobody(bin: &Path, root: &Path, action: Action, site: &Path) -> Command {
    let mut cmd = setpriv_nobody();
    cmd.arg(bin)
        .env_remove("EPCACHE_DISABLE")
        .env("EPCACHE_DIR", root)
        .env("EPCACHE_SETTLE_SECS", "0")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null())
        .args(action.args(site));
    cmd
}

/// What `distributions --json` prints with the cache off.
fn uncached(site: &Path) -> Vec<u8> {
    run_ok(
        Command::new(BIN)
            .env("EPCACHE_DISABLE", "1")
            .env_remove("EPCACHE_DIR")
            .args(Consult.args(site)),
    )
    .stdout
}

/// Runs a command to completion, killing it if it is still going after
/// [`HANG_GUARD`], with its address space limited to [`MEMORY_LIMIT`].
fn run_guarded(cmd: &mut Command) -> Output {
    common::run_guarded(cmd, HANG_GUARD, MEMORY_LIMIT).0
}

/// Runs one command per action at the same time (so that several hangs
/// cost one guard period), in the order given.
fn run_concurrently(actions: &[Action], make: impl Fn(Action) -> Command + Sync) -> Vec<Output> {
    thread::scope(|scope| {
        let runs: Vec<_> = actions
            .iter()
            .map(|&action| {
                let make = &make;
                scope.spawn(move || run_guarded(&mut make(action)))
            })
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    })
}

// ---------------------------------------------------------------------------
// Judging what happened

/// Violations gathered over several scenarios, reported together, so that
/// one run of a test shows every scenario that fails.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    /// Nothing at or below `root` differs from `before`.
    fn unchanged(&mut self, what: &str, root: &Path, before: &Snapshot) {
        let diffs = differences(root, before, &snapshot(root));
        self.check(diffs.is_empty(), || {
            format!(
                "{what} touched what is not epcache's:\n    {}",
                diffs.join("\n    ")
            )
        });
    }

    fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "{} violation(s):\n\n{}",
            self.0.len(),
            self.0.join("\n\n")
        );
    }
}

/// What every run must show, whatever it refused: it ended by itself and
/// without a panic; a consult, rebuild or status succeeded, and a consult
/// answered like a scan; a prune or clear succeeded or refused in one line.
fn judge(findings: &mut Findings, what: &str, action: Action, out: &Output, expected: &[u8]) {
    if let Some(signal) = out.status.signal() {
        let how = if signal == 9 {
            format!("hung (killed after the {HANG_GUARD:?} guard)")
        } else {
            format!("died of signal {signal}")
        };
        findings.0.push(format!("{what}: {how}: {}", describe(out)));
        return;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    findings.check(
        !["panicked", "Traceback", "RUST_BACKTRACE"]
            .iter()
            .any(|s| stderr.contains(s)),
        || format!("{what}: panicked: {}", describe(out)),
    );
    let lines = stderr.lines().filter(|l| !l.trim().is_empty()).count();
    match action {
        Prune | Clear => findings.check(out.status.success() || lines == 1, || {
            format!("{what}: a refusal must be one line: {}", describe(out))
        }),
        Consult | Rebuild | Status => findings.check(out.status.success(), || {
            format!("{what}: failed: {}", describe(out))
        }),
    }
    if action == Consult && out.status.success() {
        findings.check(out.stdout == expected, || {
            format!("{what}: the answer differs from a scan: {}", describe(out))
        });
    }
}

/// The verdict `status --json` printed, if it printed one.
fn verdict(out: &Output) -> String {
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v.get(0)?.get("verdict")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A status must not report a hit on a file it should not have trusted.
fn check_not_trusted(findings: &mut Findings, what: &str, out: &Output) {
    let verdict = verdict(out);
    findings.check(!verdict.starts_with("hit"), || {
        format!("{what}: trusted what it read through a symlink (verdict {verdict:?})")
    });
}

// ---------------------------------------------------------------------------
// 1. sudo -E with a symlinked cache location

#[test]
fn sudo_e_never_acts_through_a_symlinked_cache_root() {
    if !require_root("sudo_e_never_acts_through_a_symlinked_cache_root") {
        return;
    }
    let mut findings = Findings::default();
    for action in [Prune, Clear, Consult, Rebuild] {
        let tmp = tempdir();
        let site = old_site(tmp.path());
        let target = tmp.path().join("roots-data");
        plant_cache_shaped_data(&target, Some(epcache_tag()));
        let home = nobodys_dir(&tmp.path().join("home"));
        let dot_cache = nobodys_dir(&home.join(".cache"));
        nobodys_symlink(&target, &dot_cache.join("epcache"));

        let before = snapshot(&target);
        let out = run_guarded(&mut sudo_e(&home, action, &site));
        let what = format!("~/.cache/epcache -> root's directory, {action:?}");
        judge(&mut findings, &what, action, &out, &uncached(&site));
        findings.unchanged(&what, &target, &before);
    }
    findings.assert_none();
}

#[test]
fn sudo_e_never_acts_through_a_symlinked_dot_cache() {
    if !require_root("sudo_e_never_acts_through_a_symlinked_dot_cache") {
        return;
    }
    let mut findings = Findings::default();
    let scenarios = [
        (Prune, true),
        (Clear, true),
        (Consult, true),
        (Rebuild, true),
        // Nothing there yet: the cache must not be created in root's directory.
        (Consult, false),
        (Rebuild, false),
    ];
    for (action, with_cache) in scenarios {
        let tmp = tempdir();
        let site = old_site(tmp.path());
        let target = tmp.path().join("roots-dir");
        fs::create_dir(&target).unwrap();
        chmod(&target, 0o700);
        if with_cache {
            plant_cache_shaped_data(&target.join("epcache"), Some(epcache_tag()));
        }
        let home = nobodys_dir(&tmp.path().join("home"));
        nobodys_symlink(&target, &home.join(".cache"));

        let before = snapshot(&target);
        let out = run_guarded(&mut sudo_e(&home, action, &site));
        let what = format!(
            "~/.cache -> root's directory ({}), {action:?}",
            if with_cache {
                "holding epcache/"
            } else {
                "empty"
            }
        );
        judge(&mut findings, &what, action, &out, &uncached(&site));
        findings.unchanged(&what, &target, &before);
    }
    findings.assert_none();
}

// ---------------------------------------------------------------------------
// 2. A folder that is not epcache's

#[test]
fn prune_and_clear_leave_a_folder_without_epcaches_tag_alone() {
    let mut findings = Findings::default();
    for (label, tag) in [
        ("no CACHEDIR.TAG", None),
        ("another tool's CACHEDIR.TAG", Some(OTHER_TOOL_TAG)),
    ] {
        for action in [Prune, Clear] {
            let tmp = tempdir();
            let site = old_site(tmp.path());
            let data = tmp.path().join("my-data");
            plant_cache_shaped_data(&data, tag);
            let before = snapshot(&data);
            let out = run_guarded(&mut at_root(&data, action, &site));
            let what = format!("EPCACHE_DIR at user data with {label}, {action:?}");
            judge(&mut findings, &what, action, &out, &[]);
            findings.unchanged(&what, &data, &before);
        }
    }
    findings.assert_none();
}

/// The control for the test above: in epcache's own cache, `prune` and
/// `clear` still remove what they are for.
#[test]
fn prune_and_clear_still_tidy_epcaches_own_cache() {
    let tmp = tempdir();
    let site = old_site(tmp.path());
    let root = genuine_cache(tmp.path(), "cache", &site);
    let leftovers = [
        root.join("v7"),
        root.join(".trash-4242-1700000000000000000"),
        root.join(versioned_name()).join(hex_name('a')),
        root.join(versioned_name()).join(".tmp-Ab12Cd"),
    ];
    for dir in &leftovers[..2] {
        fs::create_dir(dir).unwrap();
        fs::write(dir.join(hex_name('c')), b"old\n").unwrap();
    }
    for file in &leftovers[2..] {
        fs::write(file, b"not an index file\n").unwrap();
    }
    set_mtime_ago(&leftovers[3], Duration::from_secs(86_400));

    let pruned = run_json(&mut at_root(&root, Prune, &site));
    assert_eq!(
        (
            &pruned["old_versions"],
            &pruned["invalid"],
            &pruned["temp_files"]
        ),
        (&2.into(), &1.into(), &1.into()),
        "{pruned}"
    );
    for path in &leftovers {
        assert!(
            fs::symlink_metadata(path).is_err(),
            "{} is left",
            path.display()
        );
    }
    assert!(
        index_file(&root, &site).is_file(),
        "prune removed a valid index"
    );

    let cleared = run_json(&mut at_root(&root, Clear, &site));
    assert!(cleared["removed"].is_string(), "{cleared}");
    assert!(!root.join(versioned_name()).exists());
    assert!(root.join("CACHEDIR.TAG").is_file());
}

// ---------------------------------------------------------------------------
// 3. Symlinks below the cache root

/// A genuine cache whose `v1` was moved to `elsewhere` (the site's valid
/// index file and precious data in it) and replaced by a symlink to it.
fn cache_with_symlinked_v1(tmp: &Path, site: &Path) -> (PathBuf, PathBuf) {
    let root = genuine_cache(tmp, "cache", site);
    let elsewhere = tmp.join("elsewhere");
    fs::rename(root.join(versioned_name()), &elsewhere).unwrap();
    fs::write(elsewhere.join(hex_name('a')), b"precious\n").unwrap();
    let temp = elsewhere.join(".tmp-Ab12Cd");
    fs::write(&temp, b"precious\n").unwrap();
    set_mtime_ago(&temp, Duration::from_secs(86_400));
    fs::create_dir(elsewhere.join("sub")).unwrap();
    fs::write(elsewhere.join("sub/keep.txt"), b"precious\n").unwrap();
    symlink(&elsewhere, root.join(versioned_name())).unwrap();
    (root, elsewhere)
}

#[test]
fn a_symlinked_versioned_directory_is_not_followed() {
    let mut findings = Findings::default();
    for action in [Prune, Clear, Consult, Rebuild, Status] {
        let tmp = tempdir();
        let site = old_site(tmp.path());
        let (root, elsewhere) = cache_with_symlinked_v1(tmp.path(), &site);
        let before = snapshot(&elsewhere);
        let out = run_guarded(&mut at_root(&root, action, &site));
        let what = format!("the versioned directory -> a directory elsewhere, {action:?}");
        judge(&mut findings, &what, action, &out, &uncached(&site));
        if action == Status {
            check_not_trusted(&mut findings, &what, &out);
        }
        findings.unchanged(&what, &elsewhere, &before);
    }

    // Other names prune removes, as symlinks to a directory of data.
    let tmp = tempdir();
    let site = old_site(tmp.path());
    let root = genuine_cache(tmp.path(), "cache", &site);
    let data = tmp.path().join("data");
    plant_cache_shaped_data(&data, None);
    for name in ["v7", ".trash-4242-1700000000000000000"] {
        symlink(&data, root.join(name)).unwrap();
    }
    let before = snapshot(&data);
    let out = run_guarded(&mut at_root(&root, Prune, &site));
    judge(
        &mut findings,
        "v7 and .trash-* -> data, Prune",
        Prune,
        &out,
        &[],
    );
    findings.unchanged("v7 and .trash-* -> data, Prune", &data, &before);
    findings.assert_none();
}

#[test]
fn an_index_file_symlinked_to_a_valid_index_elsewhere_is_not_trusted() {
    let mut findings = Findings::default();
    for action in [Status, Consult, Rebuild, Prune, Clear] {
        let tmp = tempdir();
        let site = old_site(tmp.path());
        let root = genuine_cache(tmp.path(), "cache", &site);
        // The same site's index file, valid and ours, in another cache.
        let other = genuine_cache(tmp.path(), "other-cache", &site);
        let file = index_file(&root, &site);
        fs::remove_file(&file).unwrap();
        symlink(index_file(&other, &site), &file).unwrap();

        let before = snapshot(&other);
        let out = run_guarded(&mut at_root(&root, action, &site));
        let what = format!("<versioned>/<index> -> another cache's valid index, {action:?}");
        judge(&mut findings, &what, action, &out, &uncached(&site));
        if action == Status {
            check_not_trusted(&mut findings, &what, &out);
        }
        findings.unchanged(&what, &other, &before);
    }
    findings.assert_none();
}

/// Replaces the site's index file in a genuine cache with `plant(path)`
/// and runs a consult, a status and a prune on it at the same time: each
/// must end by itself and answer like a scan.
fn check_unreadable_index(label: &str, plant: impl Fn(&Path)) {
    let tmp = tempdir();
    let site = old_site(tmp.path());
    let actions = [Consult, Status, Prune];
    let roots: Vec<PathBuf> = actions
        .iter()
        .map(|action| {
            let root = genuine_cache(tmp.path(), &format!("cache-{action:?}"), &site);
            let file = index_file(&root, &site);
            fs::remove_file(&file).unwrap();
            plant(&file);
            root
        })
        .collect();
    let outputs = run_concurrently(&actions, |action| {
        let at = actions.iter().position(|&a| a == action).unwrap();
        at_root(&roots[at], action, &site)
    });
    let expected = uncached(&site);
    let mut findings = Findings::default();
    for (action, out) in actions.iter().zip(&outputs) {
        let what = format!("<versioned>/<index> is {label}, {action:?}");
        judge(&mut findings, &what, *action, out, &expected);
        if *action == Status {
            check_not_trusted(&mut findings, &what, out);
        }
    }
    findings.assert_none();
}

#[test]
fn an_index_file_symlinked_to_dev_zero_is_not_read() {
    check_unreadable_index("a symlink to /dev/zero", |file| {
        symlink("/dev/zero", file).unwrap();
    });
}

#[test]
fn a_fifo_in_place_of_an_index_file_is_not_opened() {
    check_unreadable_index("a FIFO", |file| {
        let status = Command::new("mkfifo").arg(file).status().unwrap();
        assert!(status.success(), "mkfifo failed");
    });
}

#[test]
fn an_implausibly_large_index_file_is_not_read() {
    check_unreadable_index("a sparse 64 GiB file", |file| {
        fs::File::create(file).unwrap().set_len(64 << 30).unwrap();
    });
}

#[test]
fn as_nobody_an_index_symlink_to_roots_file_is_not_followed() {
    if !require_root("as_nobody_an_index_symlink_to_roots_file_is_not_followed") {
        return;
    }
    let mut findings = Findings::default();
    for action in [Status, Consult, Rebuild, Prune, Clear] {
        let tmp = tempdir();
        let site = old_site(tmp.path());
        let bin = binary_for_nobody(tmp.path());
        // Root's valid index file for the same site, readable by all.
        let roots = genuine_cache(tmp.path(), "root-cache", &site);
        chmod(&roots, 0o755);
        chmod(&roots.join(versioned_name()), 0o755);
        let roots_file = index_file(&roots, &site);
        chmod(&roots_file, 0o644);
        // Nobody's own cache, its index file a symlink to root's.
        let mine = nobodys_dir(&tmp.path().join("nobody-cache"));
        run_ok(&mut as_nobody(&bin, &mine, Rebuild, &site));
        let file = index_file(&mine, &site);
        assert_eq!(owner(&file), NOBODY);
        fs::remove_file(&file).unwrap();
        nobodys_symlink(&roots_file, &file);

        let before = snapshot(&roots);
        let out = run_guarded(&mut as_nobody(&bin, &mine, action, &site));
        let what = format!("as nobody, v1/<index> -> root's index file, {action:?}");
        judge(&mut findings, &what, action, &out, &uncached(&site));
        if action == Status {
            check_not_trusted(&mut findings, &what, &out);
        }
        findings.unchanged(&what, &roots, &before);
    }
    findings.assert_none();
}

// ---------------------------------------------------------------------------
// 4. The CACHEDIR.TAG race

/// The attacker: `nobody` keeps a directory holding a `CACHEDIR.TAG`
/// symlink to the victim, and renames it into the cache root's place and
/// out again as fast as it can, so that the cache root is missing when
/// root looks and present when root tries to create it. Bounded by a
/// count and a deadline; the test also kills it when done.
const ATTACKER: &str = r#"
import os, sys, time
stage, root, victim = sys.argv[1:4]
seconds, limit = float(sys.argv[4]), int(sys.argv[5])
os.mkdir(stage, 0o755)
os.symlink(victim, os.path.join(stage, "CACHEDIR.TAG"))
deadline = time.monotonic() + seconds
for i in range(limit):
    if i % 4096 == 0 and time.monotonic() > deadline:
        break
    try:
        os.rename(stage, root)
    except OSError:
        # Root's own cache root is there until the test removes it.
        time.sleep(0.0002)
        continue
    os.rename(root, stage)
"#;

fn start_attacker(python: &Path, shared: &Path, victim: &Path) -> Child {
    let stage = shared.join(".stage");
    let child = setpriv_nobody()
        .arg(python)
        .args(["-I", "-c", ATTACKER])
        .arg(&stage)
        .arg(shared.join("cache"))
        .arg(victim)
        .arg((RACE_TIME + Duration::from_secs(10)).as_secs().to_string())
        .arg("100000000")
        .stdin(Stdio::null())
        .spawn()
        .expect("starting the attacker");
    // Wait for its staged directory, so the first runs already race.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stage.join("CACHEDIR.TAG").is_symlink() && !shared.join("cache").exists() {
        assert!(Instant::now() < deadline, "the attacker did not start");
        thread::sleep(Duration::from_millis(5));
    }
    child
}

/// Removes a cache root that root created (and won the race with), so that
/// the next run tries to create it again. The attacker's own directory is
/// left alone.
fn remove_roots_cache_root(root: &Path) -> bool {
    match fs::symlink_metadata(root) {
        Ok(meta) if meta.is_dir() && meta.uid() == 0 => {
            fs::remove_dir_all(root).unwrap();
            true
        }
        _ => false,
    }
}

#[test]
fn the_cachedir_tag_race_never_overwrites_a_root_owned_file() {
    if !require_root("the_cachedir_tag_race_never_overwrites_a_root_owned_file") {
        return;
    }
    let Some(python) = python_for_nobody() else {
        println!("skipped: no python3 that nobody can run for the attacker's loop");
        return;
    };
    let tmp = tempdir();
    let site = old_site(tmp.path());
    let shared = sticky_dir(tmp.path());
    let (victim, original) = victim_file(tmp.path());
    let root = shared.join("cache");
    let mut attacker = start_attacker(&python, &shared, &victim);

    let started = Instant::now();
    let (mut runs, mut created) = (0, 0);
    let mut lost = None;
    while runs < RACE_RUNS && started.elapsed() < RACE_TIME {
        runs += 1;
        let out = run_guarded(&mut at_root(&root, Consult, &site));
        assert!(out.status.success(), "run {runs}: {}", describe(&out));
        if fs::read(&victim).unwrap() != original {
            lost = Some(runs);
            break;
        }
        created += usize::from(remove_roots_cache_root(&root));
    }
    let _ = attacker.kill();
    let _ = attacker.wait();
    println!(
        "{runs} runs in {:?}; root created its own cache root {created} times",
        started.elapsed()
    );
    if let Some(run) = lost {
        panic!(
            "run {run} of {runs} wrote through the attacker's CACHEDIR.TAG symlink: \
             the root-owned victim now holds {:?}",
            String::from_utf8_lossy(&fs::read(&victim).unwrap())
        );
    }
}

/// The state the race leaves behind, reached without racing: the cache
/// root exists and is another user's, its `CACHEDIR.TAG` a symlink to a
/// root-owned file (or missing). Root must not write through or into it.
#[test]
fn a_cache_root_another_user_owns_is_left_alone_even_with_a_symlinked_tag() {
    if !require_root("a_cache_root_another_user_owns_is_left_alone_even_with_a_symlinked_tag") {
        return;
    }
    let mut findings = Findings::default();
    for with_tag in [true, false] {
        for action in [Consult, Rebuild, Status, Prune, Clear] {
            let tmp = tempdir();
            let site = old_site(tmp.path());
            let shared = sticky_dir(tmp.path());
            let (victim, original) = victim_file(tmp.path());
            let root = nobodys_dir(&shared.join("cache"));
            if with_tag {
                nobodys_symlink(&victim, &root.join("CACHEDIR.TAG"));
            }
            let before = snapshot(&shared);
            let out = run_guarded(&mut at_root(&root, action, &site));
            let what = format!(
                "nobody's cache root {}, {action:?}",
                if with_tag {
                    "with CACHEDIR.TAG -> victim"
                } else {
                    "without a tag"
                }
            );
            judge(&mut findings, &what, action, &out, &uncached(&site));
            findings.unchanged(&what, &shared, &before);
            findings.check(fs::read(&victim).unwrap() == original, || {
                format!("{what}: the victim changed")
            });
        }
    }
    findings.assert_none();
}

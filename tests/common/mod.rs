//! Helpers shared by the integration tests: building site directories,
//! setting timestamps, running the real binary, and turning answers (an
//! [`Index`] or the CLI's JSON) into plain values that can be compared.

#![allow(dead_code)]

pub mod churn;

use std::fs::{self, File, FileTimes};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use epcache::{Cache, Environment, Index, Selection};
use serde_json::Value;

/// The binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_epcache");

/// `(group, name, value)`.
pub type Ep = (String, String, String);

/// `(name, version, metadata directory name, entry points)`: everything an
/// answer says about one distribution, without the path entry.
pub type DistSummary = (Option<String>, Option<String>, String, Vec<Ep>);

/// One row of `entry-points --json`: `(group, name, value, distribution)`.
pub type SelectedEp = (String, String, String, Option<String>);

// ---------------------------------------------------------------------------
// Site directories

/// The name of a wheel's metadata directory.
pub fn dist_dir_name(name: &str, version: &str) -> String {
    format!("{}-{version}.dist-info", name.replace('-', "_"))
}

/// Writes `NAME-VERSION.dist-info` with METADATA and (when `eps` is not
/// empty) entry_points.txt into `parent`, and returns its path.
/// `eps` is `(group, name, value)`; consecutive entries of one group share a
/// section.
pub fn write_dist(parent: &Path, name: &str, version: &str, eps: &[(&str, &str, &str)]) -> PathBuf {
    write_dist_with_body(parent, name, version, eps, "")
}

/// Like [`write_dist`], with `body` appended to METADATA after the header
/// block (a long description) to make scanning cost more.
pub fn write_dist_with_body(
    parent: &Path,
    name: &str,
    version: &str,
    eps: &[(&str, &str, &str)],
    body: &str,
) -> PathBuf {
    let dir = parent.join(dist_dir_name(name, version));
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("METADATA"),
        format!(
            "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\
             Summary: test distribution {name}\nLicense: MIT\n\
             Classifier: Programming Language :: Python :: 3\n\n\
             {name} is a distribution made by the epcache tests.\n{body}"
        ),
    )
    .unwrap();
    if !eps.is_empty() {
        let mut text = String::new();
        let mut current: Option<&str> = None;
        for (group, ep_name, value) in eps {
            if current != Some(group) {
                if current.is_some() {
                    text.push('\n');
                }
                text.push_str(&format!("[{group}]\n"));
                current = Some(group);
            }
            text.push_str(&format!("{ep_name} = {value}\n"));
        }
        fs::write(dir.join("entry_points.txt"), text).unwrap();
    }
    fs::write(dir.join("INSTALLER"), "pip\n").unwrap();
    dir
}

/// The single entry point the churn tests give a distribution.
pub fn churn_ep(name: &str) -> (String, String, String) {
    (
        "console_scripts".to_owned(),
        name.to_owned(),
        format!("{name}.cli:main"),
    )
}

/// Writes a distribution whose only entry point is [`churn_ep`].
pub fn write_churn_dist(parent: &Path, name: &str) -> PathBuf {
    let (group, ep_name, value) = churn_ep(name);
    write_dist(parent, name, "1.0", &[(&group, &ep_name, &value)])
}

/// Creates `site` with `count` distributions `pkgNNN`, most with entry
/// points in one or two groups, and returns it.
pub fn make_site(site: &Path, count: usize) -> PathBuf {
    fill_site(site, count, "pkg", 0)
}

/// Creates `site` with `count` distributions whose METADATA carries a
/// long description, like a real site-packages, so that a scan takes a
/// noticeable moment.
pub fn make_big_site(site: &Path, count: usize) -> PathBuf {
    fill_site(site, count, "bigpkg", 2048)
}

fn fill_site(site: &Path, count: usize, prefix: &str, body_len: usize) -> PathBuf {
    fs::create_dir_all(site).unwrap();
    let body: String = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n"
        .chars()
        .cycle()
        .take(body_len)
        .collect();
    for i in 0..count {
        let name = format!("{prefix}{i:03}");
        let cli = format!("{name}-cli");
        let cli_value = format!("{name}.cli:main");
        let plugin_value = format!("{name}.plugin:Plugin [extra]");
        let mut eps: Vec<(&str, &str, &str)> = Vec::new();
        if i % 5 != 4 {
            eps.push(("console_scripts", &cli, &cli_value));
        }
        if i % 3 == 0 {
            eps.push(("epcache.tests.plugins", &name, &plugin_value));
        }
        write_dist_with_body(site, &name, &format!("1.{i}.0"), &eps, &body);
        // A package directory beside the metadata, as installers leave.
        fs::create_dir_all(site.join(&name)).unwrap();
        fs::write(site.join(&name).join("__init__.py"), "").unwrap();
    }
    site.to_path_buf()
}

/// A temporary directory for one test, readable by everyone (tempfile
/// makes it 0o700), holding `site/` and room for a cache.
pub fn tempdir() -> tempfile::TempDir {
    let tmp = tempfile::Builder::new()
        .prefix("epcache-test-")
        .tempdir()
        .unwrap();
    chmod(tmp.path(), 0o755);
    tmp
}

// ---------------------------------------------------------------------------
// Timestamps

/// Sets a file's or directory's mtime (and atime). This also sets its
/// ctime to now, which the kernel does not let anyone choose.
pub fn set_mtime(path: &Path, when: SystemTime) {
    let file = File::open(path).unwrap();
    file.set_times(FileTimes::new().set_modified(when).set_accessed(when))
        .unwrap_or_else(|e| panic!("setting the times of {}: {e}", path.display()));
}

/// Moves a directory's mtime `ago` into the past.
pub fn set_mtime_ago(path: &Path, ago: Duration) -> SystemTime {
    let when = SystemTime::now() - ago;
    set_mtime(path, when);
    when
}

/// The mtime of a path.
pub fn mtime(path: &Path) -> SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

// ---------------------------------------------------------------------------
// The binary

/// `epcache` with a clean environment for the cache: `EPCACHE_DIR` set to
/// `cache_root`, no `EPCACHE_DISABLE`, default settle time.
pub fn epcache(cache_root: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("EPCACHE_DISABLE")
        .env_remove("EPCACHE_SETTLE_SECS")
        .env("EPCACHE_DIR", cache_root)
        .stdin(Stdio::null());
    cmd
}

/// Like [`epcache`], with `EPCACHE_SETTLE_SECS` set.
pub fn epcache_settle(cache_root: &Path, settle_secs: &str) -> Command {
    let mut cmd = epcache(cache_root);
    cmd.env("EPCACHE_SETTLE_SECS", settle_secs);
    cmd
}

/// Runs a command to completion, capturing its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

/// Whether stderr holds nothing but `warning:` lines.
pub fn stderr_is_clean(stderr: &[u8]) -> bool {
    String::from_utf8_lossy(stderr)
        .lines()
        .all(|line| line.trim().is_empty() || line.starts_with("warning:"))
}

/// Describes an output for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs a command that must succeed with nothing but warnings on stderr.
pub fn run_ok(cmd: &mut Command) -> Output {
    let output = run(cmd);
    assert!(
        output.status.success() && stderr_is_clean(&output.stderr),
        "{cmd:?} failed: {}",
        describe(&output)
    );
    output
}

/// Parses JSON output.
pub fn parse_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "output is not JSON ({e}):\n{}",
            String::from_utf8_lossy(bytes)
        )
    })
}

/// Runs a command that must succeed and print JSON.
pub fn run_json(cmd: &mut Command) -> Value {
    parse_json(&run_ok(cmd).stdout)
}

/// The first object of a JSON array (as `status --json` and
/// `rebuild --json` print one per path entry).
pub fn first(value: &Value) -> &Value {
    value
        .as_array()
        .and_then(|a| a.first())
        .unwrap_or_else(|| panic!("expected a non-empty array, got {value}"))
}

// ---------------------------------------------------------------------------
// Summaries

/// Everything an index says, as plain values (the path entry left out).
pub fn summarize(index: &Index) -> Vec<DistSummary> {
    index
        .distributions()
        .map(|d| {
            (
                d.name().map(str::to_owned),
                d.version().map(str::to_owned),
                d.metadata_name().to_owned(),
                d.entry_points()
                    .map(|ep| (ep.group.to_owned(), ep.name.to_owned(), ep.value.to_owned()))
                    .collect(),
            )
        })
        .collect()
}

fn opt_str(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

fn string(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value}"))
        .to_owned()
}

/// The same summary from `distributions --json` output.
pub fn summarize_json(value: &Value) -> Vec<DistSummary> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected an array, got {value}"))
        .iter()
        .map(|d| {
            let metadata_path = PathBuf::from(string(&d["metadata_path"]));
            let eps = d["entry_points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|ep| {
                    (
                        string(&ep["group"]),
                        string(&ep["name"]),
                        string(&ep["value"]),
                    )
                })
                .collect();
            (
                opt_str(&d["name"]),
                opt_str(&d["version"]),
                metadata_path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                eps,
            )
        })
        .collect()
}

/// Every answer an index gives, one query of each kind per group and per
/// name of `like` (an index of the same entry, usually a scan), so that an
/// index read from a cache file reads every part of it.
pub fn every_answer(index: &Index, like: &Index) -> Vec<String> {
    let mut groups: Vec<&str> = like
        .distributions()
        .flat_map(|d| d.entry_points().map(|ep| ep.group))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    groups.push("no such group");
    let mut names: Vec<&str> = like.distributions().filter_map(|d| d.name()).collect();
    names.push("no-such-name");
    let env = Environment::from_indexes(vec![index.clone()]);
    let mut out: Vec<String> = index.diagnostics().map(str::to_owned).collect();
    for group in groups {
        out.extend(
            env.entry_points(&Selection::group(group))
                .map(|ep| format!("{group}: {} {} {:?}", ep.name, ep.value, ep.dist.name())),
        );
    }
    for name in names {
        out.extend(env.distributions_named(name).map(|d| {
            format!(
                "{name}: {} {:?} {:?}",
                d.metadata_name(),
                d.version(),
                d.entry_points().map(|ep| ep.value).collect::<Vec<_>>()
            )
        }));
    }
    for d in index.diagnosed() {
        out.push(format!(
            "{}: {:?}",
            d.metadata_name(),
            d.diagnostics().collect::<Vec<_>>()
        ));
    }
    out.extend(summarize(index).into_iter().map(|d| format!("{d:?}")));
    out.push(format!(
        "{} {} {}",
        index.len(),
        index.entry_point_count(),
        index.diagnostic_count()
    ));
    out
}

/// What `entry-points --json` should print for these indexes.
pub fn expected_entry_points(indexes: Vec<Index>) -> Vec<SelectedEp> {
    let env = Environment::from_indexes(indexes);
    let all = Selection::all();
    env.entry_points(&all)
        .map(|ep| {
            (
                ep.group.to_owned(),
                ep.name.to_owned(),
                ep.value.to_owned(),
                ep.dist.name().map(str::to_owned),
            )
        })
        .collect()
}

/// The rows of `entry-points --json` output.
pub fn entry_points_json(value: &Value) -> Vec<SelectedEp> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected an array, got {value}"))
        .iter()
        .map(|ep| {
            (
                string(&ep["group"]),
                string(&ep["name"]),
                string(&ep["value"]),
                opt_str(&ep["distribution"]),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The cache on disk

/// The name of the cache's versioned directory (`v` and the format version).
pub fn versioned_name() -> String {
    format!("v{}", epcache::FORMAT_VERSION)
}

/// The index file a cache rooted at `cache_root` uses for `site`.
pub fn index_file(cache_root: &Path, site: &Path) -> PathBuf {
    Cache::at(cache_root).index_file(site).unwrap()
}

/// Every path under `root`, relative and sorted (empty when `root` is
/// missing). Used to show that nothing was written.
pub fn list_tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let path = entry.path();
            out.push(path.strip_prefix(root).unwrap().to_path_buf());
            if entry.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            }
        }
    }
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Names in `dir` that start with `prefix` (none when `dir` is missing).
pub fn names_with_prefix(dir: &Path, prefix: &str) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------
// Ownership and modes

/// Permission bits of a path (not following symlinks).
pub fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Sets permission bits.
pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Gives a path to another user and group.
pub fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid))
        .unwrap_or_else(|e| panic!("chown {} to {uid}: {e}", path.display()));
}

/// The owner of a path.
pub fn owner(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().uid()
}

/// The effective uid of the test process.
pub fn euid() -> u32 {
    // Tests that need root say so with `require_root`.
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

/// Whether the test process is root, which a test needs to make files
/// another user owns or to run the binary as another user (`setpriv`).
/// When it is not, prints that `test` is skipped and why.
///
/// The line goes to the process's stderr directly, not through the test
/// harness's capture, so that a skip shows in an ordinary `cargo test` run.
pub fn require_root(test: &str) -> bool {
    if euid() == 0 {
        return true;
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "skipping {test}: needs root (makes files another user owns, or runs \
         the binary as another user with setpriv)"
    );
    false
}

/// `cp -a FROM TO`, which preserves timestamps.
pub fn cp_a(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success(), "cp -a failed");
}

// ---------------------------------------------------------------------------
// Randomness

/// A tiny seeded PRNG (xorshift64*), so failures reproduce.
pub struct XorShift(u64);

impl XorShift {
    /// A generator from a seed (any value; 0 is remapped).
    pub fn new(seed: u64) -> Self {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

// ---------------------------------------------------------------------------
// Guarded runs

/// Runs `cmd` with its output captured, under `prlimit --as=memory_limit`
/// (so reading without end becomes a failed allocation, not a machine out
/// of memory), and kills it once it has run for `guard`. Returns the
/// output and whether it had to be killed: a hang guard, not a timing.
pub fn run_guarded(cmd: &Command, guard: Duration, memory_limit: u64) -> (Output, bool) {
    let mut limited = Command::new("prlimit");
    limited
        .arg(format!("--as={memory_limit}"))
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => limited.env(key, value),
            None => limited.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        limited.current_dir(dir);
    }
    let mut child = limited
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let deadline = std::time::Instant::now() + guard;
    let mut killed = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            killed = true;
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    (output, killed)
}

/// Reads a pipe to its end on another thread, so that a child that writes
/// a lot never blocks on a full pipe.
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Where two outputs first differ, for assertion messages.
pub fn first_difference(got: &str, want: &str) -> String {
    let mut got_lines = got.lines();
    let mut want_lines = want.lines();
    for line in 1.. {
        match (got_lines.next(), want_lines.next()) {
            (None, None) => break,
            (got, want) if got != want => {
                return format!("line {line} is {got:?}, a fresh scan has {want:?}")
            }
            _ => {}
        }
    }
    "they differ only in line endings".to_owned()
}

// ---------------------------------------------------------------------------
// Another user

/// `nobody`, the other user the tests run the binary as (with `setpriv`).
pub const NOBODY: u32 = 65534;

/// `setpriv` ready to run a program as `nobody`, for whom permission bits
/// count; append the program and its arguments.
pub fn setpriv_nobody() -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
    cmd
}

/// The binary run as `nobody`, with `cache_root` as its cache, a settle
/// time of zero and no usable home.
pub fn epcache_as_nobody(bin: &Path, cache_root: &Path) -> Command {
    let mut cmd = setpriv_nobody();
    cmd.arg(bin)
        .env_remove("EPCACHE_DISABLE")
        .env("EPCACHE_DIR", cache_root)
        .env("EPCACHE_SETTLE_SECS", "0")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null());
    cmd
}

/// A copy of the binary that `nobody` may run, wherever cargo's target is.
///
/// It is run once as `nobody` until it starts: a process another test
/// forks while the copy is being written holds it open for writing until
/// it execs, and executing the copy meanwhile fails with "Text file busy".
pub fn binary_for_nobody(tmp: &Path) -> PathBuf {
    let bin_dir = tmp.join("bin");
    fs::create_dir(&bin_dir).unwrap();
    chmod(&bin_dir, 0o755);
    let bin = bin_dir.join("epcache");
    fs::copy(BIN, &bin).unwrap();
    chmod(&bin, 0o755);
    let probe = || run(setpriv_nobody().arg(&bin).arg("--version"));
    let mut last = probe();
    for _ in 0..100 {
        if last.status.success() {
            return bin;
        }
        std::thread::sleep(Duration::from_millis(20));
        last = probe();
    }
    panic!("cannot run as nobody: {}", describe(&last));
}

/// Every diagnostic of every distribution in `distributions --json` output.
pub fn json_diagnostics(distributions: &Value) -> Vec<String> {
    distributions
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["diagnostics"].as_array().cloned().unwrap_or_default())
        .filter_map(|d| d.as_str().map(str::to_owned))
        .collect()
}

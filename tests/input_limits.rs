//! No input size or shape can crash, hang or exhaust memory.
//!
//! Each test runs the real binary on one extreme input and proves that it
//! finishes, exits 0 and gives the right answer:
//!
//! * **Size.** 50,000 distributions, and one distribution with a 5 MB
//!   `entry_points.txt`, are answered, published and then hit. Names and
//!   groups longer than 64 KiB still print as tables, and a 20 MB
//!   `entry_points.txt` line is answered.
//! * **Non-regular files.** A FIFO, socket, device or symlink to
//!   `/dev/zero` in the place of `METADATA`, `PKG-INFO`, `entry_points.txt`,
//!   a single-file `*.egg-info` / `*.dist-info`, the cache's own index file
//!   or the path entry itself is skipped with a diagnostic, never opened in
//!   a way that blocks or read without end. A symlink to a regular file
//!   still works.
//! * **Linear time.** A 40 MB `METADATA` header block (many lines, one
//!   line, one continued header) and a zip path entry with 300,000 members
//!   are read in time linear in their size.
//!
//! Every run of the binary has a hang guard (it is killed after a generous
//! limit, and the test reports that it hung) and an address-space limit (so
//! that reading without end ends in a failed allocation rather than in the
//! machine's OOM killer). Neither is a timing assertion: a correct
//! implementation needs a small fraction of either.

mod common;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;
use epcache::scan;
use serde_json::Value;

/// How long a run that reads a few small files may take before it counts
/// as hung.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// The same for runs over tens of megabytes or tens of thousands of
/// files, in the debug build on a slow machine.
const BIG_INPUT_GUARD: Duration = Duration::from_secs(60);

/// The address space a run may use: far more than any input here needs.
const MEMORY_LIMIT: u64 = 3 << 30;

/// The size of the inputs the linear-time tests feed the parsers.
const HUGE: usize = 40 << 20;

// ---------------------------------------------------------------------------
// Running the binary with a hang guard

/// Runs `cmd` with its output captured, under [`MEMORY_LIMIT`]; kills it
/// and fails the test when it has not finished after `guard`.
fn run_guarded(cmd: &mut Command, guard: Duration) -> Output {
    let (output, killed) = common::run_guarded(cmd, guard, MEMORY_LIMIT);
    assert!(
        !killed,
        "hung: {cmd:?} was killed after {guard:?}\n{}",
        brief(&output)
    );
    output
}

/// [`run_guarded`] for a command that must succeed.
fn run_guarded_ok(cmd: &mut Command, guard: Duration) -> Output {
    let output = run_guarded(cmd, guard);
    assert!(
        output.status.success(),
        "{cmd:?} failed: {}",
        brief(&output)
    );
    output
}

/// [`run_guarded_ok`] for a command that prints JSON.
fn run_guarded_json(cmd: &mut Command, guard: Duration) -> Value {
    parse_json(&run_guarded_ok(cmd, guard).stdout)
}

/// The exit status, the start of stdout and of stderr (a panic message
/// comes first, a backtrace after it).
fn brief(output: &Output) -> String {
    let head = |bytes: &[u8], n: usize| {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(n)]).into_owned();
        if bytes.len() > n {
            format!("{text}... ({} bytes in all)", bytes.len())
        } else {
            text
        }
    };
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        head(&output.stdout, 1000),
        head(&output.stderr, 3000)
    )
}

/// `epcache` with a cache at `root` that publishes at once.
fn cached(root: &Path) -> Command {
    epcache_settle(root, "0")
}

/// `epcache` with the cache turned off: every answer is a fresh scan.
fn uncached() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("EPCACHE_DISABLE", "1").stdin(Stdio::null());
    cmd
}

/// `status --json` for one path entry.
fn status(root: &Path, site: &Path) -> Value {
    let status = run_guarded_json(
        cached(root).args(["status", "--json"]).arg(site),
        HANG_GUARD,
    );
    first(&status).clone()
}

/// `entry-points --json --group GROUP` through the cache at `root`.
fn entry_points_in_group(root: &Path, site: &Path, group: &str) -> Vec<SelectedEp> {
    let answer = run_guarded_json(
        cached(root)
            .args(["entry-points", "--json", "--group", group])
            .arg(site),
        BIG_INPUT_GUARD,
    );
    entry_points_json(&answer)
}

/// The distribution whose metadata directory or file is named `child`.
fn dist<'a>(answer: &'a Value, child: &str) -> &'a Value {
    answer
        .as_array()
        .unwrap()
        .iter()
        .find(|d| {
            Path::new(d["metadata_path"].as_str().unwrap())
                .file_name()
                .is_some_and(|name| name == child)
        })
        .unwrap_or_else(|| panic!("{child} is not in the answer: {answer}"))
}

// ---------------------------------------------------------------------------
// Size

/// Writes `count` small distributions `dNNNNN`, each with one console
/// script, and returns the entry points they declare.
fn write_small_dists(site: &Path, count: usize) -> Vec<SelectedEp> {
    fs::create_dir_all(site).unwrap();
    (0..count)
        .map(|i| {
            let name = format!("d{i:05}");
            let dir = site.join(format!("{name}-1.0.dist-info"));
            fs::create_dir(&dir).unwrap();
            let metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n\n");
            fs::write(dir.join("METADATA"), metadata).unwrap();
            let value = format!("{name}.cli:main");
            let eps = format!("[console_scripts]\n{name} = {value}\n");
            fs::write(dir.join("entry_points.txt"), eps).unwrap();
            ("console_scripts".into(), name.clone(), value, Some(name))
        })
        .collect()
}

/// Consults the cache for the entry points of `group` twice, around a
/// `status` that must say the first consult published: the second answer
/// is a hit and the same as the first.
fn assert_published_and_hit(root: &Path, site: &Path, group: &str, expected: &[SelectedEp]) {
    let mut answer = entry_points_in_group(root, site, group);
    answer.sort();
    assert!(answer == expected, "the first answer is wrong");
    let status = status(root, site);
    assert_eq!(status["verdict"], "hit", "not published: {status}");
    let mut again = entry_points_in_group(root, site, group);
    again.sort();
    assert!(again == answer, "the answer from the hit differs");
}

#[test]
fn fifty_thousand_distributions_are_published_and_hit() {
    let tmp = tempdir();
    let site = tmp.path().join("site");
    let mut expected = write_small_dists(&site, 50_000);
    expected.sort();
    let root = tmp.path().join("cache");
    assert_published_and_hit(&root, &site, "console_scripts", &expected);
    let status = status(&root, &site);
    assert_eq!(status["distributions"], 50_000, "{status}");
    assert_eq!(status["entry_points"], 50_000, "{status}");
}

/// `entry_points.txt` of about 5 MB: `count` entry points in one group.
fn big_entry_points_txt(group: &str, count: usize) -> (String, Vec<SelectedEp>) {
    let mut text = format!("[{group}]\n");
    let mut eps = Vec::with_capacity(count);
    for i in 0..count {
        let (name, value) = (format!("ep{i:07}"), format!("big.plugins:function_{i:07}"));
        text.push_str(&format!("{name} = {value}\n"));
        eps.push((group.to_owned(), name, value, Some("big".to_owned())));
    }
    (text, eps)
}

#[test]
fn five_megabyte_entry_points_txt_is_published_and_hit() {
    let tmp = tempdir();
    let site = make_site(&tmp.path().join("site"), 3);
    let (text, mut expected) = big_entry_points_txt("epcache.big", 130_000);
    assert!(text.len() > 5_000_000);
    let dir = write_dist(&site, "big", "1.0", &[]);
    fs::write(dir.join("entry_points.txt"), text).unwrap();
    expected.sort();
    let root = tmp.path().join("cache");
    assert_published_and_hit(&root, &site, "epcache.big", &expected);
}

#[test]
fn names_and_groups_longer_than_64_kib_print_as_tables() {
    let tmp = tempdir();
    let site = make_site(&tmp.path().join("site"), 2);
    let (name, group) = ("n".repeat(100_000), "g".repeat(100_000));
    let dir = site.join("long-1.0.dist-info");
    fs::create_dir(&dir).unwrap();
    let metadata = format!("Name: {name}\nVersion: 1.0\n\n");
    fs::write(dir.join("METADATA"), metadata).unwrap();
    fs::write(
        dir.join("entry_points.txt"),
        format!("[{group}]\nx = y:z\n"),
    )
    .unwrap();
    let root = tmp.path().join("cache");
    for (command, long) in [("distributions", &name), ("entry-points", &group)] {
        let out = run_guarded_ok(cached(&root).arg(command).arg(&site), HANG_GUARD);
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(table.contains(long.as_str()), "{command}: {}", brief(&out));
    }
}

#[test]
fn twenty_megabyte_entry_points_lines_are_answered() {
    let tmp = tempdir();
    let site = make_site(&tmp.path().join("site"), 2);
    let (group, value) = ("g".repeat(10 << 20), "v".repeat(10 << 20));
    let dir = write_dist(&site, "big", "1.0", &[]);
    let text = format!("[{group}]\nbig = {value}\n[small]\nx = y:z\n");
    fs::write(dir.join("entry_points.txt"), text).unwrap();
    let root = tmp.path().join("cache");
    for _ in 0..2 {
        let answer = run_guarded_json(
            cached(&root).args(["distributions", "--json"]).arg(&site),
            BIG_INPUT_GUARD,
        );
        let eps = &dist(&answer, "big-1.0.dist-info")["entry_points"];
        assert_eq!(eps[0]["group"].as_str(), Some(group.as_str()));
        assert_eq!(eps[0]["value"].as_str(), Some(value.as_str()));
        assert_eq!(eps[1]["value"], "y:z");
    }
}

// ---------------------------------------------------------------------------
// Files that are not regular files

/// Something other than a regular file.
#[derive(Clone, Copy, Debug)]
enum Special {
    Fifo,
    Socket,
    /// A symlink to `/dev/zero`: endless zeros.
    DevZero,
    /// A device node of its own (`mknod c 1 5`, a zero device).
    DeviceNode,
}

/// Creates `kind` at `path`; `false` (after saying why) when this system
/// does not let the test make one.
fn make_special(path: &Path, kind: Special) -> bool {
    match kind {
        Special::Fifo => run_tool(Command::new("mkfifo").arg(path)),
        Special::Socket => {
            // The socket file stays when the listener is dropped.
            drop(std::os::unix::net::UnixListener::bind(path).unwrap());
            true
        }
        Special::DevZero => {
            std::os::unix::fs::symlink("/dev/zero", path).unwrap();
            true
        }
        Special::DeviceNode if euid() != 0 => {
            eprintln!("skipped: creating a device node needs root");
            false
        }
        Special::DeviceNode => run_tool(Command::new("mknod").arg(path).args(["c", "1", "5"])),
    }
}

/// Runs a helper tool; `false` (after saying why) when it fails.
fn run_tool(cmd: &mut Command) -> bool {
    let out = run(cmd);
    if !out.status.success() {
        eprintln!("skipped: {cmd:?} failed: {}", describe(&out));
    }
    out.status.success()
}

/// Where the special file goes.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// `special-1.0.dist-info/METADATA`.
    Metadata,
    /// `special-1.0.egg-info/PKG-INFO`, with no METADATA.
    PkgInfo,
    /// `special-1.0.dist-info/entry_points.txt`, beside a good METADATA.
    EntryPoints,
    /// `special-1.0.egg-info` itself, single-file metadata.
    EggInfoFile,
    /// `special-1.0.dist-info` itself.
    DistInfoFile,
}

impl Place {
    /// The name of the distribution's child of the site.
    fn child(self) -> &'static str {
        match self {
            Place::Metadata | Place::EntryPoints | Place::DistInfoFile => "special-1.0.dist-info",
            Place::PkgInfo | Place::EggInfoFile => "special-1.0.egg-info",
        }
    }

    /// Prepares the distribution's directory, if any, and returns where
    /// the special file goes.
    fn prepare(self, site: &Path) -> PathBuf {
        let child = site.join(self.child());
        let file = match self {
            Place::EggInfoFile | Place::DistInfoFile => return child,
            Place::Metadata => "METADATA",
            Place::PkgInfo => "PKG-INFO",
            Place::EntryPoints => "entry_points.txt",
        };
        fs::create_dir(&child).unwrap();
        if matches!(self, Place::EntryPoints) {
            fs::write(child.join("METADATA"), "Name: special\nVersion: 1.0\n\n").unwrap();
        }
        child.join(file)
    }
}

/// Two ordinary distributions with one entry point each.
fn ordinary_dists(site: &Path) {
    fs::create_dir_all(site).unwrap();
    for name in ["alpha", "beta"] {
        let value = format!("{name}:main");
        write_dist(site, name, "1.0", &[("console_scripts", name, &value)]);
    }
}

/// Checks that the ordinary distributions are in `answer`, complete.
fn assert_ordinary_dists(answer: &Value) {
    for name in ["alpha", "beta"] {
        let dist = dist(answer, &dist_dir_name(name, "1.0"));
        assert_eq!(dist["name"], name, "{dist}");
        assert_eq!(dist["version"], "1.0", "{dist}");
        assert_eq!(dist["entry_points"][0]["value"], format!("{name}:main"));
    }
}

/// A site with `kind` at `place` beside ordinary distributions: the
/// answer comes, lists the ordinary distributions, and lists the special
/// one with a diagnostic and nothing read from the special file.
fn special_file_is_skipped(kind: Special, place: Place) {
    let tmp = tempdir();
    let site = tmp.path().join("site");
    ordinary_dists(&site);
    if !make_special(&place.prepare(&site), kind) {
        return;
    }
    let answer = run_guarded_json(
        cached(&tmp.path().join("cache"))
            .args(["distributions", "--json"])
            .arg(&site),
        HANG_GUARD,
    );
    assert_ordinary_dists(&answer);
    let special = dist(&answer, place.child());
    let diagnostics = special["diagnostics"].as_array().unwrap();
    assert!(!diagnostics.is_empty(), "no diagnostic: {special}");
    match place {
        Place::EntryPoints => {
            assert_eq!(special["name"], "special", "{special}");
            assert_eq!(special["entry_points"], Value::Array(vec![]), "{special}");
        }
        _ => assert_eq!(special["name"], Value::Null, "{special}"),
    }
}

#[test]
fn fifo_as_metadata() {
    special_file_is_skipped(Special::Fifo, Place::Metadata);
}

#[test]
fn fifo_as_pkg_info() {
    special_file_is_skipped(Special::Fifo, Place::PkgInfo);
}

#[test]
fn fifo_as_entry_points_txt() {
    special_file_is_skipped(Special::Fifo, Place::EntryPoints);
}

#[test]
fn fifo_as_single_file_egg_info() {
    special_file_is_skipped(Special::Fifo, Place::EggInfoFile);
}

#[test]
fn fifo_as_single_file_dist_info() {
    special_file_is_skipped(Special::Fifo, Place::DistInfoFile);
}

#[test]
fn socket_as_metadata() {
    special_file_is_skipped(Special::Socket, Place::Metadata);
}

#[test]
fn socket_as_entry_points_txt() {
    special_file_is_skipped(Special::Socket, Place::EntryPoints);
}

#[test]
fn socket_as_single_file_egg_info() {
    special_file_is_skipped(Special::Socket, Place::EggInfoFile);
}

#[test]
fn dev_zero_symlink_as_metadata() {
    special_file_is_skipped(Special::DevZero, Place::Metadata);
}

#[test]
fn dev_zero_symlink_as_pkg_info() {
    special_file_is_skipped(Special::DevZero, Place::PkgInfo);
}

#[test]
fn dev_zero_symlink_as_entry_points_txt() {
    special_file_is_skipped(Special::DevZero, Place::EntryPoints);
}

#[test]
fn dev_zero_symlink_as_single_file_egg_info() {
    special_file_is_skipped(Special::DevZero, Place::EggInfoFile);
}

#[test]
fn device_node_as_metadata() {
    special_file_is_skipped(Special::DeviceNode, Place::Metadata);
}

#[test]
fn device_node_as_entry_points_txt() {
    special_file_is_skipped(Special::DeviceNode, Place::EntryPoints);
}

#[test]
fn symlinks_to_regular_metadata_files_still_work() {
    let tmp = tempdir();
    let site = tmp.path().join("site");
    ordinary_dists(&site);
    let elsewhere = write_dist(
        tmp.path(),
        "linked",
        "2.0",
        &[("console_scripts", "linked", "linked:main")],
    );
    let dir = site.join(dist_dir_name("linked", "2.0"));
    fs::create_dir(&dir).unwrap();
    for file in ["METADATA", "entry_points.txt"] {
        std::os::unix::fs::symlink(elsewhere.join(file), dir.join(file)).unwrap();
    }
    let answer = run_guarded_json(
        cached(&tmp.path().join("cache"))
            .args(["distributions", "--json"])
            .arg(&site),
        HANG_GUARD,
    );
    assert_ordinary_dists(&answer);
    let linked = dist(&answer, &dist_dir_name("linked", "2.0"));
    assert_eq!(linked["name"], "linked", "{linked}");
    assert_eq!(linked["version"], "2.0", "{linked}");
    assert_eq!(linked["entry_points"][0]["value"], "linked:main");
    assert_eq!(linked["diagnostics"], Value::Array(vec![]), "{linked}");
}

#[test]
fn path_entry_that_is_a_fifo() {
    let tmp = tempdir();
    let fifo = tmp.path().join("site.pyz");
    assert!(make_special(&fifo, Special::Fifo));
    let answer = run_guarded_json(
        cached(&tmp.path().join("cache"))
            .args(["distributions", "--json"])
            .arg(&fifo),
        HANG_GUARD,
    );
    assert_eq!(answer, Value::Array(vec![]));
}

// ---------------------------------------------------------------------------
// The cache's own index file

/// A site whose index has been published, with the index file replaced
/// by `kind`.
struct SpecialIndex {
    tmp: tempfile::TempDir,
    site: PathBuf,
}

impl SpecialIndex {
    fn new(kind: Special) -> Self {
        let tmp = tempdir();
        let site = make_site(&tmp.path().join("site"), 5);
        let index = Self { tmp, site };
        run_guarded_ok(
            cached(&index.root()).arg("distributions").arg(&index.site),
            HANG_GUARD,
        );
        assert_eq!(status(&index.root(), &index.site)["verdict"], "hit");
        let file = index_file(&index.root(), &index.site);
        fs::remove_file(&file).unwrap();
        assert!(make_special(&file, kind));
        index
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }
}

/// A consult does not wait for or read the special index file: it
/// answers from a scan.
fn consult_answers_from_a_scan(kind: Special) {
    let index = SpecialIndex::new(kind);
    let answer = run_guarded_json(
        cached(&index.root())
            .args(["distributions", "--json"])
            .arg(&index.site),
        HANG_GUARD,
    );
    assert_eq!(summarize_json(&answer), summarize(&scan(&index.site)));
}

/// `status` does not wait for or read the special index file, and does
/// not call it a hit.
fn status_is_not_a_hit(kind: Special) {
    let index = SpecialIndex::new(kind);
    let status = status(&index.root(), &index.site);
    assert!(
        !status["verdict"].as_str().unwrap().starts_with("hit"),
        "{status}"
    );
}

#[test]
fn index_file_that_is_a_fifo_consult() {
    consult_answers_from_a_scan(Special::Fifo);
}

#[test]
fn index_file_that_is_a_fifo_status() {
    status_is_not_a_hit(Special::Fifo);
}

#[test]
fn index_file_that_is_a_dev_zero_symlink_consult() {
    consult_answers_from_a_scan(Special::DevZero);
}

#[test]
fn index_file_that_is_a_dev_zero_symlink_status() {
    status_is_not_a_hit(Special::DevZero);
}

// ---------------------------------------------------------------------------
// Linear time

/// A site with one distribution, `big-1.0.dist-info`, whose METADATA is
/// `metadata`, scanned without the cache: its name and version come out.
fn assert_big_metadata_is_read(metadata: &[u8]) {
    let tmp = tempdir();
    let site = tmp.path().join("site");
    let dir = write_dist(&site, "big", "1.0", &[]);
    fs::write(dir.join("METADATA"), metadata).unwrap();
    let answer = run_guarded_json(
        uncached().args(["distributions", "--json"]).arg(&site),
        BIG_INPUT_GUARD,
    );
    let big = dist(&answer, "big-1.0.dist-info");
    assert_eq!(big["name"], "big", "{big}");
    assert_eq!(big["version"], "1.0", "{big}");
}

/// A header block made of `filler`, about [`HUGE`] bytes of it, with
/// `Name` and `Version` only at its end.
fn metadata_with_late_name(filler: &[u8]) -> Vec<u8> {
    let mut text = b"Metadata-Version: 2.1\n".to_vec();
    text.extend_from_slice(filler);
    text.extend_from_slice(b"Name: big\nVersion: 1.0\n\nThe description.\n");
    text
}

#[test]
fn metadata_with_a_40_mb_header_block_of_short_lines() {
    let line = format!("X-Padding: {}\n", "a".repeat(52));
    let filler = line.repeat(HUGE / line.len());
    assert_big_metadata_is_read(&metadata_with_late_name(filler.as_bytes()));
}

#[test]
fn metadata_with_one_40_mb_header_line() {
    let filler = format!("Summary: {}\n", "a".repeat(HUGE));
    assert_big_metadata_is_read(&metadata_with_late_name(filler.as_bytes()));
}

#[test]
fn metadata_with_a_40_mb_continued_header() {
    let line = format!(" {}\n", "c".repeat(62));
    let filler = format!("Description: d\n{}", line.repeat(HUGE / line.len()));
    assert_big_metadata_is_read(&metadata_with_late_name(filler.as_bytes()));
}

/// A zip archive holding one distribution and `dirs` top-level package
/// directories, then `files` more members under the last of them.
fn zip_with_many_members(path: &Path, dirs: usize, files: usize) {
    use std::io::Write;
    let file = io::BufWriter::new(fs::File::create(path).unwrap());
    let mut writer = zip::ZipWriter::new(file);
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    writer
        .start_file("zipped-1.0.dist-info/METADATA", options)
        .unwrap();
    writer.write_all(b"Name: zipped\nVersion: 1.0\n\n").unwrap();
    let last = dirs - 1;
    let members = (0..dirs)
        .map(|i| format!("m{i:06}/__init__.py"))
        .chain((0..files).map(|i| format!("m{last:06}/f{i:06}.py")));
    for member in members {
        writer.start_file(member, options).unwrap();
    }
    writer.finish().unwrap();
}

#[test]
fn zip_path_entry_with_300_thousand_members() {
    let tmp = tempdir();
    let pyz = tmp.path().join("app.pyz");
    zip_with_many_members(&pyz, 150_000, 150_000);
    let answer = run_guarded_json(
        uncached().args(["distributions", "--json"]).arg(&pyz),
        BIG_INPUT_GUARD,
    );
    let zipped = dist(&answer, "zipped-1.0.dist-info");
    assert_eq!(zipped["name"], "zipped", "{zipped}");
    assert_eq!(answer.as_array().unwrap().len(), 1, "{answer}");
}

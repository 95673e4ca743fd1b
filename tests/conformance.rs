//! Conformance: epcache against the machine's own `importlib.metadata`
//! (`tests/oracle.py`), through the library and through the `epcache`
//! binary (cache disabled, and cache enabled with the second run served
//! from the cache).
//!
//! * (a) a generated tree that exercises every rule of the reference page,
//!   plus a path entry of faulty distributions on which importlib raises;
//! * (b) the pinned test venv (`scripts/make-venv.sh target/test-venv`),
//!   which must match exactly. Under CI (`CI=true`) it must run.

#[path = "conformance/model.rs"]
mod model;
#[path = "conformance/oracle.rs"]
mod oracle;
#[path = "conformance/tree.rs"]
mod tree;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use epcache::{Environment, Selection};
use serde_json::Value;

use model::{assert_same, cli_dists, cli_eps, lib_dists, lib_eps, DistView, EpView};
use oracle::{path_string, Oracle};
use tree::Fault;

// --- plumbing -----------------------------------------------------------------

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1"))
}

/// Whether the oracle can run; outside CI a missing `python3` skips the
/// test with a message, under CI it fails it.
fn oracle_or_skip(test: &str) -> bool {
    match oracle::available() {
        Ok(()) => true,
        Err(why) if in_ci() => panic!("{test}: the importlib oracle cannot run under CI: {why}"),
        Err(why) => {
            eprintln!("SKIP {test}: the importlib oracle cannot run: {why}");
            false
        }
    }
}

/// Names to ask `version()` about: every distribution's `Name` and
/// directory stem, with case and separator variants, and names that are
/// not installed.
fn names_to_ask(first: &Oracle) -> Vec<String> {
    let mut base = BTreeSet::new();
    for dist in &first.distributions {
        if let Some(name) = &dist.name {
            base.insert(name.clone());
        }
        let file = dist.path.rsplit('/').next().unwrap_or_default();
        let stem = file.split('-').next().unwrap_or_default();
        base.insert(stem.to_owned());
        base.insert(file.to_owned());
    }
    let mut names = BTreeSet::new();
    for name in &base {
        names.insert(name.clone());
        names.insert(name.to_uppercase());
        names.insert(name.to_lowercase());
        names.insert(name.replace('-', "_"));
        names.insert(name.replace('_', "-"));
        names.insert(name.replace(['-', '_'], "."));
        names.insert(name.replace(['.', '_'], "-"));
        names.insert(format!("{name}--"));
        names.insert(format!("{}-x", name.to_lowercase()));
    }
    for missing in [
        "definitely-not-installed",
        "foo",
        "Foo_Bar_Baz",
        "EGG-INFO",
        "egg-info",
        "lower_case",
        "-",
        "_",
    ] {
        names.insert(missing.into());
    }
    // `,` separates names on the oracle's command line; `\udc..` cannot be
    // passed through argv losslessly.
    names
        .into_iter()
        .filter(|n| !n.is_empty() && !n.contains(',') && !n.contains("\\udc"))
        .collect()
}

/// The oracle on `paths`, with `version()` asked for every name it finds.
fn oracle_with_versions(paths: &[PathBuf]) -> Oracle {
    let first = oracle::run(paths, &[]);
    let names = names_to_ask(&first);
    let full = oracle::run(paths, &names);
    assert_eq!(
        full.versions.len(),
        names.len(),
        "the oracle answered version() for every name"
    );
    full
}

/// How to run the binary: cache disabled, or a private cache directory.
#[derive(Clone, Copy, Debug)]
enum CacheMode<'a> {
    Disabled,
    Dir(&'a Path),
}

/// `epcache ARGS -- PATHS`; no PATHS means the `sys.path` of `python3`
/// started in `cwd`.
fn epcache_cmd(
    mode: CacheMode<'_>,
    cwd: Option<&Path>,
    args: &[&str],
    paths: &[PathBuf],
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_epcache"));
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    cmd.args(args)
        .arg("--")
        .args(paths)
        // The same environment as the oracle's interpreter.
        .env("PYTHONNOUSERSITE", "1")
        .env_remove("PYTHONPATH")
        .env_remove("EPCACHE_DIR")
        .env_remove("EPCACHE_DISABLE")
        .env_remove("EPCACHE_SETTLE_SECS");
    match mode {
        CacheMode::Disabled => {
            cmd.env("EPCACHE_DISABLE", "1");
        }
        CacheMode::Dir(dir) => {
            cmd.env("EPCACHE_DIR", dir).env("EPCACHE_SETTLE_SECS", "0");
        }
    }
    cmd
}

/// Runs `epcache ARGS -- PATHS` and parses its JSON output.
fn epcache_json(mode: CacheMode<'_>, args: &[&str], paths: &[PathBuf]) -> Value {
    epcache_json_in(mode, None, args, paths)
}

/// [`epcache_json`] in another working directory.
fn epcache_json_in(
    mode: CacheMode<'_>,
    cwd: Option<&Path>,
    args: &[&str],
    paths: &[PathBuf],
) -> Value {
    let out = epcache_cmd(mode, cwd, args, paths)
        .output()
        .expect("run the epcache binary");
    assert!(
        out.status.success(),
        "epcache {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "epcache {args:?} printed invalid JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The oracle's entry points of `group`, as `entry_points()` filtered.
fn oracle_select(eps: &[EpView], group: Option<&str>, name: Option<&str>) -> Vec<EpView> {
    eps.iter()
        .filter(|e| group.is_none_or(|g| e.group == g) && name.is_none_or(|n| e.name == n))
        .cloned()
        .collect()
}

/// Groups in first-seen order of a list of entry points.
fn group_order(eps: &[EpView]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    eps.iter()
        .filter(|e| seen.insert(e.group.clone()))
        .map(|e| e.group.clone())
        .collect()
}

// --- the comparisons ------------------------------------------------------------

/// What epcache must answer, in the oracle's terms.
struct Expected {
    dists: Vec<DistView>,
    eps: Vec<EpView>,
    groups: Vec<(String, Vec<EpView>)>,
    versions: Vec<(String, Option<String>)>,
}

impl Expected {
    /// Everything the oracle said, which must all have succeeded.
    fn from_oracle(o: &Oracle) -> Expected {
        assert_eq!(
            o.entry_points_error, None,
            "importlib.metadata.entry_points() raised on an entry that should be clean"
        );
        for d in &o.distributions {
            assert_eq!(d.error, None, "importlib raised for {}", d.path);
        }
        assert!(
            o.version_errors.is_empty(),
            "version() raised: {:?}",
            o.version_errors
        );
        let eps = o.entry_points.clone().expect("entry points");
        // The stock entry_points(group=g) must agree with the discovery
        // order the oracle reports without arguments; otherwise the oracle
        // itself is inconsistent.
        for (g, stock) in &o.groups {
            assert_eq!(
                stock,
                &oracle_select(&eps, Some(g), None),
                "oracle: entry_points(group={g:?}) disagrees with the discovery order"
            );
        }
        // serde_json reads the oracle's `groups` object sorted by key; put
        // the groups back in first-seen order.
        let order = group_order(&eps);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(
            o.groups.iter().map(|(g, _)| g.clone()).collect::<Vec<_>>(),
            sorted,
            "oracle: groups"
        );
        let groups = order
            .into_iter()
            .map(|g| {
                let eps = o.groups.iter().find(|(k, _)| *k == g).unwrap().1.clone();
                (g, eps)
            })
            .collect();
        Expected {
            dists: o.dist_views(),
            eps,
            groups,
            versions: o
                .versions
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Rewrites metadata paths from one path entry to another (for a
    /// repaired copy of a tree).
    fn moved(mut self, from: &Path, to: &Path) -> Expected {
        let (from, to) = (path_string(from) + "/", path_string(to) + "/");
        for d in &mut self.dists {
            if let Some(rest) = d.path.strip_prefix(&from) {
                d.path = format!("{to}{rest}");
            }
        }
        self
    }
}

/// The library against the oracle.
fn check_library(label: &str, env: &Environment, expected: &Expected) {
    assert_same(
        &format!("{label}: library distributions()"),
        &expected.dists,
        &lib_dists(env),
    );
    let all = lib_eps(env, &Selection::all());
    assert_same(
        &format!("{label}: library entry_points()"),
        &expected.eps,
        &all,
    );
    assert_eq!(
        group_order(&all),
        expected
            .groups
            .iter()
            .map(|(g, _)| g.clone())
            .collect::<Vec<_>>(),
        "{label}: groups"
    );
    for (group, eps) in &expected.groups {
        assert_same(
            &format!("{label}: library entry_points(group={group:?})"),
            eps,
            &lib_eps(env, &Selection::group(group.clone())),
        );
    }
    // Selection by name, and by group and name.
    let names: BTreeSet<&str> = expected.eps.iter().map(|e| e.name.as_str()).collect();
    for name in names.iter().take(25) {
        let by_name = Selection {
            group: None,
            name: Some(name.to_string()),
        };
        assert_same(
            &format!("{label}: library entry_points(name={name:?})"),
            &oracle_select(&expected.eps, None, Some(name)),
            &lib_eps(env, &by_name),
        );
    }
    if let Some(first) = expected.eps.first() {
        let both = Selection {
            group: Some(first.group.clone()),
            name: Some(first.name.clone()),
        };
        assert_same(
            &format!("{label}: library entry_points(group=, name=)"),
            &oracle_select(&expected.eps, Some(&first.group), Some(&first.name)),
            &lib_eps(env, &both),
        );
    }
    let wrong: Vec<String> = expected
        .versions
        .iter()
        .filter(|(name, want)| env.version(name) != want.as_deref())
        .map(|(name, want)| {
            format!(
                "version({name:?}): importlib {want:?}, epcache {:?}",
                env.version(name)
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{label}: library version() differs for {} of {} names:\n{}",
        wrong.len(),
        expected.versions.len(),
        wrong.join("\n")
    );
}

/// Where and on what the binary runs.
#[derive(Clone, Copy)]
struct Target<'a> {
    /// The PATH arguments; empty means `python3`'s `sys.path`.
    paths: &'a [PathBuf],
    /// The path entries that are read (for `status`).
    entries: &'a [PathBuf],
    /// The working directory, if not inherited.
    cwd: Option<&'a Path>,
}

impl<'a> Target<'a> {
    fn paths(paths: &'a [PathBuf]) -> Self {
        Target {
            paths,
            entries: paths,
            cwd: None,
        }
    }
}

/// The binary against the oracle; returns the distributions' diagnostics.
/// `per_group` adds one `--group` run per group and the `--name` runs.
fn check_cli(
    label: &str,
    mode: CacheMode<'_>,
    target: Target<'_>,
    expected: &Expected,
    per_group: bool,
) -> Vec<Vec<String>> {
    let run = |args: &[&str]| epcache_json_in(mode, target.cwd, args, target.paths);
    let dists = cli_dists(&run(&["distributions", "--json"]));
    let views: Vec<DistView> = dists.iter().map(|(v, _)| v.clone()).collect();
    assert_same(
        &format!("{label}: `epcache distributions --json`"),
        &expected.dists,
        &views,
    );
    let eps = cli_eps(&run(&["entry-points", "--json"]));
    assert_same(
        &format!("{label}: `epcache entry-points --json`"),
        &expected.eps,
        &eps,
    );
    if !per_group {
        return dists.into_iter().map(|(_, d)| d).collect();
    }
    for (group, eps) in &expected.groups {
        let got = cli_eps(&run(&["entry-points", "--json", "--group", group]));
        assert_same(
            &format!("{label}: `epcache entry-points --json --group {group:?}`"),
            eps,
            &got,
        );
    }
    if let Some(first) = expected.eps.first() {
        let got = cli_eps(&run(&["entry-points", "--json", "--name", &first.name]));
        assert_same(
            &format!(
                "{label}: `epcache entry-points --json --name {:?}`",
                first.name
            ),
            &oracle_select(&expected.eps, None, Some(&first.name)),
            &got,
        );
        let got = cli_eps(&run(&[
            "entry-points",
            "--json",
            "--group",
            &first.group,
            "--name",
            &first.name,
        ]));
        assert_same(
            &format!("{label}: `epcache entry-points --json --group --name`"),
            &oracle_select(&expected.eps, Some(&first.group), Some(&first.name)),
            &got,
        );
    }
    dists.into_iter().map(|(_, d)| d).collect()
}

/// The binary with a private cache: a first run publishes, `status` then
/// says every existing entry is a hit (or has no file, where the scan is
/// incomplete and so never published: a file this user may not read), and
/// a second run (served from the cache) gives the same answers.
fn check_cli_cached(label: &str, target: Target<'_>, expected: &Expected) -> Vec<Vec<String>> {
    let cache = tempfile::tempdir().unwrap();
    let mode = CacheMode::Dir(cache.path());
    let first = check_cli(
        &format!("{label} (cache, first run)"),
        mode,
        target,
        expected,
        false,
    );
    let status = epcache_json_in(mode, target.cwd, &["status", "--json"], target.paths);
    let status = status.as_array().expect("status --json prints an array");
    assert_eq!(
        status.len(),
        target.entries.len(),
        "{label}: status: {status:?}"
    );
    for (path, s) in target.entries.iter().zip(status) {
        let path_entry = match target.cwd {
            Some(cwd) => cwd.join(path),
            None => path.clone(),
        };
        let want = if !path_entry.exists() {
            "no-entry"
        } else if !epcache::scan(&path_entry).is_complete() {
            "no-file"
        } else {
            "hit"
        };
        assert_eq!(
            s["verdict"].as_str(),
            Some(want),
            "{label}: after one run, the cache for {path:?} should be a {want}: {s}"
        );
    }
    let second = check_cli(
        &format!("{label} (cache, second run)"),
        mode,
        target,
        expected,
        true,
    );
    assert_eq!(
        first, second,
        "{label}: diagnostics differ between a scan and a cache hit"
    );
    second
}

/// Library, uncached binary and cached binary against the oracle.
fn check_everything(label: &str, paths: &[PathBuf], expected: &Expected) {
    let env = Environment::scan(paths);
    check_library(label, &env, expected);
    let lib_diags: Vec<Vec<String>> = env
        .distributions()
        .map(|d| d.diagnostics().map(str::to_owned).collect())
        .collect();
    let target = Target::paths(paths);
    let uncached = check_cli(label, CacheMode::Disabled, target, expected, true);
    assert_eq!(lib_diags, uncached, "{label}: --json diagnostics");
    let cached = check_cli_cached(label, target, expected);
    assert_eq!(lib_diags, cached, "{label}: --json diagnostics (cached)");
}

// --- (a) the generated tree -------------------------------------------------------

#[test]
fn generated_tree_matches_importlib() {
    if !oracle_or_skip("generated_tree_matches_importlib") {
        return;
    }
    let tree = tree::build();
    let oracle = oracle_with_versions(&tree.clean);
    eprintln!(
        "tree (a) at {}: importlib.metadata of Python {}",
        tree.root.path().display(),
        oracle.python
    );
    let expected = Expected::from_oracle(&oracle);

    // The tree really exercises what it is meant to (guards against a
    // fixture that silently stops doing so).
    let paths: Vec<&str> = expected.dists.iter().map(|d| d.path.as_str()).collect();
    for must in [
        "/site1/UPPER-2.0.DIST-INFO",
        "/site1/single-1.2.egg-info",
        "/site1/legacy-0.5-py3.11.egg-info",
        "/site1/hollow-0.0.dist-info",
        "/app.zip/zipped-1.0.dist-info",
        "/app.zip/zipegg-1.0.egg-info",
        "/Foo_Egg-1.0-py3.11.egg/EGG-INFO",
        "/Zipped_Egg-2.0-py3.11.egg/EGG-INFO",
        "/lower.case-0.1.egg/egg-info",
    ] {
        assert!(
            paths.iter().any(|p| p.ends_with(must)),
            "importlib does not see {must}: {paths:#?}"
        );
    }
    assert!(
        expected.dists.len() >= 30,
        "the tree holds {} distributions",
        expected.dists.len()
    );
    let shadowed = expected
        .eps
        .iter()
        .filter(|e| e.value.starts_with("shadowed:"))
        .count();
    assert_eq!(shadowed, 0, "duplicates across path entries are dropped");
    // De-duplication by directory name, by Name for an empty name part
    // (`-1.0.dist-info`), and always by Name inside a zip.
    let visible = |value: &str| expected.eps.iter().any(|e| e.value == value);
    assert!(visible("abc:main") && visible("xyz:main") && visible("zipxyz:main"));
    assert!(visible("dashless:first") && !visible("dashless:second"));
    assert!(!visible("zip_renamed:main"));
    assert!(expected.groups.iter().any(|(g, _)| g == " spaced group "));
    assert!(expected.eps.iter().any(|e| e.name == "beta thing"));
    assert!(expected
        .eps
        .iter()
        .any(|e| e.value == "blackd:patched_main [d]"));

    let found = expected
        .versions
        .iter()
        .filter(|(_, v)| v.is_some())
        .count();
    assert!(
        found >= 40 && found < expected.versions.len(),
        "version() finds {found} of {} names",
        expected.versions.len()
    );

    check_everything("tree (a)", &tree.clean, &expected);

    // Each clean path entry on its own, too (different precedence).
    for entry in &tree.clean {
        let one = [entry.clone()];
        let expected = Expected::from_oracle(&oracle::run(&one, &[]));
        let label = format!("tree (a) entry {}", entry.display());
        check_library(&label, &Environment::scan(&one), &expected);
    }
}

/// A path entry of 300 distributions is read by several threads in
/// blocks while it is listed, then put in discovery order; the result must
/// still be importlib's, repeated names included.
#[test]
fn large_entry_read_while_listing_matches_importlib() {
    if !oracle_or_skip("large_entry_read_while_listing_matches_importlib") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (entry, repeated) = tree::build_large(root.path(), 300);
    let paths = [entry.clone()];
    let expected = Expected::from_oracle(&oracle::run(&paths, &[]));
    assert!(expected.dists.len() > 300, "{}", expected.dists.len());

    // Grouping really has to move something: in listing order, some
    // repeated name's two distributions are not next to each other.
    let listing: Vec<String> = std::fs::read_dir(&entry)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_lowercase())
        .filter(|name| name.ends_with("-info"))
        .collect();
    let apart = repeated.iter().any(|name| {
        let at: Vec<usize> = listing
            .iter()
            .enumerate()
            .filter(|(_, child)| child.starts_with(&format!("{name}-")))
            .map(|(i, _)| i)
            .collect();
        at.len() == 2 && at[1] - at[0] > 1
    });
    assert!(apart, "the listing put every repeated name's pair together");

    check_everything("large entry", &paths, &expected);
}

/// With no PATH the binary reads `python3`'s `sys.path`, whose `""` is the
/// working directory; importlib reads the same entries from there.
#[test]
fn default_sys_path_with_the_current_directory() {
    if !oracle_or_skip("default_sys_path_with_the_current_directory") {
        return;
    }
    let tree = tree::build();
    let cwd = tree.clean[0].as_path();
    let sys_path = oracle::sys_path_in(cwd);
    assert_eq!(sys_path.first(), Some(&PathBuf::new()), "{sys_path:?}");
    let names = names_to_ask(&oracle::run_in(Some(cwd), &sys_path, &[]));
    let expected = Expected::from_oracle(&oracle::run_in(Some(cwd), &sys_path, &names));
    assert!(
        expected
            .dists
            .iter()
            .any(|d| d.path == "UPPER-2.0.DIST-INFO"),
        "importlib reads '' as the working directory"
    );
    let target = Target {
        paths: &[],
        entries: &sys_path,
        cwd: Some(cwd),
    };
    let label = "python3's sys.path in site1";
    check_cli(label, CacheMode::Disabled, target, &expected, true);
    check_cli_cached(label, target, &expected);
}

/// `version(name)` where the first match has no metadata (the leftover of a
/// failed uninstall): CPython's importlib.metadata (3.10 to 3.13) returns
/// that empty first match, so the version is `None`, and so does the
/// library. The backport >= 8.1's rule (prefer a match with metadata) is
/// the first of `distributions_named` that `has_metadata`.
#[test]
fn lookup_takes_the_first_match_as_the_stdlib_does() {
    if !oracle_or_skip("lookup_takes_the_first_match_as_the_stdlib_does") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let first = root.path().join("first");
    let second = root.path().join("second");
    std::fs::create_dir_all(first.join("twin-0.0.dist-info")).unwrap();
    tree::write(
        &second.join("Twin-2.0.dist-info/METADATA"),
        b"Metadata-Version: 2.1\nName: Twin\nVersion: 2.0\n",
    );
    let paths = [first, second];
    let o = oracle::run(&paths, &["twin".to_owned(), "TWIN".to_owned()]);
    let env = Environment::scan(&paths);
    for name in ["twin", "TWIN"] {
        assert_eq!(
            o.versions[name].as_deref(),
            env.version(name),
            "Python {}: version({name:?})",
            o.python
        );
    }
    assert_eq!(
        env.distribution("twin").map(|d| d.metadata_name()),
        Some("twin-0.0.dist-info")
    );
    let valid = env.distributions_named("TWIN").find(|d| d.has_metadata());
    assert_eq!(valid.map(|d| d.metadata_name()), Some("Twin-2.0.dist-info"));
}

#[test]
fn faulty_distributions_are_kept_with_diagnostics() {
    if !oracle_or_skip("faulty_distributions_are_kept_with_diagnostics") {
        return;
    }
    let tree = tree::build();
    let faulty = [tree.faulty.clone()];
    let fixed = [tree.faulty_fixed.clone()];
    let as_root = tree::running_as_root();

    // importlib on the faulty entry: the faulty distributions raise, and so
    // does entry_points() for the whole environment.
    let raw = oracle::run(&faulty, &[]);
    assert!(
        raw.entry_points_error.is_some(),
        "importlib.metadata.entry_points() was expected to raise on {}",
        tree.faulty.display()
    );
    let entry = path_string(&tree.faulty) + "/";
    for (child, fault) in tree::FAULTY {
        let path = format!("{entry}{child}");
        let rec = raw
            .distributions
            .iter()
            .find(|d| d.path == path)
            .unwrap_or_else(|| panic!("importlib does not list {path}"));
        assert_eq!(
            rec.error.is_some(),
            fault.importlib_raises(),
            "importlib on {child} ({fault:?}): {:?}",
            rec.error
        );
    }
    assert_eq!(raw.distributions.len(), tree::FAULTY.len());

    // What epcache must report: importlib's answer on the repaired copy.
    let expected =
        Expected::from_oracle(&oracle_with_versions(&fixed)).moved(&fixed[0], &faulty[0]);
    check_everything("faulty entry", &faulty, &expected);

    // Where importlib did not fail on a field, epcache agrees with it on
    // the faulty tree directly.
    let env = Environment::scan(&faulty);
    let ours = lib_dists(&env);
    for rec in &raw.distributions {
        let mine = ours.iter().find(|d| d.path == rec.path).expect("listed");
        match rec.error.as_deref() {
            None => assert_eq!(&rec.view(), mine),
            Some(err) if rec.name.is_some() || rec.version.is_some() => {
                // entry_points raised; name and version were read.
                assert_eq!(
                    (&rec.name, &rec.version),
                    (&mine.name, &mine.version),
                    "{}: {err}",
                    rec.path
                );
            }
            Some(err) => {
                // name/version raised; entry points may still have been read.
                if let Some(eps) = &rec.entry_points {
                    assert_eq!(eps, &mine.entry_points, "{}: {err}", rec.path);
                }
            }
        }
    }

    // Only the unreadable `entry_points.txt` (Fault::Locked) can make the
    // scan incomplete, and only when not root: check_cli_cached above
    // then expects no cache file.
    assert_eq!(
        epcache::scan(&tree.faulty).is_complete(),
        as_root,
        "the faulty entry's scan is complete exactly when running as root"
    );

    // Diagnostics: in the library and in `--json`, on the right
    // distribution, saying what was dropped.
    let cli = cli_dists(&epcache_json(
        CacheMode::Disabled,
        &["distributions", "--json"],
        &faulty,
    ));
    for (child, fault) in tree::FAULTY {
        let dist = env
            .distributions()
            .find(|d| d.metadata_name() == *child)
            .unwrap_or_else(|| panic!("epcache dropped {child}"));
        let lib: Vec<&str> = dist.diagnostics().collect();
        let (_, json) = cli
            .iter()
            .find(|(v, _)| v.path.ends_with(&format!("/{child}")))
            .expect("listed in --json");
        assert_eq!(&lib, json, "{child}: --json diagnostics");
        if fault.needs_diagnostic(as_root) {
            assert!(
                !lib.is_empty(),
                "{child} ({fault:?}) has no diagnostic in epcache"
            );
            let says = |what: &str| lib.iter().any(|m| m.contains(what));
            match fault {
                Fault::NoEquals => assert!(says("'='"), "{child}: {lib:?}"),
                Fault::EntryPointsUtf8 | Fault::MetadataUtf8 => {
                    assert!(says("UTF-8"), "{child}: {lib:?}")
                }
                Fault::Locked => assert!(says("entry_points.txt"), "{child}: {lib:?}"),
                _ => {}
            }
        } else if matches!(fault, Fault::None | Fault::BodyUtf8) {
            assert!(lib.is_empty(), "{child}: unexpected diagnostics {lib:?}");
        }
    }
    // Both faults of `mixed` are reported: the line without `=` and the
    // non-UTF-8 line of entry_points.txt, and the METADATA header.
    let mixed = env
        .distributions()
        .find(|d| d.metadata_name() == "mixed-1.0.dist-info")
        .unwrap();
    assert_eq!(
        mixed.diagnostics().count(),
        3,
        "{:?}",
        mixed.diagnostics().collect::<Vec<_>>()
    );

    // Next to a clean entry, the faulty one hides nothing: every entry
    // point of both is visible, where importlib raises for all of them.
    let site1 = tree.clean[0].clone();
    let mixed_env = [site1.clone(), tree.faulty.clone()];
    assert!(oracle::run(&mixed_env, &[]).entry_points_error.is_some());
    let repaired = Expected::from_oracle(&oracle::run(
        &[site1.clone(), tree.faulty_fixed.clone()],
        &[],
    ))
    .moved(&tree.faulty_fixed, &tree.faulty);
    let env = Environment::scan(&mixed_env);
    assert_same(
        "site1 + faulty: library entry_points()",
        &repaired.eps,
        &lib_eps(&env, &Selection::all()),
    );
    let cli = cli_eps(&epcache_json(
        CacheMode::Disabled,
        &["entry-points", "--json"],
        &mixed_env,
    ));
    assert_same("site1 + faulty: `entry-points --json`", &repaired.eps, &cli);
}

/// A distribution without `Name` that importlib de-duplicates by Name
/// (an extension that is not exactly `.dist-info`, or a directory in a
/// zip) makes importlib's `entry_points()` raise `TypeError`; epcache keeps
/// it and never merges it with another.
#[test]
fn nameless_distribution_that_importlib_cannot_deduplicate() {
    if !oracle_or_skip("nameless_distribution_that_importlib_cannot_deduplicate") {
        return;
    }
    let tree = tree::build();
    for entry in &tree.nameless {
        let label = format!("nameless {}", entry.display());
        let paths = [entry.clone()];
        let o = oracle::run(&paths, &[]);
        // TypeError on Python 3.11 (`normalize(None)`).
        assert!(
            o.entry_points_error.is_some(),
            "{label}: importlib.metadata.entry_points() was expected to raise"
        );
        let env = Environment::scan(&paths);
        assert_same(
            &format!("{label}: distributions()"),
            &o.dist_views(),
            &lib_dists(&env),
        );
        // With nothing to merge, entry_points() is every distribution's
        // entry points in discovery order.
        let want: Vec<EpView> = o
            .distributions
            .iter()
            .flat_map(|d| {
                d.entry_points
                    .clone()
                    .unwrap()
                    .into_iter()
                    .map(|[g, n, v]| EpView {
                        group: g,
                        name: n,
                        value: v,
                        dist: d.name.clone(),
                    })
            })
            .collect();
        assert_eq!(want.len(), 2, "{label}: {want:?}");
        assert_same(
            &format!("{label}: entry_points()"),
            &want,
            &lib_eps(&env, &Selection::all()),
        );
        let cli = cli_eps(&epcache_json(
            CacheMode::Disabled,
            &["entry-points", "--json"],
            &paths,
        ));
        assert_same(&format!("{label}: `entry-points --json`"), &want, &cli);
    }
}

/// A child whose name is not UTF-8: importlib lists it (with surrogate
/// escapes), epcache skips it with a diagnostic on the index (documented).
#[cfg(unix)]
#[test]
fn non_utf8_file_name_is_skipped_with_a_diagnostic() {
    if !oracle_or_skip("non_utf8_file_name_is_skipped_with_a_diagnostic") {
        return;
    }
    let tree = tree::build();
    let paths = [tree.bad_file_name.clone()];
    let o = oracle::run(&paths, &[]);
    let (odd, rest): (Vec<DistView>, Vec<DistView>) = o
        .dist_views()
        .into_iter()
        .partition(|d| d.path.contains("\\udce9"));
    assert_eq!(
        odd.len(),
        1,
        "importlib lists the undecodable name: {:?}",
        o.distributions
    );
    let env = Environment::scan(&paths);
    assert_same("non-UTF-8 name: distributions()", &rest, &lib_dists(&env));
    let index = &env.indexes()[0];
    let diags: Vec<&str> = index.diagnostics().collect();
    assert!(
        diags.iter().any(|m| m.contains("UTF-8")),
        "no index diagnostic for the skipped child: {diags:?}"
    );
}

// --- (b) the real venv ------------------------------------------------------------

/// The pinned venv's site-packages, built if needed. Under CI a failure
/// fails the test; elsewhere it skips with a message.
fn test_venv() -> Option<(PathBuf, PathBuf)> {
    let root = oracle::repo_root();
    let dir = root.join("target").join("test-venv");
    let out = Command::new("bash")
        .arg(root.join("scripts").join("make-venv.sh"))
        .arg(&dir)
        .current_dir(&root)
        .output();
    let failure = match out {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let site = PathBuf::from(text.lines().last().unwrap_or_default().trim());
            if site.is_dir() {
                return Some((dir, site));
            }
            format!("make-venv printed {text:?}, which is not a directory")
        }
        Ok(out) => format!(
            "make-venv failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("cannot run bash scripts/make-venv.sh: {e}"),
    };
    if in_ci() {
        panic!("the test venv is required under CI: {failure}");
    }
    eprintln!(
        "SKIP real_venv_matches_importlib: {failure}\n     (create it with: bash scripts/make-venv.sh target/test-venv)"
    );
    None
}

/// The venv interpreter's `sys.path`, without the script directory.
fn venv_sys_path(venv: &Path) -> Vec<PathBuf> {
    let python = venv.join("bin").join("python");
    let out = Command::new(&python)
        .args(["-I", "-c", "import sys, json; print(json.dumps(sys.path))"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paths: Vec<String> = serde_json::from_slice(&out.stdout).expect("sys.path as JSON");
    paths
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect()
}

#[test]
fn real_venv_matches_importlib() {
    if !oracle_or_skip("real_venv_matches_importlib") {
        return;
    }
    let Some((venv, site)) = test_venv() else {
        return;
    };

    // site-packages alone, and the interpreter's whole sys.path.
    let alone = [site.clone()];
    let expected = Expected::from_oracle(&oracle_with_versions(&alone));
    assert!(
        expected.dists.len() >= 40,
        "the venv holds only {} distributions",
        expected.dists.len()
    );
    for name in [
        "pytest",
        "flake8",
        "Sphinx",
        "black",
        "pytest-xdist",
        "flake8-bugbear",
    ] {
        assert!(
            expected
                .dists
                .iter()
                .any(|d| d.name.as_deref() == Some(name)),
            "{name} is not installed in the venv"
        );
    }
    for group in ["console_scripts", "pytest11", "flake8.extension"] {
        assert!(
            expected
                .groups
                .iter()
                .any(|(g, eps)| g == group && eps.len() >= 2),
            "the venv has fewer than 2 entry points in {group}"
        );
    }
    check_everything("venv site-packages", &alone, &expected);

    let sys_path = venv_sys_path(&venv);
    assert!(
        sys_path.contains(&site),
        "{sys_path:?} lacks {}",
        site.display()
    );
    let expected = Expected::from_oracle(&oracle_with_versions(&sys_path));
    check_everything("venv sys.path", &sys_path, &expected);
}

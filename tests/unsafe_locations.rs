//! Cache locations that must not be used (or not written) fall back to
//! correct answers and write nothing: a cache root that is a file,
//! `EPCACHE_DISABLE`, directories owned by another user or writable by
//! others, a cache file owned by another user, the `sudo` case, and a
//! read-only cache directory. New files and directories are private.
//!
//! Other users' directories are made with `chown`, and the read-only case
//! runs the binary as `nobody` via `setpriv` (root would ignore the
//! permission bits); those tests need root and skip, saying so, without it.
//! The others run as anyone.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use epcache::{scan, Cache, Lookup, Publish};

const OTHER_UID: u32 = 12345;
fn setup() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempdir();
    let site = make_site(&tmp.path().join("site"), 5);
    set_mtime_ago(&site, Duration::from_secs(3600));
    (tmp, site)
}

fn publishing(root: &Path) -> Cache {
    Cache::at(root).with_settle(Duration::ZERO)
}

/// What the binary prints with the cache off, for comparison.
fn uncached(args: &[&str], site: &Path) -> Vec<u8> {
    let out = run_ok(
        Command::new(BIN)
            .env("EPCACHE_DISABLE", "1")
            .env_remove("EPCACHE_DIR")
            .args(args)
            .arg(site),
    );
    out.stdout
}

/// The queries a user runs, each compared with the uncached answer.
fn assert_cli_answers_match(cmd: impl Fn() -> Command, site: &Path) {
    for args in [
        &["distributions", "--json"][..],
        &["entry-points", "--json"][..],
        &["entry-points", "--json", "--group", "console_scripts"][..],
    ] {
        let out = run_ok(cmd().args(args).arg(site));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&uncached(args, site)),
            "{args:?} differs from the uncached answer"
        );
    }
}

#[test]
fn a_cache_root_that_is_a_regular_file_is_not_used() {
    let (tmp, site) = setup();
    let expected = scan(&site);
    for root in [
        tmp.path().join("cache-file"),
        tmp.path().join("cache-file/sub"),
    ] {
        fs::write(tmp.path().join("cache-file"), b"not a directory\n").unwrap();
        let consulted = publishing(&root).consult(&site);
        assert_eq!(consulted.index, expected);
        assert!(
            matches!(consulted.outcome.lookup, Lookup::Unusable(_)),
            "{}",
            consulted.outcome
        );
        assert!(
            matches!(consulted.outcome.publish, Some(Publish::Unwritable(_))),
            "{}",
            consulted.outcome
        );
        let rebuilt = publishing(&root).rebuild(&site);
        assert_eq!(rebuilt.index, expected);
        assert!(matches!(
            rebuilt.outcome.publish,
            Some(Publish::Unwritable(_))
        ));

        assert_cli_answers_match(|| epcache_settle(&root, "0"), &site);
        assert_cli_rebuild_publish(&root, &site, "unwritable");
        let status = run_json(epcache(&root).arg("status").arg("--json").arg(&site));
        assert_eq!(first(&status)["verdict"], "unusable", "{status}");

        assert_eq!(
            fs::read(tmp.path().join("cache-file")).unwrap(),
            b"not a directory\n"
        );
        assert_eq!(
            list_tree(tmp.path()).len(),
            list_tree(&site).len() + 2,
            "something was written beside the site: {:?}",
            list_tree(tmp.path())
        );
    }
}

#[test]
fn epcache_disable_answers_correctly_without_a_cache_directory() {
    let (tmp, site) = setup();
    let root = tmp.path().join("cache");
    let disabled = || {
        let mut cmd = epcache_settle(&root, "0");
        cmd.env("EPCACHE_DISABLE", "1");
        cmd
    };
    assert_cli_answers_match(disabled, &site);
    let dists = run_json(disabled().args(["distributions", "--json"]).arg(&site));
    assert_eq!(summarize_json(&dists), summarize(&scan(&site)));
    let rebuilt = run_json(disabled().arg("rebuild").arg("--json").arg(&site));
    assert_eq!(first(&rebuilt)["publish"], "disabled", "{rebuilt}");
    let status = run_json(disabled().arg("status").arg("--json").arg(&site));
    assert_eq!(first(&status)["verdict"], "disabled", "{status}");
    let pruned = run_json(disabled().args(["prune", "--json"]));
    assert_eq!(pruned["disabled"], true, "{pruned}");
    let cleared = run_json(disabled().args(["clear", "--json"]));
    assert_eq!(cleared["disabled"], true, "{cleared}");
    assert!(
        !root.exists(),
        "EPCACHE_DISABLE=1 created the cache directory"
    );

    // `0` and the empty string mean enabled: the same run now writes.
    for value in ["0", ""] {
        let mut cmd = epcache_settle(&root, "0");
        let rebuilt = run_json(
            cmd.env("EPCACHE_DISABLE", value)
                .arg("rebuild")
                .arg("--json")
                .arg(&site),
        );
        assert_eq!(
            first(&rebuilt)["publish"],
            "published",
            "{value:?}: {rebuilt}"
        );
        assert!(index_file(&root, &site).is_file());
        fs::remove_dir_all(&root).unwrap();
    }
}

/// Consults through a fresh `Cache` (as a new process would), expecting a
/// correct answer, the given publish verdict, and nothing written.
fn assert_refused(root: &Path, site: &Path, want: fn(&Publish) -> bool) {
    let before = list_tree(root);
    let cache = publishing(root);
    for consulted in [
        cache.consult(site),
        cache.rebuild(site),
        cache.consult(site),
    ] {
        assert_eq!(consulted.index, scan(site));
        assert!(
            !consulted.outcome.is_hit(),
            "a refused directory was read: {}",
            consulted.outcome
        );
        let publish = consulted
            .outcome
            .publish
            .as_ref()
            .expect("no publish verdict");
        assert!(want(publish), "unexpected {}", consulted.outcome);
    }
    assert_cli_answers_match(|| epcache_settle(root, "0"), site);
    assert_eq!(list_tree(root), before, "files were written");
}

#[test]
fn a_cache_directory_owned_by_another_user_is_not_used() {
    if !require_root("a_cache_directory_owned_by_another_user_is_not_used") {
        return;
    }
    let (tmp, site) = setup();
    let root = tmp.path().join("cache");
    fs::create_dir(&root).unwrap();
    chmod(&root, 0o700);
    chown(&root, OTHER_UID);
    assert_refused(&root, &site, |p| matches!(p, Publish::ForeignOwned(_)));
    let status = run_json(epcache(&root).arg("status").arg("--json").arg(&site));
    let refusal = first(&status)["write_refusal"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(refusal.contains("another user"), "{status}");

    // Our root, but another user's versioned directory, with a valid file
    // that would otherwise be a hit.
    let root = tmp.path().join("cache2");
    assert_eq!(
        publishing(&root).consult(&site).outcome.publish,
        Some(Publish::Published)
    );
    chown(&root.join(versioned_name()), OTHER_UID);
    assert_refused(&root, &site, |p| matches!(p, Publish::ForeignOwned(_)));
}

#[test]
fn a_cache_directory_others_can_write_is_not_used() {
    let (tmp, site) = setup();
    let v = versioned_name();
    for (dir, bits) in [
        ("", 0o777),
        ("", 0o720),
        (v.as_str(), 0o707),
        (v.as_str(), 0o770),
    ] {
        let root = tmp.path().join(format!("cache-{}{bits:o}", dir.len()));
        // A valid file first, which would be a hit.
        assert_eq!(
            publishing(&root).consult(&site).outcome.publish,
            Some(Publish::Published)
        );
        assert_eq!(publishing(&root).consult(&site).outcome.lookup, Lookup::Hit);
        let file = index_file(&root, &site);
        let bytes = fs::read(&file).unwrap();
        chmod(&root.join(dir), bits);
        assert_refused(&root, &site, |p| matches!(p, Publish::ForeignOwned(_)));
        assert_eq!(fs::read(&file).unwrap(), bytes, "the file was replaced");
        let status = run_json(epcache(&root).arg("status").arg("--json").arg(&site));
        assert_eq!(first(&status)["verdict"], "unusable", "{status}");
    }
}

#[test]
fn an_index_file_owned_by_another_user_is_not_trusted() {
    if !require_root("an_index_file_owned_by_another_user_is_not_trusted") {
        return;
    }
    let (tmp, site) = setup();
    let root = tmp.path().join("cache");
    let cache = publishing(&root);
    assert_eq!(
        cache.consult(&site).outcome.publish,
        Some(Publish::Published)
    );
    let file = index_file(&root, &site);
    // Valid and fresh: only its owner is wrong.
    chown(&file, OTHER_UID);
    let status = run_json(epcache(&root).arg("status").arg("--json").arg(&site));
    assert_eq!(first(&status)["verdict"], "not-owned", "{status}");

    let consulted = publishing(&root).consult(&site);
    assert_eq!(consulted.outcome.lookup, Lookup::NotOwned);
    assert_eq!(consulted.index, scan(&site));
    // The directory is ours, so the scan replaces the foreign file.
    assert_eq!(consulted.outcome.publish, Some(Publish::Published));
    assert_eq!(owner(&file), euid());
    assert_eq!(publishing(&root).consult(&site).outcome.lookup, Lookup::Hit);
}

#[test]
fn the_sudo_case_creates_nothing_in_another_users_home() {
    if !require_root("the_sudo_case_creates_nothing_in_another_users_home") {
        return;
    }
    let (tmp, site) = setup();
    let home = tmp.path().join("home");
    fs::create_dir(&home).unwrap();
    chmod(&home, 0o755);
    chown(&home, OTHER_UID);
    let root = home.join(".cache/epcache");
    let cache = publishing(&root);
    for consulted in [cache.consult(&site), cache.rebuild(&site)] {
        assert_eq!(consulted.index, scan(&site));
        assert!(
            matches!(consulted.outcome.publish, Some(Publish::ForeignOwned(_))),
            "{}",
            consulted.outcome
        );
    }
    assert_cli_answers_match(|| epcache_settle(&root, "0"), &site);
    assert_cli_rebuild_publish(&root, &site, "foreign-owned");
    let status = run_json(epcache(&root).arg("status").arg("--json").arg(&site));
    let refusal = first(&status)["write_refusal"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(refusal.contains("belongs to another user"), "{status}");
    assert!(
        list_tree(&home).is_empty(),
        "created {:?}",
        list_tree(&home)
    );

    // Under a directory of our own, the same missing root is created.
    let mine = tmp.path().join("mine/.cache/epcache");
    assert_eq!(
        publishing(&mine).consult(&site).outcome.publish,
        Some(Publish::Published)
    );
}

#[test]
fn new_cache_files_and_directories_are_private() {
    let (tmp, site) = setup();
    let root = tmp.path().join("deep/cache");
    // Even with a umask that lets everything through.
    let out = run_ok(
        Command::new("sh")
            .env_remove("EPCACHE_DISABLE")
            .env("EPCACHE_DIR", &root)
            .env("EPCACHE_SETTLE_SECS", "0")
            .args([
                "-c",
                "umask 000; exec \"$0\" \"$@\"",
                BIN,
                "rebuild",
                "--json",
            ])
            .arg(&site),
    );
    assert_eq!(first(&parse_json(&out.stdout))["publish"], "published");
    let file = index_file(&root, &site);
    assert_eq!(mode(&root), 0o700, "cache root");
    assert_eq!(
        mode(&root.join(versioned_name())),
        0o700,
        "versioned directory"
    );
    assert_eq!(mode(&file), 0o600, "index file");
    assert_eq!(owner(&file), euid());
    // Republishing keeps it private.
    run_ok(epcache_settle(&root, "0").arg("rebuild").arg(&site));
    assert_eq!(mode(&file), 0o600, "index file after a rebuild");
}

fn have_setpriv() -> bool {
    Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_read_only_cache_directory_answers_correctly_and_writes_nothing() {
    if !require_root("a_read_only_cache_directory_answers_correctly_and_writes_nothing") {
        return;
    }
    if !have_setpriv() {
        println!("skipped: setpriv is not installed, so nothing can run as another user");
        return;
    }
    let (tmp, site) = setup();
    let bin = binary_for_nobody(tmp.path());

    // (a) A read-only root with no versioned directory yet.
    let root = tmp.path().join("cache-a");
    fs::create_dir(&root).unwrap();
    chown(&root, NOBODY);
    chmod(&root, 0o500);
    check_read_only(&bin, &root, &site, "no-file");

    // (b) A read-only versioned directory holding nobody's valid file: it
    // still serves hits, and a stale one is answered by a scan.
    let root = tmp.path().join("cache-b");
    fs::create_dir(&root).unwrap();
    chown(&root, NOBODY);
    chmod(&root, 0o700);
    let rebuilt = run_ok(
        epcache_as_nobody(&bin, &root)
            .arg("rebuild")
            .arg("--json")
            .arg(&site),
    );
    assert_eq!(first(&parse_json(&rebuilt.stdout))["publish"], "published");
    let file = index_file(&root, &site);
    assert_eq!(owner(&file), NOBODY);
    chmod(&root.join(versioned_name()), 0o500);
    check_read_only(&bin, &root, &site, "hit");
    write_dist(
        &site,
        "late",
        "1.0",
        &[("console_scripts", "late", "late:main")],
    );
    check_read_only(&bin, &root, &site, "stale");
}

fn check_read_only(bin: &Path, root: &Path, site: &Path, verdict: &str) {
    let before = list_tree(root);
    let site_before = list_tree(site);
    let file_bytes = fs::read(index_file(root, site)).ok();
    assert_cli_answers_match(|| epcache_as_nobody(bin, root), site);
    let status = run_json(
        epcache_as_nobody(bin, root)
            .arg("status")
            .arg("--json")
            .arg(site),
    );
    assert_eq!(first(&status)["verdict"], verdict, "{status}");
    let rebuilt = run_json(
        epcache_as_nobody(bin, root)
            .arg("rebuild")
            .arg("--json")
            .arg(site),
    );
    assert_eq!(first(&rebuilt)["publish"], "unwritable", "{rebuilt}");
    assert_eq!(
        first(&rebuilt)["distributions"].as_u64(),
        Some(scan(site).len() as u64)
    );
    assert_eq!(list_tree(root), before, "files were created");
    assert_eq!(fs::read(index_file(root, site)).ok(), file_bytes);
    assert_eq!(
        list_tree(site),
        site_before,
        "files were created in the site"
    );
}

/// `epcache rebuild --json SITE` (settle time zero) reports `expected` as
/// its publish outcome.
fn assert_cli_rebuild_publish(root: &Path, site: &Path, expected: &str) {
    let rebuilt = run_json(
        epcache_settle(root, "0")
            .arg("rebuild")
            .arg("--json")
            .arg(site),
    );
    assert_eq!(first(&rebuilt)["publish"], expected, "{rebuilt}");
}

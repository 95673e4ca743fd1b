//! Many real `epcache` processes sharing one cache with no lock: churn in
//! the path entry, writers killed mid-write, and `clear` racing everyone.
//!
//! The three tests take turns (they would only slow each other down on a
//! small machine), and none of them asserts anything about timing.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::churn::{explain, removed_after, states_during, visible, Change, Churn};
use common::*;
use epcache::{scan, Cache, Lookup, Publish};

static SERIAL: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Checks a process's exit and stderr; a description of what is wrong.
fn failure(what: &str, output: &Output) -> Option<String> {
    (!output.status.success() || !stderr_is_clean(&output.stderr))
        .then(|| format!("{what}: {}", describe(output)))
}

// ---------------------------------------------------------------------------
// a. Churn

/// How long the mutator changes the tree.
const CHURN: Duration = Duration::from_secs(3);

/// The pause between two changes. Longer than any file system clock tick,
/// so every state of the tree has its own mtime; with a settle time of 0
/// that is what keeps a published index from matching a later state.
const CHANGE_EVERY: Duration = Duration::from_millis(20);

enum Said {
    /// `entry-points --json`: the distributions that declared them.
    EntryPoints(BTreeSet<String>),
    /// `rebuild --json`: how many distributions.
    Rebuilt {
        dists: usize,
        eps: usize,
        publish: String,
    },
}

struct Answer {
    start: Instant,
    end: Instant,
    said: Said,
}

/// The same for a rebuild's counts. A published scan saw one whole state.
fn explain_counts(changes: &[Change], a: &Answer, dists: usize, eps: usize, whole: bool) -> bool {
    visible(changes, a.start, a.end).any(|i| {
        let state = &changes[i].state;
        if whole {
            return dists == state.len() && eps == state.len();
        }
        let removable = removed_after(changes, i, a.end).intersection(state).count();
        let range = state.len() - removable..=state.len();
        range.contains(&dists) && range.contains(&eps) && eps <= dists
    })
}

/// The distributions an `entry-points --json` answer comes from, after
/// checking that each one declares exactly its own entry point.
fn names_of(eps: &[SelectedEp]) -> Result<BTreeSet<String>, String> {
    let names: BTreeSet<String> = eps.iter().filter_map(|ep| ep.3.clone()).collect();
    let mut got: Vec<SelectedEp> = eps.to_vec();
    got.sort();
    let mut want: Vec<SelectedEp> = names
        .iter()
        .map(|n| {
            let (g, name, value) = churn_ep(n);
            (g, name, value, Some(n.clone()))
        })
        .collect();
    want.sort();
    if got == want {
        Ok(names)
    } else {
        Err(format!("entry points not of whole distributions: {got:?}"))
    }
}

#[test]
fn churn_every_answer_is_a_state_the_tree_passed_through() {
    let _turn = one_at_a_time();
    let tmp = tempdir();
    let site = tmp.path().join("site");
    let root = tmp.path().join("cache");
    fs::create_dir(&site).unwrap();
    let pool: Vec<String> = (0..10).map(|i| format!("churn{i:02}")).collect();
    let mut state = BTreeSet::new();
    for name in ["steady-a", "steady-b", "steady-c"]
        .iter()
        .map(|s| s.to_string())
        .chain(pool[..4].iter().cloned())
    {
        write_churn_dist(&site, &name);
        state.insert(name);
    }
    let mut churn = Churn::new(&site, tmp.path(), state);
    let stop = AtomicBool::new(false);
    let answers = Mutex::new(Vec::<Answer>::new());
    let failures = Mutex::new(Vec::<String>::new());

    thread::scope(|s| {
        for worker in 0..8 {
            let (site, root, stop, answers, failures) = (&site, &root, &stop, &answers, &failures);
            s.spawn(move || {
                let mut turn = worker;
                while !stop.load(Ordering::Relaxed) {
                    turn += 1;
                    let command = if turn % 2 == 0 {
                        "entry-points"
                    } else {
                        "rebuild"
                    };
                    let start = Instant::now();
                    let output = run(epcache_settle(root, "0")
                        .args([command, "--json"])
                        .arg(site));
                    let end = Instant::now();
                    if let Some(why) = failure(command, &output) {
                        failures.lock().unwrap().push(why);
                        continue;
                    }
                    let json = parse_json(&output.stdout);
                    let said = if command == "entry-points" {
                        match names_of(&entry_points_json(&json)) {
                            Ok(names) => Said::EntryPoints(names),
                            Err(why) => {
                                failures.lock().unwrap().push(why);
                                continue;
                            }
                        }
                    } else {
                        let row = first(&json);
                        let count = |key: &str| row[key].as_u64().unwrap() as usize;
                        let publish = row["publish"].as_str().unwrap_or("-").to_owned();
                        // A scan that raced a removal may have read a
                        // distribution's METADATA but not its entry points;
                        // such a torn scan must never be published.
                        if publish == "published" && count("entry_points") != count("distributions")
                        {
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("torn scan published: {row}"));
                        }
                        Said::Rebuilt {
                            dists: count("distributions"),
                            eps: count("entry_points"),
                            publish,
                        }
                    };
                    answers.lock().unwrap().push(Answer { start, end, said });
                }
            });
        }

        // The mutator: every change is one rename, so the tree only ever
        // holds whole distributions.
        let mut rng = XorShift::new(0xc4_0000_0c4e);
        let deadline = Instant::now() + CHURN;
        while Instant::now() < deadline {
            thread::sleep(CHANGE_EVERY);
            churn.toggle(&pool[rng.below(pool.len() as u64) as usize]);
        }
        stop.store(true, Ordering::Relaxed);
    });

    assert_no_failures(failures.into_inner().unwrap());
    let changes = churn.changes();
    let answers = answers.into_inner().unwrap();
    let (mut queries, mut exact, mut published) = (0, 0, 0);
    for a in &answers {
        match &a.said {
            Said::EntryPoints(names) => {
                queries += 1;
                match explain(changes, a.start, a.end, names) {
                    Some(is_state) => exact += usize::from(is_state),
                    None => panic!(
                        "an answer no state between its start and end explains: {names:?}\n\
                         states then: {:?}",
                        states_during(changes, a.start, a.end)
                    ),
                }
            }
            Said::Rebuilt {
                dists,
                eps,
                publish,
            } => {
                let whole = publish == "published";
                published += usize::from(whole);
                assert!(
                    explain_counts(changes, a, *dists, *eps, whole),
                    "a rebuild ({publish}) saw {dists} distributions and {eps} entry points, \
                     which no state then explains"
                );
            }
        }
    }
    eprintln!(
        "churn: {} changes, {} answers ({queries} queries, {exact} exactly a state; \
         {published} rebuilds published)",
        changes.len() - 1,
        answers.len()
    );
    assert!(changes.len() > 20 && queries > 20, "too little happened");
    assert!(published > 0, "no rebuild ever published");

    // After the churn (the settle time is 0): every consult, from several
    // processes at once, equals a fresh scan.
    thread::sleep(Duration::from_millis(50));
    let expected = scan(&site);
    let expected_eps = expected_entry_points(vec![expected.clone()]);
    let expected_dists = summarize(&expected);
    for round in 0..2 {
        let children: Vec<_> = (0..4)
            .map(|i| {
                let command = ["entry-points", "distributions"][i % 2];
                epcache_settle(&root, "0")
                    .args([command, "--json"])
                    .arg(&site)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for (i, child) in children.into_iter().enumerate() {
            let output = child.wait_with_output().unwrap();
            assert_eq!(failure("consult", &output), None);
            let json = parse_json(&output.stdout);
            if i % 2 == 0 {
                assert_eq!(entry_points_json(&json), expected_eps, "round {round}");
            } else {
                assert_eq!(summarize_json(&json), expected_dists, "round {round}");
            }
        }
    }
    let status = run_json(epcache(&root).arg("status").arg("--json").arg(&site));
    assert_eq!(first(&status)["verdict"], "hit", "{status}");
    let consulted = Cache::at(&root).consult(&site);
    assert_eq!(consulted.outcome.lookup, Lookup::Hit);
    assert_eq!(consulted.index, expected);
}

// ---------------------------------------------------------------------------
// b. Writers killed mid-write

#[test]
fn writers_killed_mid_write_never_tear_an_index() {
    let _turn = one_at_a_time();
    let tmp = tempdir();
    let site = make_big_site(&tmp.path().join("site"), 300);
    let root = tmp.path().join("cache");
    let file = index_file(&root, &site);
    let expected = scan(&site);
    let expected_stdout = run_ok(
        epcache(&root)
            .env("EPCACHE_DISABLE", "1")
            .args(["entry-points", "--json"])
            .arg(&site),
    )
    .stdout;

    // How long one whole rebuild takes here. Kills aim at the end of a
    // run, where the file is written; the aim adapts to the load, so that
    // about as many writers finish as are killed.
    let started = Instant::now();
    run_ok(epcache_settle(&root, "0").arg("rebuild").arg(&site));
    let whole = started.elapsed();
    fs::remove_file(&file).unwrap();
    let mut aim = whole;

    let stop = AtomicBool::new(false);
    let failures = Mutex::new(Vec::<String>::new());
    let reads = AtomicUsize::new(0);
    let hits = AtomicUsize::new(0);
    let (mut killed, mut finished) = (0, 0);
    thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    // Readers never publish (the tree is younger than an hour).
                    let output = run(epcache_settle(&root, "3600")
                        .args(["entry-points", "--json"])
                        .arg(&site));
                    reads.fetch_add(1, Ordering::Relaxed);
                    if let Some(why) = failure("reader", &output) {
                        failures.lock().unwrap().push(why);
                    } else if output.stdout != expected_stdout {
                        failures.lock().unwrap().push(format!(
                            "reader got a wrong answer:\n{}",
                            String::from_utf8_lossy(&output.stdout)
                        ));
                    }
                }
            });
        }
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let consulted = Cache::at(&root)
                    .with_settle(Duration::from_secs(3600))
                    .consult(&site);
                reads.fetch_add(1, Ordering::Relaxed);
                match consulted.outcome.lookup {
                    Lookup::Hit => {
                        hits.fetch_add(1, Ordering::Relaxed);
                    }
                    Lookup::NoFile => {}
                    other => failures
                        .lock()
                        .unwrap()
                        .push(format!("an in-process reader saw {other}")),
                }
                if consulted.index != expected {
                    failures
                        .lock()
                        .unwrap()
                        .push("wrong in-process answer".into());
                }
            }
        });

        let mut rng = XorShift::new(0x4b11);
        let versioned = root.join(versioned_name());
        for round in 0..60 {
            let known = names_with_prefix(&versioned, ".tmp-");
            let mut child = epcache_settle(&root, "0")
                .arg("rebuild")
                .arg(&site)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            if round % 2 == 0 {
                // Watch for its temp file and kill it the moment one shows:
                // the write is far too short for a random delay to hit.
                while child.try_wait().unwrap().is_none()
                    && names_with_prefix(&versioned, ".tmp-") == known
                {
                    std::hint::spin_loop();
                }
            } else {
                // Mostly just before the end of a whole run, where the
                // write happens; sometimes anywhere in it.
                let aim_us = aim.as_micros() as u64;
                let delay = if rng.below(4) == 0 {
                    rng.below(aim_us)
                } else {
                    aim_us * 7 / 10 + rng.below(aim_us * 4 / 10)
                };
                thread::sleep(Duration::from_micros(delay));
            }
            // SIGKILL on Unix; harmless if it has already exited.
            let _ = child.kill();
            let status = child.wait().unwrap();
            match status.signal() {
                Some(9) => {
                    killed += 1;
                    aim = aim.mul_f64(1.05);
                }
                _ if status.success() => {
                    finished += 1;
                    aim = aim.mul_f64(0.95).max(Duration::from_millis(1));
                }
                _ => failures
                    .lock()
                    .unwrap()
                    .push(format!("writer exited with {status}")),
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_no_failures(failures.into_inner().unwrap());

    let versioned = root.join(versioned_name());
    let leftovers = names_with_prefix(&versioned, ".tmp-");
    eprintln!(
        "kill: {killed} writers killed, {finished} finished (whole rebuild {whole:?}), \
         {} reads ({} in-process hits), {} leftover temp files",
        reads.load(Ordering::Relaxed),
        hits.load(Ordering::Relaxed),
        leftovers.len()
    );
    assert!(killed > 0, "no writer was killed");
    assert!(reads.load(Ordering::Relaxed) > 0);

    let pruned = run_json(epcache(&root).args(["prune", "--temp-age", "0", "--json"]));
    assert_eq!(
        pruned["temp_files"].as_u64(),
        Some(leftovers.len() as u64),
        "{pruned} for {leftovers:?}"
    );
    assert_eq!(names_with_prefix(&versioned, ".tmp-"), Vec::<String>::new());
    assert_eq!(pruned["invalid"], 0, "{pruned}");

    // Whatever is in place is a whole, valid file.
    let consulted = Cache::at(&root).consult(&site);
    assert_eq!(consulted.index, expected);
    if file.exists() {
        assert_eq!(consulted.outcome.lookup, Lookup::Hit);
    } else {
        assert_eq!(finished, 0, "writers finished but left no file");
        assert_eq!(consulted.outcome.lookup, Lookup::NoFile);
    }
    let rebuilt = Cache::at(&root).with_settle(Duration::ZERO).rebuild(&site);
    assert_eq!(rebuilt.outcome.publish, Some(Publish::Published));
    assert_eq!(Cache::at(&root).consult(&site).outcome.lookup, Lookup::Hit);
}

// ---------------------------------------------------------------------------
// c. `clear` racing consults and rebuilds

#[test]
fn clear_racing_consults_and_rebuilds() {
    let _turn = one_at_a_time();
    let tmp = tempdir();
    let site = make_site(&tmp.path().join("site"), 30);
    set_mtime_ago(&site, Duration::from_secs(3600));
    let root = tmp.path().join("cache");
    let expected = scan(&site);
    let uncached = |command: &str| {
        run_ok(
            epcache(&root)
                .env("EPCACHE_DISABLE", "1")
                .args([command, "--json"])
                .arg(&site),
        )
        .stdout
    };
    let expected_eps = uncached("entry-points");
    let expected_dists = uncached("distributions");

    let stop = AtomicBool::new(false);
    let failures = Mutex::new(Vec::<String>::new());
    let publishes = Mutex::new(std::collections::BTreeMap::<String, usize>::new());
    let (queries, clears, removals) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    thread::scope(|s| {
        for worker in 0..6 {
            let (root, site, stop, failures, publishes) =
                (&root, &site, &stop, &failures, &publishes);
            let (expected, expected_eps, expected_dists, queries) =
                (&expected, &expected_eps, &expected_dists, &queries);
            s.spawn(move || {
                let mut turn = worker;
                while !stop.load(Ordering::Relaxed) {
                    turn += 1;
                    let command = ["entry-points", "rebuild", "distributions"][turn % 3];
                    let output = run(epcache_settle(root, "0")
                        .args([command, "--json"])
                        .arg(site));
                    queries.fetch_add(1, Ordering::Relaxed);
                    if let Some(why) = failure(command, &output) {
                        failures.lock().unwrap().push(why);
                        continue;
                    }
                    let wrong = match command {
                        "entry-points" => &output.stdout != expected_eps,
                        "distributions" => &output.stdout != expected_dists,
                        _ => {
                            let json = parse_json(&output.stdout);
                            let row = first(&json);
                            let publish = row["publish"].as_str().unwrap_or("-").to_owned();
                            let allowed = ["published", "unwritable"].contains(&publish.as_str());
                            *publishes.lock().unwrap().entry(publish).or_default() += 1;
                            !allowed
                                || row["distributions"].as_u64() != Some(expected.len() as u64)
                                || row["entry_points"].as_u64()
                                    != Some(expected.entry_point_count() as u64)
                        }
                    };
                    if wrong {
                        failures.lock().unwrap().push(format!(
                            "{command} answered wrongly:\n{}",
                            String::from_utf8_lossy(&output.stdout)
                        ));
                    }
                }
            });
        }
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let output = run(epcache(&root).args(["clear", "--json"]));
                    clears.fetch_add(1, Ordering::Relaxed);
                    if let Some(why) = failure("clear", &output) {
                        failures.lock().unwrap().push(why);
                    } else if !parse_json(&output.stdout)["removed"].is_null() {
                        removals.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
    });
    assert_no_failures(failures.into_inner().unwrap());
    let publishes = publishes.into_inner().unwrap();
    eprintln!(
        "clear: {} queries and rebuilds (publish verdicts {publishes:?}), {} clears ({} removed a directory)",
        queries.load(Ordering::Relaxed),
        clears.load(Ordering::Relaxed),
        removals.load(Ordering::Relaxed)
    );
    assert!(
        removals.load(Ordering::Relaxed) > 0,
        "clear never removed anything"
    );
    assert!(
        publishes.get("published").is_some_and(|&n| n > 0),
        "nothing was published"
    );

    assert_eq!(names_with_prefix(&root, ".trash-"), Vec::<String>::new());
    let pruned = run_json(epcache(&root).args(["prune", "--json"]));
    assert_eq!(pruned["invalid"], 0, "{pruned}");
    // And the cache still works.
    run_ok(
        epcache_settle(&root, "0")
            .args(["entry-points", "--json"])
            .arg(&site),
    );
    let consulted = Cache::at(&root).consult(&site);
    assert_eq!(consulted.outcome.lookup, Lookup::Hit);
    assert_eq!(consulted.index, expected);
    assert!(
        names_with_prefix(&root.join(versioned_name()), ".tmp-").is_empty(),
        "a temp file survived"
    );
}

/// Fails the test with every collected failure message.
fn assert_no_failures(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

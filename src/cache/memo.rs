//! The per-process memo: the last answer for a list of path entries, kept
//! while nothing it describes has changed.
//!
//! A process that queries several times (a program looking up one entry
//! point group, then a distribution, then its version) would otherwise
//! consult the cache for every path entry on every query. So the last
//! answer is kept. A call with the same path entries stats every entry
//! (the same freshness check a consult makes) and returns the *same*
//! answer when every key is unchanged, so the Python side can keep the
//! objects it built for it, and a repeated query costs one `stat` per
//! entry. This is the per-process reuse stock `importlib.metadata` makes
//! too (its `FastPath.lookup` is cached on each entry's mtime), so it also
//! covers entries too fresh to publish, a disabled cache, and provisional
//! files.
//!
//! The answer is kept under the key each consult's answer describes
//! ([`Consulted::key`]: the key the index file matched, or the one the
//! scan opened the entry with), so a first query stats each entry once, in
//! its consult, and a key that moved during a scan makes the next call
//! consult again. A missing entry's key is `None`, which stays valid while
//! it stays missing. The list is compared both as given and in absolute
//! form, because a relative entry (`""`, `"src"`) means another directory
//! once the current directory changes.
//!
//! An incomplete answer (a scan that could not read everything, see
//! [`Index::is_complete`](crate::Index::is_complete)) is not kept: what
//! failed may pass, so the next call scans again.
//!
//! The memo is generic over what the caller builds from the consults (the
//! Python bindings build a `Snapshot` object), so the rules live here and
//! are tested without Python.

use std::path::{Path, PathBuf};

use super::{absolute, Cache, Consulted};
use crate::index::Key;
use crate::outcome::Lookup;

/// What the memo counts, for `epcache.stats()` and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Calls to [`Memo::answer`].
    pub(crate) snapshots: u64,
    /// Calls answered by the memo after stat-ing every entry.
    pub(crate) memo_reuses: u64,
    /// Path entries consulted through the cache.
    pub(crate) consults: u64,
    /// Consults answered from a cache file (plain or verified hit).
    pub(crate) hits: u64,
    /// Consults that scanned the path entry.
    pub(crate) scans: u64,
}

impl Counters {
    /// Counts one consult by what it did. A missing entry is neither a
    /// hit nor a scan: there was nothing to read.
    fn count(&mut self, consulted: &Consulted) {
        self.consults += 1;
        if consulted.outcome.is_hit() {
            self.hits += 1;
        } else if consulted.outcome.lookup != Lookup::NoEntry {
            self.scans += 1;
        }
    }
}

/// An answer from [`Memo::answer`].
pub(crate) enum Answer<'m, T> {
    /// The memo holds it (reused, or just built and remembered); a caller
    /// that needs its own handle shares this one, so a reused answer is
    /// the same object as before.
    Kept(&'m T),
    /// Built for this call and not remembered (incomplete).
    Fresh(T),
}

/// The path entries an answer was built for, and the key of each as that
/// answer describes it.
struct Entries {
    given: Vec<PathBuf>,
    absolute: Vec<PathBuf>,
    keys: Vec<Option<Key>>,
}

impl Entries {
    /// Whether an answer for these entries answers `given` (in `absolute`
    /// form) now: the same list, meaning the same directories, and one
    /// `stat` per entry gives the key the answer describes.
    fn still_answer(&self, given: &[PathBuf], absolute: &[PathBuf]) -> bool {
        self.given == given
            && self.absolute == absolute
            && absolute
                .iter()
                .zip(&self.keys)
                .all(|(path, key)| observe(path) == *key)
    }
}

/// A path entry's key now, `None` when it cannot be stat-ed: the same
/// `None` a consult's answer carries for an entry it could not open.
fn observe(path: &Path) -> Option<Key> {
    Key::observe(path).ok()
}

/// The last answer remembered, with what it answers.
struct Remembered<T> {
    entries: Entries,
    value: T,
}

/// The cache, the last complete answer it gave, and what it did so far.
pub(crate) struct Memo<T> {
    cache: Cache,
    last: Option<Remembered<T>>,
    counters: Counters,
}

impl<T> Memo<T> {
    /// A memo over `cache`, remembering nothing yet.
    pub(crate) fn new(cache: Cache) -> Memo<T> {
        Memo {
            cache,
            last: None,
            counters: Counters::default(),
        }
    }

    /// A memo over the cache the environment configures
    /// ([`Cache::from_env`]).
    pub(crate) fn from_env() -> Memo<T> {
        Memo::new(Cache::from_env())
    }

    /// The cache consulted.
    pub(crate) fn cache(&self) -> &Cache {
        &self.cache
    }

    /// What the memo did so far.
    pub(crate) fn counters(&self) -> Counters {
        self.counters
    }

    /// The answer for the path entries `given`: the remembered one while
    /// every entry still has the key it describes, otherwise what `build`
    /// makes of a consult of each entry, told whether it will be
    /// remembered. An error from `build` changes nothing remembered.
    pub(crate) fn answer<E>(
        &mut self,
        given: Vec<PathBuf>,
        build: impl FnOnce(Vec<Consulted>, bool) -> Result<T, E>,
    ) -> Result<Answer<'_, T>, E> {
        self.counters.snapshots += 1;
        let absolute: Vec<PathBuf> = given.iter().map(|p| absolute(p)).collect();
        if self.holds_for(&given, &absolute) {
            self.counters.memo_reuses += 1;
            return Ok(self.kept());
        }
        // Each consult takes the key its answer describes; that is the key
        // the answer is kept under, so no entry is stat-ed twice.
        let consulted = self.consult(&given);
        let complete = consulted.iter().all(|c| c.index.is_complete());
        let keys = consulted.iter().map(|c| c.key).collect();
        let value = build(consulted, complete)?;
        if !complete {
            // What failed may pass: the next call must scan again, and an
            // older answer must not outlive this newer one.
            self.last = None;
            return Ok(Answer::Fresh(value));
        }
        let entries = Entries {
            given,
            absolute,
            keys,
        };
        self.last = Some(Remembered { entries, value });
        Ok(self.kept())
    }

    /// Whether the remembered answer answers `given` now.
    fn holds_for(&self, given: &[PathBuf], absolute: &[PathBuf]) -> bool {
        self.last
            .as_ref()
            .is_some_and(|last| last.entries.still_answer(given, absolute))
    }

    /// The remembered answer; only called right after one was found or
    /// stored.
    fn kept(&self) -> Answer<'_, T> {
        let last = self.last.as_ref().expect("an answer is remembered");
        Answer::Kept(&last.value)
    }

    /// Consults the cache for each entry, in order, counting what it did.
    fn consult(&mut self, given: &[PathBuf]) -> Vec<Consulted> {
        let consulted: Vec<Consulted> = given.iter().map(|p| self.cache.consult(p)).collect();
        for c in &consulted {
            self.counters.count(c);
        }
        consulted
    }

    /// Rebuilds the index of each entry ([`Cache::rebuild`]). The
    /// remembered answer is forgotten: whoever asks for a rebuild expects
    /// the next query to see the directories as they are, even a change
    /// their keys cannot show.
    pub(crate) fn rebuild(&mut self, given: &[PathBuf]) -> Vec<Consulted> {
        self.last = None;
        given.iter().map(|p| self.cache.rebuild(p)).collect()
    }

    /// Forgets the remembered answer and reads the cache's configuration
    /// from the environment again; the counters are kept, as they count
    /// the whole process.
    pub(crate) fn reset(&mut self) {
        self.reset_to(Cache::from_env());
    }

    /// [`Memo::reset`] with the cache given.
    fn reset_to(&mut self, cache: Cache) {
        self.cache = cache;
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use super::{Answer, Counters, Memo};
    use crate::{Cache, Consulted};

    /// A cache in `tmp/cache` that publishes at once, so a second consult
    /// of an unchanged entry is a hit.
    fn memo_in(tmp: &Path) -> Memo<u32> {
        Memo::new(Cache::at(tmp.join("cache")).with_settle(Duration::ZERO))
    }

    /// A path entry `tmp/name` holding one distribution.
    fn site(tmp: &Path, name: &str) -> PathBuf {
        let entry = tmp.join(name);
        let info = entry.join("demo-1.0.dist-info");
        fs::create_dir_all(&info).unwrap();
        fs::write(
            info.join("METADATA"),
            "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
        )
        .unwrap();
        entry
    }

    /// Answers through `memo`, building a new number for each call of the
    /// closure, so the number tells which build an answer came from.
    /// Returns it and whether it is remembered.
    fn ask(memo: &mut Memo<u32>, builds: &Cell<u32>, given: &[PathBuf]) -> (u32, bool) {
        let answer = memo.answer(given.to_vec(), |_: Vec<Consulted>, _| {
            builds.set(builds.get() + 1);
            Ok::<_, ()>(builds.get())
        });
        match answer.unwrap() {
            Answer::Kept(&n) => (n, true),
            Answer::Fresh(n) => (n, false),
        }
    }

    fn counters(
        snapshots: u64,
        memo_reuses: u64,
        consults: u64,
        hits: u64,
        scans: u64,
    ) -> Counters {
        Counters {
            snapshots,
            memo_reuses,
            consults,
            hits,
            scans,
        }
    }

    #[test]
    fn the_same_entries_with_unchanged_keys_reuse_the_answer() {
        let tmp = tempfile::tempdir().unwrap();
        let given = [site(tmp.path(), "a"), site(tmp.path(), "b")];
        let mut memo = memo_in(tmp.path());
        let builds = Cell::new(0);
        assert_eq!(ask(&mut memo, &builds, &given), (1, true));
        assert_eq!(ask(&mut memo, &builds, &given), (1, true));
        assert_eq!(builds.get(), 1, "the second answer was built again");
        assert_eq!(memo.counters(), counters(2, 1, 2, 0, 2));
    }

    #[test]
    fn a_changed_entry_is_consulted_again() {
        let tmp = tempfile::tempdir().unwrap();
        let given = [site(tmp.path(), "a"), site(tmp.path(), "b")];
        let mut memo = memo_in(tmp.path());
        let builds = Cell::new(0);
        assert_eq!(ask(&mut memo, &builds, &given), (1, true));
        // A new file changes the directory's mtime and ctime.
        fs::write(given[1].join("new.pth"), "").unwrap();
        assert_eq!(ask(&mut memo, &builds, &given), (2, true));
        // Both entries consulted again: the unchanged one is a hit now.
        assert_eq!(memo.counters(), counters(2, 0, 4, 1, 3));
        assert_eq!(ask(&mut memo, &builds, &given), (2, true));
    }

    #[test]
    fn another_list_of_entries_is_consulted_again() {
        let tmp = tempfile::tempdir().unwrap();
        let a = site(tmp.path(), "a");
        let b = site(tmp.path(), "b");
        let mut memo = memo_in(tmp.path());
        let builds = Cell::new(0);
        assert_eq!(ask(&mut memo, &builds, &[a.clone(), b.clone()]), (1, true));
        // The same entries in another order mean another precedence.
        assert_eq!(ask(&mut memo, &builds, &[b.clone(), a.clone()]), (2, true));
        // One entry fewer.
        assert_eq!(ask(&mut memo, &builds, std::slice::from_ref(&b)), (3, true));
        // Another spelling of the same directory is another list, as given.
        let spelled = tmp.path().join("a/../b");
        assert_eq!(ask(&mut memo, &builds, &[spelled]), (4, true));
        assert_eq!(memo.counters().memo_reuses, 0);
    }

    #[test]
    fn an_incomplete_answer_is_not_remembered() {
        let tmp = tempfile::tempdir().unwrap();
        // A name the kernel refuses (too long) fails the scan in a way that
        // may pass, as root too; its key is `None`, as a missing entry's.
        let refused = tmp.path().join("x".repeat(300));
        let given = [site(tmp.path(), "a"), refused];
        let mut memo = memo_in(tmp.path());
        let builds = Cell::new(0);
        assert_eq!(ask(&mut memo, &builds, &given), (1, false));
        assert_eq!(ask(&mut memo, &builds, &given), (2, false));
        assert_eq!(memo.counters().memo_reuses, 0);
    }

    #[cfg(unix)]
    #[test]
    fn an_unreadable_metadata_file_is_not_remembered() {
        use std::os::unix::fs::PermissionsExt;
        if rustix::process::geteuid().is_root() {
            println!("skipped: root reads a file of mode 000");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let entry = site(tmp.path(), "a");
        let metadata = entry.join("demo-1.0.dist-info/METADATA");
        fs::set_permissions(&metadata, fs::Permissions::from_mode(0o000)).unwrap();
        let mut memo = memo_in(tmp.path());
        let builds = Cell::new(0);
        let given = [entry];
        assert_eq!(ask(&mut memo, &builds, &given), (1, false));
        assert_eq!(ask(&mut memo, &builds, &given), (2, false));
        // Once it can be read, the answer is complete and kept.
        fs::set_permissions(&metadata, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(ask(&mut memo, &builds, &given), (3, true));
        assert_eq!(ask(&mut memo, &builds, &given), (3, true));
    }

    #[test]
    fn an_incomplete_answer_forgets_the_one_before() {
        let tmp = tempfile::tempdir().unwrap();
        let given = [site(tmp.path(), "a")];
        let refused = [tmp.path().join("x".repeat(300))];
        let mut memo = memo_in(tmp.path());
        let builds = Cell::new(0);
        assert_eq!(ask(&mut memo, &builds, &given), (1, true));
        assert_eq!(ask(&mut memo, &builds, &refused), (2, false));
        assert_eq!(ask(&mut memo, &builds, &given), (3, true));
    }

    #[test]
    fn a_missing_entry_is_remembered_until_it_appears() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("later");
        let given = [site(tmp.path(), "a"), missing.clone()];
        let mut memo = memo_in(tmp.path());
        let builds = Cell::new(0);
        assert_eq!(ask(&mut memo, &builds, &given), (1, true));
        assert_eq!(ask(&mut memo, &builds, &given), (1, true));
        // A missing entry is consulted, but neither read nor scanned.
        assert_eq!(memo.counters(), counters(2, 1, 2, 0, 1));
        fs::create_dir(&missing).unwrap();
        assert_eq!(ask(&mut memo, &builds, &given), (2, true));
        assert_eq!(memo.counters(), counters(3, 1, 4, 1, 2));
    }

    #[test]
    fn rebuild_forgets_the_answer() {
        let tmp = tempfile::tempdir().unwrap();
        let given = [site(tmp.path(), "a")];
        let mut memo = memo_in(tmp.path());
        let builds = Cell::new(0);
        assert_eq!(ask(&mut memo, &builds, &given), (1, true));
        let rebuilt = memo.rebuild(&given);
        assert_eq!(rebuilt.len(), 1);
        assert_eq!(rebuilt[0].index.len(), 1);
        assert_eq!(ask(&mut memo, &builds, &given), (2, true));
        // A rebuild is not a consult; the consult after it is a hit.
        assert_eq!(memo.counters(), counters(2, 0, 2, 1, 1));
    }

    #[test]
    fn reset_forgets_the_answer_and_keeps_the_counters() {
        let tmp = tempfile::tempdir().unwrap();
        let given = [site(tmp.path(), "a")];
        let mut memo = memo_in(tmp.path());
        let builds = Cell::new(0);
        assert_eq!(ask(&mut memo, &builds, &given), (1, true));
        memo.reset_to(Cache::disabled());
        assert!(memo.cache().dir().is_none());
        assert_eq!(ask(&mut memo, &builds, &given), (2, true));
        assert_eq!(memo.counters(), counters(2, 0, 2, 0, 2));
        // From the environment, as at start; whatever it says, the
        // counters stay.
        memo.reset();
        let from_env = Memo::<u32>::from_env();
        let root = |memo: &Memo<u32>| memo.cache().dir().map(|d| d.root().to_path_buf());
        assert_eq!(root(&memo), root(&from_env));
        assert_eq!(memo.cache().settle(), from_env.cache().settle());
        assert_eq!(memo.counters(), counters(2, 0, 2, 0, 2));
    }

    #[test]
    fn consults_hits_and_scans_are_counted() {
        let tmp = tempfile::tempdir().unwrap();
        let a = site(tmp.path(), "a");
        let missing = tmp.path().join("missing");
        let mut memo = memo_in(tmp.path());
        let builds = Cell::new(0);
        // No cache file yet: a scan, which publishes; the missing entry is
        // neither.
        ask(&mut memo, &builds, &[a.clone(), missing.clone()]);
        assert_eq!(memo.counters(), counters(1, 0, 2, 0, 1));
        // Another list consults again: now a hit from the published file.
        ask(&mut memo, &builds, std::slice::from_ref(&a));
        assert_eq!(memo.counters(), counters(2, 0, 3, 1, 1));
        // A disabled cache scans every time it consults; it does not stat
        // first, so the missing entry counts as a scan (of nothing) too.
        memo.reset_to(Cache::disabled());
        ask(&mut memo, &builds, &[a, missing]);
        assert_eq!(memo.counters(), counters(3, 0, 5, 1, 3));
    }

    #[test]
    fn a_failed_build_keeps_the_answer_before() {
        let tmp = tempfile::tempdir().unwrap();
        let a = [site(tmp.path(), "a")];
        let b = [site(tmp.path(), "b")];
        let mut memo = memo_in(tmp.path());
        let builds = Cell::new(0);
        assert_eq!(ask(&mut memo, &builds, &a), (1, true));
        let failed = memo.answer(b.to_vec(), |_, _| Err::<u32, _>("no"));
        assert!(matches!(failed, Err("no")));
        assert_eq!(ask(&mut memo, &builds, &a), (1, true));
    }
}

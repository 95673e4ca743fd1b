//! Consulting, rebuilding and inspecting index files.
//!
//! No interprocess lock is taken anywhere. Writers scan, write a uniquely
//! named temporary file next to the final one and rename it into place;
//! concurrent writers race harmlessly and the last rename wins. Readers
//! verify everything they read, and any doubt is a miss followed by a
//! scan, so a cache problem can cost time but never change an answer.
//!
//! * this module: [`Cache`], consulting, publishing and `status`.
//! * `dir`: the cache directory, [`CacheDir`], and where its files go.
//! * `trust`: whose files and directories the cache may read and write.
//! * `maintenance`: `clear` and `prune`.
//! * `freshness`: when a key is old enough to publish.
//! * `fingerprint`: what a provisional index is verified by.
//! * `status`: the one shape `status` is reported in.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

mod dir;
mod fingerprint;
pub(crate) mod freshness;
mod maintenance;
// The library side of the Python bindings' per-process memo.
#[cfg(any(test, feature = "python"))]
pub(crate) mod memo;
pub(crate) mod status;
mod trust;

pub use dir::{CacheDir, ENV_DIR};
pub use freshness::{Settledness, DEFAULT_SETTLE};
pub use maintenance::{ClearReport, PruneReport};

use crate::index::file::{self, FileIndex};
use crate::index::format::{self, Header, Section, FLAG_PROVISIONAL, FORMAT_VERSION};
use crate::index::{Environment, Index, IndexData, Key, Owned};
use crate::outcome::{Cause, Lookup, Outcome, Publish};
use crate::platform::{self, now_ns, DirHandle, FileInfo};
use crate::scan::OpenEntry;
use dir::create_temp_file;
use trust::{owned_by_current_user, WriteRefusal};

/// Set to anything but `0` or the empty string to turn the cache off.
pub const ENV_DISABLE: &str = "EPCACHE_DISABLE";

/// Overrides the settle time, in seconds (fractions allowed). Meant for
/// tests and for file systems with coarse clocks.
pub const ENV_SETTLE: &str = "EPCACHE_SETTLE_SECS";

/// An index together with how it was obtained.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Consulted {
    /// The answer, identical to what a fresh scan gives.
    pub index: Index,
    /// Where it came from and what was written.
    pub outcome: Outcome,
    /// The path entry's key that `index` describes: the key the index file
    /// matched, or the one taken when the scan opened the entry; `None`
    /// when it could not be opened. A caller that keeps the answer may
    /// trust it while a `stat` of the entry still gives this key, without
    /// taking one of its own now.
    pub key: Option<Key>,
}

/// A whole `sys.path` consulted: what [`Cache::consult_all`] gives.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConsultedEnvironment {
    /// The path entries' indexes combined, in path order.
    pub environment: Environment,
    /// What each consult did, in path order.
    pub outcomes: Vec<Outcome>,
}

/// What `status` reports for one path entry, without writing anything.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Status {
    /// The path entry as given.
    pub path_entry: PathBuf,
    /// The cache file that describes it, if there is a cache directory.
    pub index_file: Option<PathBuf>,
    /// What a consult would find in that file. `status` reads and checks
    /// the whole file, so unlike a consult it also sees damage in parts a
    /// query has not read yet.
    pub lookup: Lookup,
    /// The file's header, when the file could be framed.
    pub header: Option<Header>,
    /// Distributions in the file, when it is intact.
    pub distributions: Option<usize>,
    /// Entry points in the file, all distributions together, when it is
    /// intact.
    pub entry_points: Option<usize>,
    /// Whether the path entry is old enough to publish, when it exists.
    pub settledness: Option<Settledness>,
    /// Why a publish would be refused by the directory, if it would be.
    pub write_refusal: Option<Cause>,
    /// For a provisional file: how many metadata entries a reader stats to
    /// verify it (plus one directory listing).
    pub fingerprint_entries: Option<usize>,
}

/// The per-user index cache.
#[derive(Debug)]
pub struct Cache {
    /// Shared with every index read from this cache, which may need to
    /// rescan and republish when it finds its file damaged.
    shared: Arc<Shared>,
}

#[derive(Clone, Debug)]
struct Shared {
    dir: Option<CacheDir>,
    settle: Duration,
    readable: OnceLock<Result<(), WriteRefusal>>,
}

/// What an index read from a file needs to replace it with a scan when it
/// finds the file damaged: the cache, and which file and entry it is.
struct Healer {
    shared: Arc<Shared>,
    absolute: PathBuf,
    file: PathBuf,
}

impl file::Heal for Healer {
    fn rescan(&self, path_entry: &Path, lookup: Lookup) -> (Owned, Outcome) {
        let consulted = match self.shared.readable_dir() {
            Ok(dir) => self.shared.scan_and_publish(
                dir,
                path_entry,
                &self.absolute,
                &self.file,
                lookup,
                false,
            ),
            Err(why) => scanned(path_entry, lookup, Some(why.publish())),
        };
        (consulted.index.into_owned(), consulted.outcome)
    }
}

impl Cache {
    /// The cache as the environment configures it: `EPCACHE_DIR`,
    /// `EPCACHE_DISABLE` and `EPCACHE_SETTLE_SECS`.
    pub fn from_env() -> Cache {
        let disabled = std::env::var_os(ENV_DISABLE).is_some_and(|v| !v.is_empty() && v != "0");
        let dir = if disabled { None } else { CacheDir::from_env() };
        let settle = std::env::var(ENV_SETTLE)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .unwrap_or(DEFAULT_SETTLE);
        Cache::new(dir, settle)
    }

    /// A cache rooted at `root` with the default settle time.
    pub fn at(root: impl Into<PathBuf>) -> Cache {
        Cache::new(Some(CacheDir::new(root)), DEFAULT_SETTLE)
    }

    /// A cache that never reads or writes: every consult scans.
    pub fn disabled() -> Cache {
        Cache::new(None, DEFAULT_SETTLE)
    }

    fn new(dir: Option<CacheDir>, settle: Duration) -> Cache {
        Cache {
            shared: Arc::new(Shared {
                dir,
                settle,
                readable: OnceLock::new(),
            }),
        }
    }

    /// The same cache with another settle time.
    pub fn with_settle(mut self, settle: Duration) -> Cache {
        Arc::make_mut(&mut self.shared).settle = settle;
        self
    }

    /// The settle time in force.
    pub fn settle(&self) -> Duration {
        self.shared.settle
    }

    /// The cache directory, unless the cache is disabled.
    pub fn dir(&self) -> Option<&CacheDir> {
        self.shared.dir.as_ref()
    }

    /// The index file for a path entry as it is now (the name depends on
    /// its inode), unless the cache is disabled or the entry cannot be
    /// stat-ed.
    pub fn index_file(&self, path_entry: &Path) -> Option<PathBuf> {
        let dir = self.dir()?;
        let absolute = absolute(path_entry);
        let key = Key::observe(&absolute).ok()?;
        Some(dir.index_file(&absolute, key.inode))
    }

    /// The index of one path entry: from its cache file when that is fresh,
    /// otherwise from a scan, publishing the result when the rules allow.
    ///
    /// A fresh file is only opened and its head checked here; each part
    /// of it is read and checked when a query first needs it. Should one
    /// turn out damaged then, the index rescans the entry and republishes,
    /// and says so in [`Index::late_outcome`].
    pub fn consult(&self, path_entry: impl AsRef<Path>) -> Consulted {
        self.consult_or_rebuild(path_entry.as_ref(), false)
    }

    /// Scans a path entry and publishes the result under the usual rules,
    /// whatever the cache file says.
    pub fn rebuild(&self, path_entry: impl AsRef<Path>) -> Consulted {
        self.consult_or_rebuild(path_entry.as_ref(), true)
    }

    /// Consults every path entry, in order, and combines them.
    pub fn consult_all<P: AsRef<Path>>(
        &self,
        path_entries: impl IntoIterator<Item = P>,
    ) -> ConsultedEnvironment {
        let (indexes, outcomes) = path_entries
            .into_iter()
            .map(|p| {
                let consulted = self.consult(p);
                (consulted.index, consulted.outcome)
            })
            .unzip();
        ConsultedEnvironment {
            environment: Environment::from_indexes(indexes),
            outcomes,
        }
    }

    fn consult_or_rebuild(&self, path_entry: &Path, rebuild: bool) -> Consulted {
        let absolute = absolute(path_entry);
        let shared = &self.shared;
        let dir = match shared.readable_dir() {
            Ok(dir) => dir,
            Err(why) => {
                let (lookup, publish) = (why.lookup(), why.publish());
                let lookup = if rebuild && lookup != Lookup::Disabled {
                    Lookup::Skipped
                } else {
                    lookup
                };
                return scanned(path_entry, lookup, Some(publish));
            }
        };
        // The key is observed before anything is read or scanned, so that a
        // change during the scan shows up as a difference, never as a match.
        let key = match Key::observe(&absolute) {
            Ok(key) => key,
            Err(err) => return scanned(path_entry, entry_lookup("stat", &err), None),
        };
        let file = dir.index_file(&absolute, key.inode);
        let lookup = if rebuild {
            Lookup::Skipped
        } else {
            match read_index(&file, &absolute, &key) {
                Ok(opened) => {
                    let hit =
                        self.hit(dir, path_entry, absolute.clone(), key, file.clone(), opened);
                    match hit {
                        Ok(consulted) => return consulted,
                        Err(lookup) => lookup,
                    }
                }
                Err(lookup) => lookup,
            }
        };
        shared.scan_and_publish(dir, path_entry, &absolute, &file, lookup, rebuild)
    }

    /// A trusted file. A provisional one that has settled since is
    /// republished as a normal file, so later readers skip verification;
    /// that reads it whole, and damage found then makes it a miss.
    fn hit(
        &self,
        dir: &CacheDir,
        path_entry: &Path,
        absolute: PathBuf,
        key: Key,
        file: PathBuf,
        opened: Opened,
    ) -> Result<Consulted, Lookup> {
        let shared = &self.shared;
        let index = opened.index;
        let (lookup, publish) = match opened.verified_entries {
            None => (Lookup::Hit, None),
            Some(entries) => {
                let promote = shared.settledness(&key) == Settledness::Settled;
                let publish = if promote {
                    let data = index
                        .materialize()
                        .map_err(|err| Lookup::Corrupt(Cause::Format(err)))?;
                    let header = Header {
                        version: FORMAT_VERSION,
                        flags: 0,
                        written_at_ns: now_ns(),
                        key,
                    };
                    Some(
                        match shared.write(dir, &file, &header, &absolute, &[], &data) {
                            Publish::Published => Publish::Promoted,
                            refused => refused,
                        },
                    )
                } else {
                    None
                };
                (Lookup::HitVerified { entries }, publish)
            }
        };
        let healer = Healer {
            shared: Arc::clone(shared),
            absolute,
            file,
        };
        Ok(Consulted {
            index: Index::from_file(
                path_entry.to_path_buf(),
                index.with_healer(Box::new(healer)),
            ),
            outcome: Outcome { lookup, publish },
            key: Some(key),
        })
    }

    /// Reports on one path entry without scanning or writing.
    pub fn status(&self, path_entry: impl AsRef<Path>) -> Status {
        let path_entry = path_entry.as_ref();
        let absolute = absolute(path_entry);
        let key = Key::observe(&absolute).ok();
        let shared = &self.shared;
        let mut status = Status {
            path_entry: path_entry.to_path_buf(),
            index_file: key.and_then(|k| Some(self.dir()?.index_file(&absolute, k.inode))),
            lookup: Lookup::Disabled,
            header: None,
            distributions: None,
            entry_points: None,
            settledness: key.map(|k| shared.settledness(&k)),
            write_refusal: None,
            fingerprint_entries: None,
        };
        let dir = match shared.readable_dir() {
            Ok(dir) => dir,
            Err(why) => {
                status.lookup = why.lookup();
                status.write_refusal = match why {
                    Unreadable::Disabled => None,
                    Unreadable::Refused(refusal) => Some(refusal.cause()),
                };
                return status;
            }
        };
        status.write_refusal = dir.check_writable().err().map(|r| r.cause());
        let Some(key) = key else {
            status.lookup = Lookup::NoEntry;
            return status;
        };
        let file = dir.index_file(&absolute, key.inode);
        if let Ok(bytes) = read_index_path(&file) {
            if let Ok((head, _)) = format::parse_head(&bytes) {
                status.header = Some(head.header.clone());
                if let Ok(head) = format::check_whole(&bytes) {
                    status.distributions = Some(head.dist_count as usize);
                    status.entry_points = Some(head.entry_point_count as usize);
                    if let Some(r) = head.section(Section::Fingerprint) {
                        let fingerprint = &bytes[r.offset as usize..r.end() as usize];
                        status.fingerprint_entries = fingerprint::entry_count(fingerprint);
                    }
                }
            }
        }
        status.lookup = match read_index(&file, &absolute, &key) {
            Ok(opened) => {
                let whole = opened
                    .index
                    .whole_file()
                    .map_err(|damage| damage.lookup())
                    .and_then(|bytes| {
                        format::check_whole(&bytes)
                            .map(drop)
                            .map_err(|err| Lookup::Corrupt(Cause::Format(err)))
                    });
                match (whole, opened.verified_entries) {
                    (Err(lookup), _) => lookup,
                    (Ok(()), Some(entries)) => Lookup::HitVerified { entries },
                    (Ok(()), None) => Lookup::Hit,
                }
            }
            Err(lookup) => lookup,
        };
        status
    }
}

/// Why the cache directory may not be read.
#[derive(Clone, Copy)]
enum Unreadable<'a> {
    /// The cache is turned off.
    Disabled,
    /// The directory was refused, once per `Cache`.
    Refused(&'a WriteRefusal),
}

impl Unreadable<'_> {
    /// What a consult finds.
    fn lookup(self) -> Lookup {
        match self {
            Unreadable::Disabled => Lookup::Disabled,
            Unreadable::Refused(refusal) => Lookup::Unusable(refusal.cause()),
        }
    }

    /// What becomes of a publish.
    fn publish(self) -> Publish {
        match self {
            Unreadable::Disabled => Publish::Disabled,
            Unreadable::Refused(refusal) => publish_refused(refusal.clone()),
        }
    }
}

impl Shared {
    /// The directory may be read: checked once per `Cache`, because it
    /// costs two `stat`s that every consult would otherwise repeat.
    fn readable_dir(&self) -> Result<&CacheDir, Unreadable<'_>> {
        let dir = self.dir.as_ref().ok_or(Unreadable::Disabled)?;
        match self.readable.get_or_init(|| dir.check_readable()) {
            Ok(()) => Ok(dir),
            Err(refusal) => Err(Unreadable::Refused(refusal)),
        }
    }

    fn settledness(&self, key: &Key) -> Settledness {
        Settledness::of(key, now_ns(), self.settle)
    }

    /// The miss: scans the path entry and publishes the scan, when the
    /// rules allow, as `file`.
    fn scan_and_publish(
        &self,
        dir: &CacheDir,
        path_entry: &Path,
        absolute: &Path,
        file: &Path,
        lookup: Lookup,
        rebuild: bool,
    ) -> Consulted {
        // The scan reads through one handle on the path entry, and its key
        // is that handle's: a path swapped to another directory during the
        // scan cannot lend its key to what was read.
        let entry = match OpenEntry::open(absolute) {
            Ok(entry) => entry,
            Err(err) => return scanned(path_entry, entry_lookup("open", &err), None),
        };
        // Only an installer's rebuild may publish inside the settle window,
        // and then only with a fingerprint taken before the scan, so that a
        // change during the scan makes the fingerprint stale, never the index.
        let fingerprint_before = match self.settledness(&entry.key) {
            Settledness::TooFresh { .. } if rebuild => entry.dir().and_then(fingerprint::take),
            _ => None,
        };
        let index = entry.scan(path_entry);
        let publish = self.publish(dir, absolute, &entry, &index, file, fingerprint_before);
        Consulted {
            index,
            outcome: Outcome {
                lookup,
                publish: Some(publish),
            },
            key: Some(entry.key),
        }
    }

    /// Writes `index` as the cache file for `absolute`, if the rules allow.
    fn publish(
        &self,
        dir: &CacheDir,
        absolute: &Path,
        entry: &OpenEntry,
        index: &Index,
        file: &Path,
        fingerprint_before: Option<(Vec<u8>, usize)>,
    ) -> Publish {
        // A read that failed for now would be cached as an absence for good.
        if !index.is_complete() {
            return Publish::Incomplete;
        }
        // A scan's result is always owned data.
        let Some(index_data) = index.as_owned().map(|owned| &owned.data) else {
            return Publish::Incomplete;
        };
        if !entry.unchanged_since_opened(absolute) {
            return Publish::ChangedDuringScan;
        }
        let key_before = entry.key;
        // A timestamp in the future never publishes, not even provisionally:
        // it would never settle, and something is wrong with the clock or the
        // tree that a person should see in `status`.
        let (flags, fingerprint, settles_in) =
            match (self.settledness(&key_before), fingerprint_before) {
                (Settledness::Settled, _) => (0, Vec::new(), Duration::ZERO),
                (Settledness::TooFresh { remaining }, Some((before, _))) => {
                    if entry
                        .dir()
                        .and_then(fingerprint::take)
                        .is_none_or(|(after, _)| !fingerprint::same(&after, &before))
                    {
                        return Publish::ChangedDuringScan;
                    }
                    (FLAG_PROVISIONAL, before, remaining)
                }
                (Settledness::TooFresh { remaining }, None) => {
                    return Publish::TooFresh { remaining }
                }
                (Settledness::InFuture { ahead }, _) => return Publish::InFuture { ahead },
            };
        let header = Header {
            version: FORMAT_VERSION,
            flags,
            written_at_ns: now_ns(),
            key: key_before,
        };
        match self.write(dir, file, &header, absolute, &fingerprint, index_data) {
            Publish::Published if flags == FLAG_PROVISIONAL => {
                Publish::PublishedProvisional { settles_in }
            }
            other => other,
        }
    }

    /// Encodes and atomically writes one cache file.
    fn write(
        &self,
        dir: &CacheDir,
        file: &Path,
        header: &Header,
        absolute: &Path,
        fingerprint: &[u8],
        data: &IndexData,
    ) -> Publish {
        let bytes = match format::encode(header, &platform::path_bytes(absolute), fingerprint, data)
        {
            Ok(bytes) => bytes,
            Err(too_large) => return Publish::TooLarge(Cause::Refused(too_large.to_string())),
        };
        let versioned = match dir.open_for_writing() {
            Ok(versioned) => versioned,
            Err(refusal) => return publish_refused(refusal),
        };
        let name = file.file_name().unwrap_or_default();
        match write_atomically(&versioned, name, &bytes) {
            Ok(()) => Publish::Published,
            Err(err) => Publish::Unwritable(Cause::io(
                format!("writing {}", file.display()),
                Some(file),
                err,
            )),
        }
    }
}

fn publish_refused(refusal: WriteRefusal) -> Publish {
    match refusal {
        WriteRefusal::Foreign(why) => Publish::ForeignOwned(Cause::Refused(why)),
        WriteRefusal::Unwritable(why) => Publish::Unwritable(why),
    }
}

/// The lookup when the path entry itself could not be stat-ed or opened:
/// gone (nothing to cache), or unusable for the reason given.
fn entry_lookup(action: &str, err: &io::Error) -> Lookup {
    if platform::is_gone(err) {
        Lookup::NoEntry
    } else {
        Lookup::Unusable(Cause::io(
            format!("cannot {action} the path entry"),
            None,
            clone_io_error(err),
        ))
    }
}

/// A copy of an I/O error that is only borrowed: its kind, and its message
/// (an OS error keeps its code, and so its message).
fn clone_io_error(err: &io::Error) -> io::Error {
    match err.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(err.kind(), err.to_string()),
    }
}

/// Where a scan result came from when the cache was not consulted.
fn scanned(path_entry: &Path, lookup: Lookup, publish: Option<Publish>) -> Consulted {
    let (index, key) = crate::scan::scan_with_key(path_entry);
    Consulted {
        index,
        outcome: Outcome { lookup, publish },
        key,
    }
}

/// The absolute form of a path entry: `""` is the current directory.
/// Symlinks are not resolved: two spellings of one directory get two files,
/// which costs space, never correctness.
pub(crate) fn absolute(path_entry: &Path) -> PathBuf {
    let path = if path_entry.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path_entry
    };
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A cache file whose head passed every check.
struct Opened {
    index: FileIndex,
    /// For a provisional file, how many entries its verification stat-ed.
    verified_entries: Option<usize>,
}

/// Opens a cache file and checks its head; any doubt is a miss. The rest
/// of the file is checked as queries read it.
fn read_index(file: &Path, absolute: &Path, key: &Key) -> Result<Opened, Lookup> {
    let (handle, info) = open_index_path(file)?;
    let unreadable = |damage: file::Damage| match damage {
        file::Damage::Io(err) => Lookup::Unusable(Cause::Io(err.in_file(file))),
        damage => damage.lookup(),
    };
    let (reader, head) = file::open(handle, info.size).map_err(unreadable)?;
    if head.path != *platform::path_bytes(absolute) {
        return Err(Lookup::PathDiffers);
    }
    if head.header.key != *key {
        return Err(Lookup::Stale);
    }
    let provisional = head.header.is_provisional();
    let index = FileIndex::new(reader, head, None);
    let verified_entries = if provisional {
        let stored = index.section(Section::Fingerprint).map_err(unreadable)?;
        Some(verify_fingerprint(absolute, key, &stored)?)
    } else {
        None
    };
    Ok(Opened {
        index,
        verified_entries,
    })
}

/// Checks a provisional file's fingerprint against the directory as it is
/// now, listed through a handle whose key is the one the file was matched
/// against; the number of entries it stat-ed.
fn verify_fingerprint(absolute: &Path, key: &Key, stored: &[u8]) -> Result<usize, Lookup> {
    let entry = OpenEntry::open(absolute).map_err(|_| Lookup::FingerprintMismatch)?;
    if entry.key != *key {
        return Err(Lookup::Stale);
    }
    match entry.dir().and_then(fingerprint::take) {
        Some((live, entries)) if fingerprint::same(&live, stored) => Ok(entries),
        _ => Err(Lookup::FingerprintMismatch),
    }
}

/// Opens a cache file without following a symlink and without blocking,
/// and checks that it can be one of ours: a regular file of the user's, of
/// a size epcache writes.
fn open_index_path(file: &Path) -> Result<(File, FileInfo), Lookup> {
    let (handle, info) = match platform::open_nofollow(file) {
        Ok(opened) => opened,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(Lookup::NoFile),
        Err(err) => {
            return Err(Lookup::Unusable(Cause::io(
                format!("opening {}", file.display()),
                Some(file),
                err,
            )))
        }
    };
    check_index_file(file, &info)?;
    Ok((handle, info))
}

fn check_index_file(file: &Path, info: &FileInfo) -> Result<(), Lookup> {
    if !info.is_regular() {
        return Err(Lookup::Unusable(Cause::Refused(format!(
            "{} is {}, not a regular file",
            file.display(),
            platform::kind_name(info.kind)
        ))));
    }
    if !owned_by_current_user(info) {
        return Err(Lookup::NotOwned);
    }
    if info.size > format::MAX_FILE_LEN {
        return Err(Lookup::Corrupt(Cause::Refused(format!(
            "{} bytes is too large",
            info.size
        ))));
    }
    Ok(())
}

/// The bytes of a cache file, checked as [`read_index`] checks it before
/// reading.
fn read_index_path(file: &Path) -> Result<Vec<u8>, Lookup> {
    let (handle, _) = open_index_path(file)?;
    read_limited(handle).map_err(|err| Lookup::Unusable(Cause::io(String::new(), Some(file), err)))
}

/// The bytes of the cache file `name` in `dir`, checked as [`read_index`]
/// checks it (for `prune`).
pub(crate) fn read_index_file(dir: &DirHandle, name: &OsStr) -> Result<Vec<u8>, Lookup> {
    let path = Path::new(name);
    let (handle, info) = dir
        .open_file_nofollow(name)
        .map_err(|err| Lookup::Unusable(Cause::io(String::new(), Some(path), err)))?;
    check_index_file(path, &info)?;
    read_limited(handle).map_err(|err| Lookup::Unusable(Cause::io(String::new(), Some(path), err)))
}

fn read_limited(file: File) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(format::MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Writes `bytes` to a fresh, uniquely named file in `dir` and renames it
/// over `name`. Both go through the directory's descriptor, and the
/// temporary file is created with `O_EXCL | O_NOFOLLOW`, so nothing but a
/// new file of epcache's is ever written. A killed writer leaves only a
/// `.tmp-*` file, which `prune` removes.
fn write_atomically(dir: &DirHandle, name: &OsStr, bytes: &[u8]) -> io::Result<()> {
    let (temp_name, mut temp) = create_temp_file(dir)?;
    let written = temp
        .write_all(bytes)
        .and_then(|()| dir.rename(&temp_name, name));
    if written.is_err() {
        let _ = dir.remove_file(&temp_name);
    }
    written
}

//! Consulting, rebuilding and inspecting index files.
//!
//! No interprocess lock is taken anywhere. Writers scan, write a uniquely
//! named temporary file next to the final one and rename it into place;
//! concurrent writers race harmlessly and the last rename wins. Readers
//! verify everything they read, and any doubt is a miss followed by a
//! scan, so a cache problem can cost time but never change an answer.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::cache_dir::{CacheDir, WriteRefusal};
use crate::fingerprint;
use crate::format::{self, Header, FLAG_PROVISIONAL, FORMAT_VERSION};
use crate::freshness::{now_ns, Key, Settledness, DEFAULT_SETTLE};
use crate::index::{Index, IndexData};
use crate::outcome::{Lookup, Outcome, Publish};
use crate::platform;
use crate::query::Environment;
use crate::read_buf::{ReadBuf, ShortRead};

/// Set to anything but `0` or the empty string to turn the cache off.
pub const ENV_DISABLE: &str = "EPCACHE_DISABLE";

/// Overrides the settle time, in seconds (fractions allowed). Meant for
/// tests and for file systems with coarse clocks.
pub const ENV_SETTLE: &str = "EPCACHE_SETTLE_SECS";

/// An index together with how it was obtained.
#[derive(Clone, Debug)]
pub struct Consulted {
    /// The answer, identical to what a fresh scan gives.
    pub index: Index,
    /// Where it came from and what was written.
    pub outcome: Outcome,
}

/// What `status` reports for one path entry, without writing anything.
#[derive(Clone, Debug)]
pub struct Status {
    /// The path entry as given.
    pub path_entry: PathBuf,
    /// The cache file that describes it, if there is a cache directory.
    pub index_file: Option<PathBuf>,
    /// What a consult would find in that file.
    pub lookup: Lookup,
    /// The file's header, when the file could be framed.
    pub header: Option<Header>,
    /// Distributions and entry points in the file, when it decoded.
    pub counts: Option<(usize, usize)>,
    /// Whether the path entry is old enough to publish, when it exists.
    pub settledness: Option<Settledness>,
    /// Why a publish would be refused by the directory, if it would be.
    pub write_refusal: Option<String>,
    /// For a provisional file: how many metadata entries a reader stats to
    /// verify it (plus one directory listing).
    pub fingerprint_entries: Option<usize>,
}

/// The per-user index cache.
#[derive(Debug)]
pub struct Cache {
    dir: Option<CacheDir>,
    settle: Duration,
    readable: OnceLock<Result<(), WriteRefusal>>,
    /// The buffer index files are read into, kept between consults so that
    /// an interpreter consulting every sys.path entry allocates (and
    /// page-faults) it once rather than once per entry.
    scratch: Mutex<ReadBuf>,
}

/// Larger read buffers are not kept between consults.
const SCRATCH_KEEP: usize = 4 << 20;

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
            dir,
            settle,
            readable: OnceLock::new(),
            scratch: Mutex::new(ReadBuf::default()),
        }
    }

    /// The same cache with another settle time.
    pub fn with_settle(mut self, settle: Duration) -> Cache {
        self.settle = settle;
        self
    }

    /// The settle time in force.
    pub fn settle(&self) -> Duration {
        self.settle
    }

    /// The cache directory, unless the cache is disabled.
    pub fn dir(&self) -> Option<&CacheDir> {
        self.dir.as_ref()
    }

    /// The index file for a path entry, unless the cache is disabled.
    pub fn index_file(&self, path_entry: &Path) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.index_file(&absolute(path_entry)))
    }

    /// The directory may be read: checked once per `Cache`, because it
    /// costs two `stat`s that every consult would otherwise repeat.
    fn readable_dir(&self) -> Result<&CacheDir, (Lookup, Publish)> {
        let dir = self
            .dir
            .as_ref()
            .ok_or((Lookup::Disabled, Publish::Disabled))?;
        match self.readable.get_or_init(|| dir.check_readable()) {
            Ok(()) => Ok(dir),
            Err(refusal) => Err((
                Lookup::Unusable(refusal.reason().to_owned()),
                publish_refused(refusal.clone()),
            )),
        }
    }

    /// The index of one path entry: from its cache file when that is fresh,
    /// otherwise from a scan, publishing the result when the rules allow.
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
    ) -> (Environment, Vec<Outcome>) {
        let (indexes, outcomes) = path_entries
            .into_iter()
            .map(|p| {
                let consulted = self.consult(p);
                (consulted.index, consulted.outcome)
            })
            .unzip();
        (Environment::from_indexes(indexes), outcomes)
    }

    fn consult_or_rebuild(&self, path_entry: &Path, rebuild: bool) -> Consulted {
        let absolute = absolute(path_entry);
        let dir = match self.readable_dir() {
            Ok(dir) => dir,
            Err((lookup, publish)) => {
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
            Err(err) if platform::is_gone(&err) => {
                return scanned(path_entry, Lookup::NoEntry, None)
            }
            Err(err) => {
                return scanned(
                    path_entry,
                    Lookup::Unusable(format!("cannot stat the path entry: {err}")),
                    None,
                )
            }
        };
        let file = dir.index_file(&absolute);
        let lookup = if rebuild {
            Lookup::Skipped
        } else {
            match self.read_index(&file, &absolute, &key) {
                Ok(trusted) => return self.hit(dir, path_entry, &absolute, key, &file, trusted),
                Err(lookup) => lookup,
            }
        };
        // Only an installer's rebuild may publish inside the settle window,
        // and then only with a fingerprint taken before the scan, so that a
        // change during the scan makes the fingerprint stale, never the index.
        let fingerprint_before = match self.settledness(&key) {
            Settledness::TooFresh { .. } if rebuild => fingerprint::take(&absolute),
            _ => None,
        };
        let index = crate::scan(path_entry);
        let publish = self.publish(dir, &absolute, key, &index, &file, fingerprint_before);
        Consulted {
            index,
            outcome: Outcome {
                lookup,
                publish: Some(publish),
            },
        }
    }

    /// [`read_index`] with the shared read buffer, or a fresh one when
    /// another thread is using it: readers never wait for each other.
    fn read_index(&self, file: &Path, absolute: &Path, key: &Key) -> Result<Trusted, Lookup> {
        let Ok(mut scratch) = self.scratch.try_lock() else {
            return read_index(file, absolute, key, &mut ReadBuf::default());
        };
        let result = read_index(file, absolute, key, &mut scratch);
        if scratch.capacity() > SCRATCH_KEEP {
            *scratch = ReadBuf::default();
        }
        result
    }

    fn settledness(&self, key: &Key) -> Settledness {
        Settledness::of(key, now_ns(), self.settle)
    }

    /// A trusted file. A provisional one that has settled since is
    /// republished as a normal file, so later readers skip verification.
    fn hit(
        &self,
        dir: &CacheDir,
        path_entry: &Path,
        absolute: &Path,
        key: Key,
        file: &Path,
        trusted: Trusted,
    ) -> Consulted {
        let (lookup, publish) = match trusted.verified_entries {
            None => (Lookup::Hit, None),
            Some(entries) => {
                let promote = self.settledness(&key) == Settledness::Settled;
                let publish = promote.then(|| {
                    let header = Header {
                        version: FORMAT_VERSION,
                        flags: 0,
                        written_at_ns: now_ns(),
                        key,
                    };
                    match self.write(dir, file, &header, absolute, &[], &trusted.data) {
                        Publish::Published => Publish::Promoted,
                        refused => refused,
                    }
                });
                (Lookup::HitVerified { entries }, publish)
            }
        };
        Consulted {
            index: Index::from_parts(path_entry.to_path_buf(), trusted.data),
            outcome: Outcome { lookup, publish },
        }
    }

    /// Writes `index` as the cache file for `absolute`, if the rules allow.
    fn publish(
        &self,
        dir: &CacheDir,
        absolute: &Path,
        key_before: Key,
        index: &Index,
        file: &Path,
        fingerprint_before: Option<(Vec<u8>, usize)>,
    ) -> Publish {
        match Key::observe(absolute) {
            Ok(after) if after == key_before => {}
            _ => return Publish::ChangedDuringScan,
        }
        // A timestamp in the future never publishes, not even provisionally:
        // it would never settle, and something is wrong with the clock or the
        // tree that a person should see in `status`.
        let (flags, fingerprint, settles_in) =
            match (self.settledness(&key_before), fingerprint_before) {
                (Settledness::Settled, _) => (0, Vec::new(), Duration::ZERO),
                (Settledness::TooFresh { remaining }, Some((before, _))) => {
                    if fingerprint::take(absolute)
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
        match self.write(dir, file, &header, absolute, &fingerprint, index.data()) {
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
        let versioned = match dir.prepare_for_writing() {
            Ok(versioned) => versioned,
            Err(refusal) => return publish_refused(refusal),
        };
        let bytes = format::encode(header, &platform::path_bytes(absolute), fingerprint, data);
        match write_atomically(&versioned, file, &bytes) {
            Ok(()) => Publish::Published,
            Err(err) => Publish::Unwritable(err.to_string()),
        }
    }

    /// Reports on one path entry without scanning or writing.
    pub fn status(&self, path_entry: impl AsRef<Path>) -> Status {
        let path_entry = path_entry.as_ref();
        let absolute = absolute(path_entry);
        let key = Key::observe(&absolute).ok();
        let mut status = Status {
            path_entry: path_entry.to_path_buf(),
            index_file: self.index_file(path_entry),
            lookup: Lookup::Disabled,
            header: None,
            counts: None,
            settledness: key.map(|k| self.settledness(&k)),
            write_refusal: None,
            fingerprint_entries: None,
        };
        let dir = match self.readable_dir() {
            Ok(dir) => dir,
            Err((lookup, publish)) => {
                status.lookup = lookup;
                status.write_refusal = Some(publish.to_string());
                return status;
            }
        };
        status.write_refusal = dir.check_writable().err().map(|r| r.reason().to_owned());
        let Some(key) = key else {
            status.lookup = Lookup::NoEntry;
            return status;
        };
        let file = dir.index_file(&absolute);
        if let Ok(bytes) = std::fs::read(&file) {
            if let Ok(parts) = format::split(&bytes) {
                status.header = Some(parts.header.clone());
                if parts.header.is_provisional() {
                    status.fingerprint_entries = fingerprint::entry_count(parts.fingerprint);
                }
                if let Ok(data) = format::decode_payload(parts.payload) {
                    status.counts = Some((data.dist_count(), data.entry_point_count()));
                }
            }
        }
        status.lookup = match self.read_index(&file, &absolute, &key) {
            Ok(Trusted {
                verified_entries: Some(entries),
                ..
            }) => Lookup::HitVerified { entries },
            Ok(_) => Lookup::Hit,
            Err(lookup) => lookup,
        };
        status
    }
}

fn publish_refused(refusal: WriteRefusal) -> Publish {
    match refusal {
        WriteRefusal::Foreign(why) => Publish::ForeignOwned(why),
        WriteRefusal::Unwritable(why) => Publish::Unwritable(why),
    }
}

/// Where a scan result came from when the cache was not consulted.
fn scanned(path_entry: &Path, lookup: Lookup, publish: Option<Publish>) -> Consulted {
    Consulted {
        index: crate::scan(path_entry),
        outcome: Outcome { lookup, publish },
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

/// A cache file that passed every check.
struct Trusted {
    data: IndexData,
    /// For a provisional file, how many entries its verification stat-ed.
    verified_entries: Option<usize>,
}

/// Reads and fully verifies a cache file; any doubt is a miss.
fn read_index(
    file: &Path,
    absolute: &Path,
    key: &Key,
    buf: &mut ReadBuf,
) -> Result<Trusted, Lookup> {
    let mut handle = match File::open(file) {
        Ok(handle) => handle,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(Lookup::NoFile),
        Err(err) => {
            return Err(Lookup::Unusable(format!(
                "opening {}: {err}",
                file.display()
            )))
        }
    };
    let meta = handle
        .metadata()
        .map_err(|err| Lookup::Unusable(format!("stat {}: {err}", file.display())))?;
    if !platform::owned_by_current_user(&meta) {
        return Err(Lookup::NotOwned);
    }
    buf.clear();
    buf.reserve(meta.len() as usize + 1);
    // The file is replaced by rename, never written in place, so once the
    // size fstat gave is in, a short read is the end.
    buf.fill_to_end(&mut handle, ShortRead::EndPast(meta.len() as usize))
        .map_err(|err| Lookup::Unusable(format!("reading {}: {err}", file.display())))?;
    let parts = format::split(buf.bytes()).map_err(|err| Lookup::Corrupt(err.to_string()))?;
    if !parts.checksum_ok {
        return Err(Lookup::Corrupt(format::FormatError::Checksum.to_string()));
    }
    if parts.path != &*platform::path_bytes(absolute) {
        return Err(Lookup::PathDiffers);
    }
    if parts.header.key != *key {
        return Err(Lookup::Stale);
    }
    let verified_entries = if parts.header.is_provisional() {
        match fingerprint::take(absolute) {
            Some((live, entries)) if fingerprint::same(&live, parts.fingerprint) => Some(entries),
            _ => return Err(Lookup::FingerprintMismatch),
        }
    } else {
        None
    };
    let data =
        format::decode_payload(parts.payload).map_err(|err| Lookup::Corrupt(err.to_string()))?;
    Ok(Trusted {
        data,
        verified_entries,
    })
}

/// Writes `bytes` to a fresh, uniquely named file beside `file` and renames
/// it over `file`. A killed writer leaves only a `.tmp-*` file, which
/// `prune` removes.
fn write_atomically(dir: &Path, file: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    let (handle, temp_path) = temp.into_parts();
    drop(handle);
    platform::replace_file(&temp_path, file)?;
    // The name now belongs to the published file; do not delete it.
    temp_path.keep().map(drop).map_err(|e| e.error)
}

/// The prefix of temporary files in the versioned directory.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

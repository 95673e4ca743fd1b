//! The index of one path entry: what it holds, how it is built, stored
//! and read, and how a whole `sys.path` of them is queried.
//!
//! An [`Index`] is either *owned* — the result of a scan, every string in
//! one arena and every record in a table — or *read from a cache file*, in
//! which case it holds the open file and reads each part of it (a page of
//! distributions, one group's entry points, one bucket of names) the first
//! time a query needs it, checks it, and keeps it. Either way the views
//! ([`Distribution`], [`EntryPoint`]) borrow their strings from the buffer
//! the bytes were read into; nothing is copied per string.
//!
//! A part of a cache file that turns out damaged when it is first read (a
//! checksum that does not match, a file truncated in place since the
//! consult, an I/O error) is never used: the index then scans its path
//! entry once (through the [`Heal`](file::Heal) the cache gave it),
//! answers that query and every later one from the scan, and reports what
//! happened in [`Index::late_outcome`].
//!
//! * `schema`: the records and the string arena.
//! * `builder`: how a scan assembles an index.
//! * `view`: [`Distribution`] and [`EntryPoint`], borrowed from an index.
//! * `query`: [`Environment`], a `sys.path` of indexes, and [`Selection`].
//! * `name`: the name normalizations lookups compare by.
//! * `key`: the [`Key`] of the path entry an index describes.
//! * `format`: the cache file's bytes, and their checks.
//! * `file`: an index read lazily from a cache file.

mod builder;
pub(crate) mod file;
pub(crate) mod format;
mod key;
pub(crate) mod name;
mod query;
pub(crate) mod schema;
mod view;

use std::fmt;

use rustc_hash::FxHashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub(crate) use builder::{DistFacts, IndexBuilder};
pub use format::{inspect, CacheFile, Header, SectionInfo, FORMAT_VERSION, MAGIC};
pub use key::Key;
pub use query::{Environment, Selection};
pub use schema::Kind;
pub(crate) use schema::{IndexData, Part, Rec, EMPTY_DATA, EMPTY_RECORD};
pub use view::{Distribution, EntryPoint};
pub(crate) use view::{GroupDist, GroupDists};

use crate::outcome::Outcome;
use file::{Damage, FileIndex};
use format::record;
use view::Distributions;

/// An index held in memory whole: a scan's result.
#[derive(Clone, Debug)]
pub(crate) struct Owned {
    pub(crate) data: IndexData,
    pub(crate) complete: bool,
    /// The numbers of the distributions with a unique key, sorted by it,
    /// made the first time an `entry_points(group=)` query asks whether
    /// this entry holds a key.
    uniques: OnceLock<Box<[u32]>>,
}

impl Owned {
    pub(crate) fn new(data: IndexData, complete: bool) -> Owned {
        Owned {
            data,
            complete,
            uniques: OnceLock::new(),
        }
    }

    fn has_unique_key(&self, key: &str) -> bool {
        let data = &self.data;
        let sorted = self.uniques.get_or_init(|| {
            let mut numbers: Vec<u32> = (0..data.dists.len() as u32)
                .filter(|&i| data.dists[i as usize].unique_key.is_some())
                .collect();
            numbers.sort_unstable_by(|&a, &b| data.unique_key(a).cmp(data.unique_key(b)));
            numbers.into()
        });
        sorted
            .binary_search_by(|&i| data.unique_key(i).cmp(key))
            .is_ok()
    }

    /// The record of the distribution whose metadata is `child`, or an
    /// empty one.
    fn by_child(&self, child: &str) -> (Part<'_>, Rec<'_>) {
        let data = &self.data;
        match data.dists.iter().find(|d| data.str(d.child) == child) {
            Some(record) => (Part::Owned(data), Rec::Owned(record)),
            None => (Part::Owned(&EMPTY_DATA), Rec::Owned(&EMPTY_RECORD)),
        }
    }
}

/// Everything importlib.metadata would find in one `sys.path` entry.
///
/// Distributions are kept in the order importlib.metadata's
/// `distributions()` yields them for this entry. Build one with
/// [`scan`](crate::scan()) or get one from the cache with
/// [`Cache::consult`](crate::Cache::consult).
///
/// An index read from a cache file keeps that file open and reads the
/// parts a query needs when it first needs them; cloning it shares them.
#[derive(Clone)]
pub struct Index {
    path_entry: PathBuf,
    store: Store,
}

#[derive(Clone)]
enum Store {
    Owned(Owned),
    File(Arc<FileIndex>),
}

/// Where a query is answered from: what was scanned (or the scan a damaged
/// file fell back to), or the cache file.
enum View<'a> {
    Owned(&'a Owned),
    File(&'a FileIndex),
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index")
            .field("path_entry", &self.path_entry)
            .field("distributions", &self.len())
            .field("entry_points", &self.entry_point_count())
            .finish()
    }
}

/// Two indexes are equal when they hold the same distributions, with the
/// same entry points and diagnostics, for the same path entry: however
/// each was obtained.
impl PartialEq for Index {
    fn eq(&self, other: &Index) -> bool {
        self.path_entry == other.path_entry
            && self.len() == other.len()
            && self.diagnostics().eq(other.diagnostics())
            && self
                .distributions()
                .zip(other.distributions())
                .all(|(a, b)| a.same_as(&b))
            && self.is_complete() == other.is_complete()
    }
}

impl Eq for Index {}

impl Index {
    pub(crate) fn owned(path_entry: PathBuf, data: IndexData, complete: bool) -> Index {
        Index {
            path_entry,
            store: Store::Owned(Owned::new(data, complete)),
        }
    }

    pub(crate) fn from_file(path_entry: PathBuf, file: FileIndex) -> Index {
        Index {
            path_entry,
            store: Store::File(Arc::new(file)),
        }
    }

    /// The index as owned data: a scan's as it is, a file's read whole (or,
    /// should that fail, nothing, marked incomplete).
    pub(crate) fn into_owned(self) -> Owned {
        match self.store {
            Store::Owned(owned) => owned,
            Store::File(file) => match file.materialize() {
                Ok(data) => Owned::new(data, true),
                Err(_) => Owned::new(IndexData::default(), false),
            },
        }
    }

    /// The scanned data, when this index is a scan's result.
    pub(crate) fn as_owned(&self) -> Option<&Owned> {
        match &self.store {
            Store::Owned(owned) => Some(owned),
            Store::File(_) => None,
        }
    }

    /// The cache file this index reads, when it came from one.
    pub(crate) fn as_file(&self) -> Option<&FileIndex> {
        match &self.store {
            Store::Owned(_) => None,
            Store::File(file) => Some(file),
        }
    }

    fn view(&self) -> View<'_> {
        match &self.store {
            Store::Owned(owned) => View::Owned(owned),
            Store::File(file) => match file.fallback() {
                Some(owned) => View::Owned(owned),
                None => View::File(file),
            },
        }
    }

    /// The scan that replaces a file found damaged.
    fn fall_back<'a>(&'a self, file: &'a FileIndex, damage: Damage) -> &'a Owned {
        file.fall_back(&self.path_entry, damage)
    }

    fn full_view<'a>(&'a self, part: Part<'a>, record: Rec<'a>) -> Distribution<'a> {
        Distribution {
            index: self,
            part,
            record,
            full: true,
        }
    }

    /// Whether everything the scan tried to read was read, or was simply
    /// not there.
    ///
    /// An index is incomplete when a read failed in a way that may not
    /// last: permission denied, too many open files, an I/O error, a file
    /// too large to read. Its [diagnostics](Distribution::diagnostics) say
    /// what was missed. It is the honest answer of that scan, but the
    /// cache never publishes it, and the Python hook answers such a query
    /// with the stock `importlib.metadata` instead.
    pub fn is_complete(&self) -> bool {
        match self.view() {
            View::Owned(owned) => owned.complete,
            // Only complete scans are published.
            View::File(_) => true,
        }
    }

    /// When this index was read from a cache file and a part of that file
    /// turned out damaged as a query first read it: what happened then.
    ///
    /// The lookup says what was wrong (for example
    /// [`Lookup::Corrupt`](crate::Lookup::Corrupt)), the publish what the
    /// scan that replaced the file wrote. From then on the index answers
    /// every query from that scan, exactly as a consult that had found the
    /// damage would have. `None` while nothing of the kind happened.
    pub fn late_outcome(&self) -> Option<&Outcome> {
        self.as_file().and_then(FileIndex::late_outcome)
    }

    /// The path entry this index describes, as it was given.
    pub fn path_entry(&self) -> &Path {
        &self.path_entry
    }

    /// The distributions, in importlib.metadata's discovery order.
    pub fn distributions(&self) -> impl ExactSizeIterator<Item = Distribution<'_>> + Clone {
        let parts = match self.view() {
            View::Owned(owned) => vec![Part::Owned(&owned.data)],
            View::File(file) => match file.all_pages() {
                Ok(pages) => pages.into_iter().map(Part::Raw).collect(),
                Err(damage) => vec![Part::Owned(&self.fall_back(file, damage).data)],
            },
        };
        let remaining = parts.iter().map(|p| p.dist_count()).sum();
        Distributions {
            index: self,
            parts,
            part: 0,
            at: 0,
            remaining,
        }
    }

    /// The distribution at `position` in [`distributions`](Self::distributions)
    /// order, reading no more of a cache file than its own page.
    pub fn distribution_at(&self, position: usize) -> Option<Distribution<'_>> {
        match self.view() {
            View::Owned(owned) => owned
                .data
                .dists
                .get(position)
                .map(|r| self.full_view(Part::Owned(&owned.data), Rec::Owned(r))),
            View::File(file) => {
                let number = u32::try_from(position).ok()?;
                if position >= file.dist_count() {
                    return None;
                }
                if let Some((part, i, full)) = file.loaded_record(number) {
                    return Some(Distribution {
                        index: self,
                        part: Part::Raw(part),
                        record: Rec::Raw(part.dist(i)),
                        full,
                    });
                }
                match file.page_record(number) {
                    Ok((part, i)) => Some(self.full_view(Part::Raw(part), Rec::Raw(part.dist(i)))),
                    Err(damage) => {
                        let owned = self.fall_back(file, damage);
                        let record = owned.data.dists.get(position)?;
                        Some(self.full_view(Part::Owned(&owned.data), Rec::Owned(record)))
                    }
                }
            }
        }
    }

    /// The record with every entry point and diagnostic of the distribution
    /// numbered `number`, whose metadata is `child`.
    fn full_record(&self, number: u32, child: &str) -> (Part<'_>, Rec<'_>) {
        match self.view() {
            View::Owned(owned) => owned.by_child(child),
            View::File(file) => match file.page_record(number) {
                Ok((part, i)) if part.str(record::child(part.dist(i))) == child => {
                    (Part::Raw(part), Rec::Raw(part.dist(i)))
                }
                Ok(_) => self
                    .fall_back(
                        file,
                        Damage::invalid("a group's distribution is not on its page"),
                    )
                    .by_child(child),
                Err(damage) => self.fall_back(file, damage).by_child(child),
            },
        }
    }

    /// How many distributions the path entry holds.
    pub fn len(&self) -> usize {
        match self.view() {
            View::Owned(owned) => owned.data.dists.len(),
            View::File(file) => file.dist_count(),
        }
    }

    /// Whether the path entry holds no distribution.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many entry points all distributions declare together.
    pub fn entry_point_count(&self) -> usize {
        match self.view() {
            View::Owned(owned) => owned.data.entry_points.len(),
            View::File(file) => file.entry_point_count(),
        }
    }

    /// Problems with the path entry itself (for example an unreadable
    /// directory), as opposed to one distribution.
    pub fn diagnostics(&self) -> impl Iterator<Item = &str> {
        let part = match self.view() {
            View::Owned(owned) => Part::Owned(&owned.data),
            View::File(file) => match file.entry() {
                Ok(entry) => Part::Raw(entry),
                Err(damage) => Part::Owned(&self.fall_back(file, damage).data),
            },
        };
        part.messages(part.entry_diagnostics())
    }

    /// Every diagnostic in the index: the path entry's own, then each
    /// distribution's.
    pub fn diagnostic_count(&self) -> usize {
        match self.view() {
            View::Owned(owned) => owned.data.diagnostics.len(),
            View::File(file) => file.diagnostic_count(),
        }
    }

    /// The distributions that have [diagnostics](Distribution::diagnostics),
    /// in discovery order. From a cache file this reads only their pages.
    pub fn diagnosed(&self) -> impl Iterator<Item = Distribution<'_>> {
        let found = match self.view() {
            View::Owned(owned) => self.owned_diagnosed(&owned.data),
            View::File(file) => match file.diagnosed_records() {
                Ok(records) => records
                    .into_iter()
                    .map(|(part, i)| self.full_view(Part::Raw(part), Rec::Raw(part.dist(i))))
                    .collect(),
                Err(damage) => self.owned_diagnosed(&self.fall_back(file, damage).data),
            },
        };
        found.into_iter()
    }

    /// The distributions with entry points in `group`, in discovery order.
    /// From a cache file this reads only that group's part.
    pub(crate) fn group_dists(&self, group: &str) -> GroupDists<'_> {
        let (part, from_file) = match self.view() {
            View::Owned(owned) => (Part::Owned(&owned.data), false),
            View::File(file) => match file.group_block(group) {
                Ok(Some(block)) => (Part::Raw(block), true),
                Ok(None) => (Part::Owned(&EMPTY_DATA), false),
                Err(damage) => (Part::Owned(&self.fall_back(file, damage).data), false),
            },
        };
        GroupDists {
            index: self,
            part,
            from_file,
            at: 0,
            seen: FxHashSet::default(),
        }
    }

    /// Whether a distribution of this path entry has `key` as its unique
    /// key. From a cache file this reads one bucket of keys.
    pub(crate) fn has_unique_key(&self, key: &str) -> bool {
        match self.view() {
            View::Owned(owned) => owned.has_unique_key(key),
            View::File(file) => file
                .has_unique_key(key)
                .unwrap_or_else(|damage| self.fall_back(file, damage).has_unique_key(key)),
        }
    }

    /// The distributions `distribution(name)` finds here, in the order it
    /// finds them: those whose lookup key is `normalized` (not eggs), then
    /// eggs whose lookup key is `legacy`.
    pub(crate) fn named(
        &self,
        normalized: Option<&str>,
        legacy: Option<&str>,
    ) -> Vec<Distribution<'_>> {
        match self.view() {
            View::Owned(owned) => self.owned_named(&owned.data, normalized, legacy),
            View::File(file) => match file.named(normalized, legacy) {
                Ok(found) => found
                    .into_iter()
                    .map(|(part, i)| self.full_view(Part::Raw(part), Rec::Raw(part.dist(i))))
                    .collect(),
                Err(damage) => {
                    self.owned_named(&self.fall_back(file, damage).data, normalized, legacy)
                }
            },
        }
    }

    fn owned_diagnosed<'a>(&'a self, data: &'a IndexData) -> Vec<Distribution<'a>> {
        data.dists
            .iter()
            .filter(|d| !d.diagnostics.is_empty())
            .map(|r| self.full_view(Part::Owned(data), Rec::Owned(r)))
            .collect()
    }

    fn owned_named<'a>(
        &'a self,
        data: &'a IndexData,
        normalized: Option<&str>,
        legacy: Option<&str>,
    ) -> Vec<Distribution<'a>> {
        let matching = |egg: bool, key: Option<&str>| -> Vec<Distribution<'a>> {
            data.dists
                .iter()
                .filter(|d| (d.kind == Kind::Egg) == egg && key == Some(data.str(d.lookup_key)))
                .map(|r| self.full_view(Part::Owned(data), Rec::Owned(r)))
                .collect()
        };
        let mut found = matching(false, normalized);
        found.extend(matching(true, legacy));
        found
    }
}

#[cfg(test)]
mod tests;

//! The index of one path entry, and the borrowed views callers read it through.
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
//! entry once, answers that query and every later one from the scan, and
//! reports what happened in [`Index::late_outcome`].

mod builder;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashSet;

pub(crate) use builder::{DistFacts, IndexBuilder};

use crate::file_index::{Damage, FileIndex};
use crate::format::{record, RawPart};
use crate::outcome::Outcome;

/// A byte range of a string arena.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) len: u32,
}

/// A range of a record table: `start..end`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Rows {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Rows {
    pub(crate) fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    pub(crate) fn is_empty(self) -> bool {
        self.start >= self.end
    }
}

/// How a distribution's metadata is laid out on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A `*.dist-info` directory (wheels, modern installers).
    DistInfo,
    /// A `*.dist-info` that is a file; importlib reads the file itself as
    /// metadata. Not produced by any installer, but importlib accepts it.
    DistInfoFile,
    /// A `*.egg-info` directory (setuptools develop installs, old sdists).
    EggInfoDir,
    /// A single-file `*.egg-info` whose text is the metadata (distutils).
    EggInfoFile,
    /// The `EGG-INFO` directory of a path entry named `*.egg`.
    Egg,
}

impl Kind {
    /// A short stable name, as printed by the CLI and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DistInfo => "dist-info",
            Kind::DistInfoFile => "dist-info-file",
            Kind::EggInfoDir => "egg-info",
            Kind::EggInfoFile => "egg-info-file",
            Kind::Egg => "egg",
        }
    }

    /// Whether the metadata is a directory that may hold `entry_points.txt`.
    pub fn is_directory(self) -> bool {
        matches!(self, Kind::DistInfo | Kind::EggInfoDir | Kind::Egg)
    }

    /// The byte that stands for the kind in a cache file.
    pub(crate) fn code(self) -> u8 {
        match self {
            Kind::DistInfo => 0,
            Kind::DistInfoFile => 1,
            Kind::EggInfoDir => 2,
            Kind::EggInfoFile => 3,
            Kind::Egg => 4,
        }
    }

    /// The kind a cache file's byte stands for.
    pub(crate) fn from_code(code: u8) -> Option<Kind> {
        Some(match code {
            0 => Kind::DistInfo,
            1 => Kind::DistInfoFile,
            2 => Kind::EggInfoDir,
            3 => Kind::EggInfoFile,
            4 => Kind::Egg,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One distribution's record. In a group's part of a cache file the rows
/// cover only that group's entry points and no diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DistRecord {
    /// Its place in the path entry's discovery order.
    pub(crate) number: u32,
    pub(crate) kind: Kind,
    /// An earlier distribution of the same path entry has the same
    /// [`unique_key`](Self::unique_key), so `entry_points()` skips this
    /// one. Kept in a group's part of a cache file only.
    pub(crate) shadowed: bool,
    /// The metadata directory or file, relative to the path entry.
    pub(crate) child: Span,
    pub(crate) name: Option<Span>,
    pub(crate) version: Option<Span>,
    /// PEP 503 form of `name`.
    pub(crate) normalized_name: Option<Span>,
    /// importlib's `_normalized_name`, the key `entry_points()` de-duplicates
    /// on. Stored rather than derived so that the warm path allocates nothing
    /// per distribution.
    pub(crate) unique_key: Option<Span>,
    /// The key `distribution(name)` finds this distribution under.
    pub(crate) lookup_key: Span,
    pub(crate) entry_points: Rows,
    pub(crate) diagnostics: Rows,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryPointRecord {
    pub(crate) group: Span,
    pub(crate) name: Span,
    pub(crate) value: Span,
}

/// Distributions with their strings: a whole scanned index, or one part
/// of a cache file (a page of distributions, one group's entry points, the
/// path entry's own diagnostics). Every span and row refers to this part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IndexData {
    pub(crate) strings: String,
    pub(crate) dists: Vec<DistRecord>,
    pub(crate) entry_points: Vec<EntryPointRecord>,
    pub(crate) diagnostics: Vec<Span>,
    /// Diagnostics about the path entry itself rather than one distribution.
    pub(crate) entry_diagnostics: Rows,
}

/// Where a record whose full rows cannot be found points: nothing.
static EMPTY_DATA: IndexData = IndexData {
    strings: String::new(),
    dists: Vec::new(),
    entry_points: Vec::new(),
    diagnostics: Vec::new(),
    entry_diagnostics: Rows { start: 0, end: 0 },
};

pub(crate) const EMPTY_RECORD: DistRecord = DistRecord {
    number: 0,
    kind: Kind::DistInfo,
    shadowed: false,
    child: Span { start: 0, len: 0 },
    name: None,
    version: None,
    normalized_name: None,
    unique_key: None,
    lookup_key: Span { start: 0, len: 0 },
    entry_points: Rows { start: 0, end: 0 },
    diagnostics: Rows { start: 0, end: 0 },
};

/// One distribution's record, where it is: in a scanned index's table, or
/// in place in a part of a cache file (read field by field as asked for).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rec<'a> {
    Owned(&'a DistRecord),
    Raw(&'a record::Raw),
}

impl Rec<'_> {
    pub(crate) fn number(self) -> u32 {
        match self {
            Rec::Owned(d) => d.number,
            Rec::Raw(r) => record::number(r),
        }
    }

    pub(crate) fn kind(self) -> Kind {
        match self {
            Rec::Owned(d) => d.kind,
            Rec::Raw(r) => record::kind(r),
        }
    }

    pub(crate) fn shadowed(self) -> bool {
        match self {
            Rec::Owned(d) => d.shadowed,
            Rec::Raw(r) => record::shadowed(r),
        }
    }

    pub(crate) fn child(self) -> Span {
        match self {
            Rec::Owned(d) => d.child,
            Rec::Raw(r) => record::child(r),
        }
    }

    pub(crate) fn name(self) -> Option<Span> {
        match self {
            Rec::Owned(d) => d.name,
            Rec::Raw(r) => record::name(r),
        }
    }

    pub(crate) fn version(self) -> Option<Span> {
        match self {
            Rec::Owned(d) => d.version,
            Rec::Raw(r) => record::version(r),
        }
    }

    pub(crate) fn normalized_name(self) -> Option<Span> {
        match self {
            Rec::Owned(d) => d.normalized_name,
            Rec::Raw(r) => record::normalized_name(r),
        }
    }

    pub(crate) fn unique_key(self) -> Option<Span> {
        match self {
            Rec::Owned(d) => d.unique_key,
            Rec::Raw(r) => record::unique_key(r),
        }
    }

    pub(crate) fn lookup_key(self) -> Span {
        match self {
            Rec::Owned(d) => d.lookup_key,
            Rec::Raw(r) => record::lookup_key(r),
        }
    }

    pub(crate) fn entry_points(self) -> Rows {
        match self {
            Rec::Owned(d) => d.entry_points,
            Rec::Raw(r) => record::entry_points(r),
        }
    }

    pub(crate) fn diagnostics(self) -> Rows {
        match self {
            Rec::Owned(d) => d.diagnostics,
            Rec::Raw(r) => record::diagnostics(r),
        }
    }
}

/// Where a record and its strings are: a scanned index, or a part of a
/// cache file as it was read.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Part<'a> {
    Owned(&'a IndexData),
    Raw(&'a RawPart),
}

impl<'a> Part<'a> {
    pub(crate) fn str(self, span: Span) -> &'a str {
        match self {
            Part::Owned(data) => data.str(span),
            Part::Raw(part) => part.str(span),
        }
    }

    pub(crate) fn dist_count(self) -> usize {
        match self {
            Part::Owned(data) => data.dists.len(),
            Part::Raw(part) => part.dist_count(),
        }
    }

    pub(crate) fn dist(self, i: usize) -> Rec<'a> {
        match self {
            Part::Owned(data) => Rec::Owned(&data.dists[i]),
            Part::Raw(part) => Rec::Raw(part.dist(i)),
        }
    }

    pub(crate) fn ep(self, j: usize) -> EntryPointRecord {
        match self {
            Part::Owned(data) => data.entry_points[j],
            Part::Raw(part) => part.ep(j),
        }
    }

    pub(crate) fn diag(self, k: usize) -> Span {
        match self {
            Part::Owned(data) => data.diagnostics[k],
            Part::Raw(part) => part.diag(k),
        }
    }

    pub(crate) fn entry_diagnostics(self) -> Rows {
        match self {
            Part::Owned(data) => data.entry_diagnostics,
            Part::Raw(part) => part.entry_diagnostics(),
        }
    }

    pub(crate) fn messages(self, rows: Rows) -> impl Iterator<Item = &'a str> {
        rows.range().map(move |k| self.str(self.diag(k)))
    }
}

impl IndexData {
    pub(crate) fn str(&self, span: Span) -> &str {
        // Spans are checked by `validate` when decoded and correct by
        // construction when built, so slicing cannot panic.
        &self.strings[span.start as usize..(span.start + span.len) as usize]
    }

    /// Checks every offset against the arena and the tables (for tests of
    /// the builder: a file's parts are checked by `RawPart::decode`).
    #[cfg(test)]
    pub(crate) fn validate(&self) -> Result<(), String> {
        let arena = self.strings.as_str();
        // In an ASCII arena (nearly every real one) every offset is a
        // character boundary, which halves the cost of this loop.
        let ascii = arena.is_ascii();
        let ok = |span: Span| span_in(arena, span, ascii);
        let ok_opt = |span: Option<Span>| span.is_none_or(ok);
        let rows_ok = |rows: Rows, len: usize| rows.start <= rows.end && rows.end as usize <= len;
        for (i, d) in self.dists.iter().enumerate() {
            let strings_ok = ok(d.child)
                && ok(d.lookup_key)
                && ok_opt(d.name)
                && ok_opt(d.version)
                && ok_opt(d.normalized_name)
                && ok_opt(d.unique_key);
            if !strings_ok {
                return Err(format!("distribution {i} has a string out of range"));
            }
            if !rows_ok(d.entry_points, self.entry_points.len())
                || !rows_ok(d.diagnostics, self.diagnostics.len())
            {
                return Err(format!("distribution {i} has rows out of range"));
            }
        }
        if !self
            .entry_points
            .iter()
            .all(|ep| ok(ep.group) && ok(ep.name) && ok(ep.value))
        {
            return Err("an entry point has a string out of range".into());
        }
        if !self.diagnostics.iter().all(|&span| ok(span))
            || !rows_ok(self.entry_diagnostics, self.diagnostics.len())
        {
            return Err("a diagnostic is out of range".into());
        }
        Ok(())
    }

    fn push_str(&mut self, s: &str) -> Span {
        let start = self.strings.len() as u32;
        self.strings.push_str(s);
        Span {
            start,
            len: s.len() as u32,
        }
    }

    /// One index made of the path entry's diagnostics in `entry` and the
    /// distributions of `pages`, in order, with every string copied into
    /// one arena. (The parts come from one file of at most 2 GiB, so the
    /// arena fits 32-bit spans.)
    pub(crate) fn concat(entry: &RawPart, pages: &[&RawPart]) -> IndexData {
        let mut out = IndexData::default();
        let entry = Part::Raw(entry);
        for message in entry.messages(entry.entry_diagnostics()) {
            let copied = out.push_str(message);
            out.diagnostics.push(copied);
        }
        out.entry_diagnostics = Rows {
            start: 0,
            end: out.diagnostics.len() as u32,
        };
        for &page in pages {
            let page = Part::Raw(page);
            for i in 0..page.dist_count() {
                out.push_copy(page, page.dist(i));
            }
        }
        out
    }

    /// Appends a copy of `part`'s record `d` with all its rows.
    fn push_copy(&mut self, part: Part<'_>, d: Rec<'_>) {
        let child = self.push_str(part.str(d.child()));
        let name = d.name().map(|s| self.push_str(part.str(s)));
        let version = d.version().map(|s| self.push_str(part.str(s)));
        let lookup = d.lookup_key();
        let lookup_key = self.push_str(part.str(lookup));
        let mut known = vec![(lookup, lookup_key)];
        let mut copy = |this: &mut IndexData, s: Span| match known.iter().find(|k| k.0 == s) {
            Some(&(_, to)) => to,
            None => {
                let to = this.push_str(part.str(s));
                known.push((s, to));
                to
            }
        };
        let normalized_name = d.normalized_name().map(|s| copy(self, s));
        let unique_key = d.unique_key().map(|s| copy(self, s));
        let first_ep = self.entry_points.len() as u32;
        for j in d.entry_points().range() {
            let ep = part.ep(j);
            let record = EntryPointRecord {
                group: self.push_str(part.str(ep.group)),
                name: self.push_str(part.str(ep.name)),
                value: self.push_str(part.str(ep.value)),
            };
            self.entry_points.push(record);
        }
        let first_diag = self.diagnostics.len() as u32;
        for message in part.messages(d.diagnostics()) {
            let copied = self.push_str(message);
            self.diagnostics.push(copied);
        }
        self.dists.push(DistRecord {
            number: self.dists.len() as u32,
            kind: d.kind(),
            shadowed: false,
            child,
            name,
            version,
            normalized_name,
            unique_key,
            lookup_key,
            entry_points: Rows {
                start: first_ep,
                end: self.entry_points.len() as u32,
            },
            diagnostics: Rows {
                start: first_diag,
                end: self.diagnostics.len() as u32,
            },
        });
    }

    fn unique_key(&self, i: u32) -> &str {
        self.dists[i as usize]
            .unique_key
            .map_or("", |s| self.str(s))
    }
}

/// Whether `span` lies inside `arena` and starts and ends on character
/// boundaries, so that slicing with it cannot panic.
#[cfg(test)]
fn span_in(arena: &str, span: Span, ascii: bool) -> bool {
    let start = span.start as usize;
    let end = start + span.len as usize;
    end <= arena.len() && (ascii || (arena.is_char_boundary(start) && arena.is_char_boundary(end)))
}

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

/// The iterator of [`Index::distributions`].
#[derive(Clone)]
struct Distributions<'a> {
    index: &'a Index,
    parts: Vec<Part<'a>>,
    part: usize,
    at: usize,
    remaining: usize,
}

impl<'a> Iterator for Distributions<'a> {
    type Item = Distribution<'a>;

    fn next(&mut self) -> Option<Distribution<'a>> {
        loop {
            let part = *self.parts.get(self.part)?;
            if self.at < part.dist_count() {
                let record = part.dist(self.at);
                self.at += 1;
                self.remaining -= 1;
                return Some(self.index.full_view(part, record));
            }
            self.part += 1;
            self.at = 0;
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Distributions<'_> {}

/// The distributions with entry points in one group, one path entry's
/// ([`Index::group_dists`]).
pub(crate) struct GroupDists<'a> {
    index: &'a Index,
    part: Part<'a>,
    /// A group's part of a cache file, which holds only the group's
    /// distributions and entry points and says which are shadowed; else a
    /// whole scanned index, which is searched.
    from_file: bool,
    at: usize,
    /// For a scanned index: the unique keys of the distributions so far.
    seen: FxHashSet<&'a str>,
}

impl<'a> GroupDists<'a> {
    /// The next distribution with entry points in `group` (the group these
    /// were asked for).
    pub(crate) fn next_dist(&mut self, group: &str) -> Option<GroupDist<'a>> {
        let part = self.part;
        while self.at < part.dist_count() {
            let record = part.dist(self.at);
            self.at += 1;
            let eps = record.entry_points().range();
            if self.from_file {
                return Some(GroupDist {
                    dist: Distribution {
                        index: self.index,
                        part,
                        record,
                        full: false,
                    },
                    first: !record.shadowed(),
                    eps,
                    mixed: false,
                });
            }
            let first = record
                .unique_key()
                .is_none_or(|k| self.seen.insert(part.str(k)));
            if eps.clone().any(|j| part.str(part.ep(j).group) == group) {
                return Some(GroupDist {
                    dist: self.index.full_view(part, record),
                    first,
                    eps,
                    mixed: true,
                });
            }
        }
        None
    }
}

/// One distribution with entry points in a group, and those entry points.
pub(crate) struct GroupDist<'a> {
    pub(crate) dist: Distribution<'a>,
    /// Whether it is the first of its unique key in its path entry.
    pub(crate) first: bool,
    eps: std::ops::Range<usize>,
    /// Whether `eps` holds other groups' entry points too (a scanned index).
    mixed: bool,
}

impl<'a> GroupDist<'a> {
    /// Its next entry point in `group`.
    pub(crate) fn next_entry_point(&mut self, group: &str) -> Option<EntryPoint<'a>> {
        let part = self.dist.part;
        for j in self.eps.by_ref() {
            let ep = part.ep(j);
            let ep_group = part.str(ep.group);
            if self.mixed && ep_group != group {
                continue;
            }
            return Some(EntryPoint {
                group: ep_group,
                name: part.str(ep.name),
                value: part.str(ep.value),
                dist: self.dist,
            });
        }
        None
    }
}

/// One distribution of an [`Index`].
#[derive(Clone, Copy)]
pub struct Distribution<'a> {
    index: &'a Index,
    /// Where `record`'s strings and rows are.
    part: Part<'a>,
    record: Rec<'a>,
    /// Whether `record`'s rows are all of the distribution's entry points
    /// and diagnostics; in a group's part they are that group's only.
    full: bool,
}

impl fmt::Debug for Distribution<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Distribution")
            .field("name", &self.name())
            .field("version", &self.version())
            .field("kind", &self.kind())
            .field("metadata_path", &self.metadata_path())
            .finish()
    }
}

impl<'a> Distribution<'a> {
    fn str(&self, span: Span) -> &'a str {
        self.part.str(span)
    }

    /// The metadata `Name`, or `None` when the metadata has no `Name`
    /// header (or could not be read at all).
    pub fn name(&self) -> Option<&'a str> {
        self.record.name().map(|s| self.str(s))
    }

    /// The metadata `Version`, or `None` when absent.
    pub fn version(&self) -> Option<&'a str> {
        self.record.version().map(|s| self.str(s))
    }

    /// The PEP 503 normalized form of [`name`](Self::name): lower case,
    /// with `-` as the only separator.
    pub fn normalized_name(&self) -> Option<&'a str> {
        self.record.normalized_name().map(|s| self.str(s))
    }

    /// The key `entry_points()` de-duplicates on: taken from the metadata
    /// directory's name when its extension is exactly `.dist-info` or
    /// `.egg-info`, from the metadata `Name` otherwise (PEP 503 form).
    pub fn unique_key(&self) -> Option<&'a str> {
        self.record.unique_key().map(|s| self.str(s))
    }

    pub(crate) fn lookup_key(&self) -> &'a str {
        self.str(self.record.lookup_key())
    }

    /// How the metadata is laid out.
    pub fn kind(&self) -> Kind {
        self.record.kind()
    }

    /// The path entry this distribution was found in.
    pub fn path_entry(&self) -> &'a Path {
        &self.index.path_entry
    }

    /// The index this distribution belongs to.
    pub fn index(&self) -> &'a Index {
        self.index
    }

    /// This distribution's place in [`Index::distributions`] order, from 0.
    pub fn position(&self) -> usize {
        self.record.number() as usize
    }

    /// The name of the metadata directory or file inside the path entry.
    pub fn metadata_name(&self) -> &'a str {
        self.str(self.record.child())
    }

    /// The metadata directory or file. For a zip path entry this is the
    /// zip's path joined with the member name, as importlib prints it.
    pub fn metadata_path(&self) -> PathBuf {
        self.index.path_entry.join(self.metadata_name())
    }

    /// The record with all of this distribution's rows, and where they are.
    fn full_record(&self) -> (Part<'a>, Rec<'a>) {
        if self.full {
            (self.part, self.record)
        } else {
            self.index
                .full_record(self.record.number(), self.metadata_name())
        }
    }

    /// The entry points in `entry_points.txt` order, duplicates included.
    pub fn entry_points(&self) -> impl ExactSizeIterator<Item = EntryPoint<'a>> + Clone + 'a {
        let dist = *self;
        let (part, record) = self.full_record();
        record.entry_points().range().map(move |j| {
            let ep = part.ep(j);
            EntryPoint {
                group: part.str(ep.group),
                name: part.str(ep.name),
                value: part.str(ep.value),
                dist,
            }
        })
    }

    /// What could not be read or parsed for this distribution.
    pub fn diagnostics(&self) -> impl ExactSizeIterator<Item = &'a str> + Clone + 'a {
        let (part, record) = self.full_record();
        record
            .diagnostics()
            .range()
            .map(move |k| part.str(part.diag(k)))
    }

    /// Whether the metadata has a `Name` or `Version`, which proves it is
    /// not empty: `importlib_metadata` ≥ 8.1 prefers such a distribution
    /// when several match a name.
    pub fn has_metadata(&self) -> bool {
        self.record.name().is_some() || self.record.version().is_some()
    }

    /// Whether two distributions show the same everything.
    fn same_as(&self, other: &Distribution<'_>) -> bool {
        self.kind() == other.kind()
            && self.metadata_name() == other.metadata_name()
            && self.name() == other.name()
            && self.version() == other.version()
            && self.normalized_name() == other.normalized_name()
            && self.unique_key() == other.unique_key()
            && self.lookup_key() == other.lookup_key()
            && self.position() == other.position()
            && self
                .entry_points()
                .map(|e| (e.group, e.name, e.value))
                .eq(other.entry_points().map(|e| (e.group, e.name, e.value)))
            && self.diagnostics().eq(other.diagnostics())
    }
}

/// One entry point: `name = value` in the section `[group]`.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct EntryPoint<'a> {
    /// The section name, exactly as written between the brackets.
    pub group: &'a str,
    /// The text before the first `=`, stripped.
    pub name: &'a str,
    /// The text after the first `=`, stripped, kept raw
    /// (`module:attr [extras]`).
    pub value: &'a str,
    /// The distribution that declares it.
    pub dist: Distribution<'a>,
}

impl fmt::Debug for EntryPoint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryPoint")
            .field("group", &self.group)
            .field("name", &self.name)
            .field("value", &self.value)
            .field("dist", &self.dist.name())
            .finish()
    }
}

#[cfg(test)]
mod tests;

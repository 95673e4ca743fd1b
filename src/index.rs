//! The index of one path entry, and the borrowed views callers read it through.
//!
//! An [`Index`] keeps every string in one arena and refers to them by
//! offset. Decoding a cached index therefore costs a handful of allocations
//! however many distributions it holds, which is what keeps a warm consult
//! close to the cost of reading the file.

use std::fmt;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;
use wincode::{SchemaRead, SchemaWrite};

/// A byte range of the string arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub(crate) struct Span {
    start: u32,
    len: u32,
}

/// A range of a record table: `start..end`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub(crate) struct Rows {
    start: u32,
    end: u32,
}

impl Rows {
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// How a distribution's metadata is laid out on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
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
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub(crate) struct DistRecord {
    kind: Kind,
    /// The metadata directory or file, relative to the path entry.
    child: Span,
    name: Option<Span>,
    version: Option<Span>,
    /// PEP 503 form of `name`.
    normalized_name: Option<Span>,
    /// importlib's `_normalized_name`, the key `entry_points()` de-duplicates
    /// on. Stored rather than derived so that the warm path allocates nothing
    /// per distribution.
    unique_key: Option<Span>,
    /// The key `distribution(name)` finds this distribution under.
    lookup_key: Span,
    entry_points: Rows,
    diagnostics: Rows,
}

#[derive(Clone, Debug, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub(crate) struct EntryPointRecord {
    group: Span,
    name: Span,
    value: Span,
}

/// The serialized part of an [`Index`]: everything except the path entry,
/// which the cache file stores in its header.
#[derive(Clone, Debug, Default, PartialEq, Eq, SchemaWrite, SchemaRead)]
pub(crate) struct IndexData {
    strings: String,
    dists: Vec<DistRecord>,
    entry_points: Vec<EntryPointRecord>,
    diagnostics: Vec<Span>,
    /// Diagnostics about the path entry itself rather than one distribution.
    entry_diagnostics: Rows,
}

/// [`IndexData`] as decoded from a cache file: the same fields in the same
/// order, so the same bytes, but with the arena borrowed from the file
/// rather than copied by the codec; [`IndexData::from`] makes the copy.
#[derive(SchemaRead)]
pub(crate) struct IndexDataRef<'a> {
    strings: &'a str,
    dists: Vec<DistRecord>,
    entry_points: Vec<EntryPointRecord>,
    diagnostics: Vec<Span>,
    entry_diagnostics: Rows,
}

impl From<IndexDataRef<'_>> for IndexData {
    fn from(decoded: IndexDataRef<'_>) -> Self {
        IndexData {
            strings: copy_arena(decoded.strings),
            dists: decoded.dists,
            entry_points: decoded.entry_points,
            diagnostics: decoded.diagnostics,
            entry_diagnostics: decoded.entry_diagnostics,
        }
    }
}

/// Copies the arena in pieces of about 2 KiB.
///
/// A single large `memcpy` is what a warm consult would otherwise spend
/// most of its time in at random: glibc copies large blocks with
/// `rep movsb`, which on AMD Zen CPUs runs about 15 times slower when the
/// destination lies 1 to 31 bytes past the source modulo 4 KiB (measured
/// here: 26 µs instead of 1.4 µs for a 60 KB arena). Where the arena lands
/// depends on the heap, so one build of a program hit it on every consult
/// and another never did. Pieces below glibc's `rep movsb` threshold are
/// copied with vector moves, which have no such cliff.
fn copy_arena(text: &str) -> String {
    const PIECE: usize = 2048;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(PIECE);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (piece, tail) = rest.split_at(end);
        out.push_str(piece);
        rest = tail;
    }
    out
}

/// Everything importlib.metadata would find in one `sys.path` entry.
///
/// Distributions are kept in the order importlib.metadata's
/// `distributions()` yields them for this entry. Build one with
/// [`scan`](crate::scan()) or get one from the cache with
/// [`Cache::consult`](crate::Cache::consult).
#[derive(Clone, PartialEq, Eq)]
pub struct Index {
    path_entry: PathBuf,
    data: IndexData,
    complete: bool,
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index")
            .field("path_entry", &self.path_entry)
            .field("distributions", &self.data.dists.len())
            .field("entry_points", &self.data.entry_points.len())
            .finish()
    }
}

impl Index {
    pub(crate) fn from_parts(path_entry: PathBuf, data: IndexData) -> Self {
        Index {
            path_entry,
            data,
            complete: true,
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
        self.complete
    }

    pub(crate) fn data(&self) -> &IndexData {
        &self.data
    }

    /// The path entry this index describes, as it was given.
    pub fn path_entry(&self) -> &Path {
        &self.path_entry
    }

    /// The distributions, in importlib.metadata's discovery order.
    pub fn distributions(&self) -> impl ExactSizeIterator<Item = Distribution<'_>> + Clone {
        self.data.dists.iter().map(move |record| Distribution {
            index: self,
            record,
        })
    }

    /// How many distributions the path entry holds.
    pub fn len(&self) -> usize {
        self.data.dists.len()
    }

    /// Whether the path entry holds no distribution.
    pub fn is_empty(&self) -> bool {
        self.data.dists.is_empty()
    }

    /// How many entry points all distributions declare together.
    pub fn entry_point_count(&self) -> usize {
        self.data.entry_points.len()
    }

    /// Problems with the path entry itself (for example an unreadable
    /// directory), as opposed to one distribution.
    pub fn diagnostics(&self) -> impl Iterator<Item = &str> {
        self.data.diagnostic_messages(self.data.entry_diagnostics)
    }

    /// Every diagnostic in the index: the path entry's own, then each
    /// distribution's.
    pub fn diagnostic_count(&self) -> usize {
        self.data.diagnostics.len()
    }
}

impl IndexData {
    pub(crate) fn dist_count(&self) -> usize {
        self.dists.len()
    }

    pub(crate) fn entry_point_count(&self) -> usize {
        self.entry_points.len()
    }

    fn str(&self, span: Span) -> &str {
        // Spans are checked by `validate` when decoded and correct by
        // construction when built, so slicing cannot panic.
        &self.strings[span.start as usize..(span.start + span.len) as usize]
    }

    fn diagnostic_messages(&self, rows: Rows) -> impl Iterator<Item = &str> {
        self.diagnostics[rows.range()]
            .iter()
            .map(move |&span| self.str(span))
    }

    /// Checks every offset against the arena and the tables, so that a
    /// decoded index that passed the integrity check still cannot make an
    /// accessor panic.
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
}

/// Whether `span` lies inside `arena` and starts and ends on character
/// boundaries, so that slicing with it cannot panic.
#[inline]
fn span_in(arena: &str, span: Span, ascii: bool) -> bool {
    let start = span.start as usize;
    let end = start + span.len as usize;
    end <= arena.len() && (ascii || (arena.is_char_boundary(start) && arena.is_char_boundary(end)))
}

/// One distribution of an [`Index`].
#[derive(Clone, Copy)]
pub struct Distribution<'a> {
    index: &'a Index,
    record: &'a DistRecord,
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
    fn data(&self) -> &'a IndexData {
        &self.index.data
    }

    /// The metadata `Name`, or `None` when the metadata has no `Name`
    /// header (or could not be read at all).
    pub fn name(&self) -> Option<&'a str> {
        self.record.name.map(|s| self.data().str(s))
    }

    /// The metadata `Version`, or `None` when absent.
    pub fn version(&self) -> Option<&'a str> {
        self.record.version.map(|s| self.data().str(s))
    }

    /// The PEP 503 normalized form of [`name`](Self::name): lower case,
    /// with `-` as the only separator.
    pub fn normalized_name(&self) -> Option<&'a str> {
        self.record.normalized_name.map(|s| self.data().str(s))
    }

    /// The key `entry_points()` de-duplicates on: taken from the metadata
    /// directory's name when its extension is exactly `.dist-info` or
    /// `.egg-info`, from the metadata `Name` otherwise (PEP 503 form).
    pub fn unique_key(&self) -> Option<&'a str> {
        self.record.unique_key.map(|s| self.data().str(s))
    }

    pub(crate) fn lookup_key(&self) -> &'a str {
        self.data().str(self.record.lookup_key)
    }

    /// How the metadata is laid out.
    pub fn kind(&self) -> Kind {
        self.record.kind
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
        // `record` is an element of `dists`, so the address difference is a
        // whole number of records.
        let base = self.data().dists.as_ptr() as usize;
        (self.record as *const DistRecord as usize - base) / std::mem::size_of::<DistRecord>()
    }

    /// The name of the metadata directory or file inside the path entry.
    pub fn metadata_name(&self) -> &'a str {
        self.data().str(self.record.child)
    }

    /// The metadata directory or file. For a zip path entry this is the
    /// zip's path joined with the member name, as importlib prints it.
    pub fn metadata_path(&self) -> PathBuf {
        self.index.path_entry.join(self.metadata_name())
    }

    /// The entry points in `entry_points.txt` order, duplicates included.
    pub fn entry_points(&self) -> impl ExactSizeIterator<Item = EntryPoint<'a>> + Clone + 'a {
        let dist = *self;
        let data = self.data();
        data.entry_points[self.record.entry_points.range()]
            .iter()
            .map(move |ep| EntryPoint {
                group: data.str(ep.group),
                name: data.str(ep.name),
                value: data.str(ep.value),
                dist,
            })
    }

    /// What could not be read or parsed for this distribution.
    pub fn diagnostics(&self) -> impl ExactSizeIterator<Item = &'a str> + Clone + 'a {
        let data = self.data();
        data.diagnostics[self.record.diagnostics.range()]
            .iter()
            .map(move |&span| data.str(span))
    }

    /// Whether the metadata has a `Name` or `Version`, which proves it is
    /// not empty: `importlib_metadata` ≥ 8.1 prefers such a distribution
    /// when several match a name.
    pub fn has_metadata(&self) -> bool {
        self.record.name.is_some() || self.record.version.is_some()
    }
}

/// One entry point: `name = value` in the section `[group]`.
#[derive(Clone, Copy)]
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

/// What the scanner learned about one distribution, handed to
/// [`IndexBuilder::push`]. Entry points borrow the bytes they were parsed
/// from, which are copied once, into the arena.
#[derive(Debug, Default)]
pub(crate) struct DistFacts<'a> {
    pub name: Option<&'a str>,
    pub version: Option<&'a str>,
    pub entry_points: Vec<(&'a str, &'a str, &'a str)>,
    pub diagnostics: Vec<String>,
    /// A read failed in a way that may not last (see
    /// [`Index::is_complete`]).
    pub incomplete: bool,
}

/// Appends distributions to a new [`Index`], interning group names, which
/// repeat across distributions, so that the arena stays small.
///
/// A scan may fill several builders in parallel, one per contiguous run of
/// distributions, and [`append`](Self::append) them in order.
#[derive(Default)]
pub(crate) struct IndexBuilder {
    data: IndexData,
    // Keys are group names hashed thousands of times per scan; FxHash is
    // several times cheaper than SipHash there and they come from files
    // of the user's own environment, so hash flooding is not a concern.
    interned: FxHashMap<String, Span>,
    /// Where a distribution's normalized name is built.
    scratch: String,
    /// Something could not be read (see [`Index::is_complete`]).
    incomplete: bool,
    /// Strings were dropped because the arena reached [`MAX_ARENA`].
    overflowed: bool,
}

/// The most text one index holds. Spans are 32-bit, and an index this
/// large is no environment anyone has: past it, strings are dropped and
/// the index is marked incomplete, so it is answered but never cached.
const MAX_ARENA: usize = 1 << 30;

impl IndexBuilder {
    fn push_str(&mut self, s: &str) -> Span {
        let start = self.data.strings.len();
        if start + s.len() > MAX_ARENA {
            self.overflowed = true;
            return Span { start: 0, len: 0 };
        }
        self.data.strings.push_str(s);
        // Both fit: the arena is bounded by MAX_ARENA, below 4 GiB.
        Span {
            start: start as u32,
            len: s.len() as u32,
        }
    }

    fn intern(&mut self, s: &str) -> Span {
        if let Some(&span) = self.interned.get(s) {
            return span;
        }
        let span = self.push_str(s);
        self.interned.insert(s.to_owned(), span);
        span
    }

    /// The span of `s`: `known`'s when `s` is `known_text`, else a new one.
    fn push_unless_same(&mut self, s: &str, known_text: &str, known: Span) -> Span {
        if s == known_text {
            known
        } else {
            self.push_str(s)
        }
    }

    fn rows_from(start: usize, end: usize) -> Rows {
        Rows {
            start: start as u32,
            end: end as u32,
        }
    }

    /// Records a read of the path entry itself that failed in a way that
    /// may not last, making the index incomplete.
    pub fn entry_failure(&mut self, message: String) {
        self.incomplete = true;
        self.entry_diagnostic(message);
    }

    /// Records a diagnostic about the path entry itself.
    pub fn entry_diagnostic(&mut self, message: String) {
        // Entry diagnostics are pushed before any distribution, so they form
        // one contiguous run at the front of the table.
        debug_assert!(self.data.dists.is_empty());
        let span = self.push_str(&message);
        self.data.diagnostics.push(span);
        self.data.entry_diagnostics = Self::rows_from(0, self.data.diagnostics.len());
    }

    /// Appends one distribution.
    pub fn push(
        &mut self,
        kind: Kind,
        child: &str,
        lookup_key: &str,
        unique_from_stem: Option<&str>,
        facts: DistFacts,
    ) {
        self.incomplete |= facts.incomplete;
        let child = self.push_str(child);
        let name = facts.name.map(|n| self.push_str(n));
        let version = facts.version.map(|v| self.push_str(v));
        // The three keys are usually one string (the directory's name and
        // the metadata Name agree), stored once; across distributions they
        // rarely repeat, so they are not interned.
        let lookup_span = self.push_str(lookup_key);
        let mut normalized = std::mem::take(&mut self.scratch);
        let normalized_name = facts.name.map(|n| {
            crate::pystr::normalize_name_into(n, &mut normalized);
            self.push_unless_same(&normalized, lookup_key, lookup_span)
        });
        let unique_key = match (unique_from_stem, normalized_name) {
            (Some(key), Some(span)) if key == normalized => Some(span),
            (Some(key), _) => Some(self.push_unless_same(key, lookup_key, lookup_span)),
            (None, span) => span,
        };
        self.scratch = normalized;
        let lookup_key = lookup_span;
        let first_ep = self.data.entry_points.len();
        for &(group, ep_name, value) in &facts.entry_points {
            let record = EntryPointRecord {
                group: self.intern(group),
                name: self.push_str(ep_name),
                value: self.push_str(value),
            };
            self.data.entry_points.push(record);
        }
        let first_diag = self.data.diagnostics.len();
        for message in &facts.diagnostics {
            let span = self.push_str(message);
            self.data.diagnostics.push(span);
        }
        self.data.dists.push(DistRecord {
            kind,
            child,
            name,
            version,
            normalized_name,
            unique_key,
            lookup_key,
            entry_points: Self::rows_from(first_ep, self.data.entry_points.len()),
            diagnostics: Self::rows_from(first_diag, self.data.diagnostics.len()),
        });
    }

    /// Appends every distribution of `shard` after those already here.
    ///
    /// Strings the two builders interned separately stay duplicated; that
    /// costs a few bytes per parallel part and keeps the merge a copy.
    pub fn append(&mut self, shard: IndexBuilder) {
        self.incomplete |= shard.incomplete;
        self.overflowed |= shard.overflowed;
        let shard = shard.data;
        debug_assert!(shard.entry_diagnostics.start == shard.entry_diagnostics.end);
        // Past the bound the shard's records still come (the scan reorders
        // them by position) but with empty strings.
        let strings = (self.data.strings.len() + shard.strings.len() <= MAX_ARENA)
            .then_some(self.data.strings.len() as u32);
        self.overflowed |= strings.is_none();
        let entry_points = self.data.entry_points.len() as u32;
        let diagnostics = self.data.diagnostics.len() as u32;
        if strings.is_some() {
            self.data.strings.push_str(&shard.strings);
        }
        let span = |s: Span| match strings {
            Some(at) => Span {
                start: s.start + at,
                len: s.len,
            },
            None => Span { start: 0, len: 0 },
        };
        let rows = |r: Rows, by: u32| Rows {
            start: r.start + by,
            end: r.end + by,
        };
        self.data
            .dists
            .extend(shard.dists.into_iter().map(|d| DistRecord {
                child: span(d.child),
                name: d.name.map(span),
                version: d.version.map(span),
                normalized_name: d.normalized_name.map(span),
                unique_key: d.unique_key.map(span),
                lookup_key: span(d.lookup_key),
                entry_points: rows(d.entry_points, entry_points),
                diagnostics: rows(d.diagnostics, diagnostics),
                ..d
            }));
        self.data
            .entry_points
            .extend(shard.entry_points.into_iter().map(|ep| EntryPointRecord {
                group: span(ep.group),
                name: span(ep.name),
                value: span(ep.value),
            }));
        self.data
            .diagnostics
            .extend(shard.diagnostics.into_iter().map(span));
    }

    /// Puts the distributions in the given order: `order[i]` is the
    /// current position of the one that goes to position `i`. Only the
    /// records move; their strings and rows stay where they are.
    pub fn reorder(&mut self, order: &[usize]) {
        assert_eq!(order.len(), self.data.dists.len(), "not a permutation");
        let mut slots: Vec<Option<DistRecord>> = std::mem::take(&mut self.data.dists)
            .into_iter()
            .map(Some)
            .collect();
        self.data.dists = order
            .iter()
            .map(|&i| slots[i].take().expect("not a permutation"))
            .collect();
    }

    pub fn finish(self, path_entry: PathBuf) -> Index {
        Index {
            path_entry,
            data: self.data,
            complete: !(self.incomplete || self.overflowed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push_foo(b: &mut IndexBuilder) {
        b.push(
            Kind::DistInfo,
            "Foo_Bar-1.0.dist-info",
            "foo-bar",
            Some("foo-bar"),
            DistFacts {
                name: Some("Foo_Bar"),
                version: Some("1.0"),
                entry_points: vec![
                    ("console_scripts", "foo", "foo:main"),
                    ("console_scripts", "foo", "foo:other"),
                ],
                diagnostics: vec!["line 3 has no '='".into()],
                incomplete: false,
            },
        );
    }

    fn push_x(b: &mut IndexBuilder) {
        b.push(
            Kind::EggInfoFile,
            "x.egg-info",
            "x",
            Some("x"),
            DistFacts::default(),
        );
    }

    fn sample() -> Index {
        let mut b = IndexBuilder::default();
        push_foo(&mut b);
        push_x(&mut b);
        b.finish(PathBuf::from("/site"))
    }

    /// Everything the views show, for comparing indexes built differently.
    fn rendered(index: &Index) -> Vec<String> {
        let mut out: Vec<String> = index.diagnostics().map(str::to_owned).collect();
        for d in index.distributions() {
            out.push(format!(
                "{:?} {} {:?} {:?} {:?} {:?} {} {:?}",
                d.kind(),
                d.metadata_name(),
                d.name(),
                d.version(),
                d.normalized_name(),
                d.unique_key(),
                d.lookup_key(),
                d.diagnostics().collect::<Vec<_>>(),
            ));
            out.extend(
                d.entry_points()
                    .map(|e| format!("{} {} {}", e.group, e.name, e.value)),
            );
        }
        out
    }

    #[test]
    fn appended_shards_read_like_one_builder() {
        let mut whole = IndexBuilder::default();
        whole.entry_diagnostic("listing hiccup".into());
        push_x(&mut whole);
        push_foo(&mut whole);
        push_x(&mut whole);
        let whole = whole.finish(PathBuf::from("/site"));

        let mut first = IndexBuilder::default();
        first.entry_diagnostic("listing hiccup".into());
        push_x(&mut first);
        let mut second = IndexBuilder::default();
        push_foo(&mut second);
        push_x(&mut second);
        first.append(second);
        let merged = first.finish(PathBuf::from("/site"));

        assert!(merged.data.validate().is_ok());
        assert_eq!(rendered(&merged), rendered(&whole));
        assert_eq!(merged.diagnostic_count(), whole.diagnostic_count());
    }

    #[test]
    fn reordering_moves_whole_distributions() {
        let mut straight = IndexBuilder::default();
        push_foo(&mut straight);
        push_x(&mut straight);
        let straight = straight.finish(PathBuf::from("/site"));

        let mut reversed = IndexBuilder::default();
        push_x(&mut reversed);
        push_foo(&mut reversed);
        reversed.reorder(&[1, 0]);
        let reversed = reversed.finish(PathBuf::from("/site"));

        assert!(reversed.data.validate().is_ok());
        assert_eq!(rendered(&reversed), rendered(&straight));
    }

    #[test]
    fn views_read_back_what_was_pushed() {
        let index = sample();
        assert!(index.data.validate().is_ok());
        let dists: Vec<_> = index.distributions().collect();
        assert_eq!(dists.len(), 2);
        let foo = dists[0];
        assert_eq!(foo.name(), Some("Foo_Bar"));
        assert_eq!(foo.normalized_name(), Some("foo-bar"));
        assert_eq!(
            foo.metadata_path(),
            Path::new("/site/Foo_Bar-1.0.dist-info")
        );
        let eps: Vec<_> = foo
            .entry_points()
            .map(|e| (e.group, e.name, e.value))
            .collect();
        assert_eq!(
            eps,
            [
                ("console_scripts", "foo", "foo:main"),
                ("console_scripts", "foo", "foo:other")
            ]
        );
        assert_eq!(foo.diagnostics().collect::<Vec<_>>(), ["line 3 has no '='"]);
        assert_eq!(dists[1].name(), None);
        assert_eq!((dists[0].position(), dists[1].position()), (0, 1));
        assert!(std::ptr::eq(dists[1].index(), &index));
        assert!(!dists[1].has_metadata());
        assert_eq!(index.entry_point_count(), 2);
    }

    #[test]
    fn borrowed_decoding_reads_the_same_bytes() {
        let mut b = IndexBuilder::default();
        push_foo(&mut b);
        b.push(
            Kind::DistInfo,
            &"ü".repeat(3000),
            "ü",
            None,
            DistFacts::default(),
        );
        let data = b.finish(PathBuf::new()).data;
        let bytes = wincode::serialize(&data).unwrap();
        let decoded: IndexData = wincode::deserialize_exact::<IndexDataRef>(&bytes)
            .unwrap()
            .into();
        assert_eq!(decoded, data);
        assert_eq!(copy_arena(&data.strings), data.strings);
    }

    #[test]
    fn validate_rejects_out_of_range_offsets() {
        let mut data = sample().data;
        data.dists[0].name = Some(Span {
            start: 9999,
            len: 1,
        });
        assert!(data.validate().is_err());
        let mut data = sample().data;
        data.dists[1].entry_points = Rows { start: 0, end: 99 };
        assert!(data.validate().is_err());
        let mut data = sample().data;
        data.entry_diagnostics = Rows { start: 1, end: 0 };
        assert!(data.validate().is_err());
    }

    #[test]
    fn validate_rejects_spans_inside_a_character() {
        let mut b = IndexBuilder::default();
        b.push(
            Kind::DistInfo,
            "é.dist-info",
            "é",
            None,
            DistFacts::default(),
        );
        let mut data = b.finish(PathBuf::new()).data;
        data.dists[0].child = Span { start: 0, len: 1 };
        assert!(data.validate().is_err());
    }
}

//! What an index holds: distribution and entry point records, the string
//! arena they point into, and how a record is read wherever it lies (in a
//! scan's table, or in place in a part of a cache file).

use std::fmt;

use crate::index::format::{record, RawPart};

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
pub(crate) static EMPTY_DATA: IndexData = IndexData {
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

    pub(super) fn unique_key(&self, i: u32) -> &str {
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

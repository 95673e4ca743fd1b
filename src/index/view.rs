//! The borrowed views callers read an index through: [`Distribution`],
//! [`EntryPoint`], and the iterators that yield them.

use std::fmt;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashSet;

use super::schema::{Part, Rec, Span};
use super::Index;
use crate::index::Kind;

/// The iterator of [`Index::distributions`].
#[derive(Clone)]
pub(super) struct Distributions<'a> {
    pub(super) index: &'a Index,
    pub(super) parts: Vec<Part<'a>>,
    pub(super) part: usize,
    pub(super) at: usize,
    pub(super) remaining: usize,
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
    pub(super) index: &'a Index,
    pub(super) part: Part<'a>,
    /// A group's part of a cache file, which holds only the group's
    /// distributions and entry points and says which are shadowed; else a
    /// whole scanned index, which is searched.
    pub(super) from_file: bool,
    pub(super) at: usize,
    /// For a scanned index: the unique keys of the distributions so far.
    pub(super) seen: FxHashSet<&'a str>,
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
    pub(super) index: &'a Index,
    /// Where `record`'s strings and rows are.
    pub(super) part: Part<'a>,
    pub(super) record: Rec<'a>,
    /// Whether `record`'s rows are all of the distribution's entry points
    /// and diagnostics; in a group's part they are that group's only.
    pub(super) full: bool,
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
    pub(super) fn same_as(&self, other: &Distribution<'_>) -> bool {
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

//! Building an [`Index`] from what a scan found.

use std::path::PathBuf;

use rustc_hash::FxHashMap;

use super::schema::{DistRecord, EntryPointRecord, IndexData, Kind, Rows, Span};
use super::Index;

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
            crate::index::name::normalize_name_into(n, &mut normalized);
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
            // Numbered in `finish`, once the order is final.
            number: 0,
            kind,
            shadowed: false,
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

    /// The data, numbered in its final order, and whether it is complete.
    pub(crate) fn finish_data(mut self) -> (IndexData, bool) {
        for (number, dist) in self.data.dists.iter_mut().enumerate() {
            // At most one record per child of the path entry, and the
            // arena is below 4 GiB: the count fits.
            dist.number = number as u32;
        }
        (self.data, !(self.incomplete || self.overflowed))
    }

    pub fn finish(self, path_entry: PathBuf) -> Index {
        let (data, complete) = self.finish_data();
        Index::owned(path_entry, data, complete)
    }
}

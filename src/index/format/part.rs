//! Parts: distribution records with their entry points and diagnostics,
//! and the strings they use — a page of distributions, one group's
//! distributions and entry points, or the path entry's own diagnostics.
//!
//! A part is one block: its string arena, then fixed-width tables, then a
//! trailer of counts. Every number in the tables and the trailer is
//! written in four bytes of seven bits each (little-endian, the high bit
//! of every byte clear), so the tables are ASCII and the *whole block* is
//! valid UTF-8. A reader reads it with one positioned read into one buffer,
//! checks its checksum, makes that buffer a `String` (which checks the
//! UTF-8 once), checks every record's offsets, and from then on reads
//! records and borrows strings from that one buffer: nothing is decoded
//! into new memory, which in a fresh process costs page faults per 4 KiB.
//! The price is a limit of 2^28 bytes (256 MiB) per part; an index with a
//! larger one is not cached.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::index::schema::{DistRecord, EntryPointRecord, IndexData, Kind, Rows, Span};

/// Bytes of one distribution record.
pub(crate) const DIST_LEN: usize = 70;
/// Bytes of one entry point record.
const EP_LEN: usize = 24;
/// Bytes of one diagnostic (a span).
const DIAG_LEN: usize = 8;
/// Bytes of a part's trailer: arena length and the three counts.
const TRAILER: usize = 16;
/// One more than the largest number a table holds.
const LIMIT: u64 = 1 << 28;

const HAS_NAME: u8 = 1;
const HAS_VERSION: u8 = 2;
const HAS_NORMALIZED: u8 = 4;
const HAS_UNIQUE: u8 = 8;
const SHADOWED: u8 = 16;

/// Which part a block is, and so what its records must look like.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PartKind {
    /// The path entry's own diagnostics: no distributions.
    Entry,
    /// Distributions `first..first + count`, with all their rows.
    Page { first: u32, count: u32 },
    /// One group's distributions (numbers ascending, below `dists`), each
    /// with that group's entry points only and no diagnostics.
    Group { dists: u32 },
}

/// Appends `v` as four bytes of seven bits.
fn put28(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&[
        (v & 0x7f) as u8,
        ((v >> 7) & 0x7f) as u8,
        ((v >> 14) & 0x7f) as u8,
        ((v >> 21) & 0x7f) as u8,
    ]);
}

fn put_span(out: &mut Vec<u8>, s: Span) {
    put28(out, s.start);
    put28(out, s.len);
}

fn put_rows(out: &mut Vec<u8>, r: Rows) {
    put28(out, r.start);
    put28(out, r.end);
}

/// The number at `at` of a fixed-width record (the bounds are known when
/// the function is compiled, so checked then).
#[inline(always)]
fn u28<const N: usize>(r: &[u8; N], at: usize) -> u32 {
    // One load, then each byte's seven bits moved into place.
    let x = u32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]);
    (x & 0x7f) | (x >> 1 & 0x3f80) | (x >> 2 & 0x1f_c000) | (x >> 3 & 0xfe0_0000)
}

#[inline(always)]
fn span_at<const N: usize>(r: &[u8; N], at: usize) -> Span {
    Span {
        start: u28(r, at),
        len: u28(r, at + 4),
    }
}

#[inline(always)]
fn rows_at<const N: usize>(r: &[u8; N], at: usize) -> Rows {
    Rows {
        start: u28(r, at),
        end: u28(r, at + 4),
    }
}

/// An index too large for one part; the cache file is not written.
#[derive(Debug)]
pub(crate) struct PartTooLarge;

/// Writes one part, copying strings from an index's arena.
pub(crate) struct PartWriter<'s> {
    src: &'s IndexData,
    arena: String,
    /// Group names, interned by content: every entry point of a group's
    /// part, and most of a page's, name one of a few.
    groups: FxHashMap<&'s str, Span>,
    dists: Vec<u8>,
    eps: Vec<u8>,
    diags: Vec<u8>,
    counts: [u32; 3],
    largest_number: u32,
}

impl<'s> PartWriter<'s> {
    pub(crate) fn new(src: &'s IndexData) -> Self {
        PartWriter {
            src,
            arena: String::new(),
            groups: FxHashMap::default(),
            dists: Vec::new(),
            eps: Vec::new(),
            diags: Vec::new(),
            counts: [0; 3],
            largest_number: 0,
        }
    }

    fn copy(&mut self, span: Span) -> Span {
        let text = self.src.str(span);
        // Checked against LIMIT in `finish`, so truncation never reaches
        // a file.
        let start = self.arena.len() as u32;
        self.arena.push_str(text);
        Span {
            start,
            len: span.len,
        }
    }

    /// The copy of `span`, unless it is one of the `known` spans (source,
    /// copy) already copied.
    fn copy_unless(&mut self, span: Span, known: &[(Span, Span)]) -> Span {
        match known.iter().find(|(from, _)| *from == span) {
            Some(&(_, to)) => to,
            None => self.copy(span),
        }
    }

    fn group(&mut self, span: Span) -> Span {
        let text = self.src.str(span);
        if let Some(&known) = self.groups.get(text) {
            return known;
        }
        let copied = self.copy(span);
        self.groups.insert(text, copied);
        copied
    }

    fn entry_point(&mut self, ep: &EntryPointRecord) {
        let group = self.group(ep.group);
        let name = self.copy(ep.name);
        let value = self.copy(ep.value);
        put_span(&mut self.eps, group);
        put_span(&mut self.eps, name);
        put_span(&mut self.eps, value);
        self.counts[1] += 1;
    }

    fn diagnostic(&mut self, span: Span) {
        let copied = self.copy(span);
        put_span(&mut self.diags, copied);
        self.counts[2] += 1;
    }

    /// Appends a diagnostic about the path entry itself.
    pub(crate) fn entry_diagnostic(&mut self, span: Span) {
        self.diagnostic(span);
    }

    /// Appends distribution `number` with the entry points numbered `eps`
    /// (of the source) and, when `with_diagnostics`, its diagnostics.
    pub(crate) fn dist(
        &mut self,
        number: u32,
        d: &DistRecord,
        eps: impl Iterator<Item = usize>,
        with_diagnostics: bool,
        shadowed: bool,
    ) {
        let child = self.copy(d.child);
        let name = d.name.map(|s| self.copy(s));
        let version = d.version.map(|s| self.copy(s));
        // The three keys are usually one string, stored once in the
        // scanned arena; they stay one here.
        let lookup = self.copy(d.lookup_key);
        let normalized = d
            .normalized_name
            .map(|s| self.copy_unless(s, &[(d.lookup_key, lookup)]));
        let mut known = vec![(d.lookup_key, lookup)];
        if let (Some(from), Some(to)) = (d.normalized_name, normalized) {
            known.push((from, to));
        }
        let unique = d.unique_key.map(|s| self.copy_unless(s, &known));
        let first_ep = self.counts[1];
        for e in eps {
            let ep = &self.src.entry_points[e];
            self.entry_point(ep);
        }
        let first_diag = self.counts[2];
        if with_diagnostics {
            for i in d.diagnostics.range() {
                let span = self.src.diagnostics[i];
                self.diagnostic(span);
            }
        }
        let flags = [
            (name.is_some(), HAS_NAME),
            (version.is_some(), HAS_VERSION),
            (normalized.is_some(), HAS_NORMALIZED),
            (unique.is_some(), HAS_UNIQUE),
            (shadowed, SHADOWED),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .fold(0, |acc, (_, bit)| acc | bit);
        let out = &mut self.dists;
        put28(out, number);
        out.push(d.kind.code());
        out.push(flags);
        put_span(out, child);
        for span in [name, version, normalized, unique] {
            put_span(out, span.unwrap_or_default());
        }
        put_span(out, lookup);
        let eps = Rows {
            start: first_ep,
            end: self.counts[1],
        };
        put_rows(out, eps);
        let diags = Rows {
            start: first_diag,
            end: self.counts[2],
        };
        put_rows(out, diags);
        self.counts[0] += 1;
        self.largest_number = self.largest_number.max(number);
    }

    /// Appends the finished block to `out`, unless a number would not fit
    /// its table.
    pub(crate) fn finish(self, out: &mut Vec<u8>) -> Result<(), PartTooLarge> {
        let len = self.arena.len() + self.dists.len() + self.eps.len() + self.diags.len() + TRAILER;
        if len as u64 >= LIMIT || u64::from(self.largest_number) >= LIMIT {
            return Err(PartTooLarge);
        }
        out.extend_from_slice(self.arena.as_bytes());
        out.extend_from_slice(&self.dists);
        out.extend_from_slice(&self.eps);
        out.extend_from_slice(&self.diags);
        put28(out, self.arena.len() as u32);
        for count in self.counts {
            put28(out, count);
        }
        Ok(())
    }
}

/// One part as it was read from a cache file: its block, checked when it
/// was read, in a text buffer it may share with the other parts read at
/// the same time (blocks whose tables are ASCII concatenate into valid
/// UTF-8); records are read from it as they are asked for.
#[derive(Debug)]
pub(crate) struct RawPart {
    text: Arc<String>,
    /// Where the block starts in `text`.
    base: usize,
    arena_len: usize,
    dists: usize,
    eps: usize,
    diags: usize,
    /// The path entry's own diagnostics (all of them), for the entry part.
    entry_diagnostics: Rows,
}

/// Reading one distribution record of a part in place. Every record was
/// checked (by `RawPart::validate`) when its part was read.
pub(crate) mod record {
    use super::{rows_at, span_at, u28, DIST_LEN, HAS_NAME, HAS_NORMALIZED, HAS_UNIQUE};
    use super::{HAS_VERSION, SHADOWED};
    use crate::index::schema::{Kind, Rows, Span};

    /// One record, in place.
    pub(crate) type Raw = [u8; DIST_LEN];

    fn optional(r: &Raw, bit: u8, at: usize) -> Option<Span> {
        (r[5] & bit != 0).then(|| span_at(r, at))
    }

    pub(crate) fn number(r: &Raw) -> u32 {
        u28(r, 0)
    }

    pub(crate) fn kind(r: &Raw) -> Kind {
        Kind::from_code(r[4]).unwrap_or(Kind::DistInfo)
    }

    pub(crate) fn shadowed(r: &Raw) -> bool {
        r[5] & SHADOWED != 0
    }

    pub(crate) fn child(r: &Raw) -> Span {
        span_at(r, 6)
    }

    pub(crate) fn name(r: &Raw) -> Option<Span> {
        optional(r, HAS_NAME, 14)
    }

    pub(crate) fn version(r: &Raw) -> Option<Span> {
        optional(r, HAS_VERSION, 22)
    }

    pub(crate) fn normalized_name(r: &Raw) -> Option<Span> {
        optional(r, HAS_NORMALIZED, 30)
    }

    pub(crate) fn unique_key(r: &Raw) -> Option<Span> {
        optional(r, HAS_UNIQUE, 38)
    }

    pub(crate) fn lookup_key(r: &Raw) -> Span {
        span_at(r, 46)
    }

    pub(crate) fn entry_points(r: &Raw) -> Rows {
        rows_at(r, 54)
    }

    pub(crate) fn diagnostics(r: &Raw) -> Rows {
        rows_at(r, 62)
    }
}

impl RawPart {
    /// Checks one block read from a file and keeps it; `bytes` becomes its
    /// text without a copy.
    pub(crate) fn decode(bytes: Vec<u8>, kind: PartKind) -> Result<RawPart, String> {
        let len = bytes.len();
        RawPart::counts(&bytes)?;
        let text = String::from_utf8(bytes).map_err(|_| "its text is not UTF-8".to_owned())?;
        RawPart::decode_in(&Arc::new(text), 0, len, kind)
    }

    /// Checks the block at `base..base + len` of `text` (several blocks
    /// read at once) and keeps it, sharing `text`.
    pub(crate) fn decode_in(
        text: &Arc<String>,
        base: usize,
        len: usize,
        kind: PartKind,
    ) -> Result<RawPart, String> {
        let block = text
            .as_bytes()
            .get(base..base + len)
            .ok_or("outside its buffer")?;
        let [arena_len, n, m, d] = RawPart::counts(block)?;
        if !text.is_char_boundary(base) || !text.is_char_boundary(base + arena_len) {
            return Err("its text is not UTF-8".into());
        }
        let part = RawPart {
            entry_diagnostics: match kind {
                PartKind::Entry => Rows {
                    start: 0,
                    end: d as u32,
                },
                _ => Rows::default(),
            },
            text: Arc::clone(text),
            base,
            arena_len,
            dists: n,
            eps: m,
            diags: d,
        };
        part.validate(kind)?;
        Ok(part)
    }

    /// A block's arena length and counts, checked against its length.
    fn counts(block: &[u8]) -> Result<[usize; 4], String> {
        let trailer: &[u8; TRAILER] = block
            .last_chunk()
            .ok_or_else(|| "shorter than its trailer".to_owned())?;
        let [arena_len, n, m, d] = [0, 4, 8, 12].map(|at| u28(trailer, at) as usize);
        let expected = arena_len as u64
            + n as u64 * DIST_LEN as u64
            + m as u64 * EP_LEN as u64
            + d as u64 * DIAG_LEN as u64
            + TRAILER as u64;
        if expected != block.len() as u64 {
            return Err("its counts do not add up to its length".into());
        }
        // The tables are ASCII as written; that is not checked here, as a
        // byte with its high bit set only loses that bit (every number
        // read is below 2^28 and then checked against the arena), and
        // the checksum has already vouched for every byte.
        Ok([arena_len, n, m, d])
    }

    /// Checks every record, so that no accessor can panic or read outside
    /// the arena.
    fn validate(&self, kind: PartKind) -> Result<(), String> {
        let arena = &self.text[self.base..self.base + self.arena_len];
        // In an ASCII arena (nearly every real one) every offset is a
        // character boundary, and checking a span is one comparison.
        let ascii = arena.is_ascii();
        let limit = self.arena_len as u32;
        // The end of the span at `at`; every number is below 2^28, so the
        // sum cannot overflow. Absent strings are empty spans at 0.
        fn end<const N: usize>(r: &[u8; N], at: usize) -> u32 {
            u28(r, at) + u28(r, at + 4)
        }
        let boundaries = |r: &[u8], at: usize| {
            let field = |at: usize| match r.get(at..at + 4) {
                Some(&[a, b, c, d]) => u28(&[a, b, c, d], 0) as usize,
                _ => usize::MAX,
            };
            let (start, len) = (field(at), field(at + 4));
            arena.is_char_boundary(start) && arena.is_char_boundary(start.saturating_add(len))
        };
        const DIST_SPANS: [usize; 6] = [6, 14, 22, 30, 38, 46];
        let (eps, diags) = (self.eps as u32, self.diags as u32);
        let mut previous: Option<u32> = None;
        for (i, r) in self.dist_table().iter().enumerate() {
            if Kind::from_code(r[4]).is_none()
                || r[5] & !(HAS_NAME | HAS_VERSION | HAS_NORMALIZED | HAS_UNIQUE | SHADOWED) != 0
            {
                return Err(format!("distribution {i} is of an unknown kind"));
            }
            let furthest = end(r, 6)
                .max(end(r, 14))
                .max(end(r, 22))
                .max(end(r, 30))
                .max(end(r, 38))
                .max(end(r, 46));
            if furthest > limit || !(ascii || DIST_SPANS.iter().all(|&at| boundaries(r, at))) {
                return Err(format!("distribution {i} has a string out of range"));
            }
            let (ep_rows, diag_rows) = (rows_at(r, 54), rows_at(r, 62));
            if ep_rows.start > ep_rows.end
                || ep_rows.end > eps
                || diag_rows.start > diag_rows.end
                || diag_rows.end > diags
            {
                return Err(format!("distribution {i} has rows out of range"));
            }
            let number = u28(r, 0);
            let numbered = match kind {
                PartKind::Entry => false,
                PartKind::Page { first, .. } => u64::from(number) == u64::from(first) + i as u64,
                PartKind::Group { dists } => number < dists && previous.is_none_or(|p| p < number),
            };
            if !numbered {
                return Err(format!("distribution {i} is out of place"));
            }
            previous = Some(number);
        }
        match kind {
            PartKind::Page { count, .. } if self.dists != count as usize => {
                return Err("a page holds another number of distributions".into())
            }
            PartKind::Group { .. } if self.diags != 0 => {
                return Err("a group's part holds diagnostics".into())
            }
            _ => {}
        }
        let eps_ok = self.ep_table().iter().all(|r| {
            end(r, 0).max(end(r, 8)).max(end(r, 16)) <= limit
                && (ascii || [0, 8, 16].iter().all(|&at| boundaries(r, at)))
        });
        if !eps_ok {
            return Err("an entry point has a string out of range".into());
        }
        let diags_ok = self
            .diag_table()
            .iter()
            .all(|r| end(r, 0) <= limit && (ascii || boundaries(r, 0)));
        if !diags_ok {
            return Err("a diagnostic is out of range".into());
        }
        Ok(())
    }

    fn dist_table(&self) -> &[[u8; DIST_LEN]] {
        let at = self.base + self.arena_len;
        self.text.as_bytes()[at..at + self.dists * DIST_LEN]
            .as_chunks()
            .0
    }

    fn ep_table(&self) -> &[[u8; EP_LEN]] {
        let at = self.base + self.arena_len + self.dists * DIST_LEN;
        self.text.as_bytes()[at..at + self.eps * EP_LEN]
            .as_chunks()
            .0
    }

    fn diag_table(&self) -> &[[u8; DIAG_LEN]] {
        let at = self.base + self.arena_len + self.dists * DIST_LEN + self.eps * EP_LEN;
        self.text.as_bytes()[at..at + self.diags * DIAG_LEN]
            .as_chunks()
            .0
    }

    /// The string `span` names (checked when the part was read).
    pub(crate) fn str(&self, span: Span) -> &str {
        let start = self.base + span.start as usize;
        &self.text[start..start + span.len as usize]
    }

    pub(crate) fn dist_count(&self) -> usize {
        self.dists
    }

    /// Distribution record `i` of this part, in place.
    pub(crate) fn dist(&self, i: usize) -> &record::Raw {
        &self.dist_table()[i]
    }

    /// Entry point record `j` of this part.
    pub(crate) fn ep(&self, j: usize) -> EntryPointRecord {
        let r = &self.ep_table()[j];
        EntryPointRecord {
            group: span_at(r, 0),
            name: span_at(r, 8),
            value: span_at(r, 16),
        }
    }

    /// Diagnostic `k` of this part.
    pub(crate) fn diag(&self, k: usize) -> Span {
        span_at(&self.diag_table()[k], 0)
    }

    pub(crate) fn entry_diagnostics(&self) -> Rows {
        self.entry_diagnostics
    }

    /// The position of the record of distribution `number`, in a part
    /// whose numbers ascend.
    pub(crate) fn find(&self, number: u32) -> Option<usize> {
        self.dist_table()
            .binary_search_by_key(&number, |r| u28(r, 0))
            .ok()
    }
}

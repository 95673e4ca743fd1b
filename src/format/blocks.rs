//! The blocks a cache file is made of, each read, checked and decoded on
//! its own: parts (distribution records with their entry points and
//! diagnostics), buckets of keys, the group directory and arrays of
//! references. See `docs/format.md` for the byte layouts.
//!
//! Every block that holds text starts with it: its string arena comes
//! first, then fixed-width little-endian records, then a fixed trailer of
//! counts. A block is read into a buffer of its own, so once the records
//! are decoded the buffer is cut to the arena and becomes the `String`
//! the views borrow from, without a copy.

use rustc_hash::FxHashMap;

use crate::index::{DistRecord, EntryPointRecord, IndexData, Kind, Rows, Span};

/// Where a section or block lies in the file, and the xxh3-64 of its bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ref {
    pub offset: u32,
    pub len: u32,
    pub checksum: u64,
}

pub(crate) const REF_LEN: usize = 16;

impl Ref {
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.checksum.to_le_bytes());
    }

    fn read(f: &mut Fields<'_>) -> Result<Ref, String> {
        Ok(Ref {
            offset: f.u32()?,
            len: f.u32()?,
            checksum: f.u64()?,
        })
    }

    /// One past the last byte.
    pub(crate) fn end(&self) -> u64 {
        u64::from(self.offset) + u64::from(self.len)
    }

    /// Whether the block lies inside `start..end` of the file.
    pub(crate) fn within(&self, start: u64, end: u64) -> bool {
        u64::from(self.offset) >= start && self.end() <= end
    }
}

/// The checksum of every section and block.
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The hash that places a key in a bucket.
pub(crate) fn key_hash(key: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key.as_bytes())
}

/// A little-endian field reader over a byte slice.
pub(crate) struct Fields<'a> {
    pub bytes: &'a [u8],
    pub at: usize,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Fields { bytes, at: 0 }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).ok_or("length overflow")?;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| "truncated".to_owned())?;
        self.at = end;
        Ok(slice)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        self.array().map(u64::from_le_bytes)
    }

    pub(crate) fn i64(&mut self) -> Result<i64, String> {
        self.array().map(i64::from_le_bytes)
    }

    fn span(&mut self) -> Result<Span, String> {
        Ok(Span {
            start: self.u32()?,
            len: self.u32()?,
        })
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_span(out: &mut Vec<u8>, s: Span) {
    put_u32(out, s.start);
    put_u32(out, s.len);
}

fn put_rows(out: &mut Vec<u8>, r: Rows) {
    put_u32(out, r.start);
    put_u32(out, r.end);
}

/// A count or offset that must fit the file's 32-bit fields; the file is
/// at most 2 GiB, so anything larger is refused before it is written.
fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Splits a block into its arena and the bytes after it, given the
/// trailer's length and the arena length it holds, and checks that the
/// tables in between have exactly the size the counts say.
fn split_block(bytes: &[u8], trailer: usize, tables: u64) -> Result<(usize, &[u8]), String> {
    let body_len = bytes
        .len()
        .checked_sub(trailer)
        .ok_or("shorter than its trailer")?;
    let arena_len = u32::from_le_bytes(
        bytes[body_len..body_len + 4]
            .try_into()
            .map_err(|_| "no trailer")?,
    ) as usize;
    if arena_len as u64 + tables != body_len as u64 {
        return Err("its counts do not add up to its length".into());
    }
    Ok((arena_len, &bytes[arena_len..body_len]))
}

/// Turns a block's buffer into its arena, cut at `arena_len`, without
/// copying it.
fn into_arena(mut bytes: Vec<u8>, arena_len: usize) -> Result<String, String> {
    bytes.truncate(arena_len);
    String::from_utf8(bytes).map_err(|_| "its text is not UTF-8".to_owned())
}

// ----------------------------------------------------------------- parts

/// Bytes of one distribution record.
pub(crate) const DIST_LEN: usize = 72;
/// Bytes of one entry point record.
const EP_LEN: usize = 24;
/// Bytes of one diagnostic (a span).
const DIAG_LEN: usize = 8;
/// Bytes of a part's trailer: arena length and the three counts.
const PART_TRAILER: usize = 16;

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
        }
    }

    fn copy(&mut self, span: Span) -> Span {
        let text = self.src.str(span);
        let start = u32_of(self.arena.len());
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
        put_u32(out, number);
        out.push(d.kind.code());
        out.push(flags);
        out.extend_from_slice(&[0, 0]);
        put_span(out, child);
        for span in [name, version, normalized, unique] {
            put_span(out, span.unwrap_or_default());
        }
        put_span(out, lookup);
        put_rows(
            out,
            Rows {
                start: first_ep,
                end: self.counts[1],
            },
        );
        put_rows(
            out,
            Rows {
                start: first_diag,
                end: self.counts[2],
            },
        );
        self.counts[0] += 1;
    }

    /// Appends the finished block to `out`.
    pub(crate) fn finish(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.arena.as_bytes());
        out.extend_from_slice(&self.dists);
        out.extend_from_slice(&self.eps);
        out.extend_from_slice(&self.diags);
        put_u32(out, u32_of(self.arena.len()));
        for count in self.counts {
            put_u32(out, count);
        }
    }
}

/// A little-endian `u32` at a fixed place of a fixed-width record (the
/// bounds are known when the function is compiled, so checked then).
#[inline(always)]
fn le32<const N: usize>(record: &[u8; N], at: usize) -> u32 {
    u32::from_le_bytes([record[at], record[at + 1], record[at + 2], record[at + 3]])
}

#[inline(always)]
fn span_at<const N: usize>(record: &[u8; N], at: usize) -> Span {
    Span {
        start: le32(record, at),
        len: le32(record, at + 4),
    }
}

fn read_dist(r: &[u8; DIST_LEN]) -> Result<DistRecord, &'static str> {
    let kind = Kind::from_code(r[4]).ok_or("a distribution of unknown kind")?;
    let flags = r[5];
    if flags & !(HAS_NAME | HAS_VERSION | HAS_NORMALIZED | HAS_UNIQUE | SHADOWED) != 0
        || r[6] != 0
        || r[7] != 0
    {
        return Err("a distribution with unknown flags");
    }
    let optional = |bit: u8, at: usize| (flags & bit != 0).then(|| span_at(r, at));
    Ok(DistRecord {
        number: le32(r, 0),
        kind,
        shadowed: flags & SHADOWED != 0,
        child: span_at(r, 8),
        name: optional(HAS_NAME, 16),
        version: optional(HAS_VERSION, 24),
        normalized_name: optional(HAS_NORMALIZED, 32),
        unique_key: optional(HAS_UNIQUE, 40),
        lookup_key: span_at(r, 48),
        entry_points: Rows {
            start: le32(r, 56),
            end: le32(r, 60),
        },
        diagnostics: Rows {
            start: le32(r, 64),
            end: le32(r, 68),
        },
    })
}

/// Decodes and validates one part; `bytes` becomes its arena.
pub(crate) fn decode_part(bytes: Vec<u8>, kind: PartKind) -> Result<IndexData, String> {
    let trailer_at = bytes
        .len()
        .checked_sub(PART_TRAILER)
        .ok_or("shorter than its trailer")?;
    let mut t = Fields::new(&bytes[trailer_at..]);
    let (_, n, m, d) = (t.u32()?, t.u32()?, t.u32()?, t.u32()?);
    let tables = n as u64 * DIST_LEN as u64 + m as u64 * EP_LEN as u64 + d as u64 * DIAG_LEN as u64;
    let (arena_len, tables) = split_block(&bytes, PART_TRAILER, tables)?;
    // The lengths add up (checked just now), so the splits fall inside.
    let (dist_bytes, rest) = tables.split_at(n as usize * DIST_LEN);
    let (ep_bytes, diag_bytes) = rest.split_at(m as usize * EP_LEN);
    let dists = dist_bytes
        .as_chunks::<DIST_LEN>()
        .0
        .iter()
        .map(read_dist)
        .collect::<Result<Vec<_>, _>>()?;
    let entry_points: Vec<_> = ep_bytes
        .as_chunks::<EP_LEN>()
        .0
        .iter()
        .map(|r| EntryPointRecord {
            group: span_at(r, 0),
            name: span_at(r, 8),
            value: span_at(r, 16),
        })
        .collect();
    let diagnostics: Vec<_> = diag_bytes
        .as_chunks::<DIAG_LEN>()
        .0
        .iter()
        .map(|r| span_at(r, 0))
        .collect();
    let entry_diagnostics = match kind {
        PartKind::Entry => {
            if n != 0 {
                return Err("the path entry's part holds distributions".into());
            }
            Rows { start: 0, end: d }
        }
        PartKind::Page { first, count } => {
            let numbered = n == count
                && dists
                    .iter()
                    .enumerate()
                    .all(|(i, r)| u64::from(r.number) == u64::from(first) + i as u64);
            if !numbered {
                return Err("a page holds other distributions than its own".into());
            }
            Rows::default()
        }
        PartKind::Group { dists: total } => {
            let ascending = dists.windows(2).all(|w| w[0].number < w[1].number);
            if d != 0 || !ascending || dists.last().is_some_and(|r| r.number >= total) {
                return Err("a group's part is out of order".into());
            }
            Rows::default()
        }
    };
    let data = IndexData {
        strings: into_arena(bytes, arena_len)?,
        dists,
        entry_points,
        diagnostics,
        entry_diagnostics,
    };
    data.validate()?;
    Ok(data)
}

// --------------------------------------------------------------- buckets

/// The key is the distribution's lookup key (`distribution(name)`).
pub(crate) const KEY_LOOKUP: u32 = 1;
/// The key is the distribution's unique key (`entry_points()`).
pub(crate) const KEY_UNIQUE: u32 = 2;
/// The distribution is an `.egg` (looked up by its legacy name).
pub(crate) const KEY_EGG: u32 = 4;

const KEY_REC_LEN: usize = 16;
const SMALL_TRAILER: usize = 8;

/// One key of a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyRecord {
    pub key: Span,
    pub number: u32,
    pub flags: u32,
}

/// The keys whose hash falls in one bucket, in distribution order.
#[derive(Debug)]
pub(crate) struct Bucket {
    pub arena: String,
    pub keys: Vec<KeyRecord>,
}

impl Bucket {
    /// The distributions whose key is `key` with every bit of `flags` set
    /// and none of `without`, in order.
    pub(crate) fn find<'a>(
        &'a self,
        key: &'a str,
        flags: u32,
        without: u32,
    ) -> impl Iterator<Item = u32> + 'a {
        self.keys
            .iter()
            .filter(move |k| {
                k.flags & flags == flags
                    && k.flags & without == 0
                    && &self.arena[k.key.start as usize..(k.key.start + k.key.len) as usize] == key
            })
            .map(|k| k.number)
    }
}

/// Writes one bucket.
#[derive(Default)]
pub(crate) struct BucketWriter<'s> {
    arena: String,
    interned: FxHashMap<&'s str, Span>,
    records: Vec<u8>,
    count: u32,
}

impl<'s> BucketWriter<'s> {
    pub(crate) fn key(&mut self, key: &'s str, number: u32, flags: u32) {
        let span = match self.interned.get(key) {
            Some(&span) => span,
            None => {
                let span = Span {
                    start: u32_of(self.arena.len()),
                    len: u32_of(key.len()),
                };
                self.arena.push_str(key);
                self.interned.insert(key, span);
                span
            }
        };
        put_span(&mut self.records, span);
        put_u32(&mut self.records, number);
        put_u32(&mut self.records, flags);
        self.count += 1;
    }

    pub(crate) fn finish(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.arena.as_bytes());
        out.extend_from_slice(&self.records);
        put_u32(out, u32_of(self.arena.len()));
        put_u32(out, self.count);
    }
}

/// Decodes and validates one bucket of a file with `dists` distributions.
pub(crate) fn decode_bucket(bytes: Vec<u8>, dists: u32) -> Result<Bucket, String> {
    let count = u64::from(u32::from_le_bytes(
        bytes
            .get(bytes.len().saturating_sub(4)..)
            .and_then(|b| b.try_into().ok())
            .ok_or("shorter than its trailer")?,
    ));
    let (arena_len, tables) = split_block(&bytes, SMALL_TRAILER, count * KEY_REC_LEN as u64)?;
    let mut f = Fields::new(tables);
    let mut keys = Vec::with_capacity(count as usize);
    for _ in 0..count {
        keys.push(KeyRecord {
            key: f.span()?,
            number: f.u32()?,
            flags: f.u32()?,
        });
    }
    let arena = into_arena(bytes, arena_len)?;
    let ascii = arena.is_ascii();
    let ordered = keys.windows(2).all(|w| w[0].number <= w[1].number);
    let valid = keys.iter().all(|k| {
        k.number < dists
            && k.flags & (KEY_LOOKUP | KEY_UNIQUE) != 0
            && k.flags & !(KEY_LOOKUP | KEY_UNIQUE | KEY_EGG) == 0
            && span_ok(&arena, k.key, ascii)
    });
    if !ordered || !valid {
        return Err("a bucket of keys is invalid".into());
    }
    Ok(Bucket { arena, keys })
}

fn span_ok(arena: &str, span: Span, ascii: bool) -> bool {
    let start = span.start as usize;
    let end = start + span.len as usize;
    end <= arena.len() && (ascii || (arena.is_char_boundary(start) && arena.is_char_boundary(end)))
}

// ------------------------------------------------------- group directory

const GROUP_REC_LEN: usize = 8 + REF_LEN;

/// Every group name with where its part is, sorted by name.
#[derive(Debug)]
pub(crate) struct GroupDir {
    pub arena: String,
    pub groups: Vec<(Span, Ref)>,
}

impl GroupDir {
    pub(crate) fn name(&self, i: usize) -> &str {
        let span = self.groups[i].0;
        &self.arena[span.start as usize..(span.start + span.len) as usize]
    }

    /// The position of `group`, by binary search.
    pub(crate) fn find(&self, group: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.groups.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.name(mid).cmp(group) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

/// Encodes the group directory: names in the order given, which must be
/// sorted.
pub(crate) fn encode_group_dir(groups: &[(&str, Ref)], out: &mut Vec<u8>) {
    let mut arena = String::new();
    let mut records = Vec::with_capacity(groups.len() * GROUP_REC_LEN);
    for (name, r) in groups {
        put_span(
            &mut records,
            Span {
                start: u32_of(arena.len()),
                len: u32_of(name.len()),
            },
        );
        arena.push_str(name);
        r.write(&mut records);
    }
    out.extend_from_slice(arena.as_bytes());
    out.extend_from_slice(&records);
    put_u32(out, u32_of(arena.len()));
    put_u32(out, u32_of(groups.len()));
}

/// The length [`encode_group_dir`] will write.
pub(crate) fn group_dir_len<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(|n| n.len() + GROUP_REC_LEN).sum::<usize>() + SMALL_TRAILER
}

/// Decodes and validates the group directory; every part must lie in
/// `body`.
pub(crate) fn decode_group_dir(bytes: Vec<u8>, body: (u64, u64)) -> Result<GroupDir, String> {
    let count = u64::from(u32::from_le_bytes(
        bytes
            .get(bytes.len().saturating_sub(4)..)
            .and_then(|b| b.try_into().ok())
            .ok_or("shorter than its trailer")?,
    ));
    let (arena_len, tables) = split_block(&bytes, SMALL_TRAILER, count * GROUP_REC_LEN as u64)?;
    let mut f = Fields::new(tables);
    let mut groups = Vec::with_capacity(count as usize);
    for _ in 0..count {
        groups.push((f.span()?, Ref::read(&mut f)?));
    }
    let arena = into_arena(bytes, arena_len)?;
    let ascii = arena.is_ascii();
    if !groups
        .iter()
        .all(|(span, r)| span_ok(&arena, *span, ascii) && r.within(body.0, body.1))
    {
        return Err("the group directory points out of range".into());
    }
    let dir = GroupDir { arena, groups };
    if !(1..dir.groups.len()).all(|i| dir.name(i - 1) < dir.name(i)) {
        return Err("the group directory is not sorted".into());
    }
    Ok(dir)
}

// ------------------------------------------------------------ ref arrays

/// Decodes an array of references, each of which must lie in `body`.
pub(crate) fn decode_refs(bytes: &[u8], body: (u64, u64)) -> Result<Box<[Ref]>, String> {
    if !bytes.len().is_multiple_of(REF_LEN) {
        return Err("a directory has a partial entry".into());
    }
    let mut f = Fields::new(bytes);
    let mut refs = Vec::with_capacity(bytes.len() / REF_LEN);
    for _ in 0..bytes.len() / REF_LEN {
        let r = Ref::read(&mut f)?;
        if !r.within(body.0, body.1) {
            return Err("a directory points out of range".into());
        }
        refs.push(r);
    }
    Ok(refs.into())
}

/// Decodes the list of distributions with diagnostics: ascending numbers
/// below `dists`.
pub(crate) fn decode_numbers(bytes: &[u8], dists: u32) -> Result<Box<[u32]>, String> {
    if !bytes.len().is_multiple_of(4) {
        return Err("a list of numbers has a partial entry".into());
    }
    let numbers: Box<[u32]> = bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let ascending = numbers.windows(2).all(|w| w[0] < w[1]);
    if !ascending || numbers.last().is_some_and(|&n| n >= dists) {
        return Err("the list of distributions with diagnostics is invalid".into());
    }
    Ok(numbers)
}

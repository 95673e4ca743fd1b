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

use crate::index::schema::Span;

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

/// A count or offset that must fit the file's 32-bit fields; the file is
/// at most 2 GiB, so anything larger is refused before it is written.
pub(crate) fn u32_of(n: usize) -> u32 {
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

/// A directory of references, kept as read: a reference is decoded (and
/// checked to lie in the body) when it is asked for, so that a query that
/// needs one of thousands pays for one.
#[derive(Debug)]
pub(crate) struct RefTable {
    bytes: Vec<u8>,
    body: (u64, u64),
}

impl RefTable {
    /// A directory whose checksum was checked; its length must be a whole
    /// number of references.
    pub(crate) fn new(bytes: Vec<u8>, body: (u64, u64)) -> Result<RefTable, String> {
        if !bytes.len().is_multiple_of(REF_LEN) {
            return Err("a directory has a partial entry".into());
        }
        Ok(RefTable { bytes, body })
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len() / REF_LEN
    }

    /// Reference `k`, which must lie in the body.
    pub(crate) fn get(&self, k: usize) -> Result<Ref, String> {
        let at = k.checked_mul(REF_LEN).ok_or("no such entry")?;
        let mut f = Fields::new(self.bytes.get(at..at + REF_LEN).ok_or("no such entry")?);
        let r = Ref::read(&mut f)?;
        if !r.within(self.body.0, self.body.1) {
            return Err("a directory points out of range".into());
        }
        Ok(r)
    }
}

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

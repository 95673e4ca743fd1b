//! The cache file format, version 3. See `docs/format.md` for the byte
//! layout.
//!
//! A file is a small *head* — fixed header fields, a table of contents and
//! the path entry — followed by sections and blocks that a query reaches
//! by offset: the path entry's own diagnostics, the list of distributions
//! with diagnostics, a directory of groups pointing at one part per group,
//! a directory of pages of distributions, and a directory of buckets of
//! keys. Every section and block carries the xxh3-64 of its bytes in the
//! reference that points at it, and the head carries its own checksum, so
//! a reader checks exactly what it reads, when it first reads it, at a
//! cost that does not grow with the file. The head also holds a checksum
//! of everything after it, which tools that read the whole file (`status`,
//! `prune`, `dump`) check.

mod blocks;
mod part;

use std::path::PathBuf;
use std::sync::Arc;

use rustc_hash::FxHashSet;

use crate::error::FormatError;
use crate::index::schema::{IndexData, Kind};
use crate::index::Key;

pub(crate) use blocks::{
    checksum, decode_bucket, decode_group_dir, decode_numbers, decode_refs, key_hash, Bucket,
    GroupDir, Ref, RefTable, KEY_EGG, KEY_LOOKUP, KEY_UNIQUE,
};
use blocks::{encode_group_dir, group_dir_len, BucketWriter, Fields, REF_LEN};
pub(crate) use part::{record, PartKind, RawPart};
use part::{PartTooLarge, PartWriter, DIST_LEN};

/// The largest cache file that is written or read. Real indexes are
/// kilobytes to a few megabytes; anything past this is not one epcache
/// wrote.
pub(crate) const MAX_FILE_LEN: u64 = 2 << 30;

/// The first eight bytes of every index file.
pub const MAGIC: [u8; 8] = *b"EPCACHE\0";

/// The format version. Bumped on any change to the layout, the encoding,
/// or the meaning of a field; it is also the name of the versioned cache
/// subdirectory (`v3`). Version 2 dropped the device number from the key,
/// so that machines sharing a home directory share index files; version 3
/// laid the file out in sections that a query reads on its own.
pub const FORMAT_VERSION: u32 = 3;

/// The index was published inside the settle window and must be verified
/// against its fingerprint before it is trusted.
pub(crate) const FLAG_PROVISIONAL: u32 = 1;

/// The fixed part of the head, before the table of contents.
const FIXED_LEN: usize = 104;
/// The head checksum is stored at `8..16` and covers the rest of the head.
const CHECKSUM_END: usize = 16;
/// One entry of the table of contents: kind, zero, reference.
const TOC_ENTRY_LEN: usize = 8 + REF_LEN;
/// More sections than any version-3 file has.
const MAX_SECTIONS: usize = 16;
/// Where the stored key starts in the head.
#[cfg(test)]
const KEY_AT: usize = 32;

/// Distributions per page. A name lookup reads one page, a listing all.
pub(crate) const PAGE_SIZE: u32 = 64;
/// The average number of keys per bucket the writer aims at, at most.
const KEYS_PER_BUCKET: usize = 64;

/// The sections a table of contents lists, in the order it lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Section {
    /// The path entry's own diagnostics (a part with no distributions).
    Entry = 1,
    /// The numbers of the distributions that have diagnostics.
    Diagnosed = 2,
    /// The group directory.
    Groups = 3,
    /// The page directory.
    Pages = 4,
    /// The bucket directory.
    Keys = 5,
    /// The provisional fingerprint.
    Fingerprint = 6,
}

impl Section {
    const ALL: [Section; 6] = [
        Section::Entry,
        Section::Diagnosed,
        Section::Groups,
        Section::Pages,
        Section::Keys,
        Section::Fingerprint,
    ];

    fn from_code(code: u32) -> Option<Section> {
        Section::ALL.into_iter().find(|s| *s as u32 == code)
    }

    /// The section's name in messages and in `dump`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Section::Entry => "entry diagnostics",
            Section::Diagnosed => "diagnosed list",
            Section::Groups => "group directory",
            Section::Pages => "page directory",
            Section::Keys => "key directory",
            Section::Fingerprint => "fingerprint",
        }
    }
}

/// The fixed part of a cache file, as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Header {
    /// The format version the file claims.
    pub version: u32,
    /// Flag bits (bit 0: provisional).
    pub flags: u32,
    /// When the file was written, nanoseconds since the Unix epoch.
    pub written_at_ns: i64,
    /// The path entry's key observed before the scan.
    pub key: Key,
}

impl Header {
    /// Whether the file was published inside the settle window.
    pub fn is_provisional(&self) -> bool {
        self.flags & FLAG_PROVISIONAL != 0
    }
}

/// The head of a cache file, parsed: what a consult checks, and where
/// everything else is.
#[derive(Clone, Debug)]
pub(crate) struct Head {
    pub header: Header,
    /// The length the file must have.
    pub file_len: u64,
    /// The xxh3-64 of every byte after the head.
    pub body_checksum: u64,
    pub dist_count: u32,
    pub entry_point_count: u32,
    pub diagnostic_count: u32,
    pub page_size: u32,
    /// Where the head ends and the body begins.
    pub head_len: usize,
    /// The path entry's bytes, at the end of the head.
    pub path: Vec<u8>,
    sections: [Option<Ref>; 6],
}

impl Head {
    /// Where `section` is; `None` only for an absent fingerprint.
    pub(crate) fn section(&self, section: Section) -> Option<Ref> {
        self.sections[section as usize - 1]
    }

    /// The body: where blocks may lie.
    pub(crate) fn body(&self) -> (u64, u64) {
        (self.head_len as u64, self.file_len)
    }

    pub(crate) fn page_count(&self) -> usize {
        (self.dist_count as usize).div_ceil(self.page_size as usize)
    }
}

/// An index too large for one cache file.
#[derive(Debug)]
pub(crate) struct TooLarge(String);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the index is too large to cache ({})", self.0)
    }
}

/// How long the head of a file is, from its fixed part; fails on anything
/// that is not a version-3 file.
pub(crate) fn head_len(bytes: &[u8]) -> Result<usize, FormatError> {
    if bytes.get(..8) != Some(&MAGIC[..]) {
        return Err(FormatError::BadMagic);
    }
    let version = bytes
        .get(16..20)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(FormatError::Truncated)?;
    if version != FORMAT_VERSION {
        return Err(FormatError::Version {
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    let fixed = bytes.get(..FIXED_LEN).ok_or(FormatError::Truncated)?;
    let field =
        |at: usize| u32::from_le_bytes([fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]]);
    let (path_len, sections) = (field(96) as usize, field(100) as usize);
    if sections > MAX_SECTIONS {
        return Err(FormatError::Invalid(format!("{sections} sections")));
    }
    Ok(FIXED_LEN + sections * TOC_ENTRY_LEN + path_len)
}

/// Parses the head at the start of `bytes`, and says whether its checksum
/// matches. The table of contents must be sound: every section known,
/// listed once, in order, inside the body, and each directory of the size
/// the counts say.
pub(crate) fn parse_head(bytes: &[u8]) -> Result<(Head, bool), FormatError> {
    let len = head_len(bytes)?;
    let bytes = bytes.get(..len).ok_or(FormatError::Truncated)?;
    let invalid = |why: &str| FormatError::Invalid(why.to_owned());
    let mut f = Fields::new(bytes);
    f.at = 8;
    let fields = |f: &mut Fields<'_>| -> Result<_, String> {
        let stored = f.u64()?;
        let version = f.u32()?;
        let flags = f.u32()?;
        let written_at_ns = f.i64()?;
        let key = Key {
            mtime_ns: f.i64()?,
            ctime_ns: f.i64()?,
            inode: f.u64()?,
            size: f.u64()?,
        };
        let header = Header {
            version,
            flags,
            written_at_ns,
            key,
        };
        let file_len = f.u64()?;
        let body_checksum = f.u64()?;
        let counts = [f.u32()?, f.u32()?, f.u32()?, f.u32()?];
        let (path_len, section_count) = (f.u32()?, f.u32()?);
        Ok((
            stored,
            header,
            file_len,
            body_checksum,
            counts,
            path_len,
            section_count,
        ))
    };
    let (stored, header, file_len, body_checksum, counts, path_len, section_count) =
        fields(&mut f).map_err(|_| FormatError::Truncated)?;
    let [dist_count, entry_point_count, diagnostic_count, page_size] = counts;
    if header.flags & !FLAG_PROVISIONAL != 0 {
        return Err(invalid("unknown flags"));
    }
    if file_len < len as u64 {
        return Err(invalid("the file ends inside its head"));
    }
    let mut sections = [None; 6];
    let mut last = 0;
    for _ in 0..section_count {
        let entry = |f: &mut Fields<'_>| -> Result<_, String> {
            let code = f.u32()?;
            let zero = f.u32()?;
            let r = Ref {
                offset: f.u32()?,
                len: f.u32()?,
                checksum: f.u64()?,
            };
            Ok((code, zero, r))
        };
        let (code, zero, r) = entry(&mut f).map_err(|_| FormatError::Truncated)?;
        let section = Section::from_code(code).ok_or_else(|| invalid("an unknown section"))?;
        if code <= last || zero != 0 {
            return Err(invalid("the table of contents is out of order"));
        }
        if !r.within(len as u64, file_len) {
            return Err(invalid("a section lies outside the file"));
        }
        last = code;
        sections[section as usize - 1] = Some(r);
    }
    let head = Head {
        path: f
            .take(path_len as usize)
            .map_err(|_| FormatError::Truncated)?
            .to_vec(),
        header,
        file_len,
        body_checksum,
        dist_count,
        entry_point_count,
        diagnostic_count,
        page_size,
        head_len: len,
        sections,
    };
    let required = Section::ALL
        .iter()
        .all(|&s| s == Section::Fingerprint || head.section(s).is_some());
    let fingerprint_ok =
        head.section(Section::Fingerprint).is_some() == head.header.is_provisional();
    if !required || !fingerprint_ok {
        return Err(invalid("a section is missing"));
    }
    if page_size == 0 {
        return Err(invalid("pages of no distributions"));
    }
    let dir_len = |s: Section| head.section(s).map_or(0, |r| r.len as u64);
    if dir_len(Section::Pages) != head.page_count() as u64 * REF_LEN as u64 {
        return Err(invalid("the page directory does not match the count"));
    }
    let buckets = dir_len(Section::Keys) / REF_LEN as u64;
    if !dir_len(Section::Keys).is_multiple_of(REF_LEN as u64) || !buckets.is_power_of_two() {
        return Err(invalid("the key directory is not a power of two"));
    }
    // Each distribution's record alone takes DIST_LEN bytes of its page.
    if u64::from(dist_count) * DIST_LEN as u64 > file_len {
        return Err(invalid("more distributions than the file can hold"));
    }
    let checksum_ok = checksum(&bytes[CHECKSUM_END..]) == stored;
    Ok((head, checksum_ok))
}

/// Checks a whole file, as `status`, `prune` and `dump` read it: the head,
/// its checksum, the length and the checksum of everything after the head.
pub(crate) fn check_whole(bytes: &[u8]) -> Result<Head, FormatError> {
    let (head, head_ok) = parse_head(bytes)?;
    if !head_ok {
        return Err(FormatError::Checksum);
    }
    match (bytes.len() as u64).cmp(&head.file_len) {
        std::cmp::Ordering::Less => return Err(FormatError::Truncated),
        std::cmp::Ordering::Greater => return Err(FormatError::TrailingBytes),
        std::cmp::Ordering::Equal => {}
    }
    if checksum(&bytes[head.head_len..]) != head.body_checksum {
        return Err(FormatError::Checksum);
    }
    Ok(head)
}

/// Appends what `write` writes to `out`, and says where it is.
fn append(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), PartTooLarge>,
) -> Result<Ref, TooLarge> {
    let start = out.len();
    write(out).map_err(|PartTooLarge| TooLarge("a part of 256 MiB or more".into()))?;
    if out.len() as u64 > MAX_FILE_LEN {
        return Err(TooLarge(format!("more than {} bytes", out.len())));
    }
    // Both fit: the file is at most 2 GiB.
    Ok(Ref {
        offset: start as u32,
        len: (out.len() - start) as u32,
        checksum: checksum(&out[start..]),
    })
}

/// Encodes a complete cache file, or says why it cannot be one. The
/// fingerprint is written when, and only when, the header says the file
/// is provisional.
pub(crate) fn encode(
    header: &Header,
    path: &[u8],
    fingerprint: &[u8],
    data: &IndexData,
) -> Result<Vec<u8>, TooLarge> {
    let n = data.dists.len();
    let count =
        |what: &str, n: usize| u32::try_from(n).map_err(|_| TooLarge(format!("{n} {what}")));
    let dist_count = count("distributions", n)?;
    let entry_point_count = count("entry points", data.entry_points.len())?;
    let diagnostic_count = count("diagnostics", data.diagnostics.len())?;
    let path_len = count("bytes of path", path.len())?;
    let provisional = header.is_provisional();
    let section_count = if provisional { 6 } else { 5 };
    let head_len = FIXED_LEN + section_count * TOC_ENTRY_LEN + path.len();
    let page_size = PAGE_SIZE as usize;
    let page_count = n.div_ceil(page_size);
    let buckets = n.div_ceil(KEYS_PER_BUCKET).max(1).next_power_of_two();

    // Which distributions an earlier one with the same unique key shadows,
    // and which declare entry points in which group (sorted by name).
    let mut seen = FxHashSet::default();
    let mut shadowed = vec![false; n];
    let mut groups: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, d) in data.dists.iter().enumerate() {
        shadowed[i] = d.unique_key.is_some_and(|k| !seen.insert(data.str(k)));
        for e in d.entry_points.range() {
            let members = groups
                .entry(data.str(data.entry_points[e].group))
                .or_default();
            if members.last() != Some(&i) {
                members.push(i);
            }
        }
    }

    let mut out = vec![0; head_len];
    let entry = append(&mut out, |out| {
        let mut part = PartWriter::new(data);
        for i in data.entry_diagnostics.range() {
            part.entry_diagnostic(data.diagnostics[i]);
        }
        part.finish(out)
    })?;
    let diagnosed = append(&mut out, |out| {
        for (i, d) in data.dists.iter().enumerate() {
            if !d.diagnostics.is_empty() {
                out.extend_from_slice(&(i as u32).to_le_bytes());
            }
        }
        Ok(())
    })?;
    // The directories come next, where a consult's first read finds them
    // in a small file; they are filled in once their blocks are written.
    let groups_at = out.len();
    out.resize(groups_at + group_dir_len(groups.keys().copied()), 0);
    let pages_at = out.len();
    out.resize(pages_at + page_count * REF_LEN, 0);
    let keys_at = out.len();
    out.resize(keys_at + buckets * REF_LEN, 0);

    let mut group_refs = Vec::with_capacity(groups.len());
    for (&name, members) in &groups {
        let r = append(&mut out, |out| {
            let mut part = PartWriter::new(data);
            for &i in members {
                let d = &data.dists[i];
                let eps = d
                    .entry_points
                    .range()
                    .filter(|&e| data.str(data.entry_points[e].group) == name);
                part.dist(i as u32, d, eps, false, shadowed[i]);
            }
            part.finish(out)
        })?;
        group_refs.push((name, r));
    }

    let mask = buckets as u64 - 1;
    let mut bucket_writers: Vec<BucketWriter> = (0..buckets).map(|_| Default::default()).collect();
    for (i, d) in data.dists.iter().enumerate() {
        let number = i as u32;
        let egg = if d.kind == Kind::Egg { KEY_EGG } else { 0 };
        let lookup = data.str(d.lookup_key);
        let unique = d.unique_key.map(|k| data.str(k));
        let also_unique = if unique == Some(lookup) {
            KEY_UNIQUE
        } else {
            0
        };
        bucket_writers[(key_hash(lookup) & mask) as usize].key(
            lookup,
            number,
            KEY_LOOKUP | also_unique | egg,
        );
        if let Some(unique) = unique.filter(|&u| u != lookup) {
            bucket_writers[(key_hash(unique) & mask) as usize].key(
                unique,
                number,
                KEY_UNIQUE | egg,
            );
        }
    }
    let mut bucket_refs = Vec::with_capacity(buckets);
    for writer in bucket_writers {
        bucket_refs.push(append(&mut out, |out| {
            writer.finish(out);
            Ok(())
        })?);
    }

    let mut page_refs = Vec::with_capacity(page_count);
    for (k, page) in data.dists.chunks(page_size).enumerate() {
        page_refs.push(append(&mut out, |out| {
            let mut part = PartWriter::new(data);
            for (i, d) in page.iter().enumerate() {
                let number = (k * page_size + i) as u32;
                part.dist(number, d, d.entry_points.range(), true, false);
            }
            part.finish(out)
        })?);
    }
    let fingerprint = if provisional {
        Some(append(&mut out, |out| {
            out.extend_from_slice(fingerprint);
            Ok(())
        })?)
    } else {
        None
    };

    let mut fill = |at: usize, bytes: &[u8]| {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        Ref {
            offset: at as u32,
            len: bytes.len() as u32,
            checksum: checksum(bytes),
        }
    };
    let mut dir = Vec::new();
    encode_group_dir(&group_refs, &mut dir);
    let groups_ref = fill(groups_at, &dir);
    dir.clear();
    page_refs.iter().for_each(|r| r.write(&mut dir));
    let pages_ref = fill(pages_at, &dir);
    dir.clear();
    bucket_refs.iter().for_each(|r| r.write(&mut dir));
    let keys_ref = fill(keys_at, &dir);

    let mut head = Vec::with_capacity(head_len);
    head.extend_from_slice(&MAGIC);
    head.extend_from_slice(&[0; 8]);
    head.extend_from_slice(&header.version.to_le_bytes());
    head.extend_from_slice(&header.flags.to_le_bytes());
    head.extend_from_slice(&header.written_at_ns.to_le_bytes());
    let key = &header.key;
    head.extend_from_slice(&key.mtime_ns.to_le_bytes());
    head.extend_from_slice(&key.ctime_ns.to_le_bytes());
    head.extend_from_slice(&key.inode.to_le_bytes());
    head.extend_from_slice(&key.size.to_le_bytes());
    head.extend_from_slice(&(out.len() as u64).to_le_bytes());
    head.extend_from_slice(&checksum(&out[head_len..]).to_le_bytes());
    for field in [
        dist_count,
        entry_point_count,
        diagnostic_count,
        PAGE_SIZE,
        path_len,
        section_count as u32,
    ] {
        head.extend_from_slice(&field.to_le_bytes());
    }
    debug_assert_eq!(head.len(), FIXED_LEN);
    let toc = [
        (Section::Entry, Some(entry)),
        (Section::Diagnosed, Some(diagnosed)),
        (Section::Groups, Some(groups_ref)),
        (Section::Pages, Some(pages_ref)),
        (Section::Keys, Some(keys_ref)),
        (Section::Fingerprint, fingerprint),
    ];
    for (section, r) in toc {
        if let Some(r) = r {
            head.extend_from_slice(&(section as u32).to_le_bytes());
            head.extend_from_slice(&[0; 4]);
            r.write(&mut head);
        }
    }
    head.extend_from_slice(path);
    debug_assert_eq!(head.len(), head_len);
    let sum = checksum(&head[CHECKSUM_END..]);
    head[8..CHECKSUM_END].copy_from_slice(&sum.to_le_bytes());
    out[..head_len].copy_from_slice(&head);
    Ok(out)
}

/// One section or block as `dump` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SectionInfo {
    /// What it holds.
    pub name: String,
    /// Where it starts in the file.
    pub offset: u64,
    /// How long it is.
    pub len: u64,
}

/// A cache file taken apart for inspection (the `dump` example).
#[derive(Debug)]
#[non_exhaustive]
pub struct CacheFile {
    /// The fixed header.
    pub header: Header,
    /// The absolute path entry the file claims to describe.
    pub path_entry: std::path::PathBuf,
    /// Size of the provisional fingerprint section in bytes (0 when none).
    pub fingerprint_len: usize,
    /// Size of everything after the head, in bytes.
    pub body_len: usize,
    /// The sections the table of contents lists.
    pub sections: Vec<SectionInfo>,
    /// The blocks the directories point at: each group's part, each page,
    /// each bucket of keys (as far as the directories are intact).
    pub blocks: Vec<SectionInfo>,
    /// Whether the head's checksum and the whole file's match.
    pub checksum_ok: bool,
    /// The index with every part decoded, or why one did not decode.
    pub index: Result<crate::Index, FormatError>,
}

/// Takes a cache file apart without trusting it: the head must be sound,
/// but a bad checksum or a damaged section is reported, not fatal.
pub fn inspect(bytes: &[u8]) -> Result<CacheFile, FormatError> {
    let (head, head_ok) = parse_head(bytes)?;
    let path_entry = crate::platform::path_from_bytes(&head.path);
    let checksum_ok = head_ok && check_whole(bytes).is_ok();
    let sections = Section::ALL
        .iter()
        .filter_map(|&s| {
            head.section(s).map(|r| SectionInfo {
                name: s.name().to_owned(),
                offset: r.offset.into(),
                len: r.len.into(),
            })
        })
        .collect();
    let fingerprint_len = head
        .section(Section::Fingerprint)
        .map_or(0, |r| r.len as usize);
    let body_len = bytes.len().saturating_sub(head.head_len);
    let file = crate::index::file::FileIndex::in_memory(Arc::from(bytes), head.clone());
    let info = |name: String, r: Ref| SectionInfo {
        name,
        offset: r.offset.into(),
        len: r.len.into(),
    };
    let mut blocks = Vec::new();
    if let Ok(dir) = file
        .section(Section::Groups)
        .and_then(|b| decode_group_dir(b, head.body()).map_err(crate::index::file::Damage::invalid))
    {
        for (i, &(_, r)) in dir.groups.iter().enumerate() {
            blocks.push(info(format!("part of group {}", dir.name(i)), r));
        }
    }
    for (section, what) in [(Section::Keys, "bucket"), (Section::Pages, "page")] {
        if let Ok(refs) = file
            .section(section)
            .and_then(|b| decode_refs(&b, head.body()).map_err(crate::index::file::Damage::invalid))
        {
            blocks.extend(
                refs.iter()
                    .enumerate()
                    .map(|(k, &r)| info(format!("{what} {k}"), r)),
            );
        }
    }
    let index = file
        .materialize()
        .map(|data| crate::Index::owned(path_entry.clone(), data, true));
    Ok(CacheFile {
        header: head.header,
        path_entry,
        fingerprint_len,
        body_len,
        sections,
        blocks,
        checksum_ok,
        index,
    })
}

/// Replaces the stored key of a cache file and fixes the head's checksum.
///
/// A test seam: it makes a provisional file claim the directory's new key,
/// which simulates a change inside one clock tick that only the
/// fingerprint can catch. Not meant for anything else; the integration
/// tests carry their own copy, written from `docs/format.md`.
#[cfg(test)]
pub(crate) fn rewrite_key(bytes: &[u8], key: Key) -> Result<Vec<u8>, FormatError> {
    let (head, _) = parse_head(bytes)?;
    let mut out = bytes.to_vec();
    let fields = [
        key.mtime_ns.to_le_bytes(),
        key.ctime_ns.to_le_bytes(),
        key.inode.to_le_bytes(),
        key.size.to_le_bytes(),
    ];
    for (i, field) in fields.iter().enumerate() {
        out[KEY_AT + 8 * i..KEY_AT + 8 * (i + 1)].copy_from_slice(field);
    }
    let sum = checksum(&out[CHECKSUM_END..head.head_len]);
    out[8..CHECKSUM_END].copy_from_slice(&sum.to_le_bytes());
    Ok(out)
}

/// The path entry a parsed head names.
pub(crate) fn head_path(head: &Head) -> PathBuf {
    crate::platform::path_from_bytes(&head.path)
}

#[cfg(test)]
mod tests;

//! An index read from a cache file part by part, as queries need them.
//!
//! A consult reads the file's head (one positioned read of its first
//! [`FIRST_READ`] bytes, which for a small index is the whole file) and
//! checks it; nothing else. Each section and block is read with one more
//! positioned read the first time a query needs it, checked against the
//! checksum in the reference that led to it (so every byte used is
//! covered by a chain of checksums that starts at the head's), decoded,
//! and kept for the life of the index. The file stays open, so a file
//! renamed over it meanwhile changes nothing that is read.
//!
//! A part that cannot be read whole (the file was truncated in place), or
//! whose checksum or contents are wrong, is *damage*: it is never used.
//! The index then scans its path entry (once), answers from the scan from
//! then on, and publishes it when the rules allow, which replaces the
//! damaged file (see [`FileIndex::fall_back`]).

use std::fs::File;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::error::FormatError;
use crate::index::format::{
    self, checksum, decode_bucket, decode_group_dir, decode_numbers, key_hash, Bucket, GroupDir,
    Head, PartKind, RawPart, Ref, RefTable, Section, KEY_EGG, KEY_LOOKUP, KEY_UNIQUE,
};
use crate::index::{IndexData, Owned};
use crate::outcome::{Cause, IoCause, Lookup, Outcome};
use crate::platform;

/// How much of a cache file a consult reads at once: the head, the
/// directories right after it, and for an index of a few dozen
/// distributions everything.
pub(crate) const FIRST_READ: usize = 4096;

/// Why a part of a cache file could not be used.
#[derive(Clone, Debug)]
pub(crate) enum Damage {
    /// The bytes are wrong, or missing.
    Format(FormatError),
    /// They could not be read.
    Io(IoCause),
}

impl Damage {
    pub(crate) fn invalid(why: impl Into<String>) -> Damage {
        Damage::Format(FormatError::Invalid(why.into()))
    }

    /// What a consult that had found this would have reported.
    pub(crate) fn lookup(&self) -> Lookup {
        match self {
            Damage::Format(err) => Lookup::Corrupt(Cause::Format(err.clone())),
            Damage::Io(why) => Lookup::Unusable(Cause::Io(why.clone())),
        }
    }

    fn into_format(self) -> FormatError {
        match self {
            Damage::Format(err) => err,
            Damage::Io(why) => FormatError::Invalid(why.to_string()),
        }
    }
}

enum Source {
    File(File),
    Memory(Arc<[u8]>),
}

/// Positioned reads of one cache file.
pub(crate) struct Reader {
    source: Source,
    /// The file's first bytes, as the consult read them.
    first: Vec<u8>,
}

impl Reader {
    /// `len` bytes from `offset`, appended to `buf`.
    fn read_into(&self, buf: &mut Vec<u8>, offset: u64, len: usize) -> Result<(), Damage> {
        let end = offset + len as u64;
        if end <= self.first.len() as u64 {
            buf.extend_from_slice(&self.first[offset as usize..end as usize]);
            return Ok(());
        }
        match &self.source {
            Source::Memory(bytes) => {
                let slice = bytes
                    .get(offset as usize..end as usize)
                    .ok_or(Damage::Format(FormatError::Truncated))?;
                buf.extend_from_slice(slice);
                Ok(())
            }
            Source::File(file) => platform::read_exact_at(file, buf, offset, len).map_err(|err| {
                if err.kind() == std::io::ErrorKind::UnexpectedEof {
                    Damage::Format(FormatError::Truncated)
                } else {
                    Damage::Io(IoCause::new("reading the index file".into(), None, err))
                }
            }),
        }
    }

    /// The block `r` points at, checked against its checksum.
    fn read(&self, r: Ref, what: &str) -> Result<Vec<u8>, Damage> {
        let mut bytes = Vec::with_capacity(r.len as usize);
        self.read_into(&mut bytes, r.offset.into(), r.len as usize)?;
        if checksum(&bytes) != r.checksum {
            return Err(Damage::Format(FormatError::SectionChecksum(
                what.to_owned(),
            )));
        }
        Ok(bytes)
    }
}

/// Reads and checks the head of an open cache file of `size` bytes: the
/// magic, the version, the head's checksum, and that the file is as long
/// as the head says.
pub(crate) fn open(file: File, size: u64) -> Result<(Reader, Head), Damage> {
    let mut reader = Reader {
        source: Source::File(platform::keep_open(file)),
        first: Vec::new(),
    };
    let first_len = (size as usize).min(FIRST_READ);
    let mut first = Vec::with_capacity(first_len);
    reader.read_into(&mut first, 0, first_len)?;
    let head_len = format::head_len(&first).map_err(Damage::Format)?;
    if head_len > first.len() {
        // A path entry of kilobytes.
        let have = first.len();
        reader.read_into(&mut first, have as u64, head_len - have)?;
    }
    let (head, checksum_ok) = format::parse_head(&first).map_err(Damage::Format)?;
    if !checksum_ok {
        return Err(Damage::Format(FormatError::Checksum));
    }
    match size.cmp(&head.file_len) {
        std::cmp::Ordering::Less => return Err(Damage::Format(FormatError::Truncated)),
        std::cmp::Ordering::Greater => return Err(Damage::Format(FormatError::TrailingBytes)),
        std::cmp::Ordering::Equal => {}
    }
    reader.first = first;
    Ok((reader, head))
}

/// What the file was replaced with after damage showed.
struct Fallback {
    owned: Owned,
    outcome: Outcome,
}

struct Groups {
    dir: GroupDir,
    parts: Box<[OnceLock<RawPart>]>,
}

struct Pages {
    refs: RefTable,
    pages: Box<[OnceLock<Box<RawPart>>]>,
}

struct Keys {
    refs: RefTable,
    buckets: Box<[OnceLock<Box<Bucket>>]>,
}

/// What replaces a damaged file: the cache gives each index it opens one,
/// which scans the path entry and publishes the scan under the cache's
/// rules, as a consult that had found the damage (`lookup`) would have.
pub(crate) trait Heal: Send + Sync {
    /// The scan that answers from now on, and what became of the file.
    fn rescan(&self, path_entry: &Path, lookup: Lookup) -> (Owned, Outcome);
}

/// An index file opened by a consult, read as queries need it.
pub(crate) struct FileIndex {
    reader: Reader,
    head: Head,
    /// Rescans and republishes when damage shows; `None` for a file only
    /// inspected, never queried.
    healer: Option<Box<dyn Heal>>,
    entry: OnceLock<RawPart>,
    diagnosed: OnceLock<Box<[u32]>>,
    groups: OnceLock<Groups>,
    pages: OnceLock<Pages>,
    keys: OnceLock<Keys>,
    fallback: OnceLock<Fallback>,
}

/// The value in `cell`, made by `init` the first time. Two threads may
/// both make it; one value is kept.
fn load<T>(cell: &OnceLock<T>, init: impl FnOnce() -> Result<T, Damage>) -> Result<&T, Damage> {
    if let Some(value) = cell.get() {
        return Ok(value);
    }
    let value = init()?;
    Ok(cell.get_or_init(|| value))
}

impl FileIndex {
    /// An index over a file whose head [`open`] read and checked.
    pub(crate) fn new(reader: Reader, head: Head, healer: Option<Box<dyn Heal>>) -> FileIndex {
        FileIndex {
            reader,
            head,
            healer,
            entry: OnceLock::new(),
            diagnosed: OnceLock::new(),
            groups: OnceLock::new(),
            pages: OnceLock::new(),
            keys: OnceLock::new(),
            fallback: OnceLock::new(),
        }
    }

    /// The same index, replacing itself with a scan through `healer` when
    /// it finds damage.
    pub(crate) fn with_healer(mut self, healer: Box<dyn Heal>) -> FileIndex {
        self.healer = Some(healer);
        self
    }

    /// An index over the bytes of a file, for inspecting them.
    pub(crate) fn in_memory(bytes: Arc<[u8]>, head: Head) -> FileIndex {
        let reader = Reader {
            source: Source::Memory(bytes),
            first: Vec::new(),
        };
        FileIndex::new(reader, head, None)
    }

    /// Whether the file is provisional (and so has a fingerprint).
    #[cfg(test)]
    pub(crate) fn is_provisional(&self) -> bool {
        self.head.header.is_provisional()
    }

    pub(crate) fn dist_count(&self) -> usize {
        self.head.dist_count as usize
    }

    pub(crate) fn entry_point_count(&self) -> usize {
        self.head.entry_point_count as usize
    }

    pub(crate) fn diagnostic_count(&self) -> usize {
        self.head.diagnostic_count as usize
    }

    /// The bytes of a section of the table of contents, checked.
    pub(crate) fn section(&self, section: Section) -> Result<Vec<u8>, Damage> {
        let r = self
            .head
            .section(section)
            .ok_or_else(|| Damage::invalid(format!("no {}", section.name())))?;
        self.reader.read(r, section.name())
    }

    /// The whole file, as `status` checks it.
    pub(crate) fn whole_file(&self) -> Result<Vec<u8>, Damage> {
        let mut bytes = Vec::with_capacity(self.head.file_len as usize);
        self.reader
            .read_into(&mut bytes, 0, self.head.file_len as usize)?;
        Ok(bytes)
    }

    fn part(&self, r: Ref, what: &str, kind: PartKind) -> Result<RawPart, Damage> {
        let bytes = self.reader.read(r, what)?;
        RawPart::decode(bytes, kind).map_err(|why| Damage::invalid(format!("the {what}: {why}")))
    }

    /// The scan that replaced the file, once damage showed.
    pub(crate) fn fallback(&self) -> Option<&Owned> {
        self.fallback.get().map(|f| &f.owned)
    }

    /// What happened when damage showed.
    pub(crate) fn late_outcome(&self) -> Option<&Outcome> {
        self.fallback.get().map(|f| &f.outcome)
    }

    /// Replaces the file with a scan of `path_entry`, once, after `damage`
    /// showed: the scan is published under the usual rules (which heals
    /// the file for every later consult) and answers every later query.
    pub(crate) fn fall_back(&self, path_entry: &Path, damage: Damage) -> &Owned {
        &self
            .fallback
            .get_or_init(|| {
                let lookup = damage.lookup();
                let (owned, outcome) = match &self.healer {
                    Some(healer) => healer.rescan(path_entry, lookup),
                    // Nothing to rescan with: an empty answer marked
                    // incomplete, which no caller takes for the truth.
                    None => (
                        Owned::new(IndexData::default(), false),
                        Outcome {
                            lookup,
                            publish: None,
                        },
                    ),
                };
                Fallback { owned, outcome }
            })
            .owned
    }

    /// The path entry's own diagnostics.
    pub(crate) fn entry(&self) -> Result<&RawPart, Damage> {
        load(&self.entry, || {
            let r = self
                .head
                .section(Section::Entry)
                .ok_or_else(|| Damage::invalid("no entry diagnostics"))?;
            self.part(r, Section::Entry.name(), PartKind::Entry)
        })
    }

    fn diagnosed(&self) -> Result<&[u32], Damage> {
        load(&self.diagnosed, || {
            let bytes = self.section(Section::Diagnosed)?;
            decode_numbers(&bytes, self.head.dist_count).map_err(Damage::invalid)
        })
        .map(|numbers| &**numbers)
    }

    /// The records of the distributions with diagnostics.
    pub(crate) fn diagnosed_records(&self) -> Result<Vec<(&RawPart, usize)>, Damage> {
        self.diagnosed()?
            .iter()
            .map(|&n| self.page_record(n))
            .collect()
    }

    fn groups(&self) -> Result<&Groups, Damage> {
        load(&self.groups, || {
            let bytes = self.section(Section::Groups)?;
            let dir = decode_group_dir(bytes, self.head.body()).map_err(Damage::invalid)?;
            let parts = dir.groups.iter().map(|_| OnceLock::new()).collect();
            Ok(Groups { dir, parts })
        })
    }

    /// The part of `group`: the distributions that declare entry points in
    /// it, with those entry points; `None` when none does.
    pub(crate) fn group_block(&self, group: &str) -> Result<Option<&RawPart>, Damage> {
        let groups = self.groups()?;
        let Some(i) = groups.dir.find(group) else {
            return Ok(None);
        };
        let kind = PartKind::Group {
            dists: self.head.dist_count,
        };
        load(&groups.parts[i], || {
            self.part(groups.dir.groups[i].1, "part of a group", kind)
        })
        .map(Some)
    }

    fn pages(&self) -> Result<&Pages, Damage> {
        load(&self.pages, || {
            let bytes = self.section(Section::Pages)?;
            let refs = RefTable::new(bytes, self.head.body()).map_err(Damage::invalid)?;
            if refs.len() != self.head.page_count() {
                return Err(Damage::invalid(
                    "the page directory does not match the count",
                ));
            }
            let pages = (0..refs.len()).map(|_| OnceLock::new()).collect();
            Ok(Pages { refs, pages })
        })
    }

    fn page(&self, k: usize) -> Result<&RawPart, Damage> {
        let pages = self.pages()?;
        let slot = pages
            .pages
            .get(k)
            .ok_or_else(|| Damage::invalid("no such page"))?;
        load(slot, || {
            let r = pages.refs.get(k).map_err(Damage::invalid)?;
            self.part(r, "page", self.page_kind(k)).map(Box::new)
        })
        .map(|page| &**page)
    }

    /// The page of distribution `number`, and where its record is there.
    pub(crate) fn page_record(&self, number: u32) -> Result<(&RawPart, usize), Damage> {
        let size = self.head.page_size;
        let page = self.page((number / size) as usize)?;
        let i = (number % size) as usize;
        if i >= page.dist_count() {
            return Err(Damage::invalid("no such distribution"));
        }
        Ok((page, i))
    }

    /// Every page, in order. The pages not read yet are read with one
    /// positioned read per run of pages that lie one after another (the
    /// writer puts them all so), and each run shares one buffer.
    pub(crate) fn all_pages(&self) -> Result<Vec<&RawPart>, Damage> {
        let pages = self.pages()?;
        let missing = (0..pages.refs.len())
            .filter(|&k| pages.pages[k].get().is_none())
            .map(|k| Ok((k, pages.refs.get(k).map_err(Damage::invalid)?)))
            .collect::<Result<Vec<(usize, Ref)>, Damage>>()?;
        let follows = |a: &(usize, Ref), b: &(usize, Ref)| {
            b.0 == a.0 + 1 && u64::from(b.1.offset) == a.1.end()
        };
        for run in missing.chunk_by(follows) {
            if let [(first, _), _, ..] = run {
                self.read_run(pages, *first, run)?;
            }
        }
        (0..pages.refs.len()).map(|k| self.page(k)).collect()
    }

    /// Reads the pages of `run`, which lie one after another from page
    /// `first` on, with one read into one shared buffer.
    fn read_run(&self, pages: &Pages, first: usize, run: &[(usize, Ref)]) -> Result<(), Damage> {
        let start = run[0].1.offset;
        let len = (run[run.len() - 1].1.end() - u64::from(start)) as usize;
        let mut bytes = Vec::with_capacity(len);
        self.reader.read_into(&mut bytes, start.into(), len)?;
        for &(_, r) in run {
            let at = (r.offset - start) as usize;
            if checksum(&bytes[at..at + r.len as usize]) != r.checksum {
                return Err(Damage::Format(FormatError::SectionChecksum("page".into())));
            }
        }
        let text = std::sync::Arc::new(
            String::from_utf8(bytes).map_err(|_| Damage::invalid("a page is not UTF-8"))?,
        );
        for (i, &(k, r)) in run.iter().enumerate() {
            debug_assert_eq!(k, first + i);
            let at = (r.offset - start) as usize;
            let part = RawPart::decode_in(&text, at, r.len as usize, self.page_kind(k))
                .map_err(|why| Damage::invalid(format!("the page: {why}")))?;
            let _ = pages.pages[k].set(Box::new(part));
        }
        Ok(())
    }

    /// What page `k` must hold.
    fn page_kind(&self, k: usize) -> PartKind {
        let size = self.head.page_size as usize;
        let first = k * size;
        PartKind::Page {
            first: first as u32,
            count: size.min(self.dist_count().saturating_sub(first)) as u32,
        }
    }

    /// Distribution `number`'s record if a page or group's part already
    /// read holds it, and whether it has all its rows (a page's does).
    pub(crate) fn loaded_record(&self, number: u32) -> Option<(&RawPart, usize, bool)> {
        let size = self.head.page_size;
        if let Some(page) = self
            .pages
            .get()
            .and_then(|pages| pages.pages.get((number / size) as usize))
            .and_then(OnceLock::get)
        {
            let i = (number % size) as usize;
            return (i < page.dist_count()).then_some((&**page, i, true));
        }
        let groups = self.groups.get()?;
        groups
            .parts
            .iter()
            .filter_map(OnceLock::get)
            .find_map(|part| {
                let i = part.find(number)?;
                Some((part, i, false))
            })
    }

    fn keys(&self) -> Result<&Keys, Damage> {
        load(&self.keys, || {
            let bytes = self.section(Section::Keys)?;
            let refs = RefTable::new(bytes, self.head.body()).map_err(Damage::invalid)?;
            if !refs.len().is_power_of_two() {
                return Err(Damage::invalid("the key directory is not a power of two"));
            }
            let buckets = (0..refs.len()).map(|_| OnceLock::new()).collect();
            Ok(Keys { refs, buckets })
        })
    }

    fn bucket_at<'a>(&'a self, keys: &'a Keys, b: usize) -> Result<&'a Bucket, Damage> {
        load(&keys.buckets[b], || {
            let r = keys.refs.get(b).map_err(Damage::invalid)?;
            let bytes = self.reader.read(r, "bucket of keys")?;
            decode_bucket(bytes, self.head.dist_count)
                .map(Box::new)
                .map_err(Damage::invalid)
        })
        .map(|bucket| &**bucket)
    }

    /// The bucket `key` falls in.
    fn bucket(&self, key: &str) -> Result<&Bucket, Damage> {
        let keys = self.keys()?;
        self.bucket_at(
            keys,
            (key_hash(key) & (keys.refs.len() as u64 - 1)) as usize,
        )
    }

    /// Whether a distribution has `key` as its unique key.
    pub(crate) fn has_unique_key(&self, key: &str) -> Result<bool, Damage> {
        Ok(self.bucket(key)?.find(key, KEY_UNIQUE, 0).next().is_some())
    }

    /// The records of the distributions `distribution(name)` finds: lookup
    /// key `normalized` (not eggs), then eggs with lookup key `legacy`.
    pub(crate) fn named(
        &self,
        normalized: Option<&str>,
        legacy: Option<&str>,
    ) -> Result<Vec<(&RawPart, usize)>, Damage> {
        let mut numbers = Vec::new();
        if let Some(key) = normalized {
            numbers.extend(self.bucket(key)?.find(key, KEY_LOOKUP, KEY_EGG));
        }
        if let Some(key) = legacy {
            numbers.extend(self.bucket(key)?.find(key, KEY_LOOKUP | KEY_EGG, 0));
        }
        numbers.into_iter().map(|n| self.page_record(n)).collect()
    }

    /// Reads and checks every part of the file, and puts the index
    /// together in memory: for `dump`, and to rewrite a provisional file
    /// as a settled one.
    pub(crate) fn materialize(&self) -> Result<IndexData, FormatError> {
        let all = || -> Result<IndexData, Damage> {
            let entry = self.entry()?;
            self.diagnosed()?;
            let groups = self.groups()?;
            for i in 0..groups.dir.groups.len() {
                self.group_block(groups.dir.name(i))?;
            }
            let keys = self.keys()?;
            for b in 0..keys.refs.len() {
                self.bucket_at(keys, b)?;
            }
            if let Some(r) = self.head.section(Section::Fingerprint) {
                self.reader.read(r, Section::Fingerprint.name())?;
            }
            let pages = self.all_pages()?;
            Ok(IndexData::concat(entry, &pages))
        };
        all().map_err(Damage::into_format)
    }
}

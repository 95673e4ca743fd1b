//! Turning one path entry into an [`Index`], the way importlib.metadata's
//! `FastPath` and `Lookup` see it.
//!
//! A directory is listed in directory order (`getdents64` on Linux,
//! `read_dir` elsewhere) and its distributions are read while the listing
//! goes on; a zip file on `sys.path` is listed through its central
//! directory. Either way distributions are read in listing order and then
//! put in importlib's discovery order. Nothing here fails: what cannot be
//! read becomes a diagnostic, and a missing path entry is simply empty.

mod dir;
mod entry_points;
mod metadata;
pub(crate) mod pystr;
pub(crate) mod zip;

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::path::Path;

use rustc_hash::FxHashMap;

use crate::index::name::{legacy_normalize_name, normalize_name, normalize_name_into};
use crate::index::Key;
use crate::index::{DistFacts, Environment, Index, IndexBuilder, Kind};
use crate::platform::read_buf::{ReadBuf, ReadPlan, ShortRead};
use crate::platform::{self, DirHandle, FileInfo, FileKind};
use pystr::{before_first, before_last, py_splitext};

// Scanning a whole `sys.path` is the scanner's job; the query layer only
// combines indexes it is given.
impl Environment {
    /// Scans every path entry afresh, bypassing any cache.
    pub fn scan<P: AsRef<Path>>(path_entries: impl IntoIterator<Item = P>) -> Self {
        Environment::from_indexes(path_entries.into_iter().map(scan).collect())
    }
}

/// A child of the path entry that may hold metadata.
pub(crate) struct Child {
    name: String,
    is_dir: bool,
}

/// What reading one metadata file gave.
enum Read {
    /// The bytes are in the buffer.
    Found,
    /// Absent in a way importlib silently ignores (not found, not a
    /// directory, is a directory).
    Absent,
    /// Present but unreadable, perhaps only for now (permissions, too many
    /// open files, I/O errors): the scan is incomplete and is never cached.
    Failed(String),
    /// Present but of a kind that is never read, because reading it could
    /// block or never end (a FIFO, socket or device). That is a property of
    /// the tree, like a malformed line, so the scan stays complete.
    Refused(String),
}

/// The most epcache reads of one metadata file. Real ones are a few
/// kilobytes; anything near this is an attack or an accident, and reading
/// it whole would let one file exhaust memory. A larger file makes the scan
/// incomplete, so the Python hook answers that query with the stock code.
pub(crate) const MAX_METADATA_FILE: u64 = 64 << 20;

/// How much of a file the scanner needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Extent {
    Whole,
    /// Enough to hold the header block of a METADATA file.
    Headers,
}

impl Extent {
    /// The first read of a METADATA file: `Name` and `Version` come within
    /// its first 80 bytes in every file of a real environment measured
    /// (build back ends write them second and third), so reading more
    /// would only copy text that is never looked at.
    const HEADERS_FIRST_CHUNK: usize = 512;

    /// Later reads of a METADATA file whose `Name` or `Version` comes late.
    const HEADERS_CHUNK: usize = 4 * 1024;

    /// Replaces `buf`'s contents with this much of `reader`, failing when
    /// that is more than [`MAX_METADATA_FILE`].
    fn fill(
        self,
        buf: &mut ReadBuf,
        reader: impl io::Read,
        short_read: ShortRead,
    ) -> io::Result<()> {
        let reader = reader.take(MAX_METADATA_FILE + 1);
        match self {
            Extent::Whole => buf.fill_to_end(reader, short_read)?,
            Extent::Headers => {
                let mut settles = metadata::Settling::default();
                buf.fill(
                    reader,
                    ReadPlan {
                        first: Some(Self::HEADERS_FIRST_CHUNK),
                        then: Some(Self::HEADERS_CHUNK),
                        short_read,
                    },
                    |bytes, at_eof| settles.name_and_version(bytes, at_eof),
                )?
            }
        }
        if buf.bytes().len() as u64 > MAX_METADATA_FILE {
            return Err(io::Error::other(format!(
                "larger than {} MiB",
                MAX_METADATA_FILE >> 20
            )));
        }
        Ok(())
    }
}

/// A listing plus file access: a directory or a zip archive.
trait Source {
    /// Lists the path entry and reads every candidate `classifier` picks
    /// out of it. Distributions are appended to `builder` in listing order,
    /// after any diagnostics about the listing; the candidates come back in
    /// the same order.
    fn list_and_read(
        &mut self,
        classifier: &Classifier,
        builder: &mut IndexBuilder,
    ) -> Vec<Candidate>;

    /// Reads `child/file` into `buf` (replacing its contents).
    fn read(&mut self, child: &str, file: &str, extent: Extent, buf: &mut ReadBuf) -> Read;

    /// Reads the child itself, for single-file metadata.
    fn read_child(&mut self, child: &str, extent: Extent, buf: &mut ReadBuf) -> Read;

    /// Whether importlib's `str(dist._path)` of a directory child ends in
    /// `/` (it does for `zipfile.Path`), which hides the directory's name
    /// from `_normalized_name`.
    fn dir_paths_end_in_slash(&self) -> bool {
        false
    }
}

/// Scans one `sys.path` entry.
///
/// `""` means the current directory, as it does on `sys.path`. A missing
/// entry gives an empty index; an unreadable one gives an empty index with
/// a diagnostic.
pub fn scan(path_entry: impl AsRef<Path>) -> Index {
    scan_with_key(path_entry.as_ref()).0
}

/// [`scan`], and the key of the entry it opened (`None` when it could not
/// be opened).
pub(crate) fn scan_with_key(path_entry: &Path) -> (Index, Option<Key>) {
    match OpenEntry::open(listed_path(path_entry)) {
        Ok(entry) => (entry.scan(path_entry), Some(entry.key)),
        Err(err) => {
            let mut builder = IndexBuilder::default();
            if platform::is_symlink_loop(&err) {
                // A fact about the tree: it holds nothing, as for importlib.
                builder.entry_diagnostic(format!("cannot open the path entry: {err}"));
            } else if !is_missing(&err) {
                builder.entry_failure(format!("cannot open the path entry: {err}"));
            }
            (builder.finish(path_entry.to_path_buf()), None)
        }
    }
}

/// The path a path entry is listed at: `""` is the current directory.
fn listed_path(path_entry: &Path) -> &Path {
    if path_entry.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path_entry
    }
}

/// A path entry opened once: its key, and the handle everything of the
/// scan is read through.
///
/// The key comes from `fstat` on that handle, so it describes exactly the
/// directory or zip file that is read, even when the path is a symlink
/// that another process swaps during the scan (see
/// [`unchanged_since_opened`](Self::unchanged_since_opened)).
pub(crate) struct OpenEntry {
    /// The key when it was opened.
    pub key: Key,
    /// The device it was opened on. Not part of the key (machines sharing
    /// a home see different device numbers), but within this process a
    /// path that moved to another file system names another directory.
    device: u64,
    opened: Opened,
}

enum Opened {
    Dir(DirHandle),
    File(File),
    /// A FIFO, socket or device: holds nothing, and is never read.
    Other,
}

impl OpenEntry {
    /// Opens `path` (following symlinks, as `os.listdir` does) without
    /// blocking, whatever it is.
    pub(crate) fn open(path: &Path) -> io::Result<OpenEntry> {
        let (file, info) = platform::open_path_entry(path)?;
        let opened = match info.kind {
            FileKind::Dir => Opened::Dir(DirHandle::from_file(file)),
            FileKind::Regular => Opened::File(file),
            FileKind::Symlink | FileKind::Other => Opened::Other,
        };
        Ok(OpenEntry {
            key: Key::from_info(&info),
            device: info.device,
            opened,
        })
    }

    /// The directory, when the path entry is one.
    pub(crate) fn dir(&self) -> Option<&DirHandle> {
        match &self.opened {
            Opened::Dir(dir) => Some(dir),
            _ => None,
        }
    }

    /// Scans what was opened. `path_entry` is the path as given, which the
    /// index records and `.egg` detection looks at.
    pub(crate) fn scan(&self, path_entry: &Path) -> Index {
        let mut builder = IndexBuilder::default();
        match &self.opened {
            Opened::Dir(dir) => {
                scan_source(&mut dir::DirSource::new(dir), path_entry, &mut builder)
            }
            // A plain file on sys.path that is not a zip holds nothing.
            Opened::File(file) => match zip::ZipSource::open(file) {
                Ok(mut source) => scan_source(&mut source, path_entry, &mut builder),
                Err(zip::NotAZip::Unreadable(err)) => {
                    builder.entry_failure(format!("cannot read the zip file: {err}"))
                }
                Err(zip::NotAZip::Invalid) => {}
            },
            Opened::Other => builder.entry_diagnostic(
                "the path entry is a FIFO, socket or device, which holds nothing".to_owned(),
            ),
        }
        builder.finish(path_entry.to_path_buf())
    }

    /// Whether the opened directory or file is still as it was opened, and
    /// `path` still names it: only then does a scan describe the key.
    pub(crate) fn unchanged_since_opened(&self, path: &Path) -> bool {
        let as_opened =
            |info: &FileInfo| Key::from_info(info) == self.key && info.device == self.device;
        let handle_unchanged = match &self.opened {
            Opened::Dir(dir) => dir.info().is_ok_and(|info| as_opened(&info)),
            Opened::File(file) => platform::fstat(file).is_ok_and(|info| as_opened(&info)),
            Opened::Other => true,
        };
        handle_unchanged && platform::stat(path).is_ok_and(|info| as_opened(&info))
    }
}

/// Whether a child's name can make it a distribution: the cheap test that
/// lets ordinary packages and modules cost nothing beyond the listing. The
/// exact rules live in `Classifier::classify`.
pub(crate) fn may_hold_metadata(name: &[u8]) -> bool {
    let ends_with = |suffix: &[u8]| {
        name.len() >= suffix.len() && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    ends_with(b".dist-info") || ends_with(b".egg-info") || name.eq_ignore_ascii_case(b"egg-info")
}

/// Errors importlib treats as "nothing here" without complaint.
fn is_missing(err: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(err.kind(), NotFound | NotADirectory | IsADirectory)
}

/// A child that qualifies, with the keys importlib files it under.
struct Candidate {
    child: Child,
    kind: Kind,
    lookup_key: String,
}

fn scan_source(source: &mut dyn Source, path_entry: &Path, builder: &mut IndexBuilder) {
    let classifier = Classifier::new(path_entry);
    let candidates = source.list_and_read(&classifier, builder);
    if let Some(order) = discovery_order(&candidates) {
        builder.reorder(&order);
    }
}

/// Reads every candidate in order, reusing `buf` from file to file.
fn read_sequentially(
    source: &mut dyn Source,
    candidates: &[Candidate],
    buf: &mut ReadBuf,
    builder: &mut IndexBuilder,
) {
    let dir_paths_end_in_slash = source.dir_paths_end_in_slash();
    let mut key = String::new();
    let mut headers = metadata::Headers::default();
    for candidate in candidates {
        let facts = read_distribution(source, candidate, buf, &mut headers);
        let unique_from_stem = unique_key_from_stem(candidate, dir_paths_end_in_slash, &mut key);
        builder.push(
            candidate.kind,
            &candidate.child.name,
            &candidate.lookup_key,
            unique_from_stem,
            facts,
        );
    }
}

/// The part of importlib's `Lookup` that looks at one child's name: which
/// children hold metadata, of what kind, under which key.
struct Classifier {
    /// When the path entry is a `*.egg`, the key its `EGG-INFO` child is
    /// filed under.
    egg_key: Option<String>,
}

impl Classifier {
    fn new(path_entry: &Path) -> Self {
        let base = python_basename(path_entry).to_lowercase();
        let egg_key = base
            .ends_with(".egg")
            .then(|| legacy_normalize_name(before_first(before_last(&base, '.'), '-')));
        Classifier { egg_key }
    }

    /// `*.dist-info` / `*.egg-info` children are filed under the
    /// normalized name from their file name; the `EGG-INFO` of an egg under
    /// the egg's name.
    fn classify(&self, child: Child) -> Option<Candidate> {
        let low = python_lower(&child.name);
        if let Some(kind) = info_kind(&low, child.is_dir) {
            let lookup_key = normalize_name(before_first(before_last(&low, '.'), '-'));
            Some(Candidate {
                child,
                kind,
                lookup_key,
            })
        } else if let (Some(key), "egg-info") = (&self.egg_key, &*low) {
            Some(Candidate {
                child,
                kind: Kind::Egg,
                lookup_key: key.clone(),
            })
        } else {
            None
        }
    }
}

/// importlib's `Lookup` groups candidates by lookup key, keeping the
/// first-seen order of keys, and lists `.egg` metadata after all of them.
/// Returns, for each position of that order, the listing position that
/// goes there; `None` when nothing moves, as is usual: keys rarely repeat.
fn discovery_order(candidates: &[Candidate]) -> Option<Vec<usize>> {
    let mut rank_of: FxHashMap<&str, usize> = FxHashMap::default();
    let ranks: Vec<usize> = candidates
        .iter()
        .map(|candidate| {
            if candidate.kind == Kind::Egg {
                return usize::MAX;
            }
            let next = rank_of.len();
            *rank_of.entry(&candidate.lookup_key).or_insert(next)
        })
        .collect();
    if ranks.is_sorted() {
        return None;
    }
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by_key(|&i| ranks[i]);
    Some(order)
}

/// Python's `str.lower()`, without the Unicode tables for ASCII names.
fn python_lower(name: &str) -> Cow<'_, str> {
    if !name.is_ascii() {
        Cow::Owned(name.to_lowercase())
    } else if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

fn info_kind(lowercase_name: &str, is_dir: bool) -> Option<Kind> {
    if lowercase_name.ends_with(".dist-info") {
        Some(if is_dir {
            Kind::DistInfo
        } else {
            Kind::DistInfoFile
        })
    } else if lowercase_name.ends_with(".egg-info") {
        Some(if is_dir {
            Kind::EggInfoDir
        } else {
            Kind::EggInfoFile
        })
    } else {
        None
    }
}

/// `os.path.basename` of the path entry as Python would see the string:
/// a trailing separator makes it empty.
fn python_basename(path_entry: &Path) -> String {
    let text = path_entry.to_string_lossy();
    let cut = text.rfind(std::path::is_separator).map_or(0, |i| i + 1);
    text[cut..].to_owned()
}

/// `PathDistribution._normalized_name`'s fast path: the name part of the
/// metadata file name, when its extension is exactly (case-sensitively)
/// `.dist-info` or `.egg-info` and that name part is not empty. `None`
/// means "use the metadata Name".
///
/// importlib takes the file name from `os.path.basename(str(dist._path))`;
/// for a directory inside a zip that string ends in `/`, so the basename
/// is empty and the metadata Name is always used there.
///
/// The key is built in `out`, which is reused from one distribution to the
/// next.
fn unique_key_from_stem<'k>(
    candidate: &Candidate,
    dir_paths_end_in_slash: bool,
    out: &'k mut String,
) -> Option<&'k str> {
    if candidate.kind == Kind::Egg || (dir_paths_end_in_slash && candidate.child.is_dir) {
        return None;
    }
    let (stem, ext) = py_splitext(&candidate.child.name);
    if !matches!(ext, ".dist-info" | ".egg-info") {
        return None;
    }
    // `normalize(name) or super()._normalized_name`: an empty name part
    // falls back to the metadata Name.
    let name = before_first(stem, '-');
    if name.is_empty() {
        return None;
    }
    normalize_name_into(name, out);
    Some(out)
}

/// Reads name, version and entry points of one distribution, in the order
/// importlib's `metadata` property tries its files. The name and version
/// borrow `headers`; the entry points borrow `buf`, which ends up holding
/// `entry_points.txt`.
fn read_distribution<'b>(
    source: &mut dyn Source,
    candidate: &Candidate,
    buf: &'b mut ReadBuf,
    headers: &'b mut metadata::Headers,
) -> DistFacts<'b> {
    let mut facts = DistFacts::default();
    let name = &candidate.child.name;
    let found = if candidate.kind.is_directory() {
        read_first_nonempty(source, name, &["METADATA", "PKG-INFO"], buf, &mut facts)
    } else {
        let read = source.read_child(name, Extent::Headers, buf);
        note_failure(read, name, &mut facts).then_some(name.as_str())
    };
    match found {
        Some(label) => {
            metadata::parse_headers(buf.bytes(), label, &mut facts.diagnostics, headers);
        }
        None if facts.diagnostics.is_empty() => {
            facts.diagnostics.push("no METADATA or PKG-INFO".into())
        }
        None => {}
    }
    let headers: &'b metadata::Headers = headers;
    if found.is_some() {
        facts.name = headers.name();
        facts.version = headers.version();
    }
    if candidate.kind.is_directory() {
        let read = source.read(name, "entry_points.txt", Extent::Whole, buf);
        if note_failure(read, "entry_points.txt", &mut facts) {
            facts.entry_points = entry_points::parse(buf.bytes(), &mut facts.diagnostics);
        }
    }
    facts
}

/// importlib takes `read_text('METADATA') or read_text('PKG-INFO')`: an
/// empty file counts as missing.
fn read_first_nonempty<'f>(
    source: &mut dyn Source,
    child: &str,
    files: &[&'f str],
    buf: &mut ReadBuf,
    facts: &mut DistFacts,
) -> Option<&'f str> {
    files.iter().copied().find(|file| {
        let read = source.read(child, file, Extent::Headers, buf);
        note_failure(read, file, facts) && !buf.bytes().is_empty()
    })
}

/// True when the file was read; records a diagnostic when it existed but
/// was not read, and marks the facts incomplete when that may pass.
fn note_failure(read: Read, label: &str, facts: &mut DistFacts) -> bool {
    match read {
        Read::Found => true,
        Read::Absent => false,
        Read::Failed(why) => {
            facts
                .diagnostics
                .push(format!("{label}: cannot read: {why}"));
            facts.incomplete = true;
            false
        }
        Read::Refused(why) => {
            facts.diagnostics.push(format!("{label}: skipped: {why}"));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(name: &str, is_dir: bool) -> Child {
        Child {
            name: name.into(),
            is_dir,
        }
    }

    /// The candidates among `children`, in discovery order.
    fn discovered(children: Vec<Child>, path_entry: &Path) -> Vec<Candidate> {
        let classifier = Classifier::new(path_entry);
        let listed: Vec<Candidate> = children
            .into_iter()
            .filter_map(|child| classifier.classify(child))
            .collect();
        let order = discovery_order(&listed).unwrap_or_else(|| (0..listed.len()).collect());
        let mut slots: Vec<Option<Candidate>> = listed.into_iter().map(Some).collect();
        order.iter().map(|&i| slots[i].take().unwrap()).collect()
    }

    #[cfg(unix)]
    #[test]
    fn a_path_entry_that_cannot_be_opened_is_empty_and_complete_only_if_that_is_a_fact() {
        let tmp = tempfile::tempdir().unwrap();
        // A symlink loop is a fact of the tree: empty, and complete.
        let looped = tmp.path().join("loop");
        std::os::unix::fs::symlink("loop", &looped).unwrap();
        let index = scan(&looped);
        assert!(index.is_empty() && index.is_complete());
        assert_eq!(index.diagnostics().count(), 1);
        // A missing one is simply empty.
        let missing = scan(tmp.path().join("missing"));
        assert!(missing.is_complete() && missing.diagnostics().count() == 0);
        // A name the kernel refuses (too long) is a failure, not a fact.
        let long = tmp.path().join("x".repeat(300));
        assert!(!scan(long).is_complete());
    }

    #[test]
    fn groups_by_normalized_name_in_first_seen_order() {
        let children = vec![
            child("b-1.dist-info", true),
            child("A-2.egg-info", true),
            child("pkg", true),
            child("a-1.dist-info", true),
            child("x.EGG-INFO", false),
        ];
        let order: Vec<_> = discovered(children, Path::new("/site"))
            .into_iter()
            .map(|c| (c.child.name, c.kind, c.lookup_key))
            .collect();
        assert_eq!(
            order,
            [
                ("b-1.dist-info".to_string(), Kind::DistInfo, "b".to_string()),
                ("A-2.egg-info".into(), Kind::EggInfoDir, "a".into()),
                ("a-1.dist-info".into(), Kind::DistInfo, "a".into()),
                ("x.EGG-INFO".into(), Kind::EggInfoFile, "x".into()),
            ]
        );
    }

    #[test]
    fn egg_info_only_counts_inside_an_egg() {
        let found = |entry: &str| discovered(vec![child("EGG-INFO", true)], Path::new(entry)).len();
        assert_eq!(found("/site/Foo_Bar-1.0-py3.11.egg"), 1);
        assert_eq!(found("/site/foo"), 0);
        assert_eq!(found("/site/foo.egg/"), 0);
        let eggs = discovered(
            vec![child("EGG-INFO", true)],
            Path::new("/s/Foo-Bar-1.0.egg"),
        );
        assert_eq!(eggs[0].lookup_key, "foo");
    }

    #[test]
    fn unique_key_uses_the_case_sensitive_extension() {
        let key = |name: &str, kind| {
            unique_key_from_stem(
                &Candidate {
                    child: child(name, true),
                    kind,
                    lookup_key: String::new(),
                },
                false,
                &mut String::new(),
            )
            .map(str::to_owned)
        };
        assert_eq!(
            key("Foo.Bar-1.0.dist-info", Kind::DistInfo).as_deref(),
            Some("foo-bar")
        );
        assert_eq!(key("UPPER-2.0.DIST-INFO", Kind::DistInfo), None);
        assert_eq!(
            key("face.egg-info", Kind::EggInfoDir).as_deref(),
            Some("face")
        );
        assert_eq!(key("EGG-INFO", Kind::Egg), None);
        assert_eq!(key("-1.0.dist-info", Kind::DistInfo), None);
    }

    #[test]
    fn zip_directories_have_no_unique_key_from_their_name() {
        let candidate = |name: &str, is_dir, kind| Candidate {
            child: child(name, is_dir),
            kind,
            lookup_key: String::new(),
        };
        let dir = candidate("abc-1.0.dist-info", true, Kind::DistInfo);
        let mut out = String::new();
        assert_eq!(unique_key_from_stem(&dir, true, &mut out), None);
        assert_eq!(unique_key_from_stem(&dir, false, &mut out), Some("abc"));
        let file = candidate("abc-1.0.egg-info", false, Kind::EggInfoFile);
        assert_eq!(unique_key_from_stem(&file, true, &mut out), Some("abc"));
    }
}

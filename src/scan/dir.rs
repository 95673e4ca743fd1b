//! A directory path entry, read while it is being listed.
//!
//! Candidates are read in blocks as the listing finds them (see
//! [`crate::pipeline`]). Each block becomes its own part of the index; the
//! parts are joined in listing order, and the scan then puts the
//! distributions in discovery order.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{
    is_missing, may_hold_metadata, read_sequentially, Candidate, Child, Classifier, Extent, Read,
    Source,
};
use crate::index::IndexBuilder;
use crate::pipeline::process_while_listing;
use crate::platform::{open_in, DirHandle};
use crate::read_buf::{ReadBuf, ShortRead};

/// Candidates per block: small enough that readers start early and finish
/// together, large enough that each part's interning still pays.
const BLOCK: usize = 24;

pub(super) struct DirSource {
    /// What every reader thread shares.
    dir: Arc<Dir>,
    /// Where [`open_in`] builds each file name.
    name_scratch: Vec<u8>,
}

/// The path entry being read.
struct Dir {
    root: PathBuf,
    /// Files are opened relative to this. When the directory could not be
    /// opened, the listing reports why and reads open full paths.
    handle: io::Result<DirHandle>,
    /// What a short read of a file in it means.
    short_read: ShortRead,
}

impl DirSource {
    pub(super) fn new(root: &Path) -> Self {
        let handle = DirHandle::open(root);
        let short_read = match &handle {
            Ok(handle) if handle.short_reads_end_files() => ShortRead::End,
            _ => ShortRead::Continue,
        };
        DirSource {
            dir: Arc::new(Dir {
                root: root.to_path_buf(),
                handle,
                short_read,
            }),
            name_scratch: Vec::new(),
        }
    }

    /// Another reader of the same directory, for another thread.
    fn another_reader(&self) -> Self {
        DirSource {
            dir: Arc::clone(&self.dir),
            name_scratch: Vec::new(),
        }
    }

    /// Reads the file `parts` names inside the path entry.
    fn read_path(&mut self, parts: &[&str], extent: Extent, buf: &mut ReadBuf) -> Read {
        buf.clear();
        let dir = &*self.dir;
        let opened = match &dir.handle {
            Ok(handle) => open_in(handle, parts, &mut self.name_scratch),
            Err(_) => File::open(
                parts
                    .iter()
                    .fold(dir.root.clone(), |path, part| path.join(part)),
            ),
        };
        let file = match opened {
            Ok(file) => file,
            Err(err) if is_missing(&err) => return Read::Absent,
            Err(err) => return Read::Failed(err.to_string()),
        };
        match extent.fill(buf, file, dir.short_read) {
            Ok(()) => Read::Found,
            // Opening a directory succeeds on Unix; reading it says EISDIR.
            Err(err) if is_missing(&err) => Read::Absent,
            Err(err) => Read::Failed(err.to_string()),
        }
    }
}

impl Source for DirSource {
    fn list_and_read(
        &mut self,
        classifier: &Classifier,
        builder: &mut IndexBuilder,
    ) -> Vec<Candidate> {
        let dir = Arc::clone(&self.dir);
        let handle = match &dir.handle {
            Ok(handle) => handle,
            Err(err) => {
                if let Some(message) = listing_diagnostic(err) {
                    builder.entry_diagnostic(message);
                }
                return Vec::new();
            }
        };
        let mut diagnostics = Vec::new();
        let done = process_while_listing(
            BLOCK,
            |found| {
                let listed = handle.for_each_entry(|file_name, is_dir| {
                    match classify(&dir.root, classifier, file_name, is_dir) {
                        Ok(Some(candidate)) => found(candidate),
                        Ok(None) => {}
                        Err(message) => diagnostics.push(message),
                    }
                });
                if let Err(err) = listed {
                    diagnostics.extend(listing_diagnostic(&err));
                }
            },
            || (self.another_reader(), ReadBuf::default()),
            |(reader, buf), candidates| {
                let mut part = IndexBuilder::default();
                read_sequentially(reader, candidates, buf, &mut part);
                part
            },
        );
        for message in diagnostics {
            builder.entry_diagnostic(message);
        }
        let mut candidates = Vec::with_capacity(done.iter().map(|d| d.items.len()).sum());
        for block in done {
            builder.append(block.result);
            candidates.extend(block.items);
        }
        candidates
    }

    fn read(&mut self, child: &str, file: &str, extent: Extent, buf: &mut ReadBuf) -> Read {
        self.read_path(&[child, file], extent, buf)
    }

    fn read_child(&mut self, child: &str, extent: Extent, buf: &mut ReadBuf) -> Read {
        self.read_path(&[child], extent, buf)
    }
}

/// The candidate one listed entry makes, if any; `Err` is a diagnostic.
fn classify(
    root: &Path,
    classifier: &Classifier,
    file_name: &std::ffi::OsStr,
    is_dir: Option<bool>,
) -> Result<Option<Candidate>, String> {
    let Some(name) = file_name.to_str() else {
        return Err(format!(
            "skipped a child whose name is not UTF-8: {file_name:?}"
        ));
    };
    if !may_hold_metadata(name.as_bytes()) {
        return Ok(None);
    }
    // Only symlinks (and file systems that do not report a type) cost a
    // stat.
    let is_dir = is_dir.unwrap_or_else(|| root.join(name).is_dir());
    Ok(classifier.classify(Child {
        name: name.to_owned(),
        is_dir,
    }))
}

/// A missing path entry is simply empty; any other failure to list it is
/// worth a diagnostic.
fn listing_diagnostic(err: &io::Error) -> Option<String> {
    (!is_missing(err)).then(|| format!("cannot list the path entry: {err}"))
}

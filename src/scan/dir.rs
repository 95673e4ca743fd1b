//! A directory path entry, read while it is being listed.
//!
//! Candidates are read in blocks as the listing finds them (see
//! [`crate::platform::pipeline`]). Each block becomes its own part of the index; the
//! parts are joined in listing order, and the scan then puts the
//! distributions in discovery order.

use super::{
    is_missing, may_hold_metadata, read_sequentially, Candidate, Child, Classifier, Extent, Read,
    Source,
};
use crate::index::IndexBuilder;
use crate::platform::pipeline::{process_while_listing, Parallelism};
use crate::platform::read_buf::{ReadBuf, ShortRead};
use crate::platform::{self, DirHandle, FileKind, FileSystem};

/// Candidates per block on a local file system: small enough that readers
/// start early and finish together, large enough that each part's
/// interning still pays. (A latency-bound one takes smaller blocks.)
const BLOCK: usize = 24;

pub(super) struct DirSource<'h> {
    /// The path entry, opened once: everything is read relative to it.
    dir: &'h DirHandle,
    /// What it is stored on.
    file_system: FileSystem,
    /// What a short read of a file in it means.
    short_read: ShortRead,
    /// Where [`DirHandle::open_file`] builds each file name.
    name_scratch: Vec<u8>,
}

impl<'h> DirSource<'h> {
    pub(super) fn new(dir: &'h DirHandle) -> Self {
        let file_system = dir.file_system();
        let short_read = if file_system.short_reads_end_files() {
            ShortRead::End
        } else {
            ShortRead::Continue
        };
        DirSource {
            dir,
            file_system,
            short_read,
            name_scratch: Vec::new(),
        }
    }

    /// Another reader of the same directory, for another thread.
    fn another_reader(&self) -> Self {
        DirSource {
            dir: self.dir,
            file_system: self.file_system,
            short_read: self.short_read,
            name_scratch: Vec::new(),
        }
    }

    /// Reads the file `parts` names inside the path entry, if it is a
    /// regular file: anything else could block or never end.
    fn read_path(&mut self, parts: &[&str], extent: Extent, buf: &mut ReadBuf) -> Read {
        buf.clear();
        let (file, info) = match self.dir.open_file(parts, &mut self.name_scratch) {
            Ok(opened) => opened,
            Err(err) if is_missing(&err) => return Read::Absent,
            Err(err) => return Read::Failed(err.to_string()),
        };
        match info.kind {
            FileKind::Regular => {}
            // importlib's read_text ignores IsADirectoryError.
            FileKind::Dir => return Read::Absent,
            kind => return Read::Refused(format!("it is {}", platform::kind_name(kind))),
        }
        match extent.fill(buf, file, self.short_read) {
            Ok(()) => Read::Found,
            Err(err) => Read::Failed(err.to_string()),
        }
    }
}

impl Source for DirSource<'_> {
    fn list_and_read(
        &mut self,
        classifier: &Classifier,
        builder: &mut IndexBuilder,
    ) -> Vec<Candidate> {
        let dir = self.dir;
        let mut notes = Notes::default();
        let done = process_while_listing(
            Parallelism::for_file_system(self.file_system, BLOCK),
            |found| {
                let listed = dir.for_each_entry(|file_name, is_dir| {
                    if let Some(candidate) =
                        classify(dir, classifier, file_name, is_dir, &mut notes)
                    {
                        found(candidate)
                    }
                });
                if let Err(err) = listed {
                    if !is_missing(&err) {
                        notes
                            .failures
                            .push(format!("cannot list the path entry: {err}"));
                    }
                }
            },
            || (self.another_reader(), ReadBuf::default()),
            |(reader, buf), candidates| {
                let mut part = IndexBuilder::default();
                read_sequentially(reader, candidates, buf, &mut part);
                part
            },
        );
        for message in notes.failures {
            builder.entry_failure(message);
        }
        for message in notes.diagnostics {
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

/// What the listing found to say about the path entry.
#[derive(Default)]
struct Notes {
    /// Reads that failed and may not fail next time: the index is
    /// incomplete.
    failures: Vec<String>,
    /// Facts about the tree itself.
    diagnostics: Vec<String>,
}

/// The candidate one listed entry makes, if any.
fn classify(
    dir: &DirHandle,
    classifier: &Classifier,
    file_name: &std::ffi::OsStr,
    is_dir: Option<bool>,
    notes: &mut Notes,
) -> Option<Candidate> {
    let Some(name) = file_name.to_str() else {
        notes.diagnostics.push(format!(
            "skipped a child whose name is not UTF-8: {file_name:?}"
        ));
        return None;
    };
    if !may_hold_metadata(name.as_bytes()) {
        return None;
    }
    // Only symlinks (and file systems that do not report a type) cost a
    // stat. A dangling symlink is not a directory, as for os.path.isdir.
    let is_dir = is_dir.unwrap_or_else(|| match dir.stat_child(file_name) {
        Ok(info) => info.is_dir(),
        Err(err) if is_missing(&err) || platform::is_symlink_loop(&err) => false,
        Err(err) => {
            notes.failures.push(format!("cannot stat {name}: {err}"));
            false
        }
    });
    classifier.classify(Child {
        name: name.to_owned(),
        is_dir,
    })
}

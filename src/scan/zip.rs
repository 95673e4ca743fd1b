//! A zip file on `sys.path`: a `.pyz` zipapp or a zipped `.egg`.
//!
//! importlib lists it with `zipfile.Path`: the children are the distinct
//! first components of the member names, in central-directory order, and a
//! metadata file is found only under its exact member name.

use std::fs::File;

use ::zip::ZipArchive;

use super::{read_sequentially, Candidate, Child, Classifier, Extent, Read, Source};
use crate::index::IndexBuilder;
use crate::platform::read_buf::{ReadBuf, ShortRead};

pub(super) struct ZipSource {
    archive: ZipArchive<File>,
}

/// Why a file on `sys.path` was not read as a zip.
pub(crate) enum NotAZip {
    /// It is not a zip archive: it holds nothing, as for importlib.
    Invalid,
    /// Reading it failed.
    Unreadable(std::io::Error),
}

impl ZipSource {
    /// Reads the archive through `file`, the path entry opened once, so
    /// that what is read is what the key describes.
    pub(super) fn open(file: &File) -> Result<Self, NotAZip> {
        let file = file.try_clone().map_err(NotAZip::Unreadable)?;
        match ZipArchive::new(file) {
            Ok(archive) => Ok(ZipSource { archive }),
            Err(::zip::result::ZipError::Io(err)) => Err(NotAZip::Unreadable(err)),
            Err(_) => Err(NotAZip::Invalid),
        }
    }

    /// The distinct first components of the member names, in
    /// central-directory order; diagnostics for names that cannot be read.
    fn children(&mut self, diagnostics: &mut Vec<String>) -> Vec<Child> {
        let mut children: Vec<Child> = Vec::new();
        // Each first component's place in `children`.
        let mut seen: rustc_hash::FxHashMap<String, usize> = Default::default();
        for name in self.archive.file_names() {
            let name = match name {
                Ok(name) => name,
                Err(err) => {
                    diagnostics.push(format!(
                        "skipped a zip member with an unreadable name: {err}"
                    ));
                    continue;
                }
            };
            let (first, rest) = match name.split_once('/') {
                Some((first, rest)) => (first, Some(rest)),
                None => (&*name, None),
            };
            match seen.get(first) {
                // A first component seen as a file and later as a prefix
                // is a directory for zipfile.Path.
                Some(&at) => children[at].is_dir |= rest.is_some(),
                None => {
                    seen.insert(first.to_owned(), children.len());
                    children.push(Child {
                        name: first.to_owned(),
                        is_dir: rest.is_some(),
                    });
                }
            }
        }
        children
    }
}

impl Source for ZipSource {
    /// One archive handle, one reader: the listing is complete before any
    /// member is read, and members are read in order.
    fn list_and_read(
        &mut self,
        classifier: &Classifier,
        builder: &mut IndexBuilder,
    ) -> Vec<Candidate> {
        let mut diagnostics = Vec::new();
        let children = self.children(&mut diagnostics);
        for message in diagnostics {
            builder.entry_diagnostic(message);
        }
        let candidates: Vec<Candidate> = children
            .into_iter()
            .filter_map(|child| classifier.classify(child))
            .collect();
        read_sequentially(self, &candidates, &mut ReadBuf::default(), builder);
        candidates
    }

    fn read(&mut self, child: &str, file: &str, extent: Extent, buf: &mut ReadBuf) -> Read {
        buf.clear();
        let member = format!("{child}/{file}");
        let entry = match self.archive.by_name(&member) {
            Ok(entry) => entry,
            Err(::zip::result::ZipError::FileNotFound) => return Read::Absent,
            Err(::zip::result::ZipError::Io(err)) => {
                return Read::Failed(format!("{member}: {err}"))
            }
            // A member that does not decode is a fact about the archive.
            Err(err) => return Read::Refused(format!("{member}: {err}")),
        };
        if entry.is_dir() {
            return Read::Absent;
        }
        // A decompressing reader may return less than asked before the end.
        match extent.fill(buf, entry, ShortRead::Continue) {
            Ok(_) => Read::Found,
            Err(err) => Read::Failed(format!("{member}: {err}")),
        }
    }

    /// `str(zipfile.Path)` of a directory ends in `/`.
    fn dir_paths_end_in_slash(&self) -> bool {
        true
    }

    /// `zipfile.Path.joinpath('')` names a directory, so importlib never
    /// reads single-file metadata out of a zip.
    fn read_child(&mut self, _child: &str, _extent: Extent, buf: &mut ReadBuf) -> Read {
        buf.clear();
        Read::Absent
    }
}

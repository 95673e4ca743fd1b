//! A directory path entry.

use std::fs::File;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use super::{is_missing, may_hold_metadata, Child, Extent, Read, Source};
use crate::metadata::header_block_complete;

/// How much to read at a time; most METADATA header blocks fit in one read.
const CHUNK: usize = 8 * 1024;

pub(super) struct DirSource {
    root: PathBuf,
}

impl DirSource {
    pub(super) fn new(root: &Path) -> Self {
        DirSource {
            root: root.to_path_buf(),
        }
    }

    fn read_path(&self, path: &Path, extent: Extent, buf: &mut Vec<u8>) -> Read {
        buf.clear();
        let file = match File::open(path) {
            Ok(file) => file,
            Err(err) if is_missing(&err) => return Read::Absent,
            Err(err) => return Read::Failed(err.to_string()),
        };
        match read_into(file, extent, buf) {
            Ok(()) => Read::Found,
            // Opening a directory succeeds on Unix; reading it says EISDIR.
            Err(err) if is_missing(&err) => Read::Absent,
            Err(err) => Read::Failed(err.to_string()),
        }
    }
}

/// Reads all of `file`, or for [`Extent::Headers`] only until the header
/// block is complete, without a `stat` for a size hint.
fn read_into(mut file: File, extent: Extent, buf: &mut Vec<u8>) -> io::Result<()> {
    loop {
        let filled = buf.len();
        buf.resize(filled + CHUNK, 0);
        let n = loop {
            match file.read(&mut buf[filled..]) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let n = n.inspect_err(|_| buf.truncate(filled))?;
        buf.truncate(filled + n);
        let at_eof = n == 0;
        if at_eof || (extent == Extent::Headers && header_block_complete(buf, false)) {
            return Ok(());
        }
    }
}

impl Source for DirSource {
    fn children(&mut self, diagnostics: &mut Vec<String>) -> Vec<Child> {
        let mut children = Vec::new();
        let walk = WalkDir::new(&self.root)
            .min_depth(1)
            .max_depth(1)
            .follow_links(false);
        for entry in walk {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    if !err.io_error().is_some_and(is_missing) {
                        diagnostics.push(format!("cannot list the path entry: {err}"));
                    }
                    continue;
                }
            };
            let Some(name) = entry.file_name().to_str() else {
                diagnostics.push(format!(
                    "skipped a child whose name is not UTF-8: {:?}",
                    entry.file_name()
                ));
                continue;
            };
            if !may_hold_metadata(name) {
                continue;
            }
            let is_dir = if entry.file_type().is_symlink() {
                entry.path().is_dir()
            } else {
                entry.file_type().is_dir()
            };
            children.push(Child {
                name: name.to_owned(),
                is_dir,
            });
        }
        children
    }

    fn read(&mut self, child: &str, file: &str, extent: Extent, buf: &mut Vec<u8>) -> Read {
        let path = self.root.join(child).join(file);
        self.read_path(&path, extent, buf)
    }

    fn read_child(&mut self, child: &str, extent: Extent, buf: &mut Vec<u8>) -> Read {
        let path = self.root.join(child);
        self.read_path(&path, extent, buf)
    }
}

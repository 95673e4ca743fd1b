//! A directory path entry.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::{
    is_missing, may_hold_metadata, read_sequentially, Candidate, Child, Extent, Read, Source,
};
use crate::index::IndexBuilder;
use crate::platform::{open_in, DirHandle};
use crate::read_buf::{ReadBuf, ShortRead};

/// Below this many distributions a second thread costs more than it saves.
const DISTS_PER_THREAD: usize = 48;

/// At most this many reader threads: beyond it the kernel's directory and
/// page-cache locks, not the CPUs, are the limit.
const MAX_THREADS: usize = 4;

/// Candidates per unit of parallel work: small enough that the threads
/// finish together, large enough that each part's interning still pays.
const BLOCK: usize = 24;

/// How many threads to read `count` distributions with.
fn reader_threads(count: usize) -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cpus = *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    cpus.min(MAX_THREADS).min(count / DISTS_PER_THREAD).max(1)
}

pub(super) struct DirSource {
    /// What every reader thread shares.
    dir: Arc<Dir>,
    /// Where [`open_in`] builds each file name.
    name_scratch: Vec<u8>,
}

/// The path entry being read.
struct Dir {
    root: PathBuf,
    /// Files are opened relative to this; `None` when the directory could
    /// not be opened, in which case every read fails like the listing did.
    handle: Option<DirHandle>,
    /// What a short read of a file in it means.
    short_read: ShortRead,
}

impl DirSource {
    pub(super) fn new(root: &Path) -> Self {
        let handle = DirHandle::open(root).ok();
        let short_read = match &handle {
            Some(handle) if handle.short_reads_end_files() => ShortRead::End,
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
            Some(handle) => open_in(handle, parts, &mut self.name_scratch),
            None => File::open(
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

/// Reads blocks, taking the next unclaimed one each time, until none is
/// left; returns each block's part of the index with the block's number.
fn read_blocks(
    source: &mut DirSource,
    blocks: &[&[Candidate]],
    next: &AtomicUsize,
) -> Vec<(usize, IndexBuilder)> {
    let mut parts = Vec::new();
    loop {
        let block = next.fetch_add(1, Ordering::Relaxed);
        let Some(candidates) = blocks.get(block) else {
            return parts;
        };
        let mut part = IndexBuilder::default();
        read_sequentially(source, candidates, &mut part);
        parts.push((block, part));
    }
}

impl Source for DirSource {
    fn children(&mut self, diagnostics: &mut Vec<String>) -> Vec<Child> {
        // std's read_dir rather than walkdir: walkdir opens every child
        // directory it yields, even at max_depth(1), which made listing a
        // 400-distribution site-packages ten times slower (3.3 ms vs 0.35 ms).
        let entries = match std::fs::read_dir(&self.dir.root) {
            Ok(entries) => entries,
            Err(err) if is_missing(&err) => return Vec::new(),
            Err(err) => {
                diagnostics.push(format!("cannot list the path entry: {err}"));
                return Vec::new();
            }
        };
        let mut children = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    diagnostics.push(format!("cannot list the path entry: {err}"));
                    continue;
                }
            };
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                diagnostics.push(format!(
                    "skipped a child whose name is not UTF-8: {file_name:?}"
                ));
                continue;
            };
            if !may_hold_metadata(name) {
                continue;
            }
            // d_type from the listing; only symlinks (and file systems that
            // do not report a type) cost a stat.
            let is_dir = match entry.file_type() {
                Ok(kind) if !kind.is_symlink() => kind.is_dir(),
                _ => entry.path().is_dir(),
            };
            children.push(Child {
                name: name.to_owned(),
                is_dir,
            });
        }
        children
    }

    /// Reads on several threads: the cold scan is a few thousand small
    /// opens and reads, and the kernel serves them in parallel.
    ///
    /// Threads take blocks of candidates from a shared counter, so one that
    /// starts late or is descheduled simply takes fewer. Each block becomes
    /// its own part of the index, so parsing and copying into the arena run
    /// in parallel too; the parts are appended in block order.
    fn read_distributions(&mut self, candidates: &[Candidate], builder: &mut IndexBuilder) {
        let threads = reader_threads(candidates.len());
        if threads < 2 {
            return read_sequentially(self, candidates, builder);
        }
        let blocks: Vec<&[Candidate]> = candidates.chunks(BLOCK).collect();
        let next = AtomicUsize::new(0);
        let mut parts = std::thread::scope(|scope| {
            let workers: Vec<_> = (1..threads)
                .map(|_| {
                    let (blocks, next) = (&blocks, &next);
                    let mut reader = self.another_reader();
                    scope.spawn(move || read_blocks(&mut reader, blocks, next))
                })
                .collect();
            let mut parts = read_blocks(self, &blocks, &next);
            for worker in workers {
                parts.extend(worker.join().expect("a scan thread panicked"));
            }
            parts
        });
        parts.sort_unstable_by_key(|&(block, _)| block);
        for (_, part) in parts {
            builder.append(part);
        }
    }

    fn read(&mut self, child: &str, file: &str, extent: Extent, buf: &mut ReadBuf) -> Read {
        self.read_path(&[child, file], extent, buf)
    }

    fn read_child(&mut self, child: &str, extent: Extent, buf: &mut ReadBuf) -> Read {
        self.read_path(&[child], extent, buf)
    }
}

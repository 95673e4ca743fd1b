//! The buffer files are read into: reused from file to file, and aligned.
//!
//! Alignment is about speed, not correctness. Linux copies file data to
//! user space with `rep movsb`, and on AMD Zen CPUs that copy runs several
//! times slower when the destination lies 1 to 31 bytes past a 4 KiB
//! boundary of the source. Page-cache pages start on 4 KiB boundaries, so
//! the slow case is simply a buffer whose address is 1 to 31 bytes past a
//! page boundary — which is exactly where glibc puts large (mmap-ed)
//! allocations, 16 bytes in. Measured on the development machine (AMD EPYC):
//! reading a 120 KB index took 61 µs into such a buffer and 10 to 14 µs
//! into an aligned one; a 4 KiB METADATA read took 4.1 µs instead of
//! 2.7 µs. Starting the contents on a 64-byte boundary rules it out.

use std::io::{self, Read};

/// Where the contents start, relative to a 4 KiB boundary: a multiple of
/// this, so never 1 to 31 bytes past one.
const ALIGN: usize = 64;

/// A growable byte buffer whose contents start `ALIGN`-aligned.
///
/// Its storage past the current contents stays initialized between fills,
/// so a refill is a plain `read` with no memset first.
#[derive(Default)]
pub(crate) struct ReadBuf {
    storage: Vec<u8>,
    /// Offset of the aligned start in `storage`.
    start: usize,
    len: usize,
}

impl std::fmt::Debug for ReadBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadBuf")
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl ReadBuf {
    /// What the last fill read.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    /// Empties the buffer, keeping its storage.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// How many bytes the buffer can hold without growing.
    pub(crate) fn capacity(&self) -> usize {
        self.storage.len().saturating_sub(self.start)
    }

    /// Makes room for `additional` more bytes after the contents.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let needed = self.len + additional;
        if self.capacity() >= needed {
            return;
        }
        let mut storage = vec![0; needed.max(2 * self.capacity()) + ALIGN];
        let start = storage.as_ptr().align_offset(ALIGN).min(ALIGN);
        storage[start..start + self.len].copy_from_slice(self.bytes());
        self.storage = storage;
        self.start = start;
    }

    /// Replaces the contents with bytes from `reader`, reading as `plan`
    /// says until `enough(contents, at_eof)` does.
    pub(crate) fn fill(
        &mut self,
        mut reader: impl Read,
        plan: ReadPlan,
        mut enough: impl FnMut(&[u8], bool) -> bool,
    ) -> io::Result<()> {
        const MIN_ROOM: usize = 4 * 1024;
        self.len = 0;
        let mut chunk = plan.first;
        loop {
            self.reserve(chunk.unwrap_or(MIN_ROOM));
            let room = self.capacity() - self.len;
            let want = chunk.map_or(room, |chunk| chunk.min(room));
            let at = self.start + self.len;
            let n = match reader.read(&mut self.storage[at..at + want]) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                other => other?,
            };
            self.len += n;
            let at_eof = n == 0 || (n < want && plan.short_read.is_end());
            if enough(self.bytes(), at_eof) {
                return Ok(());
            }
            chunk = plan.then;
        }
    }

    /// Replaces the contents with everything `reader` holds.
    pub(crate) fn fill_to_end(
        &mut self,
        reader: impl Read,
        short_read: ShortRead,
    ) -> io::Result<()> {
        let plan = ReadPlan {
            first: None,
            then: None,
            short_read,
        };
        self.fill(reader, plan, |_, at_eof| at_eof)
    }
}

/// How [`ReadBuf::fill`] asks a reader for bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadPlan {
    /// Bytes asked for by the first read; `None` asks for all the room
    /// there is.
    pub first: Option<usize>,
    /// Bytes asked for by each later read, likewise.
    pub then: Option<usize>,
    /// What a read that returns fewer bytes than asked for means.
    pub short_read: ShortRead,
}

/// Whether a read that returns fewer bytes than asked for has reached the
/// end. Believing it saves the last read, the one that returns 0: one
/// system call in three for a small file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ShortRead {
    /// Never: read on until a read returns 0. Pipes, FUSE and network file
    /// systems, and decompressing readers may return less before the end.
    Continue,
    /// Always: a regular file on a file system that serves reads from the
    /// page cache up to the file's size (see
    /// [`crate::platform::FileSystem::short_reads_end_files`]).
    End,
}

impl ShortRead {
    fn is_end(self) -> bool {
        match self {
            ShortRead::Continue => false,
            ShortRead::End => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(chunk: Option<usize>) -> ReadPlan {
        ReadPlan {
            first: chunk,
            then: chunk,
            short_read: ShortRead::Continue,
        }
    }

    /// Hands out at most `limit` bytes per read, as a pipe or a FUSE file
    /// system may.
    struct Dribble<'a> {
        rest: &'a [u8],
        limit: usize,
        reads: usize,
    }

    impl Read for Dribble<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            let n = self.rest.len().min(self.limit).min(out.len());
            out[..n].copy_from_slice(&self.rest[..n]);
            self.rest = &self.rest[n..];
            Ok(n)
        }
    }

    #[test]
    fn short_reads_end_the_fill_only_when_the_plan_says_so() {
        let text = b"[console_scripts]\nx = y:z\n".repeat(10);
        let mut buf = ReadBuf::default();
        let mut reader = Dribble {
            rest: &text,
            limit: 7,
            reads: 0,
        };
        buf.fill_to_end(&mut reader, ShortRead::Continue).unwrap();
        assert_eq!(buf.bytes(), &text[..]);
        assert_eq!(reader.reads, text.len().div_ceil(7) + 1);

        let mut reader = Dribble {
            rest: &text,
            limit: usize::MAX,
            reads: 0,
        };
        buf.fill_to_end(&mut reader, ShortRead::End).unwrap();
        assert_eq!(buf.bytes(), &text[..]);
        assert_eq!(reader.reads, 1, "a short read is the end");
    }

    #[test]
    fn later_reads_use_the_later_chunk() {
        let text = vec![1u8; 10_000];
        let mut buf = ReadBuf::default();
        let mut reader = Dribble {
            rest: &text,
            limit: usize::MAX,
            reads: 0,
        };
        let plan = ReadPlan {
            first: Some(100),
            then: Some(4000),
            short_read: ShortRead::End,
        };
        buf.fill(&mut reader, plan, |bytes, eof| eof || bytes.len() >= 4100)
            .unwrap();
        assert_eq!(buf.bytes().len(), 4100);
        assert_eq!(reader.reads, 2);
    }

    #[test]
    fn contents_start_aligned_and_survive_growth() {
        let text: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let mut buf = ReadBuf::default();
        buf.fill(&text[..], chunks(Some(1000)), |_, eof| eof)
            .unwrap();
        assert_eq!(buf.bytes(), &text[..]);
        assert_eq!(buf.bytes().as_ptr() as usize % ALIGN, 0);
        buf.fill_to_end(&b"short"[..], ShortRead::Continue).unwrap();
        assert_eq!(buf.bytes(), b"short");
        assert_eq!(buf.bytes().as_ptr() as usize % ALIGN, 0);
        buf.clear();
        assert!(buf.bytes().is_empty());
    }

    #[test]
    fn stops_when_enough_is_read() {
        let mut buf = ReadBuf::default();
        let source = b"Name: a\n\nlong description".repeat(1000);
        buf.fill(&source[..], chunks(Some(16)), |bytes, eof| {
            eof || bytes.windows(2).any(|w| w == b"\n\n")
        })
        .unwrap();
        assert_eq!(buf.bytes(), &source[..16]);
    }

    #[test]
    fn reserve_makes_room_once() {
        let mut buf = ReadBuf::default();
        buf.reserve(100_000);
        let capacity = buf.capacity();
        assert!(capacity >= 100_000);
        buf.fill_to_end(&vec![7u8; 90_000][..], ShortRead::Continue)
            .unwrap();
        assert_eq!(buf.capacity(), capacity);
        assert_eq!(buf.bytes().len(), 90_000);
    }
}

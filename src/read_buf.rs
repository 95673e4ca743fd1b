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

    /// Replaces the contents with bytes from `reader`, reading until
    /// `enough(contents, at_eof)` says so. Each read asks for `chunk`
    /// bytes, or for all the room there is when `chunk` is `None`.
    pub(crate) fn fill(
        &mut self,
        mut reader: impl Read,
        chunk: Option<usize>,
        enough: impl Fn(&[u8], bool) -> bool,
    ) -> io::Result<()> {
        const MIN_ROOM: usize = 4 * 1024;
        self.len = 0;
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
            if enough(self.bytes(), n == 0) {
                return Ok(());
            }
        }
    }

    /// Replaces the contents with everything `reader` holds.
    pub(crate) fn fill_to_end(&mut self, reader: impl Read) -> io::Result<()> {
        self.fill(reader, None, |_, at_eof| at_eof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_start_aligned_and_survive_growth() {
        let text: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let mut buf = ReadBuf::default();
        buf.fill(&text[..], Some(1000), |_, eof| eof).unwrap();
        assert_eq!(buf.bytes(), &text[..]);
        assert_eq!(buf.bytes().as_ptr() as usize % ALIGN, 0);
        buf.fill_to_end(&b"short"[..]).unwrap();
        assert_eq!(buf.bytes(), b"short");
        assert_eq!(buf.bytes().as_ptr() as usize % ALIGN, 0);
        buf.clear();
        assert!(buf.bytes().is_empty());
    }

    #[test]
    fn stops_when_enough_is_read() {
        let mut buf = ReadBuf::default();
        let source = b"Name: a\n\nlong description".repeat(1000);
        buf.fill(&source[..], Some(16), |bytes, eof| {
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
        buf.fill_to_end(&vec![7u8; 90_000][..]).unwrap();
        assert_eq!(buf.capacity(), capacity);
        assert_eq!(buf.bytes().len(), 90_000);
    }
}

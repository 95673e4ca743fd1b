//! The cache file format. See `docs/format.md` for the byte layout.
//!
//! The header is fixed-width little-endian fields written by hand, so that
//! `dump` can show it even when the payload is damaged. Everything after
//! the checksum field is covered by the checksum, so truncation or a
//! flipped bit anywhere is caught before anything is trusted.

use crate::freshness::Key;
use crate::index::{IndexData, IndexDataRef};

/// The first eight bytes of every index file.
pub const MAGIC: [u8; 8] = *b"EPCACHE\0";

/// The format version. Bumped on any change to the layout, the payload
/// codec, or the meaning of a field; it is also the name of the versioned
/// cache subdirectory (`v2`). Version 2 dropped the device number from the
/// key, so that machines sharing a home directory share index files.
pub const FORMAT_VERSION: u32 = 2;

/// The index was published inside the settle window and must be verified
/// against its fingerprint before it is trusted.
pub(crate) const FLAG_PROVISIONAL: u32 = 1;

const FIXED_LEN: usize = 76;
/// The checksum is stored at `8..16` and covers everything from 16 on.
const CHECKSUM_END: usize = 16;

/// The fixed part of a cache file, as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// A cache file split into its parts. Borrowed from the file's bytes.
pub(crate) struct Parts<'a> {
    pub header: Header,
    pub path: &'a [u8],
    pub fingerprint: &'a [u8],
    pub payload: &'a [u8],
    pub checksum_ok: bool,
}

/// Why a file is not a usable cache file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// Shorter than its header says.
    Truncated,
    /// Longer than its header says.
    TrailingBytes,
    /// Not an epcache index file at all.
    BadMagic,
    /// Written by another format version.
    Version(u32),
    /// The checksum does not match.
    Checksum,
    /// The payload did not decode.
    Payload(String),
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatError::Truncated => f.write_str("truncated"),
            FormatError::TrailingBytes => f.write_str("has trailing bytes"),
            FormatError::BadMagic => f.write_str("not an epcache index file"),
            FormatError::Version(v) => write!(f, "format version {v}, expected {FORMAT_VERSION}"),
            FormatError::Checksum => f.write_str("checksum mismatch"),
            FormatError::Payload(why) => write!(f, "payload does not decode: {why}"),
        }
    }
}

fn checksum(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The codec's configuration: the default, with a preallocation limit that
/// admits the largest index epcache builds. The limit is what a hostile
/// length prefix can make a decode reserve before it fails on the missing
/// bytes; the file is also checksummed and at most
/// [`MAX_INDEX_FILE`](crate::cache::MAX_INDEX_FILE) long.
const CODEC: wincode::config::Configuration<true, { 1 << 30 }> =
    wincode::config::Configuration::default().with_preallocation_size_limit::<{ 1 << 30 }>();

/// An index too large for one cache file.
#[derive(Debug)]
pub(crate) struct TooLarge(String);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the index is too large to cache ({})", self.0)
    }
}

/// Encodes a complete cache file, or says why it cannot be one.
pub(crate) fn encode(
    header: &Header,
    path: &[u8],
    fingerprint: &[u8],
    data: &IndexData,
) -> Result<Vec<u8>, TooLarge> {
    let payload = wincode::config::serialize(data, CODEC).map_err(|e| TooLarge(e.to_string()))?;
    let total = FIXED_LEN + path.len() + fingerprint.len() + payload.len();
    let fits = |part: &[u8]| u32::try_from(part.len()).is_ok();
    if ![path, fingerprint, &payload].into_iter().all(fits)
        || total as u64 > crate::cache::MAX_INDEX_FILE
    {
        return Err(TooLarge(format!("{total} bytes")));
    }
    Ok(frame(header, path, fingerprint, &payload))
}

/// Writes the header and sections around an already encoded payload.
fn frame(header: &Header, path: &[u8], fingerprint: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FIXED_LEN + path.len() + fingerprint.len() + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&header.version.to_le_bytes());
    out.extend_from_slice(&header.flags.to_le_bytes());
    out.extend_from_slice(&header.written_at_ns.to_le_bytes());
    let key = &header.key;
    out.extend_from_slice(&key.mtime_ns.to_le_bytes());
    out.extend_from_slice(&key.ctime_ns.to_le_bytes());
    out.extend_from_slice(&key.inode.to_le_bytes());
    out.extend_from_slice(&key.size.to_le_bytes());
    for part in [path, fingerprint, payload] {
        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
    }
    debug_assert_eq!(out.len(), FIXED_LEN);
    out.extend_from_slice(path);
    out.extend_from_slice(fingerprint);
    out.extend_from_slice(payload);
    let sum = checksum(&out[CHECKSUM_END..]);
    out[8..CHECKSUM_END].copy_from_slice(&sum.to_le_bytes());
    out
}

/// A little-endian field reader over a byte slice.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self.at.checked_add(n).ok_or(FormatError::Truncated)?;
        let slice = self.bytes.get(self.at..end).ok_or(FormatError::Truncated)?;
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, FormatError> {
        self.array().map(u64::from_le_bytes)
    }

    fn i64(&mut self) -> Result<i64, FormatError> {
        self.array().map(i64::from_le_bytes)
    }
}

/// Splits a file into its parts and checks its framing and checksum.
/// A bad checksum is reported in [`Parts::checksum_ok`] rather than as an
/// error so that `dump` can still show the header.
pub(crate) fn split(bytes: &[u8]) -> Result<Parts<'_>, FormatError> {
    let mut f = Fields { bytes, at: 0 };
    if f.array::<8>().map_err(|_| FormatError::BadMagic)? != MAGIC {
        return Err(FormatError::BadMagic);
    }
    let stored_sum = f.u64()?;
    let version = f.u32()?;
    if version != FORMAT_VERSION {
        return Err(FormatError::Version(version));
    }
    let flags = f.u32()?;
    let written_at_ns = f.i64()?;
    let key = Key {
        mtime_ns: f.i64()?,
        ctime_ns: f.i64()?,
        inode: f.u64()?,
        size: f.u64()?,
    };
    let lens = [f.u32()?, f.u32()?, f.u32()?];
    let path = f.take(lens[0] as usize)?;
    let fingerprint = f.take(lens[1] as usize)?;
    let payload = f.take(lens[2] as usize)?;
    if f.at != bytes.len() {
        return Err(FormatError::TrailingBytes);
    }
    Ok(Parts {
        header: Header {
            version,
            flags,
            written_at_ns,
            key,
        },
        path,
        fingerprint,
        payload,
        checksum_ok: checksum(&bytes[CHECKSUM_END..]) == stored_sum,
    })
}

/// A cache file taken apart for inspection (the `dump` example).
#[derive(Debug)]
pub struct CacheFile {
    /// The fixed header.
    pub header: Header,
    /// The absolute path entry the file claims to describe.
    pub path_entry: std::path::PathBuf,
    /// Size of the provisional fingerprint section in bytes (0 when none).
    pub fingerprint_len: usize,
    /// Size of the encoded index in bytes.
    pub payload_len: usize,
    /// Whether the checksum over header and body matches.
    pub checksum_ok: bool,
    /// The decoded index, or why it did not decode.
    pub index: Result<crate::Index, FormatError>,
}

/// Takes a cache file apart without trusting it: the framing must be
/// sound, but a bad checksum or payload is reported, not fatal.
pub fn inspect(bytes: &[u8]) -> Result<CacheFile, FormatError> {
    let parts = split(bytes)?;
    let path_entry = crate::platform::path_from_bytes(parts.path);
    let index = decode_payload(parts.payload)
        .map(|data| crate::Index::from_parts(path_entry.clone(), data));
    Ok(CacheFile {
        header: parts.header,
        path_entry,
        fingerprint_len: parts.fingerprint.len(),
        payload_len: parts.payload.len(),
        checksum_ok: parts.checksum_ok,
        index,
    })
}

/// Replaces the stored key of a cache file and fixes its checksum.
///
/// A test seam: it makes a provisional file claim the directory's new key,
/// which simulates a change inside one clock tick that only the
/// fingerprint can catch. Not meant for anything else.
#[doc(hidden)]
pub fn rewrite_key(bytes: &[u8], key: Key) -> Result<Vec<u8>, FormatError> {
    let parts = split(bytes)?;
    let header = Header {
        key,
        ..parts.header
    };
    Ok(frame(&header, parts.path, parts.fingerprint, parts.payload))
}

/// Decodes and validates the payload.
pub(crate) fn decode_payload(payload: &[u8]) -> Result<IndexData, FormatError> {
    let data: IndexData = wincode::config::deserialize_exact::<IndexDataRef, _>(payload, CODEC)
        .map_err(|e| FormatError::Payload(e.to_string()))?
        .into();
    data.validate().map_err(FormatError::Payload)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{DistFacts, IndexBuilder, Kind};
    use std::path::PathBuf;

    fn sample() -> (Header, IndexData) {
        let mut b = IndexBuilder::default();
        b.push(
            Kind::DistInfo,
            "a-1.dist-info",
            "a",
            Some("a"),
            DistFacts {
                name: Some("a"),
                version: Some("1"),
                entry_points: vec![("g", "n", "m:f")],
                diagnostics: vec![],
                incomplete: false,
            },
        );
        let header = Header {
            version: FORMAT_VERSION,
            flags: 0,
            written_at_ns: 5,
            key: Key {
                mtime_ns: -1,
                ctime_ns: 2,
                inode: 3,
                size: 5,
            },
        };
        (header, b.finish(PathBuf::new()).data().clone())
    }

    #[test]
    fn round_trip() {
        let (header, data) = sample();
        let bytes = encode(&header, b"/site", b"fp", &data).unwrap();
        let parts = split(&bytes).unwrap();
        assert!(parts.checksum_ok);
        assert_eq!(parts.header, header);
        assert_eq!(parts.path, b"/site");
        assert_eq!(parts.fingerprint, b"fp");
        assert_eq!(decode_payload(parts.payload).unwrap(), data);
    }

    #[test]
    fn every_truncation_is_rejected() {
        let (header, data) = sample();
        let bytes = encode(&header, b"/site", b"", &data).unwrap();
        for len in 0..bytes.len() {
            let result = split(&bytes[..len]);
            assert!(result.is_err(), "length {len} was accepted");
        }
    }

    #[test]
    fn every_bit_flip_is_caught() {
        let (header, data) = sample();
        let bytes = encode(&header, b"/site", b"", &data).unwrap();
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            let caught = match split(&damaged) {
                Err(_) => true,
                Ok(parts) => !parts.checksum_ok,
            };
            assert!(caught, "flip of bit {bit} went unnoticed");
        }
    }

    /// A fixed index with a fingerprint, a diagnostic, a distribution
    /// without metadata and non-ASCII text: every part of the layout.
    fn golden_sample() -> (Header, Vec<u8>, IndexData) {
        let mut b = IndexBuilder::default();
        b.entry_diagnostic("a child name that is not UTF-8 was skipped".to_owned());
        b.push(
            Kind::DistInfo,
            "Zeta_Pkg-2.0.dist-info",
            "zeta-pkg",
            Some("zeta_pkg"),
            DistFacts {
                name: Some("Zeta.Pkg"),
                version: Some("2.0"),
                entry_points: vec![
                    ("console_scripts", "zeta", "zeta.cli:main [extra]"),
                    ("épcache.plugins", "naïve", "zeta.plug"),
                ],
                diagnostics: vec!["entry_points.txt line 3: no '='".to_owned()],
                incomplete: false,
            },
        );
        b.push(
            Kind::EggInfoFile,
            "empty-1.0.egg-info",
            "empty",
            Some("empty"),
            DistFacts {
                name: None,
                version: None,
                entry_points: vec![],
                diagnostics: vec![],
                incomplete: false,
            },
        );
        let header = Header {
            version: FORMAT_VERSION,
            flags: FLAG_PROVISIONAL,
            written_at_ns: 1_700_000_000_123_456_789,
            key: Key {
                mtime_ns: 1_690_000_000_000_000_001,
                ctime_ns: 1_690_000_000_000_000_002,
                inode: 4242,
                size: 4096,
            },
        };
        let fingerprint = b"fingerprint bytes".to_vec();
        (header, fingerprint, b.finish(PathBuf::new()).data().clone())
    }

    /// The layout is pinned: a change to any byte of a file epcache writes
    /// must come with a new [`FORMAT_VERSION`] (and a new golden file, made
    /// with `EPCACHE_BLESS=1 cargo test --lib golden`), never by accident.
    #[test]
    fn golden_bytes() {
        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(format!("index-v{FORMAT_VERSION}.bin"));
        let (header, fingerprint, data) = golden_sample();
        let bytes = encode(&header, b"/golden/site-packages", &fingerprint, &data).unwrap();
        if std::env::var_os("EPCACHE_BLESS").is_some() {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, &bytes).unwrap();
        }
        let expected = std::fs::read(&golden).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; a new format version needs its golden file (EPCACHE_BLESS=1)",
                golden.display()
            )
        });
        assert!(
            bytes == expected,
            "the encoding of the golden index changed without a new FORMAT_VERSION \
             (first difference at byte {:?})",
            bytes.iter().zip(&expected).position(|(a, b)| a != b)
        );
        let parts = split(&expected).unwrap();
        assert!(parts.checksum_ok);
        assert_eq!(parts.header, header);
        assert_eq!(parts.fingerprint, fingerprint.as_slice());
        assert_eq!(decode_payload(parts.payload).unwrap(), data);
    }

    #[test]
    fn other_versions_and_magic_are_named() {
        let (header, data) = sample();
        let mut bytes = encode(&header, b"", b"", &data).unwrap();
        bytes[16] = 9;
        assert_eq!(split(&bytes).err(), Some(FormatError::Version(9)));
        assert_eq!(
            split(b"PK\x03\x04 not ours").err(),
            Some(FormatError::BadMagic)
        );
        assert_eq!(split(b"").err(), Some(FormatError::BadMagic));
    }
}

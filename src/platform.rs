//! The few things that differ between Unix and Windows, in one place.
//!
//! Only Linux is built and tested in CI. The Windows side is kept to the
//! simplest correct behaviour and says so where it is weaker.

use std::ffi::OsString;

/// Turns bytes printed by `os.fsencode` back into an OS string.
///
/// On Unix this is exact. On Windows Python's file system encoding is
/// UTF-8, so the bytes are decoded as UTF-8 (lossily, which only affects
/// unpaired surrogates that no real path contains).
pub(crate) fn os_string_from_bytes(bytes: Vec<u8>) -> OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        OsString::from_vec(bytes)
    }
    #[cfg(not(unix))]
    {
        OsString::from(String::from_utf8_lossy(&bytes).into_owned())
    }
}

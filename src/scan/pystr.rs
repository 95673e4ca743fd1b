//! Python's string rules, reproduced exactly where importlib.metadata
//! depends on them.
//!
//! importlib.metadata is plain Python: `str.splitlines`, `str.strip`,
//! `os.path.splitext` and two regular expressions decide which distribution
//! is which. Rust's closest equivalents differ at the edges (Rust's
//! `char::is_whitespace` excludes U+001C..U+001F, `str::lines` ignores
//! U+2028), so the edges are spelled out here.

/// Python's `str.isspace` for one character.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` with no argument.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// The length in bytes of the line break starting at `bytes[0]`, by
/// Python's `str.splitlines` rules, or 0 when none starts there.
///
/// Works on the UTF-8 bytes directly: in valid UTF-8, `C2 85` can only be
/// U+0085 and `E2 80 A8`/`A9` only U+2028/U+2029, so no decoding is needed
/// to tell the ten break characters apart.
fn line_break_len(bytes: &[u8]) -> usize {
    match bytes {
        [b'\r', b'\n', ..] => 2,
        [b'\n' | b'\r' | 0x0b | 0x0c | 0x1c | 0x1d | 0x1e, ..] => 1,
        [0xc2, 0x85, ..] => 2,
        [0xe2, 0x80, 0xa8 | 0xa9, ..] => 3,
        _ => 0,
    }
}

/// Python's `str.splitlines()`: `\r\n` counts as one break, a trailing
/// break does not start an extra empty line.
pub(crate) fn py_splitlines(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let bytes = rest.as_bytes();
        // Every break starts with a control byte, 0xC2 or 0xE2.
        let found = bytes
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b < 0x20 || b == 0xc2 || b == 0xe2)
            .find_map(|(i, _)| Some((i, line_break_len(&bytes[i..]))).filter(|&(_, n)| n > 0));
        let line = match found {
            None => std::mem::take(&mut rest),
            Some((i, len)) => {
                let line = &rest[..i];
                rest = &rest[i + len..];
                line
            }
        };
        Some(line)
    })
}

/// Python's `os.path.splitext` on a bare file name: the extension starts at
/// the last dot, unless everything before that dot is dots.
pub(crate) fn py_splitext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if name[..dot].bytes().any(|b| b != b'.') => name.split_at(dot),
        _ => (name, ""),
    }
}

/// Python's `str.partition(sep)[0]`.
pub(crate) fn before_first(s: &str, sep: char) -> &str {
    s.split(sep).next().unwrap_or(s)
}

/// Python's `str.rpartition(sep)[0]`: empty when `sep` does not occur.
pub(crate) fn before_last(s: &str, sep: char) -> &str {
    s.rfind(sep).map_or("", |i| &s[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitlines_matches_python() {
        let lines: Vec<_> = py_splitlines("a\r\nb\rc\nd\u{2028}e\u{85}f\u{0c}g\n").collect();
        assert_eq!(lines, ["a", "b", "c", "d", "e", "f", "g"]);
        let lines: Vec<_> = py_splitlines("a\n\nb").collect();
        assert_eq!(lines, ["a", "", "b"]);
        assert_eq!(py_splitlines("").count(), 0);
        assert_eq!(py_splitlines("\n").collect::<Vec<_>>(), [""]);
        assert_eq!(
            py_splitlines("a\r\r\nb").collect::<Vec<_>>(),
            ["a", "", "b"]
        );
        // The other breaks, and characters that share their first bytes
        // (U+0080, U+2027, U+20AC) or are control characters but no break
        // (U+001F), as Python 3.11 splits them.
        let text =
            "a\u{0b}b\u{1c}c\u{1d}d\u{1e}e\u{2029}f\u{80}g\u{2027}h\u{20ac}i\u{e9}\u{1f}j\rk";
        assert_eq!(
            py_splitlines(text).collect::<Vec<_>>(),
            [
                "a",
                "b",
                "c",
                "d",
                "e",
                "f\u{80}g\u{2027}h\u{20ac}i\u{e9}\u{1f}j",
                "k"
            ]
        );
    }

    #[test]
    fn strip_includes_information_separators() {
        assert_eq!(py_strip("\u{1f} x \u{a0}\t"), "x");
        assert_eq!(py_strip("  "), "");
    }

    #[test]
    fn splitext_skips_leading_dots() {
        assert_eq!(py_splitext("foo-1.0.dist-info"), ("foo-1.0", ".dist-info"));
        assert_eq!(py_splitext(".dist-info"), (".dist-info", ""));
        assert_eq!(py_splitext("..x.egg-info"), ("..x", ".egg-info"));
        assert_eq!(py_splitext("EGG-INFO"), ("EGG-INFO", ""));
    }

    #[test]
    fn partitions() {
        assert_eq!(before_first("a-b-c", '-'), "a");
        assert_eq!(before_first("abc", '-'), "abc");
        assert_eq!(before_last("a.b.c", '.'), "a.b");
        assert_eq!(before_last("abc", '.'), "");
    }
}

//! The names distributions are looked up by, normalized as
//! importlib.metadata normalizes them.

/// PEP 503 normalization: lower-case, runs of `-`, `_` and `.` become one `-`.
///
/// importlib.metadata uses `_` as the separator internally; the mapping
/// between the two spellings is one-to-one, so equality is unaffected.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    normalize_name_into(name, &mut out);
    out
}

/// [`normalize_name`] into `out`, replacing its contents, so that a loop
/// over many names can reuse one buffer.
pub(crate) fn normalize_name_into(name: &str, out: &mut String) {
    let is_separator = |b: u8| matches!(b, b'-' | b'_' | b'.');
    let bytes = name.as_bytes();
    out.clear();
    // The separators are ASCII, so cutting at them always lands on
    // character boundaries and the text between is copied whole.
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if is_separator(bytes[i]) {
            out.push_str(&name[start..i]);
            out.push('-');
            while i < bytes.len() && is_separator(bytes[i]) {
                i += 1;
            }
            start = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&name[start..]);
    // Python lower-cases the whole string at once, which matters for the
    // context-dependent final sigma; ASCII, the common case, needs no copy.
    if out.is_ascii() {
        out.make_ascii_lowercase();
    } else {
        *out = out.to_lowercase();
    }
}

/// importlib.metadata's `legacy_normalize`, used only for `.egg` lookups:
/// lower-case and `-` becomes `_`, nothing else.
pub(crate) fn legacy_normalize_name(name: &str) -> String {
    name.to_lowercase().replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_follows_pep_503() {
        assert_eq!(normalize_name("Foo.Bar__baz-QUX"), "foo-bar-baz-qux");
        assert_eq!(normalize_name("a-_.b"), "a-b");
        assert_eq!(normalize_name("_x_"), "-x-");
        assert_eq!(normalize_name("ΑΣ"), "ας");
        assert_eq!(normalize_name("--é..Ω_"), "-é-ω-");
        assert_eq!(normalize_name(""), "");
        assert_eq!(legacy_normalize_name("Foo-Bar.baz"), "foo_bar.baz");
    }
}

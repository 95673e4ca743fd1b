//! Reading `Name` and `Version` from a METADATA / PKG-INFO header block,
//! exactly as `email.message_from_string` (compat32 policy) does for
//! importlib.metadata.
//!
//! Only the header block matters, so callers read files just far enough to
//! hold it; a long description after the blank line is never read.

/// The headers importlib.metadata's `name` and `version` come from.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Headers {
    pub name: Option<String>,
    pub version: Option<String>,
}

/// One physical line: its content and whether a line break ended it.
struct RawLine<'a> {
    content: &'a [u8],
    terminated: bool,
    /// Bytes the line occupies including its break (1 or 2 bytes, or none).
    len_with_break: usize,
}

/// Splits on `\r\n`, `\r` and `\n`, the line breaks universal-newline
/// reading turns into `\n` before the email parser sees the text.
fn raw_lines(bytes: &[u8]) -> impl Iterator<Item = RawLine<'_>> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match memchr::memchr2(b'\n', b'\r', rest) {
            None => {
                let content = std::mem::take(&mut rest);
                Some(RawLine {
                    content,
                    terminated: false,
                    len_with_break: content.len(),
                })
            }
            Some(i) => {
                let content = &rest[..i];
                let crlf = rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n');
                let len_with_break = i + if crlf { 2 } else { 1 };
                rest = &rest[len_with_break..];
                Some(RawLine {
                    content,
                    terminated: true,
                    len_with_break,
                })
            }
        }
    })
}

/// How the email parser's `headerRE`,
/// `^(From |[\041-\071\073-\176]*:|[\t ])`, sees a line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `From ...`, the mbox envelope: part of the block, never a header.
    Envelope,
    /// Starts a header; the name is everything before `colon`.
    Field { colon: usize },
    /// Starts with a space or tab.
    Continuation,
    /// Ends the header block.
    Body,
}

fn shape(line: &[u8]) -> Shape {
    if line.starts_with(b"From ") {
        return Shape::Envelope;
    }
    let name_len = line
        .iter()
        .take_while(|&&b| (0x21..=0x7e).contains(&b) && b != b':')
        .count();
    if line.get(name_len) == Some(&b':') {
        Shape::Field { colon: name_len }
    } else if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        Shape::Continuation
    } else {
        Shape::Body
    }
}

/// Whether `bytes`, the start of a METADATA file, certainly holds its whole
/// header block, so that reading can stop.
///
/// A blank line ends the block at the latest, and finding one is a single
/// vectorized search; files with `\r` line breaks, or whose block ends
/// early at a line that is not a header, take the line-by-line path.
pub(crate) fn holds_header_block(bytes: &[u8], at_eof: bool) -> bool {
    if at_eof {
        return true;
    }
    if memchr::memchr(b'\r', bytes).is_none() && first_blank_line(bytes).is_some() {
        return true;
    }
    header_block_len(bytes, false).is_some()
}

/// Where the first empty `\n`-terminated line starts, if there is one.
fn first_blank_line(bytes: &[u8]) -> Option<usize> {
    if bytes.first() == Some(&b'\n') {
        return Some(0);
    }
    memchr::memchr_iter(b'\n', bytes)
        .map(|i| i + 1)
        .find(|&next| bytes.get(next) == Some(&b'\n'))
}

/// The length of the header block at the start of `bytes`, once it is
/// known: up to the first complete line that is not a header line, or all
/// of it when `at_eof` says no more text follows. `None` means more bytes
/// are needed to tell.
pub(crate) fn header_block_len(bytes: &[u8], at_eof: bool) -> Option<usize> {
    let mut offset = 0;
    for line in raw_lines(bytes) {
        // An unterminated last line may still grow; a line ending in a final
        // `\r` is complete even if `\n` follows later.
        if !line.terminated && !at_eof {
            return None;
        }
        if shape(line.content) == Shape::Body {
            return Some(offset);
        }
        offset += line.len_with_break;
    }
    at_eof.then_some(offset)
}

/// Which of the two wanted headers a line starts.
#[derive(Clone, Copy)]
enum Field {
    Name,
    Version,
}

/// A header being collected with its continuation lines. Headers other
/// than the first `Name` and `Version` are only skipped over, so a scan
/// allocates nothing for the dozens of `Classifier` lines of a METADATA.
enum Pending {
    Ignored,
    Kept { field: Field, value: String },
}

/// Parses the header block at the start of `bytes`.
///
/// Lines that are not valid UTF-8 are skipped with a diagnostic (Python
/// would refuse the whole file); `label` names the file in that message.
pub(crate) fn parse_headers(bytes: &[u8], label: &str, diagnostics: &mut Vec<String>) -> Headers {
    // The buffer usually runs on past the header block into text that need
    // not be valid (and may end mid-character). The block ends at the first
    // blank line at the latest, so the text up to there is validated in one
    // go; lines past its valid prefix are checked one by one.
    let bound = first_blank_line(bytes).unwrap_or(bytes.len());
    let valid = match std::str::from_utf8(&bytes[..bound]) {
        Ok(text) => text,
        Err(err) => std::str::from_utf8(&bytes[..err.valid_up_to()]).unwrap_or_default(),
    };
    let mut headers = Headers::default();
    let mut pending: Option<Pending> = None;
    let mut offset = 0;
    for (lineno, line) in raw_lines(bytes).enumerate() {
        let start = offset;
        offset += line.len_with_break;
        let shape = shape(line.content);
        if shape == Shape::Body {
            break;
        }
        let text = match valid.get(start..start + line.content.len()) {
            Some(text) => text,
            None => match std::str::from_utf8(line.content) {
                Ok(text) => text,
                Err(_) => {
                    diagnostics.push(format!(
                        "{label} line {}: not valid UTF-8, skipped",
                        lineno + 1
                    ));
                    continue;
                }
            },
        };
        let newline = if line.terminated { "\n" } else { "" };
        let colon = match shape {
            Shape::Continuation => {
                // A continuation with no header before it is dropped, as
                // the email parser does.
                if let Some(Pending::Kept { value, .. }) = pending.as_mut() {
                    value.push_str(text);
                    value.push_str(newline);
                }
                continue;
            }
            Shape::Field { colon } => colon,
            Shape::Envelope | Shape::Body => 0,
        };
        finish(pending.take(), &mut headers);
        // The envelope line and a line with an empty name are never headers.
        if colon == 0 {
            continue;
        }
        let name = &text[..colon];
        let field = if name.eq_ignore_ascii_case("name") && headers.name.is_none() {
            Field::Name
        } else if name.eq_ignore_ascii_case("version") && headers.version.is_none() {
            Field::Version
        } else {
            pending = Some(Pending::Ignored);
            continue;
        };
        let mut value = text[colon + 1..].trim_start_matches([' ', '\t']).to_owned();
        value.push_str(newline);
        pending = Some(Pending::Kept { field, value });
    }
    finish(pending, &mut headers);
    headers
}

/// Stores a completed `Name` or `Version` header.
fn finish(pending: Option<Pending>, headers: &mut Headers) {
    let Some(Pending::Kept { field, mut value }) = pending else {
        return;
    };
    let slot = match field {
        Field::Name => &mut headers.name,
        Field::Version => &mut headers.version,
    };
    let kept = value.trim_end_matches(['\r', '\n']).len();
    value.truncate(kept);
    *slot = Some(redent(value));
}

/// importlib.metadata's `_adapters.Message` "corrects for RFC 822
/// indentation" of every header value that spans several lines:
/// `textwrap.dedent(' ' * 8 + value)`.
fn redent(value: String) -> String {
    if !value.contains('\n') {
        return value;
    }
    dedent(&format!("        {value}"))
}

/// Python's `textwrap.dedent`: lines of only spaces and tabs become empty,
/// then the longest run of leading spaces and tabs common to every other
/// line is removed from each line.
fn dedent(text: &str) -> String {
    let is_blank = |line: &str| !line.is_empty() && line.bytes().all(|b| b == b' ' || b == b'\t');
    let lines: Vec<&str> = text
        .split('\n')
        .map(|line| if is_blank(line) { "" } else { line })
        .collect();
    fn indent(line: &str) -> &str {
        let n = line
            .bytes()
            .take_while(|&b| b == b' ' || b == b'\t')
            .count();
        &line[..n]
    }
    let mut margin: Option<&str> = None;
    for line in lines.iter().filter(|line| !line.is_empty()) {
        let this = indent(line);
        margin = Some(match margin {
            None => this,
            Some(m) => {
                let common = m
                    .bytes()
                    .zip(this.bytes())
                    .take_while(|(a, b)| a == b)
                    .count();
                &m[..common]
            }
        });
    }
    let margin = margin.unwrap_or("");
    lines
        .iter()
        .map(|line| line.strip_prefix(margin).unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> (Headers, Vec<String>) {
        let mut diags = Vec::new();
        (parse_headers(text, "METADATA", &mut diags), diags)
    }

    fn nv(name: Option<&str>, version: Option<&str>) -> Headers {
        Headers {
            name: name.map(Into::into),
            version: version.map(Into::into),
        }
    }

    #[test]
    fn reads_first_name_and_version() {
        let (h, d) =
            parse(b"Metadata-Version: 2.1\nName: foo\nname: bar\nVersion:  1.0 \n\nName: body\n");
        assert_eq!(h, nv(Some("foo"), Some("1.0 ")));
        assert!(d.is_empty());
    }

    #[test]
    fn handles_crlf_and_lone_cr() {
        assert_eq!(
            parse(b"Name: a\r\nVersion: 2\r\n\r\n").0,
            nv(Some("a"), Some("2"))
        );
        assert_eq!(parse(b"Name: a\rVersion: 2").0, nv(Some("a"), Some("2")));
    }

    #[test]
    fn keeps_continuation_lines_like_compat32_then_redents() {
        // compat32 gives "foo\n  bar"; importlib's redent dedents
        // "        foo\n  bar" by the common two spaces.
        assert_eq!(
            parse(b"Name: foo\n  bar\nVersion: 1\n").0,
            nv(Some("      foo\nbar"), Some("1"))
        );
        assert_eq!(parse(b"Name:\n").0, nv(Some(""), None));
        // "        \n\tx": the first line is blank, so only "\tx" counts.
        assert_eq!(parse(b"Name: \n\tx\n").0, nv(Some("\nx"), None));
        assert_eq!(
            parse(b"Version: 1.0\n\t.post1\n").0,
            nv(None, Some("        1.0\n\t.post1"))
        );
        assert_eq!(
            parse(b"Version: 2.0\n        .post1\n \t\n").0,
            nv(None, Some("2.0\n.post1\n"))
        );
    }

    #[test]
    fn dedent_matches_textwrap() {
        assert_eq!(dedent("  a\n    b\n  c"), "a\n  b\nc");
        assert_eq!(dedent("\ta\n  b"), "\ta\n  b");
        assert_eq!(dedent("  a\n\t \n  b"), "a\n\nb");
        assert_eq!(dedent("   \n  "), "\n");
        assert_eq!(dedent("a"), "a");
    }

    #[test]
    fn headers_end_at_first_non_header_line() {
        assert_eq!(
            parse(b"Name: a\nnot a header\nVersion: 1\n").0,
            nv(Some("a"), None)
        );
        assert_eq!(parse(b"Name : a\nVersion: 1\n").0, nv(None, None));
        assert_eq!(parse(b"\xef\xbb\xbfName: a\n").0, nv(None, None));
    }

    #[test]
    fn envelope_and_nameless_lines_are_skipped() {
        assert_eq!(parse(b"From x\nName: a\n").0, nv(Some("a"), None));
        assert_eq!(parse(b" cont\nName: a\n").0, nv(Some("a"), None));
        assert_eq!(
            parse(b"Name: a\n: x\n y\nVersion: 3\n").0,
            nv(Some("a"), Some("3"))
        );
    }

    #[test]
    fn invalid_utf8_lines_are_skipped_with_a_diagnostic() {
        let (h, d) = parse(b"Name: a\nAuthor: Jos\xe9\nVersion: 1\n");
        assert_eq!(h, nv(Some("a"), Some("1")));
        assert_eq!(d, ["METADATA line 2: not valid UTF-8, skipped"]);
    }

    #[test]
    fn finds_the_first_blank_line() {
        assert_eq!(first_blank_line(b"\nx"), Some(0));
        assert_eq!(first_blank_line(b"a\nb\n\nc\n\n"), Some(4));
        assert_eq!(first_blank_line(b"a\nb\n"), None);
        assert_eq!(first_blank_line(b""), None);
    }

    #[test]
    fn knows_when_the_header_block_is_complete() {
        assert!(holds_header_block(b"Name: a\n\nbody", false));
        assert!(holds_header_block(b"\nName: a\n", false));
        assert!(!holds_header_block(b"Name: a\nVersion: 1\n", false));
        assert!(holds_header_block(b"Name: a\nVersion: 1\n", true));
        assert!(holds_header_block(b"Name: a\r\n\r\nbody", false));
        assert!(!holds_header_block(b"Name: a\r\nVersion: 1\r\n", false));
        // A line that is not a header ends the block before any blank line.
        assert!(holds_header_block(b"Name: a\nbody line\nmore", false));
        assert!(!holds_header_block(b"Name: a\nbody li", false));
    }

    #[test]
    fn parsing_stops_at_the_end_of_the_block_in_a_longer_buffer() {
        let (h, d) = parse(b"Name: a\nVersion: 1\n\nName: b\n\xff\xfe");
        assert_eq!(h, nv(Some("a"), Some("1")));
        assert!(d.is_empty());
    }

    #[test]
    fn block_length_needs_a_terminated_ending_line() {
        assert_eq!(header_block_len(b"Name: a\nVersion: 1\n", false), None);
        assert_eq!(header_block_len(b"Name: a\nVersion: 1\n", true), Some(19));
        assert_eq!(header_block_len(b"Name: a\n\nbody", false), Some(8));
        assert_eq!(header_block_len(b"Name: a\nbody\n", false), Some(8));
        assert_eq!(header_block_len(b"Name: a\nbody", false), None);
        assert_eq!(header_block_len(b"Name: a\nbody", true), Some(8));
        assert_eq!(header_block_len(b"Name: a\r", false), None);
        assert_eq!(header_block_len(b"Name: a\r\r", false), Some(8));
        assert_eq!(header_block_len(b"Name: a", true), Some(7));
        assert_eq!(header_block_len(b"", true), Some(0));
    }
}

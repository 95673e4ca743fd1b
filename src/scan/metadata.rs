//! Reading `Name` and `Version` from a METADATA / PKG-INFO header block,
//! exactly as `email.message_from_string` (compat32 policy) does for
//! importlib.metadata.
//!
//! Only the header block matters, so callers read files just far enough to
//! hold it; a long description after the blank line is never read.

use std::ops::Range;

/// The headers importlib.metadata's `name` and `version` come from, in one
/// buffer that [`parse_headers`] refills for each file, so that a scan
/// allocates nothing for them.
#[derive(Debug, Default)]
pub(crate) struct Headers {
    text: String,
    name: Option<Range<usize>>,
    version: Option<Range<usize>>,
}

impl Headers {
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.clone().map(|range| &self.text[range])
    }

    pub(crate) fn version(&self) -> Option<&str> {
        self.version.clone().map(|range| &self.text[range])
    }

    fn both_found(&self) -> bool {
        self.name.is_some() && self.version.is_some()
    }

    fn slot(&mut self, field: Field) -> &mut Option<Range<usize>> {
        match field {
            Field::Name => &mut self.name,
            Field::Version => &mut self.version,
        }
    }
}

/// One physical line: its content and whether a line break ended it.
struct RawLine<'a> {
    content: &'a [u8],
    terminated: bool,
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
                })
            }
            Some(i) => {
                let content = &rest[..i];
                let crlf = rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n');
                rest = &rest[i + if crlf { 2 } else { 1 }..];
                Some(RawLine {
                    content,
                    terminated: true,
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
    } else if starts_continuation(line) {
        Shape::Continuation
    } else {
        Shape::Body
    }
}

/// Whether `bytes`, the start of a METADATA file, settle its first `Name`
/// and `Version`, so that reading can stop (see [`Settling`]).
#[cfg(test)]
pub(crate) fn settles_name_and_version(bytes: &[u8], at_eof: bool) -> bool {
    Settling::default().name_and_version(bytes, at_eof)
}

/// Decides, as a METADATA file is read, when its first `Name` and
/// `Version` are settled, so that reading can stop.
///
/// They are settled once both have been seen and a line after the later
/// one has begun that is not a continuation, or once the header block has
/// ended, or at the end of the file. Nothing past that point can change
/// them: the email parser keeps the first of repeated headers. This walks
/// the same lines [`parse_headers`] does, by the same rules.
///
/// It is called after every read with everything read so far, and
/// resumes where the previous call stopped, so a header block of any
/// length costs one pass (a fresh walk per read made it quadratic).
#[derive(Debug, Default)]
pub(crate) struct Settling {
    /// Bytes of whole lines already walked.
    done: usize,
    /// Where the search for the end of the line after `done` stopped: an
    /// unterminated line is not searched again from its start.
    searched: usize,
    /// The last line walked ended in a lone `\r` at the end of what was
    /// read: if the next byte is `\n`, it belongs to that line break.
    maybe_crlf: bool,
    name: bool,
    version: bool,
}

impl Settling {
    /// Whether `bytes` (which extend the bytes of the previous call)
    /// settle `Name` and `Version`; `at_eof` when the file ends there.
    pub(crate) fn name_and_version(&mut self, bytes: &[u8], at_eof: bool) -> bool {
        if at_eof {
            return true;
        }
        loop {
            if self.maybe_crlf {
                let Some(&next) = bytes.get(self.done) else {
                    return false;
                };
                self.maybe_crlf = false;
                self.done += usize::from(next == b'\n');
            }
            let rest = &bytes[self.done..];
            let from = self.searched.max(self.done) - self.done;
            let Some(i) = memchr::memchr2(b'\n', b'\r', &rest[from..]).map(|i| from + i) else {
                self.searched = bytes.len();
                // An unterminated line's first byte already says whether it
                // continues the header before it; more bytes could not
                // change that. Nothing read yet: what follows decides.
                return !rest.is_empty() && self.name && self.version && !starts_continuation(rest);
            };
            if let Some(settled) = self.walk_line(&rest[..i]) {
                return settled;
            }
            self.done += i + 1;
            if rest[i] == b'\r' {
                self.maybe_crlf = true;
            }
        }
    }

    /// Takes in one whole line; `Some` when it decides.
    fn walk_line(&mut self, line: &[u8]) -> Option<bool> {
        let colon = match shape(line) {
            Shape::Body => return Some(true),
            Shape::Continuation => return None,
            _ if self.name && self.version => return Some(true),
            Shape::Envelope => return None,
            Shape::Field { colon } => colon,
        };
        match wanted(&line[..colon]) {
            Some(Field::Name) if valid_text(line) => self.name = true,
            Some(Field::Version) if valid_text(line) => self.version = true,
            _ => {}
        }
        None
    }
}

fn starts_continuation(line: &[u8]) -> bool {
    line.first().is_some_and(|&b| b == b' ' || b == b'\t')
}

fn valid_text(line: &[u8]) -> bool {
    std::str::from_utf8(line).is_ok()
}

/// Which wanted header a header name is, compared the way the email
/// parser does (case-insensitively).
fn wanted(header: &[u8]) -> Option<Field> {
    if header.eq_ignore_ascii_case(b"name") {
        Some(Field::Name)
    } else if header.eq_ignore_ascii_case(b"version") {
        Some(Field::Version)
    } else {
        None
    }
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
    /// Its value so far is the end of [`Headers::text`], from `start`.
    Kept {
        field: Field,
        start: usize,
    },
}

/// Parses the first `Name` and `Version` from the header block at the
/// start of `bytes`, stopping as soon as both are settled (see
/// [`Settling`]).
///
/// Lines that are not valid UTF-8 are skipped with a diagnostic (Python
/// would refuse the whole file); `label` names the file in that message.
/// Such a line still ends the header before it, as its shape says it does.
pub(crate) fn parse_headers(
    bytes: &[u8],
    label: &str,
    diagnostics: &mut Vec<String>,
    headers: &mut Headers,
) {
    headers.text.clear();
    headers.name = None;
    headers.version = None;
    let mut pending: Option<Pending> = None;
    for (lineno, line) in raw_lines(bytes).enumerate() {
        let shape = shape(line.content);
        if shape == Shape::Body {
            break;
        }
        if shape != Shape::Continuation {
            finish(pending.take(), headers);
            if headers.both_found() {
                break;
            }
        }
        let Ok(text) = std::str::from_utf8(line.content) else {
            diagnostics.push(format!(
                "{label} line {}: not valid UTF-8, skipped",
                lineno + 1
            ));
            continue;
        };
        let newline = if line.terminated { "\n" } else { "" };
        let colon = match shape {
            Shape::Continuation => {
                // A continuation with no header before it is dropped, as
                // the email parser does.
                if let Some(Pending::Kept { .. }) = pending {
                    headers.text.push_str(text);
                    headers.text.push_str(newline);
                }
                continue;
            }
            Shape::Field { colon } => colon,
            Shape::Envelope | Shape::Body => 0,
        };
        // The envelope line and a line with an empty name are never headers.
        if colon == 0 {
            continue;
        }
        let field = match wanted(&line.content[..colon]) {
            Some(field) if headers.slot(field).is_none() => field,
            _ => {
                pending = Some(Pending::Ignored);
                continue;
            }
        };
        let start = headers.text.len();
        headers
            .text
            .push_str(text[colon + 1..].trim_start_matches([' ', '\t']));
        headers.text.push_str(newline);
        pending = Some(Pending::Kept { field, start });
    }
    finish(pending, headers);
}

/// Stores a completed `Name` or `Version` header, which is the end of
/// `headers.text`.
fn finish(pending: Option<Pending>, headers: &mut Headers) {
    let Some(Pending::Kept { field, start }) = pending else {
        return;
    };
    let kept = headers.text[start..].trim_end_matches(['\r', '\n']).len();
    headers.text.truncate(start + kept);
    if headers.text[start..].contains('\n') {
        let value = redent(&headers.text[start..]);
        headers.text.truncate(start);
        headers.text.push_str(&value);
    }
    *headers.slot(field) = Some(start..headers.text.len());
}

/// importlib.metadata's `_adapters.Message` "corrects for RFC 822
/// indentation" of every header value that spans several lines:
/// `textwrap.dedent(' ' * 8 + value)`.
fn redent(value: &str) -> String {
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

    type NameVersion = (Option<String>, Option<String>);

    fn parse(text: &[u8]) -> (NameVersion, Vec<String>) {
        let mut diags = Vec::new();
        let mut headers = Headers::default();
        // A buffer left over from another file must not leak into this one.
        parse_headers(
            b"Name: stale\nVersion: 0\n",
            "METADATA",
            &mut diags,
            &mut headers,
        );
        parse_headers(text, "METADATA", &mut diags, &mut headers);
        let found = (
            headers.name().map(str::to_owned),
            headers.version().map(str::to_owned),
        );
        (found, diags)
    }

    fn nv(name: Option<&str>, version: Option<&str>) -> NameVersion {
        (name.map(Into::into), version.map(Into::into))
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

    /// What reading stops at, and that the parser, given just those bytes,
    /// finds what it would find in the whole file.
    #[test]
    fn reading_stops_once_name_and_version_are_settled() {
        let settled_at = |text: &[u8]| {
            (1..=text.len())
                .find(|&n| settles_name_and_version(&text[..n], n == text.len()))
                .unwrap()
        };
        let cases: [(&[u8], usize); 9] = [
            // Settled by the first byte of the line after Version.
            (
                b"Metadata-Version: 2.1\nName: a\nVersion: 1\nSummary: s\n",
                42,
            ),
            // A continuation keeps it open until the next header starts.
            (b"Name: a\nVersion: 1\n .post1\nX: y\n", 28),
            // A blank line ends the block whatever is missing.
            (b"Name: a\n\nVersion: 1\n", 9),
            (b"Name: a\nbody line\nVersion: 1\n", 18),
            // Missing Version: only the end of the block or file settles it.
            (b"Name: a\nSummary: s\n", 19),
            // A line break at the very end could be half of `\r\n`.
            (b"Name: a\r\nVersion: 1\r\nX", 22),
            (b"Name: a\rVersion: 1\rX", 20),
            // A Name that is not UTF-8 is skipped, so a later one counts.
            (b"Name: \xff\nVersion: 1\nName: b\nX: y\n", 28),
            (b"Version: 1\nName: a\n\tb\nZ", 23),
        ];
        for (text, want) in cases {
            let at = settled_at(text);
            assert_eq!(at, want, "{:?}", String::from_utf8_lossy(text));
            assert_eq!(
                parse(&text[..at]),
                parse(text),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        assert!(!settles_name_and_version(b"Name: a\nVersion: 1\n", false));
        assert!(settles_name_and_version(b"Name: a\nVersion: 1\n", true));
    }

    /// Fed a file a few bytes at a time, as reads hand it out, the
    /// incremental walk decides exactly where a fresh walk of each prefix
    /// does.
    #[test]
    fn settling_incrementally_agrees_with_a_fresh_walk() {
        let texts: [&[u8]; 5] = [
            b"Metadata-Version: 2.1\r\nName: a\r\nVersion: 1\r\n .post1\r\nX: y\r\n",
            b"Name: a\rVersion: 1\r\rbody",
            b"Summary: a very long line without a break at all\nName: b\nVersion: 2\nZ",
            b"From x\n\tcont\nName: \xff\nName: c\nVersion: 3\n\n",
            b"Name: a\r\r",
        ];
        for text in texts {
            for step in 1..=7 {
                let mut settling = Settling::default();
                let incremental = (step..=text.len())
                    .step_by(step)
                    .chain([text.len()])
                    .find(|&n| settling.name_and_version(&text[..n], n == text.len()));
                let fresh = (step..=text.len())
                    .step_by(step)
                    .chain([text.len()])
                    .find(|&n| settles_name_and_version(&text[..n], n == text.len()));
                assert_eq!(
                    incremental,
                    fresh,
                    "{:?} by {step}",
                    String::from_utf8_lossy(text)
                );
            }
        }
    }

    #[test]
    fn parsing_stops_once_both_are_settled() {
        let (h, d) = parse(b"Name: a\nVersion: 1\nAuthor: \xff\nName: b\n");
        assert_eq!(h, nv(Some("a"), Some("1")));
        assert!(d.is_empty(), "lines past Version are never looked at");
    }

    #[test]
    fn a_line_that_is_not_utf8_still_ends_the_header_before_it() {
        let (h, d) = parse(b"Version: 1\nAuthor: \xff\n more\nName: a\n");
        assert_eq!(h, nv(Some("a"), Some("1")));
        assert_eq!(d, ["METADATA line 2: not valid UTF-8, skipped"]);
    }

    #[test]
    fn parsing_stops_at_the_end_of_the_block_in_a_longer_buffer() {
        let (h, d) = parse(b"Name: a\nVersion: 1\n\nName: b\n\xff\xfe");
        assert_eq!(h, nv(Some("a"), Some("1")));
        assert!(d.is_empty());
    }

    #[test]
    fn only_complete_lines_end_the_block() {
        let settles = settles_name_and_version;
        assert!(settles(b"Name: a\n\nbody", false));
        assert!(settles(b"Name: a\nbody\n", false));
        // "body" could still become "body: x", a header.
        assert!(!settles(b"Name: a\nbody", false));
        assert!(settles(b"Name: a\nbody", true));
        assert!(!settles(b"Name: a\r", false));
        assert!(settles(b"Name: a\r\r", false));
        assert!(settles(b"", true));
    }
}

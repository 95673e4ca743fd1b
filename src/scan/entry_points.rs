//! Parsing `entry_points.txt` with the rules of importlib.metadata's
//! `Sectioned` parser, except that a bad line is dropped with a diagnostic
//! instead of failing the whole environment.

use super::pystr::{py_splitlines, py_strip};

/// One entry point as written: `(group, name, value)`, borrowed from the
/// file's bytes so that parsing allocates nothing per entry point.
pub(crate) type EntryPointText<'a> = (&'a str, &'a str, &'a str);

/// Parses `bytes`, pushing a diagnostic for each line that importlib would
/// have failed on. Entry points come in file order, duplicates kept.
pub(crate) fn parse<'a>(bytes: &'a [u8], diagnostics: &mut Vec<String>) -> Vec<EntryPointText<'a>> {
    let mut parser = Parser::default();
    match std::str::from_utf8(bytes) {
        Ok(text) => parser.feed(text, diagnostics),
        Err(_) => parse_line_by_line(bytes, &mut parser, diagnostics),
    }
    parser.entry_points
}

/// The slow path for text with invalid UTF-8: only the lines holding bad
/// bytes are lost.
fn parse_line_by_line<'a>(bytes: &'a [u8], parser: &mut Parser<'a>, diagnostics: &mut Vec<String>) {
    for raw in bytes.split(|&b| b == b'\n') {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        match std::str::from_utf8(raw) {
            Ok(text) => parser.feed(text, diagnostics),
            Err(_) => {
                parser.lineno += 1;
                diagnostics.push(format!(
                    "entry_points.txt line {}: not valid UTF-8, skipped",
                    parser.lineno
                ));
            }
        }
    }
}

#[derive(Default)]
struct Parser<'a> {
    group: Option<&'a str>,
    lineno: usize,
    entry_points: Vec<EntryPointText<'a>>,
}

impl<'a> Parser<'a> {
    fn feed(&mut self, text: &'a str, diagnostics: &mut Vec<String>) {
        for line in py_splitlines(text) {
            self.lineno += 1;
            self.line(py_strip(line), diagnostics);
        }
    }

    fn line(&mut self, line: &'a str, diagnostics: &mut Vec<String>) {
        if line.is_empty() || line.starts_with('#') {
            return;
        }
        if line.starts_with('[') && line.ends_with(']') {
            self.group = Some(line.trim_matches(['[', ']']));
            return;
        }
        // Lines before the first section are ignored before they are parsed,
        // so a stray line there is no error even without `=`.
        let Some(group) = self.group else { return };
        match line.split_once('=') {
            Some((name, value)) => self
                .entry_points
                .push((group, py_strip(name), py_strip(value))),
            None => diagnostics.push(format!(
                "entry_points.txt line {}: no '=' in {:?}, dropped",
                self.lineno,
                shortened(line)
            )),
        }
    }
}

/// At most the first 80 characters of a line, so that a diagnostic stays
/// small however long the line it quotes.
fn shortened(line: &str) -> std::borrow::Cow<'_, str> {
    match line.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &line[..cut]).into(),
        None => line.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(text: &[u8]) -> (Vec<EntryPointText<'_>>, Vec<String>) {
        let mut d = Vec::new();
        (parse(text, &mut d), d)
    }

    fn triple<'a>(g: &'a str, n: &'a str, v: &'a str) -> EntryPointText<'a> {
        (g, n, v)
    }

    #[test]
    fn follows_sectioned_rules() {
        let text = b"ignored = before\n[console_scripts]\n# c\n a = b:c [x] \n\nbeta thing = pkg.mod:fn\nx = y ; # z\nx=dup\n[ spaced ]\nk == v\n[[g]]\nn=\n";
        let (got, d) = eps(text);
        assert_eq!(
            got,
            [
                triple("console_scripts", "a", "b:c [x]"),
                triple("console_scripts", "beta thing", "pkg.mod:fn"),
                triple("console_scripts", "x", "y ; # z"),
                triple("console_scripts", "x", "dup"),
                triple(" spaced ", "k", "= v"),
                triple("g", "n", ""),
            ]
        );
        assert!(d.is_empty());
    }

    #[test]
    fn line_without_equals_is_dropped_with_diagnostic() {
        let (got, d) = eps(b"[g]\nbroken line\nok = 1\n");
        assert_eq!(got, [triple("g", "ok", "1")]);
        assert_eq!(
            d,
            ["entry_points.txt line 2: no '=' in \"broken line\", dropped"]
        );
    }

    #[test]
    fn crlf_and_missing_final_newline() {
        let (got, _) = eps(b"[g]\r\na = 1\r\nb = 2");
        assert_eq!(got, [triple("g", "a", "1"), triple("g", "b", "2")]);
    }

    #[test]
    fn invalid_utf8_loses_only_its_line() {
        let (got, d) = eps(b"[g]\na = \xff\nb = 2\n");
        assert_eq!(got, [triple("g", "b", "2")]);
        assert_eq!(d, ["entry_points.txt line 2: not valid UTF-8, skipped"]);
    }
}

//! The one shape of a path entry's status: its text for people
//! ([`Display`](std::fmt::Display)), and its fields for programs, which the
//! CLI's `--json` (through `Serialize`, feature `serde`) and Python's
//! `epcache.status()` (a dict) both take from `Status::fields`.

use std::fmt;
#[cfg(any(feature = "serde", feature = "python"))]
use std::path::Path;

#[cfg(any(feature = "serde", feature = "python"))]
use crate::cache::freshness::Settledness;
use crate::cache::Status;

/// One field's value.
#[cfg(any(feature = "serde", feature = "python"))]
pub(crate) enum Field<'a> {
    Null,
    Bool(bool),
    Count(usize),
    Int(i64),
    Code(&'static str),
    Text(String),
    Path(&'a Path),
    /// `{"state": code, "seconds": seconds}`.
    Settledness(Settledness),
}

#[cfg(any(feature = "serde", feature = "python"))]
impl<'a> Field<'a> {
    fn or_null<T>(value: Option<T>, f: impl FnOnce(T) -> Field<'a>) -> Field<'a> {
        value.map_or(Field::Null, f)
    }
}

impl Status {
    /// The fields, in order: `path_entry`, `index_file`, `verdict` (the
    /// lookup's code), `hit`, `reason` (the lookup's text), `provisional`,
    /// `written_at_ns`, `distributions`, `entry_points`, `settledness`
    /// (`state`, `seconds`), `write_refusal` and `fingerprint_entries`.
    #[cfg(any(feature = "serde", feature = "python"))]
    pub(crate) fn fields(&self) -> [(&'static str, Field<'_>); 12] {
        let header = self.header.as_ref();
        [
            ("path_entry", Field::Path(&self.path_entry)),
            (
                "index_file",
                Field::or_null(self.index_file.as_deref(), Field::Path),
            ),
            ("verdict", Field::Code(self.lookup.code())),
            ("hit", Field::Bool(self.lookup.is_hit())),
            ("reason", Field::Text(self.lookup.to_string())),
            (
                "provisional",
                Field::or_null(header, |h| Field::Bool(h.is_provisional())),
            ),
            (
                "written_at_ns",
                Field::or_null(header, |h| Field::Int(h.written_at_ns)),
            ),
            (
                "distributions",
                Field::or_null(self.distributions, Field::Count),
            ),
            (
                "entry_points",
                Field::or_null(self.entry_points, Field::Count),
            ),
            (
                "settledness",
                Field::or_null(self.settledness, Field::Settledness),
            ),
            (
                "write_refusal",
                Field::or_null(self.write_refusal.as_ref(), |cause| {
                    Field::Text(cause.to_string())
                }),
            ),
            (
                "fingerprint_entries",
                Field::or_null(self.fingerprint_entries, Field::Count),
            ),
        ]
    }
}

/// The block `epcache status` prints: the path entry, then indented lines
/// for the cache file, the verdict, the contents, and the path entry's
/// settledness.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path_entry.as_os_str().is_empty() {
            writeln!(f, "'' (current directory)")?;
        } else {
            writeln!(f, "{}", self.path_entry.display())?;
        }
        match &self.index_file {
            Some(file) => writeln!(f, "  cache file:   {}", file.display())?,
            None => writeln!(f, "  cache file:   -")?,
        }
        writeln!(f, "  verdict:      {}", self.lookup)?;
        if let (Some(dists), Some(eps)) = (self.distributions, self.entry_points) {
            writeln!(
                f,
                "  contents:     {dists} distributions, {eps} entry points"
            )?;
        }
        if let Some(entries) = self.fingerprint_entries {
            writeln!(
                f,
                "  provisional:  readers verify it with one listing and {entries} stats until it settles"
            )?;
        }
        match &self.settledness {
            Some(s) => writeln!(f, "  path entry:   {s}")?,
            None => writeln!(f, "  path entry:   -")?,
        }
        if let Some(why) = &self.write_refusal {
            writeln!(f, "  writing:      refused: {why}")?;
        }
        Ok(())
    }
}

#[cfg(feature = "serde")]
mod serialize {
    use serde::ser::{SerializeMap, Serializer};
    use serde::Serialize;

    use super::Field;
    use crate::cache::Status;

    impl Serialize for Field<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self {
                Field::Null => s.serialize_none(),
                Field::Bool(b) => s.serialize_bool(*b),
                Field::Count(n) => s.serialize_u64(*n as u64),
                Field::Int(n) => s.serialize_i64(*n),
                Field::Code(code) => s.serialize_str(code),
                Field::Text(text) => s.serialize_str(text),
                Field::Path(path) => s.serialize_str(&path.display().to_string()),
                Field::Settledness(settledness) => {
                    let mut map = s.serialize_map(Some(2))?;
                    map.serialize_entry("state", settledness.code())?;
                    map.serialize_entry("seconds", &settledness.seconds())?;
                    map.end()
                }
            }
        }
    }

    /// One object: `path_entry`, `index_file`, `verdict` (the lookup's
    /// code), `hit`, `reason` (the lookup's text), `provisional`,
    /// `written_at_ns`, `distributions`, `entry_points`, `settledness`
    /// (`state`, `seconds`), `write_refusal` and `fingerprint_entries`;
    /// Python's `epcache.status()` gives the same keys.
    impl Serialize for Status {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let fields = self.fields();
            let mut map = s.serialize_map(Some(fields.len()))?;
            for (key, value) in &fields {
                map.serialize_entry(key, value)?;
            }
            map.end()
        }
    }
}

//! Running `tests/oracle.py` (the machine's own `importlib.metadata`) and
//! reading its answer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::model::{DistView, EpView};

/// One distribution as `importlib.metadata.distributions()` yields it.
#[derive(Clone, Debug)]
pub struct OracleDist {
    /// `str(dist._path)` without a trailing `/` (zip members have one).
    pub path: String,
    pub name: Option<String>,
    pub version: Option<String>,
    /// `None` when reading them raised.
    pub entry_points: Option<Vec<[String; 3]>>,
    /// The first exception raised while reading the fields, `"Exc: msg"`.
    pub error: Option<String>,
}

impl OracleDist {
    /// The fields as a [`DistView`], with no entry points if they failed.
    pub fn view(&self) -> DistView {
        DistView {
            path: self.path.clone(),
            name: self.name.clone(),
            version: self.version.clone(),
            entry_points: self.entry_points.clone().unwrap_or_default(),
        }
    }
}

/// What the oracle printed.
#[derive(Clone, Debug)]
pub struct Oracle {
    pub python: String,
    pub distributions: Vec<OracleDist>,
    /// De-duplicated entry points in discovery order; `None` if importlib raised.
    pub entry_points: Option<Vec<EpView>>,
    pub entry_points_error: Option<String>,
    /// The stock `entry_points(group=g)` for every group (sorted by group:
    /// serde_json does not keep the order of object keys).
    pub groups: Vec<(String, Vec<EpView>)>,
    pub versions: BTreeMap<String, Option<String>>,
    pub version_errors: BTreeMap<String, String>,
}

impl Oracle {
    pub fn dist_views(&self) -> Vec<DistView> {
        self.distributions.iter().map(OracleDist::view).collect()
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python interpreter the oracle runs on.
pub fn python() -> String {
    std::env::var("EPCACHE_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs the oracle on `paths` (in sys.path order), asking `version()` for
/// every name in `names`.
pub fn run(paths: &[PathBuf], names: &[String]) -> Oracle {
    run_in(None, paths, names)
}

/// [`run`] in another working directory (where `""` on sys.path points).
pub fn run_in(cwd: Option<&Path>, paths: &[PathBuf], names: &[String]) -> Oracle {
    let script = repo_root().join("tests").join("oracle.py");
    let mut cmd = Command::new(python());
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    cmd.arg(&script);
    for name in names {
        assert!(
            !name.contains(','),
            "oracle --names cannot carry a comma: {name:?}"
        );
    }
    if !names.is_empty() {
        cmd.arg(format!("--names={}", names.join(",")));
    }
    cmd.arg("--");
    cmd.args(paths);
    // The oracle must see exactly the given entries, not the user's site.
    cmd.env("PYTHONNOUSERSITE", "1")
        .env_remove("PYTHONPATH")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} {}: {e}", python(), script.display()));
    assert!(
        out.status.success(),
        "oracle failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("oracle output is ASCII");
    parse(&text)
}

/// `json.dumps` writes lone surrogates (how Python spells undecodable
/// bytes in file names) as `\udcXX`, which strict JSON readers refuse.
/// Rewrite each lone surrogate escape as the visible text `\udcXX`
/// (an escaped backslash), keeping proper surrogate pairs.
pub fn escape_lone_surrogates(text: &str) -> String {
    fn hex4(s: &[u8]) -> Option<u32> {
        let digits = std::str::from_utf8(s.get(..4)?).ok()?;
        u32::from_str_radix(digits, 16).ok()
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut literal_start = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        // An escape: `\\`, `\"`, `\n`, ... or `\uXXXX`.
        if bytes.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        let Some(unit) = hex4(&bytes[i + 2..]) else {
            i += 2;
            continue;
        };
        let is_high = (0xD800..0xDC00).contains(&unit);
        let is_low = (0xDC00..0xE000).contains(&unit);
        if is_high
            && bytes.get(i + 6) == Some(&b'\\')
            && bytes.get(i + 7) == Some(&b'u')
            && hex4(&bytes[i + 8..]).is_some_and(|u| (0xDC00..0xE000).contains(&u))
        {
            i += 12; // a proper pair
            continue;
        }
        if is_high || is_low {
            out.push_str(&text[literal_start..i]);
            out.push('\\'); // `\udcXX` becomes `\\udcXX`
            literal_start = i;
        }
        i += 6;
    }
    out.push_str(&text[literal_start..]);
    out
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn string(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_owned()
}

fn triple(v: &Value) -> [String; 3] {
    let a = v.as_array().expect("array");
    [string(&a[0]), string(&a[1]), string(&a[2])]
}

/// A path as importlib prints it, without the trailing `/` that zip
/// members carry, so it can be compared with epcache's `metadata_path`.
pub fn strip_slash(path: &str) -> String {
    path.strip_suffix('/').unwrap_or(path).to_owned()
}

pub fn parse(text: &str) -> Oracle {
    let cleaned = escape_lone_surrogates(text);
    let v: Value = serde_json::from_str(&cleaned)
        .unwrap_or_else(|e| panic!("oracle output is not JSON ({e}):\n{text}"));
    let distributions = v["distributions"]
        .as_array()
        .expect("distributions")
        .iter()
        .map(|d| OracleDist {
            path: strip_slash(d["path"].as_str().expect("path")),
            name: opt_str(&d["name"]),
            version: opt_str(&d["version"]),
            entry_points: d["entry_points"]
                .as_array()
                .map(|eps| eps.iter().map(triple).collect()),
            error: opt_str(&d["error"]),
        })
        .collect();
    let entry_points = v["entry_points"].as_array().map(|eps| {
        eps.iter()
            .map(|e| {
                let a = e.as_array().expect("entry point");
                EpView {
                    group: string(&a[0]),
                    name: string(&a[1]),
                    value: string(&a[2]),
                    dist: opt_str(&a[3]),
                }
            })
            .collect()
    });
    let groups = v["groups"]
        .as_object()
        .expect("groups")
        .iter()
        .map(|(g, eps)| {
            let eps = eps
                .as_array()
                .expect("group")
                .iter()
                .map(|e| {
                    let a = e.as_array().expect("entry point");
                    EpView {
                        group: g.clone(),
                        name: string(&a[0]),
                        value: string(&a[1]),
                        dist: opt_str(&a[2]),
                    }
                })
                .collect();
            (g.clone(), eps)
        })
        .collect();
    let versions = v["versions"]
        .as_object()
        .expect("versions")
        .iter()
        .map(|(k, val)| (k.clone(), opt_str(val)))
        .collect();
    let version_errors = v["version_errors"]
        .as_object()
        .expect("version_errors")
        .iter()
        .map(|(k, val)| (k.clone(), string(val)))
        .collect();
    Oracle {
        python: string(&v["python"]),
        distributions,
        entry_points,
        entry_points_error: opt_str(&v["entry_points_error"]),
        groups,
        versions,
        version_errors,
    }
}

/// `python3`'s own `sys.path` when started with `-c` in `cwd` (so it
/// starts with `""`), in the environment the oracle and the binary use.
pub fn sys_path_in(cwd: &Path) -> Vec<PathBuf> {
    let out = Command::new(python())
        .current_dir(cwd)
        .args(["-c", "import sys, json; print(json.dumps(sys.path))"])
        .env("PYTHONNOUSERSITE", "1")
        .env_remove("PYTHONPATH")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paths: Vec<String> = serde_json::from_slice(&out.stdout).expect("sys.path as JSON");
    paths.into_iter().map(PathBuf::from).collect()
}

/// Whether `python3` and the oracle script can run at all.
pub fn available() -> Result<(), String> {
    let out = Command::new(python())
        .args(["-c", "import sys; assert sys.version_info >= (3, 10)"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} is older than 3.10: {}",
            python(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Paths as the oracle reports them are absolute strings; so are ours.
pub fn path_string(path: &Path) -> String {
    path.to_str().expect("test paths are UTF-8").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_become_visible_text() {
        let text = r#"["caf\udce9", "\ud83d\ude00", "a\\udcff", "\u00e9"]"#;
        let v: Value = serde_json::from_str(&escape_lone_surrogates(text)).unwrap();
        assert_eq!(v[0], "caf\\udce9");
        assert_eq!(v[1], "\u{1F600}");
        assert_eq!(v[2], "a\\udcff");
        assert_eq!(v[3], "é");
    }
}

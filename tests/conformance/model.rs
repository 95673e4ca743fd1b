//! One shape for the answers of importlib, the library and the CLI, so that
//! they can be compared field by field.

use std::fmt::Debug;

use serde_json::Value;

/// One distribution as `distributions()` yields it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistView {
    /// The metadata directory or file, without a trailing `/`.
    pub path: String,
    pub name: Option<String>,
    pub version: Option<String>,
    /// `[group, name, value]` in file order.
    pub entry_points: Vec<[String; 3]>,
}

/// One entry point as `entry_points()` yields it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpView {
    pub group: String,
    pub name: String,
    pub value: String,
    /// The metadata `Name` of the owning distribution.
    pub dist: Option<String>,
}

/// The library's `distributions()`.
pub fn lib_dists(env: &epcache::Environment) -> Vec<DistView> {
    env.distributions()
        .map(|d| DistView {
            path: d.metadata_path().to_str().expect("UTF-8 path").to_owned(),
            name: d.name().map(str::to_owned),
            version: d.version().map(str::to_owned),
            entry_points: d
                .entry_points()
                .map(|e| [e.group.to_owned(), e.name.to_owned(), e.value.to_owned()])
                .collect(),
        })
        .collect()
}

/// The library's `entry_points(selection)`.
pub fn lib_eps(env: &epcache::Environment, selection: &epcache::Selection) -> Vec<EpView> {
    env.entry_points(selection)
        .map(|e| EpView {
            group: e.group.to_owned(),
            name: e.name.to_owned(),
            value: e.value.to_owned(),
            dist: e.dist.name().map(str::to_owned),
        })
        .collect()
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn string(v: &Value, what: &str) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, got {v}"))
        .to_owned()
}

/// `epcache distributions --json` output, with each object's diagnostics.
pub fn cli_dists(json: &Value) -> Vec<(DistView, Vec<String>)> {
    json.as_array()
        .expect("distributions --json prints an array")
        .iter()
        .map(|d| {
            for key in [
                "name",
                "normalized_name",
                "version",
                "path_entry",
                "metadata_path",
                "kind",
                "entry_points",
                "diagnostics",
            ] {
                assert!(d.get(key).is_some(), "distribution JSON lacks {key:?}: {d}");
            }
            let view = DistView {
                path: string(&d["metadata_path"], "metadata_path"),
                name: opt_str(&d["name"]),
                version: opt_str(&d["version"]),
                entry_points: d["entry_points"]
                    .as_array()
                    .expect("entry_points")
                    .iter()
                    .map(|e| {
                        [
                            string(&e["group"], "group"),
                            string(&e["name"], "name"),
                            string(&e["value"], "value"),
                        ]
                    })
                    .collect(),
            };
            let diagnostics = d["diagnostics"]
                .as_array()
                .expect("diagnostics")
                .iter()
                .map(|m| string(m, "diagnostic"))
                .collect();
            (view, diagnostics)
        })
        .collect()
}

/// `epcache entry-points --json` output.
pub fn cli_eps(json: &Value) -> Vec<EpView> {
    json.as_array()
        .expect("entry-points --json prints an array")
        .iter()
        .map(|e| EpView {
            group: string(&e["group"], "group"),
            name: string(&e["name"], "name"),
            value: string(&e["value"], "value"),
            dist: opt_str(&e["distribution"]),
        })
        .collect()
}

/// Asserts that two lists are equal, showing the first difference.
#[track_caller]
pub fn assert_same<T: PartialEq + Debug>(what: &str, expected: &[T], actual: &[T]) {
    if expected == actual {
        return;
    }
    let differing: Vec<usize> = (0..expected.len().max(actual.len()))
        .filter(|&i| expected.get(i) != actual.get(i))
        .collect();
    let mut msg = format!(
        "{what}: importlib and epcache differ (importlib has {}, epcache has {}) at {} positions\n",
        expected.len(),
        actual.len(),
        differing.len()
    );
    for &i in differing.iter().take(6) {
        msg += &format!(
            "#{i}\n  importlib: {:?}\n  epcache:   {:?}\n",
            expected.get(i),
            actual.get(i)
        );
    }
    if expected.len() + actual.len() <= 60 {
        msg += &format!("full importlib: {expected:#?}\nfull epcache: {actual:#?}\n");
    }
    panic!("{msg}");
}

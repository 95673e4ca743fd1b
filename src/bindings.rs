//! The native half of the Python package: the extension module
//! `epcache._epcache`, compiled only with the `python` cargo feature and
//! built by maturin (see `pyproject.toml`).
//!
//! It does as little as it can in Python objects. [`snapshot`] consults the
//! cache for the `sys.path` entries in effect at the call and returns a
//! [`Snapshot`]; the Python side then asks it for exactly what a query needs
//! (one group's entry points, one distribution), as plain tuples of `str`.
//!
//! The last snapshot is kept by the per-process memo (`crate::memo`, which
//! states its rules): a repeated call with unchanged path entries returns
//! the *same* `Snapshot` object, so the Python side can keep the objects it
//! built for it. This module only translates between Python objects and
//! the memo.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::cache::memo::{Answer, Memo};
use crate::cache::status::Field;
use crate::{Consulted, Distribution, Environment, Key, Outcome, Publish, Selection};

/// `(name, version, unique_key, entry position, metadata name, kind)`.
type DistTuple<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    usize,
    &'a str,
    &'static str,
);

/// `(path, lookup code, publish code or None, text, distributions)`.
type RebuildTuple = (OsString, &'static str, Option<&'static str>, String, usize);

/// The module's state: the cache, the last snapshot and the counters.
type State = Memo<Py<Snapshot>>;

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Runs one call into the library, turning a Rust panic into a Python
/// `RuntimeError`. PyO3 would raise `PanicException`, a `BaseException`
/// that the Python front's `except Exception` (and a user's program) would
/// not catch; a `RuntimeError` makes the call fall back to the stock
/// function instead, and is counted as an error in `epcache.stats()`.
fn guarded<T>(call: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            Err(PyRuntimeError::new_err(format!(
                "epcache internal error: {message}"
            )))
        }
    }
}

/// Runs `f` on the module state, creating it from the environment on first
/// use. The GIL stays held throughout, so no other thread can be waiting
/// for the GIL while holding this lock.
fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let mut guard = STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    f(guard.get_or_insert_with(State::from_env))
}

/// The path entries of a Python sequence. Only `str` items are accepted:
/// importlib.metadata itself fails on others, so the caller falls back.
fn path_entries(paths: &Bound<'_, PyAny>) -> PyResult<Vec<PathBuf>> {
    let mut entries = Vec::new();
    for item in paths.try_iter()? {
        let item = item?;
        if !item.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(
                "epcache handles only str path entries",
            ));
        }
        entries.push(item.extract::<PathBuf>()?);
    }
    Ok(entries)
}

/// The combined indexes of one `sys.path`, as of one call.
#[pyclass(frozen, module = "epcache._epcache")]
struct Snapshot {
    env: Environment,
    outcomes: Vec<Outcome>,
    /// The key each entry's answer describes (see [`Consulted::key`]).
    keys: Vec<Option<Key>>,
    /// The global number of the first distribution of each path entry.
    offsets: Vec<usize>,
    memoized: bool,
}

impl Snapshot {
    fn new(consulted: Vec<Consulted>, memoized: bool) -> Snapshot {
        let mut indexes = Vec::with_capacity(consulted.len());
        let mut outcomes = Vec::with_capacity(consulted.len());
        let mut keys = Vec::with_capacity(consulted.len());
        for c in consulted {
            indexes.push(c.index);
            outcomes.push(c.outcome);
            keys.push(c.key);
        }
        let env = Environment::from_indexes(indexes);
        let mut offsets = Vec::with_capacity(env.indexes().len());
        let mut total = 0;
        for index in env.indexes() {
            offsets.push(total);
            total += index.len();
        }
        Snapshot {
            env,
            outcomes,
            keys,
            offsets,
            memoized,
        }
    }

    fn entry_position(&self, dist: &Distribution<'_>) -> usize {
        let index = dist.index();
        self.env
            .indexes()
            .iter()
            .position(|candidate| std::ptr::eq(candidate, index))
            .expect("a distribution belongs to one of the snapshot's indexes")
    }

    /// The global number of a distribution: its place in `distributions()`.
    fn number(&self, dist: &Distribution<'_>) -> usize {
        self.offsets[self.entry_position(dist)] + dist.position()
    }

    fn get(&self, number: usize) -> Option<(usize, Distribution<'_>)> {
        let entry = self
            .offsets
            .partition_point(|&o| o <= number)
            .checked_sub(1)?;
        let dist = self.env.indexes()[entry].distribution_at(number - self.offsets[entry])?;
        Some((entry, dist))
    }

    fn get_or_raise(&self, number: usize) -> PyResult<(usize, Distribution<'_>)> {
        self.get(number)
            .ok_or_else(|| pyo3::exceptions::PyIndexError::new_err(number))
    }
}

fn dist_tuple<'a>(entry: usize, dist: &Distribution<'a>) -> DistTuple<'a> {
    (
        dist.name(),
        dist.version(),
        dist.unique_key(),
        entry,
        dist.metadata_name(),
        dist.kind().as_str(),
    )
}

#[pymethods]
impl Snapshot {
    /// Whether the per-process memo may reuse this snapshot.
    #[getter]
    fn memoized(&self) -> bool {
        self.memoized
    }

    /// Each path entry's key as `(mtime_ns, ctime_ns, inode, size)`, the
    /// one its answer describes, or `None` where it could not be opened:
    /// what `os.stat` gives while nothing changed, so the installer hook
    /// needs no `stat` of its own.
    fn keys(&self) -> Vec<Option<(i64, i64, u64, u64)>> {
        self.keys
            .iter()
            .map(|k| k.map(|k| (k.mtime_ns, k.ctime_ns, k.inode, k.size)))
            .collect()
    }

    /// Whether every path entry's scan read everything it tried to (see
    /// `Index::is_complete`). The Python front answers from an incomplete
    /// snapshot with the stock functions.
    #[getter]
    fn complete(&self) -> bool {
        self.env.indexes().iter().all(|index| index.is_complete())
    }

    /// The path entries, as given.
    fn path_entries(&self) -> Vec<&OsStr> {
        self.env
            .indexes()
            .iter()
            .map(|i| i.path_entry().as_os_str())
            .collect()
    }

    /// Per path entry: `(path, lookup code, publish code or None, text)`.
    fn outcomes(&self) -> Vec<(&OsStr, &'static str, Option<&'static str>, String)> {
        self.env
            .indexes()
            .iter()
            .zip(&self.outcomes)
            .map(|(index, o)| {
                // A file found damaged by a query after its consult reports
                // what the consult would have.
                let o = index.late_outcome().unwrap_or(o);
                (
                    index.path_entry().as_os_str(),
                    o.lookup.code(),
                    o.publish.as_ref().map(Publish::code),
                    o.to_string(),
                )
            })
            .collect()
    }

    /// How many path entries were answered from a cache file.
    fn hit_count(&self) -> usize {
        self.env
            .indexes()
            .iter()
            .zip(&self.outcomes)
            .filter(|(index, o)| index.late_outcome().unwrap_or(o).is_hit())
            .count()
    }

    fn __len__(&self) -> usize {
        self.env.indexes().iter().map(|i| i.len()).sum()
    }

    /// Every distribution in `distributions()` order, as
    /// `(name, version, unique_key, entry, metadata_name, kind)`.
    fn dists(&self) -> PyResult<Vec<DistTuple<'_>>> {
        guarded(|| {
            Ok(self
                .env
                .indexes()
                .iter()
                .enumerate()
                .flat_map(|(entry, index)| {
                    index.distributions().map(move |d| dist_tuple(entry, &d))
                })
                .collect())
        })
    }

    /// One distribution by its number, as in `dists()`.
    fn dist(&self, number: usize) -> PyResult<DistTuple<'_>> {
        guarded(|| {
            let (entry, dist) = self.get_or_raise(number)?;
            Ok(dist_tuple(entry, &dist))
        })
    }

    /// The numbers of the distributions `entry_points()` reads: the first
    /// per de-duplication key.
    fn unique(&self) -> PyResult<Vec<usize>> {
        guarded(|| {
            Ok(self
                .env
                .unique_distributions()
                .map(|d| self.number(&d))
                .collect())
        })
    }

    /// Entry points like `entry_points(group=, name=)`, as
    /// `(name, value, group, distribution number)`. Only the selected ones
    /// cross into Python.
    #[pyo3(signature = (group=None, name=None))]
    fn entry_points<'py>(
        &self,
        py: Python<'py>,
        group: Option<String>,
        name: Option<String>,
    ) -> PyResult<Bound<'py, PyList>> {
        guarded(|| {
            let selection = Selection { group, name };
            let out = PyList::empty(py);
            // One `str` object per group name, shared by its entry points,
            // and one `int` per distribution.
            let mut groups: HashMap<&str, Bound<'py, PyString>> = HashMap::new();
            let mut last: Option<(&crate::Index, usize, Bound<'py, PyAny>)> = None;
            for ep in self.env.entry_points(&selection) {
                let dist = &ep.dist;
                let number = match &last {
                    Some((index, position, number))
                        if std::ptr::eq(*index, dist.index()) && *position == dist.position() =>
                    {
                        number.clone()
                    }
                    _ => {
                        let number = self.number(dist).into_pyobject(py)?.into_any();
                        last = Some((dist.index(), dist.position(), number.clone()));
                        number
                    }
                };
                let group = groups
                    .entry(ep.group)
                    .or_insert_with(|| PyString::new(py, ep.group))
                    .clone()
                    .into_any();
                let item = PyTuple::new(
                    py,
                    [
                        PyString::new(py, ep.name).into_any(),
                        PyString::new(py, ep.value).into_any(),
                        group,
                        number,
                    ],
                )?;
                out.append(item)?;
            }
            Ok(out)
        })
    }

    /// Several distributions by number, as in `dists()`.
    fn dists_for(&self, numbers: Vec<usize>) -> PyResult<Vec<DistTuple<'_>>> {
        guarded(|| {
            numbers
                .into_iter()
                .map(|number| {
                    let (entry, dist) = self.get_or_raise(number)?;
                    Ok(dist_tuple(entry, &dist))
                })
                .collect()
        })
    }

    /// One distribution's entry points in file order, as
    /// `(name, value, group)`.
    fn dist_entry_points(&self, number: usize) -> PyResult<Vec<(&str, &str, &str)>> {
        guarded(|| {
            let (_, dist) = self.get_or_raise(number)?;
            Ok(dist
                .entry_points()
                .map(|ep| (ep.name, ep.value, ep.group))
                .collect())
        })
    }

    /// Every distribution's entry points, in `dists()` order: one tuple of
    /// `(name, value, group)` per distribution, in file order. For a
    /// program that lists the distributions and asks each for its entry
    /// points (pluggy, flake8): one call instead of one per distribution,
    /// with one `str` object per group name.
    fn all_dist_entry_points<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        guarded(|| {
            let out = PyList::empty(py);
            let none = PyTuple::empty(py);
            let mut groups: HashMap<&str, Bound<'py, PyString>> = HashMap::new();
            for index in self.env.indexes() {
                for dist in index.distributions() {
                    let mut eps = Vec::new();
                    for ep in dist.entry_points() {
                        let group = groups
                            .entry(ep.group)
                            .or_insert_with(|| PyString::new(py, ep.group))
                            .clone()
                            .into_any();
                        eps.push(PyTuple::new(
                            py,
                            [
                                PyString::new(py, ep.name).into_any(),
                                PyString::new(py, ep.value).into_any(),
                                group,
                            ],
                        )?);
                    }
                    if eps.is_empty() {
                        out.append(&none)?;
                    } else {
                        out.append(PyTuple::new(py, eps)?)?;
                    }
                }
            }
            Ok(out)
        })
    }

    /// What could not be read for one distribution.
    fn dist_diagnostics(&self, number: usize) -> PyResult<Vec<&str>> {
        guarded(|| {
            let (_, dist) = self.get_or_raise(number)?;
            Ok(dist.diagnostics().collect())
        })
    }

    /// The numbers of every distribution importlib finds for `name`, in the
    /// order it finds them (each flavor picks from these by its own rule).
    fn find_all(&self, name: &str) -> PyResult<Vec<usize>> {
        guarded(|| {
            Ok(self
                .env
                .distributions_named(name)
                .map(|d| self.number(&d))
                .collect())
        })
    }
}

/// Consults the cache for `paths` (normally `sys.path`, as it is now).
#[pyfunction]
fn snapshot(py: Python<'_>, paths: &Bound<'_, PyAny>) -> PyResult<Py<Snapshot>> {
    guarded(|| {
        let given = path_entries(paths)?;
        with_state(|state| {
            let answer = state.answer(given, |consulted, memoized| {
                Py::new(py, Snapshot::new(consulted, memoized))
            })?;
            // A kept snapshot is shared, so a reuse returns the same object.
            Ok(match answer {
                Answer::Kept(snapshot) => snapshot.clone_ref(py),
                Answer::Fresh(snapshot) => snapshot,
            })
        })
    })
}

/// Rebuilds the index of each path entry; returns
/// `(path, lookup code, publish code or None, text, distributions)`.
#[pyfunction]
fn rebuild(paths: &Bound<'_, PyAny>) -> PyResult<Vec<RebuildTuple>> {
    guarded(|| {
        let given = path_entries(paths)?;
        let rebuilt = with_state(|state| state.rebuild(&given));
        Ok(given.into_iter().zip(rebuilt).map(rebuild_tuple).collect())
    })
}

/// One rebuilt path entry, named as given.
fn rebuild_tuple((path, consulted): (PathBuf, Consulted)) -> RebuildTuple {
    let o = consulted.outcome;
    (
        path.into_os_string(),
        o.lookup.code(),
        o.publish.as_ref().map(Publish::code),
        o.to_string(),
        consulted.index.len(),
    )
}

/// Reports on each path entry without scanning or writing: a list of dicts.
#[pyfunction]
fn status<'py>(py: Python<'py>, paths: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyDict>>> {
    guarded(|| {
        let given = path_entries(paths)?;
        let statuses: Vec<_> =
            with_state(|state| given.iter().map(|p| state.cache().status(p)).collect());
        statuses
            .into_iter()
            .map(|s| {
                let d = PyDict::new(py);
                for (key, value) in s.fields() {
                    d.set_item(key, field(py, value)?)?;
                }
                Ok(d)
            })
            .collect()
    })
}

/// One field of a status as a Python object: paths as `str` (through
/// `os.fsdecode`), settledness as a dict of `state` and `seconds`.
fn field<'py>(py: Python<'py>, value: Field<'_>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Field::Null => py.None().into_bound(py),
        Field::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Field::Count(n) => n.into_pyobject(py)?.into_any(),
        Field::Int(n) => n.into_pyobject(py)?.into_any(),
        Field::Code(code) => PyString::new(py, code).into_any(),
        Field::Text(text) => PyString::new(py, &text).into_any(),
        Field::Path(path) => path.as_os_str().into_pyobject(py)?.into_any(),
        Field::Settledness(settledness) => {
            let d = PyDict::new(py);
            d.set_item("state", settledness.code())?;
            d.set_item("seconds", settledness.seconds())?;
            d.into_any()
        }
    })
}

/// The cache directory in use, or `None` when the cache is disabled.
#[pyfunction]
fn cache_dir() -> Option<OsString> {
    with_state(|state| state.cache().dir().map(|d| d.root().as_os_str().to_owned()))
}

/// The settle time in force, in seconds.
#[pyfunction]
fn settle_secs() -> f64 {
    with_state(|state| state.cache().settle().as_secs_f64())
}

/// What this process's queries did so far.
#[pyfunction]
fn counters(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let c = with_state(|state| state.counters());
    let d = PyDict::new(py);
    d.set_item("snapshots", c.snapshots)?;
    d.set_item("memo_reuses", c.memo_reuses)?;
    d.set_item("consults", c.consults)?;
    d.set_item("hits", c.hits)?;
    d.set_item("scans", c.scans)?;
    Ok(d)
}

/// Forgets the memo and reads `EPCACHE_DIR`, `EPCACHE_DISABLE` and
/// `EPCACHE_SETTLE_SECS` again. Counters are kept.
#[pyfunction]
fn reset() {
    with_state(State::reset)
}

/// epcache's native module: the cache, consulted from Python.
#[pymodule]
#[pyo3(name = "_epcache")]
fn epcache_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Snapshot>()?;
    m.add_function(wrap_pyfunction!(snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(rebuild, m)?)?;
    m.add_function(wrap_pyfunction!(status, m)?)?;
    m.add_function(wrap_pyfunction!(cache_dir, m)?)?;
    m.add_function(wrap_pyfunction!(settle_secs, m)?)?;
    m.add_function(wrap_pyfunction!(counters, m)?)?;
    m.add_function(wrap_pyfunction!(reset, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

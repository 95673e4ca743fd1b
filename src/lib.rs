//! epcache answers "which Python distributions are installed here, and
//! which entry points do they declare?" the way `importlib.metadata` does,
//! from one small index per `sys.path` entry.
//!
//! # Scanning
//!
//! [`scan`](fn@scan) reads one path entry (a directory or a zip file) into an
//! [`Index`]: every `*.dist-info` and `*.egg-info` (directory or file) and
//! an `.egg`'s `EGG-INFO`, with name, version and entry points, in the
//! order importlib.metadata discovers them. [`Environment`] combines the
//! indexes of a whole `sys.path` and answers `distributions()`,
//! `entry_points()` and `distribution(name)` with importlib's precedence.
//!
//! ```no_run
//! use epcache::{Environment, Selection};
//!
//! let env = Environment::scan(["/usr/lib/python3/dist-packages"]);
//! for ep in env.entry_points(&Selection::group("console_scripts")) {
//!     println!("{} = {} ({:?})", ep.name, ep.value, ep.dist.name());
//! }
//! ```
//!
//! # The cache
//!
//! [`Cache`] keeps one index file per path entry in the per-user cache
//! directory (`EPCACHE_DIR` overrides it, `EPCACHE_DISABLE=1` turns it
//! off). [`Cache::consult`] trusts a file only while the path entry's
//! `stat` equals the one stored in it, and otherwise scans and, once the
//! directory has been left alone for the settle time, publishes a new file
//! by atomic rename, without any lock. [`Cache::rebuild`] is the installer
//! side: inside the settle window it publishes a *provisional* index that
//! readers verify against a fingerprint of the directory. Every cache
//! failure is a miss and a scan; the [`Outcome`] says what happened.
//!
//! A consult checks only the head of a fresh file (one 4 KiB read); the
//! index keeps the file open and reads each part of it — one group's entry
//! points, one bucket of names, one page of distributions — when a query
//! first needs it, checked against its own checksum. So a query costs what
//! its answer needs, however large the environment. A part found damaged
//! then is never used: the index rescans and republishes, and says so in
//! [`Index::late_outcome`].
//!
//! A scan whose reads failed for a reason that may pass (permission
//! denied, too many open files, an I/O error) still answers, with
//! diagnostics, but is [incomplete](Index::is_complete) and never
//! published. The path entry is opened once, and its key is taken from
//! that handle, so an index always describes the directory it was read
//! from. Nothing at or below the cache root is followed through a symlink.
//!
//! ```no_run
//! use epcache::{Cache, Selection};
//!
//! let cache = Cache::from_env();
//! let (env, outcomes) = cache.consult_all(["/usr/lib/python3/dist-packages"]);
//! let scripts = env.entry_points(&Selection::group("console_scripts")).count();
//! println!("{scripts} console scripts; {}", outcomes[0]);
//! ```
//!
//! `docs/design.md` gives the rules and their reasons, `docs/format.md`
//! the file layout.
//!
//! # Features
//!
//! * `cli` (on by default): the `epcache` command, and with it clap, serde
//!   and serde_json. The library uses none of them except serde for the
//!   `serde` feature, which `cli` turns on; build with
//!   `default-features = false` to leave them out.
//! * `serde`: [`Status`] implements `serde::Serialize`, with the fields
//!   the CLI's `status --json` prints; `cli` turns it on.
//! * `python`: the PyO3 extension module `epcache._epcache` behind the
//!   Python package (maturin builds it without `cli`; see `docs/python.md`).
//!
//! # Where epcache knowingly differs from importlib.metadata
//!
//! * A line without `=` in `entry_points.txt` makes importlib fail for the
//!   whole environment. epcache drops that line and records a
//!   [diagnostic](Distribution::diagnostics); everything else stays visible.
//! * Text that is not valid UTF-8 makes importlib fail too. epcache skips
//!   only the offending lines, with a diagnostic.
//! * `METADATA` is read only as far as its first `Name` and `Version` (and
//!   any continuation lines of theirs), so nothing after them, neither
//!   later headers nor the long description, can affect the answer. Not
//!   valid UTF-8 there is not reported, where importlib would fail.
//! * Normalized names use `-` (PEP 503); importlib uses `_` internally.
//!   Equality between names is the same either way.
//! * A child whose file name is not valid UTF-8 is skipped with a
//!   diagnostic on the index.
//! * A metadata file (or path entry) that is a FIFO, socket or device is
//!   never read: it is skipped with a diagnostic, where importlib would
//!   block or read without end. A metadata file over 64 MiB is not read
//!   either; that scan is [incomplete](Index::is_complete), and the Python
//!   hook lets stock answer it.

#![warn(missing_docs)]
// The platform layer is rustix; only PyO3's generated glue needs `unsafe`.
#![cfg_attr(not(feature = "python"), forbid(unsafe_code))]

#[cfg(feature = "python")]
mod bindings;
mod cache;
mod cache_dir;
mod entry_points;
mod error;
mod file_index;
mod fingerprint;
mod format;
mod freshness;
mod index;
mod maintenance;
#[cfg(any(test, feature = "python"))]
mod memo;
mod metadata;
mod outcome;
mod pipeline;
mod platform;
mod pystr;
mod python;
mod query;
mod read_buf;
mod scan;
mod status;

pub use cache::{Cache, Consulted, Status, ENV_DISABLE, ENV_SETTLE};
pub use cache_dir::{CacheDir, ENV_DIR};
pub use error::{Error, ErrorKind, Result};
pub use format::{inspect, CacheFile, FormatError, Header, SectionInfo, FORMAT_VERSION, MAGIC};
pub use freshness::{Key, Settledness, DEFAULT_SETTLE};
pub use index::{Distribution, EntryPoint, Index, Kind};
pub use maintenance::{ClearReport, PruneReport};
pub use outcome::{Cause, IoCause, Lookup, Outcome, Publish};
pub use pystr::normalize_name;
pub use python::sys_path;
pub use query::{Environment, Selection};
pub use scan::scan;

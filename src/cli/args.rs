//! The command-line grammar.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};

/// Python distributions and entry points, as importlib.metadata sees them,
/// from a per-path-entry cache.
///
/// Environment: EPCACHE_DIR overrides the cache location, EPCACHE_DISABLE=1
/// turns the cache off, EPCACHE_SETTLE_SECS changes the 10 s settle time.
#[derive(Debug, Parser)]
#[command(name = "epcache", version, about, long_about)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every distribution, like importlib.metadata.distributions().
    Distributions {
        #[command(flatten)]
        common: Common,
    },
    /// List entry points, like importlib.metadata.entry_points().
    EntryPoints {
        #[command(flatten)]
        common: Common,
        /// Only entry points of this group (exact match).
        #[arg(long, short)]
        group: Option<String>,
        /// Only entry points of this name (exact match).
        #[arg(long, short)]
        name: Option<String>,
    },
    /// Show, per path entry, the cache file and whether it can be trusted.
    Status {
        #[command(flatten)]
        common: Common,
    },
    /// Scan path entries and publish their index files under the usual rules.
    Rebuild {
        #[command(flatten)]
        common: Common,
    },
    /// Remove stale temporary files, index files of vanished path entries,
    /// and other format versions.
    Prune {
        /// Remove temporary files at least this many seconds old.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600.0)]
        temp_age: f64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove every index file of the current format version.
    Clear {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Options shared by the query commands.
#[derive(Debug, ClapArgs)]
pub struct Common {
    /// Path entries to read, in sys.path order. Default: the sys.path of
    /// the interpreter given by --python.
    /// (`''` is the current directory, as on sys.path.)
    #[arg(value_name = "PATH")]
    pub paths: Vec<std::ffi::OsString>,
    /// Interpreter whose sys.path is used when no PATH is given.
    #[arg(long, value_name = "EXE", default_value = "python3")]
    pub python: PathBuf,
    /// Print one JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

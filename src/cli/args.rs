//! The command-line grammar.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};

/// Python distributions and entry points, as importlib.metadata sees them,
/// from a per-path-entry cache.
#[derive(Debug, Parser)]
#[command(name = "epcache", version, about, long_about = None)]
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
}

/// Options shared by the query commands.
#[derive(Debug, ClapArgs)]
pub struct Common {
    /// Path entries to read, in sys.path order. Default: the sys.path of
    /// the interpreter given by --python.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Interpreter whose sys.path is used when no PATH is given.
    #[arg(long, value_name = "EXE", default_value = "python3")]
    pub python: PathBuf,
    /// Print one JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

//! Command-line parsing, dispatch and error reporting.

mod args;
mod render;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use args::{Args, Command, Common};
use epcache::{Environment, Selection};

pub fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // Output piped into `head` closing early is not a failure.
        Err(CliError::Io(err)) if err.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("epcache: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Everything that can end a command early.
#[derive(Debug)]
enum CliError {
    Epcache(epcache::Error),
    Io(io::Error),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Epcache(err) => err.fmt(f),
            CliError::Io(err) => write!(f, "writing output: {err}"),
        }
    }
}

impl From<epcache::Error> for CliError {
    fn from(err: epcache::Error) -> Self {
        CliError::Epcache(err)
    }
}

impl From<io::Error> for CliError {
    fn from(err: io::Error) -> Self {
        CliError::Io(err)
    }
}

fn run(args: Args) -> Result<(), CliError> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match args.command {
        Command::Distributions { common } => {
            let env = load(&common)?;
            if common.json {
                render::distributions_json(&mut out, &env)?;
            } else {
                render::distributions_table(&mut out, &env)?;
            }
        }
        Command::EntryPoints {
            common,
            group,
            name,
        } => {
            let env = load(&common)?;
            let selection = Selection { group, name };
            if common.json {
                render::entry_points_json(&mut out, &env, &selection)?;
            } else {
                render::entry_points_table(&mut out, &env, &selection)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The path entries to work on: the ones given, or the interpreter's.
fn path_entries(common: &Common) -> Result<Vec<PathBuf>, CliError> {
    if !common.paths.is_empty() {
        return Ok(common.paths.clone());
    }
    Ok(epcache::python::sys_path(&common.python)?)
}

fn load(common: &Common) -> Result<Environment, CliError> {
    Ok(Environment::scan(path_entries(common)?))
}

//! Command-line parsing, dispatch and error reporting.

mod args;
mod render;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use args::{Args, Command, Common};
use epcache::{Cache, Environment, Selection};

pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(err) => return usage_error(err),
    };
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

/// Prints `--help` and `--version` as clap renders them, and any other
/// parse error as one line (clap's first, without its "error: " prefix),
/// exiting 2 as clap does.
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return if err.use_stderr() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let rendered = err.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid arguments");
    let message = first.strip_prefix("error: ").unwrap_or(first);
    eprintln!("epcache: {message} (see 'epcache --help')");
    ExitCode::from(2)
}

/// Everything that can end a command early.
#[derive(Debug)]
enum CliError {
    Epcache(epcache::Error),
    Io(io::Error),
    Usage(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Epcache(err) => err.fmt(f),
            CliError::Io(err) => write!(f, "writing output: {err}"),
            CliError::Usage(message) => f.write_str(message),
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
    let cache = Cache::from_env();
    match args.command {
        Command::Distributions { common } => {
            let env = load(&cache, &common)?;
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
            let env = load(&cache, &common)?;
            let selection = Selection { group, name };
            if common.json {
                render::entry_points_json(&mut out, &env, &selection)?;
            } else {
                render::entry_points_table(&mut out, &env, &selection)?;
            }
        }
        Command::Status { common } => {
            let statuses: Vec<_> = path_entries(&common)?
                .iter()
                .map(|p| cache.status(p))
                .collect();
            render::statuses(&mut out, &statuses, common.json)?;
        }
        Command::Rebuild { common } => {
            let rebuilt: Vec<_> = path_entries(&common)?
                .iter()
                .map(|p| cache.rebuild(p))
                .collect();
            render::rebuilt(&mut out, &rebuilt, common.json)?;
        }
        Command::Prune { temp_age, json } => {
            let temp_age = std::time::Duration::try_from_secs_f64(temp_age).map_err(|_| {
                CliError::Usage(format!(
                    "--temp-age must be a non-negative number of seconds, not {temp_age}"
                ))
            })?;
            let report = match cache.dir() {
                Some(dir) => Some(dir.prune(temp_age)?),
                None => None,
            };
            render::pruned(&mut out, report.as_ref(), json)?;
        }
        Command::Clear { json } => {
            let report = match cache.dir() {
                Some(dir) => Some(dir.clear()?),
                None => None,
            };
            render::cleared(&mut out, report.as_ref(), json)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The path entries to work on: the ones given, or the interpreter's.
fn path_entries(common: &Common) -> Result<Vec<PathBuf>, CliError> {
    if !common.paths.is_empty() {
        // OsString rather than PathBuf: clap refuses an empty PathBuf, and
        // `''` is a real sys.path entry (the current directory).
        return Ok(common.paths.iter().map(PathBuf::from).collect());
    }
    Ok(epcache::sys_path(&common.python)?)
}

fn load(cache: &Cache, common: &Common) -> Result<Environment, CliError> {
    Ok(cache.consult_all(path_entries(common)?).environment)
}

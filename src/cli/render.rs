//! Tables for people, JSON for programs.

use std::borrow::Cow;
use std::io::{self, Write};

use serde::Serialize;

use epcache::{ClearReport, Consulted, Distribution, Environment, PruneReport, Selection, Status};

#[derive(Serialize)]
struct EntryPointJson<'a> {
    group: &'a str,
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct DistributionJson<'a> {
    name: Option<&'a str>,
    normalized_name: Option<&'a str>,
    version: Option<&'a str>,
    path_entry: String,
    metadata_path: String,
    kind: &'static str,
    entry_points: Vec<EntryPointJson<'a>>,
    diagnostics: Vec<&'a str>,
}

#[derive(Serialize)]
struct SelectedEntryPointJson<'a> {
    group: &'a str,
    name: &'a str,
    value: &'a str,
    distribution: Option<&'a str>,
}

fn distribution_json<'a>(dist: &Distribution<'a>) -> DistributionJson<'a> {
    DistributionJson {
        name: dist.name(),
        normalized_name: dist.normalized_name(),
        version: dist.version(),
        path_entry: dist.path_entry().display().to_string(),
        metadata_path: dist.metadata_path().display().to_string(),
        kind: dist.kind().as_str(),
        entry_points: dist
            .entry_points()
            .map(|ep| EntryPointJson {
                group: ep.group,
                name: ep.name,
                value: ep.value,
            })
            .collect(),
        diagnostics: dist.diagnostics().collect(),
    }
}

fn write_json(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

pub fn distributions_json(out: &mut impl Write, env: &Environment) -> io::Result<()> {
    let dists: Vec<_> = env.distributions().map(|d| distribution_json(&d)).collect();
    write_json(out, &dists)
}

pub fn entry_points_json(
    out: &mut impl Write,
    env: &Environment,
    selection: &Selection,
) -> io::Result<()> {
    let eps: Vec<_> = env
        .entry_points(selection)
        .map(|ep| SelectedEntryPointJson {
            group: ep.group,
            name: ep.name,
            value: ep.value,
            distribution: ep.dist.name(),
        })
        .collect();
    write_json(out, &eps)
}

/// Columns are padded to their widest cell up to this many characters; a
/// longer cell overflows its column rather than widen every row with it.
const MAX_COLUMN_WIDTH: usize = 60;

/// How many characters `cell` takes, up to [`MAX_COLUMN_WIDTH`].
fn width_of(cell: &str) -> usize {
    if cell.is_ascii() {
        cell.len()
    } else {
        cell.chars().count()
    }
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
///
/// `rows` is called twice, once to measure the columns and once to write
/// them, so that a table of thousands of rows (one group's entry points in
/// a large environment) is never held in memory: its cells borrow what the
/// index holds, and padding is written in runs.
fn write_table<'r, const N: usize, I>(
    out: &mut impl Write,
    header: [&str; N],
    rows: impl Fn() -> I,
) -> io::Result<()>
where
    I: Iterator<Item = [Cow<'r, str>; N]>,
{
    const SPACES: &[u8; 64] = &[b' '; 64];
    let mut widths = header.map(|h| width_of(h).min(MAX_COLUMN_WIDTH));
    for row in rows() {
        for (width, cell) in widths.iter_mut().zip(&row) {
            *width = (*width).max(width_of(cell).min(MAX_COLUMN_WIDTH));
        }
    }
    let mut write_row = |cells: [&str; N]| -> io::Result<()> {
        for (i, cell) in cells.iter().enumerate() {
            out.write_all(cell.as_bytes())?;
            if i + 1 == N {
                out.write_all(b"\n")?;
            } else {
                let mut padding = widths[i].saturating_sub(width_of(cell)) + 2;
                while padding > 0 {
                    let run = padding.min(SPACES.len());
                    out.write_all(&SPACES[..run])?;
                    padding -= run;
                }
            }
        }
        Ok(())
    };
    write_row(header)?;
    for row in rows() {
        write_row(row.each_ref().map(|cell| &**cell))?;
    }
    Ok(())
}

fn or_dash(value: Option<&str>) -> Cow<'_, str> {
    match value {
        None => Cow::Borrowed("-"),
        // A short name is scanned inline: no call per cell.
        Some(v) if v.bytes().any(|b| b == b'\n') => Cow::Owned(v.replace('\n', "\\n")),
        Some(v) => Cow::Borrowed(v),
    }
}

/// Diagnostics go to stderr so that the table stays clean for `grep`.
fn report_diagnostics(env: &Environment) {
    for index in env.indexes() {
        for message in index.diagnostics() {
            eprintln!("warning: {}: {message}", index.path_entry().display());
        }
    }
    for dist in env.indexes().iter().flat_map(|index| index.diagnosed()) {
        for message in dist.diagnostics() {
            eprintln!("warning: {}: {message}", dist.metadata_path().display());
        }
    }
}

pub fn distributions_table(out: &mut impl Write, env: &Environment) -> io::Result<()> {
    let rows: Vec<[Cow<str>; 5]> = env
        .distributions()
        .map(|d| {
            [
                or_dash(d.name()),
                or_dash(d.version()),
                Cow::Borrowed(d.kind().as_str()),
                Cow::Owned(d.entry_points().len().to_string()),
                Cow::Owned(d.metadata_path().display().to_string()),
            ]
        })
        .collect();
    write_table(
        out,
        ["NAME", "VERSION", "KIND", "ENTRY POINTS", "METADATA"],
        || {
            rows.iter()
                .map(|row| row.each_ref().map(|c| Cow::Borrowed(&**c)))
        },
    )?;
    report_diagnostics(env);
    Ok(())
}

pub fn entry_points_table(
    out: &mut impl Write,
    env: &Environment,
    selection: &Selection,
) -> io::Result<()> {
    write_table(out, ["GROUP", "NAME", "VALUE", "DISTRIBUTION"], || {
        env.entry_points(selection).map(|ep| {
            [
                Cow::Borrowed(ep.group),
                Cow::Borrowed(ep.name),
                Cow::Borrowed(ep.value),
                or_dash(ep.dist.name()),
            ]
        })
    })?;
    report_diagnostics(env);
    Ok(())
}

pub fn statuses(out: &mut impl Write, statuses: &[Status], json: bool) -> io::Result<()> {
    if json {
        return write_json(out, &statuses);
    }
    for s in statuses {
        write!(out, "{s}")?;
    }
    Ok(())
}

fn display_entry(path: &std::path::Path) -> String {
    if path.as_os_str().is_empty() {
        "'' (current directory)".into()
    } else {
        path.display().to_string()
    }
}

#[derive(Serialize)]
struct RebuiltJson {
    path_entry: String,
    verdict: &'static str,
    publish: Option<&'static str>,
    text: String,
    distributions: usize,
    entry_points: usize,
}

pub fn rebuilt(out: &mut impl Write, rebuilt: &[Consulted], json: bool) -> io::Result<()> {
    if json {
        let rows: Vec<_> = rebuilt
            .iter()
            .map(|c| RebuiltJson {
                path_entry: c.index.path_entry().display().to_string(),
                verdict: c.outcome.lookup.code(),
                publish: c.outcome.publish.as_ref().map(|p| p.code()),
                text: c.outcome.to_string(),
                distributions: c.index.len(),
                entry_points: c.index.entry_point_count(),
            })
            .collect();
        return write_json(out, &rows);
    }
    for c in rebuilt {
        let what = match &c.outcome.publish {
            Some(publish) => publish.to_string(),
            None => c.outcome.lookup.to_string(),
        };
        writeln!(
            out,
            "{}: {} distributions, {} entry points: {what}",
            display_entry(c.index.path_entry()),
            c.index.len(),
            c.index.entry_point_count()
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct PruneJson {
    disabled: bool,
    temp_files: usize,
    orphaned: usize,
    invalid: usize,
    old_versions: usize,
}

pub fn pruned(out: &mut impl Write, report: Option<&PruneReport>, json: bool) -> io::Result<()> {
    let r = report.cloned().unwrap_or_default();
    if json {
        return write_json(
            out,
            &PruneJson {
                disabled: report.is_none(),
                temp_files: r.temp_files,
                orphaned: r.orphaned,
                invalid: r.invalid,
                old_versions: r.old_versions,
            },
        );
    }
    if report.is_none() {
        return writeln!(out, "the cache is disabled; nothing to prune");
    }
    writeln!(
        out,
        "removed {} temporary files, {} index files of vanished path entries, {} invalid files, {} old directories",
        r.temp_files, r.orphaned, r.invalid, r.old_versions
    )
}

#[derive(Serialize)]
struct ClearJson {
    disabled: bool,
    removed: Option<String>,
}

pub fn cleared(out: &mut impl Write, report: Option<&ClearReport>, json: bool) -> io::Result<()> {
    let removed = report
        .and_then(|r| r.removed.as_ref())
        .map(|p| p.display().to_string());
    if json {
        return write_json(
            out,
            &ClearJson {
                disabled: report.is_none(),
                removed,
            },
        );
    }
    match (report, removed) {
        (None, _) => writeln!(out, "the cache is disabled; nothing to clear"),
        (Some(_), Some(path)) => writeln!(out, "removed {path}"),
        (Some(_), None) => writeln!(out, "nothing to clear"),
    }
}

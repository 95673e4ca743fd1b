//! Tables for people, JSON for programs.

use std::io::{self, Write};

use serde::Serialize;

use epcache::{Distribution, Environment, Selection};

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

/// Left-aligned columns, two spaces apart; the last column is not padded.
fn write_table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len() - 1;
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                writeln!(out, "{cell}")?;
            } else {
                write!(out, "{cell:<width$}  ", width = widths[i])?;
            }
        }
    }
    Ok(())
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").replace('\n', "\\n")
}

/// Diagnostics go to stderr so that the table stays clean for `grep`.
fn report_diagnostics(env: &Environment) {
    for index in env.indexes() {
        for message in index.diagnostics() {
            eprintln!("warning: {}: {message}", index.path_entry().display());
        }
    }
    for dist in env.distributions() {
        for message in dist.diagnostics() {
            eprintln!("warning: {}: {message}", dist.metadata_path().display());
        }
    }
}

pub fn distributions_table(out: &mut impl Write, env: &Environment) -> io::Result<()> {
    let rows: Vec<Vec<String>> = env
        .distributions()
        .map(|d| {
            vec![
                or_dash(d.name()),
                or_dash(d.version()),
                d.kind().to_string(),
                d.entry_points().len().to_string(),
                d.metadata_path().display().to_string(),
            ]
        })
        .collect();
    write_table(
        out,
        &["NAME", "VERSION", "KIND", "ENTRY POINTS", "METADATA"],
        &rows,
    )?;
    report_diagnostics(env);
    Ok(())
}

pub fn entry_points_table(
    out: &mut impl Write,
    env: &Environment,
    selection: &Selection,
) -> io::Result<()> {
    let rows: Vec<Vec<String>> = env
        .entry_points(selection)
        .map(|ep| {
            vec![
                ep.group.to_owned(),
                ep.name.to_owned(),
                ep.value.to_owned(),
                or_dash(ep.dist.name()),
            ]
        })
        .collect();
    write_table(out, &["GROUP", "NAME", "VALUE", "DISTRIBUTION"], &rows)?;
    report_diagnostics(env);
    Ok(())
}

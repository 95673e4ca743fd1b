//! Prints everything in one cache file.
//!
//! ```text
//! cargo run --example dump -- PATH_ENTRY_OR_INDEX_FILE
//! ```
//!
//! Given a path entry, the file is the one the current cache settings
//! (`EPCACHE_DIR`, ...) assign to it. Given a file inside the cache, that
//! file is read directly.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use epcache::Cache;
use epcache::CacheFile;
use epcache::{Key, Settledness};

/// `println!` that ends quietly when stdout is closed (`dump ... | head`).
macro_rules! say {
    ($($arg:tt)*) => {
        if writeln!(std::io::stdout().lock(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    };
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target] = args.as_slice() else {
        eprintln!("usage: dump PATH_ENTRY_OR_INDEX_FILE");
        return ExitCode::from(2);
    };
    match run(Path::new(target)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dump: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(target: &Path) -> Result<(), String> {
    let cache = Cache::from_env();
    let file = index_file_for(&cache, target)?;
    let bytes = std::fs::read(&file).map_err(|e| format!("reading {}: {e}", file.display()))?;
    say!(
        "file:            {} ({} bytes)",
        file.display(),
        bytes.len()
    );
    let parsed = epcache::inspect(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    print_header(&parsed);
    print_freshness(&parsed, cache.settle());
    print_index(&parsed);
    Ok(())
}

/// A target that is a file in the cache's versioned directory is the index
/// file itself; anything else is a path entry.
fn index_file_for(cache: &Cache, target: &Path) -> Result<PathBuf, String> {
    let looks_like_index = target.is_file()
        && std::fs::read(target)
            .map(|b| b.starts_with(&epcache::MAGIC))
            .unwrap_or(false);
    if looks_like_index {
        return Ok(target.to_path_buf());
    }
    cache.index_file(target).ok_or_else(|| {
        "the cache is disabled (EPCACHE_DISABLE); give an index file instead".to_string()
    })
}

fn print_header(file: &CacheFile) {
    let h = &file.header;
    say!("format version:  {}", h.version);
    say!("path entry:      {}", file.path_entry.display());
    say!(
        "key:             mtime {} ns, ctime {} ns, inode {}, size {}",
        h.key.mtime_ns,
        h.key.ctime_ns,
        h.key.inode,
        h.key.size
    );
    say!("written at:      {} ns since the epoch", h.written_at_ns);
    say!("provisional:     {}", h.is_provisional());
    say!("fingerprint:     {} bytes", file.fingerprint_len);
    say!("body:            {} bytes", file.body_len);
    for section in &file.sections {
        say!(
            "  section:       {} at {}, {} bytes",
            section.name,
            section.offset,
            section.len
        );
    }
    say!("blocks:          {}", file.blocks.len());
    for block in &file.blocks {
        say!(
            "  block:         {} at {}, {} bytes",
            block.name,
            block.offset,
            block.len
        );
    }
    say!(
        "integrity:       {}",
        if file.checksum_ok {
            "checksum ok"
        } else {
            "CHECKSUM MISMATCH"
        }
    );
}

fn print_freshness(file: &CacheFile, settle: std::time::Duration) {
    let verdict = match Key::observe(&file.path_entry) {
        Err(e) => format!("cannot stat the path entry ({e}): a consult would scan"),
        Ok(live) if live != file.header.key => {
            format!(
                "STALE: the path entry's key is now mtime {} ns, ctime {} ns, inode {}, size {}",
                live.mtime_ns, live.ctime_ns, live.inode, live.size
            )
        }
        Ok(live) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64);
            match Settledness::of(&live, now, settle) {
                Settledness::Settled => "fresh: the key matches the live path entry".into(),
                other => {
                    format!("fresh: the key matches; the path entry is not settled yet ({other:?})")
                }
            }
        }
    };
    say!("freshness:       {verdict}");
}

fn print_index(file: &CacheFile) {
    let index = match &file.index {
        Ok(index) => index,
        Err(e) => {
            say!("index:           does not decode: {e}");
            return;
        }
    };
    say!(
        "index:           {} distributions, {} entry points",
        index.len(),
        index.entry_point_count()
    );
    for message in index.diagnostics() {
        say!("  ! {message}");
    }
    for dist in index.distributions() {
        say!();
        say!(
            "{} {} [{}] {}",
            dist.name().unwrap_or("<no name>"),
            dist.version().unwrap_or("<no version>"),
            dist.kind(),
            dist.metadata_name()
        );
        for ep in dist.entry_points() {
            say!("    [{}] {} = {}", ep.group, ep.name, ep.value);
        }
        for message in dist.diagnostics() {
            say!("    ! {message}");
        }
    }
}

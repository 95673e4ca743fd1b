//! Links the unwinder statically into the Python extension module.
//!
//! Rust's standard library on `*-linux-gnu` unwinds with libgcc_s, so a
//! cdylib names `libgcc_s.so.1` as NEEDED, and every interpreter that loads
//! `epcache._epcache` maps one more shared library: 0.13–0.2 ms of its first
//! query on the benchmark VM (docs/benchmarks.md), more than loading the
//! module itself. The same unwinder is in gcc's static `libgcc_eh.a`;
//! linked whole into the module, before the standard library asks for
//! libgcc_s, it defines every `_Unwind_*` symbol, and the linker (which
//! rustc runs with `--as-needed`) drops libgcc_s. Panics still unwind to
//! PyO3's boundary and reach Python as `PanicException`; the unwinder finds
//! the module's frames through `dl_iterate_phdr`, as libgcc_s does.
//!
//! Only for the `python` feature on Linux with glibc, not in a cross build,
//! and only when the C compiler that links knows a `libgcc_eh.a`; otherwise
//! nothing changes.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let python = env::var_os("CARGO_FEATURE_PYTHON").is_some();
    let linux_gnu = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    // A cross build would find the host compiler's libgcc_eh.a, for the
    // wrong machine; it keeps libgcc_s.
    let native = env::var("HOST").ok() == env::var("TARGET").ok();
    if !(python && linux_gnu && native) {
        return;
    }
    if let Some(dir) = static_unwinder_dir() {
        println!("cargo:rustc-link-search=native={}", dir.display());
        // Not bundled into the rlib: the cdylib link takes it from the
        // compiler's own directory.
        println!("cargo:rustc-link-lib=static:+whole-archive,-bundle=gcc_eh");
    }
}

/// The directory of the C compiler's (the linker rustc runs) `libgcc_eh.a`;
/// `-print-file-name` answers the bare name when it has none.
fn static_unwinder_dir() -> Option<PathBuf> {
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let out = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let answer = String::from_utf8(out.stdout).ok()?;
    let path = Path::new(answer.trim());
    if out.status.success() && path.is_absolute() && path.is_file() {
        path.parent().map(Path::to_path_buf)
    } else {
        None
    }
}

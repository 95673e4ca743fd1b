//! Asking a Python interpreter for its `sys.path`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::platform::os_string_from_bytes;

/// Prints each entry as hex of `os.fsencode`, so that any path, even one
/// that is not valid UTF-8, survives the trip exactly.
const PRINT_SYS_PATH: &str = "import os, sys\nfor p in sys.path: print(os.fsencode(p).hex())";

/// The `sys.path` of `python`, in order, as that interpreter sees it when
/// started in the current directory (so `""` appears when it would).
///
/// `python` is looked up on `PATH` when it has no directory part.
pub fn sys_path(python: &Path) -> Result<Vec<PathBuf>> {
    let python_error = |message: String| Error::python(python, message);
    let output = Command::new(python)
        .args(["-c", PRINT_SYS_PATH])
        .stdin(Stdio::null())
        .output()
        .map_err(|err| python_error(format!("cannot run it: {err}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("no error output");
        return Err(python_error(format!(
            "exited with {}: {last}",
            output.status
        )));
    }
    let stdout = String::from_utf8(output.stdout)
        .map_err(|_| python_error("printed non-UTF-8 text".into()))?;
    stdout
        .lines()
        .map(|line| {
            decode_hex(line)
                .map(|bytes| PathBuf::from(os_string_from_bytes(bytes)))
                .ok_or_else(|| python_error(format!("printed an unexpected line: {line:?}")))
        })
        .collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(decode_hex("2f612e"), Some(b"/a.".to_vec()));
        assert_eq!(decode_hex(""), Some(vec![]));
        assert_eq!(decode_hex("2"), None);
        assert_eq!(decode_hex("zz"), None);
    }

    #[test]
    fn missing_interpreter_is_a_clear_error() {
        let err = sys_path(Path::new("/nonexistent/python3")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/python3"), "{err}");
        assert!(err.to_string().contains("cannot run it"), "{err}");
    }
}

//! Output helpers shared by the subcommands: JSON printing, one-line errors, progress bars.

pub mod progress;
pub mod study;
pub mod tables;

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// The error chain on one line (`outer: inner: root`), newlines folded.
pub fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

/// Pretty JSON to stdout, or to `out` (written atomically: temp file then rename).
pub fn write_json<T: Serialize>(value: &T, out: Option<&Path>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    match out {
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
        }
        Some(path) => write_atomic(path, text.as_bytes())?,
    }
    Ok(())
}

/// Writes a file through a temporary sibling and a rename, so readers never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    qtask_core::fsutil::write_atomic(path, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

//! Output helpers shared by the subcommands: JSON printing, one-line errors, progress bars.

pub mod online;
pub mod progress;
pub mod study;
pub mod tables;

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// The error chain on one line (`outer: inner: root`), newlines folded. A cause whose text
/// the line already holds is left out: many errors print their source in their own message
/// (`SQLite: X` wrapping `X`), and the chain would otherwise say the same thing two or three
/// times.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Whether the error comes from writing to a pipe whose reader went away (`qtask ... | head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Makes `println!` on a closed pipe end the process quietly with `code` instead of
/// panicking with a backtrace. SIGPIPE itself stays ignored: a worker must survive writing a
/// task to a command that exited without reading it.
pub fn quiet_on_broken_pipe(code: u8) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(i32::from(code));
        }
        default(info);
    }));
}

/// Prints each warning on stderr as one line `warning: ...`.
pub fn warn_all(warnings: Vec<String>) {
    for w in warnings {
        eprintln!(
            "warning: {}",
            w.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
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

/// A file's size for people (`12.3 KiB`), or `?` when it cannot be read.
pub fn file_size(path: &Path) -> String {
    let Ok(meta) = std::fs::metadata(path) else {
        return "?".into();
    };
    let b = meta.len() as f64;
    match b {
        b if b < 1024.0 => format!("{b} B"),
        b if b < 1024.0 * 1024.0 => format!("{:.1} KiB", b / 1024.0),
        b if b < 1024.0 * 1024.0 * 1024.0 => format!("{:.1} MiB", b / (1024.0 * 1024.0)),
        b => format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0)),
    }
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
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} ({elapsed}) {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that prints its source in its own message, as `#[error("SQLite: {0}")]`
    /// with `#[from]` does.
    #[derive(Debug)]
    struct Wraps(std::io::Error);

    impl std::fmt::Display for Wraps {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SQLite: {}", self.0)
        }
    }

    impl std::error::Error for Wraps {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn one_line_says_each_cause_once() {
        let inner = std::io::Error::other("Expression tree is too large (maximum depth 1000)");
        let e = anyhow::Error::new(Wraps(inner)).context("bad query");
        assert_eq!(
            one_line(&e),
            "bad query: SQLite: Expression tree is too large (maximum depth 1000)"
        );
        let e = anyhow::anyhow!("root\ncause").context("outer");
        assert_eq!(one_line(&e), "outer: root cause");
    }
}

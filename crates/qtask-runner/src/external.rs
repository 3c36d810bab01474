//! External commands as task functions: the task goes to the child's stdin as JSON, the child's
//! stdout (JSON) is the result, a non-zero exit is a failure whose stderr tail becomes the error.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::TaskError;
use crate::func::{TaskContext, TaskFunc};

/// How much of the child's stderr is kept as the task's error.
const STDERR_TAIL: usize = 2000;

/// A command run once per task attempt. Task data never reaches a shell: the command line is
/// split into argv once, when the executor is built.
#[derive(Debug, Clone)]
pub struct ExternalCommand {
    argv: Vec<String>,
    timeout: Option<Duration>,
}

impl ExternalCommand {
    /// Splits a command line like a POSIX shell would (quotes, escapes), without running one.
    pub fn parse(command_line: &str) -> Result<Self, TaskError> {
        let argv = shlex::split(command_line).ok_or_else(|| {
            TaskError(format!(
                "cannot parse command `{command_line}`: unbalanced quotes"
            ))
        })?;
        Self::from_argv(argv)
    }

    /// Uses an argv list as given.
    pub fn from_argv(argv: Vec<String>) -> Result<Self, TaskError> {
        if argv.is_empty() {
            return Err(TaskError("the command is empty".into()));
        }
        Ok(Self {
            argv,
            timeout: None,
        })
    }

    /// Kills the command (and fails the attempt) after this long.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The argv list.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    fn spawn(&self, ctx: &TaskContext, extra_env: &[(String, String)]) -> Result<Child, TaskError> {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("QTASK_TASK_ID", &ctx.task_id)
            .env("QTASK_POOL", &ctx.pool)
            .env("QTASK_ATTEMPT", ctx.attempt.to_string());
        cmd.envs(extra_env.iter().map(|(k, v)| (k, v)));
        match &ctx.experiment {
            Some(e) => cmd.env("QTASK_EXPERIMENT", e),
            None => cmd.env_remove("QTASK_EXPERIMENT"),
        };
        // Its own process group: a Ctrl-C meant for the worker does not kill the task behind
        // the worker's back, and killing the group also takes the command's own children.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.spawn()
            .map_err(|e| TaskError(format!("cannot start `{}`: {e}", self.argv[0])))
    }
}

fn kill_group(child: &mut Child) {
    // SAFETY: kill(2) with a negative pid signals the process group we created for the child.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
    }
    let _ = child.kill();
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let start = text.len().saturating_sub(STDERR_TAIL);
    let start = (start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// Parses the child's stdout: the whole text as JSON, else its last non-empty line (so a script
/// may log to stdout before printing its result).
fn parse_result(stdout: &[u8]) -> Option<Value> {
    let text = String::from_utf8_lossy(stdout);
    if let Ok(v) = serde_json::from_str(&text) {
        return Some(v);
    }
    let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
    serde_json::from_str(last).ok()
}

impl TaskFunc for ExternalCommand {
    fn call(&self, ctx: &TaskContext, param: &Value) -> Result<Value, TaskError> {
        self.call_with_env(ctx, param, &[])
    }
}

impl ExternalCommand {
    /// Runs the command once with `param` on stdin and `extra_env` added to its environment.
    pub fn call_with_env(
        &self,
        ctx: &TaskContext,
        param: &Value,
        extra_env: &[(String, String)],
    ) -> Result<Value, TaskError> {
        let mut child = self.spawn(ctx, extra_env)?;
        let input = serde_json::to_vec(param).expect("JSON values serialise");
        let mut stdin = child.stdin.take().expect("piped");
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        // Separate threads: a child that writes a lot before reading must not deadlock us.
        let writer = thread::spawn(move || {
            // A child that exits without reading its stdin is not an error of ours.
            let _ = stdin.write_all(&input);
        });
        let out_reader = thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            buf
        });
        let err_reader = thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf);
            buf
        });

        let started = Instant::now();
        let mut why_killed = None;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => return Err(TaskError(format!("waiting for `{}`: {e}", self.argv[0]))),
            }
            if why_killed.is_none() {
                if ctx.cancel.load(Ordering::SeqCst) {
                    why_killed = Some("cancelled".to_string());
                } else if self.timeout.is_some_and(|t| started.elapsed() >= t) {
                    why_killed = Some(format!(
                        "timed out after {:.0} s",
                        self.timeout.expect("checked").as_secs_f64()
                    ));
                }
                if why_killed.is_some() {
                    kill_group(&mut child);
                }
            }
            thread::sleep(Duration::from_millis(20));
        };
        let _ = writer.join();
        let out = out_reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        let err_tail = tail(&err);
        let with_stderr = |msg: String| {
            if err_tail.is_empty() {
                TaskError(msg)
            } else {
                TaskError(format!("{msg}; stderr: {err_tail}"))
            }
        };
        if let Some(why) = why_killed {
            return Err(with_stderr(format!("`{}` {why}", self.argv[0])));
        }
        if !status.success() {
            let how = match status.code() {
                Some(code) => format!("exited with status {code}"),
                None => "was killed by a signal".to_string(),
            };
            return Err(with_stderr(format!("`{}` {how}", self.argv[0])));
        }
        parse_result(&out).ok_or_else(|| {
            let shown = tail(&out);
            with_stderr(format!(
                "`{}` did not print a JSON result on stdout (got {:?})",
                self.argv[0],
                shown.chars().take(200).collect::<String>()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_results() {
        assert_eq!(
            parse_result(b"{\"a\": 1}\n"),
            Some(serde_json::json!({"a": 1}))
        );
        assert_eq!(
            parse_result(b"loading...\n\n[1, 2]\n"),
            Some(serde_json::json!([1, 2]))
        );
        assert_eq!(parse_result(b"not json"), None);
        assert_eq!(parse_result(b""), None);
    }

    #[test]
    fn splits_like_a_shell_without_one() {
        let c = ExternalCommand::parse("python3 -c 'print(1); print(\"a b\")' \"x y\"").unwrap();
        assert_eq!(
            c.argv(),
            ["python3", "-c", "print(1); print(\"a b\")", "x y"]
        );
        assert!(ExternalCommand::parse("echo 'open").is_err());
        assert!(ExternalCommand::parse("   ").is_err());
    }

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        let long = "é".repeat(3000);
        let t = tail(long.as_bytes());
        assert!(t.len() <= STDERR_TAIL && t.chars().all(|c| c == 'é'));
    }
}

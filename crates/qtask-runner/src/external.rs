//! External commands as task functions: the task goes to the child's stdin as JSON, the child's
//! stdout (JSON) is the result, a non-zero exit is a failure whose stderr tail becomes the error.
//!
//! The command is contained: it runs in its own process group, and whatever ends it (a
//! `--task-timeout`, a stop request, a result over the stdout limit, or its own exit) ends the
//! whole group, so a grandchild that still holds stdout can neither keep the worker waiting
//! nor outlive the task. Its stdout is kept up to [`DEFAULT_STDOUT_LIMIT`] and only the tail of
//! its stderr is kept, so no output can grow the worker's memory without bound.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use qtask_core::json::{JsonError, NumberError};
use serde_json::Value;

use crate::child_env::{ChildEnv, ENVIRONMENT_EXIT};
use crate::error::TaskError;
use crate::func::{TaskContext, TaskFunc};

/// How much of the child's stderr is kept as the task's error.
const STDERR_TAIL: usize = 2000;

/// The most a command may print on stdout (its result) by default: 16 MiB. More is a task
/// error; results that large belong in files or artifacts, not in the pool.
pub const DEFAULT_STDOUT_LIMIT: usize = 16 << 20;

/// How long a command's process group has between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// How long the pipes may stay open after the command's process group was killed (a process
/// that left the group with `setsid` may still hold them); then the worker stops reading.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// How often the loop wakes up to check the timeout and the cancel flag.
const TICK: Duration = Duration::from_millis(20);

/// A command run once per task attempt. Task data never reaches a shell: the command line is
/// split into argv once, when the executor is built.
#[derive(Debug, Clone)]
pub struct ExternalCommand {
    argv: Vec<String>,
    timeout: Option<Duration>,
    stdout_limit: usize,
}

impl ExternalCommand {
    /// Splits a command line like a POSIX shell would (quotes, escapes), without running one.
    pub fn parse(command_line: &str) -> Result<Self, TaskError> {
        let argv = shlex::split(command_line).ok_or_else(|| {
            TaskError::new(format!(
                "cannot parse command `{command_line}`: unbalanced quotes"
            ))
        })?;
        Self::from_argv(argv)
    }

    /// Uses an argv list as given.
    pub fn from_argv(argv: Vec<String>) -> Result<Self, TaskError> {
        if argv.is_empty() {
            return Err(TaskError::new("the command is empty"));
        }
        Ok(Self {
            argv,
            timeout: None,
            stdout_limit: DEFAULT_STDOUT_LIMIT,
        })
    }

    /// Ends the command's process group (and fails the attempt) after this long.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Fails the attempt (ending the process group) once stdout passes this many bytes.
    pub fn with_stdout_limit(mut self, bytes: usize) -> Self {
        self.stdout_limit = bytes;
        self
    }

    /// The argv list.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    fn spawn(&self, env: &ChildEnv) -> Result<Child, TaskError> {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        env.apply(&mut cmd);
        // Its own process group: a Ctrl-C meant for the worker does not kill the task behind
        // the worker's back, and signalling the group reaches the command's own children.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        // Not starting is never the task's fault: the program is missing, not executable, or
        // the machine is out of processes or memory.
        cmd.spawn()
            .map_err(|e| TaskError::environment(format!("cannot start `{}`: {e}", self.argv[0])))
    }

    /// Runs the command once with `param` on stdin and `env` in its environment, until it
    /// exits, times out, prints too much, or `cancel` is raised.
    pub fn run(
        &self,
        env: &ChildEnv,
        param: &Value,
        cancel: &AtomicBool,
    ) -> Result<Value, TaskError> {
        let mut child = self.spawn(env)?;
        let input = serde_json::to_vec(param).expect("JSON values serialise");
        let pipes = Pipes::new(&mut child, input)
            .map_err(|e| TaskError::environment(format!("pipes to `{}`: {e}", self.argv[0])))?;
        let outcome = self.supervise(&mut child, pipes, cancel);
        let Outcome {
            status,
            stdout,
            stderr,
            ended,
        } = outcome.map_err(|e| {
            kill_group(&child, libc::SIGKILL);
            let _ = child.wait();
            TaskError::environment(format!("waiting for `{}`: {e}", self.argv[0]))
        })?;
        let err_tail = tail(&stderr);
        let with_stderr = |msg: String| {
            if err_tail.is_empty() {
                msg
            } else {
                format!("{msg}; stderr: {err_tail}")
            }
        };
        let prog = &self.argv[0];
        match ended {
            Some(Ended::Cancelled) => {
                return Err(TaskError::new(with_stderr(format!("`{prog}` cancelled"))));
            }
            Some(Ended::TimedOut(t)) => {
                return Err(TaskError::new(with_stderr(format!(
                    "`{prog}` timed out after {} s; its process group was ended",
                    t.as_secs_f64()
                ))));
            }
            Some(Ended::StdoutLimit) => {
                return Err(TaskError::new(format!(
                    "`{prog}` printed more than {} on stdout, the limit for a result; its \
                     process group was ended (write large outputs to files and return their paths)",
                    human_bytes(self.stdout_limit)
                )));
            }
            None => {}
        }
        if status.code() == Some(ENVIRONMENT_EXIT) {
            return Err(TaskError::environment(with_stderr(format!(
                "`{prog}` exited with status {ENVIRONMENT_EXIT}: its environment failed"
            ))));
        }
        if !status.success() {
            let how = match status.code() {
                Some(code) => format!("exited with status {code}"),
                None => "was killed by a signal".to_string(),
            };
            return Err(TaskError::new(with_stderr(format!("`{prog}` {how}"))));
        }
        match parse_result(&stdout) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(TaskError::new(format!(
                "`{prog}` printed a result whose {e}"
            ))),
            None => {
                let shown = tail(&stdout);
                Err(TaskError::new(with_stderr(format!(
                    "`{prog}` did not print a JSON result on stdout (got {:?})",
                    shown.chars().take(200).collect::<String>()
                ))))
            }
        }
    }

    /// The poll loop: feeds stdin, collects stdout and the tail of stderr, enforces the
    /// timeout, the stdout limit and the cancel flag, and ends the process group.
    fn supervise(
        &self,
        child: &mut Child,
        mut pipes: Pipes,
        cancel: &AtomicBool,
    ) -> std::io::Result<Outcome> {
        let started = Instant::now();
        let mut ended: Option<Ended> = None;
        let mut sigkill_at: Option<Instant> = None;
        let mut exited: Option<(ExitStatus, Instant)> = None;
        loop {
            pipes.pump(TICK, self.stdout_limit)?;
            if exited.is_none() && pipes.stdout_over {
                ended.get_or_insert(Ended::StdoutLimit);
            }
            if exited.is_none() && ended.is_none() {
                if cancel.load(Ordering::SeqCst) {
                    ended = Some(Ended::Cancelled);
                } else if let Some(t) = self.timeout.filter(|t| started.elapsed() >= *t) {
                    ended = Some(Ended::TimedOut(t));
                }
            }
            if exited.is_none() {
                if ended.is_some() && sigkill_at.is_none() {
                    kill_group(child, libc::SIGTERM);
                    sigkill_at = Some(Instant::now() + KILL_GRACE);
                }
                if sigkill_at.is_some_and(|at| Instant::now() >= at) {
                    kill_group(child, libc::SIGKILL);
                }
                if has_exited(child)? {
                    // The leader is a zombie until reaped, so its group id cannot be reused
                    // yet: what is left of the group (background children) is ended now.
                    kill_group(child, libc::SIGKILL);
                    exited = Some((child.wait()?, Instant::now()));
                }
            }
            if let Some((status, at)) = exited
                && (pipes.closed() || at.elapsed() >= DRAIN_GRACE)
            {
                return Ok(Outcome {
                    status,
                    stdout: std::mem::take(&mut pipes.stdout),
                    stderr: pipes.stderr_tail(),
                    ended,
                });
            }
        }
    }
}

/// Why the worker ended a command before it exited on its own.
enum Ended {
    Cancelled,
    TimedOut(Duration),
    StdoutLimit,
}

struct Outcome {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    ended: Option<Ended>,
}

/// The child's three pipes, non-blocking, served by one `poll` loop (no thread can be left
/// blocked on a pipe that a stray grandchild keeps open).
struct Pipes {
    stdin: Option<ChildStdin>,
    input: Vec<u8>,
    written: usize,
    out: Option<ChildStdout>,
    err: Option<ChildStderr>,
    stdout: Vec<u8>,
    stdout_over: bool,
    stderr: Vec<u8>,
}

impl Pipes {
    fn new(child: &mut Child, input: Vec<u8>) -> std::io::Result<Self> {
        let stdin = child.stdin.take().expect("piped");
        let out = child.stdout.take().expect("piped");
        let err = child.stderr.take().expect("piped");
        for fd in [stdin.as_raw_fd(), out.as_raw_fd(), err.as_raw_fd()] {
            set_nonblocking(fd)?;
        }
        Ok(Pipes {
            stdin: Some(stdin),
            input,
            written: 0,
            out: Some(out),
            err: Some(err),
            stdout: Vec::new(),
            stdout_over: false,
            stderr: Vec::new(),
        })
    }

    fn closed(&self) -> bool {
        self.out.is_none() && self.err.is_none()
    }

    /// Waits up to `wait` for any pipe to be ready and moves what it can.
    fn pump(&mut self, wait: Duration, stdout_limit: usize) -> std::io::Result<()> {
        let mut fds = Vec::with_capacity(3);
        if let Some(s) = &self.stdin {
            fds.push(pollfd(s.as_raw_fd(), libc::POLLOUT));
        }
        if let Some(s) = &self.out {
            fds.push(pollfd(s.as_raw_fd(), libc::POLLIN));
        }
        if let Some(s) = &self.err {
            fds.push(pollfd(s.as_raw_fd(), libc::POLLIN));
        }
        if fds.is_empty() {
            std::thread::sleep(wait);
            return Ok(());
        }
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the whole call.
        let n = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                wait.as_millis() as libc::c_int,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return if e.kind() == ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        self.write_stdin();
        if let Some(out) = &mut self.out {
            // Past the limit only a little more is read, enough to know it was passed.
            let open = drain(out, &mut self.stdout, Some(stdout_limit + 1))?;
            if self.stdout.len() > stdout_limit {
                self.stdout_over = true;
                self.stdout.truncate(stdout_limit);
            }
            if !open || self.stdout_over {
                self.out = None;
            }
        }
        if let Some(err) = &mut self.err {
            let open = drain(err, &mut self.stderr, None)?;
            // Only the tail is ever shown: keep a bounded window of the latest bytes.
            if self.stderr.len() > 16 * STDERR_TAIL {
                let cut = self.stderr.len() - 4 * STDERR_TAIL;
                self.stderr.drain(..cut);
            }
            if !open {
                self.err = None;
            }
        }
        Ok(())
    }

    fn write_stdin(&mut self) {
        let Some(stdin) = &mut self.stdin else {
            return;
        };
        while self.written < self.input.len() {
            match stdin.write(&self.input[self.written..]) {
                Ok(0) => break,
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // A child that exits without reading its stdin is not an error of ours.
                Err(_) => break,
            }
        }
        // Closing stdin tells the child the task is complete.
        self.stdin = None;
    }

    fn stderr_tail(&self) -> Vec<u8> {
        self.stderr.clone()
    }
}

fn pollfd(fd: libc::c_int, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Reads what is available; false at end of file. Stops once `buf` holds `cap` bytes.
fn drain(r: &mut impl Read, buf: &mut Vec<u8>, cap: Option<usize>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 64 * 1024];
    loop {
        if cap.is_some_and(|c| buf.len() >= c) {
            return Ok(true);
        }
        match r.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

fn set_nonblocking(fd: libc::c_int) -> std::io::Result<()> {
    // SAFETY: fcntl on a file descriptor this process owns, with valid flag arguments.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether the child has exited, without reaping it (so its pid, the group id, stays taken).
fn has_exited(child: &Child) -> std::io::Result<bool> {
    // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid on our own child's pid with a valid siginfo pointer.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            child.id() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: waitid filled `info` (si_pid stays 0 when the child is still running).
    Ok(unsafe { info.si_pid() } != 0)
}

/// Signals the child's whole process group (it leads its own group; see `spawn`). Only called
/// while the child is unreaped, so the group id cannot belong to anyone else.
fn kill_group(child: &Child, signal: libc::c_int) {
    // SAFETY: kill(2) with a negative pid signals the process group we created for the child.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), signal);
    }
}

fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
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
/// may log to stdout before printing its result). Numbers are normalised as everywhere in
/// qtask; a float beyond the `f64` range is `Err`.
fn parse_result(stdout: &[u8]) -> Option<Result<Value, NumberError>> {
    let text = String::from_utf8_lossy(stdout);
    let parse = |t: &str| match qtask_core::json::parse(t) {
        Ok(v) => Some(Ok(v)),
        Err(JsonError::Number(e)) => Some(Err(e)),
        Err(JsonError::Syntax(_)) => None,
    };
    if let Some(r) = parse(&text) {
        return Some(r);
    }
    let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
    parse(last)
}

impl TaskFunc for ExternalCommand {
    fn call(&self, ctx: &TaskContext, param: &Value) -> Result<Value, TaskError> {
        self.run(&ChildEnv::for_task(ctx), param, &ctx.cancel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_results() {
        assert_eq!(
            parse_result(b"{\"a\": 1}\n"),
            Some(Ok(serde_json::json!({"a": 1})))
        );
        assert_eq!(
            parse_result(b"loading...\n\n[1, 2.50]\n"),
            Some(Ok(serde_json::json!([1, 2.5])))
        );
        assert_eq!(parse_result(b"not json"), None);
        assert_eq!(parse_result(b""), None);
        let big = parse_result(b"{\"n\": 18446744073709551617}")
            .unwrap()
            .unwrap();
        assert_eq!(big.to_string(), r#"{"n":18446744073709551617}"#);
        let err = parse_result(b"{\"ic\": 1e999}").unwrap().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("number 1e+999 at `ic` is out of range"),
            "{err}"
        );
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

    #[test]
    fn limits_are_shown_in_units() {
        assert_eq!(human_bytes(DEFAULT_STDOUT_LIMIT), "16 MiB");
        assert_eq!(human_bytes(4096), "4 KiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
    }
}

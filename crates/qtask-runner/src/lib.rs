//! qtask-runner: workers that drain a task pool.
//!
//! [`run_task`] is Qlib's `run_task` with what Qlib lacks: a heartbeat renews the lease of the
//! task in hand, a failing task is recorded (error kept, attempt counted) and the worker goes on,
//! several task slots can run at once, and a stop request (SIGINT/SIGTERM) returns the task in
//! hand instead of losing it. Task functions are built-in Rust functions registered by name
//! ([`ExecRegistry`]) or external commands ([`ExternalCommand`]), and every task becomes an
//! experiment run ([`RecordedTask`]); [`Trainer`] is Qlib's four trainers.

#![warn(missing_docs)]

pub mod child_env;
pub mod error;
pub mod external;
pub mod func;
mod heartbeat;
pub mod run;
pub mod stop;
pub mod train;
pub mod trainer;

pub use child_env::ChildEnv;
pub use error::{Blame, RunnerError, TaskError};
pub use external::ExternalCommand;
pub use func::{TaskContext, TaskFunc};
pub use run::{RunEvent, RunOptions, RunSummary, run_task};
pub use stop::StopFlag;
pub use train::{Echo, ExecRegistry, Executor, Phase, RecordedTask};
pub use trainer::{TrainOutcome, Trainer, TrainerKind};

//! Stop requests: the first SIGINT/SIGTERM asks workers to stop claiming and hand back the task
//! they hold; a second one exits at once (the task's lease then brings it back).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::RunnerError;

/// A shared "please stop" flag.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// A flag nobody has raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// A flag raised by SIGINT or SIGTERM; a second signal exits the process with status 130.
    pub fn from_signals() -> Result<Self, RunnerError> {
        let flag = Self::new();
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Registered first, so it sees the flag before this signal sets it.
            signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag.0))
                .map_err(RunnerError::Signals)?;
            signal_hook::flag::register(sig, Arc::clone(&flag.0)).map_err(RunnerError::Signals)?;
        }
        Ok(flag)
    }

    /// Raises the flag.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was requested.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

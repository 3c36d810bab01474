//! Progress bars driven by what the libraries report: run events of workers and trainers, and
//! the phases of a study.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::ProgressBar;
use qtask_pool::Status;
use qtask_runner::RunEvent;
use qtask_study::{Observer, StudyPhase};

use super::bar;

/// When each task in hand was claimed, to show how long it took.
type Started = Mutex<HashMap<String, Instant>>;

/// Shows a run event on `pb`: one step per task committed or finally failed, a line per
/// retried failure or lost lease; the message says which task runs and how long the last
/// one took.
pub fn show_event(pb: &ProgressBar, started: &Started, e: &RunEvent) {
    let took = |id: &str| {
        started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
            .map(|t| t.elapsed().as_secs_f64())
    };
    match e {
        RunEvent::Claimed { id, attempt } => {
            started
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.clone(), Instant::now());
            let again = if *attempt > 1 {
                format!(" (attempt {attempt})")
            } else {
                String::new()
            };
            pb.set_message(format!("task {id}{again}"));
        }
        RunEvent::Committed { id } => {
            pb.inc(1);
            if let Some(secs) = took(id) {
                pb.set_message(format!("task {id} done in {secs:.1}s"));
            }
        }
        RunEvent::Failed {
            id,
            status: Status::Failed,
            ..
        } => {
            pb.inc(1);
            took(id);
        }
        RunEvent::Failed { id, error, .. } => {
            took(id);
            pb.println(format!("task {id} failed (will retry): {error}"))
        }
        RunEvent::LeaseLost { id } => {
            took(id);
            pb.println(format!("task {id}: lease lost; its result was not stored"))
        }
        RunEvent::Returned { id } => {
            took(id);
        }
        RunEvent::StoreUnavailable { error } => {
            pb.set_message(format!("store unavailable: {error}"))
        }
    }
}

/// A progress bar driven by run events (see [`show_event`]).
pub fn progress_events(pb: &ProgressBar) -> impl Fn(&RunEvent) + Sync + '_ {
    let started = Started::default();
    move |e: &RunEvent| show_event(pb, &started, e)
}

/// A study observer drawing one bar per phase on stderr.
#[derive(Default)]
pub struct Bars {
    current: Mutex<Option<ProgressBar>>,
    started: Started,
}

impl Bars {
    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(pb) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            f(pb);
        }
    }
}

impl Observer for Bars {
    fn begin(&self, phase: StudyPhase, total: u64) {
        let pb = bar(total, phase.name());
        if let Some(old) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(pb)
        {
            old.finish_and_clear();
        }
    }

    fn step(&self) {
        self.with(|pb| pb.inc(1));
    }

    fn event(&self, e: &RunEvent) {
        self.with(|pb| show_event(pb, &self.started, e));
    }

    fn end(&self) {
        if let Some(pb) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            pb.finish_and_clear();
        }
    }
}

//! How a study reports its progress: the library says what is happening, the caller (the CLI's
//! progress bars, a test, a web page) decides how to show it.

use qtask_runner::RunEvent;

/// The phases of a study, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StudyPhase {
    /// Writing a synthetic market (examples only).
    Market,
    /// Turning the template into tasks.
    Generate,
    /// Training the tasks (or, for delay trainers, recording them).
    Train,
    /// The delay trainers' `end_train`: the fitting they put off.
    EndTrain,
    /// Reading the runs back and ensembling them.
    Collect,
    /// Writing the report.
    Report,
    /// An online simulation's routines, one step per trading day.
    Routines,
}

impl StudyPhase {
    /// A short lower-case name, for progress bars and logs.
    pub fn name(self) -> &'static str {
        match self {
            StudyPhase::Market => "synthetic market",
            StudyPhase::Generate => "generating",
            StudyPhase::Train => "training",
            StudyPhase::EndTrain => "end_train",
            StudyPhase::Collect => "collecting",
            StudyPhase::Report => "report",
            StudyPhase::Routines => "routines",
        }
    }
}

/// Receives a study's progress. Every method has a default that ignores it.
pub trait Observer: Sync {
    /// A phase begins, with `total` steps (0 when unknown).
    fn begin(&self, _phase: StudyPhase, _total: u64) {}
    /// One step of the current phase is done (outside training, whose steps are events).
    fn step(&self) {}
    /// Something happened to a task while training.
    fn event(&self, _event: &RunEvent) {}
    /// The current phase ended.
    fn end(&self) {}
}

/// An observer that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {}

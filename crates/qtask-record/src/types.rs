//! The records a store holds: experiments, runs, metrics, artifacts, run statuses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::RecordError;

/// A run's status, with MLflow's integer encoding (`RunStatus` in MLflow's protobuf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RunStatus {
    /// Started and not ended (or resumed).
    Running,
    /// Scheduled but not started (MLflow projects; qtask never writes it).
    Scheduled,
    /// Ended normally.
    Finished,
    /// Ended by an error.
    Failed,
    /// Ended by an interrupt.
    Killed,
}

impl RunStatus {
    /// Every status, in MLflow's order.
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Running,
        RunStatus::Scheduled,
        RunStatus::Finished,
        RunStatus::Failed,
        RunStatus::Killed,
    ];

    /// MLflow's integer code (the `status:` field of a run's `meta.yaml`).
    pub fn code(self) -> i64 {
        match self {
            RunStatus::Running => 1,
            RunStatus::Scheduled => 2,
            RunStatus::Finished => 3,
            RunStatus::Failed => 4,
            RunStatus::Killed => 5,
        }
    }

    /// The status with this integer code.
    pub fn from_code(code: i64) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|s| s.code() == code)
    }

    /// MLflow's name (`FINISHED`, ...), as the REST API and `search_runs` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }

    /// True once the run has ended (finished, failed or killed).
    pub fn is_terminated(self) -> bool {
        matches!(
            self,
            RunStatus::Finished | RunStatus::Failed | RunStatus::Killed
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = RecordError;

    /// Accepts MLflow's names in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                RecordError::Invalid(format!(
                    "unknown run status `{s}` (expected RUNNING, SCHEDULED, FINISHED, FAILED or KILLED)"
                ))
            })
    }
}

/// An experiment: a named folder of runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExperimentInfo {
    /// MLflow's experiment id (a decimal string; `0` is `Default`).
    pub id: String,
    /// The unique name.
    pub name: String,
    /// Where its runs' artifacts live (`file:///...` or `mlflow-artifacts:/...`).
    pub artifact_location: String,
    /// `active` or `deleted`.
    pub lifecycle_stage: String,
    /// Creation time, milliseconds since the Unix epoch (absent in very old stores).
    pub creation_time: Option<i64>,
    /// Last update time, milliseconds since the Unix epoch.
    pub last_update_time: Option<i64>,
}

/// A run's metadata (MLflow's `RunInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// 32 lowercase hex digits (a uuid4 without dashes).
    pub run_id: String,
    /// The experiment holding the run.
    pub experiment_id: String,
    /// The display name (`mlflow.runName`).
    pub run_name: String,
    /// Current status.
    pub status: RunStatus,
    /// Start time, milliseconds since the Unix epoch.
    pub start_time: i64,
    /// End time, milliseconds since the Unix epoch; `None` while running.
    pub end_time: Option<i64>,
    /// Root URI of the run's artifacts.
    pub artifact_uri: String,
    /// `active` or `deleted`.
    pub lifecycle_stage: String,
    /// Who started it.
    pub user_id: String,
}

/// One metric value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// The metric name (`IC`, `Rank ICIR`, ...).
    pub key: String,
    /// The value (NaN and infinities are stored as MLflow stores them).
    pub value: f64,
    /// When it was logged, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The step (0 unless given).
    pub step: i64,
}

/// One entry of an artifact listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactEntry {
    /// Path relative to the run's artifact root, `/`-separated.
    pub path: String,
    /// True for a folder.
    pub is_dir: bool,
    /// Size in bytes (files only).
    pub size: Option<u64>,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Formats epoch milliseconds as `YYYY-MM-DD HH:MM:SS` UTC (for listings).
pub fn format_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_mlflows() {
        // From MLflow's service.proto: RUNNING = 1 ... KILLED = 5.
        let codes: Vec<i64> = RunStatus::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes, [1, 2, 3, 4, 5]);
        assert_eq!(RunStatus::from_code(4), Some(RunStatus::Failed));
        assert_eq!(RunStatus::from_code(9), None);
        assert_eq!(
            "finished".parse::<RunStatus>().unwrap(),
            RunStatus::Finished
        );
        assert!("done".parse::<RunStatus>().is_err());
    }

    #[test]
    fn millis_format_as_utc() {
        assert_eq!(format_millis(0), "1970-01-01 00:00:00");
        assert_eq!(format_millis(1_700_000_000_123), "2023-11-14 22:13:20");
    }
}

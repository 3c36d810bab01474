//! Task statuses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::PoolError;

/// The lifecycle state of a task: Qlib's four statuses plus `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Ready to be claimed.
    Waiting,
    /// Claimed by a worker.
    Running,
    /// First phase done (delay trainers); claimable again with `status=part_done`.
    PartDone,
    /// Finished; `res` holds the result.
    Done,
    /// Attempts exhausted; `error` holds the last error.
    Failed,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 5] = [
        Status::Waiting,
        Status::Running,
        Status::PartDone,
        Status::Done,
        Status::Failed,
    ];

    /// The name stored in the database and printed to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Waiting => "waiting",
            Status::Running => "running",
            Status::PartDone => "part_done",
            Status::Done => "done",
            Status::Failed => "failed",
        }
    }

    /// Whether a commit into this status stamps `finished_at`: the end of a stage of work
    /// (part_done ends the first stage of the delay trainers), as opposed to waiting or running.
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Done | Status::Failed | Status::PartDone)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = PoolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| PoolError::BadStatus(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_an_error() {
        for st in Status::ALL {
            assert_eq!(st.as_str().parse::<Status>().unwrap(), st);
        }
        assert_eq!("part_done".parse::<Status>().unwrap(), Status::PartDone);
        let err = "finished".parse::<Status>().unwrap_err().to_string();
        assert!(err.contains("\"finished\""), "{err}");
    }
}

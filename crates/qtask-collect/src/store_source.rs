//! The runs store ([`RecordStore`]) as a [`RunSource`]: the one way collectors, the CLI and the
//! study read runs back.

use std::collections::BTreeMap;

use qtask_record::{RecordError, RecordStore};

use crate::{RunRecord, RunSource, SourceError};

impl RunSource for RecordStore {
    fn runs(&self, experiment: &str) -> Result<Vec<RunRecord>, SourceError> {
        let exp = self
            .find_experiment(experiment)?
            .ok_or_else(|| format!("no experiment `{experiment}` in {}", self.uri()))?;
        Ok(exp
            .runs(None)?
            .into_iter()
            .map(|r| RunRecord {
                id: r.run_id,
                status: r.status.as_str().to_string(),
            })
            .collect())
    }

    fn artifact(&self, run_id: &str, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        match self.run(run_id)?.load_artifact_bytes(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(RecordError::NoArtifact { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn tags(&self, run_id: &str) -> Result<BTreeMap<String, String>, SourceError> {
        Ok(self.run(run_id)?.tags()?)
    }

    fn params(&self, run_id: &str) -> Result<BTreeMap<String, String>, SourceError> {
        Ok(self.run(run_id)?.params()?)
    }
}

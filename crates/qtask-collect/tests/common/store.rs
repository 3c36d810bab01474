//! The runs store (`qtask-record`) as a `RunSource`, the way the CLI wires it.

use std::collections::BTreeMap;

use qtask_collect::{RunRecord, RunSource, SourceError};
use qtask_record::{RecordError, RecordStore};

pub struct StoreSource(pub RecordStore);

impl RunSource for StoreSource {
    fn runs(&self, experiment: &str) -> Result<Vec<RunRecord>, SourceError> {
        let exp = self
            .0
            .find_experiment(experiment)?
            .ok_or_else(|| format!("no experiment `{experiment}`"))?;
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
        match self.0.run(run_id)?.load_artifact_bytes(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(RecordError::NoArtifact { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn tags(&self, run_id: &str) -> Result<BTreeMap<String, String>, SourceError> {
        Ok(self.0.run(run_id)?.tags()?)
    }

    fn params(&self, run_id: &str) -> Result<BTreeMap<String, String>, SourceError> {
        Ok(self.0.run(run_id)?.params()?)
    }
}

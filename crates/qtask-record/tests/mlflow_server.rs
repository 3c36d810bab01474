//! The tracking-server backend against a real `mlflow server` (SQLite backend, artifact
//! proxy), started here on 127.0.0.1. Runs only with `QTASK_TEST_MLFLOW=1`; the unreachable
//! server case always runs.

mod common;

use qtask_record::{RecordError, RecordStore};

#[test]
fn every_operation_on_a_real_tracking_server() {
    if !common::mlflow_enabled("every_operation_on_a_real_tracking_server") {
        return;
    }
    let server = common::MlflowServer::start();
    let store = RecordStore::open(&server.url).unwrap();
    let written = common::conformance::exercise(&store);
    // Artifacts went through the proxy into the server's artifact folder.
    let exp = store.find_experiment(&written.experiment).unwrap().unwrap();
    let on_disk = server
        .artifacts
        .join(exp.id())
        .join(&written.finished)
        .join("artifacts/sig_analysis/ic.parquet");
    assert_eq!(
        std::fs::read(&on_disk).unwrap(),
        written.blob,
        "{}",
        server.log()
    );
    common::readback::check_with_mlflow(&server.url, &written);
    common::conformance::check_delete(&store, &written);

    // Concurrent clients creating one name get one experiment (one server start for both
    // checks: starting MLflow takes most of this test's time).
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                s.spawn(move || store.experiment("raced").unwrap().id().to_string())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    let raced = store.experiments().unwrap();
    assert_eq!(raced.iter().filter(|e| e.name == "raced").count(), 1);
}

#[test]
fn an_unreachable_server_is_one_clear_error() {
    // Nothing listens on port 1; the error must name the URL and come back without hanging.
    let store = RecordStore::open("http://127.0.0.1:1").unwrap();
    let err = store.experiment("x").unwrap_err();
    assert!(matches!(err, RecordError::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("cannot reach MLflow tracking server at http://127.0.0.1:1/"),
        "{text}"
    );
    assert!(!text.contains('\n'));
}

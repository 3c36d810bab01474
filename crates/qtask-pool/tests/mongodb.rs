//! The conformance suite on MongoDB (feature `mongodb`), when `QTASK_TEST_MONGODB` holds a
//! server URL. No MongoDB server can be installed on the development machines.

#![cfg(feature = "mongodb")]

#[test]
fn an_unreachable_server_is_one_clear_error() {
    let err = qtask_pool::open("mongodb://127.0.0.1:1/none", "p")
        .err()
        .unwrap();
    assert!(
        matches!(err, qtask_pool::PoolError::Connect { .. }),
        "{err}"
    );
}

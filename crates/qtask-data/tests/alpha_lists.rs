//! The built-in handler feature lists match Qlib's.

use std::path::PathBuf;

use qtask_data::alpha::{DEFAULT_LABEL, alpha158, alpha360};

#[test]
fn alpha158_list_is_qlibs() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/alpha158_exprs.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let want: Vec<(String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().into(),
                e["expr"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut got = alpha158();
    got.push(("LABEL0".into(), DEFAULT_LABEL.into()));
    assert_eq!(got, want);
}

#[test]
fn alpha360_has_qlibs_names_in_order() {
    let f = alpha360();
    assert_eq!(f.len(), 360);
    assert_eq!(
        f[0],
        ("CLOSE59".to_string(), "Ref($close, 59)/$close".to_string())
    );
    assert_eq!(f[59], ("CLOSE0".to_string(), "$close/$close".to_string()));
    assert_eq!(f[60].0, "OPEN59");
    assert_eq!(
        f[359],
        ("VOLUME0".to_string(), "$volume/($volume+1e-12)".to_string())
    );
}

//! Workflow configs read as qrun reads them: BASE_CONFIG_PATH merged, experiment_name and
//! qlib_init taken, and every key qtask cannot honour refused with one line naming the key and
//! the file.

use std::path::{Path, PathBuf};

use qtask_core::load_template;
use serde_json::json;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const TASK: &str = "task:\n  model: {class: LGBModel}\n  dataset: {class: DatasetH}\n";

fn refusal(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "w.yaml", text);
    let err = load_template(&p).unwrap_err().to_string();
    let prefix = format!("{}", p.display());
    assert!(err.starts_with(&prefix), "the error names the file: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err[prefix.len()..].to_string()
}

#[test]
fn base_config_is_merged_as_qrun_merges_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    write(
        &dir.path().join("conf"),
        "base.yaml",
        "qlib_init: {provider_uri: /data/cn, region: cn}\nexperiment_name: base_exp\n\
         task:\n  model: {class: LGBModel, kwargs: {loss: mse, learning_rate: 0.2}}\n  \
         dataset: {class: DatasetH, kwargs: {segments: {train: [2008-01-01, 2014-12-31]}}}\n  \
         record: [{class: SignalRecord}]\n",
    );
    // Relative to the config's folder (not to the working directory).
    let child = write(
        &dir.path().join("conf"),
        "child.yaml",
        "BASE_CONFIG_PATH: base.yaml\nqlib_init: {region: us}\n\
         task:\n  model: {kwargs: {learning_rate: 0.05}}\n  record: __DROP__\n",
    );
    let t = load_template(&child).unwrap();
    assert_eq!(t.base_config, Some(dir.path().join("conf/base.yaml")));
    assert_eq!(t.provider_uri, Some(PathBuf::from("/data/cn")));
    assert_eq!(t.region.as_deref(), Some("us"));
    assert_eq!(t.experiment_name.as_deref(), Some("base_exp"));
    let task = &t.tasks[0];
    // Maps merge key by key; scalars replace; __DROP__ deletes.
    assert_eq!(
        task["model"],
        json!({"class": "LGBModel", "kwargs": {"loss": "mse", "learning_rate": 0.05}})
    );
    assert!(task.get("record").is_none());
    assert_eq!(
        task["dataset"]["kwargs"]["segments"]["train"],
        json!(["2008-01-01", "2014-12-31"])
    );
    // An absolute path works from anywhere.
    let abs = write(
        dir.path(),
        "abs.yaml",
        &format!(
            "BASE_CONFIG_PATH: {}\n",
            dir.path().join("conf/base.yaml").display()
        ),
    );
    assert_eq!(load_template(&abs).unwrap().tasks.len(), 1);
    let missing = write(dir.path(), "m.yaml", "BASE_CONFIG_PATH: nope.yaml\n");
    let err = load_template(&missing).unwrap_err().to_string();
    assert!(
        err.contains("BASE_CONFIG_PATH `nope.yaml` not found"),
        "{err}"
    );
}

#[test]
fn experiment_name_and_provider_map() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "w.yaml",
        &format!(
            "experiment_name: my_exp\nqlib_init:\n  provider_uri: {{day: /d/cn, 1min: /d/cn_1min}}\n  \
             region: cn\n  dataset_cache: null\n  maxtasksperchild: 1\n  kernels: 4\n{TASK}"
        ),
    );
    let t = load_template(&p).unwrap();
    assert_eq!(t.experiment_name.as_deref(), Some("my_exp"));
    assert_eq!(t.provider_uri, Some(PathBuf::from("/d/cn")));
    assert_eq!(t.region.as_deref(), Some("cn"));
}

#[test]
fn keys_qtask_cannot_honour_are_refused_naming_key_and_file() {
    let cases = [
        (
            "qlib_init:\n  provider_uri: {1min: /d/cn_1min}\n",
            ": qlib_init.provider_uri has no `day` folder (has: 1min)",
        ),
        (
            "qlib_init:\n  provider_uri: nas:/data/cn\n",
            ": qlib_init.provider_uri: `nas:/data/cn` is an NFS location",
        ),
        (
            "qlib_init:\n  region: eu\n",
            ": qlib_init.region: `\"eu\"` is not a Qlib region",
        ),
        (
            "qlib_init:\n  exp_manager: {class: MLflowExpManager}\n",
            ": qlib_init.exp_manager is refused",
        ),
        (
            "qlib_init:\n  custom_ops: [MyOp]\n",
            ": qlib_init.custom_ops is refused",
        ),
        (
            "qlib_init:\n  trade_unit: 100\n",
            ": qlib_init.trade_unit is refused",
        ),
        (
            "qlib_init:\n  provider: ClientProvider\n",
            ": qlib_init.provider is refused",
        ),
        (
            "qlib_init:\n  provier_uri: /d\n",
            ": qlib_init.provier_uri is not a Qlib setting",
        ),
        ("sys:\n  rel_path: [.]\n", ": sys.rel_path is refused"),
        ("sys:\n  path: /opt/code\n", ": sys.path is refused"),
        ("sys:\n  pth: []\n", ": sys.pth: unknown key"),
        (
            "experiment_name: [a]\n",
            ": experiment_name: expected a name",
        ),
        (
            "BASE_CONFIG_PATH: 3\n",
            ": BASE_CONFIG_PATH: expected a file path",
        ),
    ];
    for (text, want) in cases {
        let err = refusal(&format!("{text}{TASK}"));
        assert!(err.starts_with(want), "{text:?}: {err}");
    }
    // Keys that only tune pyqlib are accepted; sys without entries too.
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "ok.yaml",
        &format!(
            "sys: {{path: [], rel_path: []}}\nqlib_init:\n  provider_uri: /d\n  expression_cache: null\n  \
             logging_level: 20\n  calendar_provider: LocalCalendarProvider\n  auto_mount: false\n{TASK}"
        ),
    );
    load_template(&p).unwrap();
}

#[test]
fn jinja_syntax_is_refused_with_its_line() {
    let err = refusal(&format!(
        "qlib_init:\n  provider_uri: \"{{{{ QLIB_DATA }}}}\"\n{TASK}"
    ));
    assert!(
        err.starts_with(":2: `{{` is Jinja2 template syntax"),
        "{err}"
    );
    let err = refusal(&format!("{{% if x %}}\n{TASK}{{% endif %}}\n"));
    assert!(err.starts_with(":1: `{%` is Jinja2"), "{err}");
    let err = refusal(&format!("{TASK}# {{# note #}}\n"));
    assert!(err.starts_with(":4: `{#` is Jinja2"), "{err}");
}

#[test]
fn yaml_is_read_as_qrun_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    // YAML 1.2 (ruamel's safe loader): yes/on are strings, True is a boolean.
    let p = write(
        dir.path(),
        "y.yaml",
        &format!("{TASK}  extra: {{a: yes, b: on, c: True}}\n"),
    );
    let t = load_template(&p).unwrap();
    assert_eq!(
        t.tasks[0]["extra"],
        json!({"a": "yes", "b": "on", "c": true})
    );
    let p = write(dir.path(), "d.yaml", "task: {a: 1}\ntask: {a: 2}\n");
    assert!(
        load_template(&p)
            .unwrap_err()
            .to_string()
            .contains("duplicate")
    );
}

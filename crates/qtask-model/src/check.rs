//! Checking a task before anything runs: every key of its `model`, `dataset` and `record`
//! blocks is implemented or refused with one line naming it, so a config qtask cannot honour
//! fails in milliseconds instead of running as something else.

use qtask_core::placeholder::fill_placeholder;
use qtask_data::dataset::DatasetConfig;
use serde_json::{Map, Value};

use crate::error::{ModelError, Result};
use crate::model::ModelSpec;
use crate::records::RecordSpec;

/// Model classes of Qlib with the modules Qlib finds them in (`module_path` must be one).
const MODEL_MODULES: &[(&str, &[&str])] = &[
    (
        "LGBModel",
        &["qlib.contrib.model.gbdt", "qlib.contrib.model"],
    ),
    (
        "LinearModel",
        &["qlib.contrib.model.linear", "qlib.contrib.model"],
    ),
    (
        "XGBModel",
        &["qlib.contrib.model.xgboost", "qlib.contrib.model"],
    ),
    (
        "DEnsembleModel",
        &["qlib.contrib.model.double_ensemble", "qlib.contrib.model"],
    ),
];

fn invalid(msg: String) -> ModelError {
    ModelError::Invalid(msg)
}

/// Refuses Qlib's models qtask leaves to `--exec`, and a `module_path` that is not where Qlib
/// keeps the class (a user's own class of the same name would be replaced by qtask's).
fn check_model_class(model: &Value) -> Result<()> {
    let Some(full) = model.get("class").and_then(Value::as_str) else {
        return Ok(()); // ModelSpec names the missing class.
    };
    let (in_class, class) = match full.rsplit_once('.') {
        Some((m, c)) => (Some(m), c),
        None => (None, full),
    };
    let module = in_class.or_else(|| model.get("module_path").and_then(Value::as_str));
    let torch = module.is_some_and(|m| m.starts_with("qlib.contrib.model.pytorch_"));
    if let Some(msg) = crate::exec_only::message(class, module) {
        return Err(invalid(format!("model.class: `{class}` is refused: {msg}")));
    }
    if torch {
        return Err(invalid(format!(
            "model.class: `{class}` is refused: a PyTorch model that task_train does not \
             implement; run it with `qtask worker --exec 'python your_script.py'` (see \
             docs/workers.md)"
        )));
    }
    if let (Some((_, modules)), Some(module)) =
        (MODEL_MODULES.iter().find(|(c, _)| *c == class), module)
        && !modules.contains(&module)
    {
        return Err(invalid(format!(
            "model.module_path: `{module}` is refused: {class} is Qlib's ({}); a model from other \
             Python code is not run by qtask",
            modules.join(" or ")
        )));
    }
    Ok(())
}

/// Checks a task as `task_train` will read it, without reading data: the task's keys, the
/// model, the dataset (handler, processors, segments) and the records. Placeholders such as
/// `<dataset.kwargs.segments.train.0>` are filled first, as `task_train` fills them.
pub fn check_task(task: &Value) -> Result<()> {
    let map = task
        .as_object()
        .ok_or_else(|| invalid(format!("a task must be a map, got {task}")))?;
    for k in map.keys() {
        match k.as_str() {
            // qtask's own: the horizon generator's note, a task's own data folder.
            "model" | "dataset" | "record" | "extra" | "qlib_init" => {}
            "reweighter" => {
                return Err(invalid(
                    "reweighter is refused: sample reweighting is Python code qtask does not run"
                        .into(),
                ));
            }
            other => {
                return Err(invalid(format!(
                    "task.{other}: unknown key (a task has model, dataset and record)"
                )));
            }
        }
    }
    let mut task = task.clone();
    fill_placeholder(&mut task, &Map::new());
    let model = task
        .get("model")
        .ok_or_else(|| invalid("the task has no `model` block".into()))?;
    check_model_class(model)?;
    ModelSpec::from_value(model)?;
    let dataset = task
        .get("dataset")
        .ok_or_else(|| invalid("the task has no `dataset` block".into()))?;
    DatasetConfig::from_value(dataset)?;
    RecordSpec::list_from(task.get("record"))?;
    Ok(())
}

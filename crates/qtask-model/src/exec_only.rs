//! Qlib's model classes `task_train` does not implement (CatBoost and the PyTorch models of
//! `qlib.contrib.model`): a task naming one gets a line that says so and points to `--exec`,
//! which runs any Python training script as a qtask task (docs/workers.md).

/// `(class, module)` of every such model, as Qlib's benchmark configs name them.
pub const EXEC_ONLY_MODELS: &[(&str, &str)] = &[
    ("CatBoostModel", "qlib.contrib.model.catboost_model"),
    ("HFLGBModel", "qlib.contrib.model.highfreq_gdbt_model"),
    ("ADARNN", "qlib.contrib.model.pytorch_adarnn"),
    ("ADD", "qlib.contrib.model.pytorch_add"),
    ("ALSTM", "qlib.contrib.model.pytorch_alstm"),
    ("GATs", "qlib.contrib.model.pytorch_gats"),
    ("GeneralPTNN", "qlib.contrib.model.pytorch_general_nn"),
    ("GRU", "qlib.contrib.model.pytorch_gru"),
    ("HIST", "qlib.contrib.model.pytorch_hist"),
    ("IGMTF", "qlib.contrib.model.pytorch_igmtf"),
    ("KRNN", "qlib.contrib.model.pytorch_krnn"),
    ("LocalformerModel", "qlib.contrib.model.pytorch_localformer"),
    ("LSTM", "qlib.contrib.model.pytorch_lstm"),
    ("DNNModelPytorch", "qlib.contrib.model.pytorch_nn"),
    ("Sandwich", "qlib.contrib.model.pytorch_sandwich"),
    ("SFM", "qlib.contrib.model.pytorch_sfm"),
    ("TabnetModel", "qlib.contrib.model.pytorch_tabnet"),
    ("TCN", "qlib.contrib.model.pytorch_tcn"),
    ("TCTS", "qlib.contrib.model.pytorch_tcts"),
    ("TRAModel", "qlib.contrib.model.pytorch_tra"),
    ("TransformerModel", "qlib.contrib.model.pytorch_transformer"),
];

/// The message for a Qlib model `task_train` does not implement, or `None` for any other
/// class. `module_path` (when the task gives one) is quoted as given: the `_ts` variants of
/// the PyTorch models share their class names.
pub fn message(class: &str, module_path: Option<&str>) -> Option<String> {
    let (_, module) = EXEC_ONLY_MODELS.iter().find(|(c, _)| *c == class)?;
    let module = module_path.unwrap_or(module);
    let kind = if class == "CatBoostModel" {
        "CatBoost"
    } else if class == "HFLGBModel" {
        "a high-frequency LightGBM model"
    } else {
        "a PyTorch model"
    };
    Some(format!(
        "model `{class}` ({module}) is {kind} that task_train does not implement; run it with \
         `qtask worker --exec 'python your_script.py'` (a Python script trains any Qlib model \
         inside a qtask task: see docs/workers.md)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neural_and_catboost_models_point_to_exec() {
        let m = message("GRU", Some("qlib.contrib.model.pytorch_gru_ts")).unwrap();
        assert!(m.starts_with("model `GRU` (qlib.contrib.model.pytorch_gru_ts) is a PyTorch"));
        assert!(m.contains("--exec"), "{m}");
        let m = message("CatBoostModel", None).unwrap();
        assert!(m.contains("catboost_model) is CatBoost"), "{m}");
        assert!(message("LGBModel", None).is_none());
        assert!(message("NoSuchModel", None).is_none());
    }
}

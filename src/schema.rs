//! JSON Schema of the model file, generated from the spec types.

use crate::model::ModelSpec;

/// The JSON Schema (draft 2020-12) of experiment files, pretty-printed.
pub fn experiment_schema_json() -> String {
    let schema = schemars::schema_for!(crate::experiment::ExperimentSpec);
    let mut s = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    s.push('\n');
    s
}

/// The JSON Schema (draft 2020-12) of model files, pretty-printed.
pub fn model_schema_json() -> String {
    let schema = schemars::schema_for!(ModelSpec);
    let mut s = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    s.push('\n');
    s
}

//! Reading a model file: JSON or YAML text to a [`Model`], with every error located.

use super::overrides::apply_set;
use super::spec::{ModelSpec, NESTED_PATH_MARK};
use super::{Model, validate};
use crate::error::{ModelError, ModelErrors};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Syntax of a model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// YAML (same schema as JSON; comments allowed).
    Yaml,
}

impl Format {
    /// The format a file name implies: YAML for `.yaml`/`.yml`, JSON otherwise.
    pub fn of_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Format::Yaml,
            _ => Format::Json,
        }
    }
}

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{file}: cannot read the model file: {source}")]
    Io {
        /// The file.
        file: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The model has mistakes.
    #[error("{0}")]
    Invalid(ModelErrors),
}

/// Reads, overrides (`sets`, each `PATH=VALUE`) and validates the model in `path`.
pub fn load_model_file(path: &Path, sets: &[String]) -> Result<Model, LoadError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        file: file.clone(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse_model_str(&text, Format::of_path(path), base, sets)
        .map_err(|errors| LoadError::Invalid(ModelErrors { file, errors }))
}

/// Parses model text; relative file names in it (traces) are resolved against `base`.
pub fn parse_model_str(
    text: &str,
    format: Format,
    base: &Path,
    sets: &[String],
) -> Result<Model, Vec<ModelError>> {
    let mut value = parse_value(text, format).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    for s in sets {
        if let Err(e) = apply_set(&mut value, s) {
            errors.push(e);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let spec: ModelSpec = deserialize_located(value.clone()).map_err(|e| vec![e])?;
    let hash = hash_value(&value);
    validate(spec, base, hash)
}

/// Parses text to a JSON value, reporting syntax errors with line and column.
pub fn parse_value(text: &str, format: Format) -> Result<Value, ModelError> {
    match format {
        Format::Json => serde_json::from_str(text).map_err(|e| {
            ModelError::new(
                format!("line {} column {}", e.line(), e.column()),
                format!("invalid JSON: {}", strip_position(&e.to_string())),
            )
        }),
        Format::Yaml => serde_saphyr::from_str::<Value>(text)
            .map_err(|e| ModelError::new("", format!("invalid YAML: {e}"))),
    }
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Deserializes a spec from a value, locating the first error by its JSON path.
pub fn deserialize_located<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ModelError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let outer = e.path().to_string();
        let outer = if outer == "." { String::new() } else { outer };
        let message = e.into_inner().to_string();
        split_nested(&outer, &message)
    })
}

/// Joins a path hidden in an error message (see [`NESTED_PATH_MARK`]) to the outer path.
fn split_nested(outer: &str, message: &str) -> ModelError {
    let mut parts = message.splitn(3, NESTED_PATH_MARK);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(inner), Some(rest)) => {
            let path = if outer.is_empty() {
                inner.to_string()
            } else {
                format!("{outer}.{inner}")
            };
            ModelError::new(path, rest.to_string())
        }
        _ => ModelError::new(outer, message.to_string()),
    }
}

/// SHA-256 of the compact JSON of a value, as hex.
pub fn hash_value(value: &Value) -> String {
    let bytes = serde_json::to_vec(value).expect("a JSON value serializes");
    let digest = Sha256::digest(&bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

//! Reading a model file: JSON or YAML text to a [`Model`], with every error located.

use super::overrides::apply_set;
use super::spec::{ModelSpec, NESTED_PATH_MARK};
use super::trace::{TraceFiles, read_replays};
use super::{Model, validate};
use crate::error::{ModelError, ModelErrors, did_you_mean, join, quoted};
use crate::limits::{MAX_MODEL_FILE_BYTES, read_to_string_capped};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;
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
    let text =
        read_to_string_capped(path, MAX_MODEL_FILE_BYTES).map_err(|source| LoadError::Io {
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
    model_from_value(value, base)
}

/// Builds a model from its parsed (and overridden) JSON value.
pub fn model_from_value(value: Value, base: &Path) -> Result<Model, Vec<ModelError>> {
    model_from_value_with(value, base, &TraceFiles::new())
}

/// Builds a model from its parsed (and overridden) JSON value, sharing the trace files
/// already read in `traces` (models built from one source, as the points of a sweep).
pub fn model_from_value_with(
    value: Value,
    base: &Path,
    traces: &TraceFiles,
) -> Result<Model, Vec<ModelError>> {
    if !value.is_object() {
        return Err(vec![ModelError::new(
            "",
            format!(
                "expected an object with \"duration\", \"workloads\" and \"components\", got {}",
                describe(&value)
            ),
        )]);
    }
    let spec: ModelSpec = deserialize_located(value.clone()).map_err(|e| vec![e])?;
    let hash = hash_value(&value);
    let replays = read_replays(&spec, base, traces);
    validate(spec, replays, hash)
}

/// Parses text to a JSON value, reporting syntax errors with line and column. A key given
/// twice in one object is an error, not silently the last one.
pub fn parse_value(text: &str, format: Format) -> Result<Value, ModelError> {
    // A byte order mark is allowed (some editors write one), in JSON as in YAML.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        Format::Json => parse_json(text),
        Format::Yaml => serde_saphyr::from_str::<StrictValue>(text)
            .map(|v| v.0)
            .map_err(|e| {
                let at = e
                    .location()
                    .map(|l| format!("line {} column {}", l.line(), l.column()))
                    .unwrap_or_default();
                let msg = e
                    .without_snippet()
                    .render_with_formatter(&serde_saphyr::UserMessageFormatter);
                ModelError::new(at, format!("invalid YAML: {}", strip_position(&msg)))
            }),
    }
}

fn parse_json(text: &str) -> Result<Value, ModelError> {
    let syntax = |e: &serde_json::Error| {
        ModelError::new(
            format!("line {} column {}", e.line(), e.column()),
            format!("invalid JSON: {}", strip_position(&e.to_string())),
        )
    };
    let mut de = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, StrictValue>(&mut de) {
        Ok(v) => {
            de.end().map_err(|e| syntax(&e))?;
            Ok(v.0)
        }
        Err(e) => {
            let outer = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_data() {
                // A duplicate key, located by path and by position.
                let mut err = split_nested(
                    if outer == "." { "" } else { &outer },
                    &strip_position(&inner.to_string()),
                );
                err.message = format!(
                    "{} (line {} column {})",
                    err.message,
                    inner.line(),
                    inner.column()
                );
                Err(err)
            } else {
                Err(syntax(&inner))
            }
        }
    }
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// A JSON value read from JSON or YAML text, refusing keys given twice and non-finite
/// numbers.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("expected a finite number, got {v}")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue::deserialize(d).map(|v| v.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "{NESTED_PATH_MARK}{key}{NESTED_PATH_MARK}given twice in the same object; expected each key once"
                )));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Deserializes a spec from a value, locating the first error by its JSON path and
/// rewording serde's messages for people who write model files.
pub fn deserialize_located<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ModelError> {
    let root = value.clone();
    serde_path_to_error::deserialize(value).map_err(|e| {
        let outer = e.path().to_string();
        let outer = if outer == "." { String::new() } else { outer };
        let message = e.into_inner().to_string();
        humanize(split_nested(&outer, &message), &root)
    })
}

/// Joins a path hidden in an error message (see [`NESTED_PATH_MARK`]) to the outer path.
fn split_nested(outer: &str, message: &str) -> ModelError {
    let mut parts = message.splitn(3, NESTED_PATH_MARK);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(inner), Some(rest)) => {
            let path = if outer.is_empty() || inner.starts_with('[') {
                format!("{outer}{inner}")
            } else {
                format!("{outer}.{inner}")
            };
            ModelError::new(path, rest.to_string())
        }
        _ => ModelError::new(outer, message.to_string()),
    }
}

/// Rewrites serde's standard messages ("invalid type: string \"x\", expected u32", "unknown
/// field `wrkers`, expected one of ...") as "expected ..., got ..." in the words of a model
/// file, with a suggestion for a misspelt name. `root` is the whole document, to show what
/// was found at the path.
fn humanize(err: ModelError, root: &Value) -> ModelError {
    let ModelError { path, message } = err;
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let names = backticked(rest);
        if let Some((field, allowed)) = names.split_first() {
            let expected = match allowed.len() {
                0 => "this object takes no fields".to_string(),
                1 => format!("expected {}", quoted(allowed.iter().copied())),
                _ => format!("expected one of {}", quoted(allowed.iter().copied())),
            };
            let hint = did_you_mean(field, allowed.iter().copied());
            return ModelError::new(path, format!("unknown field \"{field}\"; {expected}{hint}"));
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let names = backticked(rest);
        if let Some((name, allowed)) = names.split_first() {
            let hint = did_you_mean(name, allowed.iter().copied());
            return ModelError::new(
                path,
                format!(
                    "unknown name \"{name}\"; expected one of {}{hint}",
                    quoted(allowed.iter().copied())
                ),
            );
        }
    }
    if let Some(rest) = message.strip_prefix("missing field ")
        && let Some(field) = backticked(rest).first()
    {
        return ModelError::new(join(&path, field), "required field is missing");
    }
    if let Some(rest) = message.strip_prefix("invalid length ")
        && let Some((len, expected)) = rest.split_once(", expected ")
    {
        let n: usize = len.parse().unwrap_or(0);
        return ModelError::new(
            path,
            format!(
                "expected {}, got a list of {n} item{}",
                expected_text(expected),
                if n == 1 { "" } else { "s" }
            ),
        );
    }
    let rest = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "));
    if let Some((found, expected)) = rest.and_then(|r| r.rsplit_once(", expected ")) {
        if found == "unit variant" && expected == "newtype variant" {
            // `"exponential"` where `{"exponential": {...}}` was meant: serde's path ends
            // with the name.
            let (parent, name) = match path.rsplit_once('.') {
                Some((p, n)) => (p.to_string(), n.to_string()),
                None => (String::new(), path.clone()),
            };
            return ModelError::new(
                parent,
                format!(
                    "expected an object such as {{\"{name}\": {{...}}}} with the parameters of \"{name}\", got the bare name \"{name}\""
                ),
            );
        }
        let found_value = lookup(root, &path);
        if expected == "map with a single key" {
            let got = match found_value.and_then(Value::as_object) {
                Some(m) if m.is_empty() => "an empty object".to_string(),
                Some(m) => format!(
                    "an object with {} keys ({})",
                    m.len(),
                    quoted(m.keys().map(String::as_str))
                ),
                None => "an object without exactly one key".to_string(),
            };
            return ModelError::new(
                path,
                format!(
                    "expected an object with exactly one key naming the kind, such as {{\"exponential\": {{\"mean\": \"2ms\"}}}}, got {got}"
                ),
            );
        }
        let got = match (found, found_value) {
            ("map" | "sequence", Some(v)) => describe(v),
            _ => found_text(found),
        };
        let expected = match expected_text(expected) {
            // A cache's capacity is a whole number like any other, but 0 is refused too.
            e if path.ends_with(".capacity") && matches!(expected, "u64" | "usize") => {
                e.replace("0 or more", "1 or more")
            }
            e => e,
        };
        return ModelError::new(path, format!("expected {expected}, got {got}"));
    }
    ModelError::new(path, message)
}

/// The names between backticks in a serde message.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// What serde says was expected, in the words of a model file.
fn expected_text(expected: &str) -> String {
    let range = |max: u64| format!("a whole number from 0 to {max}");
    match expected {
        "u8" => range(u8::MAX.into()),
        "u16" => range(u16::MAX.into()),
        "u32" => range(u32::MAX.into()),
        "u64" | "usize" => "a whole number, 0 or more".to_string(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "a sequence" => "a list".to_string(),
        "a map" => "an object".to_string(),
        "a boolean" => "true or false".to_string(),
        "unit variant" => "a name".to_string(),
        "string or map" => "a name, or an object with one key naming the kind".to_string(),
        "tuple struct CdfPoint with 2 elements" | "tuple struct CdfPoint" => {
            "a [duration, probability] pair such as [\"5ms\", 0.9]".to_string()
        }
        e if e.starts_with("struct ") => "an object".to_string(),
        e if e.starts_with("tuple struct ") || e.starts_with("a tuple of size ") => {
            match e.rsplit(' ').nth(1).and_then(|n| n.parse::<usize>().ok()) {
                Some(n) => format!("a list of {n} items"),
                None => "a list".to_string(),
            }
        }
        e if e.starts_with("enum ") => {
            "a name, or an object with one key naming the kind".to_string()
        }
        e => e.to_string(),
    }
}

/// What serde says was found (`integer `5``), as the user wrote it (`5`).
fn found_text(found: &str) -> String {
    for prefix in ["integer ", "floating point ", "boolean ", "char "] {
        if let Some(v) = found.strip_prefix(prefix) {
            return v.trim_matches('`').to_string();
        }
    }
    if let Some(v) = found.strip_prefix("string ") {
        return v.to_string();
    }
    match found {
        "map" => "an object".to_string(),
        "sequence" => "a list".to_string(),
        "unit value" | "null" => "null".to_string(),
        "newtype variant" | "struct variant" | "tuple variant" => {
            "an object with one key".to_string()
        }
        "unit variant" => "a bare name".to_string(),
        other => other.to_string(),
    }
}

/// A value quoted in a message: scalars as written, lists and objects shortened.
fn describe(v: &Value) -> String {
    const MAX: usize = 60;
    let kind = match v {
        Value::Array(a) if a.is_empty() => return "an empty list".to_string(),
        Value::Object(o) if o.is_empty() => return "an empty object".to_string(),
        Value::Array(_) => "a list ",
        Value::Object(_) => "an object ",
        other => return other.to_string(),
    };
    let text = v.to_string();
    if text.chars().count() > MAX {
        let short: String = text.chars().take(MAX).collect();
        format!("{kind}{short}...")
    } else {
        format!("{kind}{text}")
    }
}

/// The value at a path such as `components.app.handler[0].call`, if there is one.
fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(root);
    }
    let mut cur = root;
    for dotted in path.split('.') {
        let (name, mut rest) = match dotted.find('[') {
            Some(i) => dotted.split_at(i),
            None => (dotted, ""),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        while let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            cur = cur.get(r[..close].parse::<usize>().ok()?)?;
            rest = &r[close + 1..];
        }
    }
    Some(cur)
}

/// SHA-256 of the compact JSON of a value, as hex.
pub fn hash_value(value: &Value) -> String {
    let bytes = serde_json::to_vec(value).expect("a JSON value serializes");
    let digest = Sha256::digest(&bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

//! `--set PATH=VALUE`: change one field of a model before it is validated.

use crate::error::ModelError;
use serde_json::Value;

/// Applies `assignment` (`components.app.replicas=4`) to the parsed model. The value is
/// read as JSON when it parses as JSON (`4`, `true`, `{"constant": "1ms"}`), otherwise
/// as a string (`5ms`). Objects on the way are created when missing; list items are
/// addressed by index (`handler.0.call`).
pub fn apply_set(model: &mut Value, assignment: &str) -> Result<(), ModelError> {
    let (path, raw) = assignment.split_once('=').ok_or_else(|| {
        ModelError::new(
            "--set",
            format!("expected PATH=VALUE such as components.app.replicas=4, got \"{assignment}\""),
        )
    })?;
    let path = path.trim();
    if path.is_empty() {
        return Err(ModelError::new(
            "--set",
            format!("empty path in \"{assignment}\""),
        ));
    }
    let value = serde_json::from_str(raw.trim()).unwrap_or_else(|_| Value::String(raw.to_string()));
    set_path(model, path, value)
}

/// Sets the field at dotted `path` to `value`.
pub fn set_path(model: &mut Value, path: &str, value: Value) -> Result<(), ModelError> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = model;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let here = parts[..i].join(".");
        cur = match cur {
            Value::Object(map) => {
                if last {
                    map.insert(part.to_string(), value);
                    return Ok(());
                }
                map.entry(part.to_string())
                    .or_insert_with(|| Value::Object(Default::default()))
            }
            Value::Array(items) => {
                let idx: usize = part.parse().map_err(|_| {
                    ModelError::new(
                        path,
                        format!("\"{here}\" is a list; expected an index, got \"{part}\""),
                    )
                })?;
                let len = items.len();
                let slot = items.get_mut(idx).ok_or_else(|| {
                    ModelError::new(
                        path,
                        format!("index {idx} is out of range: \"{here}\" has {len} items"),
                    )
                })?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
            other => {
                return Err(ModelError::new(
                    path,
                    format!("cannot set a field inside \"{here}\", which is {other}"),
                ));
            }
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sets_numbers_strings_and_objects() {
        let mut m =
            json!({"components": {"app": {"replicas": 1, "handler": [{"work": "service_time"}]}}});
        apply_set(&mut m, "components.app.replicas=4").unwrap();
        apply_set(&mut m, "duration=5m").unwrap();
        apply_set(&mut m, "components.app.handler.0={\"call\":\"db\"}").unwrap();
        assert_eq!(m["components"]["app"]["replicas"], json!(4));
        assert_eq!(m["duration"], json!("5m"));
        assert_eq!(m["components"]["app"]["handler"][0]["call"], json!("db"));
    }

    #[test]
    fn explains_bad_paths() {
        let mut m = json!({"a": 1});
        assert!(
            apply_set(&mut m, "a.b=2")
                .unwrap_err()
                .message
                .contains("cannot set")
        );
        assert!(
            apply_set(&mut m, "nothing")
                .unwrap_err()
                .message
                .contains("PATH=VALUE")
        );
    }
}

//! `--set PATH=VALUE`: change one field of a model before it is validated.

use crate::error::{ModelError, did_you_mean, index, join};
use serde_json::Value;

/// Applies `assignment` (`components.app.replicas=4`) to the parsed model. The value is
/// read as JSON when it parses as JSON (`4`, `true`, `{"constant": "1ms"}`), otherwise
/// as a string (`5ms`). Objects on the way are created when missing, except a component or
/// workload, whose name must exist; list items are addressed by index, as in error messages
/// (`handler[0].call`) or as a dotted part (`handler.0.call`).
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
            format!("expected PATH=VALUE with a path before \"=\", got \"{assignment}\""),
        ));
    }
    let value = serde_json::from_str(raw.trim()).unwrap_or_else(|_| Value::String(raw.to_string()));
    set_path(model, path, value)
}

/// One step of a `--set` path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// A field name, or an index when it is all digits and meets a list.
    Name(String),
    /// `[n]`: an item of a list.
    Index(usize),
}

/// Splits `a.b[0].c` (or `a.b.0.c`) into its parts.
fn parse_path(path: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    for dotted in path.split('.') {
        let (name, mut rest) = match dotted.find('[') {
            Some(i) => dotted.split_at(i),
            None => (dotted, ""),
        };
        if name.is_empty() && rest.is_empty() {
            return Err(format!("empty part in path \"{path}\""));
        }
        if !name.is_empty() {
            parts.push(Part::Name(name.to_string()));
        }
        while !rest.is_empty() {
            let close = rest
                .find(']')
                .ok_or_else(|| format!("missing \"]\" in path \"{path}\""))?;
            let n = rest[1..close].trim();
            let i = n.parse::<usize>().map_err(|_| {
                format!("expected a list index such as [0] in path \"{path}\", got \"[{n}]\"")
            })?;
            parts.push(Part::Index(i));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(format!(
                    "expected \".\" or \"[\" after \"]\" in path \"{path}\", got \"{rest}\""
                ));
            }
        }
    }
    Ok(parts)
}

/// Sets the field at `path` (`components.app.handler[0].call`) to `value`.
pub fn set_path(model: &mut Value, path: &str, value: Value) -> Result<(), ModelError> {
    let fail = |message: String| ModelError::new(path, format!("cannot apply --set: {message}"));
    let parts = parse_path(path).map_err(fail)?;
    let mut cur = model;
    let mut here = String::new();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let next_is_index = match parts.get(i + 1) {
            Some(Part::Index(_)) => true,
            Some(Part::Name(n)) => n.parse::<usize>().is_ok(),
            None => false,
        };
        let shown = if here.is_empty() { "the model" } else { &here };
        let idx = match (part, &*cur) {
            (Part::Index(n), _) => Some(*n),
            (Part::Name(n), Value::Array(_)) => Some(n.parse::<usize>().map_err(|_| {
                fail(format!(
                    "\"{here}\" is a list; expected an index such as {here}[0], got \"{n}\""
                ))
            })?),
            _ => None,
        };
        let child = match (idx, part) {
            (Some(n), _) => index(&here, n),
            (None, Part::Name(name)) => join(&here, name),
            (None, Part::Index(n)) => index(&here, *n),
        };
        cur = match (cur, idx, part) {
            (Value::Array(items), Some(n), _) => {
                let len = items.len();
                let slot = items.get_mut(n).ok_or_else(|| {
                    fail(format!(
                        "index {n} is out of range: \"{here}\" has {len} item{}",
                        if len == 1 { "" } else { "s" }
                    ))
                })?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
            (Value::Object(map), None, Part::Name(name)) => {
                if last {
                    map.insert(name.clone(), value);
                    return Ok(());
                }
                if !map.contains_key(name) {
                    let kind = match here.as_str() {
                        "components" => Some("component"),
                        "workloads" => Some("workload"),
                        _ => None,
                    };
                    if let Some(kind) = kind {
                        return Err(fail(format!(
                            "no {kind} named \"{name}\"{}",
                            did_you_mean(name, map.keys().map(String::as_str))
                        )));
                    }
                    if next_is_index {
                        return Err(fail(format!(
                            "\"{child}\" is not in the model, so it has no items to set"
                        )));
                    }
                }
                map.entry(name.clone())
                    .or_insert_with(|| Value::Object(Default::default()))
            }
            (other, Some(n), _) => {
                return Err(fail(format!(
                    "expected a list at \"{shown}\" to take item [{n}] of, got {}",
                    kind_of(other)
                )));
            }
            (other, None, _) => {
                return Err(fail(format!(
                    "expected an object at \"{shown}\" to set a field in, got {}",
                    kind_of(other)
                )));
            }
        };
        here = child;
    }
    Ok(())
}

/// A short description of a JSON value for messages: `5`, `"5ms"`, `an object`.
fn kind_of(v: &Value) -> String {
    match v {
        Value::Object(_) => "an object".to_string(),
        Value::Array(_) => "a list".to_string(),
        other => other.to_string(),
    }
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
        apply_set(&mut m, "components.app.handler[0].call=cache").unwrap();
        assert_eq!(m["components"]["app"]["handler"][0]["call"], json!("cache"));
        apply_set(&mut m, "components.app.queue.capacity=5").unwrap();
        assert_eq!(m["components"]["app"]["queue"]["capacity"], json!(5));
    }

    #[test]
    fn explains_bad_paths() {
        let mut m = json!({"a": 1, "components": {"app": {"handler": []}}});
        let msg = |m: &mut Value, s: &str| apply_set(m, s).unwrap_err().to_string();
        assert!(msg(&mut m, "a.b=2").contains("expected an object"));
        assert!(msg(&mut m, "nothing").contains("PATH=VALUE"));
        assert!(msg(&mut m, "=3").contains("PATH=VALUE"));
        assert!(
            msg(&mut m, "components.ap.workers=2")
                .contains("no component named \"ap\"; did you mean \"app\"?")
        );
        assert!(msg(&mut m, "components.app.handler[0].call=x").contains("out of range"));
        assert!(msg(&mut m, "components.app.handler.x=1").contains("is a list"));
        assert!(msg(&mut m, "components.app.queue.0=1").contains("not in the model"));
        assert!(msg(&mut m, "components.app.handler[x]=1").contains("list index"));
        assert!(msg(&mut m, "a..b=1").contains("empty part"));
    }
}

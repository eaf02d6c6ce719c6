//! Typed errors of the library.
//!
//! A [`ModelError`] names the JSON path of the field at fault, what was expected and what
//! was found. Validation collects every error it can find before giving up, so a user fixes
//! a model in one pass instead of one error at a time.

use std::fmt;

/// One problem in a model or experiment file, located by its JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    /// Dotted path of the field, e.g. `components.db.replicas`.
    pub path: String,
    /// What is wrong, lowercase, quoting the user's value.
    pub message: String,
}

impl ModelError {
    /// An error at `path` with a message.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ModelError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one model or experiment file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ModelErrors {
    /// The file the errors are in (empty when the model did not come from a file).
    pub file: String,
    /// The problems, in the order they were found.
    pub errors: Vec<ModelError>,
}

impl fmt::Display for ModelErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if self.file.is_empty() {
                write!(f, "{e}")?;
            } else {
                write!(f, "{}: {e}", self.file)?;
            }
        }
        Ok(())
    }
}

/// Collects errors while a validator walks a spec, carrying the current path.
#[derive(Debug, Default)]
pub struct Errors {
    list: Vec<ModelError>,
}

impl Errors {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }
    /// Records one error at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.list.push(ModelError::new(path, message));
    }
    /// Records every error of a result, returning its value if it had none.
    pub fn take<T>(&mut self, r: Result<T, ModelError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.list.push(e);
                None
            }
        }
    }
    /// Number of errors recorded so far.
    pub fn len(&self) -> usize {
        self.list.len()
    }
    /// True when no error was recorded.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    /// The recorded errors.
    pub fn into_vec(self) -> Vec<ModelError> {
        self.list
    }
}

/// Joins a parent path and a field name: `join("components.db", "replicas")`.
pub fn join(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_string()
    } else {
        format!("{parent}.{field}")
    }
}

/// Path of item `i` of the list at `parent`: `index("components.app.handler", 0)` is
/// `components.app.handler[0]`, the style `serde_path_to_error` uses.
pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// A number quoted in an error message: as written for ordinary magnitudes, in exponent
/// notation for tiny and huge ones (`1e-300`, not three hundred zeros).
pub fn num(x: f64) -> String {
    let a = x.abs();
    if a != 0.0 && a.is_finite() && !(1e-5..1e16).contains(&a) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// Quotes each name and joins them with commas: `"a", "b"`.
pub fn quoted<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The candidate closest to `name` by edit distance, if it is close enough to be a typo.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(name, c);
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .map(|(_, c)| c)
}

/// A "did you mean" suffix for an unknown name, or an empty string.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match nearest(name, candidates) {
        Some(c) => format!("; did you mean \"{c}\"?"),
        None => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_names_only() {
        assert_eq!(nearest("lb1", ["lb-1", "db"]), Some("lb-1"));
        assert_eq!(nearest("zzzzzz", ["lb", "db"]), None);
    }

    #[test]
    fn joins_paths() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a.b", "c"), "a.b.c");
        assert_eq!(index("a.b", 2), "a.b[2]");
        assert_eq!(quoted(["a", "b"]), "\"a\", \"b\"");
    }
}

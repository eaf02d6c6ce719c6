//! The one rule for names of components, workloads and request classes.

use crate::error::Errors;

/// Checks the name at `path` against [`check_name_rule`].
pub fn check_name(errs: &mut Errors, path: &str, name: &str) {
    if let Err(msg) = check_name_rule(name) {
        errs.push(path, msg);
    }
}

/// Longest name of a component, workload or class, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// The one rule for the names of components, workloads and request classes: a letter or
/// digit, then letters, digits, `_` or `-`; at most [`MAX_NAME_CHARS`] characters. Names
/// appear in metric keys (`workloads.users.latency.p99_ms`), instance names (`app[2]`),
/// `--set` paths (`PATH=VALUE`), metric patterns (`cost.*`) and CSV columns, so the
/// separators of these (`.`, `[`, `]`, `=`, `*`, `,`, `/`), spaces, control characters and
/// invisible characters (zero-width spaces and joiners, direction marks) are refused.
/// Letters and digits of any script are allowed.
pub fn check_name_rule(name: &str) -> Result<(), String> {
    let shown: String = name.escape_debug().collect();
    let first = name.chars().next();
    let bad = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || *c == '_' || *c == '-'));
    if first.is_none() {
        Err("a name must not be empty".to_string())
    } else if name.chars().count() > MAX_NAME_CHARS {
        Err(format!(
            "a name must be at most {MAX_NAME_CHARS} characters, got {}",
            name.chars().count()
        ))
    } else if let Some(c) = bad {
        let what = if c.is_control() {
            "a control character".to_string()
        } else if c.is_whitespace() {
            "a space".to_string()
        } else if is_invisible(c) {
            format!("an invisible character (U+{:04X})", c as u32)
        } else {
            format!("\"{c}\"")
        };
        Err(format!(
            "name \"{shown}\" contains {what}; a name is a letter or digit, then letters, digits, \"_\" or \"-\""
        ))
    } else if !first.is_some_and(char::is_alphanumeric) {
        Err(format!(
            "name \"{shown}\" must start with a letter or digit; a name is a letter or digit, then letters, digits, \"_\" or \"-\""
        ))
    } else {
        Ok(())
    }
}

/// Characters that print as nothing: zero-width spaces and joiners, direction marks, the
/// byte order mark, soft hyphens.
fn is_invisible(c: char) -> bool {
    matches!(c as u32, 0x00AD | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0xFEFF)
}

//! Where the binary's text goes: results to stdout through [`emit`], notes and progress to
//! stderr through [`note!`]. Neither panics (`print!` and `eprint!` do when the stream is
//! closed or the disk is full):
//! - stdout closed by its reader (`| head -1`, `| true`): [`emit`] returns [`StdoutClosed`]
//!   and `main` exits quietly with status 0, as ripgrep does;
//! - any other stdout failure (`> /dev/full`): an error naming "stdout", exit status 1;
//! - a stderr that cannot be written: the note is lost, nothing else happens.

use anyhow::{Context, Result};
use std::io::{ErrorKind, Write};

/// The reader of stdout went away. Not a failure: `main` exits with status 0 and prints
/// nothing, as `grep` and `ripgrep` do on a broken pipe.
#[derive(Debug, thiserror::Error)]
#[error("stdout is closed")]
pub struct StdoutClosed;

/// Writes `text` to stdout and flushes it, so that a write error shows here and not
/// silently at exit.
pub fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

/// Writes one line to stderr, ignoring failure (a closed or full stderr must not stop or
/// crash a run). Used through [`note!`].
pub fn note_line(args: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// `eprintln!` that never panics.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::output::note_line(format_args!($($arg)*))
    };
}
pub(crate) use note;

/// True when `e`, or an error it wraps, is [`StdoutClosed`].
pub fn is_stdout_closed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<StdoutClosed>())
}

/// The one-line message of an error chain, `outer: inner: ...`, leaving out a cause whose
/// text an outer message already quotes (a `thiserror` message that embeds its source
/// would otherwise print the operating system's cause twice).
pub fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if part.is_empty() || text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_quoted_by_its_wrapper_is_printed_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot write x: {0}")]
        struct Wrap(#[source] std::io::Error);
        let io = std::io::Error::from(ErrorKind::PermissionDenied);
        let shown = io.to_string();
        let e = anyhow::Error::new(Wrap(io)).context("sweep");
        assert_eq!(message(&e), format!("sweep: cannot write x: {shown}"));
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(message(&plain), "outer: inner");
    }

    #[test]
    fn stdout_closed_is_found_under_context() {
        let e = anyhow::Error::new(StdoutClosed).context("printing the table");
        assert!(is_stdout_closed(&e));
        assert!(!is_stdout_closed(&anyhow::anyhow!("other")));
    }
}

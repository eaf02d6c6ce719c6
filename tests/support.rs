//! Helpers shared by the integration test modules.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The `scalesim` binary, in an environment the caller's shell cannot leak into: no
/// backtraces in messages, and no job count, Slurm array or Kubernetes index inherited (a
/// test that needs one sets it).
pub fn scalesim() -> Command {
    let mut c = Command::cargo_bin("scalesim").unwrap();
    c.env("RUST_BACKTRACE", "0")
        .env_remove("SCALESIM_JOBS")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("SLURM_ARRAY_TASK_MIN")
        .env_remove("SLURM_ARRAY_TASK_COUNT")
        .env_remove("JOB_COMPLETION_INDEX");
    c
}

/// Runs `cmd`, which must succeed (its standard error is shown if not); returns its
/// standard output.
pub fn stdout_ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `cmd`, which must succeed and print a JSON document; returns the document.
pub fn json_ok(cmd: &mut Command) -> Value {
    serde_json::from_slice(&stdout_ok(cmd)).unwrap()
}

/// Model files (JSON or YAML) in `dir`, sorted by name.
pub fn model_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("json" | "yaml" | "yml")
            )
        })
        .collect();
    files.sort();
    files
}

/// Runs `scalesim check` on model `m` and asserts that it is refused as a user's mistake
/// should be: exit status 2, no panic, and a message naming the field's `path` and
/// containing `needle`.
pub fn check_refuses(m: &Value, path: &str, needle: &str) {
    let stderr = check_refusal(m);
    assert!(stderr.contains(path), "{path}: {stderr}");
    assert!(stderr.contains(needle), "{needle}: {stderr}");
}

/// What `scalesim check` says refusing the model `m`: exit status 2 and no panic are
/// asserted; the message is returned for the caller's own checks.
pub fn check_refusal(m: &Value) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.json");
    std::fs::write(&file, m.to_string()).unwrap();
    let out = scalesim()
        .args(["check", file.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr.into_owned()
}

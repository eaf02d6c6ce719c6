//! Golden outputs: the full JSON of every shipped model and benchmark model at seed 1,
//! compared byte for byte, so a change shows exactly which simulated numbers it moves.
//!
//! A change that moves numbers on purpose regenerates the files with
//! `SCALESIM_BLESS=1 cargo test --release -- golden` and says in its commit message
//! which numbers moved and why (`git diff tests/golden` shows them).

use crate::support::{model_files, scalesim, stdout_ok};
use std::path::{Path, PathBuf};

const BLESS_VAR: &str = "SCALESIM_BLESS";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The golden file of a model: its path under the repository with `/` as `-` and the
/// extension `.json` (`models/fan-out.json` -> `tests/golden/models-fan-out.json`).
fn golden_path(model: &Path) -> PathBuf {
    let root = manifest_dir();
    let relative = model.strip_prefix(&root).unwrap().with_extension("json");
    let name = relative.to_str().unwrap().replace('/', "-");
    root.join("tests/golden").join(name)
}

/// The first line where `a` and `b` differ, for a readable failure message.
fn first_difference(expected: &str, actual: &str) -> String {
    for (n, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return format!("line {}:\n  expected: {e}\n  actual:   {a}", n + 1);
        }
    }
    format!(
        "lengths differ: {} lines expected, {} actual",
        expected.lines().count(),
        actual.lines().count()
    )
}

#[test]
fn golden_outputs_of_every_shipped_and_benchmark_model() {
    let bless = std::env::var_os(BLESS_VAR).is_some();
    let root = manifest_dir();
    let models: Vec<PathBuf> = [root.join("models"), root.join("benches/models")]
        .iter()
        .flat_map(|d| model_files(d))
        .collect();
    let mut moved = Vec::new();
    for model in &models {
        let relative = model.strip_prefix(&root).unwrap();
        // Run from the repository root with a relative path, so that nothing in the output
        // depends on where the checkout lives.
        let actual = stdout_ok(scalesim().current_dir(&root).args([
            "run",
            relative.to_str().unwrap(),
            "--seed",
            "1",
            "--format",
            "json",
        ]));
        let actual = String::from_utf8(actual).unwrap();
        let golden = golden_path(model);
        if bless {
            std::fs::write(&golden, &actual).unwrap();
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => moved.push(format!(
                "{}: output differs from {}; {}",
                relative.display(),
                golden.display(),
                first_difference(&expected, &actual)
            )),
            Err(e) => moved.push(format!("{}: {e}", golden.display())),
        }
    }
    assert!(
        moved.is_empty(),
        "{}\n\nIf the change is meant to move these numbers, regenerate with \
         `{BLESS_VAR}=1 cargo test --release -- golden` and say in the commit message \
         which numbers moved and why.",
        moved.join("\n\n")
    );
}

#[test]
fn every_golden_file_belongs_to_a_model() {
    // A golden file left behind by a renamed or deleted model would hide nothing, but it
    // would mislead a reader of tests/golden: refuse it.
    let root = manifest_dir();
    let expected: Vec<PathBuf> = [root.join("models"), root.join("benches/models")]
        .iter()
        .flat_map(|d| model_files(d))
        .map(|m| golden_path(&m))
        .collect();
    for entry in std::fs::read_dir(root.join("tests/golden")).unwrap() {
        let path = entry.unwrap().path();
        assert!(
            expected.contains(&path),
            "{} belongs to no model in models/ or benches/models/; delete it",
            path.display()
        );
    }
}

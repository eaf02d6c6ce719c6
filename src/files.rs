//! Writing files so that a crash never leaves a half-written one: the content goes to a
//! temporary file in the same folder, which is then renamed over the target. Used by the
//! report exporters, the experiment's run records and the command line alike.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` (its folder created if missing) through a temporary file and
/// a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, |tmp| std::fs::write(tmp, bytes))
}

/// Runs `write` on a temporary path in `path`'s folder (created if missing) that keeps
/// `path`'s extension (for writers that go by it), and renames it to `path`; the
/// temporary file is removed on failure (a full disk, a folder in the way).
///
/// No fsync: rename is atomic, so a crashed or interrupted process leaves either the old
/// file or the new one, never a half-written one.
pub fn write_with(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("output");
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("tmp");
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{n}.{ext}", std::process::id()));
    let result = write(&tmp).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = std::env::temp_dir().join(format!("scalesim-files-{}", std::process::id()));
        let path = dir.join("sub/out.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        // A folder in the way: the write fails and cleans up.
        std::fs::create_dir_all(dir.join("sub/taken")).unwrap();
        assert!(write_atomic(&dir.join("sub/taken"), b"x").is_err());
        let left: Vec<_> = std::fs::read_dir(dir.join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

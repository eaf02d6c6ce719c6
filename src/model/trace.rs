//! Trace files: a CSV of (time, class, key) per request, read once when a model is loaded.

use super::names::check_name_rule;
use super::spec::{ArrivalsSpec, ModelSpec};
use crate::limits::{MAX_TRACE_FILE_BYTES, MAX_TRACE_RECORDS, open_capped};
use crate::time::{SimDuration, SimTime, parse_duration_nanos};
use crate::workload::TraceRecord;
use indexmap::IndexMap;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The trace a workload replays: the file it was read from, its contents, and where the
/// replayed records are shared.
pub struct Replay<'a> {
    /// The file.
    pub file: PathBuf,
    /// Its contents.
    pub trace: Arc<Trace>,
    /// The trace files of this source.
    pub files: &'a TraceFiles,
}

/// Reads the trace of every trace workload of `spec` (file names relative to `base`),
/// through `files`; a file that cannot be read gives the reason, for its field.
pub fn read_replays<'a>(
    spec: &ModelSpec,
    base: &Path,
    files: &'a TraceFiles,
) -> IndexMap<String, Result<Replay<'a>, String>> {
    spec.workloads
        .iter()
        .filter_map(|(name, w)| match &w.arrivals {
            ArrivalsSpec::Trace(t) => {
                let file = base.join(&t.file);
                let replay = files.get(&file).map(|trace| Replay { file, trace, files });
                Some((name.clone(), replay))
            }
            _ => None,
        })
        .collect()
}

/// A trace file's contents, or why it could not be read.
type ReadTrace = Result<Arc<Trace>, String>;
/// The records replayed from a file with a class numbering.
type ReplayedTrace = (PathBuf, Vec<u16>, Arc<Vec<TraceRecord>>);

/// The trace files of the models built from one source (a model file, or every point and
/// variant of an experiment): each file is read once, and the replayed records of each
/// (file, class numbering) are built once and shared, so a sweep of a thousand points
/// over a large trace holds it in memory once, not a thousand times.
#[derive(Debug, Default)]
pub struct TraceFiles {
    read: RefCell<Vec<(PathBuf, ReadTrace)>>,
    replayed: RefCell<Vec<ReplayedTrace>>,
}

impl TraceFiles {
    /// No file read yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The trace at `path`, read on first use.
    pub fn get(&self, path: &Path) -> Result<Arc<Trace>, String> {
        if let Some((_, t)) = self.read.borrow().iter().find(|(p, _)| p == path) {
            return t.clone();
        }
        let t = read_trace(path).map(Arc::new);
        self.read.borrow_mut().push((path.to_path_buf(), t.clone()));
        t
    }

    /// The records of `trace` (read from `path`) in time order, with the model's class id
    /// of each of the trace's class names given by `ids`; built on first use.
    pub fn replayed(&self, path: &Path, trace: &Trace, ids: Vec<u16>) -> Arc<Vec<TraceRecord>> {
        if let Some((_, _, r)) = self
            .replayed
            .borrow()
            .iter()
            .find(|(p, i, _)| p == path && *i == ids)
        {
            return Arc::clone(r);
        }
        let mut out: Vec<TraceRecord> = trace
            .records
            .iter()
            .map(|(t, c, k)| TraceRecord {
                time: *t,
                class: ids[*c as usize],
                key: *k,
            })
            .collect();
        out.sort_by_key(|rec| rec.time);
        let out = Arc::new(out);
        self.replayed
            .borrow_mut()
            .push((path.to_path_buf(), ids, Arc::clone(&out)));
        out
    }
}

/// A trace file as read: its class names in order of first appearance, and its records
/// (time, index into the names, key) in file order.
#[derive(Debug, Default)]
pub struct Trace {
    /// Class names in order of first appearance.
    pub names: Vec<String>,
    /// (time, index into `names`, key) per request, in file order.
    pub records: Vec<(SimTime, u32, u64)>,
}

impl Trace {
    /// The model's class id of each of the trace's class names.
    pub fn class_ids(&self, classes: &[String]) -> Vec<u16> {
        self.names
            .iter()
            .map(|n| classes.iter().position(|c| c == n).unwrap_or(0) as u16)
            .collect()
    }
}

/// Reads a trace CSV: header `time,class,key`. At most [`MAX_TRACE_FILE_BYTES`] and
/// [`MAX_TRACE_RECORDS`] requests.
pub fn read_trace(path: &Path) -> Result<Trace, String> {
    let file = open_capped(path, MAX_TRACE_FILE_BYTES)
        .map_err(|e| format!("cannot read trace file \"{}\": {e}", path.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(file);
    let headers = reader.headers().cloned();
    if reader.get_ref().exceeded() {
        let e = reader.get_ref().error();
        return Err(format!(
            "cannot read trace file \"{}\": {e}",
            path.display()
        ));
    }
    let headers =
        headers.map_err(|e| format!("cannot read the header of \"{}\": {e}", path.display()))?;
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(tc), Some(cc), Some(kc)) = (col("time"), col("class"), col("key")) else {
        return Err(format!(
            "trace file \"{}\" needs a header with columns time, class, key; got {}",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(",")
        ));
    };
    let mut out = Trace::default();
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut rec = csv::StringRecord::new();
    for line in 2.. {
        let more = reader.read_record(&mut rec);
        if reader.get_ref().exceeded() {
            let e = reader.get_ref().error();
            return Err(format!(
                "cannot read trace file \"{}\": {e}",
                path.display()
            ));
        }
        if !more.map_err(|e| format!("{}:{line}: {e}", path.display()))? {
            break;
        }
        if out.records.len() >= MAX_TRACE_RECORDS {
            return Err(format!(
                "{}:{line}: a trace may have at most {MAX_TRACE_RECORDS} requests",
                path.display()
            ));
        }
        let t = rec.get(tc).unwrap_or("");
        let ns = match t.parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => s * 1e9,
            Ok(s) => {
                return Err(format!(
                    "{}:{line}: time must be zero or more, got {s}",
                    path.display()
                ));
            }
            Err(_) => {
                parse_duration_nanos(t).map_err(|e| format!("{}:{line}: {e}", path.display()))?
            }
        };
        let class = rec.get(cc).unwrap_or("");
        if let Err(m) = check_name_rule(class) {
            return Err(format!("{}:{line}: class: {m}", path.display()));
        }
        let key = rec.get(kc).unwrap_or("").parse::<u64>().map_err(|_| {
            format!(
                "{}:{line}: key must be a whole number, got \"{}\"",
                path.display(),
                rec.get(kc).unwrap_or("")
            )
        })?;
        let next = out.names.len() as u32;
        let id = *ids.entry(class.to_string()).or_insert_with(|| {
            out.names.push(class.to_string());
            next
        });
        out.records
            .push((SimTime(SimDuration::from_nanos_f64(ns).0), id, key));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::model_from_value_with;
    use crate::workload::Arrivals;

    fn model_json(file: &str, rate: f64) -> serde_json::Value {
        serde_json::json!({
            "duration": "10s",
            "workloads": {"w": {"arrivals": {"trace": {"file": file}}, "target": "s"}},
            "components": {"s": {"kind": "service",
                                 "service_time": {"exponential": {"mean": format!("{rate}ms")}}}}
        })
    }

    fn records(m: &crate::model::Model) -> Arc<Vec<TraceRecord>> {
        match &m.workloads[0].arrivals {
            Arrivals::Trace(r) => Arc::clone(r),
            other => panic!("not a trace: {other:?}"),
        }
    }

    #[test]
    fn models_of_one_source_share_each_trace_file_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("t.csv"),
            "time,class,key\n0.5,b,2\n0.1,a,1\n",
        )
        .unwrap();
        let files = TraceFiles::new();
        // Two points of a sweep: same trace, different service times.
        let a = model_from_value_with(model_json("t.csv", 1.0), dir.path(), &files).unwrap();
        let b = model_from_value_with(model_json("t.csv", 2.0), dir.path(), &files).unwrap();
        assert!(Arc::ptr_eq(&records(&a), &records(&b)));
        // Sorted by time, classes numbered in order of first appearance in the file.
        let r = records(&a);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].key, r[1].key), (1, 2));
        assert_eq!(a.classes, ["b", "a"]);
        assert_eq!((r[0].class, r[1].class), (1, 0));
        // Built separately, they would hold a copy each.
        let c = model_from_value_with(model_json("t.csv", 1.0), dir.path(), &TraceFiles::new())
            .unwrap();
        assert!(!Arc::ptr_eq(&records(&a), &records(&c)));
        assert_eq!(*records(&a), *records(&c));
    }

    #[test]
    fn an_unreadable_trace_is_an_error_at_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let errs = model_from_value_with(
            model_json("missing.csv", 1.0),
            dir.path(),
            &TraceFiles::new(),
        )
        .unwrap_err();
        assert_eq!(errs[0].path, "workloads.w.arrivals.trace.file", "{errs:?}");
        assert!(
            errs[0].message.contains("cannot read trace file"),
            "{errs:?}"
        );
    }
}

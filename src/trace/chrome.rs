//! Requests' lives as Chrome Trace Event JSON, which Perfetto (ui.perfetto.dev) and
//! chrome://tracing open.
//!
//! Each workload is a process; each request is a thread (a track) named after its class
//! and its order in the trace, on which its visits nest by call: a request's span, in it
//! the first component's visit, in that its stretches (queue, service, calls, backoff),
//! and in a stretch of calls the visits it waited on with their network legs. Calls that
//! run side by side (a fan-out) or outlive the stretch that made them go to a track of
//! their own under the request's ("#12.1"), so every track nests. A failure is an
//! instant event named after its cause, at the moment of the answer.

use super::Names;
use crate::engine::watch::{Life, NONE, PhaseKind, Visit, VisitEnd};
use crate::time::SimTime;
use serde_json::{Value, json};

/// The trace of `lives` (in order of creation) of a run of model `model` with seed `seed`,
/// as a JSON document.
pub fn trace_json(lives: &[Life], names: &Names, model: &str, seed: u64) -> String {
    let mut w = Writer {
        events: Vec::new(),
        names,
        next_tid: 1,
    };
    let mut sources: Vec<u32> = lives.iter().map(|l| l.source).collect();
    sources.sort_unstable();
    sources.dedup();
    for &s in &sources {
        w.events.push(json!({
            "name": "process_name", "ph": "M", "pid": s + 1, "tid": 0,
            "args": {"name": format!("workload {}", names.workload(s))}
        }));
        w.events.push(json!({
            "name": "process_sort_index", "ph": "M", "pid": s + 1, "tid": 0,
            "args": {"sort_index": s}
        }));
    }
    for (k, life) in lives.iter().enumerate() {
        w.life(k + 1, life);
    }
    let mut out = String::from("{\"traceEvents\":[\n");
    for (i, e) in w.events.iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
        }
        out.push_str(&e.to_string());
    }
    out.push_str("\n],\n\"displayTimeUnit\":\"ms\",\n\"otherData\":");
    let other = json!({
        "model": model,
        "seed": seed,
        "requests": lives.len(),
        "times": "microseconds of simulated time",
    });
    out.push_str(&other.to_string());
    out.push_str("\n}\n");
    out
}

struct Writer<'a> {
    events: Vec<Value>,
    names: &'a Names,
    next_tid: u64,
}

/// Microseconds of simulated time.
fn us(t: SimTime) -> f64 {
    t.0 as f64 / 1000.0
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn end_name(end: VisitEnd) -> String {
    match end {
        VisitEnd::Open => "not answered".into(),
        VisitEnd::Ok => "ok".into(),
        VisitEnd::Failed(cause) => format!("failed: {}", cause.name()),
        VisitEnd::Forwarded => "handed on".into(),
    }
}

impl Writer<'_> {
    /// A new track for request number `k` of `life` (lane `lane` of it).
    fn track(&mut self, life: &Life, k: usize, lane: u32) -> u64 {
        let tid = self.next_tid;
        self.next_tid += 1;
        let pid = life.source + 1;
        let name = if lane == 0 {
            format!("{} #{k}", self.names.class(life.class))
        } else {
            format!("{} #{k}.{lane}", self.names.class(life.class))
        };
        self.events.push(json!({
            "name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": name}
        }));
        self.events.push(json!({
            "name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
            "args": {"sort_index": tid}
        }));
        tid
    }

    fn span(
        &mut self,
        name: &str,
        cat: &str,
        from: SimTime,
        to: SimTime,
        at: (u32, u64),
        args: Value,
    ) {
        self.events.push(json!({
            "name": name, "cat": cat, "ph": "X", "ts": us(from), "dur": to.since(from).0 as f64 / 1000.0,
            "pid": at.0, "tid": at.1, "args": args
        }));
    }

    fn life(&mut self, k: usize, life: &Life) {
        let pid = life.source + 1;
        let tid = self.track(life, k, 0);
        let last = life
            .visits
            .iter()
            .map(|v| v.replied)
            .max()
            .unwrap_or(life.answered)
            .max(life.answered);
        let name = format!(
            "{} {}",
            self.names.workload(life.source),
            self.names.class(life.class)
        );
        self.span(
            &name,
            "request",
            life.created,
            last,
            (pid, tid),
            json!({
                "outcome": end_name(life.outcome),
                "latency_ms": ms(life.latency_ns()),
                "visits": life.visits.len(),
            }),
        );
        if life.outcome != VisitEnd::Ok {
            self.instant(&end_name(life.outcome), life.answered, (pid, tid));
        }
        let mut lanes = 0;
        // The request's first call and the visits it was handed on to.
        let mut v = 0;
        while v != NONE && (v as usize) < life.visits.len() {
            self.visit(life, k, v, (pid, tid), &mut lanes);
            v = life.visits[v as usize].next;
        }
    }

    fn instant(&mut self, name: &str, at: SimTime, track: (u32, u64)) {
        self.events.push(json!({
            "name": name, "cat": "failure", "ph": "i", "s": "t", "ts": us(at),
            "pid": track.0, "tid": track.1
        }));
    }

    /// Visit `v` of `life` on track `track`, with its network legs, stretches and calls.
    fn visit(&mut self, life: &Life, k: usize, v: u32, track: (u32, u64), lanes: &mut u32) {
        let visit: &Visit = &life.visits[v as usize];
        if visit.arrived > visit.sent {
            self.span(
                "network",
                "network",
                visit.sent,
                visit.arrived,
                track,
                json!({}),
            );
        }
        let sum = |kind: PhaseKind| -> f64 {
            ms(visit
                .phases
                .iter()
                .filter(|p| p.kind == kind)
                .map(|p| p.to.since(p.from).0)
                .sum())
        };
        let args = json!({
            "component": self.names.group(visit.group),
            "outcome": end_name(visit.end),
            "queue_ms": sum(PhaseKind::Queue),
            "service_ms": sum(PhaseKind::Service),
            "calls_ms": sum(PhaseKind::Calls),
            "backoff_ms": sum(PhaseKind::Backoff),
            "network_ms": ms(visit.network_ns()),
        });
        let name = self.names.instance(visit.instance).to_string();
        self.span(&name, "visit", visit.arrived, visit.ended, track, args);
        for p in &visit.phases {
            self.span(p.kind.name(), "phase", p.from, p.to, track, json!({}));
        }
        if let VisitEnd::Failed(_) = visit.end {
            self.instant(&end_name(visit.end), visit.ended, track);
        }
        if visit.replied > visit.ended {
            self.span(
                "network",
                "network",
                visit.ended,
                visit.replied,
                track,
                json!({}),
            );
        }
        // Its calls, on its track when they fit in one of its stretches and after the
        // previous one put there, else on a track of their own.
        let mut free_from = SimTime(0);
        for (c, child) in life.visits.iter().enumerate() {
            if child.parent != v {
                continue;
            }
            let fits = child.sent >= free_from
                && visit.phases.iter().any(|p| {
                    p.kind == PhaseKind::Calls && p.from <= child.sent && child.replied <= p.to
                });
            let at = if fits {
                free_from = child.replied;
                track
            } else {
                *lanes += 1;
                (track.0, self.track(life, k, *lanes))
            };
            self.visit(life, k, c as u32, at, lanes);
        }
    }
}

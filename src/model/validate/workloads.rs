//! Validation of workloads: arrivals of every kind, class mixes, key popularity, client
//! timeouts and limits, and the check that a workload sends something in the measured
//! window.

use super::{DEFAULT_CLASS, MAX_RATE, MAX_USERS, MIN_EXPECTED_REQUESTS};
use crate::components::op::Op;
use crate::distributions::Distribution;
use crate::error::{Errors, did_you_mean, index, join, num};
use crate::model::resolve::{Resolver, dist};
use crate::model::spec::*;
use crate::model::trace::Replay;
use crate::time::{SimDuration, SimTime};
use crate::workload::{Arrivals, KeyLaw, RateProfile, WorkloadDef};
use indexmap::IndexMap;

/// Refuses a workload that would send no request in the measured part of the run
/// (`[warmup, duration]`): steps or a ramp whose rate is zero there, a rate so low that
/// fewer than [`MIN_EXPECTED_REQUESTS`] are expected, a trace whose rows all fall outside.
pub fn check_sends(
    errs: &mut Errors,
    path: &str,
    w: &WorkloadDef,
    warmup: SimDuration,
    duration: SimDuration,
) {
    let n = w.expected_requests(SimTime(warmup.0), SimTime(duration.0));
    if n >= MIN_EXPECTED_REQUESTS {
        return;
    }
    let text = |d: SimDuration| crate::time::format_duration_nanos(d.0 as f64);
    let window = format!(
        "between the end of the warm-up (\"{}\") and the end of the run (\"{}\")",
        text(warmup),
        text(duration)
    );
    let message = match &w.arrivals {
        Arrivals::Trace(records) => format!(
            "none of the trace's {} requests arrives {window}, so the run would measure nothing; shift the trace's times or change the duration",
            records.len()
        ),
        _ if n == 0.0 => format!(
            "sends no request {window}: the rate is zero there, so the run would measure nothing; give it a positive rate in that time"
        ),
        _ => format!(
            "would practically never send a request {window}: {} expected; raise the rate or the duration",
            num(n)
        ),
    };
    errs.push(join(path, "arrivals"), message);
}

fn positive_rate(errs: &mut Errors, path: String, rate: f64) -> Option<f64> {
    if rate.is_finite() && rate > 0.0 && rate <= MAX_RATE {
        Some(rate)
    } else {
        errs.push(
            path,
            format!(
                "rate must be a positive number of requests per second, at most {MAX_RATE:e} (one per nanosecond), got {}",
                num(rate)
            ),
        );
        None
    }
}

/// The mean gap in nanoseconds of a positive `rate` per second; a rate so low that the gap
/// overflows (a request every 10^290 years) sends nothing.
fn gap_of_rate(errs: &mut Errors, path: String, rate: f64) -> Option<f64> {
    let rate = positive_rate(errs, path.clone(), rate)?;
    let gap = 1e9 / rate;
    if gap.is_finite() {
        Some(gap)
    } else {
        errs.push(
            path,
            format!(
                "is so low that the time between two requests overflows the clock: it would never send a request, got {}",
                num(rate)
            ),
        );
        None
    }
}

fn non_negative_rate(errs: &mut Errors, path: String, rate: f64) -> Option<f64> {
    if (0.0..=MAX_RATE).contains(&rate) {
        Some(rate)
    } else {
        errs.push(
            path,
            format!(
                "rate must be zero or more requests per second, at most {MAX_RATE:e} (one per nanosecond), got {}",
                num(rate)
            ),
        );
        None
    }
}

fn share(errs: &mut Errors, path: String, v: f64) -> Option<f64> {
    if (0.0..=1.0).contains(&v) {
        Some(v)
    } else {
        errs.push(path, format!("must be between 0 and 1, got {v}"));
        None
    }
}

pub fn workload(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    name: &str,
    w: &WorkloadSpec,
    traces: &IndexMap<String, Replay>,
) -> Option<WorkloadDef> {
    let target = errs.take(r.group(&join(path, "target"), &w.target));
    let ap = join(path, "arrivals");
    let arrivals = arrivals(r, errs, &ap, name, &w.arrivals, traces);

    let mut classes = Vec::new();
    match (&w.classes, &w.arrivals) {
        (Some(_), ArrivalsSpec::Trace(_)) => {
            errs.push(
                join(path, "classes"),
                "a trace workload takes its classes from the trace file",
            );
        }
        (Some(mix), _) => {
            if mix.is_empty() {
                errs.push(join(path, "classes"), "needs at least one class");
            }
            let mut total = 0.0;
            for (class, weight) in mix {
                if !(weight.is_finite() && *weight >= 0.0) {
                    errs.push(
                        join(&join(path, "classes"), class),
                        format!("a class share must be zero or more, got {weight}"),
                    );
                }
                total += weight.max(0.0);
            }
            if total <= 0.0 && !mix.is_empty() {
                errs.push(
                    join(path, "classes"),
                    "at least one class share must be positive",
                );
            }
            let mut cum = 0.0;
            for (class, weight) in mix {
                cum += weight.max(0.0) / total;
                let id = r.classes.iter().position(|c| c == class).unwrap_or(0);
                classes.push((id as u16, cum));
            }
            if let Some(last) = classes.last_mut() {
                last.1 = 1.0;
            }
        }
        (None, ArrivalsSpec::Trace(_)) => {
            // Every class the trace names, with its share of the trace's requests.
            if let Some(Replay { trace, .. }) = traces.get(name) {
                let mut counts = vec![0usize; trace.names.len()];
                for (_, class, _) in &trace.records {
                    counts[*class as usize] += 1;
                }
                let ids = trace.class_ids(r.classes);
                let total = trace.records.len().max(1) as f64;
                let mut cum = 0.0;
                for (id, n) in ids.into_iter().zip(counts) {
                    cum += n as f64 / total;
                    classes.push((id, cum));
                }
            }
            if let Some(last) = classes.last_mut() {
                last.1 = 1.0;
            }
        }
        (None, _) => {
            let id = r
                .classes
                .iter()
                .position(|c| c == DEFAULT_CLASS)
                .unwrap_or(0);
            classes.push((id as u16, 1.0));
        }
    }

    let keys = match &w.keys {
        None => KeyLaw::None,
        Some(k) => keys(errs, &join(path, "keys"), k)?,
    };
    let timeout = w.timeout.map(|t| t.to_sim());
    if timeout == Some(SimDuration::ZERO) {
        errs.push(
            join(path, "timeout"),
            "must be longer than zero, got \"0s\"",
        );
    }
    if w.requests == Some(0) {
        errs.push(join(path, "requests"), "must be at least 1, got 0");
    }
    if w.clients == Some(0) {
        errs.push(join(path, "clients"), "must be at least 1, got 0");
    }
    let clients = match &w.arrivals {
        ArrivalsSpec::Closed(c) => c.users.max(1),
        _ => w.clients.unwrap_or(1000).max(1),
    };
    let ops = class_ops(r, errs, path, w, &classes);
    let rate_limit = w.rate_limit.as_ref().and_then(|l| {
        crate::components::service::admission::rate_limit(errs, &join(path, "rate_limit"), l)
            .map(|l| (l, r.names.len() as u32))
    });
    let retries = w
        .retries
        .as_ref()
        .and_then(|spec| crate::policy::retry::validate(errs, &join(path, "retries"), spec));
    let (non_idempotent, idempotency_key) = idempotency(errs, path, w, &classes, &ops);
    Some(WorkloadDef {
        name: name.to_string(),
        arrivals: arrivals?,
        classes,
        keys,
        target: target?,
        timeout,
        limit: w.requests,
        clients,
        ops,
        burst: match &w.arrivals {
            ArrivalsSpec::Spike(s) if s.peak > s.base && s.length.nanos() > 0.0 => {
                let start = SimTime(s.at.to_sim().0);
                Some(crate::workload::Burst {
                    start,
                    end: start.after(s.length.to_sim()),
                    peak: s.peak,
                })
            }
            _ => None,
        },
        rate_limit,
        retries,
        non_idempotent,
        idempotency_key,
    })
}

/// The classes of a workload whose requests are non-idempotent writes (its write classes,
/// when it says `"idempotent": false`), and whether they carry an idempotency key.
fn idempotency(
    errs: &mut Errors,
    path: &str,
    w: &WorkloadSpec,
    classes: &[(u16, f64)],
    ops: &[u8],
) -> (Vec<u16>, bool) {
    let key = w.idempotency_key.unwrap_or(false);
    if w.idempotent != Some(false) {
        if key {
            errs.push(
                join(path, "idempotency_key"),
                "a key is for non-idempotent writes: give \"idempotent\": false as well",
            );
        }
        return (Vec::new(), false);
    }
    let writes: Vec<u16> = classes
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| ops.get(*id as usize) == Some(&Op::Write.code()))
        .collect();
    if writes.is_empty() {
        errs.push(
            join(path, "idempotent"),
            "this workload sends no write: a class named \"write\", or one given the operation \"write\" in \"ops\", is what can be non-idempotent",
        );
    }
    (writes, key)
}

/// The operation of each class (by global class id) for a workload sending `classes`:
/// its `ops` map where given, else by the class's name (`read`, `write`).
fn class_ops(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    w: &WorkloadSpec,
    classes: &[(u16, f64)],
) -> Vec<u8> {
    let mut ops: Vec<u8> = r
        .classes
        .iter()
        .map(|c| Op::of_class_name(c).code())
        .collect();
    let Some(map) = &w.ops else {
        return ops;
    };
    let sent: Vec<&str> = classes
        .iter()
        .map(|(id, _)| r.classes[*id as usize].as_str())
        .collect();
    for (class, op) in map {
        let p = join(&join(path, "ops"), class);
        if !matches!(op, OpSpec::Read | OpSpec::Write) {
            errs.push(
                p,
                format!(
                    "a request's operation is \"read\" or \"write\", got \"{}\" (\"invalidate\" and \"set\" are for a handler's call to a cache)",
                    op.name()
                ),
            );
            continue;
        }
        match r.classes.iter().position(|c| c == class) {
            Some(id) if sent.contains(&class.as_str()) => ops[id] = op.op().code(),
            _ => errs.push(
                p,
                format!(
                    "this workload sends no class \"{class}\"{}",
                    did_you_mean(class, sent.iter().copied())
                ),
            ),
        }
    }
    ops
}

fn arrivals(
    r: &Resolver,
    errs: &mut Errors,
    ap: &str,
    name: &str,
    a: &ArrivalsSpec,
    traces: &IndexMap<String, Replay>,
) -> Option<Arrivals> {
    let profile = |points: Vec<(SimTime, f64)>, linear: bool| {
        let max_rate = points.iter().map(|p| p.1).fold(0.0, f64::max);
        Arrivals::Profile(RateProfile {
            points,
            linear,
            max_rate,
        })
    };
    match a {
        ArrivalsSpec::Poisson(p) => gap_of_rate(errs, join(ap, "poisson.rate"), p.rate)
            .map(|gap| Arrivals::Renewal(Distribution::exponential_ns(gap))),
        ArrivalsSpec::Constant(p) => gap_of_rate(errs, join(ap, "constant.rate"), p.rate)
            .map(|gap| Arrivals::Renewal(Distribution::constant_ns(gap))),
        ArrivalsSpec::Interarrival(d) => {
            let p = join(ap, "interarrival");
            let d = dist(errs, &p, d)?;
            if d.mean_ns() < 1.0 {
                errs.push(
                    p,
                    format!(
                        "the mean gap between arrivals must be at least \"1ns\" (the clock's resolution), got \"{}\"",
                        crate::time::format_duration_nanos(d.mean_ns())
                    ),
                );
                return None;
            }
            Some(Arrivals::Renewal(d))
        }
        ArrivalsSpec::Steps(steps) => {
            let sp = join(ap, "steps");
            if steps.is_empty() {
                errs.push(&sp, "needs at least one step");
                return None;
            }
            let mut points = Vec::new();
            if steps[0].at.to_sim().0 > 0 {
                points.push((SimTime::ZERO, 0.0));
            }
            for (i, s) in steps.iter().enumerate() {
                let p = index(&sp, i);
                non_negative_rate(errs, join(&p, "rate"), s.rate);
                let at = SimTime(s.at.to_sim().0);
                if points.last().is_some_and(|(t, _)| *t > at) {
                    errs.push(join(&p, "at"), "steps must be in time order");
                }
                points.push((at, s.rate));
            }
            Some(profile(points, false))
        }
        ArrivalsSpec::Ramp(rp) => {
            let p = join(ap, "ramp");
            non_negative_rate(errs, join(&p, "from"), rp.from);
            non_negative_rate(errs, join(&p, "to"), rp.to);
            if rp.end.to_sim() <= rp.start.to_sim() {
                errs.push(join(&p, "end"), "must be later than start");
                return None;
            }
            Some(profile(
                vec![
                    (SimTime(rp.start.to_sim().0), rp.from),
                    (SimTime(rp.end.to_sim().0), rp.to),
                ],
                true,
            ))
        }
        ArrivalsSpec::Spike(s) => {
            let p = join(ap, "spike");
            non_negative_rate(errs, join(&p, "base"), s.base);
            non_negative_rate(errs, join(&p, "peak"), s.peak);
            let at = SimTime(s.at.to_sim().0);
            let end = at.after(s.length.to_sim());
            let mut points = vec![(SimTime::ZERO, s.base)];
            if at.0 == 0 {
                points.clear();
            }
            points.push((at, s.peak));
            points.push((end, s.base));
            Some(profile(points, false))
        }
        ArrivalsSpec::Closed(c) => {
            let p = join(ap, "closed");
            if c.users == 0 {
                errs.push(join(&p, "users"), "must be at least 1, got 0");
            } else if c.users > MAX_USERS {
                errs.push(
                    join(&p, "users"),
                    format!("must be at most {MAX_USERS}, got {}", c.users),
                );
                return None;
            }
            let think = dist(errs, &join(&p, "think"), &c.think)?;
            Some(Arrivals::Closed {
                users: c.users,
                think,
            })
        }
        ArrivalsSpec::Trace(_) => {
            let Replay { file, trace, files } = traces.get(name)?;
            if trace.records.is_empty() {
                errs.push(join(ap, "trace.file"), "the trace has no requests");
                return None;
            }
            let ids = trace.class_ids(r.classes);
            Some(Arrivals::Trace(files.replayed(file, trace, ids)))
        }
    }
}

fn keys(errs: &mut Errors, kp: &str, k: &KeysSpec) -> Option<KeyLaw> {
    let count = |errs: &mut Errors, field: &str, n: u64| {
        if n == 0 {
            errs.push(join(kp, field), "must be at least 1, got 0");
        }
    };
    match k {
        KeysSpec::Uniform(u) => {
            count(errs, "uniform.keys", u.keys);
            Some(KeyLaw::Uniform {
                keys: u.keys.max(1),
            })
        }
        KeysSpec::Zipf(z) => {
            count(errs, "zipf.keys", z.keys);
            if !(z.s.is_finite() && z.s >= 0.0) {
                errs.push(
                    join(kp, "zipf.s"),
                    format!("must be zero or more, got {}", z.s),
                );
                return None;
            }
            let sampler = crate::workload::ZipfSampler::new(z.keys.max(1) as f64, z.s)?;
            Some(KeyLaw::Zipf {
                keys: z.keys.max(1),
                sampler,
            })
        }
        KeysSpec::HotSet(h) => {
            count(errs, "hot_set.keys", h.keys);
            let frac = h.hot_fraction;
            if !(frac > 0.0 && frac <= 1.0) {
                errs.push(
                    join(kp, "hot_set.hot_fraction"),
                    format!("must be in (0, 1], got {frac}"),
                );
                return None;
            }
            let traffic = share(errs, join(kp, "hot_set.traffic"), h.traffic)?;
            let keys = h.keys.max(1);
            let hot = ((keys as f64 * frac).round() as u64).clamp(1, keys);
            Some(KeyLaw::HotSet {
                keys,
                hot,
                share: traffic,
            })
        }
        KeysSpec::HotKey(h) => {
            count(errs, "hot_key.keys", h.keys);
            let traffic = share(errs, join(kp, "hot_key.traffic"), h.traffic)?;
            Some(KeyLaw::HotSet {
                keys: h.keys.max(1),
                hot: 1,
                share: traffic,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Format, parse_model_str};

    fn errors(workload: &str) -> Vec<(String, String)> {
        let text = format!(
            r#"{{"duration": "10s",
                "workloads": {{"w": {workload}}},
                "components": {{"app": {{"kind": "service", "service_time": {{"constant": "1ms"}}}}}}}}"#
        );
        match parse_model_str(&text, Format::Json, std::path::Path::new("."), &[]) {
            Ok(_) => Vec::new(),
            Err(errs) => errs.into_iter().map(|e| (e.path, e.message)).collect(),
        }
    }

    #[test]
    fn rates_shares_and_limits_are_checked_at_their_paths() {
        let e = errors(r#"{"arrivals": {"poisson": {"rate": -1}}, "target": "app"}"#);
        assert_eq!(e[0].0, "workloads.w.arrivals.poisson.rate", "{e:?}");
        let e = errors(
            r#"{"arrivals": {"ramp": {"from": 1, "to": 5, "start": "5s", "end": "2s"}}, "target": "app"}"#,
        );
        assert_eq!(e[0].0, "workloads.w.arrivals.ramp.end", "{e:?}");
        let e = errors(
            r#"{"arrivals": {"poisson": {"rate": 5}}, "target": "app", "classes": {"a": 0, "b": 0}}"#,
        );
        assert_eq!(e[0].0, "workloads.w.classes", "{e:?}");
        let e =
            errors(r#"{"arrivals": {"poisson": {"rate": 5}}, "target": "app", "timeout": "0s"}"#);
        assert_eq!(e[0].0, "workloads.w.timeout", "{e:?}");
        let e = errors(r#"{"arrivals": {"poisson": {"rate": 5}}, "target": "ap"}"#);
        assert_eq!(e[0].0, "workloads.w.target", "{e:?}");
        assert!(e[0].1.contains("did you mean \"app\""), "{e:?}");
    }

    #[test]
    fn a_workload_that_sends_nothing_in_the_window_is_refused() {
        let e = errors(
            r#"{"arrivals": {"steps": [{"at": "0s", "rate": 0}, {"at": "20s", "rate": 5}]}, "target": "app"}"#,
        );
        assert_eq!(e[0].0, "workloads.w.arrivals", "{e:?}");
        assert!(e[0].1.contains("sends no request"), "{e:?}");
        let ok = errors(
            r#"{"arrivals": {"hot_set": {"keys": 10, "hot_fraction": 0.1, "traffic": 0.9}}, "target": "app"}"#,
        );
        assert!(!ok.is_empty(), "hot_set is a key law, not arrivals");
        let ok = errors(
            r#"{"arrivals": {"poisson": {"rate": 5}}, "target": "app",
                "keys": {"hot_set": {"keys": 10, "hot_fraction": 0.1, "traffic": 0.9}}}"#,
        );
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn a_class_op_comes_from_its_name_or_the_workloads_map() {
        use crate::components::op::Op;
        let text = r#"{"duration": "10s",
            "workloads": {"w": {"arrivals": {"poisson": {"rate": 5}}, "target": "app",
                                "classes": {"read": 0.5, "write": 0.3, "checkout": 0.2},
                                "ops": {"checkout": "write"}},
                          "v": {"arrivals": {"poisson": {"rate": 5}}, "target": "app",
                                "classes": {"read": 0.5, "browse": 0.5}}},
            "components": {"app": {"kind": "service", "service_time": {"constant": "1ms"}}}}"#;
        let m = parse_model_str(text, Format::Json, std::path::Path::new("."), &[]).unwrap();
        let op = |w: usize, class: &str| {
            let id = m.classes.iter().position(|c| c == class).unwrap();
            Op::of(m.workloads[w].ops[id])
        };
        assert_eq!(op(0, "read"), Op::Read);
        assert_eq!(op(0, "write"), Op::Write);
        assert_eq!(op(0, "checkout"), Op::Write);
        assert_eq!(op(1, "browse"), Op::Unset);
        assert_eq!(op(1, "checkout"), Op::Unset, "the map is per workload");
    }

    #[test]
    fn an_op_map_names_a_class_the_workload_sends_and_a_request_op() {
        let e = errors(
            r#"{"arrivals": {"poisson": {"rate": 5}}, "target": "app",
                "classes": {"read": 0.5, "checkout": 0.5}, "ops": {"chekout": "write"}}"#,
        );
        assert_eq!(e[0].0, "workloads.w.ops.chekout", "{e:?}");
        assert!(e[0].1.contains("did you mean \"checkout\""), "{e:?}");
        let e = errors(
            r#"{"arrivals": {"poisson": {"rate": 5}}, "target": "app",
                "classes": {"read": 1}, "ops": {"read": "invalidate"}}"#,
        );
        assert_eq!(e[0].0, "workloads.w.ops.read", "{e:?}");
        let e = errors(
            r#"{"arrivals": {"poisson": {"rate": 5}}, "target": "app", "ops": {"default": "delete"}}"#,
        );
        assert!(!e.is_empty(), "an unknown op is refused");
    }
}

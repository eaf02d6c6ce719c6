//! Databases: where reads and writes go, replication lag and stale reads, synchronous
//! replication, quorums, read-your-writes, group commit, the lessons of the shipped
//! database models, the memory of a large catalog, and bad input.

use crate::support::scalesim;
use scalesim::model::{Format, parse_model_str};
use scalesim::replicate::replicate;
use scalesim::results::RunResult;
use serde_json::{Value, json};
use std::path::Path;

fn runs(v: &Value, replications: usize) -> Vec<RunResult> {
    let m = parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[])
        .unwrap_or_else(|e| panic!("test model invalid: {e:?}"));
    let rs = replicate(&m, 7, replications).unwrap();
    for r in &rs {
        assert!(r.conservation.holds, "{:?}", r.conservation);
    }
    rs
}

fn mean(rs: &[RunResult], f: impl Fn(&RunResult) -> f64) -> f64 {
    rs.iter().map(f).sum::<f64>() / rs.len() as f64
}

fn total(r: &RunResult, metric: &str) -> f64 {
    r.components["db"].total[metric]
}

fn at(r: &RunResult, instance: &str, metric: &str) -> f64 {
    let c = &r.components["db"];
    let i = c.instances.iter().find(|i| i.name == instance);
    i.unwrap_or_else(|| panic!("no instance {instance}"))
        .metrics[metric]
}

/// Poisson requests at `rate` per second, a share `writes` of them writes, over `keys`
/// uniform keys, straight to `db`.
fn model(db: Value, rate: f64, writes: f64, keys: u64, secs: u32) -> Value {
    json!({
        "duration": format!("{secs}s"), "warmup": "2s",
        "workloads": {"w": {"arrivals": {"poisson": {"rate": rate}},
                            "classes": {"read": 1.0 - writes, "write": writes},
                            "keys": {"uniform": {"keys": keys}}, "target": "db"}},
        "components": {"db": db}
    })
}

fn lagging(lag: Value) -> Value {
    json!({"kind": "database", "replicas": 2, "workers": 8,
           "service_time": {"constant": "100us"},
           "replication": {"async": {"lag": lag}}})
}

#[test]
fn writes_go_to_the_primary_and_reads_to_the_replicas() {
    let rs = runs(
        &model(lagging(json!({"constant": "10ms"})), 2000.0, 0.2, 100, 20),
        1,
    );
    let r = &rs[0];
    let names: Vec<&str> = r.components["db"]
        .instances
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(names, ["db.primary", "db.replica[0]", "db.replica[1]"]);
    assert_eq!(at(r, "db.primary", "reads"), 0.0);
    assert!(at(r, "db.primary", "writes") > 0.0);
    for replica in ["db.replica[0]", "db.replica[1]"] {
        assert_eq!(at(r, replica, "writes"), 0.0);
        let share = at(r, replica, "reads") / total(r, "reads");
        assert!((share - 0.5).abs() < 0.01, "{replica} takes {share}");
    }
    let w = &r.workloads["w"].classes;
    assert_eq!(total(r, "reads") as u64, w["read"].completed);
    assert_eq!(total(r, "writes") as u64, w["write"].completed);
    assert!(total(r, "keys_written") <= 100.0);
}

#[test]
fn more_replication_lag_means_more_stale_reads_and_none_from_the_primary() {
    let stale = |db: Value| {
        let rs = runs(&model(db, 2000.0, 0.1, 1000, 30), 2);
        (
            mean(&rs, |r| total(r, "stale_share")),
            mean(&rs, |r| total(r, "versions_behind_mean")),
            mean(&rs, |r| {
                r.components["db"]
                    .detail
                    .histogram("staleness")
                    .map_or(0.0, |h| h.max_ms)
            }),
        )
    };
    let (short, short_behind, short_age) = stale(lagging(json!({"constant": "5ms"})));
    let (long, long_behind, long_age) = stale(lagging(json!({"constant": "200ms"})));
    // 0.2 writes per key per second: 1 − e^{−0.2·0.005} = 0.1% against 3.9%.
    assert!(short > 0.0 && long > 10.0 * short, "{short} vs {long}");
    assert!((long - 0.0392).abs() < 0.006, "{long}");
    assert!(long_behind > short_behind);
    // A stale read missed a version acknowledged at most one lag ago.
    assert!(short_age <= 5.1 && long_age <= 201.0 && long_age > 100.0);
    let mut primary = lagging(json!({"constant": "200ms"}));
    primary["reads"] = json!("primary");
    assert_eq!(stale(primary).0, 0.0);
    let no_lag = json!({"kind": "database", "replicas": 2, "service_time": {"constant": "100us"}, "workers": 8});
    assert_eq!(
        stale(no_lag).0,
        0.0,
        "replication with no lag is never stale"
    );
}

#[test]
fn shares_of_stale_reads_are_each_copys_own_and_combine_by_reads() {
    let mut m = model(
        lagging(json!({"exponential": {"mean": "100ms"}})),
        3000.0,
        0.0,
        200,
        20,
    );
    m["workloads"]["w"]["classes"] = json!({"browse": 0.6, "search": 0.3, "write": 0.1});
    m["components"]["db"]["reads"] = json!("any");
    let r = &runs(&m, 1)[0];
    let db = &r.components["db"];
    let stale = total(r, "stale_reads");
    let reads = total(r, "reads");
    assert!(stale > 0.0);
    assert!((total(r, "stale_share") - stale / reads).abs() < 1e-12);
    // Each copy's share is of its own reads; the database's weighs them by reads.
    let mut weighted = 0.0;
    for i in &db.instances {
        let m = &i.metrics;
        let own = if m["reads"] > 0.0 {
            m["stale_reads"] / m["reads"]
        } else {
            0.0
        };
        assert!((m["stale_share"] - own).abs() < 1e-12, "{}", i.name);
        weighted += m["stale_share"] * m["reads"];
    }
    assert!((weighted / reads - total(r, "stale_share")).abs() < 1e-12);
    assert_eq!(db.instances[0].metrics["stale_reads"], 0.0, "the primary");
    // Classes in the model's order: browse, search, write (which reads nothing).
    let by_class = db.detail.distribution("stale_share_by_class");
    let reads_by_class = db.detail.distribution("reads_by_class");
    assert_eq!(by_class.len(), 3);
    assert!(by_class[0] > 0.0 && by_class[1] > 0.0 && by_class[2] == 0.0);
    assert_eq!(reads_by_class[2], 0.0);
    assert_eq!(reads_by_class.iter().sum::<f64>(), reads);
    // Stale reads, versions behind and staleness by class add up to the database's.
    let stale_by_class = db.detail.distribution("stale_reads_by_class");
    assert_eq!(stale_by_class.iter().sum::<f64>(), stale);
    let weighted = |name: &str, weights: &[f64], of: f64| {
        let values = db.detail.distribution(name);
        assert!(
            values[0] > 0.0 && values[1] > 0.0 && values[2] == 0.0,
            "{name}: {values:?}"
        );
        values.iter().zip(weights).map(|(v, w)| v * w).sum::<f64>() / of
    };
    let behind_mean = weighted("versions_behind_mean_by_class", reads_by_class, reads);
    assert!((behind_mean - total(r, "versions_behind_mean")).abs() < 1e-9);
    let age_mean = weighted("staleness_mean_ms_by_class", stale_by_class, stale);
    assert!((age_mean - total(r, "staleness_mean_ms")).abs() < 1e-9);
    let p99 = db.detail.distribution("staleness_p99_ms_by_class");
    let means = db.detail.distribution("staleness_mean_ms_by_class");
    assert!(
        p99[0] > means[0] && p99[1] > means[1] && p99[2] == 0.0,
        "{p99:?}"
    );
    let behind = db.detail.distribution("versions_behind");
    assert!(
        (behind.iter().sum::<f64>() - 1.0).abs() < 1e-9,
        "{behind:?}"
    );
    assert!((1.0 - behind[0] - stale / reads).abs() < 1e-9);
}

#[test]
fn synchronous_replication_waits_for_the_replicas_and_reads_nothing_stale() {
    let sync = |acks: Option<u32>| {
        let mut sync = json!({"lag": {"exponential": {"mean": "20ms"}}});
        if let Some(a) = acks {
            sync["acks"] = json!(a);
        }
        let mut db = lagging(json!({"constant": "0ms"}));
        db["replication"] = json!({"sync": sync});
        let rs = runs(&model(db, 1000.0, 0.2, 50, 20), 2);
        (
            mean(&rs, |r| total(r, "stale_share")),
            mean(&rs, |r| r.workloads["w"].classes["write"].latency.mean_ms),
        )
    };
    let (stale_all, write_all) = sync(None);
    let (stale_one, write_one) = sync(Some(1));
    assert_eq!(stale_all, 0.0, "a write answers once every replica has it");
    assert!(stale_one > 0.0, "the other replica may lag");
    // The slowest of two exponential lags of mean 20 ms takes 30 ms on average, the
    // fastest 10 ms; the write's own work is 0.1 ms.
    assert!((write_all - 30.1).abs() < 1.5, "{write_all}");
    assert!((write_one - 10.1).abs() < 0.7, "{write_one}");
}

fn quorum(r: u32, w: u32) -> Value {
    json!({"kind": "database", "workers": 8, "service_time": {"exponential": {"mean": "200us"}},
           "quorum": {"n": 3, "r": r, "w": w},
           "replication": {"async": {"lag": {"exponential": {"mean": "30ms"}}}}})
}

#[test]
fn a_quorum_whose_reads_and_writes_overlap_never_reads_stale() {
    let go = |r: u32, w: u32| runs(&model(quorum(r, w), 2000.0, 0.2, 20, 20), 1).remove(0);
    let strict = go(2, 2);
    let names: Vec<&str> = strict.components["db"]
        .instances
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(names, ["db[0]", "db[1]", "db[2]"]);
    assert!(total(&strict, "reads") > 10_000.0);
    assert_eq!(total(&strict, "stale_reads"), 0.0, "r + w > n");
    let asked = total(&strict, "quorum_subreads") / total(&strict, "reads");
    assert!(
        (asked - 2.0).abs() < 1e-3,
        "each read asks two copies: {asked}"
    );
    let loose = go(1, 1);
    assert!(total(&loose, "stale_share") > 0.05);
    let read_heavy = go(3, 1);
    assert_eq!(
        total(&read_heavy, "stale_reads"),
        0.0,
        "r = n sees every write"
    );
    // Waiting for more copies costs latency.
    let write_ms = |r: &RunResult| r.workloads["w"].classes["write"].latency.mean_ms;
    let read_ms = |r: &RunResult| r.workloads["w"].classes["read"].latency.mean_ms;
    assert!(write_ms(&go(1, 3)) > 2.0 * write_ms(&strict));
    assert!(write_ms(&strict) > 5.0 * write_ms(&loose));
    assert!(read_ms(&read_heavy) > read_ms(&loose));
}

#[test]
fn read_your_writes_sends_a_clients_reads_to_the_primary() {
    // Each request writes its key, waits 50 ms, and reads it back from a replica whose
    // lag is exponential with mean 100 ms: without read-your-writes the read misses the
    // write with probability e^{−0.5} = 0.61 (validation D1).
    let m = |ryw: Option<&str>| {
        let mut db = lagging(json!({"exponential": {"mean": "100ms"}}));
        if let Some(t) = ryw {
            db["read_your_writes"] = json!(t);
        }
        json!({
            "duration": "40s", "warmup": "1s",
            "workloads": {"w": {"arrivals": {"poisson": {"rate": 200}}, "classes": {"update": 1.0},
                                "keys": {"uniform": {"keys": 1_000_000_000u64}}, "target": "app",
                                "clients": 1_000_000}},
            "components": {
                "app": {"kind": "service", "workers": 1000, "handler": [
                    {"call": "db", "op": "write"}, {"work": {"constant": "50ms"}},
                    {"call": "db", "op": "read"}]},
                "db": db}
        })
    };
    let without = runs(&m(None), 1).remove(0);
    let share = total(&without, "stale_share");
    assert!((share - 0.6065).abs() < 0.03, "{share}");
    assert_eq!(total(&without, "redirected"), 0.0);
    let with = runs(&m(Some("1s")), 1).remove(0);
    assert_eq!(total(&with, "stale_reads"), 0.0);
    assert_eq!(total(&with, "redirected"), total(&with, "reads"));
    assert_eq!(at(&with, "db.primary", "reads"), total(&with, "reads"));
    let short = runs(&m(Some("10ms")), 1).remove(0);
    assert_eq!(
        total(&short, "redirected"),
        0.0,
        "the read comes after 50 ms"
    );
}

#[test]
fn group_commit_batches_writes_and_cuts_their_latency() {
    // 180 writes/s, each commit costs 5 ms plus 0.1 ms per write: alone, the log is 92%
    // busy and writes queue for it; batched, the writes that arrive during a commit share
    // the next one.
    let m = |max_batch: u32| {
        let db = json!({"kind": "database", "workers": 16, "service_time": {"constant": "100us"},
                        "group_commit": {"max_batch": max_batch, "max_wait": "0ms",
                                         "fixed_cost": "5ms", "per_item_cost": "100us"}});
        runs(&model(db, 180.0, 1.0, 1000, 60), 2)
    };
    let alone = m(1);
    let batched = m(64);
    let latency = |rs: &[RunResult]| mean(rs, |r| r.workloads["w"].latency.mean_ms);
    assert!((mean(&alone, |r| total(r, "commit_utilization")) - 0.918).abs() < 0.03);
    assert!((mean(&alone, |r| total(r, "batch_size_mean")) - 1.0).abs() < 1e-12);
    assert!(mean(&batched, |r| total(r, "batch_size_mean")) > 1.2);
    assert!(mean(&batched, |r| total(r, "commit_utilization")) < 0.75);
    assert!(latency(&batched) * 2.5 < latency(&alone));
    let writes = mean(&batched, |r| total(r, "writes"));
    let batches = mean(&batched, |r| total(r, "batches"));
    let size = mean(&batched, |r| total(r, "batch_size_mean"));
    assert!((writes / batches - size).abs() / size < 0.01);
}

#[test]
fn a_batch_waits_at_most_max_wait_for_more_writes() {
    // 10 writes/s, batches of up to 100 waiting at most 50 ms, then 1 ms to commit: the
    // first write of a batch waits the whole 50 ms, one that joins it less.
    let db = json!({"kind": "database", "service_time": {"constant": "0ms"},
                    "group_commit": {"max_batch": 100, "max_wait": "50ms", "fixed_cost": "1ms"}});
    let rs = runs(&model(db, 10.0, 1.0, 100, 200), 1);
    let l = &rs[0].workloads["w"].latency;
    assert!(l.max_ms <= 51.01, "{l:?}");
    assert!(l.mean_ms > 35.0 && l.p50_ms > 50.0, "{l:?}");
}

#[test]
fn least_connections_steers_reads_away_from_a_busy_primary() {
    // The primary also takes every write (40% of the traffic), so with reads spread over
    // every copy it is the busiest; least connections sends it fewer reads.
    let share = |balance: &str| {
        let db = json!({"kind": "database", "replicas": 2, "workers": 2, "reads": "any",
                        "balance": balance, "service_time": {"exponential": {"mean": "1ms"}}});
        let r = runs(&model(db, 2000.0, 0.4, 100, 20), 1).remove(0);
        at(&r, "db.primary", "reads") / total(&r, "reads")
    };
    assert!((share("round_robin") - 1.0 / 3.0).abs() < 0.01);
    assert!(share("least_connections") < 0.25);
    assert!(share("power_of_choices") < 0.3);
}

#[test]
fn a_balancer_over_the_copies_sends_writes_through_a_replica_to_the_primary() {
    // The balancer picks among all three copies by its own counts; a replica passes the
    // writes it gets to the primary and relays the answer, so the balancer hears back from
    // the copy it called and its counts stay right.
    let mut m = model(lagging(json!({"constant": "1ms"})), 1500.0, 0.3, 100, 20);
    m["workloads"]["w"]["target"] = json!("lb");
    m["components"]["lb"] =
        json!({"kind": "load_balancer", "policy": "least_connections", "backends": "db"});
    let r = runs(&m, 1).remove(0);
    let writes = total(&r, "writes");
    assert_eq!(at(&r, "db.primary", "writes"), writes);
    assert_eq!(writes as u64, r.workloads["w"].classes["write"].completed);
    let redirected = total(&r, "redirected");
    assert!(
        (redirected / writes - 2.0 / 3.0).abs() < 0.05,
        "{redirected} of {writes}"
    );
    assert!(
        at(&r, "db.primary", "reads") > 0.0,
        "the balancer reads from every copy"
    );
    let lb = &r.components["lb"].total;
    assert!(lb["hot_spot_index"] < 1.1, "{lb:?}");
}

#[test]
fn any_balancer_policy_spreads_the_reads_over_the_copies() {
    // Weighted round robin, 1:2:2 over primary and two replicas: a fifth of the reads at
    // the primary. Hashing by client: the 50 users spread over the three copies.
    let mut m = model(lagging(json!({"constant": "1ms"})), 1000.0, 0.1, 100, 10);
    m["workloads"]["w"]["target"] = json!("lb");
    m["components"]["lb"] = json!({"kind": "load_balancer", "policy": "weighted_round_robin",
                                   "backends": "db", "weights": [1, 2, 2]});
    let r = runs(&m, 1).remove(0);
    let primary = at(&r, "db.primary", "reads") / total(&r, "reads");
    assert!((primary - 0.2).abs() < 0.02, "primary reads {primary}");
    assert_eq!(at(&r, "db.primary", "writes"), total(&r, "writes"));
    m["components"]["lb"] =
        json!({"kind": "load_balancer", "policy": "hash_client", "backends": "db"});
    m["workloads"]["w"]["arrivals"] =
        json!({"closed": {"users": 50, "think": {"exponential": {"mean": "50ms"}}}});
    let r = runs(&m, 1).remove(0);
    assert_eq!(r.workloads["w"].failed, 0);
    assert!(total(&r, "reads") > 5000.0);
    assert_eq!(at(&r, "db.primary", "writes"), total(&r, "writes"));
    for copy in ["db.primary", "db.replica[0]", "db.replica[1]"] {
        assert!(at(&r, copy, "reads") > 0.0, "{copy} serves no user");
    }
}

#[test]
fn a_ten_million_key_catalog_costs_memory_only_for_the_keys_written() {
    // 100 million keys, Zipf: per-key state for every key would take gigabytes; only the
    // keys written hold any, so the run fits in a small address space.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    let mut m = model(lagging(json!({"constant": "1ms"})), 20_000.0, 0.5, 1, 20);
    m["workloads"]["w"]["keys"] = json!({"zipf": {"keys": 100_000_000u64, "s": 0.9}});
    std::fs::write(&path, m.to_string()).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg("ulimit -v 600000; exec \"$0\" run \"$1\" --format json")
        .arg(env!("CARGO_BIN_EXE_scalesim"))
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let db = &doc["runs"][0]["components"]["db"]["total"];
    let (keys, writes) = (
        db["keys_written"].as_f64().unwrap(),
        db["writes"].as_f64().unwrap(),
    );
    assert!(
        keys > 1000.0 && keys < 250_000.0,
        "{keys} keys for {writes} writes"
    );
}

/// Runs `scalesim check` on `model` and expects the bad-input contract with `needles`.
fn refused(db: Value, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    std::fs::write(&path, model(db, 10.0, 0.5, 10, 5).to_string()).unwrap();
    let out = scalesim().arg("check").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "expected {n:?} in:\n{stderr}");
    }
}

fn db(extra: Value) -> Value {
    let mut d = json!({"kind": "database", "service_time": {"constant": "1ms"}});
    for (k, v) in extra.as_object().unwrap() {
        d[k] = v.clone();
    }
    d
}

#[test]
fn bad_database_fields_are_named_by_their_path() {
    refused(
        db(json!({"quorum": {"n": 3, "r": 4, "w": 2}})),
        &[
            "components.db.quorum.r: must be between 1 and N = 3",
            "got 4",
        ],
    );
    refused(
        db(json!({"replicas": 2, "quorum": {"r": 1, "w": 5}})),
        &[
            "components.db.quorum.w: must be between 1 and N = 3",
            "got 5",
        ],
    );
    refused(
        db(json!({"replicas": 4, "quorum": {"n": 3, "r": 1, "w": 1}})),
        &["components.db.replicas", "5 copies, but quorum.n is 3"],
    );
    refused(
        db(json!({"replicas": -1})),
        &["components.db.replicas", "-1"],
    );
    refused(
        db(json!({"replicas": 5000})),
        &["components.db.replicas: a database has at most 1000 replicas, got 5000"],
    );
    refused(
        db(json!({"replicas": 2, "balance": "fastest"})),
        &["components.db.balance", "fastest", "least_connections"],
    );
    refused(
        db(json!({"replicas": 2, "reads": "followers"})),
        &["components.db.reads", "followers", "replicas"],
    );
    refused(
        db(json!({"replicas": 1, "replication": {"async": {"lag": {"constant": "-5ms"}}}})),
        &["components.db.replication", "must not be negative", "-5ms"],
    );
    refused(
        db(
            json!({"replicas": 1, "replication": {"sync": {"lag": {"constant": "1ms"}, "acks": 2}}}),
        ),
        &[
            "components.db.replication.sync.acks: must be between 1 and the number of replicas (1), got 2",
        ],
    );
    refused(
        db(json!({"reads": "replicas"})),
        &["components.db.reads: reads go to the replicas, but the database has none"],
    );
    refused(
        db(json!({"reads": "quorum"})),
        &["components.db.quorum: missing"],
    );
    refused(
        db(json!({"replicas": 1, "reads": "primary", "read_your_writes": "1s"})),
        &["components.db.read_your_writes: has no effect"],
    );
    refused(
        db(json!({"balance": "random"})),
        &["components.db.balance: applies only when reads have a choice"],
    );
    refused(
        db(json!({"group_commit": {"max_batch": 0}})),
        &["components.db.group_commit.max_batch: must be between 1"],
    );
    refused(
        json!({"kind": "database", "read_time": {"constant": "1ms"}}),
        &["components.db.service_time: missing", "write"],
    );
    refused(
        db(json!({"replicas": 2, "quorum": {"r": 2, "w": 2},
                  "replication": {"sync": {"lag": {"constant": "1ms"}}}})),
        &["components.db.replication.sync", "quorum.w"],
    );
}

/// The shipped model `name` with `sets` (`path=value`), run `replications` times.
fn shipped(name: &str, sets: &[&str], replications: usize) -> Vec<RunResult> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name);
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let m = scalesim::model::load_model_file(&path, &sets).unwrap();
    replicate(&m, 11, replications).unwrap()
}

#[test]
fn read_replicas_model_cuts_latency_and_costs_stale_reads() {
    let lat = |rs: &[RunResult]| mean(rs, |r| r.workloads["users"].latency.mean_ms);
    let p99 = |rs: &[RunResult]| mean(rs, |r| r.workloads["users"].latency.p99_ms);
    let stale = |rs: &[RunResult]| mean(rs, |r| total(r, "stale_share"));
    let replicas = shipped("read-replicas.json", &[], 2);
    let primary_only = shipped("read-replicas.json", &["components.db.replicas=0"], 2);
    assert!(lat(&replicas) * 1.5 < lat(&primary_only));
    assert!(p99(&replicas) * 1.3 < p99(&primary_only));
    assert!(stale(&replicas) > 0.05);
    assert_eq!(stale(&primary_only), 0.0);
    let short_lag = shipped(
        "read-replicas.json",
        &["components.db.replication.async.lag.exponential.mean=\"10ms\""],
        2,
    );
    assert!(stale(&short_lag) * 3.0 < stale(&replicas));
}

#[test]
fn quorum_model_trades_staleness_against_latency() {
    let go = |r: u32, w: u32| {
        let sets = [
            format!("components.db.quorum.r={r}"),
            format!("components.db.quorum.w={w}"),
        ];
        shipped("quorum.json", &[sets[0].as_str(), sets[1].as_str()], 1).remove(0)
    };
    let class = |r: &RunResult, c: &str| r.workloads["clients"].classes[c].latency.mean_ms;
    let (fast, strict, slow_writes, slow_reads) = (go(1, 1), go(2, 2), go(1, 3), go(3, 1));
    assert!(total(&fast, "stale_share") > 0.03);
    for fresh in [&strict, &slow_writes, &slow_reads] {
        assert_eq!(total(fresh, "stale_reads"), 0.0, "r + w > n");
    }
    assert!(class(&strict, "write") > 3.0 * class(&fast, "write"));
    assert!(class(&slow_writes, "write") > 2.0 * class(&strict, "write"));
    assert!(class(&slow_reads, "read") > 1.5 * class(&fast, "read"));
}

/// The analytic estimates of `v`, and the warnings of a run of it.
fn estimated(v: &Value) -> (Vec<scalesim::analysis::MetricEstimate>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    std::fs::write(&path, v.to_string()).unwrap();
    let out = crate::support::json_ok(scalesim().arg("run").arg(&path).args(["--format", "json"]));
    let metrics = out["estimates"]["metrics"]
        .as_array()
        .map(|all| serde_json::from_value(all[0][1].clone()).unwrap())
        .unwrap_or_default();
    let warnings = serde_json::from_value(out["warnings"].clone()).unwrap();
    (metrics, warnings)
}

#[test]
fn the_stale_share_estimate_follows_the_key_law_and_the_lag() {
    // Zipf keys, a lognormal lag (no closed form: a sample of it), reads over every copy.
    let mut db = lagging(json!({"lognormal": {"mean": "80ms", "cv": 1.5}}));
    db["reads"] = json!("any");
    let mut m = model(db, 4000.0, 0.1, 0, 60);
    m["workloads"]["w"]["keys"] = json!({"zipf": {"keys": 100_000, "s": 1.1}});
    let rs = runs(&m, 2);
    let (est, warnings) = estimated(&m);
    assert_eq!(est.len(), 1);
    assert_eq!(est[0].metric, "stale_share");
    let simulated = mean(&rs, |r| total(r, "stale_share"));
    assert!(simulated > 0.02, "{simulated}");
    assert!(
        (est[0].value - simulated).abs() < 0.05 * simulated,
        "estimated {} simulated {simulated}",
        est[0].value
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    // Synchronous to every replica, and an overlapping quorum: exactly none.
    let mut sync = lagging(json!({"constant": "0ms"}));
    sync["replication"] = json!({"sync": {"lag": {"constant": "5ms"}}});
    assert_eq!(estimated(&model(sync, 100.0, 0.5, 10, 5)).0[0].value, 0.0);
    assert_eq!(
        estimated(&model(quorum(2, 2), 100.0, 0.5, 10, 5)).0[0].value,
        0.0
    );
}

#[test]
fn a_simulated_stale_share_far_from_its_estimate_is_pointed_out() {
    // Every read follows its client's own write within read-your-writes time, so it goes
    // to the primary: none is stale, though the lag alone would make many.
    let mut db = lagging(json!({"constant": "100ms"}));
    db["read_your_writes"] = json!("10s");
    let mut m = model(db, 400.0, 0.5, 5, 20);
    m["workloads"]["w"]["clients"] = json!(1);
    let (est, warnings) = estimated(&m);
    assert!(est[0].value > 0.3, "{est:?}");
    let w = warnings
        .iter()
        .find(|w| w.contains("components.db.stale_share"));
    let w = w.unwrap_or_else(|| panic!("{warnings:?}"));
    assert!(w.contains("read-your-writes"), "{w}");
}

mod property {
    //! Issue 10, point 10, for databases: random valid database models (every read route,
    //! balance, replication, quorum sizes, read-your-writes, group commit, bounded queues,
    //! key laws; called directly, through a service, behind a load balancer over its
    //! copies, or as the shards of a router) validate, estimate, run without a panic, keep
    //! conservation and repeat byte for byte from one seed.

    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
    use scalesim::model::{Format, parse_model_str};
    use serde_json::{Map, Value, json};

    /// Generated models per suite run.
    const CASES: u32 = 120;

    fn duration(max_us: u32) -> impl Strategy<Value = Value> {
        (0u32..max_us).prop_map(|us| json!(format!("{us}us")))
    }

    fn lag() -> impl Strategy<Value = Value> {
        prop_oneof![
            duration(200_000).prop_map(|d| json!({"constant": d})),
            (1u32..200_000).prop_map(|us| json!({"exponential": {"mean": format!("{us}us")}})),
            (1u32..200_000, 0.1f64..3.0)
                .prop_map(|(us, cv)| json!({"lognormal": {"mean": format!("{us}us"), "cv": cv}})),
        ]
    }

    /// A database with `replicas` replicas (or a quorum of `replicas + 1` copies).
    fn database() -> impl Strategy<Value = Value> {
        (
            (
                0u32..5,
                1u32..8,
                prop::option::of(0u32..30),
                10u32..3000,
                10u32..3000,
            ),
            (0u8..4, 0u8..5, lag(), 0u8..3, 1u32..6, 1u32..6),
            (
                prop::option::of(duration(500_000)),
                prop::option::of((1u32..64, duration(5000), duration(3000), duration(300))),
            ),
        )
            .prop_map(|(station, routing, extras)| {
                let (replicas, workers, queue, read_us, write_us) = station;
                let (reads, balance, lag, replication, r, w) = routing;
                let (ryw, group_commit) = extras;
                let copies = replicas + 1;
                let mut db = json!({
                    "kind": "database", "replicas": replicas, "workers": workers,
                    "read_time": {"exponential": {"mean": format!("{read_us}us")}},
                    "write_time": {"exponential": {"mean": format!("{write_us}us")}},
                });
                if let Some(q) = queue {
                    db["queue"] = json!(q);
                }
                let quorum = reads == 3;
                let choice = match reads {
                    0 => "primary",
                    1 if replicas > 0 => "replicas",
                    3 => "quorum",
                    _ => "any",
                };
                db["reads"] = json!(choice);
                if quorum {
                    db["quorum"] = json!({"r": r.min(copies), "w": w.min(copies)});
                }
                if choice != "primary" {
                    let policies = [
                        "round_robin",
                        "random",
                        "least_connections",
                        "power_of_choices",
                        "hash_key",
                    ];
                    db["balance"] = json!(policies[balance as usize]);
                }
                db["replication"] = match replication {
                    1 if !quorum && replicas > 0 => {
                        json!({"sync": {"lag": lag, "acks": r.min(replicas)}})
                    }
                    2 if !quorum => json!({"sync": {"lag": lag}}),
                    _ => json!({"async": {"lag": lag}}),
                };
                if let Some(t) = ryw
                    && !quorum
                    && choice != "primary"
                {
                    db["read_your_writes"] = t;
                }
                if let Some((b, wait, fixed, item)) = group_commit {
                    db["group_commit"] = json!({"max_batch": b, "max_wait": wait,
                                                "fixed_cost": fixed, "per_item_cost": item});
                }
                db
            })
    }

    fn key_law() -> impl Strategy<Value = Value> {
        prop_oneof![
            (1u64..20_000_000).prop_map(|keys| json!({"uniform": {"keys": keys}})),
            (1u64..20_000_000, 0.3f64..1.6)
                .prop_map(|(keys, s)| json!({"zipf": {"keys": keys, "s": s}})),
            (2u64..1_000_000, 0.001f64..0.5, 0.0f64..1.0).prop_map(|(keys, hot, traffic)| {
                json!({"hot_set": {"keys": keys, "hot_fraction": hot, "traffic": traffic}})
            }),
        ]
    }

    /// A whole model: a workload reaching one or more databases in one of four ways.
    fn model() -> impl Strategy<Value = Value> {
        (
            prop::collection::vec(database(), 1..4),
            0u8..4,
            key_law(),
            (
                50.0f64..3000.0,
                0.0f64..1.0,
                prop::option::of(1u32..50),
                1u32..50,
            ),
        )
            .prop_map(|(dbs, shape, keys, (rate, writes, timeout_ms, clients))| {
                let mut components = Map::new();
                let target = match shape {
                    // A service writing then reading (read-your-writes matters).
                    1 => {
                        components.insert(
                            "app".into(),
                            json!({"kind": "service", "workers": 64, "handler": [
                                {"call": "db0", "op": "write"},
                                {"work": {"exponential": {"mean": "1ms"}}},
                                {"call": "db0", "op": "read"}]}),
                        );
                        "app"
                    }
                    // A balancer over the copies: writes reach replicas and move on.
                    2 => {
                        components.insert(
                            "lb".into(),
                            json!({"kind": "load_balancer", "policy": "least_connections",
                                   "backends": "db0"}),
                        );
                        "lb"
                    }
                    // A shard router over every database.
                    3 => {
                        let shards: Vec<String> =
                            (0..dbs.len()).map(|i| format!("db{i}")).collect();
                        components
                            .insert("front".into(), json!({"kind": "shards", "shards": shards}));
                        "front"
                    }
                    _ => "db0",
                };
                for (i, db) in dbs.into_iter().enumerate() {
                    components.insert(format!("db{i}"), db);
                }
                let mut w = json!({
                    "arrivals": {"poisson": {"rate": rate}},
                    "classes": {"read": 1.0 - writes, "write": writes.max(0.001)},
                    "keys": keys, "target": target, "clients": clients,
                });
                if let Some(t) = timeout_ms {
                    w["timeout"] = json!(format!("{t}ms"));
                }
                json!({
                    "name": "random database", "duration": "300ms", "warmup": "50ms",
                    "workloads": {"w": w}, "components": components,
                })
            })
    }

    fn check(doc: &Value) -> Result<(), TestCaseError> {
        let text = serde_json::to_string_pretty(doc).unwrap();
        let model = parse_model_str(&text, Format::Json, std::path::Path::new("."), &[])
            .map_err(|e| TestCaseError::fail(format!("refused: {e:?}\n{text}")))?;
        scalesim::analysis::estimate(&model);
        let run = || {
            scalesim::results::run_once(&model, 3)
                .map_err(|e| TestCaseError::fail(format!("run failed: {e}\n{text}")))
        };
        let first = run()?;
        prop_assert!(first.conservation.holds, "conservation broken:\n{}", text);
        let again = run()?;
        prop_assert_eq!(
            serde_json::to_string(&first).unwrap(),
            serde_json::to_string(&again).unwrap(),
            "two runs from one seed differ:\n{}",
            text
        );
        Ok(())
    }

    #[test]
    fn random_valid_database_models_run_and_keep_conservation() {
        let config = Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[11; 32]));
        runner
            .run(&model(), |doc| check(&doc))
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn a_divergence_during_a_fault_names_the_fault_the_estimate_leaves_out() {
    // The available database of cap-partition reads stale during its partition, where the
    // estimate (r + w > n) says never: the warning says the run had the partition.
    let file =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/cap-partition.json");
    let out = scalesim()
        .args(["run", file.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fault = json["runs"][0]["faults"][0]["name"].as_str().unwrap();
    let warnings: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let stale = warnings
        .iter()
        .find(|w| w.contains("db_ap.stale_share"))
        .unwrap_or_else(|| panic!("no stale-share warning in {warnings:?}"));
    assert!(
        stale.contains(&format!("({fault}), which the estimate leaves out")),
        "{stale}"
    );
}

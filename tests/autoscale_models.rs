//! The lessons of the autoscaling models in models/ (issue 13 point 5):
//! autoscale-spike.json (short against long cooldowns) and queue-depth-scaling.json
//! (target tracking against steps on a backlog), on seed 1.

use scalesim::model::{Format, parse_model_str};
use scalesim::replicate::replicate;
use scalesim::results::{AutoscalingResult, RunResult};
use serde_json::Value;
use std::path::Path;

fn run(v: &Value) -> RunResult {
    let m = parse_model_str(&v.to_string(), Format::Json, Path::new("."), &[]).unwrap();
    let r = replicate(&m, 1, 1).unwrap().remove(0);
    assert!(r.conservation.holds, "{:?}", r.conservation);
    r
}

fn shipped(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn lesson_autoscale_spike_a_long_cooldown_is_cheaper_and_drops_more() {
    let r = run(&shipped("autoscale-spike.json"));
    let fast = &r.autoscaling["fast_scaler"];
    let slow = &r.autoscaling["slow_scaler"];
    // Both see the spike (at 300 s) at their first evaluation after it.
    assert_eq!(fast.actions[0].at_s, 360.0, "{:?}", fast.actions);
    assert_eq!(slow.actions[0].at_s, 360.0, "{:?}", slow.actions);
    // The fast one steps again within the spike; the slow one waits out its cooldown.
    let outs = |a: &AutoscalingResult| a.actions.iter().filter(|x| x.to > x.from).count();
    assert!(outs(fast) >= 3, "{:?}", fast.actions);
    assert!(
        slow.actions
            .iter()
            .all(|x| x.at_s == 360.0 || x.at_s >= 960.0),
        "{:?}",
        slow.actions
    );
    let share = |w: &str| r.workloads[w].error_share;
    assert!(
        share("slow") > share("fast") + 0.03,
        "{} {}",
        share("slow"),
        share("fast")
    );
    assert!(slow.instance_hours < fast.instance_hours);
}

#[test]
fn lesson_queue_depth_scaling_target_tracking_on_a_backlog_swings() {
    let r = run(&shipped("queue-depth-scaling.json"));
    let tt = &r.autoscaling["scaler_tt"];
    let steps = &r.autoscaling["scaler_steps"];
    // Target tracking falls to min while the load is still high (5 to 15 min), then comes
    // back: a relapse.
    let relapse = tt
        .actions
        .windows(2)
        .any(|w| w[0].to == 2 && w[0].at_s < 900.0 && w[1].to > w[1].from);
    assert!(relapse, "{:?}", tt.actions);
    // The steps never fall below 8 during the peak once they got there, and cost less.
    let peak_low = steps
        .actions
        .iter()
        .filter(|x| x.at_s > 600.0 && x.at_s < 900.0)
        .map(|x| x.to)
        .min()
        .unwrap();
    assert!(peak_low >= 8, "{:?}", steps.actions);
    assert!(steps.instance_hours < tt.instance_hours);
    let p50 = |q: &str| r.components[q].detail.histogram("delay").unwrap().p50_ms;
    assert!(
        p50("jobs_steps") < p50("jobs_tt") / 4.0,
        "{} {}",
        p50("jobs_steps"),
        p50("jobs_tt")
    );
}

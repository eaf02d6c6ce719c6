//! A load balancer's view of its backends' health: active health checks (probes every
//! interval, unhealthy and healthy thresholds) and passive outlier ejection (consecutive
//! failed replies), which backends they leave out of its picks, and how fast it found out
//! that a backend crashed.
//!
//! A probe is not a call: at each tick the balancer instance asks the engine whether the
//! backend is crashed now ([`Ctx::crash_state`]), or cut off from the balancer's zone by a
//! partition ([`Ctx::cut_between`]). An instance that is up and reachable passes; a refused
//! crash or cut fails the probe at once (a closed port); a black hole fails it `timeout`
//! later (no answer). So a probe sees only crashes and partitions: a slow or erroring
//! backend passes its health checks (outlier ejection is what catches it), a probe adds no
//! load and crosses no network latency.

use crate::engine::{CrashMode, CrashState, Ctx, InstanceId};
use crate::metrics::InstanceReport;
use crate::time::{SimDuration, SimTime};

/// Active health checks, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthCheck {
    /// Time between two probes of each backend.
    pub interval: SimDuration,
    /// A probe with no answer fails after this.
    pub timeout: SimDuration,
    /// Consecutive failed probes that take a backend out.
    pub unhealthy_threshold: u32,
    /// Consecutive passed probes that put it back.
    pub healthy_threshold: u32,
}

/// Passive outlier ejection, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutlierEjection {
    /// Consecutive failed replies that eject a backend.
    pub consecutive_failures: u32,
    /// How long an ejected backend stays out.
    pub ejection_time: SimDuration,
    /// Most backends ejected at once (from `max_ejected_share` and the backend count).
    pub max_ejected: u32,
}

/// Timer tags of a balancer instance.
pub const TICK: u32 = 0;
/// A probe sent to a black hole at `data`'s slot has timed out.
pub const PROBE_TIMEOUT: u32 = 1;
/// The ejection of `data`'s slot ends.
pub const EJECTION_END: u32 = 2;

/// What the balancer knows of one backend instance.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    probe_failures: u32,
    probe_passes: u32,
    /// Taken out by the health checks.
    unhealthy: bool,
    reply_failures: u32,
    /// Taken out by outlier ejection.
    ejected: bool,
    /// Start of the backend's crash already counted as detected.
    detected: Option<SimTime>,
}

/// Counts of the measurement window.
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    marked_unhealthy: u64,
    marked_healthy: u64,
    ejections: u64,
    detections: u64,
    detect_sum_ns: f64,
    detect_max_ns: u64,
    sent_to_crashed: u64,
}

/// A balancer instance's health state of its backends (only with `health_check` or
/// `outlier_ejection`).
#[derive(Debug, Clone)]
pub struct Watch {
    health: Option<HealthCheck>,
    outlier: Option<OutlierEjection>,
    slots: Vec<Slot>,
    ejected: u32,
    stats: Stats,
}

impl Watch {
    /// Watches `backends` backend instances.
    pub fn new(
        health: Option<HealthCheck>,
        outlier: Option<OutlierEjection>,
        backends: usize,
    ) -> Self {
        Watch {
            health,
            outlier,
            slots: vec![Slot::default(); backends],
            ejected: 0,
            stats: Stats::default(),
        }
    }

    /// The balancer instance `me` (re)starts: every backend is healthy, the first probes
    /// go out one interval from now.
    pub fn start(&mut self, me: InstanceId, ctx: &mut Ctx) {
        self.slots.iter_mut().for_each(|s| *s = Slot::default());
        self.ejected = 0;
        if let Some(h) = self.health {
            ctx.timer(me, h.interval, TICK, 0);
        }
    }

    /// True when the backend in `slot` is left out of picks.
    #[inline]
    pub fn excluded(&self, slot: u32) -> bool {
        let s = &self.slots[slot as usize];
        s.unhealthy || s.ejected
    }

    /// A call goes to `backend`: counted when it is crashed.
    #[inline]
    pub fn sent(&mut self, backend: InstanceId, ctx: &Ctx) {
        if ctx.crash_state(backend).is_some() {
            self.stats.sent_to_crashed += 1;
        }
    }

    /// A timer of instance `me` fires. True when the set of backends left out changed.
    pub fn on_timer(
        &mut self,
        tag: u32,
        slot: u32,
        me: InstanceId,
        backends: &[InstanceId],
        ctx: &mut Ctx,
    ) -> bool {
        match tag {
            TICK => {
                let Some(h) = self.health else {
                    return false;
                };
                let mut changed = false;
                let now = ctx.now();
                let (cut, zone) = (ctx.is_partitioned(), ctx.zone_of(me));
                for (s, b) in backends.iter().enumerate() {
                    let crash = ctx.crash_state(*b);
                    // A probe fails as the crash answers, or as a partition between the
                    // balancer's zone and the backend's does.
                    let fails = match crash {
                        Some(c) => Some(c.mode),
                        None if cut => ctx.cut_between(zone, ctx.zone_of(*b)),
                        None => None,
                    };
                    changed |= match fails {
                        None => self.probe_passed(s),
                        Some(CrashMode::Refused) => self.probe_failed(s, crash, now),
                        Some(CrashMode::BlackHole) => {
                            ctx.timer(me, h.timeout, PROBE_TIMEOUT, s as u32);
                            false
                        }
                    };
                }
                // After the probes' timeouts (at most one interval), so a timeout at the
                // next tick's time counts before the next probe.
                ctx.timer(me, h.interval, TICK, 0);
                changed
            }
            PROBE_TIMEOUT => {
                let s = slot as usize;
                self.probe_failed(s, ctx.crash_state(backends[s]), ctx.now())
            }
            EJECTION_END => self.ejection_ends(slot as usize),
            _ => false,
        }
    }

    /// The ejection of slot `s` ends. True when that puts it back.
    fn ejection_ends(&mut self, s: usize) -> bool {
        let slot = &mut self.slots[s];
        if !slot.ejected {
            return false;
        }
        slot.ejected = false;
        slot.reply_failures = 0;
        self.ejected -= 1;
        !slot.unhealthy
    }

    fn probe_passed(&mut self, s: usize) -> bool {
        let threshold = self.health.map_or(1, |h| h.healthy_threshold);
        let slot = &mut self.slots[s];
        slot.probe_failures = 0;
        slot.probe_passes = slot.probe_passes.saturating_add(1);
        if slot.unhealthy && slot.probe_passes >= threshold {
            slot.unhealthy = false;
            self.stats.marked_healthy += 1;
            return !slot.ejected;
        }
        false
    }

    /// A probe of slot `s`, whose backend is in `crash` now, failed. True when that takes
    /// it out.
    fn probe_failed(&mut self, s: usize, crash: Option<CrashState>, now: SimTime) -> bool {
        let threshold = self.health.map_or(1, |h| h.unhealthy_threshold);
        let slot = &mut self.slots[s];
        slot.probe_passes = 0;
        slot.probe_failures = slot.probe_failures.saturating_add(1);
        if !slot.unhealthy && slot.probe_failures >= threshold {
            slot.unhealthy = true;
            self.stats.marked_unhealthy += 1;
            let was_in = !slot.ejected;
            self.taken_out(s, crash, now);
            return was_in;
        }
        false
    }

    /// A reply from the backend in `slot` came back, `failed` or not. True when the
    /// backend was ejected now (the instance `me` is woken at the end of the ejection).
    #[inline]
    pub fn replied(
        &mut self,
        slot: u32,
        failed: bool,
        me: InstanceId,
        backend: InstanceId,
        ctx: &mut Ctx,
    ) -> bool {
        let Some(o) = self.outlier else {
            return false;
        };
        if !failed {
            self.slots[slot as usize].reply_failures = 0;
            return false;
        }
        let (ejected, was_in) =
            self.reply_failed(slot as usize, ctx.crash_state(backend), ctx.now());
        if ejected {
            ctx.timer(me, o.ejection_time, EJECTION_END, slot);
        }
        was_in
    }

    /// A reply from slot `s`, whose backend is in `crash` now, failed: (ejected now, and
    /// that takes it out).
    fn reply_failed(&mut self, s: usize, crash: Option<CrashState>, now: SimTime) -> (bool, bool) {
        let Some(o) = self.outlier else {
            return (false, false);
        };
        let slot = &mut self.slots[s];
        slot.reply_failures = slot.reply_failures.saturating_add(1);
        if slot.ejected
            || slot.reply_failures < o.consecutive_failures
            || self.ejected >= o.max_ejected
        {
            return (false, false);
        }
        slot.ejected = true;
        let was_in = !slot.unhealthy;
        self.ejected += 1;
        self.stats.ejections += 1;
        self.taken_out(s, crash, now);
        (true, was_in)
    }

    /// The backend in slot `s` was just taken out: if it is crashed and this crash was not
    /// found before, it is found now.
    fn taken_out(&mut self, s: usize, crash: Option<CrashState>, now: SimTime) {
        let Some(crash) = crash else {
            return;
        };
        let slot = &mut self.slots[s];
        if slot.detected == Some(crash.since) {
            return;
        }
        slot.detected = Some(crash.since);
        let took = now.since(crash.since).0;
        self.stats.detections += 1;
        self.stats.detect_sum_ns += took as f64;
        self.stats.detect_max_ns = self.stats.detect_max_ns.max(took);
    }

    /// Forgets the counts of the warm-up.
    pub fn restart_stats(&mut self) {
        self.stats = Stats::default();
    }

    /// Adds its metrics to `r`.
    pub fn report(&self, r: &mut InstanceReport) {
        let s = &self.stats;
        let mean_ms = if s.detections > 0 {
            s.detect_sum_ns / s.detections as f64 / 1e6
        } else {
            0.0
        };
        r.set("marked_unhealthy", s.marked_unhealthy as f64)
            .set("marked_healthy", s.marked_healthy as f64)
            .set("ejections", s.ejections as f64)
            .set("detections", s.detections as f64)
            .set("time_to_detect_mean_ms", mean_ms)
            .set("time_to_detect_max_ms", s.detect_max_ns as f64 / 1e6)
            .set("sent_to_crashed", s.sent_to_crashed as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> Watch {
        let health = HealthCheck {
            interval: SimDuration(1_000_000_000),
            timeout: SimDuration(500_000_000),
            unhealthy_threshold: 2,
            healthy_threshold: 3,
        };
        let outlier = OutlierEjection {
            consecutive_failures: 3,
            ejection_time: SimDuration(5_000_000_000),
            max_ejected: 1,
        };
        Watch::new(Some(health), Some(outlier), 3)
    }

    fn at(s: u64) -> SimTime {
        SimTime(s * 1_000_000_000)
    }

    fn crashed_at(s: u64) -> Option<CrashState> {
        Some(CrashState {
            since: at(s),
            mode: CrashMode::Refused,
        })
    }

    #[test]
    fn thresholds_count_consecutive_probes() {
        let mut w = watch();
        // A failure, a pass, a failure: never two in a row.
        assert!(!w.probe_failed(0, crashed_at(10), at(11)));
        assert!(!w.probe_passed(0));
        assert!(!w.probe_failed(0, crashed_at(10), at(12)));
        assert!(!w.excluded(0));
        // The second in a row takes it out, 3 s after its crash.
        assert!(w.probe_failed(0, crashed_at(10), at(13)));
        assert!(w.excluded(0) && !w.excluded(1));
        assert_eq!(w.stats.detections, 1);
        assert_eq!(w.stats.detect_max_ns, 3_000_000_000);
        // More failures change nothing; three passes in a row put it back.
        assert!(!w.probe_failed(0, crashed_at(10), at(14)));
        assert!(!w.probe_passed(0) && !w.probe_passed(0));
        assert!(w.probe_passed(0));
        assert!(!w.excluded(0));
        assert_eq!((w.stats.marked_unhealthy, w.stats.marked_healthy), (1, 1));
    }

    #[test]
    fn a_crash_is_detected_once_and_a_live_backend_taken_out_is_no_detection() {
        let mut w = watch();
        // Ejected while up (an erroring backend): no detection.
        for _ in 0..2 {
            assert_eq!(w.reply_failed(1, None, at(3)), (false, false));
        }
        assert_eq!(w.reply_failed(1, None, at(3)), (true, true));
        assert_eq!(w.stats.detections, 0);
        // The same crash found by ejection then by probes counts once.
        assert!(w.ejection_ends(1));
        for _ in 0..3 {
            w.reply_failed(1, crashed_at(20), at(21));
        }
        assert_eq!(w.stats.detections, 1);
        w.probe_failed(1, crashed_at(20), at(22));
        // Already out (ejected): taking it out again changes nothing picked.
        assert!(!w.probe_failed(1, crashed_at(20), at(23)));
        assert_eq!(w.stats.detections, 1);
        assert_eq!(w.stats.detect_sum_ns, 1e9);
        // Its ejection ends, but it stays out: unhealthy.
        assert!(!w.ejection_ends(1));
        assert!(w.excluded(1));
    }

    #[test]
    fn no_more_than_max_ejected_at_once() {
        let mut w = watch();
        for _ in 0..3 {
            w.reply_failed(0, None, at(1));
        }
        assert!(w.excluded(0));
        for _ in 0..10 {
            assert_eq!(w.reply_failed(2, None, at(1)), (false, false));
        }
        assert!(!w.excluded(2));
        // Once the first is back, the next failure of the other ejects it.
        w.ejection_ends(0);
        assert_eq!(w.reply_failed(2, None, at(6)), (true, true));
        assert_eq!(w.stats.ejections, 2);
    }
}

//! A workload during a run: its random streams, its progress, its arrivals per kind (open
//! loop, closed loop with think time, trace replay) and the requests it sends (class, key,
//! client, timeout).
//!
//! A workload draws arrival times from one stream and classes and keys from another, both
//! named after the workload, so two designs fed the same workload see the same requests.

use crate::components::service::admission::TokenBucket;
use crate::engine::{Answer, Calendar, Event, NewRequest, RetryDecision};
use crate::metrics::ErrorCause;
use crate::policy::retry::{RetryBudget, RetryPolicy};
use crate::random::{self, Rng};
use crate::time::{SimDuration, SimTime};
use crate::workload::{Arrivals, KeyLaw, WorkloadDef};
use rand::RngExt;
use rand_distr::{Distribution as _, Exp1};
use std::sync::Arc;

/// A workload during a run: its streams and progress.
#[derive(Debug)]
pub struct Workload {
    /// The definition.
    pub def: Arc<WorkloadDef>,
    arrivals_rng: Rng,
    mix_rng: Rng,
    /// The class and key of the next three requests, drawn ahead (see [`Workload::look_ahead`]).
    ahead: Option<[(u16, u64); 3]>,
    /// Requests generated so far.
    pub generated: u64,
    /// The most requests it generates (its `requests`; `u64::MAX` for no limit).
    limit: u64,
    /// Client of the next open-loop request: requests go to clients in turn.
    next_client: u32,
    /// The client-side rate limit's tokens, and where refused requests go.
    bucket: Option<(TokenBucket, u32)>,
    /// Its retries' state, for a workload with retries.
    retry: Option<Box<RetryState>>,
}

/// A workload's retries during a run: the policy, the stream its backoff jitter draws from
/// (its own, so that adding retries moves no other draw) and its budget.
#[derive(Debug)]
struct RetryState {
    policy: RetryPolicy,
    rng: Rng,
    budget: Option<RetryBudget>,
    /// Requests generated up to the last time the budget was asked (each deposited).
    deposited: u64,
    /// When the budget was last asked.
    asked: SimTime,
}

impl Workload {
    /// The workload at the start of a run seeded with `seed`.
    pub fn new(def: Arc<WorkloadDef>, seed: u64) -> Self {
        let arrivals_rng = random::stream(seed, &format!("workload:{}/arrivals", def.name));
        let mix_rng = random::stream(seed, &format!("workload:{}/mix", def.name));
        let retry = def.retries.map(|policy| {
            Box::new(RetryState {
                policy,
                rng: random::stream(seed, &format!("workload:{}/retry", def.name)),
                budget: policy.new_budget(),
                deposited: 0,
                asked: SimTime::ZERO,
            })
        });
        Workload {
            arrivals_rng,
            mix_rng,
            ahead: None,
            generated: 0,
            limit: def.limit.unwrap_or(u64::MAX),
            next_client: 0,
            bucket: def.rate_limit.map(|(l, to)| (TokenBucket::new(l), to)),
            def,
            retry,
        }
    }

    /// An attempt failed with `cause` at `now` after `retries` retries (the last after a
    /// wait of `previous`): sent again after the backoff if the policy retries the cause,
    /// has a retry left and its budget a token.
    pub fn retry(
        &mut self,
        cause: ErrorCause,
        retries: u32,
        previous: SimDuration,
        now: SimTime,
    ) -> RetryDecision {
        let Some(r) = self.retry.as_deref_mut() else {
            return RetryDecision::Fail;
        };
        if retries >= r.policy.max || !r.policy.retries_on(cause) {
            return RetryDecision::Fail;
        }
        if let Some(b) = &mut r.budget {
            // Every first attempt deposits: those sent since the budget was last asked,
            // spread evenly over that time (the engine tells the workload nothing per
            // request, so that a workload pays nothing for its budget until it fails).
            b.deposit_spread(r.asked, now, self.generated - r.deposited);
            r.deposited = self.generated;
            r.asked = now;
            if !b.try_withdraw(now) {
                return RetryDecision::Exhausted;
            }
        }
        RetryDecision::After(r.policy.backoff(retries + 1, previous, &mut r.rng))
    }

    /// Where a request of this rate-limited workload goes at `now`: its `target` when the
    /// bucket has a token, else the group that refuses it. Out of line: a workload without
    /// a rate limit pays one test.
    #[cold]
    #[inline(never)]
    pub(crate) fn limited(&mut self, target: u32, now: SimTime) -> u32 {
        match &mut self.bucket {
            Some((bucket, refusing)) => {
                if bucket.take(now) {
                    target
                } else {
                    *refusing
                }
            }
            None => target,
        }
    }

    /// The client that sends the next open-loop request (clients take turns).
    #[inline]
    pub fn take_client(&mut self) -> u32 {
        let c = self.next_client;
        self.next_client = if c + 1 >= self.def.clients { 0 } else { c + 1 };
        c
    }

    /// True while the workload may still create requests.
    #[inline]
    pub fn may_generate(&self) -> bool {
        self.generated < self.limit
    }

    /// When the open-loop request after one at `now` arrives, or `None` if none does before
    /// `horizon`.
    #[inline(always)]
    pub fn next_arrival(&mut self, now: SimTime, horizon: SimTime) -> Option<SimTime> {
        match &self.def.arrivals {
            Arrivals::Renewal(d) => {
                let gap = SimDuration::from_nanos_f64(d.sample_ns(&mut self.arrivals_rng));
                Some(now.after(gap))
            }
            Arrivals::Profile(p) => {
                if p.max_rate <= 0.0 {
                    return None;
                }
                let mean_gap_ns = 1e9 / p.max_rate;
                let mut t = now;
                loop {
                    let e: f64 = Exp1.sample(&mut self.arrivals_rng);
                    t = t.after(SimDuration::from_nanos_f64(e * mean_gap_ns));
                    if t > horizon {
                        return None;
                    }
                    let u: f64 = self.arrivals_rng.random();
                    if u * p.max_rate < p.rate_at(t) {
                        return Some(t);
                    }
                }
            }
            Arrivals::Closed { .. } | Arrivals::Trace(_) => None,
        }
    }

    /// A think time of a closed-loop user.
    pub fn think(&mut self) -> SimDuration {
        match &self.def.arrivals {
            Arrivals::Closed { think, .. } => {
                SimDuration::from_nanos_f64(think.sample_ns(&mut self.arrivals_rng))
            }
            _ => SimDuration::ZERO,
        }
    }

    /// Class and key of a new request.
    #[inline(always)]
    pub fn draw_class_and_key(&mut self) -> (u16, u64) {
        match self.ahead {
            None => self.draw_now(),
            Some(_) => self.draw_ahead(),
        }
    }

    /// The next class and key from the buffer of draws made ahead, which takes the one
    /// after them. Out of line, so that a workload that does not draw ahead keeps its
    /// draw inline.
    #[inline(never)]
    fn draw_ahead(&mut self) -> (u16, u64) {
        let next = self.draw_now();
        let Some(ahead) = &mut self.ahead else {
            return next;
        };
        let now = ahead[0];
        *ahead = [ahead[1], ahead[2], next];
        now
    }

    /// The group its requests are sent to first, when it draws their keys (not a trace,
    /// which gives them; not a workload without keys).
    pub fn first_group(&self) -> Option<u32> {
        let draws_keys = !matches!(self.def.arrivals, Arrivals::Trace(_))
            && !matches!(self.def.keys, KeyLaw::None);
        draws_keys.then_some(self.def.target)
    }

    /// Draws classes and keys three requests ahead from now on: the same draws from the same
    /// stream in the same order, only earlier, so nothing a run reports moves.
    pub fn look_ahead(&mut self) {
        if self.ahead.is_none() {
            self.ahead = Some([self.draw_now(), self.draw_now(), self.draw_now()]);
        }
    }

    /// The keys of the next three requests, when drawn ahead.
    #[inline]
    pub fn keys_ahead(&self) -> Option<[u64; 3]> {
        self.ahead.map(|[a, b, c]| [a.1, b.1, c.1])
    }

    /// A class and a key drawn now.
    #[inline(always)]
    fn draw_now(&mut self) -> (u16, u64) {
        let classes = &self.def.classes;
        let class = if classes.len() == 1 {
            classes[0].0
        } else {
            let u: f64 = self.mix_rng.random();
            classes
                .iter()
                .find(|(_, cum)| u < *cum)
                .unwrap_or(&classes[classes.len() - 1])
                .0
        };
        (class, self.def.keys.sample(&mut self.mix_rng))
    }
}

impl Workload {
    /// Schedules the first request of workload `source` (for a closed workload, each
    /// user's).
    pub(super) fn start(&mut self, source: u32, calendar: &mut Calendar, horizon: SimTime) {
        if self.def.limit == Some(0) {
            return;
        }
        match &self.def.arrivals {
            Arrivals::Renewal(_) | Arrivals::Profile(_) => {
                if let Some(t) = self.next_arrival(SimTime::ZERO, horizon)
                    && t <= horizon
                {
                    calendar.schedule(t, Event::Generate { source, user: 0 });
                }
            }
            Arrivals::Closed { users, .. } => {
                for user in 0..*users {
                    // Each user thinks first, so users do not all start at once.
                    let t = SimTime::ZERO.after(self.think());
                    calendar.schedule(t, Event::Generate { source, user });
                }
            }
            Arrivals::Trace(records) => {
                if let Some(first) = records.first() {
                    calendar.schedule(first.time, Event::Generate { source, user: 0 });
                }
            }
        }
    }

    /// The generate event of workload `source` (for user or trace cursor `user`) fires:
    /// schedule the next arrival, then return the request to send now.
    #[inline(always)]
    pub(super) fn generate(
        &mut self,
        source: u32,
        user: u32,
        calendar: &mut Calendar,
        horizon: SimTime,
    ) -> Option<NewRequest> {
        let now = calendar.now();
        let more = self.generated + 1 < self.limit;
        // One match on the kind of arrivals gives all that depends on it.
        let (given, closed) = match &self.def.arrivals {
            Arrivals::Renewal(_) | Arrivals::Profile(_) => {
                // Its next arrival is scheduled only while it may send more (below), so
                // it may send this one.
                debug_assert!(self.may_generate(), "an arrival past the limit");
                if more
                    && let Some(t) = self.next_arrival(now, horizon)
                    && t <= horizon
                {
                    calendar.schedule(t, Event::Generate { source, user: 0 });
                }
                (None, false)
            }
            Arrivals::Closed { .. } => {
                if !self.may_generate() {
                    return None;
                }
                (None, true)
            }
            Arrivals::Trace(records) => {
                if !self.may_generate() {
                    return None;
                }
                let i = user as usize;
                if more && let Some(next) = records.get(i + 1) {
                    calendar.schedule(
                        next.time,
                        Event::Generate {
                            source,
                            user: user + 1,
                        },
                    );
                }
                (Some((records[i].class, records[i].key)), false)
            }
        };
        let user = if closed { user } else { self.take_client() };
        self.generated += 1;
        let (class, key) = match given {
            Some(ck) => ck,
            None => self.draw_class_and_key(),
        };
        let mut target = self.def.target;
        if self.bucket.is_some() {
            target = self.limited(target, now);
        }
        Some(NewRequest {
            user,
            class,
            key,
            op: self.def.ops[class as usize],
            target,
            timeout: self.def.timeout,
            acts_on_answer: closed,
        })
    }

    /// A closed-loop user got `answer`: it thinks, then sends its next request.
    #[inline(always)]
    pub(super) fn answered(&mut self, answer: &Answer, calendar: &mut Calendar, horizon: SimTime) {
        if let Arrivals::Closed { .. } = self.def.arrivals
            && self.may_generate()
        {
            let at = answer.at.after(self.think());
            if at <= horizon {
                calendar.schedule(
                    at,
                    Event::Generate {
                        source: answer.source,
                        user: answer.user,
                    },
                );
            }
        }
    }

    /// The share of its requests the workload has sent, when it sends a known number (a
    /// `requests` limit or a trace); `None` when only the run's duration ends it.
    pub fn sent_share(&self) -> Option<f64> {
        let total = match (&self.def.arrivals, self.def.limit) {
            (Arrivals::Trace(r), limit) => limit.map_or(r.len() as u64, |l| l.min(r.len() as u64)),
            (_, Some(limit)) => limit,
            _ => return None,
        };
        Some(if total == 0 {
            1.0
        } else {
            (self.generated as f64 / total as f64).min(1.0)
        })
    }

    /// True when the workload will send no more requests: it reached its `requests`
    /// limit, or replayed its whole trace.
    pub fn exhausted(&self) -> bool {
        !self.may_generate()
            || matches!(&self.def.arrivals, Arrivals::Trace(r) if self.generated >= r.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distributions::Distribution;
    use crate::workload::ZipfSampler;

    fn zipf_workload_of_three_classes() -> Arc<WorkloadDef> {
        Arc::new(WorkloadDef {
            name: "w".into(),
            arrivals: Arrivals::Renewal(Distribution::exponential_ns(1e6)),
            classes: vec![(0, 0.2), (1, 0.7), (2, 1.0)],
            keys: KeyLaw::Zipf {
                keys: 1_000_000,
                sampler: ZipfSampler::new(1e6, 0.9).unwrap(),
            },
            target: 3,
            timeout: None,
            limit: None,
            clients: 1,
            ops: vec![0, 0, 0],
            burst: None,
            rate_limit: None,
            retries: None,
            non_idempotent: Vec::new(),
            idempotency_key: false,
        })
    }

    #[test]
    fn drawing_ahead_gives_the_same_classes_and_keys_in_the_same_order() {
        let def = zipf_workload_of_three_classes();
        let mut plain = Workload::new(def.clone(), 7);
        let mut ahead = Workload::new(def, 7);
        assert_eq!(ahead.first_group(), Some(3));
        assert_eq!(ahead.keys_ahead(), None);
        ahead.look_ahead();
        let drawn: Vec<_> = (0..1000).map(|_| plain.draw_class_and_key()).collect();
        for (i, expected) in drawn.iter().enumerate() {
            assert_eq!(ahead.draw_class_and_key(), *expected, "draw {i}");
            if i + 3 < drawn.len() {
                let next = ahead.keys_ahead().unwrap();
                let expected = [drawn[i + 1].1, drawn[i + 2].1, drawn[i + 3].1];
                assert_eq!(next, expected, "after draw {i}");
            }
        }
        assert!(drawn.iter().any(|(c, _)| *c == 0) && drawn.iter().any(|(c, _)| *c == 2));
    }
}

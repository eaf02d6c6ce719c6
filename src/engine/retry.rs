//! Client retries in the engine: a request whose attempt failed is sent again after a
//! backoff, as a new attempt of the same request.
//!
//! An attempt is an engine request of its own (its own first call, its own client timeout),
//! so a timed-out attempt's work goes on while the next one runs. The request the client
//! sees is the *logical* request: created when its first attempt left (its latency counts
//! from there), counted once by its workload (`arrived`, `completed`, `failed`) and in the
//! run's totals, answered by the attempt that succeeds or by the last failure.
//!
//! Nothing here runs for a request that never fails: the first attempt is an ordinary
//! request, and it gets a logical record only when it fails and its source retries
//! (the answer path's failure branch, cold). Retry attempts are sent by their own event
//! ([`Event::ClientRetry`]) and answer through the client's answer hook, so the answer path
//! of requests without retries is unchanged. Whether to retry, and after how long, is the
//! source's decision ([`Clients::retry`]); the engine counts what happened.
//!
//! A logical request also counts the writes it did: an attempt that succeeded at the
//! service, whether its client still waited for it or had given up on it (timed out), did
//! its write; a second such attempt of a non-idempotent write is a duplicate, or, with an
//! idempotency key, a duplicate removed (`deduplicated`).

use super::call::{Call, ClientWait, Outcome, Request};
use super::clients::{Clients, RetryDecision};
use super::context::{Context, NOBODY};
use super::event::{CallId, Event, InstanceId, RequestId};
use crate::metrics::ErrorCause;
use crate::time::SimDuration;

/// What a source's duplicated writes are (see [`ClientRetries::new`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Idempotency {
    /// The classes (global ids) whose requests are non-idempotent writes.
    pub classes: Vec<u16>,
    /// They carry an idempotency key: the service drops the duplicates.
    pub key: bool,
}

/// What retries did for one source, in the measurement window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryCounts {
    /// Attempts sent again after a failure.
    pub retries: u64,
    /// The waits before them, summed, ns.
    pub backoff_ns: u64,
    /// Failures that would have been retried but the retry budget had no token.
    pub budget_exhausted: u64,
    /// Non-idempotent writes done more than once (second and later successes).
    pub duplicates: u64,
    /// Duplicates an idempotency key removed.
    pub deduplicated: u64,
}

/// A request that failed at least once and was retried.
#[derive(Debug, Clone, Copy, Default)]
struct Logical {
    /// The first attempt's request (source, user, creation time).
    request: Request,
    /// The call of its first attempt, as it left (class, key, op).
    first: Call,
    /// Group its attempts go to.
    target: u32,
    /// The client timeout of each attempt.
    timeout: Option<SimDuration>,
    /// Retries sent or scheduled so far.
    retries: u32,
    /// The wait before the last retry.
    previous: SimDuration,
    /// Its attempts that have not ended (their work goes on).
    live: u32,
    /// Its attempts that succeeded at the service.
    succeeded: u32,
    /// 0: idempotent; 1: a non-idempotent write; 2: one with an idempotency key.
    write: u8,
    /// The client has its final answer.
    done: bool,
}

/// The retry state of a run whose sources retry (see the module docs).
#[derive(Debug)]
pub struct ClientRetries {
    /// Per source: it retries.
    retrying: Vec<bool>,
    /// Per source: the target group and client timeout of its requests.
    targets: Vec<(u32, Option<SimDuration>)>,
    /// Per source: its non-idempotent writes.
    idempotency: Vec<Idempotency>,
    /// Per source: counts in the measurement window.
    pub counts: Vec<RetryCounts>,
    /// Logical requests, by slot; `free` lists the slots not in use.
    logical: Vec<Logical>,
    free: Vec<u32>,
    /// Per request slot (the id of an attempt's first call): its logical request + 1 and
    /// the call's generation when it was linked (0: none).
    attempt_of: Vec<(u32, u32)>,
    /// Logical requests waiting for their next attempt to leave.
    pub waiting: u64,
}

impl ClientRetries {
    /// Retry state for sources `0..n`: `retrying[s]` says whether source `s` retries,
    /// `targets[s]` its target group and client timeout, `idempotency[s]` its
    /// non-idempotent writes.
    pub fn new(
        retrying: Vec<bool>,
        targets: Vec<(u32, Option<SimDuration>)>,
        idempotency: Vec<Idempotency>,
    ) -> Self {
        let n = retrying.len();
        ClientRetries {
            retrying,
            targets,
            idempotency,
            counts: vec![RetryCounts::default(); n],
            logical: Vec::new(),
            free: Vec::new(),
            attempt_of: Vec::new(),
            waiting: 0,
        }
    }

    /// The logical request attempt `request` (whose call has generation `generation`)
    /// belongs to, if it is linked to one.
    fn link(&self, request: RequestId, generation: u32) -> Option<u32> {
        match self.attempt_of.get(request as usize) {
            Some(&(l, g)) if l != 0 && g == generation => Some(l - 1),
            _ => None,
        }
    }

    fn set_link(&mut self, request: RequestId, generation: u32, logical: u32) {
        let slot = request as usize;
        if slot >= self.attempt_of.len() {
            let len = (slot + 1).max(self.attempt_of.len() * 2).max(1024);
            self.attempt_of.resize(len, (0, 0));
        }
        self.attempt_of[slot] = (logical + 1, generation);
    }

    fn new_logical(&mut self, l: Logical) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.logical[i as usize] = l;
                i
            }
            None => {
                self.logical.push(l);
                (self.logical.len() - 1) as u32
            }
        }
    }

    /// Frees logical request `i` once its client has its answer and no attempt of it runs.
    fn release_if_over(&mut self, i: u32) {
        let l = &self.logical[i as usize];
        if l.done && l.live == 0 {
            self.free.push(i);
        }
    }

    /// An attempt of logical request `i` succeeded at the service at a time counted or not
    /// (`measuring`): a second write of a non-idempotent request is a duplicate.
    fn succeeded(&mut self, i: u32, measuring: bool) {
        let l = &mut self.logical[i as usize];
        l.succeeded += 1;
        if l.succeeded >= 2 && measuring {
            let c = &mut self.counts[l.request.source as usize];
            match l.write {
                1 => c.duplicates += 1,
                2 => c.deduplicated += 1,
                _ => {}
            }
        }
    }
}

impl<C: Clients + ?Sized> Context<C> {
    /// Attempt `request` failed with `cause` (answer path, failure branch, in a run with
    /// retries): true when its source sends it again (the client is not answered now).
    #[cold]
    #[inline(never)]
    pub(super) fn retry_failed(&mut self, request: RequestId, cause: ErrorCause) -> bool {
        let r = self.requests[request as usize];
        let call = *self.calls.get(request);
        let now = self.now();
        let measuring = self.measuring;
        let Some(rt) = self.retries.as_deref_mut() else {
            return false;
        };
        if !rt.retrying[r.source as usize] {
            return false;
        }
        let link = rt.link(request, call.generation);
        let (retries, previous) = match link {
            Some(i) => {
                let l = &rt.logical[i as usize];
                (l.retries, l.previous)
            }
            None => (0, SimDuration::ZERO),
        };
        let wait = match self
            .clients
            .retry(r.source, call.class, cause, retries, previous, now)
        {
            RetryDecision::Fail => return false,
            RetryDecision::Exhausted => {
                if measuring {
                    rt.counts[r.source as usize].budget_exhausted += 1;
                }
                return false;
            }
            RetryDecision::After(wait) => wait,
        };
        // The attempt ends now (its outcome is in) or its work goes on (the client's
        // timeout).
        let ending = call.outcome != Outcome::Pending;
        let i = match link {
            Some(i) => {
                if ending {
                    rt.logical[i as usize].live -= 1;
                }
                i
            }
            None => {
                let (target, timeout) = rt.targets[r.source as usize];
                let idem = &rt.idempotency[r.source as usize];
                let write = if idem.classes.contains(&call.class) {
                    1 + u8::from(idem.key)
                } else {
                    0
                };
                let i = rt.new_logical(Logical {
                    request: r,
                    first: call,
                    target,
                    timeout,
                    write,
                    live: u32::from(!ending),
                    ..Logical::default()
                });
                if !ending {
                    rt.set_link(request, call.generation, i);
                }
                i
            }
        };
        let l = &mut rt.logical[i as usize];
        l.retries += 1;
        l.previous = wait;
        rt.waiting += 1;
        let at = now.after(wait);
        self.calendar
            .schedule(at, Event::ClientRetry { logical: i });
        true
    }

    /// Attempt `request`, one its client acts on, is answered with `outcome` (answer path,
    /// in a run with retries): a retry attempt's final answer ends its logical request.
    #[cold]
    #[inline(never)]
    pub(super) fn retry_answered(&mut self, request: RequestId, outcome: Outcome) {
        let call = self.calls.get(request);
        let (generation, ending) = (call.generation, call.outcome != Outcome::Pending);
        let measuring = self.measuring;
        let Some(rt) = self.retries.as_deref_mut() else {
            return;
        };
        let Some(i) = rt.link(request, generation) else {
            return;
        };
        rt.logical[i as usize].done = true;
        if ending {
            rt.logical[i as usize].live -= 1;
            if outcome == Outcome::Ok {
                rt.succeeded(i, measuring);
            }
        }
        rt.release_if_over(i);
    }

    /// Attempt `request` ended with `outcome` after its client stopped waiting for it (its
    /// timeout, or a retry) (request end path, in a run with retries).
    #[cold]
    #[inline(never)]
    pub(super) fn retry_ended_late(&mut self, request: RequestId, outcome: Outcome) {
        let generation = self.calls.get(request).generation;
        let measuring = self.measuring;
        let Some(rt) = self.retries.as_deref_mut() else {
            return;
        };
        let Some(i) = rt.link(request, generation) else {
            return;
        };
        rt.logical[i as usize].live -= 1;
        if outcome == Outcome::Ok {
            rt.succeeded(i, measuring);
        }
        rt.release_if_over(i);
    }

    /// The backoff of logical request `logical` is over: its next attempt leaves now.
    /// Returns the instance it goes to and its call, to be delivered at once, as
    /// [`Context::start_request`] does.
    pub(crate) fn client_retry(&mut self, logical: u32) -> Option<(InstanceId, CallId)> {
        let now = self.now();
        let measuring = self.measuring;
        let rt = self.retries.as_deref_mut()?;
        rt.waiting -= 1;
        let l = rt.logical[logical as usize];
        if measuring {
            let c = &mut rt.counts[l.request.source as usize];
            c.retries += 1;
            c.backoff_ns += l.previous.0;
        }
        rt.logical[logical as usize].live += 1;
        self.in_flight += 1;
        let (class, key, op) = (l.first.class, l.first.key, l.first.op);
        let target = self.clients.retry_target(l.request.source, l.target, now);
        let (call, picked) = self.first_call(l.request.source, target, class, key, op);
        let to = picked.unwrap_or(NOBODY);
        let timeout = if picked.is_some() { l.timeout } else { None };
        let slot = call as usize;
        self.requests[slot] = Request {
            client: if timeout.is_some() {
                ClientWait::WaitingWithTimeout
            } else {
                ClientWait::Waiting
            },
            // Its answer goes through the client's answer hook (retry_answered).
            acts_on_answer: true,
            ..l.request
        };
        let generation = self.calls.get(call).generation;
        if let Some(rt) = self.retries.as_deref_mut() {
            rt.set_link(call, generation, logical);
        }
        if let Some(t) = timeout {
            self.calendar.schedule(
                now.after(t),
                Event::ClientTimeout {
                    request: call,
                    generation,
                },
            );
        }
        if picked.is_none() {
            self.refuse_start(call, target);
            return None;
        }
        if self.has_network() {
            return self.start_across(l.request.source, call, to);
        }
        Some((to, call))
    }

    /// What retries did for each source, in the measurement window (empty without).
    pub fn retry_counts(&self) -> &[RetryCounts] {
        self.retries.as_deref().map_or(&[], |r| &r.counts)
    }

    /// Logical requests waiting for their next attempt (0 without retries).
    pub(super) fn retries_waiting(&self) -> u64 {
        self.retries.as_deref().map_or(0, |r| r.waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_check_the_generation_and_slots_are_reused() {
        let mut rt = ClientRetries::new(vec![true], vec![(0, None)], vec![Idempotency::default()]);
        let a = rt.new_logical(Logical::default());
        rt.set_link(5, 7, a);
        assert_eq!(rt.link(5, 7), Some(a));
        assert_eq!(rt.link(5, 8), None, "a later request in the same slot");
        assert_eq!(rt.link(4000, 0), None);
        rt.logical[a as usize].done = true;
        rt.release_if_over(a);
        let b = rt.new_logical(Logical::default());
        assert_eq!(a, b);
    }

    #[test]
    fn second_success_of_a_write_is_a_duplicate() {
        let mut rt = ClientRetries::new(vec![true], vec![(0, None)], vec![Idempotency::default()]);
        for write in [0u8, 1, 2] {
            let i = rt.new_logical(Logical {
                write,
                ..Logical::default()
            });
            rt.succeeded(i, true);
            rt.succeeded(i, true);
            rt.succeeded(i, false);
        }
        let c = rt.counts[0];
        assert_eq!((c.duplicates, c.deduplicated), (1, 1));
    }
}

//! Client behaviour: the request sources plugged into the engine. Each workload of the
//! model becomes a [`Workload`] that sends requests (arrivals per kind, classes and keys,
//! the client timeout it asks for) and acts on answers (closed-loop think time; client
//! retries: whether a failed attempt is sent again, and when). The engine sees them only through [`Clients`]; what the clients
//! saw is recorded by the engine in a `ClientStats` per workload.

mod workload;

pub use workload::Workload;

use crate::engine::{
    Answer, Calendar, ClientRetries, Clients, Idempotency, NewRequest, RetryDecision,
};
use crate::metrics::ErrorCause;
use crate::time::{SimDuration, SimTime};
use crate::workload::WorkloadDef;
use std::sync::Arc;

/// The workloads of a run, as the engine's request sources (source `i` is workload `i`).
#[derive(Debug)]
pub struct Workloads(pub Vec<Workload>);

impl Clients for Workloads {
    fn start(&mut self, calendar: &mut Calendar, horizon: SimTime) {
        for (i, w) in self.0.iter_mut().enumerate() {
            w.start(i as u32, calendar, horizon);
        }
    }

    #[inline(always)]
    fn generate(
        &mut self,
        source: u32,
        user: u32,
        calendar: &mut Calendar,
        horizon: SimTime,
    ) -> Option<NewRequest> {
        self.0[source as usize].generate(source, user, calendar, horizon)
    }

    #[inline(always)]
    fn answered(&mut self, answer: &Answer, calendar: &mut Calendar, horizon: SimTime) {
        self.0[answer.source as usize].answered(answer, calendar, horizon);
    }

    fn exhausted(&self) -> bool {
        self.0.iter().all(Workload::exhausted)
    }

    fn first_group(&self, source: u32) -> Option<u32> {
        self.0[source as usize].first_group()
    }

    fn look_ahead(&mut self, source: u32) {
        self.0[source as usize].look_ahead();
    }

    #[inline]
    fn keys_ahead(&self, source: u32) -> Option<[u64; 3]> {
        self.0[source as usize].keys_ahead()
    }

    fn retry(
        &mut self,
        source: u32,
        _class: u16,
        cause: ErrorCause,
        retries: u32,
        previous: SimDuration,
        now: SimTime,
    ) -> RetryDecision {
        self.0[source as usize].retry(cause, retries, previous, now)
    }

    fn retry_target(&mut self, source: u32, target: u32, now: SimTime) -> u32 {
        self.0[source as usize].limited(target, now)
    }
}

/// The engine's retry state for `workloads` (source `i` is workload `i`), or `None` when
/// none of them retries: a run without retries pays nothing for them.
pub fn client_retries(workloads: &[Arc<WorkloadDef>]) -> Option<ClientRetries> {
    if workloads.iter().all(|w| w.retries.is_none()) {
        return None;
    }
    Some(ClientRetries::new(
        workloads.iter().map(|w| w.retries.is_some()).collect(),
        workloads.iter().map(|w| (w.target, w.timeout)).collect(),
        workloads
            .iter()
            .map(|w| Idempotency {
                classes: w.non_idempotent.clone(),
                key: w.idempotency_key,
            })
            .collect(),
    ))
}

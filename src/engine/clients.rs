//! What the engine asks of the sources of requests (the clients at the top of every call
//! tree). The engine owns the request's life (its first call, its client timeout, the
//! whole-run counts) and hands what every client saw to its source's [`ClientStats`]
//! (whose recording lives with the client metrics, called where the answer happens, at no
//! extra cost per request); when requests arrive,
//! what they carry and what a client does with its answer belong to the [`Clients`]
//! plugged in (see `crate::client`).

use super::calendar::Calendar;
use super::call::Outcome;
#[allow(unused_imports)] // for the docs
use crate::metrics::ClientStats;
use crate::metrics::ErrorCause;
use crate::time::{SimDuration, SimTime};
use std::fmt::Debug;

/// A request a source wants to send now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewRequest {
    /// The client that sends it (a closed-loop user, or an open-loop client in turn).
    pub user: u32,
    /// Request class.
    pub class: u16,
    /// The key it is about.
    pub key: u64,
    /// Operation asked of the target (component-defined; 0 for none).
    pub op: u8,
    /// Group its first call goes to.
    pub target: u32,
    /// How long the client waits for an answer before it gives up.
    pub timeout: Option<SimDuration>,
    /// The client acts on its answer (a closed-loop user thinks, then sends its next
    /// request): [`Clients::answered`] is called. Other answers are only recorded.
    pub acts_on_answer: bool,
}

/// The answer a client got.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answer {
    /// Source of the request.
    pub source: u32,
    /// Its client.
    pub user: u32,
    /// Its class.
    pub class: u16,
    /// A response, or a failure (the client's own timeout included).
    pub outcome: Outcome,
    /// When the request was created.
    pub created: SimTime,
    /// When the answer came.
    pub at: SimTime,
}

/// The request sources of a run, numbered from 0. A source asks for its own
/// [`Event::Generate`](super::Event::Generate) events (source index, and a number of its
/// own: a user, a cursor) and is told of each answer to its requests.
pub trait Clients: Debug + 'static {
    /// The run begins: schedule the first requests (the run ends at `horizon`).
    fn start(&mut self, calendar: &mut Calendar, horizon: SimTime);
    /// A generate event of source `source` fires now: schedule what comes next and return
    /// the request to send, if any.
    fn generate(
        &mut self,
        source: u32,
        user: u32,
        calendar: &mut Calendar,
        horizon: SimTime,
    ) -> Option<NewRequest>;
    /// The client of a request created [`acts_on_answer`](NewRequest::acts_on_answer)
    /// gets its `answer` now (already recorded in its source's [`ClientStats`]). It may
    /// schedule its next request.
    fn answered(&mut self, answer: &Answer, calendar: &mut Calendar, horizon: SimTime);
    /// True when no source will send another request.
    fn exhausted(&self) -> bool;
    /// The group every request of `source` is sent to first, when the source draws its
    /// requests' keys itself (so it can draw them ahead, see [`Clients::keys_ahead`]).
    fn first_group(&self, _source: u32) -> Option<u32> {
        None
    }
    /// From now on `source` draws the class and key of its requests three requests ahead
    /// (the same draws in the same order: only earlier), for [`Clients::keys_ahead`]. Called
    /// before the first request.
    fn look_ahead(&mut self, _source: u32) {}
    /// The keys of the next three requests of `source`, drawn ahead; `None` for a source
    /// not told to [`look_ahead`](Clients::look_ahead).
    fn keys_ahead(&self, _source: u32) -> Option<[u64; 3]> {
        None
    }
    /// An attempt of a request of source `source` (class `class`) failed with `cause` at
    /// `now`, after `retries` retries, the last one after a wait of `previous`: whether it
    /// is sent again, and after how long. Asked only of the sources a run's retries were
    /// set up for (see `Simulation::with_client_retries`).
    fn retry(
        &mut self,
        _source: u32,
        _class: u16,
        _cause: ErrorCause,
        _retries: u32,
        _previous: SimDuration,
        _now: SimTime,
    ) -> RetryDecision {
        RetryDecision::Fail
    }
    /// The group a retry of a request of source `source`, sent to `target`, goes to at
    /// `now`: `target`, or a group that refuses it (a client-side rate limit counts the
    /// retries it sends too).
    fn retry_target(&mut self, _source: u32, target: u32, _now: SimTime) -> u32 {
        target
    }
}

/// What a source does with a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// The failure is the request's answer (not retried: its cause, or no retry left).
    Fail,
    /// The retry budget had no token: the failure is the answer.
    Exhausted,
    /// The request is sent again after this wait.
    After(SimDuration),
}

/// No request sources at all (for tests of components that make their own work).
#[derive(Debug, Default)]
pub struct NoClients;

impl Clients for NoClients {
    fn start(&mut self, _: &mut Calendar, _: SimTime) {}
    fn generate(&mut self, _: u32, _: u32, _: &mut Calendar, _: SimTime) -> Option<NewRequest> {
        None
    }
    fn answered(&mut self, _: &Answer, _: &mut Calendar, _: SimTime) {}
    fn exhausted(&self) -> bool {
        true
    }
}

//! Deadline propagation: whether anyone still waits for the answer of a call. A service
//! with `deadlines` asks this before it spends work on a call (at dequeue, and with
//! "abort" between the steps of its handler), so work whose caller has given up is not
//! done. Nothing on the path of a call asks it unless a service is set to.

use super::call::{CLIENT, ClientWait};
use super::clients::Clients;
use super::context::Context;
use super::detached::DETACHED;
use super::event::CallId;

impl<C: Clients + ?Sized> Context<C> {
    /// True when nobody waits any more for the answer of `call`: up the chain of its
    /// callers, a parent call no longer awaits its child (it ended, or went on without it:
    /// an "any" fan-out answered, a sibling's failure failed it; or it is an attempt its
    /// caller's per-call timeout abandoned), or the client of its request has its answer
    /// (its own timeout fired). A tail call is awaited by the
    /// caller of the call it continues. A detached root (a queued message) is never given
    /// up.
    pub fn caller_gave_up(&self, call: CallId) -> bool {
        let mut id = call;
        loop {
            let c = self.calls.get(id);
            if c.parent == CLIENT {
                // The request's first call, live as long as the chain up to it is.
                return self.requests[id as usize].client == ClientWait::Answered;
            }
            if c.parent == DETACHED {
                // A queued message: its holder waits for it until it frees it.
                return false;
            }
            if !self.is_awaited(c) {
                return true;
            }
            // A guarded attempt its caller abandoned at its per-call timeout.
            if let Some(g) = self.guards.as_deref()
                && g.is_abandoned(id, c.generation)
            {
                return true;
            }
            id = c.parent_call;
        }
    }
}

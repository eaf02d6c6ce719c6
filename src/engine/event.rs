//! What the calendar holds: small, copyable events addressed to a component instance, a
//! request source, or the engine itself.

/// Index of a component instance in a run (`app[2]` is one instance).
pub type InstanceId = u32;
/// Index of a call (one hop of a request) in the run's call slab.
pub type CallId = u32;
/// Index of a request in the run's request slab.
pub type RequestId = u32;

/// One scheduled happening. 16 bytes, so the calendar stays cache-friendly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A call is delivered to a component instance.
    Arrive {
        /// The instance that receives the call.
        to: InstanceId,
        /// The call.
        call: CallId,
    },
    /// A call made by `to` has finished; its outcome is in the call slab.
    Reply {
        /// The instance that made the call.
        to: InstanceId,
        /// The finished child call.
        call: CallId,
    },
    /// A timer a component set for itself.
    Timer {
        /// The instance that set the timer.
        to: InstanceId,
        /// What the timer is for, defined by the component.
        tag: u32,
        /// Data for the component, often a call id.
        data: u32,
    },
    /// A request source generates its next request.
    Generate {
        /// Index of the source (a workload).
        source: u32,
        /// A number of the source's own: a closed-loop user, a trace cursor.
        user: u32,
    },
    /// A client's timeout for a request expires.
    ClientTimeout {
        /// The request.
        request: RequestId,
        /// Generation of the request slot when the timeout was set.
        generation: u32,
    },
    /// The warm-up period ends: statistics restart.
    WarmupEnd,
    /// The answer to a request reaches its client, after crossing the network (only in a
    /// model with a network; otherwise the client has it as the request's first call ends).
    Answer {
        /// The request (the id of its first call, finished).
        call: CallId,
    },
    /// A fault begins or ends (see [`Faults`](super::Faults)).
    Fault {
        /// Index of the fault, the decider's own.
        fault: u32,
        /// The instance it hits.
        instance: InstanceId,
        /// True when it begins, false when it ends.
        begin: bool,
    },
    /// A call policy's timer (see [`guard`](super::guard)): an attempt leaves, times out,
    /// or is sent again.
    Guard {
        /// Which timer: `guard::LAUNCH`, `TIMEOUT`, `RETRY`, or a later policy's.
        what: u32,
        /// The call it is about (a logical call or an attempt).
        call: CallId,
        /// Its generation when the timer was set.
        generation: u32,
    },
    /// A client's retry leaves: the next attempt of a request that failed (see
    /// `engine/retry.rs`).
    ClientRetry {
        /// The request's logical record.
        logical: u32,
    },
    /// A controller's timer (see `engine/control.rs`): an autoscaler evaluates its metric,
    /// or an instance it started is ready.
    Control {
        /// The controller instance.
        to: InstanceId,
        /// What the timer is for, defined by the controller.
        tag: u32,
        /// Data for the controller.
        data: u32,
    },
}

/// An [`Event`] as two machine words, the form the calendar stores.
///
/// Packing happens in registers where an event is scheduled, so the calendar copies two
/// words instead of reloading a 16-byte enum its caller has just written field by field
/// (a wide load over several narrow stores defeats store-to-load forwarding and stalls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedEvent {
    /// Kind in the low byte, first field in the high half.
    lo: u64,
    /// Second field in the low half, third in the high half.
    hi: u64,
}

impl PackedEvent {
    /// A placeholder for unused slots.
    pub const ZERO: PackedEvent = PackedEvent { lo: 0, hi: 0 };

    /// A copy read one word at a time.
    #[inline(always)]
    pub fn get(&self) -> PackedEvent {
        PackedEvent {
            lo: self.lo,
            hi: self.hi,
        }
    }

    /// Copies `other` into `self` one word at a time.
    #[inline(always)]
    pub fn set(&mut self, other: &PackedEvent) {
        self.lo = other.lo;
        self.hi = other.hi;
    }
}

const ARRIVE: u64 = 0;
const REPLY: u64 = 1;
const TIMER: u64 = 2;
const GENERATE: u64 = 3;
const CLIENT_TIMEOUT: u64 = 4;
const WARMUP_END: u64 = 5;
const ANSWER: u64 = 6;
const FAULT: u64 = 7;
const GUARD: u64 = 8;
const CLIENT_RETRY: u64 = 9;
const CONTROL: u64 = 10;

impl Event {
    /// The two-word form of this event.
    #[inline(always)]
    pub fn pack(self) -> PackedEvent {
        let (kind, a, b, c) = match self {
            Event::Arrive { to, call } => (ARRIVE, to, call, 0),
            Event::Reply { to, call } => (REPLY, to, call, 0),
            Event::Timer { to, tag, data } => (TIMER, to, tag, data),
            Event::Generate { source, user } => (GENERATE, source, user, 0),
            Event::ClientTimeout {
                request,
                generation,
            } => (CLIENT_TIMEOUT, request, generation, 0),
            Event::WarmupEnd => (WARMUP_END, 0, 0, 0),
            Event::Answer { call } => (ANSWER, call, 0, 0),
            Event::Fault {
                fault,
                instance,
                begin,
            } => (FAULT, fault, instance, u32::from(begin)),
            Event::Guard {
                what,
                call,
                generation,
            } => (GUARD, call, generation, what),
            Event::ClientRetry { logical } => (CLIENT_RETRY, logical, 0, 0),
            Event::Control { to, tag, data } => (CONTROL, to, tag, data),
        };
        PackedEvent {
            lo: kind | (u64::from(a) << 32),
            hi: u64::from(b) | (u64::from(c) << 32),
        }
    }
}

impl PackedEvent {
    /// The event this was packed from.
    #[inline(always)]
    pub fn unpack(self) -> Event {
        let a = (self.lo >> 32) as u32;
        let b = self.hi as u32;
        let c = (self.hi >> 32) as u32;
        match self.lo & 0xff {
            ARRIVE => Event::Arrive { to: a, call: b },
            REPLY => Event::Reply { to: a, call: b },
            TIMER => Event::Timer {
                to: a,
                tag: b,
                data: c,
            },
            GENERATE => Event::Generate { source: a, user: b },
            CLIENT_TIMEOUT => Event::ClientTimeout {
                request: a,
                generation: b,
            },
            ANSWER => Event::Answer { call: a },
            FAULT => Event::Fault {
                fault: a,
                instance: b,
                begin: c != 0,
            },
            GUARD => Event::Guard {
                what: c,
                call: a,
                generation: b,
            },
            CLIENT_RETRY => Event::ClientRetry { logical: a },
            CONTROL => Event::Control {
                to: a,
                tag: b,
                data: c,
            },
            _ => Event::WarmupEnd,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_every_kind() {
        let events = [
            Event::Arrive {
                to: u32::MAX,
                call: 7,
            },
            Event::Reply {
                to: 3,
                call: u32::MAX,
            },
            Event::Timer {
                to: 1,
                tag: u32::MAX,
                data: 0xdead_beef,
            },
            Event::Generate {
                source: 2,
                user: 99,
            },
            Event::ClientTimeout {
                request: 5,
                generation: u32::MAX,
            },
            Event::WarmupEnd,
            Event::Answer { call: u32::MAX },
            Event::Fault {
                fault: 3,
                instance: u32::MAX,
                begin: true,
            },
            Event::Fault {
                fault: u32::MAX,
                instance: 0,
                begin: false,
            },
            Event::Guard {
                what: 2,
                call: u32::MAX,
                generation: 0xdead_beef,
            },
            Event::ClientRetry { logical: u32::MAX },
            Event::Control {
                to: 4,
                tag: u32::MAX,
                data: 0xdead_beef,
            },
        ];
        for e in events {
            assert_eq!(e.pack().unpack(), e);
        }
    }
}

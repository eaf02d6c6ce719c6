//! What the calendar holds: small, copyable events addressed to a component instance, a
//! workload, or the engine itself.

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
    /// A workload generates its next request (for a closed workload, for user `user`).
    Generate {
        /// Index of the workload.
        workload: u32,
        /// User index of a closed workload, or a cursor for trace replay.
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
}

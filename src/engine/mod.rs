//! The engine: clock, calendar, calls, instance state, and the run loop that hands events
//! to components and request sources.
//!
//! The engine runs a built [`Topology`] (instances, groups, request sources) and knows no
//! model file, component kind or workload kind: components plug in through [`Component`],
//! request sources through [`Clients`]. It does no I/O and spawns no threads. A run is a
//! pure function of the topology: events are ordered by (time, sequence), every component
//! and workload draws from its own named random stream, and nothing iterates a hash map.

mod calendar;
mod call;
mod clients;
mod context;
mod control;
mod deadline;
mod detached;
mod event;
mod fault;
pub mod guard;
mod retry;
mod sim;
#[cfg(test)]
mod tests;
pub mod watch;

pub use calendar::Calendar;
pub use call::{CLIENT, Call, Found, Outcome, Request, Slab};
pub use clients::{Answer, Clients, NewRequest, NoClients, RetryDecision};
pub use context::{Component, Context, CrashState, Ctx, Group, NOBODY, Pick, Totals};
pub use control::{Gauges, ScalingAction, ScalingHistory};
pub use detached::DETACHED;
pub use event::{CallId, Event, InstanceId, RequestId};
pub use fault::{CrashMode, Degradation, FaultAction, FaultWindow, Faults};
pub use retry::{ClientRetries, Idempotency, RetryCounts};
pub use sim::{RunError, RunOptions, STALL_LIMIT, Simulation, Topology};

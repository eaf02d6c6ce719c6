//! The engine: clock, calendar, calls, and the run loop that hands events to components.
//!
//! The engine does no I/O and spawns no threads. A run is a pure function of the model and
//! the seed: events are ordered by (time, sequence), every component and workload draws from
//! its own named random stream, and nothing iterates a hash map.

mod calendar;
mod call;
mod context;
mod event;
mod sim;

pub use calendar::Calendar;
pub use call::{CLIENT, Call, Outcome, Request, Slab};
pub use context::{Component, Ctx, Group, Totals};
pub use event::{CallId, Event, InstanceId, RequestId};
pub use sim::{RunError, RunOptions, STALL_LIMIT, Simulation};

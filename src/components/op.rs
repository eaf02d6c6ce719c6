//! The operation a call asks of the component it reaches: read, write, or one of the
//! operations a cache-aside handler sends to its cache. The engine carries it as a byte
//! ([`Call::op`](crate::engine::Call::op)) and gives it no meaning; data components act on
//! it, services pass it on.
//!
//! A client request's operation comes from its class (classes named `read` and `write` are
//! those by default; a workload's `ops` maps any class); a `call` or `fan_out` step may set
//! its own, which its callee sees instead.

use crate::engine::Call;
use crate::time::SimDuration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An operation, as carried by a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Op {
    /// None given: data components treat it as a read.
    #[default]
    Unset = 0,
    /// Read the key.
    Read = 1,
    /// Write the key (a new version).
    Write = 2,
    /// Drop the key from a cache.
    Invalidate = 3,
    /// Put the key in a cache (the value the caller just read elsewhere).
    Set = 4,
}

impl Op {
    /// The byte a call carries.
    #[inline(always)]
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The operation of byte `code` (an unknown byte is [`Op::Unset`]).
    #[inline(always)]
    pub const fn of(code: u8) -> Op {
        match code {
            1 => Op::Read,
            2 => Op::Write,
            3 => Op::Invalidate,
            4 => Op::Set,
            _ => Op::Unset,
        }
    }

    /// The byte of a batch of messages from a `queue` to its consumer service (never
    /// written in a model, never sent on to a data component): the call carries the
    /// batch's work instead of a key ([`Op::batch_work`]).
    pub const BATCH: u8 = u8::MAX;

    /// The key a batch delivery carries: its work `work` (a batch is about no single key,
    /// and the key is what every copy of a call keeps, retries included).
    #[inline(always)]
    pub const fn batch_key(work: SimDuration) -> u64 {
        work.0
    }

    /// The work a batch delivery `call` (operation [`Op::BATCH`]) carries.
    #[inline(always)]
    pub const fn batch_work(call: &Call) -> SimDuration {
        SimDuration(call.key)
    }

    /// True for an operation that changes the key (a write; not a cache's own set or
    /// invalidate).
    #[inline(always)]
    pub const fn is_write(self) -> bool {
        matches!(self, Op::Write)
    }

    /// The default operation of a request class named `class`: `read` and `write` are
    /// those operations, any other name none.
    pub fn of_class_name(class: &str) -> Op {
        match class {
            "read" => Op::Read,
            "write" => Op::Write,
            _ => Op::Unset,
        }
    }
}

/// An operation as written in a model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpSpec {
    /// A read.
    Read,
    /// A write.
    Write,
    /// Drop the key from a cache (cache-aside, after a write).
    Invalidate,
    /// Put the key in a cache (cache-aside, after a miss was read from the database).
    Set,
}

impl OpSpec {
    /// Its name in model files.
    pub const fn name(self) -> &'static str {
        match self {
            OpSpec::Read => "read",
            OpSpec::Write => "write",
            OpSpec::Invalidate => "invalidate",
            OpSpec::Set => "set",
        }
    }

    /// The operation it names.
    pub const fn op(self) -> Op {
        match self {
            OpSpec::Read => Op::Read,
            OpSpec::Write => Op::Write,
            OpSpec::Invalidate => Op::Invalidate,
            OpSpec::Set => Op::Set,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_zero_is_unset() {
        for op in [Op::Unset, Op::Read, Op::Write, Op::Invalidate, Op::Set] {
            assert_eq!(Op::of(op.code()), op);
        }
        assert_eq!(Op::of(0), Op::Unset);
        assert_eq!(Op::of(200), Op::Unset);
    }

    #[test]
    fn classes_named_read_and_write_are_those_ops() {
        assert_eq!(Op::of_class_name("read"), Op::Read);
        assert_eq!(Op::of_class_name("write"), Op::Write);
        assert_eq!(Op::of_class_name("checkout"), Op::Unset);
        assert!(Op::Write.is_write() && !Op::Set.is_write());
    }
}

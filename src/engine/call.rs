//! Calls and requests: the units of work that move between components.
//!
//! A *request* is what a client sends: it has a class, a key and a start time. A *call* is
//! one hop of a request: the client's call to the first component, or a component's call to
//! another. Calls form a tree; each knows its parent, so a reply finds its way back. Both
//! live in slabs that reuse their slots, so a run allocates nothing per request once warm.

use super::event::{CallId, InstanceId, RequestId};
use crate::metrics::ErrorCause;
use crate::time::SimTime;

/// The parent instance of a call made by a client.
pub const CLIENT: InstanceId = InstanceId::MAX;

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Not finished yet.
    #[default]
    Pending,
    /// Done successfully.
    Ok,
    /// Failed.
    Failed(ErrorCause),
}

/// One hop of a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Call {
    /// The request this call serves: the id of the request's first call.
    pub request: RequestId,
    /// Request class (index into the model's class table).
    pub class: u16,
    /// The key the request is about.
    pub key: u64,
    /// Operation asked of the callee (component-defined; 0 is the default).
    pub op: u8,
    /// Instance that made the call, or [`CLIENT`].
    pub parent: InstanceId,
    /// The parent's call, when the parent is an instance.
    pub parent_call: CallId,
    /// Generation of the parent call when this call was made.
    pub parent_generation: u32,
    /// The parent's round when this call was made (see [`Call::round`]).
    pub parent_round: u16,
    /// Bumped each time this call starts waiting on a new set of children, so a reply
    /// from an abandoned child (an "any" fan-out) is recognised and dropped.
    pub round: u16,
    /// Program counter in the handler of the component processing the call.
    pub step: u16,
    /// Children still out.
    pub pending: u16,
    /// Successful children needed to go on.
    pub needed: u16,
    /// Successful children so far in this round.
    pub succeeded: u16,
    /// Instance processing the call.
    pub instance: InstanceId,
    /// When the call joined its current queue.
    pub enqueued_at: SimTime,
    /// How it ended.
    pub outcome: Outcome,
    /// What the callee tells its caller beyond the outcome (set before it replies): whether
    /// it held the key. Component-defined; a handler can branch on it.
    pub found: Found,
    /// The version of the key the callee read or wrote (component-defined; 0 for none).
    pub version: u32,
    /// The network zone the call is being worked on in: its instance's, or the zone it was
    /// sent from when that instance has none (0: no zone; only set in a model with a
    /// network).
    pub zone: u16,
    /// Slot generation: bumped when the slot is freed.
    pub generation: u32,
}

/// Whether the callee of a call held the key it was asked about (a cache's hit or miss).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Found {
    /// The callee does not say (it holds no keys).
    #[default]
    Unknown,
    /// It held the key.
    Hit,
    /// It did not.
    Miss,
}

/// What a client request adds to its first call (the request's class and key are the
/// call's). A request lives exactly as long as its first call, so it is stored under that
/// call's id: [`RequestId`] is the id of the request's first call, and the call slot's
/// generation tells a live request from a finished one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request {
    /// The source (workload) that sent it.
    pub source: u32,
    /// Closed-loop user that sent it.
    pub user: u32,
    /// Creation time.
    pub created: SimTime,
    /// Whether the client still waits for its answer, and with a timeout or not.
    pub client: ClientWait,
    /// Its client is told of the answer at once (see
    /// [`NewRequest::acts_on_answer`](super::NewRequest::acts_on_answer)).
    pub acts_on_answer: bool,
}

/// Where the client of a request stands. One value rather than two flags, so that the end
/// of a request without a timeout costs a single test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientWait {
    /// Waiting for the answer, with no client timeout.
    #[default]
    Waiting,
    /// Waiting, and a client timeout event is scheduled for it.
    WaitingWithTimeout,
    /// The client has its answer (a response, or its own timeout).
    Answered,
}

/// Something that lives in a [`Slab`] and has a generation.
pub trait Slot: Default + Copy {
    /// The slot's generation.
    fn generation(&self) -> u32;
    /// Sets the slot's generation.
    fn set_generation(&mut self, g: u32);
}

impl Call {
    /// Stores a number for the component processing the call, kept in the fan-out
    /// counters (`needed`, `succeeded`): for a component that makes one child call at a
    /// time and needs to know, when its answer comes back, where it sent it (a balancer's
    /// backend: a tail call further on changes the child's `instance`).
    #[inline(always)]
    pub fn set_memo(&mut self, value: u32) {
        self.needed = (value >> 16) as u16;
        self.succeeded = value as u16;
    }

    /// The number stored by [`Call::set_memo`].
    #[inline(always)]
    pub fn memo(&self) -> u32 {
        (u32::from(self.needed) << 16) | u32::from(self.succeeded)
    }
}

impl Slot for Call {
    fn generation(&self) -> u32 {
        self.generation
    }
    fn set_generation(&mut self, g: u32) {
        self.generation = g;
    }
}

/// A call fits one cache line (the slab is walked once per hop).
const _: () = assert!(std::mem::size_of::<Call>() <= 64);

/// A vector of reusable slots with a free list.
#[derive(Debug, Default)]
pub struct Slab<T: Slot> {
    items: Vec<T>,
    free: Vec<u32>,
    live: usize,
}

impl<T: Slot> Slab<T> {
    /// An empty slab.
    pub fn new() -> Self {
        Slab {
            items: Vec::with_capacity(1024),
            free: Vec::with_capacity(1024),
            live: 0,
        }
    }
    /// Stores `value` in a free slot, keeping that slot's generation.
    #[inline(always)]
    pub fn insert(&mut self, mut value: T) -> u32 {
        self.live += 1;
        if let Some(id) = self.free.pop() {
            let slot = &mut self.items[id as usize];
            value.set_generation(slot.generation());
            *slot = value;
            id
        } else {
            value.set_generation(0);
            self.items.push(value);
            (self.items.len() - 1) as u32
        }
    }
    /// Stores the value `make` builds from the id of the slot it goes to.
    #[inline(always)]
    pub fn insert_with(&mut self, make: impl FnOnce(u32) -> T) -> u32 {
        let id = match self.free.last() {
            Some(&id) => id,
            None => self.items.len() as u32,
        };
        self.insert(make(id))
    }
    /// Frees slot `id`; its generation moves on so stale references are detected.
    #[inline(always)]
    pub fn remove(&mut self, id: u32) {
        let slot = &mut self.items[id as usize];
        slot.set_generation(slot.generation().wrapping_add(1));
        self.free.push(id);
        self.live -= 1;
    }
    /// The value in slot `id`.
    #[inline(always)]
    pub fn get(&self, id: u32) -> &T {
        &self.items[id as usize]
    }
    /// The value in slot `id`, mutably.
    #[inline(always)]
    pub fn get_mut(&mut self, id: u32) -> &mut T {
        &mut self.items[id as usize]
    }
    /// True if slot `id` holds a value of generation `generation`.
    #[inline(always)]
    pub fn is_live(&self, id: u32, generation: u32) -> bool {
        self.items[id as usize].generation() == generation
    }
    /// Which slots hold a value (computed from the free list; for end-of-run checks).
    pub fn live_map(&self) -> Vec<bool> {
        let mut live = vec![true; self.items.len()];
        for id in &self.free {
            live[*id as usize] = false;
        }
        live
    }
    /// Number of slots ever used (occupied or free).
    pub fn capacity(&self) -> usize {
        self.items.len()
    }
    /// Number of occupied slots.
    pub fn live(&self) -> usize {
        self.live
    }
}

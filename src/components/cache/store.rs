//! The keys a cache instance holds: a fixed number of entries, an eviction policy and an
//! optional time to live, with every operation O(1) (amortized for expiry).
//!
//! Entries live in a slab of slots linked by index (no pointer, no allocation per
//! operation once the slab has grown to the capacity), found by key through a `KeyTable`:
//! an open-addressed table of (key, slot) pairs stored inline, so that a lookup costs one
//! cache miss (a general hash map reads its control bytes, then the bucket). The policies
//! keep their order in those links:
//!
//! - **LRU**: one list, least recently used at the head; a hit moves the entry to the tail.
//! - **FIFO**: one list in insertion order; a hit changes nothing.
//! - **random**: no order; the victim is a slot drawn uniformly (eviction happens only
//!   when every slot is taken, so every slot holds an entry).
//! - **LFU** (in-cache): entries grouped by use count in a list of count buckets (the
//!   O(1) scheme of Shah, Mitra & Matani, 2010); a new entry counts 1, a hit adds 1, the
//!   victim is the least recently used entry of the lowest count. Counts are forgotten on
//!   eviction, unlike the "perfect" LFU of the literature, which counts every key ever seen.
//! - **SLRU** (segmented LRU, Karedla, Love & Wherry 1994): a probation and a protected
//!   LRU list. A new entry goes to probation; a hit there promotes it to protected, whose
//!   least recently used entry drops back to probation when protected is over its share of
//!   the capacity. The victim is probation's least recently used entry (protected's when
//!   probation is empty), so a scan of keys used once cannot flush the protected ones.
//!
//! With a time to live, entries are also linked in expiry order. The TTL is the same for
//! every entry, so insertion order is expiry order (and with `refresh`, a hit moves the
//! entry to the end): expired entries are always at the head of that list and are removed
//! before each operation, at the cost of one comparison when none has expired.

use crate::random::Rng;
use rand::RngExt;

/// "No slot": the end of a list.
pub const NIL: u32 = u32::MAX;

/// The dirty flag (a write-back write not yet flushed), in the top bit of `aux`.
const DIRTY: u32 = 1 << 31;

/// How a full cache chooses the entry to drop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Eviction {
    /// Least recently used.
    Lru,
    /// Least frequently used among the entries held (ties: least recently used).
    Lfu,
    /// First in, first out.
    Fifo,
    /// Uniformly at random.
    Random,
    /// Segmented LRU with `protected` entries at most in the protected segment.
    Slru {
        /// Capacity of the protected segment.
        protected: u32,
    },
}

/// One cached key.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: u64,
    /// Neighbours in the entry's policy list (LRU, FIFO, SLRU segment, LFU bucket).
    prev: u32,
    next: u32,
    /// Version of the value held.
    version: u32,
    /// LFU: the entry's count bucket; SLRU: the segment (0 probation, 1 protected). The top
    /// bit is the dirty flag.
    aux: u32,
}

/// An entry's place in the expiry order.
#[derive(Debug, Clone, Copy)]
struct Expiry {
    at: u64,
    prev: u32,
    next: u32,
}

/// A count bucket of the LFU policy: the entries used `count` times, least recent first.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    count: u32,
    head: u32,
    tail: u32,
    /// Neighbouring buckets, by increasing count.
    prev: u32,
    next: u32,
}

/// Ends of a doubly linked list of entries.
#[derive(Debug, Clone, Copy)]
struct Ends {
    head: u32,
    tail: u32,
    len: u32,
}

impl Ends {
    const EMPTY: Ends = Ends {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

/// An entry that left the store (evicted, expired or invalidated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// Its key.
    pub key: u64,
    /// The version it held.
    pub version: u32,
    /// It held a write not yet flushed to the backend.
    pub dirty: bool,
    /// When it expired (for an expiry; 0 otherwise).
    pub expired_at: u64,
}

/// The entries of one cache instance.
#[derive(Debug)]
pub struct Store {
    eviction: Eviction,
    capacity: u32,
    map: KeyTable,
    entries: Vec<Entry>,
    /// Free slots (left by invalidations and expiries), linked through `Entry::next`.
    free: u32,
    live: u32,
    /// LRU and FIFO: list 0; SLRU: 0 probation, 1 protected.
    lists: [Ends; 2],
    /// LFU count buckets, with their free list (through `Bucket::next`) and the lowest.
    buckets: Vec<Bucket>,
    free_bucket: u32,
    lowest: u32,
    /// Time to live in ns (0: none), refreshed by hits or not.
    ttl: u64,
    refresh: bool,
    expiry: Vec<Expiry>,
    expiry_ends: Ends,
    /// The slot [`Store::prefetch`] found for its `keys[1]`, which is the next call's
    /// `keys[0]` (`NIL`: not held): that call reads its entry without looking it up again.
    prefetched_slot: std::cell::Cell<u32>,
}

impl Store {
    /// An empty store of `capacity` (at least 1) entries. `ttl_ns` 0 means no time to
    /// live; with `refresh` a hit restarts the entry's time to live.
    pub fn new(capacity: u32, eviction: Eviction, ttl_ns: u64, refresh: bool) -> Self {
        assert!(capacity > 0, "a cache holds at least one key");
        Store {
            eviction,
            capacity,
            map: KeyTable::new(capacity),
            entries: Vec::new(),
            free: NIL,
            live: 0,
            lists: [Ends::EMPTY; 2],
            buckets: Vec::new(),
            free_bucket: NIL,
            lowest: NIL,
            ttl: ttl_ns,
            refresh,
            expiry: Vec::new(),
            expiry_ends: Ends::EMPTY,
            prefetched_slot: std::cell::Cell::new(NIL),
        }
    }

    /// Warms the memory the next reads will touch, for the keys of the calls to come, in
    /// the order they will come (the first a request from now). Each is one step further
    /// down a pipeline, so that each step reads only lines an earlier call brought in:
    /// the key index cell of `keys[2]`, the entry of `keys[1]` (through its cell, warmed
    /// by the previous call) and, for LRU, the list neighbours of `keys[0]` (through its
    /// entry, likewise) that moving it to the tail will write; the slot of `keys[0]` is
    /// the one the previous call found for its `keys[1]`. A hint: it changes nothing, and
    /// a key that is not held, a slot reused since, or a neighbour that changes before the
    /// read, only wastes the fetch.
    #[inline]
    pub fn prefetch(&self, keys: &[u64; 3]) {
        prefetch_line(&self.map.cells[self.map.home(keys[2])]);
        let next = self.map.guess(keys[1]).unwrap_or(NIL);
        let slot = self.prefetched_slot.replace(next);
        if let Some(e) = self.entries.get(next as usize) {
            prefetch_line(e);
        }
        if self.eviction == Eviction::Lru
            && let Some(&e) = self.entries.get(slot as usize)
        {
            for n in [e.prev, e.next] {
                if let Some(neighbour) = self.entries.get(n as usize) {
                    prefetch_line(neighbour);
                }
            }
        }
    }

    /// Warms the key index cells `key` will be looked up in (a hint: changes nothing).
    #[inline]
    pub fn prefetch_key(&self, key: u64) {
        self.map.prefetch_run(key);
    }

    /// Keys held.
    #[inline]
    pub fn len(&self) -> u32 {
        self.live
    }

    /// True when it holds no key.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Capacity in keys.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The slot holding `key`, without counting a use.
    #[inline]
    pub fn slot_of(&self, key: u64) -> Option<u32> {
        self.map.get(key, self.key_of())
    }

    /// The key held in a slot, for the key index.
    #[inline(always)]
    fn key_of(&self) -> impl Fn(u32) -> u64 + '_ {
        |slot| self.entries[slot as usize].key
    }

    /// Makes room in the key index for `n` keys at once (a warm start filling the store).
    pub fn reserve(&mut self, n: u32) {
        self.map.reserve(n as usize);
        if self.entries.is_empty() {
            self.entries = Vec::with_capacity(n as usize);
            advise_huge_pages(&mut self.entries);
        }
    }

    /// True if `key` is held.
    pub fn contains(&self, key: u64) -> bool {
        self.map.get(key, self.key_of()).is_some()
    }

    /// A read of `key`: its slot and version when held (a hit, which counts as a use),
    /// `None` otherwise. Expired entries must have been removed first ([`Store::expire`]).
    #[inline(always)]
    pub fn get(&mut self, key: u64, now: u64) -> Option<(u32, u32)> {
        let slot = self.map.get(key, self.key_of())?;
        self.touch(slot);
        if self.refresh && self.ttl > 0 {
            self.requeue_expiry(slot, now);
        }
        Some((slot, self.entries[slot as usize].version))
    }

    /// Puts `key` with `version`: a new entry (the victim it displaced, if the store was
    /// full, is returned), or an update of the held one, which counts as a use and restarts
    /// its time to live. Returns the slot and the entry that left, if any.
    pub fn put(
        &mut self,
        key: u64,
        version: u32,
        now: u64,
        rng: &mut Rng,
    ) -> (u32, Option<Removed>) {
        // One probe: the key's slot, or the empty cell where it goes.
        let at = match self.map.find(key, self.key_of()) {
            Ok(slot) => {
                self.entries[slot as usize].version = version;
                self.touch(slot);
                if self.ttl > 0 {
                    self.requeue_expiry(slot, now);
                }
                return (slot, None);
            }
            Err(at) => at,
        };
        let victim = if self.live == self.capacity {
            Some(self.evict(rng))
        } else {
            None
        };
        let slot = self.take_slot();
        self.entries[slot as usize] = Entry {
            key,
            prev: NIL,
            next: NIL,
            version,
            aux: 0,
        };
        let entries = &self.entries;
        let key_of = |slot: u32| entries[slot as usize].key;
        if victim.is_some() {
            // The victim's removal may have moved the cells after `at`: look again.
            self.map.insert(key, slot, key_of);
        } else {
            self.map.insert_at(at, key, slot, key_of);
        }
        self.live += 1;
        self.admit(slot);
        if self.ttl > 0 {
            self.expiry[slot as usize].at = now + self.ttl;
            self.push_expiry(slot);
        }
        (slot, victim)
    }

    /// Drops `key` (an invalidation). Returns what it held, if it was there.
    pub fn remove(&mut self, key: u64) -> Option<Removed> {
        let slot = self.map.get(key, self.key_of())?;
        self.map.remove(key, slot);
        Some(self.release(slot, 0))
    }

    /// The next entry whose time to live has run out at `now`, removed; `None` when none
    /// has. Call until `None` before an operation.
    #[inline]
    pub fn expire(&mut self, now: u64) -> Option<Removed> {
        let head = self.expiry_ends.head;
        if head == NIL || self.expiry[head as usize].at > now {
            return None;
        }
        self.expire_head()
    }

    #[cold]
    fn expire_head(&mut self) -> Option<Removed> {
        let head = self.expiry_ends.head;
        let at = self.expiry[head as usize].at;
        let key = self.entries[head as usize].key;
        self.map.remove(key, head);
        Some(self.release(head, at))
    }

    /// Expiry times of the held entries that have run out at `now` (not yet removed), in
    /// order: for reports taken between operations.
    pub fn expired_by(&self, now: u64) -> impl Iterator<Item = u64> + '_ {
        let mut at = self.expiry_ends.head;
        std::iter::from_fn(move || {
            if at == NIL || self.expiry[at as usize].at > now {
                return None;
            }
            let e = self.expiry[at as usize];
            at = e.next;
            Some(e.at)
        })
    }

    /// Marks the entry in `slot` dirty (written, not yet flushed) or clean. Returns whether
    /// it was dirty before.
    #[inline]
    pub fn set_dirty(&mut self, slot: u32, dirty: bool) -> bool {
        let aux = &mut self.entries[slot as usize].aux;
        let was = *aux & DIRTY != 0;
        if dirty {
            *aux |= DIRTY;
        } else {
            *aux &= !DIRTY;
        }
        was
    }

    /// The key, version and dirty flag of the entry in `slot`, if `slot` holds `key`.
    pub fn entry_of(&self, slot: u32, key: u64) -> Option<(u32, bool)> {
        let e = self.entries.get(slot as usize)?;
        (e.key == key && self.map.get(key, self.key_of()) == Some(slot))
            .then_some((e.version, e.aux & DIRTY != 0))
    }

    /// Bytes of memory the store holds (its slab, links and hash table), whatever it uses
    /// of them.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.entries.capacity() * size_of::<Entry>()
            + self.expiry.capacity() * size_of::<Expiry>()
            + self.buckets.capacity() * size_of::<Bucket>()
            + self.map.heap_bytes()
    }

    // ---- slots ----

    fn take_slot(&mut self) -> u32 {
        if self.free != NIL {
            let slot = self.free;
            self.free = self.entries[slot as usize].next;
            return slot;
        }
        let slot = self.entries.len() as u32;
        self.entries.push(Entry {
            key: 0,
            prev: NIL,
            next: NIL,
            version: 0,
            aux: 0,
        });
        if self.ttl > 0 {
            self.expiry.push(Expiry {
                at: 0,
                prev: NIL,
                next: NIL,
            });
        }
        slot
    }

    /// Unlinks the entry in `slot` (already out of the map) and frees the slot.
    fn release(&mut self, slot: u32, expired_at: u64) -> Removed {
        let e = self.entries[slot as usize];
        self.unlink_policy(slot);
        if self.ttl > 0 {
            self.unlink_expiry(slot);
        }
        self.live -= 1;
        self.entries[slot as usize].next = self.free;
        self.free = slot;
        Removed {
            key: e.key,
            version: e.version,
            dirty: e.aux & DIRTY != 0,
            expired_at,
        }
    }

    /// Removes the policy's victim (the store is full).
    fn evict(&mut self, rng: &mut Rng) -> Removed {
        let slot = match self.eviction {
            Eviction::Lru | Eviction::Fifo => self.lists[0].head,
            Eviction::Slru { .. } => {
                if self.lists[0].len > 0 {
                    self.lists[0].head
                } else {
                    self.lists[1].head
                }
            }
            Eviction::Random => rng.random_range(0..self.live),
            Eviction::Lfu => self.buckets[self.lowest as usize].head,
        };
        debug_assert_ne!(slot, NIL, "a full store has a victim");
        let key = self.entries[slot as usize].key;
        self.map.remove(key, slot);
        let removed = self.release(slot, 0);
        self.prefetch_next_victim();
        removed
    }

    /// LRU and FIFO: warms the key index cell of the next victim (the new head of the
    /// list, whose entry unlinking the victim just wrote) and the entry after it, so the
    /// next eviction finds both in cache: on a large store they are far apart in memory and
    /// cold.
    #[inline]
    fn prefetch_next_victim(&self) {
        if !matches!(self.eviction, Eviction::Lru | Eviction::Fifo) {
            return;
        }
        if let Some(head) = self.entries.get(self.lists[0].head as usize) {
            self.map.prefetch_run(head.key);
            if let Some(next) = self.entries.get(head.next as usize) {
                prefetch_line(next);
            }
        }
    }

    // ---- policy order ----

    /// Places a new entry in the policy's order.
    fn admit(&mut self, slot: u32) {
        match self.eviction {
            Eviction::Lru | Eviction::Fifo => self.push_list(0, slot),
            Eviction::Slru { .. } => {
                self.set_segment(slot, 0);
                self.push_list(0, slot);
            }
            Eviction::Random => {}
            Eviction::Lfu => {
                let b = if self.lowest != NIL && self.buckets[self.lowest as usize].count == 1 {
                    self.lowest
                } else {
                    self.new_bucket(1, NIL, self.lowest)
                };
                self.push_bucket(b, slot);
            }
        }
    }

    /// A use of the entry in `slot`.
    #[inline]
    fn touch(&mut self, slot: u32) {
        match self.eviction {
            Eviction::Lru => {
                if self.lists[0].tail != slot {
                    self.unlink_list(0, slot);
                    self.push_list(0, slot);
                }
            }
            Eviction::Fifo | Eviction::Random => {}
            Eviction::Slru { protected } => self.touch_slru(slot, protected),
            Eviction::Lfu => self.touch_lfu(slot),
        }
    }

    fn touch_slru(&mut self, slot: u32, protected: u32) {
        let segment = self.entries[slot as usize].aux & 1;
        if segment == 1 {
            if self.lists[1].tail != slot {
                self.unlink_list(1, slot);
                self.push_list(1, slot);
            }
            return;
        }
        if protected == 0 {
            // No protected segment: probation alone is an LRU list.
            self.unlink_list(0, slot);
            self.push_list(0, slot);
            return;
        }
        self.unlink_list(0, slot);
        self.set_segment(slot, 1);
        self.push_list(1, slot);
        if self.lists[1].len > protected {
            let demoted = self.lists[1].head;
            self.unlink_list(1, demoted);
            self.set_segment(demoted, 0);
            self.push_list(0, demoted);
        }
    }

    fn touch_lfu(&mut self, slot: u32) {
        let b = self.entries[slot as usize].aux & !DIRTY;
        let bucket = self.buckets[b as usize];
        let count = bucket.count.saturating_add(1);
        let next = bucket.next;
        let to = if next != NIL && self.buckets[next as usize].count == count {
            next
        } else if bucket.head == slot && bucket.tail == slot {
            // Alone in its bucket: the bucket itself moves up one count.
            self.buckets[b as usize].count = count;
            return;
        } else {
            self.new_bucket(count, b, next)
        };
        self.unlink_bucket(b, slot);
        self.push_bucket(to, slot);
    }

    fn unlink_policy(&mut self, slot: u32) {
        match self.eviction {
            Eviction::Lru | Eviction::Fifo => self.unlink_list(0, slot),
            Eviction::Slru { .. } => {
                let segment = (self.entries[slot as usize].aux & 1) as usize;
                self.unlink_list(segment, slot);
            }
            Eviction::Random => {}
            Eviction::Lfu => {
                let b = self.entries[slot as usize].aux & !DIRTY;
                self.unlink_bucket(b, slot);
            }
        }
    }

    fn set_segment(&mut self, slot: u32, segment: u32) {
        let aux = &mut self.entries[slot as usize].aux;
        *aux = (*aux & DIRTY) | segment;
    }

    // ---- lists of entries ----

    fn push_list(&mut self, list: usize, slot: u32) {
        let ends = self.lists[list];
        let mut ends = link_tail(&mut self.entries, ends, slot);
        ends.len += 1;
        self.lists[list] = ends;
    }

    fn unlink_list(&mut self, list: usize, slot: u32) {
        let mut ends = unlink(&mut self.entries, self.lists[list], slot);
        ends.len -= 1;
        self.lists[list] = ends;
    }

    // ---- LFU buckets ----

    /// A new empty bucket of `count` between buckets `prev` and `next` (either NIL).
    fn new_bucket(&mut self, count: u32, prev: u32, next: u32) -> u32 {
        let bucket = Bucket {
            count,
            head: NIL,
            tail: NIL,
            prev,
            next,
        };
        let b = if self.free_bucket != NIL {
            let b = self.free_bucket;
            self.free_bucket = self.buckets[b as usize].next;
            self.buckets[b as usize] = bucket;
            b
        } else {
            self.buckets.push(bucket);
            (self.buckets.len() - 1) as u32
        };
        if prev != NIL {
            self.buckets[prev as usize].next = b;
        } else {
            self.lowest = b;
        }
        if next != NIL {
            self.buckets[next as usize].prev = b;
        }
        b
    }

    fn push_bucket(&mut self, b: u32, slot: u32) {
        let bk = self.buckets[b as usize];
        let ends = link_tail(
            &mut self.entries,
            Ends {
                head: bk.head,
                tail: bk.tail,
                len: 0,
            },
            slot,
        );
        let aux = &mut self.entries[slot as usize].aux;
        *aux = (*aux & DIRTY) | b;
        let bk = &mut self.buckets[b as usize];
        bk.head = ends.head;
        bk.tail = ends.tail;
    }

    /// Takes `slot` out of bucket `b`, freeing the bucket when it empties.
    fn unlink_bucket(&mut self, b: u32, slot: u32) {
        let bk = self.buckets[b as usize];
        let ends = unlink(
            &mut self.entries,
            Ends {
                head: bk.head,
                tail: bk.tail,
                len: 0,
            },
            slot,
        );
        if ends.head != NIL {
            let bk = &mut self.buckets[b as usize];
            bk.head = ends.head;
            bk.tail = ends.tail;
            return;
        }
        if bk.prev != NIL {
            self.buckets[bk.prev as usize].next = bk.next;
        } else {
            self.lowest = bk.next;
        }
        if bk.next != NIL {
            self.buckets[bk.next as usize].prev = bk.prev;
        }
        self.buckets[b as usize].next = self.free_bucket;
        self.free_bucket = b;
    }

    // ---- expiry order ----

    fn push_expiry(&mut self, slot: u32) {
        let ends = self.expiry_ends;
        let x = &mut self.expiry;
        x[slot as usize].prev = ends.tail;
        x[slot as usize].next = NIL;
        if ends.tail != NIL {
            x[ends.tail as usize].next = slot;
        }
        self.expiry_ends.tail = slot;
        if ends.head == NIL {
            self.expiry_ends.head = slot;
        }
    }

    fn unlink_expiry(&mut self, slot: u32) {
        let Expiry { prev, next, .. } = self.expiry[slot as usize];
        if prev != NIL {
            self.expiry[prev as usize].next = next;
        } else {
            self.expiry_ends.head = next;
        }
        if next != NIL {
            self.expiry[next as usize].prev = prev;
        } else {
            self.expiry_ends.tail = prev;
        }
    }

    /// The entry in `slot` expires `ttl` from `now`: it moves to the end of the order.
    fn requeue_expiry(&mut self, slot: u32, now: u64) {
        self.unlink_expiry(slot);
        self.expiry[slot as usize].at = now + self.ttl;
        self.push_expiry(slot);
    }
}

/// Links `slot` at the tail of the list `ends` of `entries`; returns the new ends.
#[inline]
fn link_tail(entries: &mut [Entry], mut ends: Ends, slot: u32) -> Ends {
    entries[slot as usize].prev = ends.tail;
    entries[slot as usize].next = NIL;
    if ends.tail != NIL {
        entries[ends.tail as usize].next = slot;
    } else {
        ends.head = slot;
    }
    ends.tail = slot;
    ends
}

/// Unlinks `slot` from the list `ends` of `entries`; returns the new ends.
#[inline]
fn unlink(entries: &mut [Entry], mut ends: Ends, slot: u32) -> Ends {
    let Entry { prev, next, .. } = entries[slot as usize];
    if prev != NIL {
        entries[prev as usize].next = next;
    } else {
        ends.head = next;
    }
    if next != NIL {
        entries[next as usize].prev = prev;
    } else {
        ends.tail = prev;
    }
    ends
}

/// A cell of a [`KeyTable`]: a slot, `NIL` when the cell is empty, and the top half of its
/// key's hash (the key itself is the slot's entry's).
#[derive(Debug, Clone, Copy)]
struct Cell {
    tag: u32,
    slot: u32,
}

const EMPTY: Cell = Cell { tag: 0, slot: NIL };

/// The key → slot index of a [`Store`]: an open-addressed hash table of 8-byte cells (eight
/// to a cache line), a power-of-two number of cells at most half full, linear probing and
/// backward-shift deletion (no tombstones). A cell holds the slot and the top 32 bits of the
/// key's Fibonacci hash (its tag): the key's home cell is the top bits of that hash, so a
/// cell's home is known from its tag alone (a table has at most 2^31 cells), and a lookup
/// compares tags, reading a slot's entry only to confirm a match, which a hit reads anyway.
/// It grows by doubling, so it ends at the smallest power of two at least twice the keys held
/// (at most 4 cells, 32 bytes, per key of capacity; 16 bytes for a capacity of 10^6).
///
/// A lookup takes `key_of`, the key held in a slot (the store's entries').
#[derive(Debug)]
struct KeyTable {
    cells: Vec<Cell>,
    /// `cells.len() - 1`.
    mask: usize,
    /// 64 − log2(cells): the home of a key is the top bits of its Fibonacci hash.
    shift: u32,
    len: usize,
    /// Cells it never grows beyond: the first power of two at least twice the capacity.
    max_cells: usize,
}

/// The Fibonacci hash of `key`.
#[inline(always)]
fn hash(key: u64) -> u64 {
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The tag of `key`: the top half of its hash.
#[inline(always)]
fn tag_of(key: u64) -> u32 {
    (hash(key) >> 32) as u32
}

impl KeyTable {
    /// Cells of a new table; it grows from there.
    const FIRST: usize = 16;

    fn new(capacity: u32) -> Self {
        let max_cells = (2 * capacity as usize).next_power_of_two().max(Self::FIRST);
        assert!(
            max_cells <= 1 << 31,
            "a key table's homes come from 32-bit tags"
        );
        let mut t = KeyTable {
            cells: Vec::new(),
            mask: 0,
            shift: 0,
            len: 0,
            max_cells,
        };
        t.resize(Self::FIRST);
        t
    }

    /// The home cell of `key`.
    #[inline(always)]
    fn home(&self, key: u64) -> usize {
        (hash(key) >> self.shift) as usize
    }

    /// The home cell of a key with tag `tag` (the same as [`KeyTable::home`]: the shift is
    /// at least 33).
    #[inline(always)]
    fn home_of_tag(&self, tag: u32) -> usize {
        (tag >> (self.shift - 32)) as usize
    }

    /// `key`'s slot, or the index of the empty cell that ends its probe (where it would go).
    #[inline(always)]
    fn find(&self, key: u64, key_of: impl Fn(u32) -> u64) -> Result<u32, usize> {
        let tag = tag_of(key);
        let mut i = self.home(key);
        loop {
            let c = self.cells[i];
            if c.slot == NIL {
                return Err(i);
            }
            if c.tag == tag && key_of(c.slot) == key {
                return Ok(c.slot);
            }
            i = (i + 1) & self.mask;
        }
    }

    #[inline(always)]
    fn get(&self, key: u64, key_of: impl Fn(u32) -> u64) -> Option<u32> {
        self.find(key, key_of).ok()
    }

    /// The slot of the first cell on `key`'s probe with its tag: `key`'s slot when held
    /// (another key shares its tag once in 2^32), without reading an entry. A hint.
    #[inline]
    fn guess(&self, key: u64) -> Option<u32> {
        let tag = tag_of(key);
        let mut i = self.home(key);
        loop {
            let c = self.cells[i];
            if c.slot == NIL {
                return None;
            }
            if c.tag == tag {
                return Some(c.slot);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Warms the cells from `key`'s home to three after it (one cache line, or the end of
    /// one and the start of the next): where a removal of `key` shifts the cells that
    /// follow it back, the run it reads usually ends within them.
    #[inline(always)]
    fn prefetch_run(&self, key: u64) {
        let home = self.home(key);
        prefetch_line(&self.cells[home]);
        prefetch_line(&self.cells[(home + 3) & self.mask]);
    }

    /// Puts `key` (absent) with `slot` in the empty cell `at` that [`KeyTable::find`]
    /// returned, unless the table has changed since.
    #[inline]
    fn insert_at(&mut self, at: usize, key: u64, slot: u32, key_of: impl Fn(u32) -> u64) {
        if 2 * (self.len + 1) > self.cells.len() && self.cells.len() < self.max_cells {
            self.resize(self.cells.len() * 2);
            return self.insert(key, slot, key_of);
        }
        debug_assert_eq!(self.cells[at].slot, NIL);
        self.cells[at] = Cell {
            tag: tag_of(key),
            slot,
        };
        self.len += 1;
    }

    /// Puts `key` (absent) with `slot`.
    fn insert(&mut self, key: u64, slot: u32, key_of: impl Fn(u32) -> u64) {
        match self.find(key, &key_of) {
            Ok(_) => unreachable!("key already in the table"),
            Err(at) => self.insert_at(at, key, slot, key_of),
        }
    }

    /// Takes out `key`, held in `slot`.
    #[inline]
    fn remove(&mut self, key: u64, slot: u32) {
        let mut i = self.home(key);
        while self.cells[i].slot != slot {
            debug_assert_ne!(self.cells[i].slot, NIL, "the key is held");
            i = (i + 1) & self.mask;
        }
        self.len -= 1;
        // Backward shift: pull back each following cell of the run that may sit at the hole
        // (its home is not between the hole and itself), until an empty cell.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let c = self.cells[j];
            if c.slot == NIL {
                break;
            }
            let home = self.home_of_tag(c.tag);
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.cells[hole] = c;
                hole = j;
            }
        }
        self.cells[hole] = EMPTY;
    }

    /// Rebuilds the table with `n` cells (a power of two).
    fn resize(&mut self, n: usize) {
        let mut cells = Vec::with_capacity(n);
        advise_huge_pages(&mut cells);
        cells.resize(n, EMPTY);
        let old = std::mem::replace(&mut self.cells, cells);
        self.mask = n - 1;
        self.shift = 64 - n.trailing_zeros();
        for c in old.into_iter().filter(|c| c.slot != NIL) {
            let mut i = self.home_of_tag(c.tag);
            while self.cells[i].slot != NIL {
                i = (i + 1) & self.mask;
            }
            self.cells[i] = c;
        }
    }

    /// Grows the table at once to hold `n` keys (a warm start), instead of doubling on the
    /// way.
    fn reserve(&mut self, n: usize) {
        let want = (2 * n).next_power_of_two().min(self.max_cells);
        if want > self.cells.len() {
            self.resize(want);
        }
    }

    fn heap_bytes(&self) -> usize {
        self.cells.capacity() * std::mem::size_of::<Cell>()
    }
}

/// Asks the processor to bring the cache line holding `value` in, without waiting for it.
#[inline(always)]
fn prefetch_line<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch is a hint that never faults and changes no memory; the
        // address comes from a reference, so it lies inside a live allocation.
        #[allow(unused_unsafe)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Asks the kernel to back the (not yet touched) capacity of `v` with huge pages (Linux
/// transparent huge pages, which this machine and most distributions enable on request):
/// the key table and slab of a large cache are read at random places, and with 4 KiB pages
/// nearly every such read also misses the TLB and walks the page tables. Only whole 2 MiB
/// pages inside the buffer are advised; small buffers and other systems are left alone, and
/// a refusal changes nothing but speed.
fn advise_huge_pages<T>(v: &mut Vec<T>) {
    const HUGE: usize = 2 << 20;
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if bytes < 4 * HUGE {
        return;
    }
    let at = v.as_mut_ptr() as usize;
    let start = at.next_multiple_of(HUGE);
    let end = (at + bytes) / HUGE * HUGE;
    if end > start {
        advise(start, end - start);
    }
}

#[cfg(target_os = "linux")]
fn advise(start: usize, len: usize) {
    // SAFETY: [start, start + len) lies inside an allocation the caller's vector owns;
    // MADV_HUGEPAGE changes only how the kernel backs those pages, never their contents or
    // validity, and its result (an error on a kernel without huge pages) is ignored.
    unsafe {
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_start: usize, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random;

    fn rng() -> Rng {
        random::stream(1, "store-test")
    }

    /// Runs `trace` (a key per access: a hit, or a miss that inserts it) and returns the
    /// keys evicted, in order, with the hit flags.
    fn run(store: &mut Store, trace: &[u64]) -> (Vec<u64>, Vec<bool>) {
        let mut rng = rng();
        let mut evicted = Vec::new();
        let mut hits = Vec::new();
        for &k in trace {
            let hit = store.get(k, 0).is_some();
            hits.push(hit);
            if !hit && let (_, Some(r)) = store.put(k, 0, 0, &mut rng) {
                evicted.push(r.key);
            }
        }
        (evicted, hits)
    }

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let mut s = Store::new(3, Eviction::Lru, 0, false);
        // 1 2 3 fill; 1 hit (order 2 3 1); 4 evicts 2; 3 hit (1 4 3); 5 evicts 1; 2 evicts 4.
        let (ev, hits) = run(&mut s, &[1, 2, 3, 1, 4, 3, 5, 2]);
        assert_eq!(ev, [2, 1, 4]);
        assert_eq!(hits, [false, false, false, true, false, true, false, false]);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn fifo_evicts_in_insertion_order_whatever_the_hits() {
        let mut s = Store::new(3, Eviction::Fifo, 0, false);
        let (ev, _) = run(&mut s, &[1, 2, 3, 1, 1, 4, 5, 1]);
        // 4 evicts 1 (first in) despite its hits; 5 evicts 2; 1 comes back, evicting 3.
        assert_eq!(ev, [1, 2, 3]);
    }

    #[test]
    fn lfu_evicts_the_least_used_and_the_least_recent_among_ties() {
        let mut s = Store::new(3, Eviction::Lfu, 0, false);
        // Counts: 1→3, 2→2, 3→1; 4 evicts 3 (count 1); 5 evicts 4 (count 1, newest only one).
        let (ev, _) = run(&mut s, &[1, 1, 1, 2, 2, 3, 4, 5]);
        assert_eq!(ev, [3, 4]);
        // 2 and 5 both used... 5 is count 1, 2 count 2: 6 evicts 5.
        let (ev, _) = run(&mut s, &[6]);
        assert_eq!(ev, [5]);
        // Ties at count 2: 6 hit (count 2, more recent than 2): 7 evicts... count-1 is 7
        // itself only after insertion; before it the lowest is 2 (count 2, older than 6).
        let (ev, _) = run(&mut s, &[6, 7]);
        assert_eq!(ev, [2]);
    }

    #[test]
    fn slru_protects_entries_hit_twice_from_a_scan() {
        // Capacity 4, protected 2.
        let mut s = Store::new(4, Eviction::Slru { protected: 2 }, 0, false);
        // 1 and 2 are hit: protected. A scan of 3..8 churns probation only.
        let (ev, hits) = run(&mut s, &[1, 2, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2]);
        assert_eq!(ev, [3, 4, 5, 6]);
        assert_eq!(&hits[10..], [true, true]);
        // Promoting a third entry demotes protected's least recent (1) to probation.
        let (ev, _) = run(&mut s, &[8, 9, 10]);
        // 8 hit: protected (2, 8... order: 1 was used before 2, so 1 demoted). Probation
        // then holds 7, 1: 9 evicts 7, 10 evicts 1.
        assert_eq!(ev, [7, 1]);
    }

    #[test]
    fn random_evicts_some_held_key_and_is_reproducible() {
        let trace: Vec<u64> = (0..200).map(|i| (i * 7919) % 50).collect();
        let mut a = Store::new(10, Eviction::Random, 0, false);
        let mut b = Store::new(10, Eviction::Random, 0, false);
        let (ea, _) = run(&mut a, &trace);
        let (eb, _) = run(&mut b, &trace);
        assert_eq!(ea, eb, "same stream, same victims");
        assert_eq!(a.len(), 10);
        assert!(!ea.is_empty());
    }

    #[test]
    fn ttl_from_insertion_expires_in_order_and_a_hit_does_not_extend_it() {
        let mut s = Store::new(10, Eviction::Lru, 100, false);
        let mut r = rng();
        s.put(1, 7, 0, &mut r);
        s.put(2, 8, 50, &mut r);
        assert_eq!(s.get(1, 99), Some((0, 7)));
        assert_eq!(s.expire(99), None);
        let gone = s.expire(100).unwrap();
        assert_eq!((gone.key, gone.version, gone.expired_at), (1, 7, 100));
        assert_eq!(s.expire(149), None);
        assert_eq!(s.expired_by(200).collect::<Vec<_>>(), [150]);
        assert_eq!(s.expire(200).unwrap().key, 2);
        assert!(s.is_empty());
    }

    #[test]
    fn ttl_refreshed_by_hits_keeps_a_used_key() {
        let mut s = Store::new(10, Eviction::Fifo, 100, true);
        let mut r = rng();
        s.put(1, 0, 0, &mut r);
        s.put(2, 0, 10, &mut r);
        assert!(s.get(1, 90).is_some());
        // 2 now expires first (110), 1 at 190.
        assert_eq!(s.expire(150).unwrap().key, 2);
        assert_eq!(s.expire(150), None);
        assert_eq!(s.expire(190).unwrap().key, 1);
    }

    #[test]
    fn updates_invalidations_and_dirty_flags() {
        let mut s = Store::new(2, Eviction::Lru, 0, false);
        let mut r = rng();
        let (slot, _) = s.put(1, 1, 0, &mut r);
        assert!(!s.set_dirty(slot, true));
        assert_eq!(s.entry_of(slot, 1), Some((1, true)));
        // An update keeps the slot, changes the version and counts as a use.
        s.put(2, 1, 0, &mut r);
        assert_eq!(s.put(1, 5, 0, &mut r), (slot, None));
        let (_, ev) = s.put(3, 1, 0, &mut r);
        assert_eq!(ev.map(|e| e.key), Some(2));
        let gone = s.remove(1).unwrap();
        assert_eq!((gone.version, gone.dirty), (5, true));
        assert_eq!(s.remove(1), None);
        assert_eq!(s.len(), 1);
        // The freed slot is reused, clean.
        let (again, _) = s.put(4, 1, 0, &mut r);
        assert_eq!(again, slot);
        assert_eq!(s.entry_of(again, 4), Some((1, false)));
    }

    #[test]
    fn lfu_buckets_stay_consistent_under_a_long_random_trace() {
        // Against a reference: counts kept in a map, victim = min (count, last use).
        let mut s = Store::new(50, Eviction::Lfu, 0, false);
        let mut r = rng();
        let mut draw = random::stream(2, "trace");
        let mut counts: std::collections::HashMap<u64, (u32, u64)> = Default::default();
        for t in 0..20_000u64 {
            let k = draw
                .random_range(0..200u64)
                .min(draw.random_range(0..200u64));
            if s.get(k, 0).is_some() {
                let c = counts.get_mut(&k).unwrap();
                *c = (c.0 + 1, t);
                continue;
            }
            let expect = if counts.len() == 50 {
                let (&victim, _) = counts.iter().min_by_key(|(_, (c, at))| (*c, *at)).unwrap();
                Some(victim)
            } else {
                None
            };
            let (_, ev) = s.put(k, 0, 0, &mut r);
            assert_eq!(ev.map(|e| e.key), expect, "at {t}");
            if let Some(v) = expect {
                counts.remove(&v);
            }
            counts.insert(k, (1, t));
        }
        assert!(s.buckets.len() <= 51, "buckets are reused");
    }

    #[test]
    fn key_table_agrees_with_a_hash_map_under_inserts_and_removes() {
        // Small tables, so runs wrap around the end and backward shifts cross it; keys
        // chosen to collide (multiples of a power of two) as well as at random.
        for (capacity, spread) in [(8u32, 64u64), (100, 1 << 40), (1000, 3000)] {
            let mut t = KeyTable::new(capacity);
            let mut reference: std::collections::HashMap<u64, u32> = Default::default();
            // The key of each slot (slot i is the key put at step i).
            let mut keys = vec![0u64; 50_000];
            let mut draw = random::stream(4, "table");
            for i in 0..50_000u32 {
                let k = draw.random_range(0..spread) << (i % 3 * 20);
                let key_of = |slot: u32| keys[slot as usize];
                match (draw.random_range(0..3u32), reference.get(&k).copied()) {
                    (0, Some(slot)) => {
                        assert_eq!(t.get(k, key_of), Some(slot));
                        t.remove(k, slot);
                        reference.remove(&k);
                        assert_eq!(t.get(k, |slot: u32| keys[slot as usize]), None);
                    }
                    (_, Some(slot)) => {
                        assert_eq!(t.get(k, key_of), Some(slot));
                        assert_eq!(t.guess(k), Some(slot));
                    }
                    (_, None) => {
                        assert_eq!(t.get(k, key_of), None);
                        if reference.len() < capacity as usize {
                            keys[i as usize] = k;
                            t.insert(k, i, |slot: u32| keys[slot as usize]);
                            reference.insert(k, i);
                        }
                    }
                }
                assert_eq!(t.len, reference.len());
            }
            for (&k, &slot) in &reference {
                assert_eq!(t.get(k, |slot: u32| keys[slot as usize]), Some(slot));
            }
            assert!(t.cells.len() <= t.max_cells && 2 * t.len <= t.cells.len());
        }
    }

    #[test]
    fn a_million_entries_over_ten_million_keys_fit_in_48_bytes_each() {
        // At most 48 bytes per key of capacity (slab 24 B, key table 16 B: 2^21 cells of
        // 8 B) with no TTL, and the store stops growing once full.
        let cap = 1_000_000u32;
        let mut s = Store::new(cap, Eviction::Lru, 0, false);
        let mut r = rng();
        let mut draw = random::stream(3, "keys");
        for _ in 0..3_000_000 {
            let k = draw.random_range(0..10_000_000u64);
            if s.get(k, 0).is_none() {
                s.put(k, 0, 0, &mut r);
            }
        }
        assert_eq!(s.len(), cap);
        let full = s.heap_bytes();
        assert!(full <= 48 * cap as usize, "{full} bytes");
        for _ in 0..1_000_000 {
            let k = draw.random_range(0..10_000_000u64);
            if s.get(k, 0).is_none() {
                s.put(k, 0, 0, &mut r);
            }
        }
        assert_eq!(s.heap_bytes(), full, "no growth once full");
    }
}

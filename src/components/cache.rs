//! `cache`: instances that hold up to `capacity` keys each in front of a slower component.
//!
//! A call's operation says what it asks ([`Op`]): a **read** (or a call with no operation)
//! looks the key up. A hit answers after `hit_time` with [`Found::Hit`] and the version
//! held. A miss either reads through to `on_miss` (after `miss_time`), puts the version
//! that component answers and then answers [`Found::Miss`] with it, or, with no `on_miss`
//! (cache-aside), answers [`Found::Miss`] after `miss_time` so the caller's handler can
//! fetch the key and `set` it. With `coalesce`, misses of a key while its fill is out wait
//! for that fill instead of making their own call (single flight); they are counted as
//! coalesced misses.
//!
//! A **set** puts the key with the version its caller carries; an **invalidate** drops it;
//! a **write** follows the write policy: invalidate (drop, then pass the write on to
//! `on_miss` if there is one), write-through (write to `on_miss`, then put the version it
//! answers), write-back (put at once, marked dirty, and write to `on_miss` `flush_after`
//! later or when the entry leaves, whichever comes first), write-around (pass the write on
//! and leave the entry as it is).
//!
//! A cache has no workers and no queue: each operation costs its own delay, drawn per
//! operation (a cache is rarely the bottleneck; a model where it is can put a service in
//! front). The keys themselves are in [`store`]; [`validate`] builds a [`CacheDef`] from
//! [`spec`].

mod estimate;
pub mod spec;
pub mod store;
pub mod validate;

use super::Kind;
use super::op::Op;
use crate::analysis::{Flow, KeyedEstimate, MetricEstimate, Network, ServiceEstimate, Traffic};
use crate::distributions::Distribution;
use crate::engine::{Call, CallId, Component, Ctx, Found, InstanceId, Outcome};
use crate::metrics::declare::{Combine::*, MetricDecl, Unit::*};
use crate::metrics::{ErrorCause, InstanceReport, WaitHistogram};
use crate::model::graph::Link;
use crate::random::Rng;
use crate::time::{SimDuration, SimTime};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use store::{Eviction, NIL, Removed, Store};

pub use estimate::CacheEstimate;

/// What a write to the cache does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePolicy {
    /// Drop the key; pass the write on to the backend when there is one.
    Invalidate,
    /// Write to the backend, then put the key with the version it answers.
    WriteThrough,
    /// Put the key at once, dirty; flush it to the backend later.
    WriteBack,
    /// Pass the write on to the backend; leave the entry as it is.
    WriteAround,
}

/// A validated cache.
#[derive(Debug)]
pub struct CacheDef {
    /// Keys per instance.
    pub capacity: u32,
    /// Eviction policy.
    pub eviction: Eviction,
    /// Time to live, ns (0: none).
    pub ttl_ns: u64,
    /// A hit restarts the time to live.
    pub ttl_refresh: bool,
    /// Time to answer a hit (and sets, invalidations, write-back writes).
    pub hit_time: Distribution,
    /// Time a miss spends here before its fill call (or its answer, cache-aside).
    pub miss_time: Distribution,
    /// The group a miss reads through to; `None` for cache-aside.
    pub on_miss: Option<u32>,
    /// Concurrent misses of a key share one fill.
    pub coalesce: bool,
    /// Write policy.
    pub write: WritePolicy,
    /// Write-back delay, ns.
    pub flush_after_ns: u64,
    /// Start full with keys 0.. up to the capacity.
    pub warm: bool,
    /// Request class names (the model's), for the per-class hit ratios.
    pub classes: Vec<String>,
    /// Its backend, for the call graph.
    pub links: Vec<Link>,
    /// Its analytic estimate per instance, once the model's analysis has worked it out
    /// (see [`crate::analysis::prepare`]); reported beside the simulated hit ratio.
    pub estimate: Mutex<Option<CacheEstimate>>,
}

impl CacheDef {
    /// Keeps the latest estimate of an instance of this cache.
    pub fn keep_estimate(&self, e: Option<CacheEstimate>) {
        *self.estimate.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }
    /// The estimate kept, if any.
    pub fn estimate(&self) -> Option<CacheEstimate> {
        self.estimate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Kind for CacheDef {
    fn can_flush(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "cache"
    }
    fn diagram_shape(&self) -> crate::components::DiagramShape {
        crate::components::DiagramShape {
            mermaid: ("[[", "]]"),
            dot: "box3d",
        }
    }
    fn links(&self) -> &[Link] {
        &self.links
    }
    fn metrics(&self) -> &'static [MetricDecl] {
        metrics_for(
            &self.classes,
            self.estimate().is_some(),
            self.write == WritePolicy::WriteBack,
        )
    }
    fn instantiate(self: Arc<Self>, id: InstanceId, name: String, rng: Rng) -> Box<dyn Component> {
        Box::new(CacheInstance::new(self, id, name, rng))
    }
    fn reads_keys(&self) -> bool {
        true
    }
    fn keyed(&self, net: &Network, traffic: &Traffic) -> Option<KeyedEstimate> {
        Some(estimate::keyed(self, net, traffic))
    }
    fn pass_flows(&self, net: &Network, flow: &Flow, flows: &mut [Flow], _routed: &mut [Flow]) {
        estimate::pass_flows(self, net, flow, flows);
    }
    fn response(
        &self,
        net: &Network,
        flow: &Flow,
        response_ms: &[f64],
    ) -> (f64, Option<ServiceEstimate>) {
        (estimate::response(self, net, flow, response_ms), None)
    }
    fn metric_estimates(
        &self,
        net: &Network,
        flow: &Flow,
        warnings: &mut Vec<String>,
    ) -> Vec<MetricEstimate> {
        estimate::metric_estimates(self, net, flow, warnings)
    }
}

/// The metrics of every cache, before the per-class hit ratios.
static BASE_METRICS: &[MetricDecl] = &[
    // Share of reads answered from the cache (coalesced misses are misses).
    MetricDecl::number("hit_ratio", Share, WeightedBy("reads"))
        .column("hit ratio", 0)
        .estimated(),
    MetricDecl::number("reads", Count, Sum),
    MetricDecl::number("hits", Count, Sum),
    MetricDecl::number("misses", Count, Sum),
    // Misses that waited for a fill already out instead of making their own call.
    MetricDecl::number("coalesced", Count, Sum),
    MetricDecl::number("fills", Count, Sum),
    MetricDecl::number("fill_failures", Count, Sum),
    MetricDecl::number("sets", Count, Sum),
    MetricDecl::number("invalidations", Count, Sum),
    MetricDecl::number("writes", Count, Sum),
    // Writes sent to the backend: write-through, write-around, invalidate with a backend,
    // and write-back flushes.
    MetricDecl::number("backend_writes", Count, Sum),
    MetricDecl::number("flushes", Count, Sum),
    // Flushes the backend refused or failed: writes lost.
    MetricDecl::number("flush_failures", Count, Sum),
    MetricDecl::number("evictions", Count, Sum).column("evictions", 3),
    MetricDecl::number("expirations", Count, Sum),
    MetricDecl::number("entries_mean", Level, Sum).column("entries", 2),
    MetricDecl::number("entries_max", Level, Max),
    // Dirty entries (written, not yet flushed) when the run ended.
    MetricDecl::number("dirty_at_end", Level, Sum),
    MetricDecl::number("arrival_rate_per_s", PerSecond, Sum),
    MetricDecl::number("throughput_per_s", PerSecond, Sum).column("throughput/s", 6),
    MetricDecl::number("hit_mean_ms", Ms, Mean),
    MetricDecl::number("miss_mean_ms", Ms, Mean),
    // Width of the windows of `hit_ratio_by_window`: the run's series window.
    MetricDecl::number("window_ms", Ms, Max),
    // Hit ratio in consecutive windows of `window_ms` from time 0, as the workloads'
    // series (warm-up included; 0 in a window without reads).
    MetricDecl::distribution("hit_ratio_by_window"),
    // Time from a read's arrival to its answer, hits and misses apart.
    MetricDecl::histogram("hit_latency"),
    MetricDecl::histogram("miss_latency").column("miss p99", 4),
];

/// The analytic estimate of the hit ratio (when the cache has one), as a number of the
/// run, so sweeps and their summaries carry it beside the simulated one.
const ESTIMATE_METRIC: MetricDecl = MetricDecl::number("hit_ratio_estimate", Share, Mean);

/// Dirty entries a write-back cache discarded unwritten, by a crash or a `flush` fault:
/// writes the client was told had succeeded and the backend never got. Declared for
/// write-back caches only, after `flush_failures`.
const LOST_WRITES_METRIC: MetricDecl = MetricDecl::number("lost_writes", Count, Sum);

/// Prefix of the per-class hit ratio metrics: `class_hit_ratio_<class>`.
pub const CLASS_HIT_RATIO: &str = "class_hit_ratio_";

/// The metrics of a cache in a model with request classes `classes`, with an estimate or
/// not, write-back or not: the base metrics, the estimated hit ratio, the lost writes of a
/// write-back cache, and a hit ratio per class when there are several. Declarations are
/// `'static`: each distinct list is built once per process and kept.
pub fn metrics_for(
    classes: &[String],
    with_estimate: bool,
    write_back: bool,
) -> &'static [MetricDecl] {
    if classes.len() < 2 && !with_estimate && !write_back {
        return BASE_METRICS;
    }
    type Table = Vec<(Vec<String>, bool, bool, &'static [MetricDecl])>;
    static KNOWN: Mutex<Table> = Mutex::new(Vec::new());
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, _, d)) = known
        .iter()
        .find(|(c, e, w, _)| c == classes && *e == with_estimate && *w == write_back)
    {
        return d;
    }
    let mut decls = BASE_METRICS.to_vec();
    if write_back {
        let at = decls
            .iter()
            .position(|d| d.name == "flush_failures")
            .map_or(decls.len(), |i| i + 1);
        decls.insert(at, LOST_WRITES_METRIC);
    }
    if with_estimate {
        decls.insert(1, ESTIMATE_METRIC);
    }
    if classes.len() > 1 {
        for c in classes {
            let name: &'static str = Box::leak(format!("{CLASS_HIT_RATIO}{c}").into_boxed_str());
            decls.push(MetricDecl::number(name, Share, WeightedBy("reads")));
        }
    }
    let decls: &'static [MetricDecl] = Box::leak(decls.into_boxed_slice());
    known.push((classes.to_vec(), with_estimate, write_back, decls));
    decls
}

const TIMER_ANSWER: u32 = 0;
const TIMER_FETCH: u32 = 1;
const TIMER_FLUSH: u32 = 2;

/// Width of the hit ratio windows when the run has no workload to take it from.
const DEFAULT_WINDOW_NS: u64 = 1_000_000_000;

/// Reads and hits in consecutive windows from time 0: the windows of the run's time
/// series (the model's `series_window`).
#[derive(Debug, Clone)]
struct Windows {
    width: u64,
    counts: Vec<[u64; 2]>,
    /// End of the current window.
    boundary: u64,
}

impl Windows {
    fn new(width: u64) -> Self {
        Windows {
            width: width.max(1),
            counts: Vec::new(),
            boundary: 0,
        }
    }
    /// Counts a read at `now`.
    #[inline]
    fn record(&mut self, now: u64, hit: bool) {
        if now >= self.boundary {
            self.advance(now);
        }
        let last = self.counts.last_mut().expect("a current window");
        last[0] += 1;
        last[1] += u64::from(hit);
    }
    #[cold]
    fn advance(&mut self, now: u64) {
        let index = (now / self.width) as usize;
        self.counts.resize(index + 1, [0, 0]);
        self.boundary = (index as u64 + 1) * self.width;
    }
    /// The hit ratio of each window of a run ending at `end` (0 in a window without
    /// reads).
    fn report(&self, end: u64) -> Vec<f64> {
        let n = (end.div_ceil(self.width) as usize).max(1);
        (0..n)
            .map(|i| match self.counts.get(i) {
                Some([reads, hits]) if *reads > 0 => *hits as f64 / *reads as f64,
                _ => 0.0,
            })
            .collect()
    }
}

/// The number of entries over time, exact even though expiries are noticed late: an entry
/// removed at its next operation after it expired is taken out of the average from its
/// expiry time.
#[derive(Debug, Clone, Default)]
struct Occupancy {
    level: u64,
    area: u128,
    max: u64,
    since: u64,
    last: u64,
}

impl Occupancy {
    #[inline]
    fn set(&mut self, now: u64, level: u64) {
        self.area += u128::from(self.level) * u128::from(now - self.last);
        self.last = now;
        self.level = level;
        self.max = self.max.max(level);
    }
    /// An entry that expired at `at` left at `now` (after `set(now, ..)`).
    fn left_late(&mut self, at: u64, now: u64) {
        self.area -= u128::from(now - at.max(self.since).min(now));
    }
    fn restart(&mut self, now: u64) {
        self.area = 0;
        self.since = now;
        self.last = now;
        self.max = self.level;
    }
    /// Mean over the window to `now`, less the entries in `late` (expiry times of entries
    /// expired by `now` and not yet removed).
    fn mean(&self, now: u64, late: impl Iterator<Item = u64>) -> f64 {
        let mut area = self.area + u128::from(self.level) * u128::from(now - self.last);
        for at in late {
            area -= u128::from(now - at.max(self.since).min(now));
        }
        let span = now - self.since;
        if span == 0 {
            self.level as f64
        } else {
            area as f64 / span as f64
        }
    }
}

/// Counters of the measurement window.
#[derive(Debug, Clone, Default)]
struct Stats {
    arrived: u64,
    answered: u64,
    reads: u64,
    hits: u64,
    coalesced: u64,
    fills: u64,
    fill_failures: u64,
    sets: u64,
    invalidations: u64,
    writes: u64,
    backend_writes: u64,
    flushes: u64,
    flush_failures: u64,
    /// Dirty entries discarded unwritten by a crash or a `flush` fault.
    lost_writes: u64,
    evictions: u64,
    expirations: u64,
    /// Reads and hits per class.
    by_class: Vec<[u64; 2]>,
    hit_latency: WaitHistogram,
    miss_latency: WaitHistogram,
}

/// A miss waiting for a fill already out (coalescing): a node of a pooled list.
#[derive(Debug, Clone, Copy)]
struct Waiter {
    call: CallId,
    next: u32,
}

/// The first and last waiter of a key's fill.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    head: u32,
    tail: u32,
}

/// A write-back entry due to be flushed: its key, slot and the request that dirtied it.
#[derive(Debug, Clone, Copy)]
struct Dirty {
    key: u64,
    slot: u32,
    request: u32,
}

/// One instance of a cache.
pub struct CacheInstance {
    def: Arc<CacheDef>,
    id: InstanceId,
    name: String,
    rng: Rng,
    store: Store,
    /// `hit_time` and `miss_time` are always zero: answers go out at once.
    hit_instant: bool,
    miss_instant: bool,
    /// Keys whose fill is out, with their waiters (with `coalesce`).
    pending: FxHashMap<u64, Waiting>,
    waiters: Vec<Waiter>,
    free_waiter: u32,
    /// Write-back entries in the order they are due.
    flush_queue: VecDeque<Dirty>,
    /// Entries held dirty.
    dirty: u64,
    occupancy: Occupancy,
    windows: Windows,
    stats: Stats,
    since: SimTime,
    /// It crashed once: it comes back cold, even if it started warm.
    crashed: bool,
}

/// True when `d` always gives zero.
fn is_zero(d: &Distribution) -> bool {
    matches!(d, Distribution::Constant { value_ns } if *value_ns == 0.0)
}

impl CacheInstance {
    /// Instance `id`, named `name`, drawing from `rng`.
    pub fn new(def: Arc<CacheDef>, id: InstanceId, name: String, rng: Rng) -> Self {
        let store = Store::new(def.capacity, def.eviction, def.ttl_ns, def.ttl_refresh);
        CacheInstance {
            hit_instant: is_zero(&def.hit_time),
            miss_instant: is_zero(&def.miss_time),
            stats: Stats {
                by_class: vec![[0, 0]; def.classes.len()],
                ..Stats::default()
            },
            def,
            id,
            name,
            rng,
            store,
            pending: FxHashMap::default(),
            waiters: Vec::new(),
            free_waiter: NIL,
            flush_queue: VecDeque::new(),
            dirty: 0,
            occupancy: Occupancy::default(),
            windows: Windows::new(DEFAULT_WINDOW_NS),
            since: SimTime::ZERO,
            crashed: false,
        }
    }

    /// Removes the entries expired at `now`; `request` is the request whose operation
    /// noticed them (a dirty one is flushed on its behalf).
    #[inline]
    fn sweep(&mut self, now: u64, request: u32, ctx: &mut Ctx) {
        while let Some(r) = self.store.expire(now) {
            self.stats.expirations += 1;
            self.occupancy.set(now, u64::from(self.store.len()));
            self.occupancy.left_late(r.expired_at, now);
            self.left(r, request, ctx);
        }
    }

    /// An entry left (evicted, expired, invalidated): a dirty one is flushed now.
    #[inline]
    fn left(&mut self, r: Removed, request: u32, ctx: &mut Ctx) {
        if r.dirty {
            self.dirty -= 1;
            self.flush(r.key, request, ctx);
        }
    }

    /// Puts `key` at `version`, counting what it displaced.
    fn put(&mut self, key: u64, version: u32, request: u32, ctx: &mut Ctx) -> u32 {
        let now = ctx.now().0;
        let (slot, evicted) = self.store.put(key, version, now, &mut self.rng);
        if let Some(r) = evicted {
            self.stats.evictions += 1;
            self.left(r, request, ctx);
        }
        self.occupancy.set(now, u64::from(self.store.len()));
        slot
    }

    /// Answers `call` successfully, telling `found` and `version`, after `delay` drawn from
    /// the distribution (`instant` when it is always zero).
    #[inline]
    fn answer(&mut self, call: CallId, found: Found, version: u32, hit: bool, ctx: &mut Ctx) {
        let c = ctx.call_mut(call);
        c.found = found;
        c.version = version;
        let (instant, d) = if hit {
            (self.hit_instant, &self.def.hit_time)
        } else {
            (self.miss_instant, &self.def.miss_time)
        };
        if instant {
            self.stats.answered += 1;
            ctx.reply(call, Outcome::Ok);
        } else {
            let delay = SimDuration::from_nanos_f64(d.sample_ns(&mut self.rng));
            ctx.timer(self.id, delay, TIMER_ANSWER, call);
        }
    }

    /// A read of the call's key.
    #[inline]
    fn read(&mut self, call: CallId, key: u64, class: usize, now: u64, ctx: &mut Ctx) {
        self.stats.reads += 1;
        let hit = self.store.get(key, now);
        self.windows.record(now, hit.is_some());
        if let Some(counts) = self.stats.by_class.get_mut(class) {
            counts[0] += 1;
            counts[1] += u64::from(hit.is_some());
        }
        // The time the answer's latency is measured from, kept in the call only when the
        // answer comes later (an instant one records 0 at once): a write to the call just
        // before its reply is read makes the reader wait for it.
        if let Some((_, version)) = hit {
            self.stats.hits += 1;
            if self.hit_instant {
                self.stats.hit_latency.record(0);
            } else {
                ctx.call_mut(call).enqueued_at = SimTime(now);
            }
            return self.answer(call, Found::Hit, version, true, ctx);
        }
        let Some(_) = self.def.on_miss else {
            // Cache-aside: the caller fetches the key and sets it.
            if self.miss_instant {
                self.stats.miss_latency.record(0);
            } else {
                ctx.call_mut(call).enqueued_at = SimTime(now);
            }
            return self.answer(call, Found::Miss, 0, false, ctx);
        };
        ctx.call_mut(call).enqueued_at = SimTime(now);
        if self.def.coalesce {
            if let Some(w) = self.pending.get_mut(&key) {
                self.stats.coalesced += 1;
                let node = take_waiter(&mut self.waiters, &mut self.free_waiter, call);
                if w.head == NIL {
                    w.head = node;
                } else {
                    self.waiters[w.tail as usize].next = node;
                }
                w.tail = node;
                return;
            }
            self.pending.insert(
                key,
                Waiting {
                    head: NIL,
                    tail: NIL,
                },
            );
        }
        if self.miss_instant {
            self.fetch(call, ctx);
        } else {
            let d = self.def.miss_time.sample_ns(&mut self.rng);
            ctx.timer(self.id, SimDuration::from_nanos_f64(d), TIMER_FETCH, call);
        }
    }

    /// Sends the fill of `call`'s key to the backend.
    fn fetch(&mut self, call: CallId, ctx: &mut Ctx) {
        let backend = self.def.on_miss.expect("a read-through cache");
        ctx.call_group(self.id, call, backend, Op::Read.code());
    }

    /// A write of the call's key, by the write policy.
    fn write(&mut self, call: CallId, key: u64, ctx: &mut Ctx) {
        self.stats.writes += 1;
        let request = ctx.call(call).request;
        match (self.def.write, self.def.on_miss) {
            (WritePolicy::Invalidate, None) => {
                self.invalidate(key, request, ctx);
                self.answer(call, Found::Unknown, 0, true, ctx);
            }
            (WritePolicy::Invalidate, Some(backend)) => {
                self.invalidate(key, request, ctx);
                self.stats.backend_writes += 1;
                ctx.call_group(self.id, call, backend, Op::Write.code());
            }
            (WritePolicy::WriteThrough | WritePolicy::WriteAround, Some(backend)) => {
                self.stats.backend_writes += 1;
                ctx.call_group(self.id, call, backend, Op::Write.code());
            }
            (WritePolicy::WriteBack, Some(_)) => {
                let version = self
                    .store
                    .slot_of(key)
                    .and_then(|s| self.store.entry_of(s, key))
                    .map_or(1, |(v, _)| v.wrapping_add(1));
                let slot = self.put(key, version, request, ctx);
                if !self.store.set_dirty(slot, true) {
                    self.dirty += 1;
                    self.flush_queue.push_back(Dirty { key, slot, request });
                    ctx.timer(
                        self.id,
                        SimDuration(self.def.flush_after_ns),
                        TIMER_FLUSH,
                        0,
                    );
                }
                self.answer(call, Found::Unknown, version, true, ctx);
            }
            (_, None) => unreachable!("validation requires a backend for this write policy"),
        }
    }

    fn invalidate(&mut self, key: u64, request: u32, ctx: &mut Ctx) {
        if let Some(r) = self.store.remove(key) {
            self.stats.invalidations += 1;
            self.occupancy.set(ctx.now().0, u64::from(self.store.len()));
            self.left(r, request, ctx);
        }
    }

    /// Writes `key`'s dirty entry to the backend, in a call of its own (the request that
    /// wrote it has long had its answer): a reply to it is not awaited by anyone.
    fn flush(&mut self, key: u64, request: u32, ctx: &mut Ctx) {
        let Some(backend) = self.def.on_miss else {
            return;
        };
        self.stats.flushes += 1;
        self.stats.backend_writes += 1;
        let op = Op::Write.code();
        let to = ctx.groups[backend as usize].pick_for(self.id, op, key);
        let call = ctx.calls.insert_with(|id| Call {
            request,
            key,
            op,
            parent: self.id,
            parent_call: id,
            instance: to.unwrap_or(crate::engine::NOBODY),
            ..Call::default()
        });
        // Its own slot is its parent: once it is freed the generation moves on, so the
        // reply comes back as not awaited.
        let generation = ctx.call(call).generation;
        ctx.call_mut(call).parent_generation = generation;
        match to {
            Some(to) => ctx.send(call, to),
            None => ctx.reply(call, Outcome::Failed(ErrorCause::Unavailable)),
        }
    }

    /// The fill of `key` came back to `leader` (the miss that made it): put the version,
    /// then answer the leader and every coalesced waiter.
    fn filled(&mut self, leader: CallId, child: &Call, ctx: &mut Ctx) {
        let key = child.key;
        let ok = child.outcome == Outcome::Ok;
        if ok {
            self.stats.fills += 1;
            self.put(key, child.version, ctx.call(leader).request, ctx);
        } else {
            self.stats.fill_failures += 1;
        }
        let waiting = if self.def.coalesce {
            self.pending.remove(&key)
        } else {
            None
        };
        self.finish_miss(leader, child, ctx);
        let mut node = waiting.map_or(NIL, |w| w.head);
        while node != NIL {
            let Waiter { call, next } = self.waiters[node as usize];
            self.waiters[node as usize].next = self.free_waiter;
            self.free_waiter = node;
            self.finish_miss(call, child, ctx);
            node = next;
        }
    }

    /// Answers the miss `call` with what the fill `child` brought.
    fn finish_miss(&mut self, call: CallId, child: &Call, ctx: &mut Ctx) {
        let now = ctx.now();
        let c = ctx.call_mut(call);
        let waited = now.since(c.enqueued_at).0;
        self.stats.answered += 1;
        match child.outcome {
            Outcome::Ok => {
                self.stats.miss_latency.record(waited);
                c.found = Found::Miss;
                c.version = child.version;
                ctx.reply(call, Outcome::Ok);
            }
            outcome => ctx.reply(call, outcome),
        }
    }

    /// The backend answered a write `child` made for `parent`.
    fn written(&mut self, parent: CallId, child: &Call, ctx: &mut Ctx) {
        if child.outcome == Outcome::Ok && self.def.write == WritePolicy::WriteThrough {
            let request = ctx.call(parent).request;
            self.put(child.key, child.version, request, ctx);
        }
        self.stats.answered += 1;
        let c = ctx.call_mut(parent);
        c.found = Found::Unknown;
        c.version = child.version;
        ctx.reply(parent, child.outcome);
    }

    /// The flush timer of the oldest dirty entry: flush it if it is still there and dirty.
    fn flush_due(&mut self, ctx: &mut Ctx) {
        let Some(d) = self.flush_queue.pop_front() else {
            return;
        };
        if self
            .store
            .entry_of(d.slot, d.key)
            .is_some_and(|(_, dirty)| dirty)
        {
            self.store.set_dirty(d.slot, false);
            self.dirty -= 1;
            self.flush(d.key, d.request, ctx);
        }
    }

    /// Fills the store with keys 0.. up to the capacity, the most popular last (the most
    /// recently used), each put and then read once.
    fn warm_up(&mut self) {
        let n = u64::from(self.def.capacity);
        self.store.reserve(self.def.capacity);
        for key in (0..n).rev() {
            // The cells of the key 16 puts on, warmed while these are made.
            self.store.prefetch_key(key.saturating_sub(16));
            self.store.put(key, 0, 0, &mut self.rng);
            self.store.get(key, 0);
        }
        self.occupancy.set(0, u64::from(self.store.len()));
    }
}

/// A pooled waiter node for `call`, reusing a free one when there is.
fn take_waiter(pool: &mut Vec<Waiter>, free: &mut u32, call: CallId) -> u32 {
    if *free != NIL {
        let node = *free;
        *free = pool[node as usize].next;
        pool[node as usize] = Waiter { call, next: NIL };
        node
    } else {
        pool.push(Waiter { call, next: NIL });
        (pool.len() - 1) as u32
    }
}

/// Capacity (keys) from which a cache asks for the keys of coming requests ahead: a
/// smaller store stays in the processor's caches, where warming it only costs time.
const PREFETCH_FROM: u32 = 1 << 16;

impl Component for CacheInstance {
    fn prefetches(&self) -> bool {
        self.def.capacity >= PREFETCH_FROM
    }

    #[inline]
    fn prefetch(&self, keys: &[u64; 3]) {
        self.store.prefetch(keys);
    }

    #[inline]
    fn prefetch_key(&self, key: u64) {
        self.store.prefetch_key(key);
    }

    fn on_flush(&mut self, ctx: &mut Ctx) {
        // Every key goes, dirty ones unwritten; fills under way put theirs when they come.
        let def = &self.def;
        self.store = Store::new(def.capacity, def.eviction, def.ttl_ns, def.ttl_refresh);
        self.stats.lost_writes += self.dirty;
        self.dirty = 0;
        self.occupancy.set(ctx.now().0, 0);
    }

    fn on_crash(&mut self, ctx: &mut Ctx) {
        // The engine fails or swallows the calls waiting here and drops the timers.
        self.on_flush(ctx);
        self.pending.clear();
        self.waiters.clear();
        self.free_waiter = NIL;
        self.flush_queue.clear();
        self.crashed = true;
    }

    fn start(&mut self, ctx: &mut Ctx) {
        if self.windows.counts.is_empty() {
            let width = ctx.stats.first().map_or(DEFAULT_WINDOW_NS, |s| s.window_ns);
            self.windows = Windows::new(width);
        }
        if self.def.warm && self.store.is_empty() && !self.crashed {
            self.warm_up();
        }
    }

    #[inline]
    fn on_arrive(&mut self, call: CallId, ctx: &mut Ctx) {
        let now = ctx.now().0;
        self.stats.arrived += 1;
        let c = ctx.call(call);
        let (key, op, class, request) = (c.key, Op::of(c.op), c.class as usize, c.request);
        self.sweep(now, request, ctx);
        match op {
            Op::Read | Op::Unset => self.read(call, key, class, now, ctx),
            Op::Write => self.write(call, key, ctx),
            Op::Set => {
                self.stats.sets += 1;
                let version = ctx.call(call).version;
                self.put(key, version, request, ctx);
                self.answer(call, Found::Unknown, version, true, ctx);
            }
            Op::Invalidate => {
                self.invalidate(key, request, ctx);
                self.answer(call, Found::Unknown, 0, true, ctx);
            }
        }
    }

    fn on_reply(&mut self, parent: CallId, child: &Call, current: bool, ctx: &mut Ctx) {
        if !current {
            // A write-back flush: nobody waits for it.
            if child.outcome != Outcome::Ok {
                self.stats.flush_failures += 1;
            }
            return;
        }
        self.sweep(ctx.now().0, child.request, ctx);
        if Op::of(child.op) == Op::Read {
            self.filled(parent, child, ctx);
        } else {
            self.written(parent, child, ctx);
        }
    }

    fn on_timer(&mut self, tag: u32, data: u32, ctx: &mut Ctx) {
        match tag {
            TIMER_ANSWER => {
                let c = ctx.call(data);
                let waited = ctx.now().since(c.enqueued_at).0;
                if c.found == Found::Hit {
                    self.stats.hit_latency.record(waited);
                } else if c.found == Found::Miss {
                    self.stats.miss_latency.record(waited);
                }
                self.stats.answered += 1;
                ctx.reply(data, Outcome::Ok);
            }
            TIMER_FETCH => self.fetch(data, ctx),
            _ => {
                debug_assert_eq!(tag, TIMER_FLUSH);
                self.flush_due(ctx);
            }
        }
    }

    fn restart_stats(&mut self, now: SimTime) {
        self.stats = Stats {
            by_class: vec![[0, 0]; self.def.classes.len()],
            ..Stats::default()
        };
        self.occupancy.restart(now.0);
        self.since = now;
    }

    fn report(&self, now: SimTime) -> InstanceReport {
        let s = &self.stats;
        let window_s = now.since(self.since).as_secs_f64();
        let per_s = |n: u64| {
            if window_s > 0.0 {
                n as f64 / window_s
            } else {
                0.0
            }
        };
        let share = |n: u64, of: u64| if of > 0 { n as f64 / of as f64 } else { 0.0 };
        let late: Vec<u64> = self.store.expired_by(now.0).collect();
        let entries = u64::from(self.store.len()) - late.len() as u64;
        let by_window = self.windows.report(now.0);
        let estimate = self.def.estimate();
        let mut r = InstanceReport::new(&self.name, self.def.metrics());
        if let Some(e) = &estimate {
            r.set("hit_ratio_estimate", e.hit_ratio);
        }
        r.set("hit_ratio", share(s.hits, s.reads))
            .set("reads", s.reads as f64)
            .set("hits", s.hits as f64)
            .set("misses", (s.reads - s.hits) as f64)
            .set("coalesced", s.coalesced as f64)
            .set("fills", s.fills as f64)
            .set("fill_failures", s.fill_failures as f64)
            .set("sets", s.sets as f64)
            .set("invalidations", s.invalidations as f64)
            .set("writes", s.writes as f64)
            .set("backend_writes", s.backend_writes as f64)
            .set("flushes", s.flushes as f64)
            .set("flush_failures", s.flush_failures as f64)
            .set("evictions", s.evictions as f64)
            .set("expirations", (s.expirations + late.len() as u64) as f64)
            .set(
                "entries_mean",
                self.occupancy.mean(now.0, late.iter().copied()),
            )
            .set("entries_max", self.occupancy.max.max(entries) as f64)
            .set("dirty_at_end", self.dirty as f64)
            .set("arrival_rate_per_s", per_s(s.arrived))
            .set("throughput_per_s", per_s(s.answered))
            .set("hit_mean_ms", s.hit_latency.mean_ns() / 1e6)
            .set("miss_mean_ms", s.miss_latency.mean_ns() / 1e6)
            .set("window_ms", self.windows.width as f64 / 1e6);
        if self.def.write == WritePolicy::WriteBack {
            r.set("lost_writes", s.lost_writes as f64);
        }
        if self.def.classes.len() > 1 {
            for (class, counts) in self.def.classes.iter().zip(&s.by_class) {
                r.set(
                    &format!("{CLASS_HIT_RATIO}{class}"),
                    share(counts[1], counts[0]),
                );
            }
        }
        r.set_distribution("hit_ratio_by_window", by_window);
        r.set_histogram("hit_latency", s.hit_latency.clone());
        r.set_histogram("miss_latency", s.miss_latency.clone());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_reads_and_hits_from_time_zero() {
        let mut w = Windows::new(1_000_000);
        w.record(0, true);
        w.record(500_000, false);
        w.record(2_500_000, true);
        assert_eq!(w.report(3_000_000), vec![0.5, 0.0, 1.0]);
        // The last window, cut short by the end, still counts.
        assert_eq!(w.report(3_000_001).len(), 4);
    }

    #[test]
    fn occupancy_takes_late_expiries_out_from_their_expiry_time() {
        let mut o = Occupancy::default();
        o.set(0, 2);
        // One of the two expired at 10 and was noticed at 30.
        o.set(30, 1);
        o.left_late(10, 30);
        // Area: 2 × 10 + 1 × 30 (to 40) = 50 over 40.
        assert_eq!(o.mean(40, std::iter::empty()), 50.0 / 40.0);
        // Not yet noticed at report time: the other expired at 20.
        assert_eq!(o.mean(40, [20].into_iter()), 30.0 / 40.0);
    }

    #[test]
    fn per_class_metrics_are_declared_once_per_class_list() {
        let classes = vec!["read".to_string(), "write".to_string()];
        let a = metrics_for(&classes, true, false);
        let b = metrics_for(&classes.clone(), true, false);
        assert!(std::ptr::eq(a, b));
        assert_eq!(a.len(), BASE_METRICS.len() + 3);
        assert_eq!(a[1].name, "hit_ratio_estimate");
        assert_eq!(a.last().unwrap().name, "class_hit_ratio_write");
        assert_eq!(
            metrics_for(&classes, false, false).len(),
            BASE_METRICS.len() + 2
        );
        assert!(std::ptr::eq(
            metrics_for(&["default".into()], false, false),
            BASE_METRICS
        ));
        // A write-back cache counts its lost writes, right after the failed flushes.
        let wb = metrics_for(&["default".into()], false, true);
        assert_eq!(wb.len(), BASE_METRICS.len() + 1);
        let at = wb.iter().position(|d| d.name == "lost_writes").unwrap();
        assert_eq!(wb[at - 1].name, "flush_failures");
    }
}

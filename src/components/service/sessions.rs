//! In-memory sessions: a service that keeps each client's session (a login, a cart) in the
//! memory of the instance that served it, as a stateful server does. A client's next
//! request finds its session only on that instance, and only while it has not crashed
//! since: behind a balancer that is not sticky, or after a crash, the session is lost and
//! counted ("session lost": the user logs in again, the cart is empty). A stateless
//! design keeps sessions in a store instead (a call to a cache or database in the
//! handler) and loses nothing, at the cost of that call.
//!
//! The instances of one service share a per-run [`Directory`] of where each client's
//! session lives. Only a service with `sessions` is wrapped in a [`SessionKeeper`]: the
//! others run exactly as before.

use super::{METRICS, ServiceInstance};
use crate::engine::{Call, CallId, Component, Ctx, Degradation};
use crate::metrics::InstanceReport;
use crate::metrics::declare::{Combine::*, MetricDecl, Unit::*};
use crate::time::{SimDuration, SimTime};
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::rc::Rc;

/// What a service with sessions reports: a service's metrics, then its sessions'.
pub const METRICS_WITH_SESSIONS: &[MetricDecl] = &concat::<
    { METRICS.len() },
    { SESSION_METRICS.len() },
    { METRICS.len() + SESSION_METRICS.len() },
>(as_array(METRICS), SESSION_METRICS);

/// The sessions' own metrics.
const SESSION_METRICS: [MetricDecl; 5] = [
    // Requests that found their client's session on this instance.
    MetricDecl::number("sessions_resumed", Count, Sum),
    // Requests of clients with no live session anywhere (first visit, or idle too long).
    MetricDecl::number("sessions_started", Count, Sum),
    // Requests of clients whose session was on another instance, or on this one before
    // it crashed: the session is gone.
    MetricDecl::number("sessions_lost", Count, Sum).column("sessions lost", 7),
    // Requests of clients with a live session somewhere (resumed + lost).
    MetricDecl::number("sessions_returning", Count, Sum),
    // Lost sessions over the requests of returning clients.
    MetricDecl::number(
        "session_lost_share",
        Share,
        WeightedBy("sessions_returning"),
    ),
];

pub(super) const fn as_array<const N: usize>(s: &[MetricDecl]) -> [MetricDecl; N] {
    let mut out = [s[0]; N];
    let mut i = 0;
    while i < N {
        out[i] = s[i];
        i += 1;
    }
    out
}

pub(super) const fn concat<const A: usize, const B: usize, const C: usize>(
    a: [MetricDecl; A],
    b: [MetricDecl; B],
) -> [MetricDecl; C] {
    let mut out = [a[0]; C];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < C {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

/// Where the session of a client lives.
#[derive(Debug, Clone, Copy)]
struct Holder {
    /// Index of the instance in its service.
    instance: u32,
    /// That instance's life (bumped at each crash) when it took the session.
    life: u32,
    /// The client's last request.
    last_seen: SimTime,
}

/// Where each client's session lives, shared by the instances of one service in one run.
/// Holds one entry per client that has been served: bounded by the workloads' clients.
#[derive(Debug, Default)]
pub struct Directory {
    sessions: FxHashMap<u64, Holder>,
    /// Per instance: its crashes so far.
    lives: Vec<u32>,
}

/// What a request finds of its client's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// Its session is here.
    Resumed,
    /// It has none (first visit, or idle past the timeout): one starts here.
    Started,
    /// It had one elsewhere, or here before a crash: lost, a new one starts here.
    Lost,
}

impl Directory {
    /// A directory for a service of `instances` instances.
    pub fn new(instances: usize) -> Self {
        Directory {
            sessions: FxHashMap::default(),
            lives: vec![0; instances],
        }
    }

    /// Client `client` sends a request to instance `instance` at `now`; a session idle for
    /// more than `idle_timeout` has expired.
    pub fn visit(
        &mut self,
        client: u64,
        instance: u32,
        now: SimTime,
        idle_timeout: SimDuration,
    ) -> Visit {
        let life = self.lives[instance as usize];
        let here = Holder {
            instance,
            life,
            last_seen: now,
        };
        match self.sessions.insert(client, here) {
            None => Visit::Started,
            Some(h) if now.since(h.last_seen) > idle_timeout => Visit::Started,
            Some(h) if h.instance == instance && h.life == life => Visit::Resumed,
            // Elsewhere, or here before a crash.
            Some(_) => Visit::Lost,
        }
    }

    /// Instance `instance` crashed: the sessions it held are gone.
    pub fn crashed(&mut self, instance: u32) {
        self.lives[instance as usize] += 1;
    }
}

/// A service instance that keeps its clients' sessions in memory.
pub struct SessionKeeper {
    inner: ServiceInstance,
    directory: Rc<RefCell<Directory>>,
    /// Index of the instance in its service.
    index: u32,
    idle_timeout: SimDuration,
    resumed: u64,
    started: u64,
    lost: u64,
}

impl SessionKeeper {
    /// Instance `index` of its service, sharing `directory` with the others.
    pub fn new(
        inner: ServiceInstance,
        directory: Rc<RefCell<Directory>>,
        index: u32,
        idle_timeout: SimDuration,
    ) -> Self {
        SessionKeeper {
            inner,
            directory,
            index,
            idle_timeout,
            resumed: 0,
            started: 0,
            lost: 0,
        }
    }
}

/// The client a request comes from: its workload and its user there.
fn client_of(call: CallId, ctx: &Ctx) -> u64 {
    let request = ctx.call(call).request;
    let r = &ctx.requests[request as usize];
    (u64::from(r.source) << 32) | u64::from(r.user)
}

impl Component for SessionKeeper {
    fn start(&mut self, ctx: &mut Ctx) {
        Component::start(&mut self.inner, ctx);
    }

    fn on_arrive(&mut self, call: CallId, ctx: &mut Ctx) {
        let client = client_of(call, ctx);
        let visit =
            self.directory
                .borrow_mut()
                .visit(client, self.index, ctx.now(), self.idle_timeout);
        match visit {
            Visit::Resumed => self.resumed += 1,
            Visit::Started => self.started += 1,
            Visit::Lost => self.lost += 1,
        }
        self.inner.on_arrive(call, ctx);
    }

    fn on_reply(&mut self, parent: CallId, child: &Call, current: bool, ctx: &mut Ctx) {
        self.inner.on_reply(parent, child, current, ctx);
    }

    fn on_timer(&mut self, tag: u32, data: u32, ctx: &mut Ctx) {
        self.inner.on_timer(tag, data, ctx);
    }

    fn restart_stats(&mut self, now: SimTime) {
        self.inner.restart_stats(now);
        self.resumed = 0;
        self.started = 0;
        self.lost = 0;
    }

    fn report(&self, now: SimTime) -> InstanceReport {
        let mut r = self.inner.report(now);
        let returning = self.resumed + self.lost;
        let lost_share = if returning > 0 {
            self.lost as f64 / returning as f64
        } else {
            0.0
        };
        r.set("sessions_resumed", self.resumed as f64)
            .set("sessions_started", self.started as f64)
            .set("sessions_lost", self.lost as f64)
            .set("sessions_returning", returning as f64)
            .set("session_lost_share", lost_share);
        r
    }

    fn on_crash(&mut self, ctx: &mut Ctx) {
        self.directory.borrow_mut().crashed(self.index);
        self.inner.on_crash(ctx);
    }

    fn set_degradation(&mut self, d: Degradation, ctx: &mut Ctx) {
        self.inner.set_degradation(d, ctx);
    }

    fn on_flush(&mut self, ctx: &mut Ctx) {
        self.inner.on_flush(ctx);
    }

    fn on_network_change(&mut self, ctx: &mut Ctx) {
        self.inner.on_network_change(ctx);
    }
}

/// The instances of a service with sessions: each wraps a plain instance, all share one
/// directory.
pub fn instances(
    plain: Vec<ServiceInstance>,
    idle_timeout: SimDuration,
) -> Vec<Box<dyn Component>> {
    let directory = Rc::new(RefCell::new(Directory::new(plain.len())));
    plain
        .into_iter()
        .enumerate()
        .map(|(i, inner)| {
            Box::new(SessionKeeper::new(
                inner,
                Rc::clone(&directory),
                i as u32,
                idle_timeout,
            )) as Box<dyn Component>
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: SimDuration = SimDuration(1_000_000_000);

    #[test]
    fn a_session_is_found_only_where_it_was_left() {
        let mut d = Directory::new(2);
        assert_eq!(d.visit(7, 0, SimTime(0), IDLE), Visit::Started);
        assert_eq!(d.visit(7, 0, SimTime(10), IDLE), Visit::Resumed);
        // Another instance has not got it: lost, and it now lives there.
        assert_eq!(d.visit(7, 1, SimTime(20), IDLE), Visit::Lost);
        assert_eq!(d.visit(7, 1, SimTime(30), IDLE), Visit::Resumed);
        // Other clients are their own.
        assert_eq!(d.visit(8, 1, SimTime(30), IDLE), Visit::Started);
    }

    #[test]
    fn a_crash_loses_the_sessions_an_instance_held() {
        let mut d = Directory::new(2);
        d.visit(1, 0, SimTime(0), IDLE);
        d.visit(2, 1, SimTime(0), IDLE);
        d.crashed(0);
        assert_eq!(d.visit(1, 0, SimTime(5), IDLE), Visit::Lost);
        assert_eq!(d.visit(1, 0, SimTime(6), IDLE), Visit::Resumed);
        assert_eq!(d.visit(2, 1, SimTime(6), IDLE), Visit::Resumed);
    }

    #[test]
    fn an_idle_session_expires_rather_than_being_lost() {
        let mut d = Directory::new(2);
        d.visit(1, 0, SimTime(0), IDLE);
        d.crashed(0);
        assert_eq!(d.visit(1, 1, SimTime(IDLE.0 + 1), IDLE), Visit::Started);
    }

    #[test]
    fn the_session_metrics_follow_the_service_metrics() {
        assert_eq!(
            METRICS_WITH_SESSIONS.len(),
            METRICS.len() + SESSION_METRICS.len()
        );
        assert_eq!(&METRICS_WITH_SESSIONS[..METRICS.len()], METRICS);
        assert_eq!(
            METRICS_WITH_SESSIONS.last().map(|d| d.name),
            Some("session_lost_share")
        );
    }
}

//! Faults: the model's `faults` list ([`spec`]), validated into [`FaultDef`]s
//! ([`validate`]), and the [`Controller`] that carries them out during a run, through the
//! engine's [`Faults`] hook: it schedules each fault's start and end in the calendar, draws
//! the times of random faults from each fault's own stream per instance, and records every
//! fault window for the results.
//!
//! A model without faults has no controller: its runs schedule nothing more and execute
//! nothing more per event.

pub mod lint;
pub mod recovery;
pub mod spec;
pub mod validate;
mod zone;

use crate::distributions::Distribution;
use crate::engine::{
    Calendar, CrashMode, Degradation, Event, FaultAction, FaultWindow, Faults, InstanceId,
};
use crate::random::{self, Rng};
use crate::time::{SimDuration, SimTime};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a fault does to each instance it hits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Effect {
    /// It crashes.
    Crash(CrashMode),
    /// Its service times are multiplied by this.
    Slow(f64),
    /// This share of its requests fail.
    Errors(f64),
    /// Its workers are cut to this many.
    Workers(u32),
    /// It forgets its keys.
    Flush,
    /// The network is cut between groups of zones (the fault's `cut`); calls across
    /// meet the mode.
    Partition(CrashMode),
}

impl Effect {
    /// The effect's field name in model files.
    pub fn name(&self) -> &'static str {
        match self {
            Effect::Crash(_) => "crash",
            Effect::Slow(_) => "slow",
            Effect::Errors(_) => "errors",
            Effect::Workers(_) => "workers",
            Effect::Flush => "flush",
            Effect::Partition(_) => "partition",
        }
    }
    /// Its setting in words: the crash mode, the factor, the share, the workers left.
    pub fn detail(&self) -> String {
        match self {
            Effect::Crash(CrashMode::Refused) | Effect::Partition(CrashMode::Refused) => {
                "refused".into()
            }
            Effect::Crash(CrashMode::BlackHole) | Effect::Partition(CrashMode::BlackHole) => {
                "black_hole".into()
            }
            Effect::Slow(f) => format!("factor {f}"),
            Effect::Errors(s) => format!("share {s}"),
            Effect::Workers(n) => format!("to {n}"),
            Effect::Flush => String::new(),
        }
    }
}

/// When a fault happens.
#[derive(Debug, Clone)]
pub enum Timing {
    /// From `at` to `until` (the end of the run when `None`).
    Scheduled {
        /// Start.
        at: SimTime,
        /// End.
        until: Option<SimTime>,
    },
    /// Again and again on each instance: up for a draw of `between`, then down for a draw
    /// of `repair`.
    Random {
        /// Time to the next failure.
        between: Distribution,
        /// Time a failure lasts.
        repair: Distribution,
    },
}

/// The pseudo-instance a partition strikes: the network (no component's instance).
pub const NETWORK: InstanceId = InstanceId::MAX - 1;

/// The pseudo-instance of a random zone fault's events: the zone, whose instances go down
/// and up together (no component's instance).
pub const ZONE: InstanceId = InstanceId::MAX - 2;

/// A validated fault. A fault on a zone is validated into one per component it hits; a
/// partition strikes [`NETWORK`], whose one "instance name" says the groups.
#[derive(Debug, Clone)]
pub struct FaultDef {
    /// Its index in the model's `faults` list.
    pub index: u32,
    /// Its name in the results.
    pub name: String,
    /// The component it hits.
    pub target: String,
    /// That component's group id.
    pub group: u32,
    /// Id of the component's first instance.
    pub first_instance: InstanceId,
    /// The instances it hits.
    pub instances: Vec<InstanceId>,
    /// Names of every instance of the component, by index within it.
    pub instance_names: Vec<String>,
    /// A crash takes the instance out of its group's live members at once (see
    /// [`crate::components::Kind::crash_leaves_group`]).
    pub leaves_group: bool,
    /// What it does.
    pub effect: Effect,
    /// When.
    pub timing: Timing,
    /// For a partition: the side of each engine zone while it lasts (see
    /// [`crate::network::Sides`]).
    pub cut: Option<crate::network::Sides>,
    /// For a random fault on a zone: the zone. Every instance of every def of this fault
    /// (same `index`) goes down and up at once, at times drawn from one stream.
    pub zone: Option<String>,
}

impl FaultDef {
    /// Start and end of a scheduled fault (an open end is the end of time).
    pub fn span(&self) -> Option<(SimTime, SimTime)> {
        match self.timing {
            Timing::Scheduled { at, until } => Some((at, until.unwrap_or(SimTime(u64::MAX)))),
            Timing::Random { .. } => None,
        }
    }
    /// Name of instance `instance` (a global id) of the fault's component.
    pub fn instance_name(&self, instance: InstanceId) -> &str {
        &self.instance_names[(instance - self.first_instance) as usize]
    }
}

/// The partitions among `defs`, for the run's network (fault number, sides, mode).
pub fn partitions(defs: &[FaultDef]) -> crate::network::Cuts {
    let known = defs
        .iter()
        .enumerate()
        .filter_map(|(f, d)| match (&d.cut, d.effect) {
            (Some(sides), Effect::Partition(mode)) => Some((f as u32, Arc::clone(sides), mode)),
            _ => None,
        })
        .collect();
    crate::network::Cuts::new(known)
}

/// Carries out a model's faults in one run (see the module docs).
#[derive(Debug)]
pub struct Controller {
    defs: Arc<Vec<FaultDef>>,
    /// Per fault, a stream per instance it hits (random faults only; a random zone fault:
    /// one stream, on its first def).
    rngs: Vec<Vec<Rng>>,
    /// Per fault: for the first def of a random zone fault, every (def, instance) of the
    /// fault, struck together; empty otherwise.
    together: Vec<Vec<(u32, InstanceId)>>,
    /// The faults active on each instance hit, in the order they began.
    active: BTreeMap<InstanceId, Vec<u32>>,
    windows: Vec<FaultWindow>,
    /// The window open for each (fault, instance).
    open: BTreeMap<(u32, InstanceId), usize>,
}

impl Controller {
    /// The controller of `defs` in a run seeded `seed`. Fault `f`'s draws for an instance
    /// come from the stream named `fault/<f's name>/<instance name>` (a random zone fault's
    /// for the whole zone from `fault/<f's name>/zone/<zone>`), so adding a fault or a
    /// component moves no other draw.
    pub fn new(defs: Arc<Vec<FaultDef>>, seed: u64) -> Self {
        let leads = |f: usize| f == 0 || defs[f - 1].index != defs[f].index;
        let rngs = defs
            .iter()
            .enumerate()
            .map(|(f, d)| match (&d.timing, &d.zone) {
                (Timing::Random { .. }, Some(zone)) if leads(f) => {
                    let name = format!("fault/{}/zone/{zone}", d.name);
                    vec![random::stream(seed, &name)]
                }
                (Timing::Random { .. }, Some(_)) => Vec::new(),
                (Timing::Random { .. }, None) => d
                    .instances
                    .iter()
                    .map(|i| {
                        let name = format!("fault/{}/{}", d.name, d.instance_name(*i));
                        random::stream(seed, &name)
                    })
                    .collect(),
                (Timing::Scheduled { .. }, _) => Vec::new(),
            })
            .collect();
        let together = defs
            .iter()
            .enumerate()
            .map(|(f, d)| match (&d.timing, &d.zone) {
                (Timing::Random { .. }, Some(_)) if leads(f) => defs[f..]
                    .iter()
                    .enumerate()
                    .take_while(|(_, g)| g.index == d.index)
                    .flat_map(|(k, g)| g.instances.iter().map(move |i| ((f + k) as u32, *i)))
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        Controller {
            defs,
            rngs,
            together,
            active: BTreeMap::new(),
            windows: Vec::new(),
            open: BTreeMap::new(),
        }
    }

    /// A draw of `d` for fault `f` on instance `instance` (or [`ZONE`]), as a duration.
    fn draw(&mut self, f: usize, instance: InstanceId, d: &Distribution) -> SimDuration {
        let k = if instance == ZONE {
            0
        } else {
            self.defs[f]
                .instances
                .iter()
                .position(|i| *i == instance)
                .expect("a fault's own instance")
        };
        SimDuration::from_nanos_f64(d.sample_ns(&mut self.rngs[f][k]))
    }

    /// What the gray faults active on `instance` add up to.
    fn degradation(&self, instance: InstanceId) -> Degradation {
        let mut d = Degradation::default();
        for f in self.active.get(&instance).into_iter().flatten() {
            match self.defs[*f as usize].effect {
                Effect::Slow(x) => d.slow *= x,
                Effect::Errors(s) => d.error_share = 1.0 - (1.0 - d.error_share) * (1.0 - s),
                Effect::Workers(n) => d.workers = Some(d.workers.map_or(n, |w| w.min(n))),
                Effect::Crash(_) | Effect::Flush | Effect::Partition(_) => {}
            }
        }
        d
    }

    /// The number of crash faults active on `instance`.
    fn crashes(&self, instance: InstanceId) -> usize {
        self.active.get(&instance).map_or(0, |fs| {
            fs.iter()
                .filter(|f| matches!(self.defs[**f as usize].effect, Effect::Crash(_)))
                .count()
        })
    }

    fn begin(&mut self, f: u32, instance: InstanceId, now: SimTime, out: &mut Vec<FaultAction>) {
        let def = &self.defs[f as usize];
        let (effect, leaves_group) = (def.effect, def.leaves_group);
        self.windows.push(FaultWindow {
            fault: f,
            instance,
            start: now,
            end: (effect == Effect::Flush).then_some(now),
        });
        if effect == Effect::Flush {
            out.push(FaultAction::Flush { instance });
            return;
        }
        self.open.insert((f, instance), self.windows.len() - 1);
        if let Effect::Partition(_) = effect {
            out.push(FaultAction::Partition { fault: f, on: true });
            return;
        }
        let crashed_before = self.crashes(instance) > 0;
        self.active.entry(instance).or_default().push(f);
        match effect {
            Effect::Crash(mode) if !crashed_before => out.push(FaultAction::Crash {
                instance,
                mode,
                leaves_group,
            }),
            Effect::Crash(_) => {}
            _ => out.push(FaultAction::Degrade {
                instance,
                degradation: self.degradation(instance),
            }),
        }
    }

    fn end(&mut self, f: u32, instance: InstanceId, now: SimTime, out: &mut Vec<FaultAction>) {
        if let Some(w) = self.open.remove(&(f, instance)) {
            self.windows[w].end = Some(now);
        }
        if let Some(fs) = self.active.get_mut(&instance)
            && let Some(k) = fs.iter().position(|x| *x == f)
        {
            fs.remove(k);
        }
        let def = &self.defs[f as usize];
        match def.effect {
            Effect::Crash(_) if self.crashes(instance) == 0 => out.push(FaultAction::Recover {
                instance,
                leaves_group: def.leaves_group,
            }),
            Effect::Crash(_) | Effect::Flush => {}
            Effect::Partition(_) => out.push(FaultAction::Partition {
                fault: f,
                on: false,
            }),
            _ => out.push(FaultAction::Degrade {
                instance,
                degradation: self.degradation(instance),
            }),
        }
    }
}

/// Schedules event (`fault`, `instance`, `begin`) at `at`, unless after `horizon`.
fn schedule(calendar: &mut Calendar, horizon: SimTime, at: SimTime, f: u32, i: u32, begin: bool) {
    if at <= horizon {
        let event = Event::Fault {
            fault: f,
            instance: i,
            begin,
        };
        calendar.defer(at, event);
    }
}

impl Faults for Controller {
    fn start(&mut self, calendar: &mut Calendar, horizon: SimTime) {
        let defs = Arc::clone(&self.defs);
        for (f, def) in defs.iter().enumerate() {
            if let (Timing::Random { between, .. }, Some(_)) = (&def.timing, &def.zone) {
                // A random zone fault: one event for the zone, on its first def.
                if !self.together[f].is_empty() {
                    let at = SimTime(self.draw(f, ZONE, between).0);
                    schedule(calendar, horizon, at, f as u32, ZONE, true);
                }
                continue;
            }
            for &i in &def.instances {
                let at = match &def.timing {
                    Timing::Scheduled { at, .. } => *at,
                    Timing::Random { between, .. } => SimTime(self.draw(f, i, between).0),
                };
                schedule(calendar, horizon, at, f as u32, i, true);
            }
        }
    }

    fn fire(
        &mut self,
        f: u32,
        instance: InstanceId,
        begin: bool,
        calendar: &mut Calendar,
        horizon: SimTime,
        actions: &mut Vec<FaultAction>,
    ) {
        let now = calendar.now();
        let defs = Arc::clone(&self.defs);
        let def = &defs[f as usize];
        if instance == ZONE {
            // Every instance of the zone, down or up at once.
            let members = std::mem::take(&mut self.together[f as usize]);
            for &(g, i) in &members {
                if begin {
                    self.begin(g, i, now, actions);
                } else {
                    self.end(g, i, now, actions);
                }
            }
            self.together[f as usize] = members;
        } else if begin {
            self.begin(f, instance, now, actions);
        } else {
            self.end(f, instance, now, actions);
        }
        let next = match (&def.timing, begin) {
            (Timing::Scheduled { until, .. }, true) if def.effect != Effect::Flush => *until,
            (Timing::Scheduled { .. }, _) => None,
            (Timing::Random { repair, .. }, true) => {
                Some(now.after(self.draw(f as usize, instance, repair)))
            }
            (Timing::Random { between, .. }, false) => {
                Some(now.after(self.draw(f as usize, instance, between)))
            }
        };
        if let Some(at) = next {
            schedule(calendar, horizon, at, f, instance, !begin);
        }
    }

    fn windows(&self) -> &[FaultWindow] {
        &self.windows
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Format, Model, parse_model_str};
    use crate::time::SimTime;

    fn model(timeout: &str) -> Model {
        let text = format!(
            r#"{{"duration": "4s",
                "workloads": {{"u": {{"arrivals": {{"poisson": {{"rate": 500}}}}, "target": "lb"{timeout}}}}},
                "components": {{
                  "lb": {{"kind": "load_balancer", "policy": "round_robin", "backends": "app"}},
                  "app": {{"kind": "service", "replicas": 2, "workers": 2,
                           "service_time": {{"exponential": {{"mean": "2ms"}}}}}}}},
                "faults": [{{"target": "app", "instance": 0, "crash": {{"mode": "black_hole"}},
                            "at": "1s", "for": "1s"}}]}}"#
        );
        parse_model_str(&text, Format::Json, std::path::Path::new("."), &[]).unwrap()
    }

    #[test]
    fn a_black_hole_frees_what_it_swallowed_when_the_clients_give_up() {
        let m = model(r#", "timeout": "100ms""#);
        let mut sim = crate::topology::simulation(&m, 1);
        sim.advance_to(SimTime(1_500_000_000));
        // Midway: the calls of the last 100 ms are swallowed, the older ones freed.
        let parked = sim.context().parked.len();
        assert!((10..60).contains(&parked), "{parked}");
        sim.run().unwrap();
        let ctx = sim.context();
        assert!(ctx.parked.is_empty());
        // What is left in the slab is the requests still in flight, each with its call to
        // the balancer and at most one to an instance.
        assert!(ctx.calls.live() as u64 <= 2 * ctx.in_flight);
        assert!(ctx.in_flight < 10);
        let t = ctx.totals;
        assert_eq!(t.arrived, t.completed + t.failed + ctx.unanswered());
    }

    #[test]
    fn without_a_client_timeout_a_black_hole_keeps_its_calls_to_the_end() {
        let m = model("");
        let mut sim = crate::topology::simulation(&m, 1);
        sim.run().unwrap();
        let ctx = sim.context();
        // About a fifth of a second's arrivals (the half that went to app[0]): still there,
        // answered by nobody, and counted in flight.
        assert!(
            (150..350).contains(&ctx.parked.len()),
            "{}",
            ctx.parked.len()
        );
        assert_eq!(ctx.unanswered(), ctx.in_flight);
    }
}

//! Single requests of a run: their lives as Chrome Trace Event JSON (`run --trace N`), and
//! where their time went (`run --explain`). Both follow requests with the engine's
//! [`Watcher`](crate::engine::watch::Watcher), in a run of their own loop, so a run without
//! them is not slowed at all.

pub mod chrome;
pub mod explain;

use crate::client::Workloads;
use crate::engine::Simulation;
use crate::engine::watch::{Life, Sink};
use std::collections::BinaryHeap;

/// Most requests `run --trace` writes: a trace of that many is some hundreds of MB at most,
/// what Perfetto opens.
pub const MAX_TRACED: u32 = 100_000;

/// Keeps the `n` requests with the smallest sampling hashes among those that ended: a
/// sample spread over the whole run, the same for the same seed (the hashes come from the
/// seed and the order in which requests arrive), and exactly `n` when that many ended.
pub struct TraceSink {
    n: usize,
    /// The kept hashes, largest on top.
    hashes: BinaryHeap<u64>,
    /// The kept lives.
    lives: Vec<Life>,
}

impl TraceSink {
    /// A sink that keeps `n` requests.
    pub fn new(n: u32) -> Self {
        TraceSink {
            n: n as usize,
            hashes: BinaryHeap::new(),
            lives: Vec::new(),
        }
    }

    /// The requests kept, in order of creation.
    pub fn into_lives(self) -> Vec<Life> {
        let mut lives = self.lives;
        lives.sort_by_key(|l| (l.created, l.hash));
        lives
    }

    fn threshold(&self) -> u64 {
        if self.hashes.len() < self.n {
            u64::MAX
        } else {
            self.hashes.peek().copied().unwrap_or(u64::MAX)
        }
    }
}

impl Sink for TraceSink {
    fn wants(&mut self, hash: u64, _open: usize) -> bool {
        self.n > 0 && (self.hashes.len() < self.n || hash < self.threshold())
    }

    fn finished(&mut self, life: Life) {
        if !self.wants(life.hash, 0) {
            return;
        }
        self.hashes.push(life.hash);
        self.lives.push(life);
        if self.hashes.len() > self.n {
            let out = self.hashes.pop().expect("a hash");
            self.lives.retain(|l| l.hash != out);
        }
    }
}

/// Names of what a watched run's lives refer to: instances, components, workloads,
/// classes.
#[derive(Debug, Clone)]
pub struct Names {
    /// Each instance's name (`app[2]`, or the component's name when it has one instance).
    pub instances: Vec<String>,
    /// Each group's (component's) name.
    pub groups: Vec<String>,
    /// Each workload's name, by source.
    pub workloads: Vec<String>,
    /// Each class's name, by global class id.
    pub classes: Vec<String>,
}

impl Names {
    /// The names of `sim`'s instances and groups and of `model`'s workloads and classes.
    pub fn of(model: &crate::model::Model, sim: &Simulation<Workloads>) -> Self {
        let groups = &sim.context().groups;
        let count: usize = groups.iter().map(|g| g.members().len()).sum();
        let mut instances = vec![String::new(); count];
        for g in groups {
            let several = g.members().len() > 1;
            for (k, &i) in g.members().iter().enumerate() {
                instances[i as usize] = if several {
                    format!("{}[{k}]", g.name)
                } else {
                    g.name.clone()
                };
            }
        }
        Names {
            instances,
            groups: groups.iter().map(|g| g.name.clone()).collect(),
            workloads: model.workloads.iter().map(|w| w.name.clone()).collect(),
            classes: model.classes.clone(),
        }
    }

    /// The name of instance `i` ("?" for one out of range).
    pub fn instance(&self, i: u32) -> &str {
        self.instances.get(i as usize).map_or("?", String::as_str)
    }

    /// The name of group `g`.
    pub fn group(&self, g: u32) -> &str {
        self.groups.get(g as usize).map_or("?", String::as_str)
    }

    /// The name of workload `w`.
    pub fn workload(&self, w: u32) -> &str {
        self.workloads.get(w as usize).map_or("?", String::as_str)
    }

    /// The name of class `c`.
    pub fn class(&self, c: u16) -> &str {
        self.classes.get(c as usize).map_or("?", String::as_str)
    }
}

/// What a watched run follows requests for: a trace, the breakdown of their time, or both.
#[derive(Default)]
pub struct Followers {
    /// The requests to trace (`run --trace`).
    pub trace: Option<TraceSink>,
    /// Where the time went (`run --explain`).
    pub explain: Option<explain::ExplainSink>,
}

impl Sink for Followers {
    fn wants(&mut self, hash: u64, open: usize) -> bool {
        // Both are asked: the explain sink notes the requests it takes.
        let explained = self.explain.as_mut().is_some_and(|e| e.wants(hash, open));
        let traced = self.trace.as_mut().is_some_and(|t| t.wants(hash, open));
        explained || traced
    }

    fn finished(&mut self, life: Life) {
        match (&mut self.trace, &mut self.explain) {
            (Some(t), Some(e)) => {
                if t.wants(life.hash, 0) {
                    t.finished(life.clone());
                }
                e.finished(life);
            }
            (Some(t), None) => t.finished(life),
            (None, Some(e)) => e.finished(life),
            (None, None) => {}
        }
    }
}

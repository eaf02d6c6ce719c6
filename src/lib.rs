//! # scalesim
//!
//! A deterministic discrete-event simulator for scaling architectures: clients, load
//! balancers and services (caches, databases, queues and faults come next), described in
//! a model file and replayed event by event.
//!
//! ## Concepts
//!
//! - A [`Model`](model::Model) is a validated model file: workloads (sources of requests)
//!   and components (each with `replicas` identical instances).
//! - A request is a chain of *calls*: a client calls a component, which may call others
//!   (held workers, fan-outs) or hand the request on (a `route`, drawn at random, may lead
//!   back to where the request came from); answers flow back up the chain.
//! - The [`engine`] runs one replication of a built topology ([`topology`]: component
//!   instances, groups, and the [`client`] request sources): a calendar of events ordered
//!   by (time, sequence), integer nanoseconds, no I/O, no threads.
//! - [`results::run_once`] runs a model once and returns a [`RunResult`](results::RunResult).
//!
//! ## Determinism contract
//!
//! Same model and same seed give byte-identical output, on any machine with the same
//! build and with any number of threads. Every component instance and workload draws from
//! its own stream seeded from (run seed, stable name), so adding a component does not
//! change any other component's draws, and two designs fed the same workload see the same
//! arrivals and keys (common random numbers).
//!
//! ## Example
//!
//! ```
//! use scalesim::model::{parse_model_str, Format};
//! let text = r#"{
//!   "duration": "10s",
//!   "workloads": {"users": {"arrivals": {"poisson": {"rate": 800}}, "target": "app"}},
//!   "components": {"app": {"kind": "service", "workers": 1,
//!                           "service_time": {"exponential": {"mean": "1ms"}}}}
//! }"#;
//! let model = parse_model_str(text, Format::Json, std::path::Path::new("."), &[]).unwrap();
//! let result = scalesim::results::run_once(&model, 42).unwrap();
//! let app = &result.components["app"].total;
//! assert!((app["utilization"] - 0.8).abs() < 0.05);
//! assert!(result.conservation.holds);
//! ```
#![warn(missing_docs)]

pub mod analysis;
pub mod client;
pub mod components;
pub mod distributions;
pub mod engine;
pub mod error;
pub mod experiment;
pub mod faults;
pub mod files;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod network;
pub mod policy;
pub mod progress;
pub mod random;
pub mod replicate;
pub mod report;
pub mod results;
pub mod schema;
pub mod stats;
pub mod time;
pub mod topology;
pub mod trace;
pub mod workload;

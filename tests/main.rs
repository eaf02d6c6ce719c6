//! Integration tests: one binary, one module per behaviour.

mod bad_input;
mod behaviour;
mod cache;
mod capacity;
mod cli;
mod data_tier_fuzz;
mod database;
mod determinism;
mod experiments;
mod failover;
mod faults;
mod fuzz;
mod golden;
mod health;
mod limits;
mod mistakes;
mod models;
mod outside_world;
mod overload;
mod partition;
mod recovery;
mod shards;
mod support;
mod tables;
mod validation;
mod zones;

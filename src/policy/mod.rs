//! Resilience policies: what happens where calls leave and replies return (retries,
//! timeouts, breakers, ...), declared in the model file and shared by a workload's clients
//! and by every component kind's calls.

pub mod retry;

//! Integration tests: one binary, one module per behaviour.

mod bad_input;
mod cli;
mod determinism;
mod models;
mod validation;

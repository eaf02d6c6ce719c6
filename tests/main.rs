//! Integration tests: one binary, one module per behaviour.

mod bad_input;
mod validation;

//! The integration test binary: scenarios, validation corpus, kernel, SLO grammar, architecture,
//! report files.
//!
//! Data-driven: every file in `scenarios/` is run as written and as its failing twin, twice for
//! determinism; every file in `tests/bad/` must be rejected with the error its header promises.

mod architecture;
mod common;
mod hostile;
mod kernel;
mod reports;
mod scenarios;
mod seeds;
mod slo_grammar;
mod validation;

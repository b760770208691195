//! The integration test binary: scenarios, validation corpus, kernel, SLO grammar, architecture,
//! report files, fidelity against queueing theory (`TENANTSIM_SLOW=1` for the long variants).
//!
//! Data-driven: every file in `scenarios/` is run as written and as its failing twin, twice for
//! determinism; every file in `tests/bad/` must be rejected with the error its header promises.

mod architecture;
mod bounds;
mod browser;
mod common;
mod components;
mod control_plane;
mod docs;
mod engines;
mod fidelity;
mod hostile;
mod hostile_io;
mod kernel;
mod onboarding;
mod peers;
mod performance;
mod replay;
mod reports;
mod resilience;
mod scenarios;
mod seeds;
mod services;
mod slo_grammar;
mod topology;
mod validation;
mod workload;
mod workload_scenarios;

//! tenantsim: a deterministic discrete-event simulator and chaos harness for multi-tenant SaaS
//! architectures.
//!
//! Layers, from the bottom (dependencies point down only; see ARCHITECTURE.md):
//! [`time`] → [`components`] → [`kernel`] → [`model`] → [`scenario`] → [`slo`] → [`report`] →
//! [`pipeline`] → [`cli`]. Nothing below the CLI does I/O, reads the wall clock or uses ambient
//! randomness: a run is a pure function of (scenario text, overrides, seed, program version).

pub mod analytic;
pub mod cli;
pub mod clock;
pub mod components;
pub mod kernel;
pub mod model;
pub mod pipeline;
pub mod report;
pub mod scenario;
pub mod slo;
pub mod text;
pub mod time;

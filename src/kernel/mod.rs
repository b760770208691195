//! The simulation kernel: event queue ordered by (time, seq), seeded RNG streams, run loop.
//!
//! The kernel knows nothing about tenants or cells. A model implements [`Model`] and the
//! kernel feeds it events in `(time, insertion sequence)` order until the end time or a budget
//! is reached.

pub mod queue;
pub mod rng;
pub mod run;

pub use queue::EventQueue;
pub use rng::{CounterDraws, Streams};
pub use run::{Budgets, Model, RunError, RunSummary, run_observed, run_until};

//! The real isolation code: pure state machines that take `now`, usable by a production service.
//!
//! Nothing here imports the kernel, the model, the scenario format, SLOs, reports or the CLI
//! (an architecture test enforces it). Every component takes the current time as a
//! [`SimTime`](crate::time::SimTime) argument instead of reading a clock, and takes random
//! bits as an argument instead of owning a generator, so the same code runs under the
//! simulator's virtual clock and under a service's monotonic clock.

pub mod admission;
pub mod breaker;
pub mod draw;
pub mod limiter;
pub mod mapping;
pub mod mapping_cache;
pub mod migration;
pub mod placement;
pub mod retry;
pub mod scheduler;

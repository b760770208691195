//! The real isolation code: pure state machines that take `now`, usable by a production service.
//!
//! Nothing here imports the kernel, the model, the scenario format, SLOs, reports or the CLI
//! (an architecture test enforces it). Every component takes the current time as a
//! [`SimTime`](crate::time::SimTime) argument instead of reading a clock, and takes random
//! bits as an argument instead of owning a generator, so the same code runs under the
//! simulator's virtual clock and under a service's monotonic clock.

pub mod admission;
pub mod breaker;
pub mod bulkhead;
pub mod cache;
pub mod connection_pool;
pub mod draw;
pub mod limiter;
pub mod mapping;
pub mod mapping_cache;
pub mod migration;
pub mod placement;
pub mod retry;
pub mod scheduler;
pub mod workflow;

/// Per-key state of the components (per tenant, per permit, per breaker key): a hash map
/// that iterates in insertion order, with a fixed-seed hasher.
///
/// Lookups are O(1) whatever the number of tenants, which a sorted map's are not. Nothing
/// depends on the hash values: no result is read from iteration order, and that order is
/// insertion order anyway. A service keying components by untrusted strings may prefer a
/// keyed hasher; the fixed one keeps the simulator free of ambient randomness.
pub type KeyMap<K, V> = indexmap::IndexMap<K, V, foldhash::fast::FixedState>;

/// A borrowed `(a, b)` key: finds an entry of a `KeyMap<(A, B), V>` without cloning either
/// half (it hashes exactly as the tuple does: `a`, then `b`).
pub(crate) struct PairRef<'a, A, B>(pub &'a A, pub &'a B);

impl<A: std::hash::Hash, B: std::hash::Hash> std::hash::Hash for PairRef<'_, A, B> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
        self.1.hash(state);
    }
}

impl<A: Eq, B: Eq> indexmap::Equivalent<(A, B)> for PairRef<'_, A, B> {
    fn equivalent(&self, key: &(A, B)) -> bool {
        *self.0 == key.0 && *self.1 == key.1
    }
}

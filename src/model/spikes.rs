//! Load spikes per tenant: which spikes name each tenant (found in one pass over the faults),
//! the piecewise-constant rate multiplier they make (overlapping spikes multiply), and the
//! arrivals a tenant can make under it.
//!
//! One index for the whole system, so a fault naming a group of a million tenants costs a
//! million steps, not a million searches of a million-long list (which took minutes).

use super::config::{FaultKind, System};
use crate::time::{NANOS_PER_SEC, SimTime};

/// The most arrivals a tenant can make per second: the arrival process never schedules two
/// arrivals of one tenant less than a nanosecond apart, whatever its rate and multipliers.
pub const MAX_ARRIVALS_PER_SEC: f64 = NANOS_PER_SEC as f64;

/// One spike as it applies to a tenant: from, until (exclusive), multiplier.
pub type Spike = (SimTime, SimTime, f64);

/// For every tenant, the load spikes that name it, in fault order.
#[derive(Clone, Debug, Default)]
pub struct SpikeIndex {
    /// `starts[t]..starts[t + 1]` are tenant `t`'s entries of `faults` (empty when the system
    /// has no spike at all).
    starts: Vec<usize>,
    /// Fault indices, grouped by tenant.
    faults: Vec<u32>,
}

impl SpikeIndex {
    /// Builds the index in one pass over the spikes' tenant lists (and one over the tenants).
    pub fn new(system: &System) -> SpikeIndex {
        let spikes = || {
            system
                .faults
                .iter()
                .enumerate()
                .filter_map(|(i, f)| match &f.kind {
                    FaultKind::LoadSpike { tenants, .. } => Some((i as u32, tenants)),
                    _ => None,
                })
        };
        if spikes().next().is_none() {
            return SpikeIndex::default();
        }
        let n = system.tenants.len();
        let mut counts = vec![0usize; n + 1];
        for (_, tenants) in spikes() {
            for &t in tenants.iter().filter(|&&t| t < n) {
                counts[t + 1] += 1;
            }
        }
        for t in 0..n {
            counts[t + 1] += counts[t];
        }
        let starts = counts;
        let mut next = starts.clone();
        let mut faults = vec![0u32; starts[n]];
        for (fault, tenants) in spikes() {
            for &t in tenants.iter().filter(|&&t| t < n) {
                faults[next[t]] = fault;
                next[t] += 1;
            }
        }
        SpikeIndex { starts, faults }
    }

    /// Indices of the spike faults naming `tenant`, in fault order.
    pub fn faults_of(&self, tenant: usize) -> &[u32] {
        match (self.starts.get(tenant), self.starts.get(tenant + 1)) {
            (Some(&from), Some(&to)) => &self.faults[from..to],
            _ => &[],
        }
    }

    /// The spikes naming `tenant` that apply to requests of `class` (None: every spike naming
    /// it, whatever class it is limited to), in fault order.
    pub fn spikes_of<'a>(
        &'a self,
        system: &'a System,
        tenant: usize,
        class: Option<u16>,
    ) -> impl Iterator<Item = Spike> + 'a {
        self.faults_of(tenant).iter().filter_map(move |&i| {
            let f = &system.faults[i as usize];
            match f.kind {
                FaultKind::LoadSpike {
                    multiplier,
                    class: only,
                    ..
                } if only.is_none_or(|c| class.is_none_or(|k| k == c)) => {
                    Some((f.at, f.end(), multiplier))
                }
                _ => None,
            }
        })
    }
}

/// The rate multiplier over time made by `spikes`: `(from, multiplier)` at every time it
/// changes, sorted; before the first entry the multiplier is 1. Overlapping spikes multiply
/// (in fault order, so the product is the same number on every run).
pub fn segments(spikes: &[Spike]) -> Vec<(SimTime, f64)> {
    let mut bounds: Vec<SimTime> = spikes.iter().flat_map(|&(a, b, _)| [a, b]).collect();
    bounds.sort_unstable();
    bounds.dedup();
    bounds
        .into_iter()
        .map(|from| {
            let multiplier = spikes
                .iter()
                .filter(|&&(a, b, _)| a <= from && from < b)
                .map(|&(_, _, m)| m)
                .product();
            (from, multiplier)
        })
        .collect()
}

/// Arrivals a tenant at `rate` per second makes in `[0, end)` under `spikes`, counting every
/// multiplier below 1 as 1 (an upper bound) and no more than [`MAX_ARRIVALS_PER_SEC`] at any
/// time. For a single spike inside the run this is `rate × (duration + (multiplier − 1) ×
/// length)`.
pub fn expected_arrivals(rate: f64, spikes: &[Spike], end: SimTime) -> f64 {
    let duration = end.as_secs_f64();
    if spikes.is_empty() {
        return rate.min(MAX_ARRIVALS_PER_SEC) * duration;
    }
    let segments = segments(spikes);
    let most = (MAX_ARRIVALS_PER_SEC / rate).max(1.0);
    let extra: f64 = segments
        .iter()
        .enumerate()
        .map(|(i, &(from, multiplier))| {
            let until = segments.get(i + 1).map_or(SimTime::MAX, |s| s.0).min(end);
            let length = until.saturating_since(from.min(end)).as_secs_f64();
            (multiplier.min(most) - 1.0).max(0.0) * length
        })
        .sum();
    rate.min(MAX_ARRIVALS_PER_SEC) * (duration + extra)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SimDuration;

    fn at(secs: u64) -> SimTime {
        SimTime::ZERO + SimDuration::from_secs(secs)
    }

    #[test]
    fn one_spike_inside_the_run_is_the_simple_formula() {
        let spikes = [(at(30), at(90), 10.0)];
        assert_eq!(
            expected_arrivals(1000.0, &spikes, at(120)),
            1000.0 * (120.0 + 9.0 * 60.0)
        );
    }

    #[test]
    fn overlapping_spikes_multiply_and_the_rate_is_capped() {
        // 1e9 × 1e9 for ten seconds: one arrival per nanosecond at most, not 1e18 per second.
        let spikes = [(at(0), at(10), 1e9), (at(0), at(10), 1e9)];
        let arrivals = expected_arrivals(1.0, &spikes, at(20));
        assert_eq!(arrivals, 1.0 * (20.0 + (1e9 - 1.0) * 10.0));
        // Two overlapping tenfold spikes are a hundredfold one, not two tenfold ones.
        let spikes = [(at(0), at(10), 10.0), (at(5), at(10), 10.0)];
        assert_eq!(
            expected_arrivals(1.0, &spikes, at(10)),
            10.0 + 9.0 * 5.0 + 99.0 * 5.0
        );
    }

    #[test]
    fn spikes_past_the_end_and_slowdowns_add_nothing() {
        let spikes = [(at(5), at(1_000), 3.0), (at(0), at(5), 0.5)];
        assert_eq!(
            expected_arrivals(2.0, &spikes, at(10)),
            2.0 * (10.0 + 2.0 * 5.0)
        );
        assert_eq!(expected_arrivals(1e-300, &[], at(10)), 1e-299);
    }
}

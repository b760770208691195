//! Arrival processes as small per-source generator state, rate curves over time, per-member
//! sizes of `count` groups, and arrival-count estimates for the run's work estimate.
//!
//! **Processes** ([`Process`]): Poisson, constant (evenly spaced from a random phase), a
//! two-state Markov-modulated Poisson process ([`Mmpp`]: a rate and a mean sojourn per state)
//! and a renewal process with a given mean rate and coefficient of variation ([`Renewal`]).
//! A source's mutable state is an [`ArrivalState`] (48 bytes: a 16-byte counter stream plus
//! three words), driven by `kernel::rng::CounterStream`; the parameters are shared, read-only.
//!
//! **Rate curves** ([`RateCurve`]): a multiplier of the process's rate over simulated time,
//! piecewise step or linear, composed multiplicatively with spike multipliers
//! ([`RateCurve::with_multipliers`]); [`DailyProfile`] compiles a daily and weekly shape into
//! one. How each process follows a curve:
//! - Poisson: exactly the non-homogeneous Poisson process. Within a piece the next arrival
//!   solves `∫ rate·m = E` for a standard exponential `E` (closed form for a step or linear
//!   piece); at a piece boundary the draw restarts, which is exact by memorylessness. On step
//!   pieces this is, draw for draw and bit for bit, the model's spike loop before this module,
//!   so existing runs do not change.
//! - MMPP: the modulating chain runs in clock time (a burst lasts its sojourn whatever the
//!   hour); the current state's rate is multiplied by the curve, as for Poisson.
//! - Renewal and constant: in operational time. The process runs on `u = Λ(t)`, the curve's
//!   integral, and an arrival at operational position `u` happens at `Λ⁻¹(u)` (the time
//!   change). Gaps keep their law in operational time, so the count over `[0, T]` has mean
//!   `rate·Λ(T)` exactly. (Without a curve a constant source adds its rounded gap to the
//!   previous arrival, as before this module.)
//!
//! **Renewal gaps**: [`GapLaw::Auto`] uses gamma gaps for CV ≤ 1 (shape `1/CV²`; CV 1 is the
//! exponential) and a two-phase hyperexponential with balanced means for CV > 1 (the standard
//! fit: each phase carries half the mean); [`GapLaw::Gamma`] forces gamma at any CV (the
//! published "gamma arrivals of CV 3"), [`GapLaw::Hyperexponential`] forces H2 (CV ≥ 1). A
//! renewal source starts in equilibrium (its first gap is the forward recurrence time), so
//! sources do not arrive together at time 0.
//!
//! **Member sizes** ([`SizeLaw`]): a `count` group's member `i` draws its rate from its own
//! stream, keyed by the group's name and `i` ([`size_purpose`]): adding a member or a group
//! changes no other member's rate. Log-normal (median and p99) and Pareto (scale, shape,
//! optional cap) by inverse CDF of one uniform; Zipf is exact by rank (member `i` has rank
//! `i + 1`), no draw at all.
//!
//! **Estimates**: [`expected_arrivals`] is exact for every process and curve;
//! [`arrival_bound`] is a count exceeded with probability below about 1e-12 (rigorous for
//! Poisson, constant, MMPP and hyperexponential renewal; asymptotic for gamma renewal, see
//! there).

use crate::kernel::rng::{CounterStream, Streams, unit_open};
use crate::model::dist::normal_quantile;
use crate::model::fastlog;
use crate::time::{NANOS_PER_SEC, SimDuration, SimTime};

const NANOS: f64 = NANOS_PER_SEC as f64;

// ---------------------------------------------------------------------------------------------
// Rate curves
// ---------------------------------------------------------------------------------------------

/// How the points of a schedule join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    /// A point's value holds until the next point.
    Step,
    /// Values change linearly between points.
    Linear,
}

/// One piece of a curve: the multiplier starts at `level` at `from` and changes by `slope` per
/// nanosecond until the next piece; `area` is the curve's integral over `[0, from)`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Piece {
    from: u64,
    level: f64,
    slope: f64,
    area: f64,
}

/// A non-negative rate multiplier over simulated time: pieces, each a step (constant) or a
/// linear ramp, the first from time 0, the last constant to the end of time. Integrates and
/// inverts exactly (per piece: a line or a parabola), which is what runs renewal and constant
/// processes in operational time.
#[derive(Clone, Debug, PartialEq)]
pub struct RateCurve {
    pieces: Vec<Piece>,
}

/// Why a curve's points were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurveError {
    /// Index of the offending point, if one.
    pub point: Option<usize>,
    /// What was expected.
    pub message: String,
}

impl std::fmt::Display for CurveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.point {
            Some(i) => write!(f, "point {}: {}", i + 1, self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for CurveError {}

/// Nanoseconds `x ≥ 0` after which a curve that is `level` now and changes by `slope` per
/// nanosecond has accumulated `demand` (multiplier·ns); infinity if it never does (a zero or
/// falling rate). Numerically stable form of the quadratic's root.
#[inline]
fn advance(level: f64, slope: f64, demand: f64) -> f64 {
    if demand <= 0.0 {
        return 0.0;
    }
    if !demand.is_finite() {
        return f64::INFINITY;
    }
    if slope == 0.0 {
        return if level > 0.0 {
            demand / level
        } else {
            f64::INFINITY
        };
    }
    let discriminant = level * level + 2.0 * slope * demand;
    if discriminant < 0.0 {
        return f64::INFINITY;
    }
    let denominator = level + discriminant.sqrt();
    if denominator <= 0.0 {
        f64::INFINITY
    } else {
        2.0 * demand / denominator
    }
}

impl RateCurve {
    /// The constant multiplier `m` (1 is "no curve").
    pub fn constant(m: f64) -> RateCurve {
        RateCurve::from_pieces(vec![(0, m, 0.0)])
    }

    /// Builds from `(from, level, slope)` pieces sorted by `from`, the first at 0.
    fn from_pieces(raw: Vec<(u64, f64, f64)>) -> RateCurve {
        let mut pieces = Vec::with_capacity(raw.len());
        let mut area = 0.0;
        for (i, &(from, level, slope)) in raw.iter().enumerate() {
            if i > 0 {
                let previous: &Piece = &pieces[i - 1];
                let length = (from - previous.from) as f64;
                area += previous.level * length + previous.slope * length * length / 2.0;
            }
            pieces.push(Piece {
                from,
                level,
                slope,
                area,
            });
        }
        RateCurve { pieces }
    }

    /// A curve through `points` (time, multiplier), sorted by strictly increasing time, each
    /// multiplier finite and non-negative. Before the first point the first value holds,
    /// after the last the last value.
    pub fn from_points(
        points: &[(SimTime, f64)],
        interpolation: Interpolation,
    ) -> Result<RateCurve, CurveError> {
        let Some(&(_, first)) = points.first() else {
            return Err(CurveError {
                point: None,
                message: "a schedule needs at least one point".into(),
            });
        };
        for (i, &(at, value)) in points.iter().enumerate() {
            if !(value.is_finite() && value >= 0.0) {
                return Err(CurveError {
                    point: Some(i),
                    message: format!("expected a finite multiplier of 0 or more, found {value}"),
                });
            }
            if i > 0 && at <= points[i - 1].0 {
                return Err(CurveError {
                    point: Some(i),
                    message: format!(
                        "points must be in increasing time order: {at} is not after {}",
                        points[i - 1].0
                    ),
                });
            }
        }
        let mut raw = Vec::with_capacity(points.len() + 1);
        if points[0].0 > SimTime::ZERO {
            raw.push((0, first, 0.0));
        }
        for (i, &(at, value)) in points.iter().enumerate() {
            let slope = match (interpolation, points.get(i + 1)) {
                (Interpolation::Linear, Some(&(next_at, next_value))) => {
                    (next_value - value) / (next_at - at).as_nanos() as f64
                }
                _ => 0.0,
            };
            raw.push((at.as_nanos(), value, slope));
        }
        Ok(RateCurve::from_pieces(raw))
    }

    /// The piecewise-constant curve of spike multipliers: `(from, multiplier)` sorted by time
    /// (the model's `RateSchedule` segments); 1 before the first. Every boundary is kept, even
    /// between equal multipliers, because a Poisson draw restarts at each (as it always has).
    pub fn from_multipliers(segments: &[(SimTime, f64)]) -> RateCurve {
        let mut raw = Vec::with_capacity(segments.len() + 1);
        if segments
            .first()
            .is_none_or(|&(from, _)| from > SimTime::ZERO)
        {
            raw.push((0, 1.0, 0.0));
        }
        raw.extend(segments.iter().map(|&(from, m)| (from.as_nanos(), m, 0.0)));
        RateCurve::from_pieces(raw)
    }

    /// This curve times the piecewise-constant spike multipliers `segments` (as
    /// [`RateCurve::from_multipliers`]): the pieces of both, each the product.
    pub fn with_multipliers(&self, segments: &[(SimTime, f64)]) -> RateCurve {
        let spikes = RateCurve::from_multipliers(segments);
        let mut bounds: Vec<u64> = self
            .pieces
            .iter()
            .chain(&spikes.pieces)
            .map(|p| p.from)
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        let raw = bounds
            .into_iter()
            .map(|from| {
                let own = &self.pieces[self.index_at(from)];
                let factor = spikes.pieces[spikes.index_at(from)].level;
                let level = own.level + own.slope * (from - own.from) as f64;
                (from, level * factor, own.slope * factor)
            })
            .collect();
        RateCurve::from_pieces(raw)
    }

    #[inline]
    fn index_at(&self, t: u64) -> usize {
        self.pieces
            .partition_point(|p| p.from <= t)
            .saturating_sub(1)
    }

    /// The piece holding `t`, trying `hint` and the piece after it first: a source's arrivals
    /// move forward, so its last piece almost always still holds (the same piece as a search).
    #[inline]
    fn index_from(&self, t: u64, hint: &mut u32) -> usize {
        let holds = |i: usize| {
            self.pieces.get(i).is_some_and(|p| p.from <= t)
                && self.pieces.get(i + 1).is_none_or(|next| t < next.from)
        };
        let h = *hint as usize;
        let i = if holds(h) {
            h
        } else if holds(h + 1) {
            h + 1
        } else {
            self.index_at(t)
        };
        *hint = i as u32;
        i
    }

    /// At `t`: the multiplier, its change per nanosecond, and when the piece ends.
    pub fn segment_at(&self, t: SimTime) -> (f64, f64, SimTime) {
        self.segment_from(t, &mut 0)
    }

    /// [`RateCurve::segment_at`], searching from the piece `hint` (updated).
    #[inline]
    fn segment_from(&self, t: SimTime, hint: &mut u32) -> (f64, f64, SimTime) {
        let i = self.index_from(t.as_nanos(), hint);
        let p = &self.pieces[i];
        let level = if p.slope == 0.0 {
            p.level
        } else {
            p.level + p.slope * (t.as_nanos() - p.from) as f64
        };
        let until = self
            .pieces
            .get(i + 1)
            .map_or(SimTime::MAX, |next| SimTime::from_nanos(next.from));
        (level, p.slope, until)
    }

    /// The multiplier at `t`.
    pub fn multiplier_at(&self, t: SimTime) -> f64 {
        self.segment_at(t).0
    }

    /// `Λ(t)`: the integral of the multiplier over `[0, t)`, in multiplier·nanoseconds (so
    /// `rate·Λ(t)/1e9` arrivals are expected by `t`).
    pub fn integral(&self, t: SimTime) -> f64 {
        let p = &self.pieces[self.index_at(t.as_nanos())];
        let x = (t.as_nanos() - p.from) as f64;
        p.area + p.level * x + p.slope * x * x / 2.0
    }

    /// `Λ⁻¹(u)`: the first instant by which the integral reaches `u` (rounded to the nearest
    /// nanosecond), or [`SimTime::MAX`] if it never does.
    pub fn inverse(&self, u: f64) -> SimTime {
        self.inverse_from(u, &mut 0)
    }

    /// [`RateCurve::inverse`], searching from the piece `hint` (updated).
    fn inverse_from(&self, u: f64, hint: &mut u32) -> SimTime {
        if u <= 0.0 {
            return SimTime::ZERO;
        }
        // The last piece whose integral so far is at most `u`: over a zero-rate gap, the later
        // piece. Tried at the hint and after it first.
        let holds = |i: usize| {
            self.pieces.get(i).is_some_and(|p| p.area <= u)
                && self.pieces.get(i + 1).is_none_or(|next| next.area > u)
        };
        let h = *hint as usize;
        let i = if holds(h) {
            h
        } else if holds(h + 1) {
            h + 1
        } else {
            self.pieces
                .partition_point(|p| p.area <= u)
                .saturating_sub(1)
        };
        *hint = i as u32;
        let p = &self.pieces[i];
        let x = advance(p.level, p.slope, u - p.area);
        let end = self.pieces.get(i + 1).map_or(u64::MAX, |next| next.from);
        if !x.is_finite() {
            // Never within this piece: only possible in the last one (otherwise the next
            // piece's area would be at most `u`), or by rounding at its very end.
            return if end == u64::MAX {
                SimTime::MAX
            } else {
                SimTime::from_nanos(end)
            };
        }
        let t = SimTime::from_nanos(p.from) + SimDuration::from_nanos_f64(x);
        t.min(SimTime::from_nanos(end))
    }

    /// The largest multiplier over `[0, until]`.
    pub fn peak(&self, until: SimTime) -> f64 {
        let mut peak: f64 = 0.0;
        for (i, p) in self.pieces.iter().enumerate() {
            if p.from > until.as_nanos() {
                break;
            }
            let end = self
                .pieces
                .get(i + 1)
                .map_or(until.as_nanos(), |n| n.from.min(until.as_nanos()));
            let at_end = p.level + p.slope * (end - p.from) as f64;
            peak = peak.max(p.level).max(at_end);
        }
        peak
    }

    /// The pieces as `(from, multiplier at from, slope per nanosecond)`, for plots and reports.
    pub fn pieces(&self) -> impl Iterator<Item = (SimTime, f64, f64)> + '_ {
        self.pieces
            .iter()
            .map(|p| (SimTime::from_nanos(p.from), p.level, p.slope))
    }
}

// ---------------------------------------------------------------------------------------------
// Daily and weekly profile
// ---------------------------------------------------------------------------------------------

/// A working-day shape: a cosine over the day between `trough_ratio` (twelve hours from the
/// peak) and 1 (at `peak`), times `weekend_factor` on Saturdays and Sundays. The multiplier
/// is 1 at the weekday peak, so the tenant's rate is its peak rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DailyProfile {
    peak: SimDuration,
    trough_ratio: f64,
    weekend_factor: f64,
}

/// Knot spacing of a compiled profile: five minutes. Linear interpolation of the cosine
/// between knots is within `(2π/288)²/8 ≈ 6e-5` of its amplitude (the validation checks each
/// hour's mean against the declared cosine to 1e-3 relative, at the trough too).
const PROFILE_KNOT: u64 = 5 * 60 * NANOS_PER_SEC;
const DAY: u64 = 86_400 * NANOS_PER_SEC;

impl DailyProfile {
    /// The profile peaking at `peak` (time of day, see `clock::time_of_day`), with
    /// `trough_ratio` in [0, 1] and `weekend_factor` ≥ 0 (finite).
    pub fn new(
        peak: SimDuration,
        trough_ratio: f64,
        weekend_factor: f64,
    ) -> Result<DailyProfile, String> {
        if peak.as_nanos() >= DAY {
            return Err(format!(
                "the peak is a time of day, before 24:00; found {peak}"
            ));
        }
        if !(0.0..=1.0).contains(&trough_ratio) {
            return Err(format!(
                "expected a trough ratio from 0 to 1 (the trough's share of the peak rate), found {trough_ratio}"
            ));
        }
        if !(weekend_factor.is_finite() && weekend_factor >= 0.0) {
            return Err(format!(
                "expected a finite weekend factor of 0 or more, found {weekend_factor}"
            ));
        }
        Ok(DailyProfile {
            peak,
            trough_ratio,
            weekend_factor,
        })
    }

    /// The declared multiplier at a local clock time, given as nanoseconds since Monday 00:00.
    pub fn multiplier_at_clock(&self, nanos_of_week: u64) -> f64 {
        let nanos_of_week = nanos_of_week % (7 * DAY);
        self.daily(nanos_of_week % DAY) * self.day_factor(nanos_of_week / DAY)
    }

    /// The cosine over the day, `nanos` since midnight (up to a whole day).
    fn daily(&self, nanos: u64) -> f64 {
        let phase =
            2.0 * std::f64::consts::PI * (nanos as f64 - self.peak.as_nanos() as f64) / DAY as f64;
        self.trough_ratio + (1.0 - self.trough_ratio) * (1.0 + libm::cos(phase)) / 2.0
    }

    /// The weekend factor on day `day` of the week (Monday 0), else 1.
    fn day_factor(&self, day: u64) -> f64 {
        if day % 7 >= 5 {
            self.weekend_factor
        } else {
            1.0
        }
    }

    /// The curve over `[0, horizon]` of a run whose time 0 is `start`: linear between knots five
    /// minutes apart on the local clock (and at 0 and `horizon`), with the weekend
    /// factor's steps at local midnights (which are knots, so no piece spans one); constant
    /// after `horizon`.
    pub fn compile(&self, start: &crate::clock::ClockInstant, horizon: SimDuration) -> RateCurve {
        let week_offset = start.nanos_of_week();
        let end = horizon.as_nanos().max(1);
        let mut knots = vec![0u64];
        let mut next = PROFILE_KNOT - week_offset % PROFILE_KNOT;
        while next < end {
            knots.push(next);
            next += PROFILE_KNOT;
        }
        knots.push(end);
        let mut raw = Vec::with_capacity(knots.len());
        for pair in knots.windows(2) {
            let (from, to) = (pair[0], pair[1]);
            let local = week_offset + from;
            let midnight = local / DAY * DAY;
            let factor = self.day_factor(local / DAY);
            let level = self.daily(local - midnight) * factor;
            // The value the piece ramps to, on `from`'s day: at a midnight, the day's end.
            let target = self.daily(week_offset + to - midnight) * factor;
            raw.push((from, level, (target - level) / (to - from) as f64));
        }
        raw.push((end, self.multiplier_at_clock(week_offset + end), 0.0));
        RateCurve::from_pieces(raw)
    }
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// A source's arrival process (parameters only; shared, read-only).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Process {
    /// Exponential gaps at `rate` per second.
    Poisson {
        /// Arrivals per second.
        rate: f64,
    },
    /// Evenly spaced at `rate` per second, from a random phase.
    Constant {
        /// Arrivals per second.
        rate: f64,
    },
    /// Two-state Markov-modulated Poisson process.
    Mmpp(Mmpp),
    /// Renewal process with a given mean rate and gap CV.
    Renewal(Renewal),
}

/// A two-state MMPP: Poisson at `rates[s]` while in state `s`, which lasts an exponential time
/// of mean `mean_sojourns[s]`. Starts in its stationary distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mmpp {
    rates: [f64; 2],
    /// Mean sojourn per state, nanoseconds.
    sojourns: [f64; 2],
}

impl Mmpp {
    /// Rates per second (each finite and ≥ 0, not both 0) and mean sojourns (each > 0).
    pub fn new(rates: [f64; 2], mean_sojourns: [SimDuration; 2]) -> Result<Mmpp, String> {
        for (s, rate) in rates.iter().enumerate() {
            if !(rate.is_finite() && *rate >= 0.0) {
                return Err(format!(
                    "expected a finite rate of 0 or more in state {}, found {rate}",
                    s + 1
                ));
            }
        }
        if rates == [0.0, 0.0] {
            return Err("an MMPP needs a positive rate in at least one state".into());
        }
        for (s, sojourn) in mean_sojourns.iter().enumerate() {
            if *sojourn == SimDuration::ZERO {
                return Err(format!(
                    "expected a positive mean sojourn in state {}, found 0",
                    s + 1
                ));
            }
        }
        Ok(Mmpp {
            rates,
            sojourns: mean_sojourns.map(|d| d.as_nanos() as f64),
        })
    }

    /// Arrivals per second in each state.
    pub fn rates(&self) -> [f64; 2] {
        self.rates
    }

    /// Mean sojourn in each state.
    pub fn mean_sojourns(&self) -> [SimDuration; 2] {
        self.sojourns.map(|n| SimDuration::from_nanos(n as u64))
    }

    /// The stationary probability of each state (its share of time).
    pub fn stationary(&self) -> [f64; 2] {
        let total = self.sojourns[0] + self.sojourns[1];
        [self.sojourns[0] / total, self.sojourns[1] / total]
    }

    /// The long-run arrival rate, `π·λ`.
    pub fn mean_rate(&self) -> f64 {
        let pi = self.stationary();
        pi[0] * self.rates[0] + pi[1] * self.rates[1]
    }

    fn mean_gap(&self, state: usize) -> f64 {
        NANOS / self.rates[state]
    }
}

/// Which law a renewal process's gaps follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapLaw {
    /// Gamma for CV ≤ 1, balanced two-phase hyperexponential for CV > 1.
    Auto,
    /// Gamma (shape `1/CV²`) at any CV.
    Gamma,
    /// Balanced-means two-phase hyperexponential; CV ≥ 1.
    Hyperexponential,
}

/// A renewal process: independent gaps of mean `1/rate` and coefficient of variation `cv`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Renewal {
    rate: f64,
    cv: f64,
    gaps: Gaps,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Gaps {
    /// Gamma with `shape` and `scale` (ns); Marsaglia–Tsang's `d = k − 1/3` and `c = 1/√(9d)`
    /// for `k = shape`, or `k = shape + 1` below shape 1, which is then boosted:
    /// `G(shape) = G(shape + 1)·U^(1/shape)`.
    Gamma {
        shape: f64,
        scale: f64,
        d: f64,
        c: f64,
    },
    /// The fast phase (probability `p_fast`, mean `mean_fast` ns) or the slow one.
    Hyperexponential {
        p_fast: f64,
        mean_fast: f64,
        mean_slow: f64,
    },
}

/// The range of CVs a renewal process accepts: below 0.01 the gamma's shape passes 10,000
/// (use `constant`); above 10 a gamma's gaps underflow to zero.
pub const RENEWAL_CV_RANGE: (f64, f64) = (0.01, 10.0);

impl Renewal {
    /// Mean `rate` per second (finite, > 0), gap `cv` in [`RENEWAL_CV_RANGE`], and the law.
    pub fn new(rate: f64, cv: f64, law: GapLaw) -> Result<Renewal, String> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!("expected a positive finite rate, found {rate}"));
        }
        let (low, high) = RENEWAL_CV_RANGE;
        if !(low..=high).contains(&cv) {
            return Err(format!(
                "expected a coefficient of variation from {low} to {high}, found {cv}"
            ));
        }
        let mean = NANOS / rate;
        let hyper = match law {
            GapLaw::Auto => cv > 1.0,
            GapLaw::Gamma => false,
            GapLaw::Hyperexponential if cv < 1.0 => {
                return Err(format!(
                    "hyperexponential gaps have a coefficient of variation of 1 or more, found {cv} (use gamma gaps)"
                ));
            }
            GapLaw::Hyperexponential => true,
        };
        let gaps = if hyper {
            let c2 = cv * cv;
            let p_fast = (1.0 + ((c2 - 1.0) / (c2 + 1.0)).sqrt()) / 2.0;
            Gaps::Hyperexponential {
                p_fast,
                mean_fast: mean / (2.0 * p_fast),
                mean_slow: mean / (2.0 * (1.0 - p_fast)),
            }
        } else {
            let shape = 1.0 / (cv * cv);
            // Below shape 1 the draw is boosted from shape + 1 (see `Gaps::Gamma`).
            let d = if shape < 1.0 { shape + 1.0 } else { shape } - 1.0 / 3.0;
            Gaps::Gamma {
                shape,
                scale: mean / shape,
                d,
                c: 1.0 / (9.0 * d).sqrt(),
            }
        };
        Ok(Renewal { rate, cv, gaps })
    }

    /// Mean arrivals per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The gaps' coefficient of variation.
    pub fn cv(&self) -> f64 {
        self.cv
    }

    /// Whether the gaps are hyperexponential (else gamma).
    pub fn is_hyperexponential(&self) -> bool {
        matches!(self.gaps, Gaps::Hyperexponential { .. })
    }

    /// One gap in (operational) nanoseconds, drawn from `stream` as a source would: for
    /// validation and tools (a source's arrival times are these gaps rounded to whole
    /// nanoseconds, at least 1 ns apart).
    pub fn sample_gap(&self, stream: &mut CounterStream) -> f64 {
        match self.gaps {
            Gaps::Gamma { shape, scale, d, c } => {
                let g = gamma_standard(stream, d, c);
                let g = if shape < 1.0 {
                    g * libm::exp(fastlog::ln(unit(stream)) / shape)
                } else {
                    g
                };
                g * scale
            }
            Gaps::Hyperexponential {
                p_fast,
                mean_fast,
                mean_slow,
            } => {
                let mean = if unit(stream) < p_fast {
                    mean_fast
                } else {
                    mean_slow
                };
                standard_exponential(stream) * mean
            }
        }
    }

    /// The equilibrium forward recurrence time (the first gap of a source that has been
    /// running forever), in nanoseconds: `U·G(k+1)` for gamma gaps (the length-biased gap
    /// times a uniform); for balanced H2 each phase with probability 1/2 (`p·mean` is the
    /// same for both), then memoryless.
    fn first_gap(&self, stream: &mut CounterStream) -> f64 {
        match self.gaps {
            Gaps::Gamma { shape, scale, .. } => {
                let d = shape + 1.0 - 1.0 / 3.0;
                let length_biased = gamma_standard(stream, d, 1.0 / (9.0 * d).sqrt());
                unit(stream) * length_biased * scale
            }
            Gaps::Hyperexponential {
                mean_fast,
                mean_slow,
                ..
            } => {
                let mean = if unit(stream) < 0.5 {
                    mean_fast
                } else {
                    mean_slow
                };
                standard_exponential(stream) * mean
            }
        }
    }
}

impl Process {
    /// The long-run arrivals per second before any curve.
    pub fn mean_rate(&self) -> f64 {
        match self {
            Process::Poisson { rate } | Process::Constant { rate } => *rate,
            Process::Mmpp(m) => m.mean_rate(),
            Process::Renewal(r) => r.rate,
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Process::Poisson { .. } => Kind::Poisson,
            Process::Constant { .. } => Kind::Constant,
            Process::Mmpp(_) => Kind::Mmpp,
            Process::Renewal(_) => Kind::Renewal,
        }
    }
}

/// A uniform draw in (0, 1).
#[inline]
fn unit(stream: &mut CounterStream) -> f64 {
    unit_open(stream.next_u64())
}

/// A standard exponential draw (mean 1), `-ln(u)`, from the next word of `stream`: the model's
/// Poisson draw since the counter streams were introduced.
#[inline]
pub fn standard_exponential(stream: &mut CounterStream) -> f64 {
    -fastlog::ln(unit_open(stream.next_u64()))
}

/// A gamma draw of shape `d + 1/3` (≥ 1), scale 1, by Marsaglia and Tsang's method (ACM TOMS
/// 26(3), 2000): `c = 1/√(9d)`; normals by inverse CDF, so each try takes two uniforms.
fn gamma_standard(stream: &mut CounterStream, d: f64, c: f64) -> f64 {
    loop {
        let x = normal_quantile(unit(stream));
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u = unit(stream);
        let x2 = x * x;
        if u < 1.0 - 0.0331 * x2 * x2 || fastlog::ln(u) < 0.5 * x2 + d * (1.0 - v + fastlog::ln(v))
        {
            return d * v;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Poisson,
    Constant,
    Mmpp,
    Renewal,
}

/// A source's generator state: what changes from one arrival to the next. 48 bytes; the kind
/// is kept here so the Poisson path never reads the shared [`Process`], and the curve's piece
/// so a curve is searched from where the last arrival was.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArrivalState {
    stream: CounterStream,
    /// Nanoseconds between arrivals at the base rate, `1e9/rate` (MMPP: the current state's;
    /// infinite for a rate of 0).
    mean_gap_nanos: f64,
    /// Poisson: the next standard exponential, drawn one arrival ahead. Constant under a curve
    /// and renewal: the last arrival's position in operational time (multiplier·ns).
    ahead: f64,
    /// MMPP: when the state next changes.
    switch_at: SimTime,
    /// The curve's piece of the last arrival: where the next search starts.
    piece: u32,
    kind: Kind,
    /// MMPP: the current state (0 or 1).
    state: u8,
}

impl ArrivalState {
    /// The state of a source drawing from `stream` (its own, e.g. `("arrivals", tenant)`),
    /// and its first arrival.
    pub fn start(
        stream: CounterStream,
        process: &Process,
        curve: Option<&RateCurve>,
    ) -> (ArrivalState, SimTime) {
        let mut s = ArrivalState {
            stream,
            mean_gap_nanos: NANOS / process.mean_rate(),
            ahead: 0.0,
            switch_at: SimTime::MAX,
            piece: 0,
            kind: process.kind(),
            state: 0,
        };
        let first = match process {
            Process::Poisson { .. } => {
                s.ahead = standard_exponential(&mut s.stream);
                s.next_after(SimTime::ZERO, process, curve)
            }
            Process::Constant { rate } => match curve {
                None => {
                    let u = unit(&mut s.stream);
                    SimTime::ZERO + SimDuration::from_nanos((s.mean_gap_nanos * u) as u64)
                }
                Some(c) => {
                    s.ahead = unit(&mut s.stream) * (NANOS / rate);
                    c.inverse_from(s.ahead, &mut s.piece)
                }
            },
            Process::Mmpp(m) => {
                let state = usize::from(unit(&mut s.stream) >= m.stationary()[0]);
                s.enter(m, state, SimTime::ZERO);
                s.next_after(SimTime::ZERO, process, curve)
            }
            Process::Renewal(r) => {
                s.ahead = r.first_gap(&mut s.stream);
                operational_to_time(s.ahead, curve, &mut s.piece)
            }
        };
        (s, first)
    }

    /// The arrival after one at `now` (at least 1 ns later; [`SimTime::MAX`] if none ever
    /// comes). `process` and `curve` must be the ones the state was started with.
    #[inline]
    pub fn next_after(
        &mut self,
        now: SimTime,
        process: &Process,
        curve: Option<&RateCurve>,
    ) -> SimTime {
        if self.kind == Kind::Poisson && curve.is_none() {
            // The hot path: the draw taken one arrival ago makes this gap, and the next one is
            // drawn now, off the path to scheduling this arrival.
            let standard = self.ahead;
            self.ahead = standard_exponential(&mut self.stream);
            return now
                + SimDuration::from_nanos_f64(standard * self.mean_gap_nanos)
                    .max(SimDuration::from_nanos(1));
        }
        self.next_general(now, process, curve)
    }

    #[inline(never)]
    fn next_general(
        &mut self,
        now: SimTime,
        process: &Process,
        curve: Option<&RateCurve>,
    ) -> SimTime {
        let one = SimDuration::from_nanos(1);
        match process {
            Process::Poisson { rate } => {
                let Some(curve) = curve else {
                    // `next_after` takes this case inline; the same gap, should it get here.
                    let standard = self.ahead;
                    self.ahead = standard_exponential(&mut self.stream);
                    return now
                        + SimDuration::from_nanos_f64(standard * self.mean_gap_nanos).max(one);
                };
                let mut t = now;
                loop {
                    let (level, slope, until) = curve.segment_from(t, &mut self.piece);
                    let standard = self.ahead;
                    self.ahead = standard_exponential(&mut self.stream);
                    let gap = if slope == 0.0 {
                        // As the model computed it for spikes: bit for bit the same gap.
                        let mean_gap = if level == 1.0 {
                            self.mean_gap_nanos
                        } else {
                            NANOS / (rate * level)
                        };
                        standard * mean_gap
                    } else {
                        advance(level, slope, standard * self.mean_gap_nanos)
                    };
                    let candidate = t + SimDuration::from_nanos_f64(gap).max(one);
                    if candidate < until {
                        return candidate;
                    }
                    if until == SimTime::MAX {
                        return SimTime::MAX;
                    }
                    t = until;
                }
            }
            Process::Constant { .. } => match curve {
                None => now + SimDuration::from_nanos_f64(self.mean_gap_nanos).max(one),
                Some(c) => {
                    self.ahead += self.mean_gap_nanos;
                    c.inverse_from(self.ahead, &mut self.piece).max(now + one)
                }
            },
            Process::Mmpp(m) => {
                let mut t = now;
                loop {
                    let (level, slope, curve_until) = curve.map_or((1.0, 0.0, SimTime::MAX), |c| {
                        c.segment_from(t, &mut self.piece)
                    });
                    if curve_until == SimTime::MAX && level <= 0.0 && slope <= 0.0 {
                        // The curve stays at zero: no arrival ever again, whatever the state.
                        return SimTime::MAX;
                    }
                    let until = curve_until.min(self.switch_at);
                    let demand = standard_exponential(&mut self.stream) * self.mean_gap_nanos;
                    let gap = advance(level, slope, demand);
                    let candidate = t + SimDuration::from_nanos_f64(gap).max(one);
                    if candidate < until {
                        return candidate;
                    }
                    if until == SimTime::MAX {
                        return SimTime::MAX;
                    }
                    t = until;
                    if t == self.switch_at {
                        self.enter(m, usize::from(self.state == 0), t);
                    }
                }
            }
            Process::Renewal(r) => {
                self.ahead += r.sample_gap(&mut self.stream);
                operational_to_time(self.ahead, curve, &mut self.piece).max(now + one)
            }
        }
    }

    /// Enters MMPP state `state` at `t`, drawing how long it lasts.
    fn enter(&mut self, m: &Mmpp, state: usize, t: SimTime) {
        self.state = state as u8;
        self.mean_gap_nanos = m.mean_gap(state);
        let sojourn = standard_exponential(&mut self.stream) * m.sojourns[state];
        self.switch_at = t + SimDuration::from_nanos_f64(sojourn).max(SimDuration::from_nanos(1));
    }

    /// The MMPP's current state (0 or 1; 0 for other processes).
    pub fn mmpp_state(&self) -> usize {
        usize::from(self.state)
    }
}

/// The instant of operational position `u` (nanoseconds at multiplier 1).
fn operational_to_time(u: f64, curve: Option<&RateCurve>, piece: &mut u32) -> SimTime {
    match curve {
        None => SimTime::ZERO + SimDuration::from_nanos_f64(u),
        Some(c) => c.inverse_from(u, piece),
    }
}

// ---------------------------------------------------------------------------------------------
// Estimates
// ---------------------------------------------------------------------------------------------

/// The tail probability [`arrival_bound`] aims below: `ln(1e12)`.
const LN_TAIL: f64 = 27.631_021_115_928_547;

/// Operational seconds over `[0, horizon)`.
fn operational_secs(curve: Option<&RateCurve>, horizon: SimTime) -> f64 {
    curve.map_or(horizon.as_secs_f64(), |c| c.integral(horizon) / NANOS)
}

/// The expected number of arrivals over `[0, horizon)`: `mean rate · Λ(horizon)` (exact for
/// every process: each starts stationary, and MMPP's chain runs in clock time with its rates
/// scaled by the curve).
pub fn expected_arrivals(process: &Process, curve: Option<&RateCurve>, horizon: SimTime) -> f64 {
    process.mean_rate() * operational_secs(curve, horizon)
}

/// Bernstein's bound for a count with variance `variance` and increments of scale `scale`:
/// `mean + x` with `P(N ≥ mean + x) ≤ e^-L` when `N` is sub-gamma (a Poisson count is, with
/// `variance = mean` and `scale = 1/3`).
fn bernstein(mean: f64, variance: f64, scale: f64) -> f64 {
    let l = LN_TAIL;
    mean + l * scale + (l * l * scale * scale + 2.0 * variance * l).sqrt()
}

/// A number of arrivals over `[0, horizon)` exceeded with probability below about 1e-12, for
/// the run's work estimate. Poisson: Bernstein's inequality. Constant: the count itself (plus
/// one for the phase and rounding). MMPP: Poisson at its larger rate dominates it.
/// Hyperexponential renewal: every gap dominates the fast phase's exponential, so Poisson at
/// that phase's rate dominates the count. Gamma renewal: Bernstein's form with the count's
/// asymptotic variance `CV²·mean` and scale `max(CV², 1)/3` (not a proof; the validation
/// tests check it empirically).
pub fn arrival_bound(process: &Process, curve: Option<&RateCurve>, horizon: SimTime) -> u64 {
    let op = operational_secs(curve, horizon);
    let bound = match process {
        Process::Poisson { rate } => bernstein(rate * op, rate * op, 1.0 / 3.0),
        Process::Constant { rate } => match curve {
            None => {
                let gap = SimDuration::from_nanos_f64(NANOS / rate)
                    .max(SimDuration::from_nanos(1))
                    .as_nanos();
                horizon.as_nanos() as f64 / gap as f64 + 1.0
            }
            Some(_) => rate * op + 2.0,
        },
        Process::Mmpp(m) => {
            let peak = m.rates[0].max(m.rates[1]) * op;
            bernstein(peak, peak, 1.0 / 3.0)
        }
        Process::Renewal(r) => match r.gaps {
            Gaps::Hyperexponential { mean_fast, .. } => {
                let mean = NANOS / mean_fast * op;
                bernstein(mean, mean, 1.0 / 3.0) + 1.0
            }
            Gaps::Gamma { .. } => {
                let mean = r.rate * op;
                let c2 = r.cv * r.cv;
                bernstein(mean, c2.max(1.0) * mean, c2.max(1.0) / 3.0) + 1.0
            }
        },
    };
    bound.ceil().min(u64::MAX as f64) as u64
}

/// A number of state switches of `m`'s modulating chain over `[0, horizon)` exceeded with
/// probability below about 1e-12. The switches are not events (a source's next arrival steps
/// through them), but each costs about as much, and sojourns far shorter than the gaps
/// between arrivals make them the run's work: they belong in its estimate. Every sojourn is
/// exponential with a mean of at least the shorter one, so a Poisson count at that rate
/// dominates theirs (Bernstein, as for arrivals). The chain runs in clock time, whatever the
/// rate curve.
pub fn switch_bound(m: &Mmpp, horizon: SimTime) -> f64 {
    let shortest = m.sojourns[0].min(m.sojourns[1]).max(1.0);
    let mean = horizon.as_nanos() as f64 / shortest;
    bernstein(mean, mean, 1.0 / 3.0).ceil()
}

// ---------------------------------------------------------------------------------------------
// Member sizes
// ---------------------------------------------------------------------------------------------

/// How the members of a `count` group differ in rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SizeLaw {
    /// Log-normal given by its median and 99th percentile (per second).
    LogNormal {
        /// Median rate.
        median: f64,
        /// 99th-percentile rate.
        p99: f64,
        /// `ln(median)`.
        mu: f64,
        /// `(ln(p99) - mu) / z(0.99)`.
        sigma: f64,
    },
    /// Pareto: `P(rate > x) = (scale/x)^shape` for `x ≥ scale`, optionally capped (a member
    /// drawn above the cap gets the cap).
    Pareto {
        /// Smallest rate.
        scale: f64,
        /// Tail index `α`.
        shape: f64,
        /// Largest rate, if capped.
        cap: Option<f64>,
    },
    /// Zipf by rank: member `i` (rank `i + 1`) gets `top / (i + 1)^exponent`.
    Zipf {
        /// The rate of rank 1 (the group's first member).
        top: f64,
        /// The exponent `s` (0 makes every member equal).
        exponent: f64,
    },
}

fn positive(what: &str, x: f64) -> Result<f64, String> {
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(format!("expected a positive finite {what}, found {x}"))
    }
}

impl SizeLaw {
    /// The log-normal with this median and 99th percentile (`0 < median < p99`).
    pub fn log_normal(median: f64, p99: f64) -> Result<SizeLaw, String> {
        positive("median", median)?;
        positive("p99", p99)?;
        if p99 <= median {
            return Err(format!(
                "the p99 ({p99}) must be above the median ({median})"
            ));
        }
        let mu = libm::log(median);
        let sigma = (libm::log(p99) - mu) / normal_quantile(0.99);
        Ok(SizeLaw::LogNormal {
            median,
            p99,
            mu,
            sigma,
        })
    }

    /// The Pareto law with this scale (smallest rate) and shape, capped at `cap` (> scale).
    pub fn pareto(scale: f64, shape: f64, cap: Option<f64>) -> Result<SizeLaw, String> {
        positive("scale", scale)?;
        positive("shape", shape)?;
        if let Some(cap) = cap {
            positive("cap", cap)?;
            if cap <= scale {
                return Err(format!("the cap ({cap}) must be above the scale ({scale})"));
            }
        }
        Ok(SizeLaw::Pareto { scale, shape, cap })
    }

    /// Zipf by rank with this rank-1 rate and exponent (≥ 0).
    pub fn zipf(top: f64, exponent: f64) -> Result<SizeLaw, String> {
        positive("top rate", top)?;
        if !(exponent.is_finite() && exponent >= 0.0) {
            return Err(format!(
                "expected a finite exponent of 0 or more, found {exponent}"
            ));
        }
        Ok(SizeLaw::Zipf { top, exponent })
    }

    /// The rate at quantile `q` in (0, 1) (log-normal, Pareto), by inverse CDF.
    pub fn quantile(&self, q: f64) -> f64 {
        match *self {
            SizeLaw::LogNormal { mu, sigma, .. } => libm::exp(mu + sigma * normal_quantile(q)),
            SizeLaw::Pareto { scale, shape, cap } => {
                let x = scale * libm::exp(-fastlog::ln(1.0 - q) / shape);
                cap.map_or(x, |c| x.min(c))
            }
            SizeLaw::Zipf { top, .. } => top,
        }
    }

    /// The rate of member `member` (0-based) whose size key is `key`
    /// (`Streams::key_for(&size_purpose(group), member)`).
    pub fn member_rate(&self, key: u64, member: u64) -> f64 {
        match *self {
            SizeLaw::Zipf { top, exponent } => top / libm::pow((member + 1) as f64, exponent),
            _ => self.quantile(unit_open(
                crate::kernel::rng::CounterDraws::new(key).word(0),
            )),
        }
    }

    /// Every member's rate of a group of `count` named `group`, from `streams` (one ChaCha pass
    /// for the whole group; the same values as [`SizeLaw::member_rate`] one by one).
    pub fn member_rates(&self, streams: &Streams, group: &str, count: u64) -> Vec<f64> {
        streams
            .keys_for(&size_purpose(group), count)
            .enumerate()
            .map(|(i, key)| self.member_rate(key, i as u64))
            .collect()
    }

    /// The mean rate, if finite (a Pareto of shape ≤ 1 without a cap has none; Zipf's is the
    /// group's, so it needs the count: see [`SizeLaw::group_mean`]).
    pub fn mean(&self) -> Option<f64> {
        match *self {
            SizeLaw::LogNormal { mu, sigma, .. } => Some(libm::exp(mu + sigma * sigma / 2.0)),
            SizeLaw::Pareto { scale, shape, cap } => match cap {
                None if shape <= 1.0 => None,
                None => Some(shape * scale / (shape - 1.0)),
                Some(c) => {
                    // E[min(X, c)] = scale + ∫_scale^c (scale/x)^shape dx.
                    let tail = if (shape - 1.0).abs() < 1e-12 {
                        scale * libm::log(c / scale)
                    } else {
                        scale / (shape - 1.0) * (1.0 - libm::pow(scale / c, shape - 1.0))
                    };
                    Some(scale + tail)
                }
            },
            SizeLaw::Zipf { .. } => None,
        }
    }

    /// The mean rate over a group of `count` members (Zipf: exact; others: [`SizeLaw::mean`]).
    pub fn group_mean(&self, count: u64) -> Option<f64> {
        match *self {
            SizeLaw::Zipf { top, exponent } if count > 0 => Some(
                (1..=count)
                    .map(|r| top / libm::pow(r as f64, exponent))
                    .sum::<f64>()
                    / count as f64,
            ),
            _ => self.mean(),
        }
    }
}

/// The stream purpose of a group's member sizes: keyed by the group's name (not its position),
/// so adding a group or a member changes no other member's draw.
pub fn size_purpose(group: &str) -> String {
    format!("tenant-size/{group}")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The model's arrival loop before this module (`world/client.rs`, `first_arrival` and
    /// `next_arrival`, with `RateSchedule::at`), copied verbatim in substance: the reference
    /// that Poisson and constant sources must reproduce draw for draw.
    struct OldClient {
        stream: CounterStream,
        rate: f64,
        poisson: bool,
        mean_gap_nanos: f64,
        next_exponential: f64,
        segments: Option<Vec<(SimTime, f64)>>,
    }

    impl OldClient {
        fn rate_at(&self, t: SimTime) -> (f64, SimTime) {
            match &self.segments {
                Some(segments) => {
                    let i = segments.partition_point(|(from, _)| *from <= t);
                    let multiplier = if i == 0 { 1.0 } else { segments[i - 1].1 };
                    let until = segments.get(i).map_or(SimTime::MAX, |(from, _)| *from);
                    (multiplier, until)
                }
                None => (1.0, SimTime::MAX),
            }
        }

        fn first_arrival(&mut self) -> SimTime {
            if self.poisson {
                self.next_exponential = standard_exponential(&mut self.stream);
                return self.next_arrival(SimTime::ZERO);
            }
            let (multiplier, _) = self.rate_at(SimTime::ZERO);
            let interval = NANOS_PER_SEC as f64 / (self.rate * multiplier);
            let u = unit_open(self.stream.next_u64());
            SimTime::ZERO + SimDuration::from_nanos((interval * u) as u64)
        }

        fn next_arrival(&mut self, now: SimTime) -> SimTime {
            let mut t = now;
            loop {
                let (multiplier, until) = self.rate_at(t);
                let mean_gap = if multiplier == 1.0 {
                    self.mean_gap_nanos
                } else {
                    NANOS_PER_SEC as f64 / (self.rate * multiplier)
                };
                let gap_nanos = if self.poisson {
                    let standard = self.next_exponential;
                    self.next_exponential = standard_exponential(&mut self.stream);
                    standard * mean_gap
                } else {
                    mean_gap
                };
                let candidate =
                    t + SimDuration::from_nanos_f64(gap_nanos).max(SimDuration::from_nanos(1));
                if candidate < until || !self.poisson {
                    return candidate;
                }
                t = until;
            }
        }
    }

    fn secs(s: f64) -> SimTime {
        SimTime::ZERO + SimDuration::from_secs_f64(s)
    }

    /// Runs `process` from `key` for `count` arrivals (or until past `end`).
    fn arrivals(
        process: &Process,
        curve: Option<&RateCurve>,
        key: u64,
        count: usize,
        end: SimTime,
    ) -> Vec<SimTime> {
        let (mut state, mut t) = ArrivalState::start(CounterStream::new(key), process, curve);
        let mut out = Vec::new();
        while out.len() < count && t < end {
            out.push(t);
            t = state.next_after(t, process, curve);
        }
        out
    }

    #[test]
    fn poisson_and_constant_reproduce_the_model_loop_draw_for_draw() {
        let spike_sets: Vec<Option<Vec<(SimTime, f64)>>> = vec![
            None,
            Some(vec![(secs(10.0), 10.0), (secs(70.0), 1.0)]),
            Some(vec![(secs(0.0), 0.5), (secs(3.0), 1e6), (secs(3.001), 1.0)]),
            // Abutting spikes of equal multipliers: the draw still restarts at the boundary.
            Some(vec![(secs(5.0), 3.0), (secs(20.0), 3.0), (secs(40.0), 1.0)]),
        ];
        for (case, spikes) in spike_sets.into_iter().enumerate() {
            for (rate, poisson) in [(37.5, true), (0.3, true), (20.0, false)] {
                let key = case as u64 * 1_000 + 7;
                let mut old = OldClient {
                    stream: CounterStream::new(key),
                    rate,
                    poisson,
                    mean_gap_nanos: NANOS_PER_SEC as f64 / rate,
                    next_exponential: 0.0,
                    segments: spikes.clone(),
                };
                let process = if poisson {
                    Process::Poisson { rate }
                } else {
                    Process::Constant { rate }
                };
                // A constant source follows a curve in operational time now: compared
                // without spikes only.
                if !poisson && spikes.is_some() {
                    continue;
                }
                let curve = spikes.as_deref().map(RateCurve::from_multipliers);
                let end = secs(100.0);
                let new = arrivals(&process, curve.as_ref(), key, 1 << 20, end);
                let mut reference = Vec::new();
                let mut t = old.first_arrival();
                while t < end {
                    reference.push(t);
                    t = old.next_arrival(t);
                }
                assert!(reference.len() > 20, "case {case}: too few arrivals");
                assert_eq!(
                    new, reference,
                    "case {case}, rate {rate}, poisson {poisson}"
                );
            }
        }
    }

    #[test]
    fn arrival_state_stays_small() {
        assert_eq!(size_of::<ArrivalState>(), 48);
    }

    fn sample_curve() -> RateCurve {
        let points = [
            (secs(0.0), 1.0),
            (secs(10.0), 3.0),
            (secs(20.0), 0.0),
            (secs(30.0), 0.0),
            (secs(35.0), 2.0),
        ];
        RateCurve::from_points(&points, Interpolation::Linear)
            .unwrap()
            .with_multipliers(&[(secs(5.0), 4.0), (secs(7.0), 1.0)])
    }

    #[test]
    fn curves_integrate_by_pieces() {
        let c = sample_curve();
        // By hand: [0,5) ramp 1→2 (area 7.5), [5,7) ramp 2→2.4 ×4 (17.6), [7,10) 2.4→3
        // (8.1), [10,20) 3→0 (15), [20,30) 0, [30,35) 0→2 (5), then 2 per second.
        let expected = [
            (5.0, 7.5),
            (7.0, 25.1),
            (10.0, 33.2),
            (20.0, 48.2),
            (30.0, 48.2),
            (35.0, 53.2),
            (40.0, 63.2),
        ];
        for (t, area) in expected {
            let got = c.integral(secs(t)) / NANOS;
            assert!((got - area).abs() < 1e-9, "Λ({t}) = {got}, expected {area}");
        }
        assert_eq!(c.multiplier_at(secs(6.0)), 4.0 * 2.2);
        assert!((c.peak(secs(40.0)) - 9.6).abs() < 1e-12);
        // Over the zero-rate gap, the inverse jumps to where the rate resumes.
        // One multiplier·ns into the ramp from 0 (slope 4e-10 per ns): √(2/4e-10) = 70,711 ns.
        let resumed = c.inverse(c.integral(secs(20.0)) + 1.0);
        assert!(
            resumed.as_nanos().abs_diff(30_000_070_711) <= 2,
            "{resumed:?}"
        );
        assert_eq!(RateCurve::constant(0.0).inverse(1.0), SimTime::MAX);
    }

    proptest! {
        #[test]
        fn inverse_undoes_the_integral(nanos in 0u64..60_000_000_000) {
            let c = sample_curve();
            let t = SimTime::from_nanos(nanos);
            prop_assume!(c.multiplier_at(t) > 1e-3);
            let back = c.inverse(c.integral(t));
            let error = back.as_nanos().abs_diff(nanos);
            prop_assert!(error <= 1, "t {nanos} -> {back:?}");
        }
    }

    proptest! {
        /// A search from a carried hint finds what a fresh search finds, forwards or not.
        #[test]
        fn hinted_searches_agree_with_fresh_ones(steps in proptest::collection::vec(0u64..45_000_000_000, 1..50)) {
            let c = sample_curve();
            let (mut segment_hint, mut inverse_hint) = (0u32, 0u32);
            for nanos in steps {
                let t = SimTime::from_nanos(nanos);
                prop_assert_eq!(c.segment_from(t, &mut segment_hint), c.segment_at(t));
                let u = c.integral(t);
                prop_assert_eq!(c.inverse_from(u, &mut inverse_hint), c.inverse(u));
            }
        }
    }

    #[test]
    fn points_are_checked() {
        let bad =
            RateCurve::from_points(&[(secs(1.0), 1.0), (secs(1.0), 2.0)], Interpolation::Step);
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("point 2: points must be in increasing")
        );
        let negative = RateCurve::from_points(&[(secs(1.0), -1.0)], Interpolation::Step);
        assert!(
            negative
                .unwrap_err()
                .to_string()
                .contains("point 1: expected a finite multiplier")
        );
        assert!(RateCurve::from_points(&[], Interpolation::Linear).is_err());
        let step =
            RateCurve::from_points(&[(secs(1.0), 2.0), (secs(3.0), 5.0)], Interpolation::Step)
                .unwrap();
        assert_eq!(step.multiplier_at(secs(0.5)), 2.0);
        assert_eq!(step.multiplier_at(secs(2.9)), 2.0);
        assert_eq!(step.multiplier_at(secs(3.0)), 5.0);
    }

    #[test]
    fn processes_skip_zero_rate_stretches_and_stop_when_the_rate_stays_zero() {
        let off_between = RateCurve::from_points(
            &[
                (secs(0.0), 1.0),
                (secs(10.0), 0.0),
                (secs(20.0), 1.0),
                (secs(30.0), 0.0),
            ],
            Interpolation::Step,
        )
        .unwrap();
        let processes = [
            Process::Poisson { rate: 50.0 },
            Process::Constant { rate: 50.0 },
            Process::Mmpp(Mmpp::new([10.0, 200.0], [SimDuration::from_secs(1); 2]).unwrap()),
            Process::Renewal(Renewal::new(50.0, 0.5, GapLaw::Auto).unwrap()),
            Process::Renewal(Renewal::new(50.0, 3.0, GapLaw::Auto).unwrap()),
        ];
        for process in processes {
            let times = arrivals(&process, Some(&off_between), 3, 1 << 20, SimTime::MAX);
            assert!(times.len() > 100, "{process:?}");
            assert!(
                times
                    .iter()
                    .all(|t| *t < secs(10.0) || (*t >= secs(20.0) && *t < secs(30.0))),
                "{process:?}"
            );
            assert!(times.windows(2).all(|w| w[0] < w[1]), "{process:?}");
        }
    }

    #[test]
    fn renewal_laws_follow_the_cv() {
        assert!(
            !Renewal::new(1.0, 0.5, GapLaw::Auto)
                .unwrap()
                .is_hyperexponential()
        );
        assert!(
            !Renewal::new(1.0, 1.0, GapLaw::Auto)
                .unwrap()
                .is_hyperexponential()
        );
        assert!(
            Renewal::new(1.0, 1.5, GapLaw::Auto)
                .unwrap()
                .is_hyperexponential()
        );
        assert!(
            !Renewal::new(1.0, 3.0, GapLaw::Gamma)
                .unwrap()
                .is_hyperexponential()
        );
        assert!(Renewal::new(1.0, 0.5, GapLaw::Hyperexponential).is_err());
        assert!(Renewal::new(1.0, 0.001, GapLaw::Auto).is_err());
        assert!(Renewal::new(0.0, 1.0, GapLaw::Auto).is_err());
        assert!(Mmpp::new([0.0, 0.0], [SimDuration::from_secs(1); 2]).is_err());
        assert!(Mmpp::new([1.0, 0.0], [SimDuration::ZERO, SimDuration::from_secs(1)]).is_err());
    }

    #[test]
    fn member_sizes_are_keyed_by_group_name_and_index() {
        let streams = Streams::new(42);
        let law = SizeLaw::log_normal(2.0, 50.0).unwrap();
        let ten = law.member_rates(&streams, "small", 10);
        let twenty = law.member_rates(&streams, "small", 20);
        assert_eq!(ten[..], twenty[..10]);
        let one = law.member_rate(streams.key_for(&size_purpose("small"), 7), 7);
        assert_eq!(one, ten[7]);
        assert_ne!(law.member_rates(&streams, "large", 10), ten);
        let zipf = SizeLaw::zipf(100.0, 1.0).unwrap();
        assert_eq!(
            zipf.member_rates(&streams, "z", 4),
            vec![100.0, 50.0, 100.0 / 3.0, 25.0]
        );
        let capped = SizeLaw::pareto(1.0, 0.5, Some(1_000.0)).unwrap();
        assert!(
            capped
                .member_rates(&streams, "p", 10_000)
                .iter()
                .all(|&r| (1.0..=1_000.0).contains(&r))
        );
        assert!(SizeLaw::log_normal(5.0, 5.0).is_err());
        assert!(SizeLaw::pareto(2.0, 1.0, Some(1.0)).is_err());
    }

    #[test]
    fn a_profile_peaks_at_its_hour_and_steps_on_weekends() {
        let profile = DailyProfile::new(SimDuration::from_secs(14 * 3_600), 0.2, 0.5).unwrap();
        let start = crate::clock::ClockInstant::parse("2026-03-06T08:00:00Z").unwrap(); // Friday
        let curve = profile.compile(&start, SimDuration::from_secs(3 * 86_400));
        let h = |hours: f64| secs(hours * 3_600.0);
        assert!((curve.multiplier_at(h(6.0)) - 1.0).abs() < 1e-12); // Fri 14:00
        assert!((curve.multiplier_at(h(6.0 + 12.0)) - 0.2 * 0.5).abs() < 1e-12); // Sat 02:00
        // Saturday 14:00: the weekend factor.
        assert!((curve.multiplier_at(h(30.0)) - 0.5).abs() < 1e-12);
        // Just before and at Saturday midnight (16 h after the start).
        let before = curve.multiplier_at(SimTime::from_nanos(h(16.0).as_nanos() - 1));
        let after = curve.multiplier_at(h(16.0));
        assert!((before / after - 2.0).abs() < 1e-6, "{before} {after}");
        assert!(DailyProfile::new(SimDuration::from_secs(86_400), 0.2, 1.0).is_err());
        assert!(DailyProfile::new(SimDuration::ZERO, 1.5, 1.0).is_err());
    }

    proptest! {
        /// The switch bound against the chain itself, run here with its own exponential
        /// draws: over any horizon, no run of the chain switches more often than the bound
        /// says, and the bound is not loose by more than the ratio of the mean cycle to the
        /// shorter sojourn (plus the tail's margin).
        #[test]
        fn switch_bound_covers_the_chain(
            short_us in 1u64..5_000,
            long_us in 1u64..50_000,
            horizon_ms in 1u64..2_000,
            seed in any::<u64>(),
        ) {
            let m = Mmpp::new(
                [1.0, 2.0],
                [SimDuration::from_micros(short_us), SimDuration::from_micros(long_us)],
            )
            .expect("valid");
            let horizon = SimTime::ZERO + SimDuration::from_millis(horizon_ms);
            let bound = switch_bound(&m, horizon);
            let mut t = 0.0;
            let mut state = 0;
            let mut switches = 0u64;
            let mut counter = seed;
            loop {
                counter = counter.wrapping_add(1);
                let u = (crate::kernel::rng::mix64(counter) >> 11) as f64 / (1u64 << 53) as f64;
                t += -(1.0 - u).ln() * m.sojourns[state];
                if t >= horizon.as_nanos() as f64 {
                    break;
                }
                switches += 1;
                state = 1 - state;
            }
            prop_assert!(switches as f64 <= bound, "{switches} > {bound}");
            let mean_cycle = m.sojourns[0] + m.sojourns[1];
            let expected = 2.0 * horizon.as_nanos() as f64 / mean_cycle;
            let shortest = m.sojourns[0].min(m.sojourns[1]);
            prop_assert!(bound >= expected);
            let margin = 200.0 + 10.0 * (horizon.as_nanos() as f64 / shortest).sqrt();
            prop_assert!(bound <= expected * mean_cycle / shortest + margin);
        }
    }
}

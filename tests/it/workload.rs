//! Realistic workloads (issue 25): arrival processes, rate curves, member sizes and replay
//! against closed forms and independently written references; the shipped incident log.
//!
//! References written here, not taken from the code under test: the MMPP count mean and index
//! of dispersion (Fischer and Meier-Hellstern's closed form), the gamma CDF (regularized
//! incomplete gamma by series and continued fraction), the hyperexponential and log-normal
//! CDFs (`libm::erfc`), the Pareto CDF, the Kolmogorov distribution, the cosine of the daily
//! profile, a plain line splitter for logs. Fast variants by default; `TENANTSIM_SLOW=1 cargo
//! test --release --test it workload -- --nocapture --test-threads 1` runs the long ones and
//! prints the rows of `docs/validation.md`. Figures are deterministic (fixed keys and seeds).

use std::io::{BufRead, Cursor, Read};

use rayon::prelude::*;

use tenantsim::clock::ClockInstant;
use tenantsim::kernel::rng::{CounterStream, Streams};
use tenantsim::model::arrivals::{
    ArrivalState, DailyProfile, GapLaw, Mmpp, Process, RateCurve, Renewal, SizeLaw, arrival_bound,
    expected_arrivals,
};
use tenantsim::model::replay::{LogFormat, LogReader, Replay, ReplayTiming};
use tenantsim::time::{SimDuration, SimTime};

const NANOS: f64 = 1e9;

fn slow() -> bool {
    std::env::var("TENANTSIM_SLOW").is_ok_and(|v| v == "1")
}

fn pick<T>(fast: T, long: T) -> T {
    if slow() { long } else { fast }
}

fn secs(s: f64) -> SimTime {
    SimTime::ZERO + SimDuration::from_secs_f64(s)
}

/// Arrival times of one source over `[0, end)`.
fn arrivals(process: &Process, curve: Option<&RateCurve>, key: u64, end: SimTime) -> Vec<SimTime> {
    let (mut state, mut t) = ArrivalState::start(CounterStream::new(key), process, curve);
    let mut out = Vec::new();
    while t < end {
        out.push(t);
        t = state.next_after(t, process, curve);
    }
    out
}

/// Number of arrivals of one source over `[0, end)`.
fn count(process: &Process, curve: Option<&RateCurve>, key: u64, end: SimTime) -> u64 {
    let (mut state, mut t) = ArrivalState::start(CounterStream::new(key), process, curve);
    let mut n = 0;
    while t < end {
        n += 1;
        t = state.next_after(t, process, curve);
    }
    n
}

/// Sample mean, variance and fourth central moment.
fn moments(xs: &[f64]) -> (f64, f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let m4 = xs.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n;
    (mean, var, m4)
}

/// The Kolmogorov–Smirnov statistic of `sample` against `cdf`.
fn ks_statistic(sample: &mut [f64], cdf: impl Fn(f64) -> f64) -> f64 {
    sample.sort_by(f64::total_cmp);
    let n = sample.len() as f64;
    sample
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).max((i + 1) as f64 / n - f)
        })
        .fold(0.0, f64::max)
}

/// `P(D_n > d)` for large `n`: the Kolmogorov distribution with Stephens' correction.
fn ks_p_value(d: f64, n: usize) -> f64 {
    let sqrt_n = (n as f64).sqrt();
    let lambda = (sqrt_n + 0.12 + 0.11 / sqrt_n) * d;
    let mut sum = 0.0;
    for k in 1..=100 {
        let k = f64::from(k);
        sum += 2.0 * (-1f64).powf(k - 1.0) * (-2.0 * k * k * lambda * lambda).exp();
    }
    sum.clamp(0.0, 1.0)
}

/// The standard normal CDF.
fn phi(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// The regularized lower incomplete gamma `P(a, x)` (Numerical Recipes' `gammp`: series below
/// `a + 1`, Lentz's continued fraction above).
fn gamma_p(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let ln_front = a * x.ln() - x - libm::lgamma(a);
    if x < a + 1.0 {
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..10_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        sum * ln_front.exp()
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -f64::from(i) * (f64::from(i) - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        1.0 - ln_front.exp() * h
    }
}

/// The 99.9 % quantile of χ² with `k` degrees of freedom (Wilson–Hilferty).
fn chi2_999(k: usize) -> f64 {
    let k = k as f64;
    let z = 3.090_232;
    k * (1.0 - 2.0 / (9.0 * k) + z * (2.0 / (9.0 * k)).sqrt()).powi(3)
}

// ---------------------------------------------------------------------------------------------
// MMPP

/// The closed form of a two-state MMPP's count over a window `w` (seconds) from stationarity:
/// mean `λ̄w` and index of dispersion `1 + 2π₀π₁(λ₀−λ₁)²/(λ̄r)·[1 − (1−e^{−rw})/(rw)]`, with
/// `r` the sum of the switching rates (Fischer and Meier-Hellstern, "The Markov-modulated
/// Poisson process (MMPP) cookbook", 1993).
fn mmpp_closed_form(rates: [f64; 2], sojourns: [f64; 2], w: f64) -> (f64, f64) {
    let r = 1.0 / sojourns[0] + 1.0 / sojourns[1];
    let pi0 = sojourns[0] / (sojourns[0] + sojourns[1]);
    let pi1 = 1.0 - pi0;
    let mean_rate = pi0 * rates[0] + pi1 * rates[1];
    let idc = 1.0
        + 2.0 * pi0 * pi1 * (rates[0] - rates[1]).powi(2) / (mean_rate * r)
            * (1.0 - (1.0 - (-r * w).exp()) / (r * w));
    (mean_rate * w, idc)
}

#[test]
fn mmpp_counts_match_the_closed_form_mean_and_index_of_dispersion() {
    let rates = [2.0, 40.0];
    let sojourns = [8.0, 2.0];
    let mmpp = Mmpp::new(
        rates,
        [
            SimDuration::from_secs_f64(sojourns[0]),
            SimDuration::from_secs_f64(sojourns[1]),
        ],
    )
    .unwrap();
    let process = Process::Mmpp(mmpp);
    let sources: u64 = pick(4_000, 100_000);
    println!(
        "\nMMPP λ = (2, 40)/s, mean sojourns (8 s, 2 s), {sources} independent sources per window"
    );
    println!(
        "| window | mean (closed form) | mean (measured ± 95 %) | IDC (closed form) | IDC (measured ± 95 %) |"
    );
    println!("|---|---|---|---|---|");
    let mut failures = Vec::new();
    for w in [1.0, 10.0, 60.0] {
        let counts: Vec<f64> = (0..sources)
            .into_par_iter()
            .map(|k| count(&process, None, 1_000_000 + k, secs(w)) as f64)
            .collect();
        let (mean, var, m4) = moments(&counts);
        let n = counts.len() as f64;
        let idc = var / mean;
        let se_mean = (var / n).sqrt();
        // Delta method: Var(s²) ≈ (m4 − s⁴)/n; the IDC's error is dominated by the variance's.
        let se_idc = ((m4 - var * var) / n).sqrt() / mean;
        let (exact_mean, exact_idc) = mmpp_closed_form(rates, sojourns, w);
        println!(
            "| {w} s | {exact_mean:.3} | {mean:.3} ± {:.3} | {exact_idc:.3} | {idc:.3} ± {:.3} |",
            1.96 * se_mean,
            1.96 * se_idc
        );
        if (mean - exact_mean).abs() > 4.0 * se_mean {
            failures.push(format!(
                "window {w}: mean {mean} vs {exact_mean} (se {se_mean})"
            ));
        }
        if (idc - exact_idc).abs() > 4.0 * se_idc {
            failures.push(format!(
                "window {w}: IDC {idc} vs {exact_idc} (se {se_idc})"
            ));
        }
        // The expectation helper agrees with the closed form, and the bound holds.
        let expected = expected_arrivals(&process, None, secs(w));
        assert!((expected - exact_mean).abs() < 1e-9 * exact_mean);
        let bound = arrival_bound(&process, None, secs(w)) as f64;
        let most = counts.iter().copied().fold(0.0, f64::max);
        assert!(
            most <= bound,
            "window {w}: {most} arrivals above the bound {bound}"
        );
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

// ---------------------------------------------------------------------------------------------
// Renewal

/// The CDF of the gaps of `law` with mean 1 s and coefficient of variation `cv`, in seconds.
fn gap_cdf(hyper: bool, cv: f64) -> impl Fn(f64) -> f64 {
    move |x: f64| {
        if hyper {
            let c2 = cv * cv;
            let p = (1.0 + ((c2 - 1.0) / (c2 + 1.0)).sqrt()) / 2.0;
            let (m1, m2) = (1.0 / (2.0 * p), 1.0 / (2.0 * (1.0 - p)));
            1.0 - p * (-x / m1).exp() - (1.0 - p) * (-x / m2).exp()
        } else {
            let k = 1.0 / (cv * cv);
            gamma_p(k, x * k)
        }
    }
}

#[test]
fn renewal_gaps_have_the_declared_cv_and_law() {
    let cases = [
        (GapLaw::Gamma, 0.25),
        (GapLaw::Auto, 0.5),
        (GapLaw::Auto, 1.0),
        (GapLaw::Gamma, 2.0),
        (GapLaw::Gamma, 3.0),
        (GapLaw::Auto, 1.5),
        (GapLaw::Hyperexponential, 3.0),
    ];
    let sources: u64 = 16;
    let gaps_per_source: usize = pick(20_000, 500_000);
    let first_sources: u64 = pick(20_000, 400_000);
    println!(
        "\nRenewal gaps, mean 1 s: CV over {sources} sources × {gaps_per_source} gaps; KS on one source's gaps; first arrival over {first_sources} sources"
    );
    println!(
        "| gaps | CV | CV (measured ± 95 %) | mean gap (s) | KS D (p) | first arrival: E = (1+CV²)/2 | measured ± 95 % |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut failures = Vec::new();
    for (law, cv) in cases {
        let renewal = Renewal::new(1.0, cv, law).unwrap();
        let hyper = renewal.is_hyperexponential();
        let process = Process::Renewal(renewal);
        let per_source: Vec<(f64, f64)> = (0..sources)
            .into_par_iter()
            .map(|k| {
                let (mut state, mut t) =
                    ArrivalState::start(CounterStream::new(2_000_000 + k), &process, None);
                let mut gaps = Vec::with_capacity(gaps_per_source);
                for _ in 0..gaps_per_source {
                    let next = state.next_after(t, &process, None);
                    gaps.push((next - t).as_nanos() as f64 / NANOS);
                    t = next;
                }
                let (mean, var, _) = moments(&gaps);
                (var.sqrt() / mean, mean)
            })
            .collect();
        let cvs: Vec<f64> = per_source.iter().map(|p| p.0).collect();
        let (cv_mean, cv_var, _) = moments(&cvs);
        let cv_half = 2.131 * (cv_var / sources as f64).sqrt(); // t(0.975, 15)
        let gap_mean = per_source.iter().map(|p| p.1).sum::<f64>() / sources as f64;
        // KS on the gap draws themselves: arrival times round gaps to whole nanoseconds, and
        // a gamma of CV 3 puts 8 % of its gaps below 1 ns (ties the KS statistic would count).
        let mut stream = CounterStream::new(2_500_000);
        let mut sample: Vec<f64> = (0..gaps_per_source)
            .map(|_| renewal.sample_gap(&mut stream) / NANOS)
            .collect();
        let d = ks_statistic(&mut sample, gap_cdf(hyper, cv));
        let p = ks_p_value(d, sample.len());
        let firsts: Vec<f64> = (0..first_sources)
            .into_par_iter()
            .map(|k| {
                let (_, first) =
                    ArrivalState::start(CounterStream::new(3_000_000 + k), &process, None);
                first.as_secs_f64()
            })
            .collect();
        let (first_mean, first_var, _) = moments(&firsts);
        let first_half = 1.96 * (first_var / firsts.len() as f64).sqrt();
        let first_exact = (1.0 + cv * cv) / 2.0;
        let name = if hyper { "H2 (balanced)" } else { "gamma" };
        println!(
            "| {name} | {cv} | {cv_mean:.4} ± {cv_half:.4} | {gap_mean:.4} | {d:.5} ({p:.2}) | {first_exact:.3} | {first_mean:.3} ± {first_half:.3} |"
        );
        // The CV estimate is biased low by O(1/n) for heavy gaps; 1.5 half-widths or 1 %.
        if (cv_mean - cv).abs() > (1.5 * cv_half).max(0.01 * cv) {
            failures.push(format!("{name} cv {cv}: measured {cv_mean} ± {cv_half}"));
        }
        if (gap_mean - 1.0).abs() > 0.02 * cv.max(1.0) {
            failures.push(format!("{name} cv {cv}: mean gap {gap_mean}"));
        }
        if p < 0.001 {
            failures.push(format!("{name} cv {cv}: KS D = {d} (p = {p})"));
        }
        if (first_mean - first_exact).abs() > 2.0 * first_half {
            failures.push(format!(
                "{name} cv {cv}: first arrival {first_mean} ± {first_half}, expected {first_exact}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn arrival_bounds_hold_over_many_runs() {
    // Small expected counts, where the tail matters most: no run may exceed the bound.
    let processes = [
        Process::Poisson { rate: 3.0 },
        Process::Constant { rate: 3.0 },
        Process::Mmpp(
            Mmpp::new(
                [0.5, 30.0],
                [SimDuration::from_secs(20), SimDuration::from_secs(1)],
            )
            .unwrap(),
        ),
        Process::Renewal(Renewal::new(3.0, 3.0, GapLaw::Gamma).unwrap()),
        Process::Renewal(Renewal::new(3.0, 3.0, GapLaw::Hyperexponential).unwrap()),
        Process::Renewal(Renewal::new(3.0, 0.3, GapLaw::Gamma).unwrap()),
    ];
    let runs: u64 = pick(20_000, 400_000);
    for process in processes {
        let bound = arrival_bound(&process, None, secs(10.0));
        let expected = expected_arrivals(&process, None, secs(10.0));
        let most = (0..runs)
            .into_par_iter()
            .map(|k| count(&process, None, 4_000_000 + k, secs(10.0)))
            .max()
            .unwrap();
        assert!(
            most <= bound,
            "{process:?}: {most} arrivals above the bound {bound}"
        );
        assert!(
            (bound as f64) < 40.0 * expected,
            "{process:?}: bound {bound} is not informative (expected {expected})"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Member sizes

#[test]
fn heavy_tailed_group_rates_pass_kolmogorov_smirnov() {
    let members: u64 = pick(20_000, 1_000_000);
    let streams = Streams::new(2026);
    println!("\nMember sizes: {members} members per group, KS against the declared law");
    println!("| law | KS D | p-value | critical D at 0.1 % |");
    println!("|---|---|---|---|");
    let critical = 1.949 / (members as f64).sqrt();
    // Log-normal: median 0.5/s, p99 40/s.
    let z99 = 2.326_347_874_040_841;
    let (mu, sigma) = (0.5f64.ln(), (40.0f64.ln() - 0.5f64.ln()) / z99);
    let lognormal = SizeLaw::log_normal(0.5, 40.0).unwrap();
    let mut rates = lognormal.member_rates(&streams, "small", members);
    let d = ks_statistic(&mut rates, |x| phi((x.ln() - mu) / sigma));
    let p = ks_p_value(d, rates.len());
    println!("| log-normal (median 0.5, p99 40) | {d:.5} | {p:.3} | {critical:.5} |");
    assert!(d < critical, "log-normal D = {d}");
    // Pareto: scale 0.2/s, shape 1.2, uncapped.
    let pareto = SizeLaw::pareto(0.2, 1.2, None).unwrap();
    let mut rates = pareto.member_rates(&streams, "mid", members);
    let d = ks_statistic(&mut rates, |x| 1.0 - (0.2 / x).powf(1.2));
    let p = ks_p_value(d, rates.len());
    println!("| Pareto (scale 0.2, shape 1.2) | {d:.5} | {p:.3} | {critical:.5} |");
    assert!(d < critical, "Pareto D = {d}");
    // Capped: the cap's atom holds (scale/cap)^shape of the members.
    let capped = SizeLaw::pareto(0.2, 1.2, Some(20.0)).unwrap();
    let rates = capped.member_rates(&streams, "mid", members);
    let at_cap = rates.iter().filter(|&&r| r == 20.0).count() as f64 / members as f64;
    let atom = (0.2f64 / 20.0).powf(1.2);
    let se = (atom * (1.0 - atom) / members as f64).sqrt();
    println!(
        "| Pareto capped at 20: share at the cap {at_cap:.5} (expected {atom:.5} ± {:.5}) | | | |",
        1.96 * se
    );
    assert!((at_cap - atom).abs() < 4.0 * se && rates.iter().all(|&r| r <= 20.0));
    // Zipf: exact by rank.
    let zipf = SizeLaw::zipf(1_000.0, 1.1).unwrap();
    let rates = zipf.member_rates(&streams, "large", 1_000);
    let exact = rates
        .iter()
        .enumerate()
        .all(|(i, &r)| (r - 1_000.0 / ((i + 1) as f64).powf(1.1)).abs() <= 1e-12 * r);
    println!("| Zipf (top 1000, s 1.1): every rank exact | {exact} | | |");
    assert!(exact);
    // Adding a group or members changes no member's rate.
    let other = Streams::new(2026);
    let before = lognormal.member_rates(&other, "small", 100);
    let _ = lognormal.member_rates(&other, "new-group", 100);
    assert_eq!(
        before[..],
        lognormal.member_rates(&other, "small", 200)[..100]
    );
}

// ---------------------------------------------------------------------------------------------
// Daily profile

/// The declared profile, written here from its definition: a cosine between the trough and 1
/// peaking at `peak_h`, times the weekend factor on Saturday and Sunday (day 5 and 6 from
/// Monday).
fn declared(peak_h: f64, trough: f64, weekend: f64, hours_since_monday: f64) -> f64 {
    let day = (hours_since_monday / 24.0).floor() as i64 % 7;
    let hour = hours_since_monday.rem_euclid(24.0);
    let daily = trough
        + (1.0 - trough) * (1.0 + (2.0 * std::f64::consts::PI * (hour - peak_h) / 24.0).cos())
            / 2.0;
    if day >= 5 { daily * weekend } else { daily }
}

#[test]
fn a_daily_profile_drives_hourly_counts_along_the_declared_curve() {
    let (peak_h, trough, weekend) = (14.0, 0.1, 0.3);
    let profile = DailyProfile::new(SimDuration::from_secs(14 * 3_600), trough, weekend).unwrap();
    let start = ClockInstant::parse("2026-03-02T00:00:00Z").unwrap(); // Monday midnight
    let week = SimDuration::from_secs(7 * 86_400);
    let curve = profile.compile(&start, week);
    let hours = 168;
    // The compiled curve against the declared cosine, hour by hour (Simpson's rule on the
    // declared curve, 60 steps per hour).
    let mut worst_shape = 0.0f64;
    for h in 0..hours {
        let compiled = (curve.integral(secs(f64::from(h + 1) * 3_600.0))
            - curve.integral(secs(f64::from(h) * 3_600.0)))
            / NANOS
            / 3_600.0;
        let steps = 60;
        let mut simpson = 0.0;
        for i in 0..=steps {
            let x = f64::from(h) + f64::from(i) / f64::from(steps);
            let w = if i == 0 || i == steps {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            simpson += w * declared(peak_h, trough, weekend, x.min(f64::from(h + 1) - 1e-9));
        }
        let exact = simpson / (3.0 * f64::from(steps));
        worst_shape = worst_shape.max((compiled - exact).abs() / exact);
    }
    let rate = pick(5.0, 50.0);
    let hour_counts = |times: &[SimTime]| {
        let mut counts = vec![0u64; hours as usize];
        for t in times {
            counts[(t.as_nanos() / 3_600_000_000_000) as usize] += 1;
        }
        counts
    };
    let expected: Vec<f64> = (0..hours)
        .map(|h| {
            rate * (curve.integral(secs(f64::from(h + 1) * 3_600.0))
                - curve.integral(secs(f64::from(h) * 3_600.0)))
                / NANOS
        })
        .collect();
    let end = SimTime::ZERO + week;
    println!(
        "\nDaily profile (peak 14:00, trough 0.1, weekend 0.3) over one week from Monday 00:00, peak rate {rate}/s; 168 hourly counts"
    );
    println!("| process | arrivals | statistic | threshold | worst hour (obs − exp) |");
    println!("|---|---|---|---|---|");
    println!(
        "| compiled curve vs declared cosine | | worst hourly mean {worst_shape:.2e} relative | 1e-3 | |"
    );
    assert!(worst_shape < 1e-3, "compiled curve off by {worst_shape}");
    let mut failures = Vec::new();
    let cases: [(&str, Process, f64); 3] = [
        ("Poisson", Process::Poisson { rate }, 1.0),
        (
            "renewal, gamma CV 2",
            Process::Renewal(Renewal::new(rate, 2.0, GapLaw::Gamma).unwrap()),
            4.0,
        ),
        ("constant", Process::Constant { rate }, 0.0),
    ];
    for (name, process, dispersion) in cases {
        let times = arrivals(&process, Some(&curve), 77, end);
        let counts = hour_counts(&times);
        let worst = counts
            .iter()
            .zip(&expected)
            .map(|(&o, &e)| o as f64 - e)
            .fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
        if dispersion == 0.0 {
            // A constant source in operational time: every hour within one arrival.
            println!(
                "| {name} | {} | max abs(obs − exp) {:.3} | 1 | {worst:+.3} |",
                times.len(),
                worst.abs()
            );
            if worst.abs() > 1.0 {
                failures.push(format!("{name}: an hour off by {worst}"));
            }
        } else {
            // χ² with the count's variance: the mean for Poisson, CV² × mean for a renewal
            // process over windows of thousands of gaps.
            let chi2: f64 = counts
                .iter()
                .zip(&expected)
                .map(|(&o, &e)| (o as f64 - e).powi(2) / (dispersion * e))
                .sum();
            let threshold = chi2_999(hours as usize);
            println!(
                "| {name} | {} | χ² = {chi2:.1} (168 dof) | {threshold:.1} | {worst:+.1} |",
                times.len()
            );
            if chi2 > threshold {
                failures.push(format!("{name}: χ² {chi2} above {threshold}"));
            }
        }
    }
    // A spike multiplies the profile: Monday 09:00–09:05 at ten times.
    let spiked = curve.with_multipliers(&[
        (secs(9.0 * 3_600.0), 10.0),
        (secs(9.0 * 3_600.0 + 300.0), 1.0),
    ]);
    let process = Process::Poisson { rate };
    let window = (secs(9.0 * 3_600.0), secs(9.0 * 3_600.0 + 300.0));
    let in_window = arrivals(&process, Some(&spiked), 78, window.1)
        .iter()
        .filter(|t| **t >= window.0)
        .count() as f64;
    let expected_window = rate * (spiked.integral(window.1) - spiked.integral(window.0)) / NANOS;
    let declared_window = rate * 10.0 * 300.0 * declared(peak_h, trough, weekend, 9.041_666);
    let z = (in_window - expected_window) / expected_window.sqrt();
    println!(
        "| Poisson, ×10 spike Mon 09:00–09:05 | {in_window} | z = {z:+.2} (expected {expected_window:.0}; declared {declared_window:.0}) | 4 | |"
    );
    if z.abs() > 4.0 || (expected_window / declared_window - 1.0).abs() > 0.01 {
        failures.push(format!("spike window: {in_window} vs {expected_window}"));
    }
    // MMPP through the profile: the weekly total over 40 sources against λ̄·Λ.
    let mmpp = Process::Mmpp(
        Mmpp::new(
            [rate * 0.5, rate * 5.0],
            [SimDuration::from_secs(60), SimDuration::from_secs(10)],
        )
        .unwrap(),
    );
    let totals: Vec<f64> = (0..40u64)
        .into_par_iter()
        .map(|k| count(&mmpp, Some(&curve), 5_000 + k, end) as f64)
        .collect();
    let (mean, var, _) = moments(&totals);
    let exact = expected_arrivals(&mmpp, Some(&curve), end);
    let half = 2.023 * (var / 40.0).sqrt(); // t(0.975, 39)
    println!(
        "| MMPP (0.5×, 5× the rate; 60 s, 10 s): weekly total, 40 sources | {mean:.0} ± {half:.0} | expected {exact:.0} | | |"
    );
    if (mean - exact).abs() > 2.0 * half {
        failures.push(format!("MMPP weekly total {mean} ± {half} vs {exact}"));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

// ---------------------------------------------------------------------------------------------
// Replay

/// One record of a log as the test writes it.
#[derive(Clone, Debug, PartialEq)]
struct Written {
    nanos: u64,
    tenant: String,
    class: Option<String>,
}

/// A log of `n` records at multiples of 10 ns (so speed-up 10 is exact), tenants and classes
/// drawn from a seeded stream, timestamps non-decreasing with ties.
fn synthetic_log(n: usize) -> Vec<Written> {
    let mut stream = CounterStream::new(99);
    let mut t = 0u64;
    (0..n)
        .map(|_| {
            let w = stream.next_u64();
            t += (w % 4) * 10 * (w >> 60); // ties when either factor is 0
            Written {
                nanos: t,
                tenant: format!("t-{}", (w >> 8) % 17),
                class: ((w >> 16) % 3 != 0)
                    .then(|| ["api", "report"][((w >> 20) % 2) as usize].to_string()),
            }
        })
        .collect()
}

fn render(log: &[Written], format: LogFormat) -> String {
    let mut text = String::new();
    if format == LogFormat::Csv {
        text.push_str("# a synthetic log\ntenant,class,timestamp\n");
    }
    for r in log {
        let seconds = format!("{}.{:09}", r.nanos / 1_000_000_000, r.nanos % 1_000_000_000);
        match format {
            LogFormat::Csv => text.push_str(&format!(
                "{},{},{seconds}\n",
                r.tenant,
                r.class.as_deref().unwrap_or("")
            )),
            LogFormat::JsonLines => {
                let class = r
                    .class
                    .as_ref()
                    .map(|c| format!(", \"class\": \"{c}\""))
                    .unwrap_or_default();
                text.push_str(&format!(
                    "{{\"timestamp\": \"{seconds}s\", \"tenant\": \"{}\"{class}}}\n",
                    r.tenant
                ));
            }
        }
    }
    text
}

fn replayed(
    text: &str,
    format: LogFormat,
    timing: ReplayTiming,
    start: Option<ClockInstant>,
) -> Vec<(SimTime, String, Option<String>)> {
    let reader = LogReader::new(Cursor::new(text.as_bytes()), format, start);
    let mut replay = Replay::once(reader, timing).expect("valid timing");
    let mut out = Vec::new();
    while let Some(a) = replay.next_arrival().expect("a valid log") {
        out.push((a.at, a.tenant.to_string(), a.class.map(str::to_string)));
    }
    out
}

#[test]
fn replay_yields_exactly_the_logged_arrivals_at_speed_up_1_and_10() {
    let n = pick(20_000, 1_000_000);
    let log = synthetic_log(n);
    println!("\nReplay: {n} records (timestamps at multiples of 10 ns), every record compared");
    println!("| format | speed-up | offset | records | mismatches |");
    println!("|---|---|---|---|---|");
    for format in [LogFormat::Csv, LogFormat::JsonLines] {
        let text = render(&log, format);
        for (speedup, offset) in [(1.0, 0u64), (10.0, 0), (10.0, 5_000_000_000)] {
            let timing = ReplayTiming {
                speedup,
                offset: SimDuration::from_nanos(offset),
                loop_every: None,
            };
            let got = replayed(&text, format, timing, None);
            let mismatches = got
                .iter()
                .zip(&log)
                .filter(|((at, tenant, class), w)| {
                    at.as_nanos() != offset + w.nanos / speedup as u64
                        || *tenant != w.tenant
                        || *class != w.class
                })
                .count()
                + got.len().abs_diff(log.len());
            println!(
                "| {format:?} | {speedup} | {offset} ns | {} | {mismatches} |",
                got.len()
            );
            assert_eq!(mismatches, 0, "{format:?} at speed-up {speedup}");
        }
    }
}

/// The incident the shipped log tells (seed 001, section 7: "Tenant A runs a heavy report at
/// 09:00"): from 08:58 to 09:04 on Monday 2 March 2026 (UTC), six bystander shops send API
/// requests at about 0.6 to 2 per second (log-normal sizes, median 1, p99 3; `shop-3` bursty,
/// an MMPP), and
/// `tenant-a` sends API requests at 0.5 per second until, at 09:00:00, its heavy report starts:
/// `report` requests at 30 per second for 90 seconds. Times are truncated to the millisecond.
/// Returns the records (milliseconds since 08:58) and the file's text.
fn incident_log() -> (Vec<(u64, String, String)>, String) {
    let streams = Streams::new(7);
    let window = secs(360.0);
    let mut records: Vec<(u64, String, String)> = Vec::new();
    let mut push = |times: Vec<SimTime>, tenant: &str, class: &str| {
        records.extend(times.into_iter().map(|t| {
            (
                t.as_nanos() / 1_000_000,
                tenant.to_string(),
                class.to_string(),
            )
        }));
    };
    let sizes = SizeLaw::log_normal(1.0, 3.0)
        .expect("a valid law")
        .member_rates(&streams, "shop", 6);
    for (i, rate) in sizes.iter().enumerate() {
        let process = if i == 2 {
            Process::Mmpp(
                Mmpp::new(
                    [rate * 0.25, rate * 6.0],
                    [SimDuration::from_secs(40), SimDuration::from_secs(8)],
                )
                .expect("a valid MMPP"),
            )
        } else {
            Process::Poisson { rate: *rate }
        };
        let key = streams.key_for("incident-arrivals", i as u64);
        push(
            arrivals(&process, None, key, window),
            &format!("shop-{}", i + 1),
            "api",
        );
    }
    let api = Process::Poisson { rate: 0.5 };
    push(
        arrivals(
            &api,
            None,
            streams.key_for("incident-arrivals", 100),
            window,
        ),
        "tenant-a",
        "api",
    );
    let report = RateCurve::from_points(
        &[(secs(0.0), 0.0), (secs(120.0), 1.0), (secs(210.0), 0.0)],
        tenantsim::model::arrivals::Interpolation::Step,
    )
    .expect("a valid curve");
    let heavy = Process::Poisson { rate: 30.0 };
    push(
        arrivals(
            &heavy,
            Some(&report),
            streams.key_for("incident-arrivals", 101),
            window,
        ),
        "tenant-a",
        "report",
    );
    records.sort_by_key(|r| r.0);
    let start = ClockInstant::parse("2026-03-02T08:58:00Z").expect("a valid instant");
    let mut text = String::from(
        "# A noisy-neighbour incident (seed 001, section 7: \"Tenant A runs a heavy report at 09:00\").\n\
         # Monday 2 March 2026, 08:58 to 09:04 UTC: six shops send API traffic; at 09:00:00 tenant-a\n\
         # starts a report, 30 requests/s for 90 s, on top of its API traffic.\n\
         # Generated by `incident_log` in tests/it/workload.rs (seeded; the test checks this file\n\
         # is its output). Regenerate: TENANTSIM_WRITE_LOG=1 cargo test --test it workload::shipped\n\
         timestamp,tenant,class\n",
    );
    for (ms, tenant, class) in &records {
        let at = start.plus(SimDuration::from_millis(*ms));
        let label = at.to_string();
        // Always three decimals, as request logs write them.
        let stamp = match label.split_once('.') {
            Some((whole, fraction)) => format!("{whole}.{:0<3}Z", fraction.trim_end_matches('Z')),
            None => format!("{}.000Z", label.trim_end_matches('Z')),
        };
        text.push_str(&format!("{stamp},{tenant},{class}\n"));
    }
    (records, text)
}

const INCIDENT_LOG: &str = "scenarios/replayed-incident.csv";

#[test]
fn shipped_incident_log_is_generated_and_replays_exactly() {
    let (records, text) = incident_log();
    let path = crate::common::root().join(INCIDENT_LOG);
    if std::env::var("TENANTSIM_WRITE_LOG").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &text).expect("write the incident log");
    }
    let shipped = std::fs::read_to_string(&path).expect("the shipped incident log");
    assert!(
        shipped == text,
        "{INCIDENT_LOG} is not what incident_log() writes; regenerate it"
    );
    // The story holds: tenant-a's reports all fall in 09:00:00–09:01:30, and they dominate.
    let reports: Vec<u64> = records
        .iter()
        .filter(|r| r.2 == "report")
        .map(|r| r.0)
        .collect();
    assert!(reports.iter().all(|&ms| (120_000..210_000).contains(&ms)));
    let in_window = records
        .iter()
        .filter(|r| (120_000..210_000).contains(&r.0))
        .count();
    assert!(reports.len() > 2_000 && reports.len() as f64 > 0.7 * in_window as f64);
    // Replayed at speed-up 1 and 10 from the scenario's start, it is exactly the records.
    let start = ClockInstant::parse("2026-03-02T08:58:00Z").unwrap();
    for speedup in [1u64, 10] {
        let timing = ReplayTiming {
            speedup: speedup as f64,
            ..ReplayTiming::AS_WRITTEN
        };
        let got = replayed(&shipped, LogFormat::Csv, timing, Some(start));
        assert_eq!(got.len(), records.len());
        for ((at, tenant, class), (ms, t, c)) in got.iter().zip(&records) {
            assert_eq!(at.as_nanos(), ms * 1_000_000 / speedup);
            assert_eq!((tenant, class.as_deref()), (t, Some(c.as_str())));
        }
    }
    // And against a plain reading of the lines (split on commas, nothing shared with the
    // reader): the same tenants in the same order.
    let plain: Vec<&str> = shipped
        .lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    let got = replayed(
        &shipped,
        LogFormat::Csv,
        ReplayTiming::AS_WRITTEN,
        Some(start),
    );
    assert!(plain.iter().zip(&got).all(|(a, b)| *a == b.1) && plain.len() == got.len());
}

/// A log generated on the fly: a header and `lines` records, never held whole.
struct GeneratedLog {
    lines: u64,
    next: u64,
    buffer: Vec<u8>,
    position: usize,
}

impl GeneratedLog {
    fn new(lines: u64) -> GeneratedLog {
        let mut buffer = Vec::with_capacity(256);
        buffer.extend_from_slice(b"timestamp,tenant,class\n");
        GeneratedLog {
            lines,
            next: 0,
            buffer,
            position: 0,
        }
    }
}

impl Read for GeneratedLog {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for GeneratedLog {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.position == self.buffer.len() && self.next < self.lines {
            use std::io::Write;
            self.buffer.clear();
            self.position = 0;
            let i = self.next;
            self.next += 1;
            // 1,000 records per second of log time, 500 tenants.
            let _ = writeln!(
                self.buffer,
                "{}.{:03},tenant-{},api",
                i / 1_000,
                i % 1_000,
                i % 500
            );
        }
        Ok(&self.buffer[self.position..])
    }

    fn consume(&mut self, amount: usize) {
        self.position += amount;
    }
}

/// Replays a generated log of `lines` records: (records, peak heap bytes during the replay).
fn replay_generated(lines: u64) -> (u64, u64) {
    let mut records = 0;
    let mut last = SimTime::ZERO;
    let source = GeneratedLog::new(lines);
    let info = allocation_counter::measure(|| {
        let reader = LogReader::new(source, LogFormat::Csv, None);
        let mut replay = Replay::once(reader, ReplayTiming::AS_WRITTEN).expect("valid timing");
        while let Some(a) = replay.next_arrival().expect("a valid log") {
            records += 1;
            last = a.at;
        }
    });
    assert_eq!(last.as_nanos(), (lines - 1) * 1_000_000);
    (records, info.bytes_max)
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn replay_memory_stays_bounded_whatever_the_log_length() {
    let (small_records, small_peak) = replay_generated(1_000);
    let lines = pick(200_000, 10_000_000);
    let rss_before = peak_rss_kib();
    let (records, peak) = replay_generated(lines);
    let rss_after = peak_rss_kib();
    println!(
        "\nReplay of a generated {lines}-line log: {records} records, peak heap {peak} bytes \
         during the replay (1,000 lines: {small_peak} bytes); process peak RSS (VmHWM) \
         {rss_before:?} KiB before, {rss_after:?} KiB after"
    );
    assert_eq!(small_records, 1_000);
    assert_eq!(records, lines);
    // The reader's line buffer and two name buffers, whatever the length of the log.
    assert_eq!(peak, small_peak);
    assert!(peak < 8_192, "peak heap {peak} bytes");
}

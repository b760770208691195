//! Per-arrival cost of `model::arrivals` and records per second of `model::replay`, as ratios
//! measured in one run: `cargo run --release --example arrival_cost [ARRIVALS]`.
//!
//! The reference is a copy of the model's Poisson arrival loop before `model::arrivals` (an
//! exponential gap from a draw taken one arrival ahead, the spike schedule consulted, a 1 ns
//! floor); every other row is the same work through `ArrivalState::next_after`. Two layouts: one
//! source (its state in cache) and 100,000 sources in turn (a cold record per arrival, as in a
//! large run). Each figure is the minimum of seven interleaved repetitions (the least disturbed by
//! other work on the machine).
#![allow(clippy::disallowed_methods)] // ok: a benchmark reads the wall clock (as `simulate bench`)

use std::hint::black_box;
use std::io::Cursor;
use std::time::Instant;

use tenantsim::clock::ClockInstant;
use tenantsim::kernel::rng::{CounterStream, unit_open};
use tenantsim::model::arrivals::{
    ArrivalState, DailyProfile, GapLaw, Mmpp, Process, RateCurve, Renewal, standard_exponential,
};
use tenantsim::model::replay::{LogFormat, LogReader, Replay, ReplayTiming};
use tenantsim::time::{NANOS_PER_SEC, SimDuration, SimTime};

/// The model's loop before `model::arrivals`, Poisson without a schedule: the state it kept in
/// a tenant's record and the same arithmetic.
#[derive(Clone, Copy)]
struct Reference {
    stream: CounterStream,
    mean_gap_nanos: f64,
    next_exponential: f64,
    schedule: Option<u32>,
}

impl Reference {
    #[inline]
    fn next_arrival(&mut self, now: SimTime) -> SimTime {
        let mut t = now;
        loop {
            let (multiplier, until) = match self.schedule {
                Some(multiplier) => (f64::from(multiplier), SimTime::MAX),
                None => (1.0, SimTime::MAX),
            };
            let mean_gap = if multiplier == 1.0 {
                self.mean_gap_nanos
            } else {
                NANOS_PER_SEC as f64 / multiplier
            };
            let standard = self.next_exponential;
            self.next_exponential = standard_exponential(&mut self.stream);
            let candidate = t + SimDuration::from_nanos_f64(standard * mean_gap)
                .max(SimDuration::from_nanos(1));
            if candidate < until {
                return candidate;
            }
            t = until;
        }
    }
}

fn least(xs: Vec<f64>) -> f64 {
    xs.into_iter().fold(f64::INFINITY, f64::min)
}

fn most(xs: Vec<f64>) -> f64 {
    xs.into_iter().fold(0.0, f64::max)
}

/// Nanoseconds per arrival of `step` over `arrivals` arrivals spread over `sources`.
fn time_per_arrival<S: Copy>(
    sources: usize,
    arrivals: usize,
    init: S,
    mut step: impl FnMut(&mut S, SimTime) -> SimTime,
) -> f64 {
    let mut states = vec![init; sources];
    let mut times = vec![SimTime::ZERO; sources];
    for (s, t) in states.iter_mut().zip(times.iter_mut()) {
        *t = step(s, SimTime::ZERO);
    }
    let started = Instant::now();
    let mut i = 0;
    for _ in 0..arrivals {
        times[i] = step(&mut states[i], times[i]);
        i += 1;
        if i == sources {
            i = 0;
        }
    }
    black_box(&times);
    started.elapsed().as_secs_f64() * 1e9 / arrivals as f64
}

fn main() {
    let arrivals: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000_000);
    let rate = 100.0;
    let start = ClockInstant::parse("2026-03-02T00:00:00Z").expect("a valid instant");
    let week = SimDuration::from_secs(7 * 86_400);
    let profile = DailyProfile::new(SimDuration::from_secs(14 * 3_600), 0.1, 0.3)
        .expect("a valid profile")
        .compile(&start, week);
    let spikes = RateCurve::from_multipliers(&[
        (SimTime::ZERO + SimDuration::from_secs(3_600), 10.0),
        (SimTime::ZERO + SimDuration::from_secs(3_660), 1.0),
    ]);
    let mmpp = Process::Mmpp(
        Mmpp::new(
            [rate * 0.5, rate * 5.0],
            [SimDuration::from_secs(60), SimDuration::from_secs(10)],
        )
        .expect("valid"),
    );
    let gamma = Process::Renewal(Renewal::new(rate, 0.5, GapLaw::Auto).expect("valid"));
    let h2 = Process::Renewal(Renewal::new(rate, 3.0, GapLaw::Auto).expect("valid"));
    let poisson = Process::Poisson { rate };
    let constant = Process::Constant { rate };
    let cases: Vec<(&str, Process, Option<&RateCurve>)> = vec![
        ("Poisson", poisson, None),
        ("Poisson, spike curve", poisson, Some(&spikes)),
        ("Poisson, daily profile", poisson, Some(&profile)),
        ("constant", constant, None),
        ("constant, daily profile", constant, Some(&profile)),
        ("MMPP", mmpp, None),
        ("MMPP, daily profile", mmpp, Some(&profile)),
        ("renewal, gamma CV 0.5", gamma, None),
        ("renewal, H2 CV 3", h2, None),
        (
            "renewal, gamma CV 0.5, daily profile",
            gamma,
            Some(&profile),
        ),
    ];
    println!("{arrivals} arrivals per figure; best of 7; ns per arrival (ratio to the reference)");
    println!("| process | 1 source | 100,000 sources |");
    println!("|---|---|---|");
    let reference = |sources: usize| {
        let mut stream = CounterStream::new(1);
        let first = standard_exponential(&mut stream);
        time_per_arrival(
            sources,
            arrivals,
            Reference {
                stream,
                mean_gap_nanos: NANOS_PER_SEC as f64 / rate,
                next_exponential: first,
                schedule: None,
            },
            |s, t| s.next_arrival(t),
        )
    };
    let measure = |sources: usize, process: &Process, curve: Option<&RateCurve>| {
        let (state, _) = ArrivalState::start(CounterStream::new(1), process, curve);
        time_per_arrival(sources, arrivals, state, |s, t| {
            s.next_after(t, process, curve)
        })
    };
    let mut reference_ns = [Vec::new(), Vec::new()];
    let mut figures: Vec<[Vec<f64>; 2]> = cases.iter().map(|_| [Vec::new(), Vec::new()]).collect();
    for _ in 0..7 {
        for (layout, sources) in [1usize, 100_000].into_iter().enumerate() {
            reference_ns[layout].push(reference(sources));
            for (c, (_, process, curve)) in cases.iter().enumerate() {
                figures[c][layout].push(measure(sources, process, *curve));
            }
        }
    }
    let reference_ns = reference_ns.map(least);
    println!(
        "| reference (the model's loop before) | {:.2} | {:.2} |",
        reference_ns[0], reference_ns[1]
    );
    for ((name, _, _), figure) in cases.iter().zip(figures) {
        let [one, many] = figure.map(least);
        println!(
            "| {name} | {one:.2} ({:.2}x) | {many:.2} ({:.2}x) |",
            one / reference_ns[0],
            many / reference_ns[1]
        );
    }
    // Replay: records per second from an in-memory log.
    let records = arrivals.min(5_000_000);
    let mut csv = String::from("timestamp,tenant,class\n");
    let mut jsonl = String::new();
    for i in 0..records {
        let stamp = format!("{}.{:03}", i / 1_000, i % 1_000);
        let u = unit_open(i as u64 * 0x9E37_79B9_7F4A_7C15);
        let tenant = format!("tenant-{}", (u * 500.0) as u32);
        csv.push_str(&format!("{stamp},{tenant},api\n"));
        jsonl.push_str(&format!(
            "{{\"timestamp\": {stamp}, \"tenant\": \"{tenant}\", \"class\": \"api\"}}\n"
        ));
    }
    for (name, text, format) in [
        ("CSV", &csv, LogFormat::Csv),
        ("JSON Lines", &jsonl, LogFormat::JsonLines),
    ] {
        let rates: Vec<f64> = (0..7)
            .map(|_| {
                let reader = LogReader::new(Cursor::new(text.as_bytes()), format, None);
                let mut replay =
                    Replay::once(reader, ReplayTiming::AS_WRITTEN).expect("valid timing");
                let started = Instant::now();
                let mut n = 0u64;
                while let Some(a) = replay.next_arrival().expect("a valid log") {
                    black_box(a.at);
                    n += 1;
                }
                n as f64 / started.elapsed().as_secs_f64()
            })
            .collect();
        println!(
            "replay reader, {name}: {:.2} M records/s ({records} records, best of 7)",
            most(rates) / 1e6
        );
    }
}

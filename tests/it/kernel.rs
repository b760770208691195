//! The kernel: same-time events run FIFO, budgets stop a runaway model with an error naming
//! the budget, the run stops at its end time.

use tenantsim::kernel::{Budgets, EventQueue, Model, RunError, run_until};
use tenantsim::time::{SimDuration, SimTime};

/// Records the order it sees events in; event `Loop` reschedules itself at the same time.
#[derive(Default)]
struct Recorder {
    seen: Vec<(u64, u32)>,
}

#[derive(Clone, Copy)]
enum Ev {
    Mark(u32),
    Loop,
}

impl Model for Recorder {
    type Event = Ev;
    fn handle(&mut self, now: SimTime, event: Ev, queue: &mut EventQueue<Ev>) {
        match event {
            Ev::Mark(id) => self.seen.push((now.as_nanos(), id)),
            Ev::Loop => queue.schedule(now, Ev::Loop),
        }
    }
}

#[test]
fn same_time_events_run_in_insertion_order() {
    let mut queue = EventQueue::new();
    let t = SimTime::from_nanos(500);
    // Interleave times so heap order alone would not give FIFO.
    for id in 0..100u32 {
        queue.schedule(t, Ev::Mark(id));
        queue.schedule(
            SimTime::from_nanos(u64::from(id % 7) * 100),
            Ev::Mark(1000 + id),
        );
    }
    let mut model = Recorder::default();
    run_until(
        &mut model,
        &mut queue,
        SimTime::MAX,
        Budgets { max_events: 1_000 },
    )
    .expect("runs");
    let at_t: Vec<u32> = model
        .seen
        .iter()
        .filter(|(time, id)| *time == 500 && *id < 1000)
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(at_t, (0..100).collect::<Vec<_>>());
    let times: Vec<u64> = model.seen.iter().map(|(time, _)| *time).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "events out of time order"
    );
}

#[test]
fn a_runaway_model_hits_the_event_budget() {
    let mut queue = EventQueue::new();
    queue.schedule(SimTime::from_nanos(10), Ev::Loop);
    let mut model = Recorder::default();
    let end = SimTime::ZERO + SimDuration::from_secs(1);
    let err = run_until(&mut model, &mut queue, end, Budgets { max_events: 10_000 })
        .expect_err("must stop");
    assert_eq!(
        err,
        RunError::EventBudget {
            limit: 10_000,
            at: SimTime::from_nanos(10),
            end
        }
    );
    let message = err.to_string();
    assert!(message.contains("simulation.max_events"), "{message}");
}

#[test]
fn events_at_or_after_the_end_are_not_run() {
    let mut queue = EventQueue::new();
    queue.schedule(SimTime::from_nanos(99), Ev::Mark(1));
    queue.schedule(SimTime::from_nanos(100), Ev::Mark(2));
    let mut model = Recorder::default();
    let summary = run_until(
        &mut model,
        &mut queue,
        SimTime::from_nanos(100),
        Budgets { max_events: 10 },
    )
    .expect("runs");
    assert_eq!(summary.events, 1);
    assert_eq!(model.seen, vec![(99, 1)]);
    assert_eq!(queue.len(), 1);
}

#[test]
fn a_runaway_scenario_ends_in_a_clear_error() {
    // A scenario whose event budget is far too small for its load stops with exit 2 and says
    // which limit to raise.
    let output = crate::common::simulate(&[
        "scenarios/hot-tenant.toml",
        "--set",
        "simulation.max_events=50000",
    ]);
    assert_eq!(crate::common::code(&output), 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("event budget exhausted: 50000 events"),
        "{stderr}"
    );
    assert!(stderr.contains("--set simulation.max_events=N"), "{stderr}");
}

#[test]
fn streams_depend_only_on_seed_purpose_and_entity() {
    use rand::Rng;
    use tenantsim::kernel::Streams;
    let draw = |seed, purpose: &str, entity| Streams::new(seed).stream(purpose, entity).next_u64();
    assert_eq!(draw(42, "arrivals", 3), draw(42, "arrivals", 3));
    assert_ne!(draw(42, "arrivals", 3), draw(42, "arrivals", 4));
    assert_ne!(draw(42, "arrivals", 3), draw(43, "arrivals", 3));
    assert_ne!(draw(42, "arrivals", 3), draw(42, "work", 3));
}

//! The run loop: pops events in `(time, seq)` order and hands them to the model, within budgets.
//!
//! A run ends when the queue is empty or the next event is at or after the end time. A model
//! that keeps scheduling work (a zero-delay loop, a retry storm without bounds) hits the event
//! budget and ends in an error naming the budget, never in a hang.

use std::fmt;

use super::queue::EventQueue;
use crate::time::SimTime;

/// A simulated system driven by events.
pub trait Model {
    /// The events this model schedules and handles.
    type Event: Copy;

    /// Handles one event at simulated time `now`, scheduling follow-up events on `queue`.
    fn handle(&mut self, now: SimTime, event: Self::Event, queue: &mut EventQueue<Self::Event>);

    /// Events due within `2^warm_bits()` ns are passed to [`Model::warm`] ahead of their turn
    /// (see [`EventQueue::pop_warming`]); 0, the default, turns the look-ahead off.
    fn warm_bits(&self) -> u32 {
        0
    }

    /// Reads, without changing anything, the state handling these soon-due `events` will
    /// touch, so that their cache misses overlap. Must not affect the run in any way.
    fn warm(&self, _events: &[Self::Event]) {}
}

/// Limits on one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budgets {
    /// Most events the run may process before it is stopped as a runaway.
    pub max_events: u64,
}

/// What a finished run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunSummary {
    /// Events processed.
    pub events: u64,
    /// Time of the last processed event.
    pub last_event_at: SimTime,
}

/// Why a run stopped early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    /// The event budget ran out before the end time.
    EventBudget {
        /// The budget.
        limit: u64,
        /// Simulated time reached when it ran out.
        at: SimTime,
        /// The end time the run was heading for.
        end: SimTime,
    },
    /// An input the model reads during the run (a replayed request log) failed.
    Input {
        /// What failed, where.
        message: String,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::EventBudget { limit, at, end } => write!(
                f,
                "event budget exhausted: {limit} events processed by simulated {at} of {end}; \
                 the model may be in a runaway loop, or the scenario needs more events: \
                 raise it with `--set simulation.max_events=N`"
            ),
            RunError::Input { message } => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Runs `model` on the events in `queue` until simulated time `end` (exclusive) or the queue is
/// empty. Events at or after `end` stay in the queue.
pub fn run_until<M: Model>(
    model: &mut M,
    queue: &mut EventQueue<M::Event>,
    end: SimTime,
    budgets: Budgets,
) -> Result<RunSummary, RunError> {
    run_observed(model, queue, end, budgets, |_, _, _| {})
}

/// [`run_until`], calling `observe(index, time, &event)` before each event is handled (for
/// event digests and traces; a no-op closure compiles away).
pub fn run_observed<M: Model>(
    model: &mut M,
    queue: &mut EventQueue<M::Event>,
    end: SimTime,
    budgets: Budgets,
    mut observe: impl FnMut(u64, SimTime, &M::Event),
) -> Result<RunSummary, RunError> {
    let mut events: u64 = 0;
    let mut last_event_at = SimTime::ZERO;
    let warm_bits = model.warm_bits();
    loop {
        let next = if warm_bits == 0 {
            queue.peek_time()
        } else {
            queue.peek_time_warming(warm_bits, |e| model.warm(e))
        };
        let Some(at) = next else {
            break;
        };
        if at >= end {
            break;
        }
        if events >= budgets.max_events {
            return Err(RunError::EventBudget {
                limit: budgets.max_events,
                at,
                end,
            });
        }
        let Some((now, event)) = queue.pop_peeked() else {
            break;
        };
        observe(events, now, &event);
        events += 1;
        last_event_at = now;
        model.handle(now, event, queue);
    }
    Ok(RunSummary {
        events,
        last_event_at,
    })
}

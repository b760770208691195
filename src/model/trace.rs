//! What happened to each request and background job, as records a trace sink can write (JSON
//! Lines, Chrome trace).
//!
//! The model calls a [`TraceSink`] it is given; the sink (in the CLI) does the I/O. With no
//! sink the model pays one branch per traced step.

use super::metrics::Outcome;
use crate::time::{SimDuration, SimTime};

/// One step of one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceRecord {
    /// When.
    pub at: SimTime,
    /// Tenant index.
    pub tenant: u32,
    /// The request's number within its tenant (0, 1, 2, ...): unique per tenant.
    pub request: u64,
    /// Attempt number (1 for the first; 0 for request-level steps).
    pub attempt: u32,
    /// What happened.
    pub kind: TraceKind,
}

/// The steps a request goes through.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TraceKind {
    /// The client issued the request.
    Issued,
    /// An attempt left the client.
    AttemptStart,
    /// The edge limiter denied the attempt (429).
    Throttled {
        /// When the limiter would admit it.
        retry_at: SimTime,
    },
    /// The cell turned the attempt away (503).
    Rejected,
    /// The cell accepted the attempt; it waits for a worker if `queued`.
    Admitted {
        /// Cell index.
        cell: u32,
        /// Whether it had to queue.
        queued: bool,
    },
    /// A worker started on the attempt.
    ServiceStart,
    /// A database query started (after waiting for a connection).
    QueryStart,
    /// The client stopped waiting for this attempt (timeout).
    TimedOut,
    /// The server finished the attempt's work (the client may have given up already).
    ServiceDone,
    /// The next attempt is scheduled.
    RetryScheduled {
        /// When.
        at: SimTime,
    },
    /// The request ended.
    Finished {
        /// Its outcome.
        outcome: Outcome,
    },
    /// A background job got a job worker. Its record's `request` is the job's number within
    /// its tenant and `attempt` the job's attempt (poison jobs run again).
    JobStarted {
        /// Cell index.
        cell: u32,
        /// How long it waited in the cell's job queue (since its last submission).
        waited: SimDuration,
        /// How long it will run (the scheduler's cost is this in microseconds).
        duration: SimDuration,
    },
}

impl TraceKind {
    /// A short stable name for the step.
    pub fn name(&self) -> &'static str {
        match self {
            TraceKind::Issued => "issued",
            TraceKind::AttemptStart => "attempt_start",
            TraceKind::Throttled { .. } => "throttled",
            TraceKind::Rejected => "rejected",
            TraceKind::Admitted { .. } => "admitted",
            TraceKind::ServiceStart => "service_start",
            TraceKind::QueryStart => "query_start",
            TraceKind::TimedOut => "timed_out",
            TraceKind::ServiceDone => "service_done",
            TraceKind::RetryScheduled { .. } => "retry_scheduled",
            TraceKind::Finished { .. } => "finished",
            TraceKind::JobStarted { .. } => "job_started",
        }
    }
}

impl Outcome {
    /// The outcome's name as in reports: `ok`, `throttled`, `rejected`, `failed`, `timed_out`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Throttled => "throttled",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed_out",
        }
    }
}

/// Receives trace records in simulated-time order.
pub trait TraceSink {
    /// One record.
    fn record(&mut self, record: &TraceRecord);
}

/// A sink that keeps records in memory (tests, small runs).
#[derive(Debug, Default)]
pub struct VecSink {
    /// The records, in order.
    pub records: Vec<TraceRecord>,
}

impl TraceSink for VecSink {
    fn record(&mut self, record: &TraceRecord) {
        self.records.push(*record);
    }
}

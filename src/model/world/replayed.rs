//! Replayed arrivals (`[replay]`): the request log read one record ahead; each record becomes
//! a request of its tenant (and class) at its simulated time, on top of the tenants' own
//! arrival processes.
//!
//! Only the next record is held, so memory stays bounded however long the log is. The loader
//! checked every line before the run (names, order, classes); a record that fails here means
//! the file changed in between, and ends the run with [`crate::kernel::RunError::Input`].

use std::collections::BTreeMap;

use super::{Event, World};
use crate::kernel::EventQueue;
use crate::kernel::rng::{CounterDraws, Streams};
use crate::model::System;
use crate::model::replay::{LogSource, Replay};
use crate::model::topology::CLASS_DEFAULT;
use crate::time::SimTime;

/// Request indices of replayed requests start here, so they never meet a generated one's
/// (`issued × sources + rank`, far below it) in traces.
const REPLAY_INDEX_BASE: u64 = 1 << 62;

/// Where a replay stands.
pub(super) struct ReplayState {
    replay: Replay<Box<dyn LogSource>>,
    path: String,
    tenant_of: BTreeMap<String, u32>,
    class_of: BTreeMap<String, u16>,
    /// The next record's tenant and class, read ahead.
    pending: Option<(u32, u16)>,
    /// Per tenant: replayed requests so far.
    issued: Vec<u64>,
    /// Per tenant: the key of its replayed requests' draws (`replay/work`).
    work_keys: Vec<u64>,
    /// Per tenant: the key of the class picks of records without a class (`replay/class`).
    class_keys: Vec<u64>,
}

impl ReplayState {
    /// The state of a run of `system`'s replay (`Ok(None)` without one).
    pub(super) fn new(system: &System) -> Result<Option<Box<ReplayState>>, String> {
        let Some(log) = system.replay.as_ref() else {
            return Ok(None);
        };
        let replay = log.begin().map_err(|e| format!("{}: {e}", log.path))?;
        let streams = Streams::new(system.simulation.seed);
        let n = system.tenants.len();
        Ok(Some(Box::new(ReplayState {
            replay,
            path: log.path.clone(),
            tenant_of: (0..n)
                .map(|t| (system.tenants[t].name.clone(), t as u32))
                .collect(),
            class_of: (0..system.classes.len())
                .map(|c| (system.classes[c].name.clone(), c as u16))
                .collect(),
            pending: None,
            issued: vec![0; n],
            work_keys: (0..n)
                .map(|t| streams.key_for("replay/work", t as u64))
                .collect(),
            class_keys: (0..n)
                .map(|t| streams.key_for("replay/class", t as u64))
                .collect(),
        })))
    }

    /// Reads the next record: its time and `(tenant, class)`, or `None` at the log's end.
    fn read_next(&mut self, system: &System) -> Result<Option<SimTime>, String> {
        let path = &self.path;
        let Some(arrival) = self.replay.next_arrival().map_err(|e| {
            format!(
                "{}; the log was checked before the run, so it changed meanwhile",
                e.at(path)
            )
        })?
        else {
            self.pending = None;
            return Ok(None);
        };
        let changed = |what: String| {
            format!(
                "{path}:{}: {what}; the log was checked before the run, so it changed meanwhile",
                arrival.line
            )
        };
        let Some(&tenant) = self.tenant_of.get(arrival.tenant) else {
            return Err(changed(format!("unknown tenant {:?}", arrival.tenant)));
        };
        let t = tenant as usize;
        let class = match arrival.class {
            Some(name) => match self.class_of.get(name) {
                Some(&c) => c,
                None => return Err(changed(format!("unknown class {name:?}"))),
            },
            None => match system.tenants[t].mix.as_deref() {
                None => CLASS_DEFAULT,
                Some(mix) => {
                    // The tenant's mix decides, from its own stream: the n-th class-less
                    // record of a tenant always draws the n-th number.
                    let mut left = CounterDraws::new(self.class_keys[t]).unit(self.issued[t]);
                    let mut pick = mix[mix.len() - 1].class;
                    for share in mix {
                        if left < share.share {
                            pick = share.class;
                            break;
                        }
                        left -= share.share;
                    }
                    pick
                }
            },
        };
        self.pending = Some((tenant, class));
        Ok(Some(arrival.at))
    }
}

impl World<'_, '_> {
    /// Schedules the first replayed arrival.
    pub(super) fn start_replay(&mut self, queue: &mut EventQueue<Event>) {
        self.replay_next(queue);
    }

    /// Reads the next record and schedules it if it falls before the end.
    fn replay_next(&mut self, queue: &mut EventQueue<Event>) {
        let Some(state) = self.replay.as_deref_mut() else {
            return;
        };
        match state.read_next(self.system) {
            Ok(Some(at)) if at < self.end => queue.schedule(at, Event::Replay),
            Ok(_) => state.pending = None,
            Err(message) => {
                state.pending = None;
                self.replay_error.get_or_insert(message);
            }
        }
    }

    /// A replayed request arrives; the next record is read and scheduled.
    pub(super) fn on_replay(&mut self, now: SimTime, queue: &mut EventQueue<Event>) {
        let Some(state) = self.replay.as_deref_mut() else {
            return;
        };
        let Some((tenant, class)) = state.pending.take() else {
            return;
        };
        let t = tenant as usize;
        let drawn = state.issued[t];
        state.issued[t] += 1;
        let work_key = CounterDraws::new(state.work_keys[t]).word(drawn);
        self.replay_next(queue);
        if self.lifecycle.is_some() && !self.admitted_by_lifecycle(tenant) {
            return; // not signed up yet, or deleted: the request is not sent
        }
        self.issue(
            now,
            tenant,
            class,
            REPLAY_INDEX_BASE + drawn,
            work_key,
            f64::NAN,
            queue,
        );
    }
}

//! A work's program: the steps a request runs after its CPU time while it holds its worker.
//! Database queries go one after another to the primary or to a read replica (stale when the
//! replica has not applied the tenant's last write), each behind the (tenant, database)
//! breaker; a server-side statement timeout cancels a query and frees its connection.
//!
//! The implicit class's program is the tenant's `db_queries` on its cell's database, drawn
//! exactly as earlier versions drew them; a declared class's steps draw from their own
//! indices, so adding a step to one class changes no other class's draws.

use super::{DRAW_QUERY_ERROR, DRAWS_PER_ATTEMPT, Dep, Event, IMPLICIT_PROGRAM, NONE, World};
use crate::components::connection_pool::{QueryId, Requested, StatementTimeout};
use crate::kernel::EventQueue;
use crate::kernel::rng::CounterDraws;
use crate::model::config::System;
use crate::model::dist::Dist;
use crate::model::metrics::Counter;
use crate::model::series::Resource;
use crate::model::topology::{DbTarget, Op, QueryCount};
use crate::model::trace::TraceKind;
use crate::time::{SimDuration, SimTime};

/// Draw indices of declared programs start here (an attempt's legacy block is 256 wide).
const PROGRAM_DRAWS: u64 = 1 << 42;
/// Within a step: which draw.
const STEP_TAKEN: u64 = 0;
const QUERY_TIME: u64 = 1;
const QUERY_ERROR: u64 = 2;
const QUERY_REPLICA: u64 = 3;
const DRAWS_PER_QUERY: u64 = 4;

/// The index of draw `sub` of step `pc` of attempt `attempt` of a declared program.
#[inline]
fn step_draw(attempt: u32, pc: u16, sub: u64) -> u64 {
    PROGRAM_DRAWS + (u64::from(attempt) << 28) + (u64::from(pc) << 16) + sub
}

/// What the query under way needs: the database, replica or not, its time distribution and
/// factor, its statement timeout.
#[derive(Clone, Copy)]
struct QuerySpec {
    database: usize,
    replica: bool,
    time: Dist,
    factor: f64,
    /// The step's own statement timeout (the database's applies otherwise).
    own_statement_timeout: Option<SimDuration>,
}

/// Every query step's [`QuerySpec`] in every cell, resolved once when the world is built: the
/// spec is a pure function of the step (or the implicit program) and the cell, so a query looks
/// it up instead of rebuilding it from the program (three times per query).
pub(super) struct QueryTable {
    /// Cells (the stride of `specs`).
    cells: usize,
    /// Per program, the index in `op_slot` of its first step.
    op_base: Vec<u32>,
    /// Per step of every program, its row in `specs` ([`NO_ROW`] for a step that is no query).
    op_slot: Vec<u32>,
    /// Row by row (row 0: the implicit program's query), one entry per cell: `None` where the
    /// step has no database there.
    specs: Vec<Option<QuerySpec>>,
}

/// `QueryTable::op_slot` of a step that is no query.
const NO_ROW: u32 = u32::MAX;

impl QueryTable {
    /// The table of `system`'s programs and cells.
    pub(super) fn new(system: &System) -> QueryTable {
        let cells = system.cells.len();
        let cell_db = |c: usize| system.cells[c].db;
        // Row 0: the implicit program, on its cell's database at the database's query time.
        let mut specs: Vec<Option<QuerySpec>> = (0..cells)
            .map(|c| {
                cell_db(c).map(|database| QuerySpec {
                    database,
                    replica: false,
                    time: system.databases[database].query_time,
                    factor: 1.0,
                    own_statement_timeout: None,
                })
            })
            .collect();
        let mut op_base = Vec::with_capacity(system.programs.len());
        let mut op_slot = Vec::new();
        for program in &system.programs {
            op_base.push(op_slot.len() as u32);
            for op in &program.ops {
                let Op::Query {
                    database,
                    replica,
                    time,
                    factor,
                    statement_timeout,
                    ..
                } = op
                else {
                    op_slot.push(NO_ROW);
                    continue;
                };
                op_slot.push((specs.len() / cells.max(1)) as u32);
                specs.extend((0..cells).map(|c| {
                    let database = match database {
                        DbTarget::Cell => cell_db(c)?,
                        DbTarget::Named(d) => *d,
                    };
                    let db = &system.databases[database];
                    Some(QuerySpec {
                        database,
                        replica: *replica,
                        time: time.unwrap_or(db.query_time),
                        factor: *factor,
                        own_statement_timeout: *statement_timeout,
                    })
                }));
            }
        }
        QueryTable {
            cells,
            op_base,
            op_slot,
            specs,
        }
    }
}

/// What `query` needs of a [`QuerySpec`] (the time distribution stays in the table).
struct QueryRoute {
    database: usize,
    replica: bool,
    own_statement_timeout: Option<SimDuration>,
}

impl World<'_, '_> {
    /// Runs the work's steps until one has to wait, or completes the work.
    pub(super) fn advance(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        loop {
            let Some(w) = self.works.get(work) else {
                return;
            };
            if w.queries_left > 0 {
                self.query(now, work, queue);
                return;
            }
            if w.program == IMPLICIT_PROGRAM {
                self.complete_work(now, work, queue);
                return;
            }
            let (program, pc, attempt, key) = (w.program, w.pc, w.attempt, w.work_key);
            let system = self.system;
            let Some(op) = system.programs[program as usize].ops.get(pc as usize) else {
                self.complete_work(now, work, queue);
                return;
            };
            let probability = match op {
                Op::Query { probability, .. }
                | Op::Call { probability, .. }
                | Op::Cache { probability, .. }
                | Op::Parallel { probability, .. } => *probability,
                Op::CacheFill { .. } => 1.0,
            };
            let taken = probability >= 1.0
                || CounterDraws::new(key).unit(step_draw(attempt, pc, STEP_TAKEN)) < probability;
            if let Some(w) = self.works.get_mut(work) {
                w.pc += 1;
            }
            if !taken {
                if let Op::Cache { fill, .. } = op
                    && let Some(w) = self.works.get_mut(work)
                {
                    // Skip the whole lookup: its miss path and its fill.
                    w.pc = (*fill + 1) as u16;
                }
                continue;
            }
            match op {
                Op::Query { count, .. } => {
                    let queries = match *count {
                        QueryCount::Fixed(n) => n,
                        QueryCount::Tenant => self.tenants[w_tenant(self, work)].hot.db_queries,
                    };
                    if queries > 0
                        && let Some(w) = self.works.get_mut(work)
                    {
                        w.query_op = pc;
                        w.queries_left = queries;
                        w.queries_done = 0;
                    }
                }
                Op::Call {
                    target, timeout, ..
                } => {
                    self.start_call(now, work, pc, *target, *timeout, queue);
                    return;
                }
                Op::Cache { cache, .. } => {
                    self.start_cache_lookup(now, work, *cache, queue);
                    return;
                }
                Op::CacheFill { lookup } => self.fill_cache(now, work, *lookup),
                Op::Parallel { branches, .. } => {
                    self.start_branches(now, work, pc, branches, queue);
                    return;
                }
            }
        }
    }

    /// The query step the work is in.
    #[inline]
    fn query_spec(&self, work: u32) -> Option<&QuerySpec> {
        let w = self.works.get(work)?;
        let table = &self.query_table;
        let row = if w.query_op == u16::MAX {
            0
        } else {
            let base = *table.op_base.get(w.program as usize)?;
            match table.op_slot.get((base + u32::from(w.query_op)) as usize) {
                Some(&NO_ROW) | None => return None,
                Some(&row) => row,
            }
        };
        table
            .specs
            .get(row as usize * table.cells + w.cell as usize)?
            .as_ref()
    }

    /// The uniform draw `sub` of the work's current query (number `queries_done`).
    fn query_draw(&self, work: u32, sub: u64) -> f64 {
        let Some(w) = self.works.get(work) else {
            return 0.5;
        };
        let key = CounterDraws::new(w.work_key);
        if w.query_op == u16::MAX {
            // The implicit program's layout, as earlier versions drew it.
            let base = u64::from(w.attempt) * DRAWS_PER_ATTEMPT;
            return match sub {
                QUERY_ERROR => key.unit(base + DRAW_QUERY_ERROR + u64::from(w.queries_done)),
                _ => key.unit(base + 1 + u64::from(w.queries_done)),
            };
        }
        let sub = 1 + u64::from(w.queries_done) * DRAWS_PER_QUERY + sub;
        key.unit(step_draw(w.attempt, w.query_op, sub))
    }

    /// The next database query: through the breaker, then a connection of the primary or a
    /// replica (or the FIFO wait).
    pub(super) fn query(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        let (Some(spec), Some((tenant, write))) = (
            self.query_spec(work).map(|s| QueryRoute {
                database: s.database,
                replica: s.replica,
                own_statement_timeout: s.own_statement_timeout,
            }),
            self.works.get(work).map(|w| (w.tenant, w.write.is_some())),
        ) else {
            // Validation guarantees a querying class's cells have a database.
            self.complete_work(now, work, queue);
            return;
        };
        match self.call(now, tenant, Dep::Database(spec.database as u32)) {
            Ok(ticket) => {
                if let Some(w) = self.works.get_mut(work) {
                    w.ticket = ticket;
                }
            }
            Err(retry_at) => {
                self.fail_work(now, work, Some(retry_at), queue);
                return;
            }
        }
        // Reads may go to a replica; a writing request's queries stay on the primary.
        let station = if spec.replica && !write {
            self.replica_for(work, spec.database)
        } else {
            spec.database as u32
        };
        if let Some(w) = self.works.get_mut(work) {
            w.station = station;
        }
        let s = &mut self.stations[station as usize];
        if let Some(pool) = s.governed.as_mut() {
            // A governed database: the connection-pool component queues the query (per-tenant
            // caps) and gives it its statement-timeout deadline.
            let timeout = match spec.own_statement_timeout {
                Some(limit) => StatementTimeout::After(limit),
                None => StatementTimeout::PoolDefault,
            };
            if let Requested::Granted(grant) = pool.request(now, &tenant, work, timeout) {
                if let Some(w) = self.works.get_mut(work) {
                    w.query_id = Some(grant.query);
                }
                self.start_query(now, work, grant.deadline, queue);
            }
            return;
        }
        if s.busy < s.capacity {
            s.busy += 1;
            self.start_query(now, work, None, queue);
        } else {
            s.waiting.push_back(work);
        }
    }

    /// A replica of `database` that is up, chosen by the query's draw; the primary when none
    /// is (or the database has none).
    fn replica_for(&self, work: u32, database: usize) -> u32 {
        let Some(replicas) = self.system.databases[database].replicas else {
            return database as u32;
        };
        let base = self.replica_base[database];
        let up: u32 = (0..replicas.count)
            .filter(|r| !self.replica_down[(base + r) as usize])
            .count() as u32;
        if up == 0 {
            return database as u32;
        }
        let pick = ((self.query_draw(work, QUERY_REPLICA) * f64::from(up)) as u32).min(up - 1);
        (0..replicas.count)
            .filter(|r| !self.replica_down[(base + r) as usize])
            .nth(pick as usize)
            .map_or(database as u32, |r| base + r)
    }

    /// The work got a connection of its station: draw the query's time, cut at the statement
    /// timeout, and note a stale read.
    /// `deadline`: when a governed station's statement timeout cancels the query.
    pub(super) fn start_query(
        &mut self,
        now: SimTime,
        work: u32,
        deadline: Option<SimTime>,
        queue: &mut EventQueue<Event>,
    ) {
        let u = self.query_draw(work, QUERY_TIME);
        // The spec is read in place (not copied out): only the database and the drawn time
        // leave it.
        let Some(spec) = self.query_spec(work) else {
            return;
        };
        let database = spec.database;
        let factor = self.faults.db_factor[database] * spec.factor;
        let mut time = if factor == 1.0 {
            spec.time.quantile(u)
        } else {
            spec.time.scaled(factor).quantile(u)
        };
        let Some(w) = self.works.get_mut(work) else {
            return;
        };
        w.query_since = now;
        let (tenant, index, attempt, station) = (w.tenant, w.request_index, w.attempt, w.station);
        let cancelled = deadline.is_some_and(|at| now + time > at);
        if let (true, Some(at)) = (cancelled, deadline) {
            // The server cancels the statement at its timeout: the connection is free then.
            time = at - now;
        }
        if let Some(w) = self.works.get_mut(work) {
            w.cancelled = cancelled;
        }
        if station as usize != database {
            self.metrics
                .count(tenant as usize, Counter::ReplicaRead, now);
            if self.is_stale(now, tenant, database) {
                self.metrics.count(tenant as usize, Counter::StaleRead, now);
            }
        }
        queue.schedule(now + time, Event::QueryDone(work));
        self.trace(now, tenant, index, attempt, TraceKind::QueryStart);
    }

    /// A connection of `station` is free again (`query` was its query at a governed station,
    /// `cancelled` by its statement timeout): the longest live (eligible) waiter takes it.
    fn release_connection(
        &mut self,
        now: SimTime,
        station: u32,
        query: Option<QueryId>,
        cancelled: bool,
        queue: &mut EventQueue<Event>,
    ) {
        let s = station as usize;
        if let (Some(pool), Some(query)) = (self.stations[s].governed.as_mut(), query) {
            let mut next = if cancelled {
                pool.expire(now, query)
            } else {
                pool.finish(now, query)
            }
            .ok()
            .flatten();
            while let Some(grant) = next {
                let waiter = grant.token;
                if self.works.get(waiter).is_some_and(|w| !w.dead) {
                    if let Some(w) = self.works.get_mut(waiter) {
                        w.query_id = Some(grant.query);
                    }
                    self.start_query(now, waiter, grant.deadline, queue);
                    return;
                }
                // A dead waiter gives its connection straight back.
                next = self.stations[s]
                    .governed
                    .as_mut()
                    .and_then(|p| p.finish(now, grant.query).ok().flatten());
                self.record_call(now, waiter, false);
                self.discard(now, waiter, queue);
            }
            return;
        }
        while let Some(next) = self.stations[s].waiting.pop_front() {
            if self.works.get(next).is_some_and(|w| w.dead) {
                self.record_call(now, next, false);
                self.discard(now, next, queue);
                continue;
            }
            self.start_query(now, next, None, queue);
            return;
        }
        self.stations[s].busy -= 1;
    }

    pub(super) fn on_query_done(&mut self, now: SimTime, work: u32, queue: &mut EventQueue<Event>) {
        let Some(database) = self.query_spec(work).map(|s| s.database) else {
            return;
        };
        let Some(w) = self.works.get_mut(work) else {
            return;
        };
        w.queries_left -= 1;
        w.queries_done += 1;
        let (tenant, since, dead, cancelled, station, query) = (
            w.tenant,
            w.query_since,
            w.dead,
            w.cancelled,
            w.station,
            w.query_id.take(),
        );
        w.query_since = SimTime::MAX;
        w.station = NONE;
        w.cancelled = false;
        self.series.held(
            tenant as usize,
            Resource::Connection { station },
            since,
            now,
        );
        // The error draw of the query that just ended (numbered after it).
        let rate = self.faults.db_error_rate[database];
        let errored = rate > 0.0 && self.query_draw(work, QUERY_ERROR) < rate;
        let failed = errored || cancelled;
        self.record_call(now, work, failed && !dead);
        self.release_connection(now, station, query, cancelled, queue);
        if dead {
            self.discard(now, work, queue);
        } else if cancelled {
            self.metrics
                .count(tenant as usize, Counter::StatementTimeout, now);
            self.fail_work(now, work, None, queue);
        } else if errored {
            self.fail_work(now, work, None, queue);
        } else {
            self.advance(now, work, queue);
        }
    }

    /// Whether a read of `tenant` on a replica of `database` now misses its last write: the
    /// replicas have applied writes up to `now - lag`.
    fn is_stale(&self, now: SimTime, tenant: u32, database: usize) -> bool {
        let Some(&last) = self.last_write.get(tenant as usize) else {
            return false;
        };
        if last == SimTime::ZERO {
            return false;
        }
        let lag = self.replication_lag(now, database);
        last.as_nanos().saturating_add(lag.as_nanos()) > now.as_nanos()
    }

    /// The replication lag of `database` now: its base lag, the writes not yet applied at the
    /// apply rate, and any `replica_lag` fault.
    pub(super) fn replication_lag(&self, now: SimTime, database: usize) -> SimDuration {
        let Some(replicas) = self.system.databases[database].replicas else {
            return SimDuration::ZERO;
        };
        let r = &self.replication[database];
        let backlog = match replicas.apply_rate {
            Some(rate) => {
                let drained = rate * (now - r.since).as_secs_f64();
                (r.backlog - drained).max(0.0) / rate
            }
            None => 0.0,
        };
        replicas.base_lag + SimDuration::from_secs_f64(backlog) + r.fault_lag
    }

    /// A write of `tenant` was acknowledged on its cell's database: replicas see it after
    /// the lag, and it joins the backlog they must apply.
    pub(super) fn replicate_write(&mut self, now: SimTime, tenant: u32, cell: u32) {
        let Some(database) = self.system.cells[cell as usize].db else {
            return;
        };
        let Some(replicas) = self.system.databases[database].replicas else {
            return;
        };
        if let Some(last) = self.last_write.get_mut(tenant as usize) {
            *last = now;
        }
        if let Some(rate) = replicas.apply_rate {
            let r = &mut self.replication[database];
            let drained = rate * (now - r.since).as_secs_f64();
            r.backlog = (r.backlog - drained).max(0.0) + 1.0;
            r.since = now;
        }
    }
}

/// The tenant of a live work.
fn w_tenant(world: &World<'_, '_>, work: u32) -> usize {
    world.works.get(work).map_or(0, |w| w.tenant as usize)
}

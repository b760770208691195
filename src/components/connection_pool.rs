//! A database connection pool that governs tenants' work: `N` connections, FIFO waiters, an
//! optional cap on each tenant's concurrent connections, and statement timeouts that give every
//! granted query a deadline.
//!
//! A query asks for a connection with [`ConnectionPool::request`]. It is granted at once if a
//! connection is free and its tenant is under its cap; otherwise it waits. When a query ends,
//! whether it finished ([`finish`](ConnectionPool::finish)), was cancelled by its caller
//! ([`cancel`](ConnectionPool::cancel)) or hit its statement timeout
//! ([`expire`](ConnectionPool::expire)), its connection is freed and handed at once to the next
//! eligible waiter, which the call returns as a [`Grant`].
//!
//! **Order.** A waiter is *eligible* while its tenant holds fewer connections than its cap.
//! A free connection always goes to the eligible waiter that arrived first (the earliest
//! [`request`](ConnectionPool::request) call among eligible waiters). So:
//! - a tenant's own queries are granted in their arrival order, always;
//! - among tenants under their caps, grants follow global arrival order (plain FIFO when no
//!   tenant is at its cap);
//! - a tenant at its cap keeps its waiters' places but does not block anyone: later waiters of
//!   other tenants are served past it. As soon as it is under its cap again, its oldest waiter
//!   competes with its original arrival time, so it is served before every waiter that arrived
//!   after it.
//!
//! No waiter starves: after every call, either every connection is in use or no waiter is
//! eligible. Changing a cap or the number of connections ([`set_tenant_cap`],
//! [`set_connections`]) can make waiters eligible or connections free; the caller then calls
//! [`dispatch`](ConnectionPool::dispatch) until it returns `None` (the example below). Lowering
//! either revokes nothing: running queries keep their connections.
//!
//! **Statement timeouts.** Each request says which timeout applies ([`StatementTimeout`]): the
//! pool's default, its own, or none. A granted query's deadline is its grant time plus that
//! timeout (the wait for a connection does not count, as with a server-side
//! `statement_timeout`). The pool keeps no timers: the caller arms one at
//! [`Grant::deadline`] and calls [`expire`](ConnectionPool::expire) when it fires (which
//! refuses a query not yet due); a query that ended earlier is then simply not running.
//! Unlike a client-side timeout, expiry stops the work: the connection is freed.
//!
//! **Identities.** Running queries and waiters are named by a slot and a serial number never
//! reused ([`QueryId`], [`WaitId`]), so ending a query twice, or abandoning a waiter that was
//! already granted, is an error that changes nothing.
//!
//! **Cost.** A request is one [`KeyMap`] lookup of the tenant; ending a query and handing its
//! connection on is O(log e) with `e` the number of eligible tenants with waiters (a binary
//! heap of tenants keyed by their oldest waiter), whatever the number of waiters. Nothing is
//! allocated per query once the tables have grown to the largest number of waiters and running
//! queries. The pool keeps a small record (about 50 bytes with a `u32` tenant) for every tenant
//! it has seen.
//!
//! A production service keeps one pool per database (per primary or replica) and wraps each
//! query:
//!
//! ```
//! use std::time::Instant;
//! use tenantsim::components::connection_pool::{
//!     ConnectionPool, PoolConfig, Requested, StatementTimeout,
//! };
//! use tenantsim::time::{SimDuration, SimTime};
//!
//! let mut pool = ConnectionPool::<&str, u64>::new(PoolConfig {
//!     connections: 2,
//!     statement_timeout: Some(SimDuration::from_secs(30)),
//!     per_tenant_cap: Some(1),
//! })
//! .expect("valid pool");
//! // The caller's wall clock, as in a production service: the component only ever sees
//! // `now` (the simulator passes simulated time, never this clock).
//! let start = Instant::now();
//! let clock = || SimTime::from_nanos(start.elapsed().as_nanos() as u64);
//!
//! // Query 1 (acme) runs; query 2 (acme again) waits for acme's cap, query 3 (globex) does not.
//! let Requested::Granted(first) = pool.request(clock(), &"acme", 1, StatementTimeout::PoolDefault)
//! else { panic!("a connection is free") };
//! let Requested::Queued(_) = pool.request(clock(), &"acme", 2, StatementTimeout::PoolDefault)
//! else { panic!("acme is at its cap") };
//! let Requested::Granted(third) = pool.request(clock(), &"globex", 3, StatementTimeout::Unlimited)
//! else { panic!("globex is under its cap") };
//! assert!(first.deadline.is_some() && third.deadline.is_none());
//!
//! // The caller cancels acme's query (its client gave up): the connection goes to query 2.
//! let handed = pool.cancel(clock(), first.query).expect("running");
//! assert_eq!(handed.map(|grant| grant.token), Some(2));
//!
//! // Acme may now run two queries at once: dispatch until nothing more can start.
//! let Requested::Queued(_) = pool.request(clock(), &"acme", 4, StatementTimeout::PoolDefault)
//! else { panic!("acme is at its cap") };
//! pool.set_tenant_cap(&"acme", Some(2)).expect("a cap of at least one");
//! let mut started = Vec::new();
//! while let Some(grant) = pool.dispatch(clock()) {
//!     started.push(grant.token); // start the query
//! }
//! assert!(started.is_empty(), "both connections are busy: query 4 waits for one");
//! pool.finish(clock(), third.query).expect("running").expect("query 4 starts");
//! assert_eq!((pool.in_use(), pool.waiting()), (2, 0));
//! ```
//!
//! [`set_tenant_cap`]: ConnectionPool::set_tenant_cap
//! [`set_connections`]: ConnectionPool::set_connections

use std::fmt;
use std::hash::Hash;

use super::KeyMap;
use crate::time::{SimDuration, SimTime};

/// No slot: the end of a list, or a tenant outside the heap.
const NIL: u32 = u32::MAX;

/// A pool's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Connections, at least 1.
    pub connections: u32,
    /// The default statement timeout; `None` for none. Not zero (use `None`).
    pub statement_timeout: Option<SimDuration>,
    /// Most connections one tenant may hold at once, unless it has its own cap; `None` for no
    /// cap. Not zero.
    pub per_tenant_cap: Option<u32>,
}

/// Which statement timeout a query runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatementTimeout {
    /// The pool's default at the time the query is granted.
    PoolDefault,
    /// This timeout (a zero timeout is due at once).
    After(SimDuration),
    /// No timeout, whatever the pool's default.
    Unlimited,
}

/// An invalid setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolConfigError {
    /// A pool needs at least one connection.
    ZeroConnections,
    /// A tenant cap of zero would make its queries wait forever.
    ZeroTenantCap,
    /// A zero statement timeout (Postgres reads 0 as "no timeout"; say `None` for that).
    ZeroStatementTimeout,
}

impl fmt::Display for PoolConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolConfigError::ZeroConnections => {
                write!(f, "a connection pool needs at least 1 connection")
            }
            PoolConfigError::ZeroTenantCap => write!(
                f,
                "a tenant's connection cap must be at least 1 (omit it for no cap)"
            ),
            PoolConfigError::ZeroStatementTimeout => write!(
                f,
                "a statement timeout must be longer than zero (omit it for no timeout)"
            ),
        }
    }
}

impl std::error::Error for PoolConfigError {}

/// A running query's identity: a slot and a serial number never reused by this pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueryId {
    slot: u32,
    serial: u64,
}

/// A waiting request's identity: a slot and a serial number never reused by this pool. The
/// serial numbers are the arrival order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WaitId {
    slot: u32,
    serial: u64,
}

impl WaitId {
    /// The arrival number of the request (requests are numbered from 0 in the order of
    /// [`ConnectionPool::request`] calls, granted or not).
    pub const fn arrival(self) -> u64 {
        self.serial
    }
}

/// A connection given to a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant<Q> {
    /// Pass it to [`finish`](ConnectionPool::finish), [`cancel`](ConnectionPool::cancel) or
    /// [`expire`](ConnectionPool::expire).
    pub query: QueryId,
    /// The caller's token given with the request.
    pub token: Q,
    /// When the request was made.
    pub requested_at: SimTime,
    /// When the connection was granted (the query starts).
    pub granted_at: SimTime,
    /// When its statement timeout expires; `None` without a timeout.
    pub deadline: Option<SimTime>,
}

/// What became of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requested<Q> {
    /// A connection was free and the tenant under its cap: the query starts now.
    Granted(Grant<Q>),
    /// The request waits; its grant will come from a later call.
    Queued(WaitId),
}

/// Misuse of the pool. Nothing changes when it is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolError {
    /// The query was granted by this pool and has already ended.
    NotRunning(QueryId),
    /// This pool never granted the query.
    UnknownQuery(QueryId),
    /// [`expire`](ConnectionPool::expire) before the query's deadline, or for a query without
    /// one.
    NotDue {
        /// The query.
        query: QueryId,
        /// Its deadline, if it has one.
        deadline: Option<SimTime>,
    },
    /// The request was queued by this pool and has already been granted or abandoned.
    NotWaiting(WaitId),
    /// This pool never queued the request.
    UnknownWait(WaitId),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::NotRunning(q) => write!(f, "query {} has already ended", q.serial),
            PoolError::UnknownQuery(q) => {
                write!(f, "query {} was never granted by this pool", q.serial)
            }
            PoolError::NotDue { query, deadline } => match deadline {
                Some(at) => write!(f, "query {} is not due to expire before {at}", query.serial),
                None => write!(f, "query {} has no statement timeout", query.serial),
            },
            PoolError::NotWaiting(w) => {
                write!(f, "request {} is no longer waiting", w.serial)
            }
            PoolError::UnknownWait(w) => {
                write!(f, "request {} was never queued by this pool", w.serial)
            }
        }
    }
}

impl std::error::Error for PoolError {}

/// A running query, as [`ConnectionPool::running`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunningQuery {
    /// When it was granted.
    pub granted_at: SimTime,
    /// When its statement timeout expires.
    pub deadline: Option<SimTime>,
}

#[derive(Clone, Copy, Debug)]
struct TenantState {
    /// The tenant's own cap (`None`: the pool's default).
    cap: Option<u32>,
    in_use: u32,
    waiting: u32,
    /// Its waiters, oldest first: a doubly linked list through the waiter slots.
    head: u32,
    tail: u32,
    /// Position in the heap of eligible tenants, or [`NIL`].
    heap_pos: u32,
}

#[derive(Clone, Copy, Debug)]
struct Waiter<Q> {
    serial: u64,
    tenant: u32,
    prev: u32,
    next: u32,
    requested_at: SimTime,
    timeout: StatementTimeout,
    /// `Some` while the request waits.
    token: Option<Q>,
}

#[derive(Clone, Copy, Debug)]
struct Running {
    serial: u64,
    tenant: u32,
    live: bool,
    granted_at: SimTime,
    deadline: Option<SimTime>,
}

/// A connection pool with FIFO waiters, per-tenant caps and statement timeouts, generic over
/// the tenant key `T` and the caller's token `Q` (what the caller wants back with a grant: a
/// request handle, a callback id).
#[derive(Clone, Debug)]
pub struct ConnectionPool<T, Q> {
    connections: u32,
    statement_timeout: Option<SimDuration>,
    per_tenant_cap: Option<u32>,
    in_use: u32,
    waiting: u32,
    /// Never removed, so positions are stable (waiters, queries and the heap hold them).
    tenants: KeyMap<T, TenantState>,
    waiters: Vec<Waiter<Q>>,
    free_waiters: Vec<u32>,
    running: Vec<Running>,
    free_running: Vec<u32>,
    /// Eligible tenants with waiters, a binary min-heap on their oldest waiter's serial.
    heap: Vec<u32>,
    next_wait_serial: u64,
    next_query_serial: u64,
}

fn check_cap(cap: Option<u32>) -> Result<(), PoolConfigError> {
    match cap {
        Some(0) => Err(PoolConfigError::ZeroTenantCap),
        _ => Ok(()),
    }
}

fn check_timeout(timeout: Option<SimDuration>) -> Result<(), PoolConfigError> {
    match timeout {
        Some(SimDuration::ZERO) => Err(PoolConfigError::ZeroStatementTimeout),
        _ => Ok(()),
    }
}

fn slot_of(len: usize) -> u32 {
    u32::try_from(len).expect("fewer than 2^32 tenants, waiters and queries")
}

impl<T: Hash + Eq + Clone, Q> ConnectionPool<T, Q> {
    /// An idle pool, or an error naming the invalid setting.
    pub fn new(config: PoolConfig) -> Result<ConnectionPool<T, Q>, PoolConfigError> {
        if config.connections == 0 {
            return Err(PoolConfigError::ZeroConnections);
        }
        check_cap(config.per_tenant_cap)?;
        check_timeout(config.statement_timeout)?;
        Ok(ConnectionPool {
            connections: config.connections,
            statement_timeout: config.statement_timeout,
            per_tenant_cap: config.per_tenant_cap,
            in_use: 0,
            waiting: 0,
            tenants: KeyMap::default(),
            waiters: Vec::new(),
            free_waiters: Vec::new(),
            running: Vec::new(),
            free_running: Vec::new(),
            heap: Vec::new(),
            next_wait_serial: 0,
            next_query_serial: 0,
        })
    }

    /// Asks for a connection for one query of `tenant`; `token` comes back with the grant.
    pub fn request(
        &mut self,
        now: SimTime,
        tenant: &T,
        token: Q,
        timeout: StatementTimeout,
    ) -> Requested<Q> {
        let t = self.tenant_index(tenant);
        let serial = self.next_wait_serial;
        self.next_wait_serial += 1;
        // An empty heap means nobody eligible waits (this tenant included). It is always empty
        // while a connection is free, unless the caller raised a cap or the connections and has
        // not dispatched yet: then this request queues behind the older eligible waiters.
        if self.in_use < self.connections && self.under_cap(t) && self.heap.is_empty() {
            return Requested::Granted(self.grant(now, t, token, now, timeout));
        }
        let waiter = Waiter {
            serial,
            tenant: t,
            prev: self.tenants[t as usize].tail,
            next: NIL,
            requested_at: now,
            timeout,
            token: Some(token),
        };
        let slot = match self.free_waiters.pop() {
            Some(slot) => {
                self.waiters[slot as usize] = waiter;
                slot
            }
            None => {
                self.waiters.push(waiter);
                slot_of(self.waiters.len() - 1)
            }
        };
        let state = &mut self.tenants[t as usize];
        match state.tail {
            NIL => state.head = slot,
            tail => self.waiters[tail as usize].next = slot,
        }
        let state = &mut self.tenants[t as usize];
        state.tail = slot;
        state.waiting += 1;
        self.waiting += 1;
        self.refresh_eligibility(t);
        Requested::Queued(WaitId { slot, serial })
    }

    /// The query finished: frees its connection and returns the grant it was handed to, if a
    /// waiter was eligible.
    pub fn finish(&mut self, now: SimTime, query: QueryId) -> Result<Option<Grant<Q>>, PoolError> {
        self.end(now, query, false)
    }

    /// The caller cancelled the query (its client gave up, the request failed): frees its
    /// connection, as [`finish`](ConnectionPool::finish).
    pub fn cancel(&mut self, now: SimTime, query: QueryId) -> Result<Option<Grant<Q>>, PoolError> {
        self.end(now, query, false)
    }

    /// The query's statement timeout fired: frees its connection, as
    /// [`finish`](ConnectionPool::finish). Refused ([`PoolError::NotDue`]) before the deadline
    /// or for a query without one.
    pub fn expire(&mut self, now: SimTime, query: QueryId) -> Result<Option<Grant<Q>>, PoolError> {
        self.end(now, query, true)
    }

    /// A waiting request gives up (its client timed out): it leaves the queue and its token
    /// comes back.
    pub fn abandon(&mut self, _now: SimTime, wait: WaitId) -> Result<Q, PoolError> {
        if wait.serial >= self.next_wait_serial {
            return Err(PoolError::UnknownWait(wait));
        }
        match self.waiters.get(wait.slot as usize) {
            Some(w) if w.serial == wait.serial && w.token.is_some() => {}
            Some(_) => return Err(PoolError::NotWaiting(wait)),
            None => return Err(PoolError::UnknownWait(wait)),
        }
        let (t, token) = self.unlink(wait.slot);
        self.refresh_eligibility(t);
        Ok(token)
    }

    /// Grants the next connection if one is free and a waiter is eligible. Call it until it
    /// returns `None` after raising a cap or the number of connections; other calls hand
    /// connections on by themselves.
    pub fn dispatch(&mut self, now: SimTime) -> Option<Grant<Q>> {
        if self.in_use >= self.connections {
            return None;
        }
        let &t = self.heap.first()?;
        let slot = self.tenants[t as usize].head;
        let Waiter {
            requested_at,
            timeout,
            ..
        } = self.waiters[slot as usize];
        let (_, token) = self.unlink(slot);
        let grant = self.grant(now, t, token, requested_at, timeout);
        self.refresh_eligibility(t);
        Some(grant)
    }

    /// Sets (`Some`) or removes (`None`, back to the pool's default) `tenant`'s own cap on
    /// concurrent connections; then call [`dispatch`](ConnectionPool::dispatch) until `None`.
    pub fn set_tenant_cap(&mut self, tenant: &T, cap: Option<u32>) -> Result<(), PoolConfigError> {
        check_cap(cap)?;
        let t = self.tenant_index(tenant);
        self.tenants[t as usize].cap = cap;
        self.refresh_eligibility(t);
        Ok(())
    }

    /// Sets the pool's default tenant cap (O(tenants seen)); then call
    /// [`dispatch`](ConnectionPool::dispatch) until `None`.
    pub fn set_default_tenant_cap(&mut self, cap: Option<u32>) -> Result<(), PoolConfigError> {
        check_cap(cap)?;
        self.per_tenant_cap = cap;
        for t in 0..slot_of(self.tenants.len()) {
            self.refresh_eligibility(t);
        }
        Ok(())
    }

    /// Sets the number of connections; then call [`dispatch`](ConnectionPool::dispatch) until
    /// `None`. Fewer connections than in use revokes nothing: no query starts until enough end.
    pub fn set_connections(&mut self, connections: u32) -> Result<(), PoolConfigError> {
        if connections == 0 {
            return Err(PoolConfigError::ZeroConnections);
        }
        self.connections = connections;
        Ok(())
    }

    /// Sets the default statement timeout for queries granted from now on.
    pub fn set_statement_timeout(
        &mut self,
        timeout: Option<SimDuration>,
    ) -> Result<(), PoolConfigError> {
        check_timeout(timeout)?;
        self.statement_timeout = timeout;
        Ok(())
    }

    /// The number of connections.
    pub fn connections(&self) -> u32 {
        self.connections
    }

    /// Connections held by running queries.
    pub fn in_use(&self) -> u32 {
        self.in_use
    }

    /// Requests waiting for a connection.
    pub fn waiting(&self) -> u32 {
        self.waiting
    }

    /// Connections `tenant` holds.
    pub fn tenant_in_use(&self, tenant: &T) -> u32 {
        self.tenants.get(tenant).map_or(0, |s| s.in_use)
    }

    /// Requests of `tenant` waiting.
    pub fn tenant_waiting(&self, tenant: &T) -> u32 {
        self.tenants.get(tenant).map_or(0, |s| s.waiting)
    }

    /// The cap that applies to `tenant` (`None`: no cap).
    pub fn tenant_cap(&self, tenant: &T) -> Option<u32> {
        self.tenants
            .get(tenant)
            .and_then(|s| s.cap)
            .or(self.per_tenant_cap)
    }

    /// The pool's default statement timeout.
    pub fn statement_timeout(&self) -> Option<SimDuration> {
        self.statement_timeout
    }

    /// The query, if it is running.
    pub fn running(&self, query: QueryId) -> Option<RunningQuery> {
        self.running
            .get(query.slot as usize)
            .filter(|r| r.live && r.serial == query.serial)
            .map(|r| RunningQuery {
                granted_at: r.granted_at,
                deadline: r.deadline,
            })
    }

    /// Whether the request is still waiting.
    pub fn is_waiting(&self, wait: WaitId) -> bool {
        self.waiters
            .get(wait.slot as usize)
            .is_some_and(|w| w.serial == wait.serial && w.token.is_some())
    }

    /// Tenants the pool keeps a record for (its memory, apart from waiters and queries).
    pub fn tracked_tenants(&self) -> usize {
        self.tenants.len()
    }

    fn tenant_index(&mut self, tenant: &T) -> u32 {
        let index = match self.tenants.get_index_of(tenant) {
            Some(index) => index,
            None => {
                let state = TenantState {
                    cap: None,
                    in_use: 0,
                    waiting: 0,
                    head: NIL,
                    tail: NIL,
                    heap_pos: NIL,
                };
                self.tenants.insert_full(tenant.clone(), state).0
            }
        };
        slot_of(index)
    }

    fn under_cap(&self, t: u32) -> bool {
        let state = &self.tenants[t as usize];
        state
            .cap
            .or(self.per_tenant_cap)
            .is_none_or(|cap| state.in_use < cap)
    }

    fn grant(
        &mut self,
        now: SimTime,
        t: u32,
        token: Q,
        requested_at: SimTime,
        timeout: StatementTimeout,
    ) -> Grant<Q> {
        let timeout = match timeout {
            StatementTimeout::PoolDefault => self.statement_timeout,
            StatementTimeout::After(d) => Some(d),
            StatementTimeout::Unlimited => None,
        };
        let deadline = timeout.map(|d| now + d);
        let serial = self.next_query_serial;
        self.next_query_serial += 1;
        let running = Running {
            serial,
            tenant: t,
            live: true,
            granted_at: now,
            deadline,
        };
        let slot = match self.free_running.pop() {
            Some(slot) => {
                self.running[slot as usize] = running;
                slot
            }
            None => {
                self.running.push(running);
                slot_of(self.running.len() - 1)
            }
        };
        self.in_use += 1;
        self.tenants[t as usize].in_use += 1;
        Grant {
            query: QueryId { slot, serial },
            token,
            requested_at,
            granted_at: now,
            deadline,
        }
    }

    fn end(
        &mut self,
        now: SimTime,
        query: QueryId,
        expiry: bool,
    ) -> Result<Option<Grant<Q>>, PoolError> {
        if query.serial >= self.next_query_serial {
            return Err(PoolError::UnknownQuery(query));
        }
        let running = match self.running.get(query.slot as usize) {
            Some(r) if r.serial == query.serial && r.live => *r,
            Some(_) => return Err(PoolError::NotRunning(query)),
            None => return Err(PoolError::UnknownQuery(query)),
        };
        if expiry && running.deadline.is_none_or(|deadline| now < deadline) {
            return Err(PoolError::NotDue {
                query,
                deadline: running.deadline,
            });
        }
        self.running[query.slot as usize].live = false;
        self.free_running.push(query.slot);
        self.in_use -= 1;
        self.tenants[running.tenant as usize].in_use -= 1;
        self.refresh_eligibility(running.tenant);
        Ok(self.dispatch(now))
    }

    /// Takes a waiter out of its tenant's list and frees its slot; returns its tenant and
    /// token. The heap is the caller's to refresh.
    fn unlink(&mut self, slot: u32) -> (u32, Q) {
        let waiter = &mut self.waiters[slot as usize];
        let (t, prev, next) = (waiter.tenant, waiter.prev, waiter.next);
        let token = waiter.token.take().expect("a live waiter has its token");
        match prev {
            NIL => self.tenants[t as usize].head = next,
            prev => self.waiters[prev as usize].next = next,
        }
        match next {
            NIL => self.tenants[t as usize].tail = prev,
            next => self.waiters[next as usize].prev = prev,
        }
        self.tenants[t as usize].waiting -= 1;
        self.waiting -= 1;
        self.free_waiters.push(slot);
        (t, token)
    }

    /// Puts tenant `t` in the heap, takes it out, or moves it, so that the heap holds exactly
    /// the eligible tenants with waiters, keyed by their current oldest waiter.
    fn refresh_eligibility(&mut self, t: u32) {
        let state = self.tenants[t as usize];
        let eligible = state.waiting > 0 && self.under_cap(t);
        match (eligible, state.heap_pos) {
            (true, NIL) => {
                let pos = slot_of(self.heap.len());
                self.heap.push(t);
                self.tenants[t as usize].heap_pos = pos;
                self.sift_up(pos);
            }
            (true, pos) => {
                // The key can only have grown (the head was granted or abandoned).
                self.sift_down(pos);
            }
            (false, NIL) => {}
            (false, pos) => self.heap_remove(pos),
        }
    }

    fn key(&self, heap_pos: u32) -> u64 {
        let t = self.heap[heap_pos as usize];
        self.waiters[self.tenants[t as usize].head as usize].serial
    }

    fn heap_swap(&mut self, a: u32, b: u32) {
        self.heap.swap(a as usize, b as usize);
        let (ta, tb) = (self.heap[a as usize], self.heap[b as usize]);
        self.tenants[ta as usize].heap_pos = a;
        self.tenants[tb as usize].heap_pos = b;
    }

    fn sift_up(&mut self, mut pos: u32) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if self.key(parent) <= self.key(pos) {
                break;
            }
            self.heap_swap(parent, pos);
            pos = parent;
        }
    }

    fn sift_down(&mut self, mut pos: u32) {
        let len = slot_of(self.heap.len());
        loop {
            let left = 2 * pos + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let child = if right < len && self.key(right) < self.key(left) {
                right
            } else {
                left
            };
            if self.key(pos) <= self.key(child) {
                break;
            }
            self.heap_swap(pos, child);
            pos = child;
        }
    }

    fn heap_remove(&mut self, pos: u32) {
        let last = slot_of(self.heap.len() - 1);
        let t = self.heap[pos as usize];
        self.heap_swap(pos, last);
        self.heap.pop();
        self.tenants[t as usize].heap_pos = NIL;
        if pos < last {
            self.sift_down(pos);
            self.sift_up(pos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(ms: u64) -> SimTime {
        SimTime::from_nanos(ms * 1_000_000)
    }

    fn pool(connections: u32, cap: Option<u32>) -> ConnectionPool<u8, u32> {
        ConnectionPool::new(PoolConfig {
            connections,
            statement_timeout: Some(SimDuration::from_millis(30)),
            per_tenant_cap: cap,
        })
        .unwrap()
    }

    fn granted(r: Requested<u32>) -> Grant<u32> {
        match r {
            Requested::Granted(g) => g,
            Requested::Queued(w) => panic!("queued: {w:?}"),
        }
    }

    fn queued(r: Requested<u32>) -> WaitId {
        match r {
            Requested::Queued(w) => w,
            Requested::Granted(g) => panic!("granted: {g:?}"),
        }
    }

    #[test]
    fn a_tenant_at_its_cap_keeps_its_place_without_blocking_others() {
        let mut p = pool(2, Some(1));
        let d = StatementTimeout::PoolDefault;
        let a1 = granted(p.request(at(0), &0, 1, d));
        let b1 = granted(p.request(at(0), &1, 2, d));
        queued(p.request(at(1), &0, 3, d)); // tenant 0 at cap
        queued(p.request(at(2), &2, 4, d)); // pool full
        queued(p.request(at(3), &0, 5, d));
        // Tenant 1 ends: tenant 0 is still at its cap, so tenant 2 goes past its waiters.
        let next = p.finish(at(4), b1.query).unwrap().unwrap();
        assert_eq!(
            (next.token, next.requested_at, next.granted_at),
            (4, at(2), at(4))
        );
        // Tenant 0 ends: its oldest waiter (token 3) is next, before any later arrival.
        let next = p.finish(at(5), a1.query).unwrap().unwrap();
        assert_eq!(next.token, 3);
        assert_eq!(next.deadline, Some(at(35)));
        assert_eq!((p.in_use(), p.waiting()), (2, 1));
        assert_eq!(p.tenant_in_use(&0), 1);
    }

    #[test]
    fn timeouts_give_deadlines_and_expiry_frees_the_connection() {
        let mut p = pool(1, None);
        let g = granted(p.request(
            at(10),
            &0,
            1,
            StatementTimeout::After(SimDuration::from_millis(5)),
        ));
        assert_eq!(g.deadline, Some(at(15)));
        let w = queued(p.request(at(11), &1, 2, StatementTimeout::Unlimited));
        assert_eq!(
            p.expire(at(14), g.query),
            Err(PoolError::NotDue {
                query: g.query,
                deadline: Some(at(15))
            })
        );
        let next = p.expire(at(15), g.query).unwrap().unwrap();
        assert_eq!((next.token, next.deadline), (2, None));
        assert!(!p.is_waiting(w));
        assert_eq!(
            p.expire(at(99), next.query),
            Err(PoolError::NotDue {
                query: next.query,
                deadline: None
            })
        );
        assert_eq!(
            p.cancel(at(16), g.query),
            Err(PoolError::NotRunning(g.query))
        );
        assert_eq!(p.abandon(at(16), w), Err(PoolError::NotWaiting(w)));
        assert!(p.running(next.query).is_some());
        p.cancel(at(17), next.query).unwrap();
        assert_eq!(p.in_use(), 0);
        // The default changes for queries granted from now on.
        p.set_statement_timeout(None).unwrap();
        let g = granted(p.request(at(20), &0, 3, StatementTimeout::PoolDefault));
        assert_eq!(g.deadline, None);
    }

    #[test]
    fn a_request_before_dispatch_does_not_jump_older_eligible_waiters() {
        let mut p = pool(2, Some(1));
        let d = StatementTimeout::PoolDefault;
        granted(p.request(at(0), &0, 1, d));
        queued(p.request(at(1), &0, 2, d));
        // Tenant 0 may now hold two, and a connection is free, but nobody dispatched yet.
        p.set_tenant_cap(&0, Some(2)).unwrap();
        queued(p.request(at(2), &1, 3, d));
        assert_eq!(
            p.dispatch(at(3)).map(|g| g.token),
            Some(2),
            "the older waiter first"
        );
        assert_eq!(
            p.dispatch(at(3)).map(|g| g.token),
            None,
            "no connection is left"
        );
        assert_eq!(p.waiting(), 1);
    }

    #[test]
    fn settings_are_checked() {
        let bad = |connections, statement_timeout, per_tenant_cap| {
            ConnectionPool::<u8, u32>::new(PoolConfig {
                connections,
                statement_timeout,
                per_tenant_cap,
            })
            .err()
        };
        assert_eq!(bad(0, None, None), Some(PoolConfigError::ZeroConnections));
        assert_eq!(bad(1, None, Some(0)), Some(PoolConfigError::ZeroTenantCap));
        assert_eq!(
            bad(1, Some(SimDuration::ZERO), None),
            Some(PoolConfigError::ZeroStatementTimeout)
        );
        let mut p = pool(1, None);
        assert_eq!(
            p.set_tenant_cap(&0, Some(0)),
            Err(PoolConfigError::ZeroTenantCap)
        );
        assert_eq!(p.set_connections(0), Err(PoolConfigError::ZeroConnections));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Request {
            tenant: u8,
            timeout: Option<Option<u64>>,
        },
        Finish {
            pick: usize,
        },
        Cancel {
            pick: usize,
        },
        Expire {
            pick: usize,
        },
        Abandon {
            pick: usize,
        },
        EndAgain {
            pick: usize,
        },
        SetCap {
            tenant: u8,
            cap: Option<u32>,
        },
        SetDefaultCap {
            cap: Option<u32>,
        },
        SetConnections {
            n: u32,
        },
        Advance {
            ms: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0u8..4, prop::option::of(prop::option::of(0u64..40)))
                .prop_map(|(tenant, timeout)| Op::Request { tenant, timeout }),
            3 => any::<usize>().prop_map(|pick| Op::Finish { pick }),
            2 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
            2 => any::<usize>().prop_map(|pick| Op::Expire { pick }),
            2 => any::<usize>().prop_map(|pick| Op::Abandon { pick }),
            1 => any::<usize>().prop_map(|pick| Op::EndAgain { pick }),
            1 => (0u8..4, prop::option::of(1u32..4)).prop_map(|(tenant, cap)| Op::SetCap { tenant, cap }),
            1 => prop::option::of(1u32..4).prop_map(|cap| Op::SetDefaultCap { cap }),
            1 => (1u32..6).prop_map(|n| Op::SetConnections { n }),
            3 => (0u64..20).prop_map(|ms| Op::Advance { ms }),
        ]
    }

    /// The test's own pool: a plain list of waiters in arrival order, scanned from the front.
    struct Reference {
        connections: u32,
        default_timeout: Option<SimDuration>,
        default_cap: Option<u32>,
        caps: [Option<u32>; 4],
        /// (wait id, tenant, token, requested_at, timeout), oldest first.
        waiters: Vec<(WaitId, u8, u32, SimTime, StatementTimeout)>,
        /// (query id, tenant, token, deadline).
        running: Vec<(QueryId, u8, u32, Option<SimTime>)>,
        ended: Vec<QueryId>,
        left: Vec<WaitId>,
    }

    impl Reference {
        fn cap(&self, tenant: u8) -> Option<u32> {
            self.caps[tenant as usize].or(self.default_cap)
        }

        fn in_use(&self, tenant: u8) -> u32 {
            self.running.iter().filter(|r| r.1 == tenant).count() as u32
        }

        fn eligible(&self, tenant: u8) -> bool {
            self.cap(tenant).is_none_or(|cap| self.in_use(tenant) < cap)
        }

        fn deadline(&self, now: SimTime, timeout: StatementTimeout) -> Option<SimTime> {
            match timeout {
                StatementTimeout::PoolDefault => self.default_timeout.map(|d| now + d),
                StatementTimeout::After(d) => Some(now + d),
                StatementTimeout::Unlimited => None,
            }
        }

        /// The waiter the next free connection goes to: the first eligible one in arrival
        /// order, if a connection is free.
        fn next(&self) -> Option<usize> {
            if self.running.len() as u32 >= self.connections {
                return None;
            }
            self.waiters.iter().position(|w| self.eligible(w.1))
        }

        /// Checks a grant the pool made against the reference's choice, and records it.
        fn expect_grant(
            &mut self,
            now: SimTime,
            grant: Option<Grant<u32>>,
        ) -> Result<(), TestCaseError> {
            let expected = self.next();
            match (expected, grant) {
                (None, None) => {}
                (Some(i), Some(g)) => {
                    let (_, tenant, token, requested_at, timeout) = self.waiters.remove(i);
                    prop_assert_eq!(g.token, token, "FIFO among eligible waiters");
                    prop_assert_eq!(g.requested_at, requested_at);
                    prop_assert_eq!(g.granted_at, now);
                    prop_assert_eq!(g.deadline, self.deadline(now, timeout));
                    // The grant keeps both limits.
                    prop_assert!((self.running.len() as u32) < self.connections);
                    prop_assert!(self.cap(tenant).is_none_or(|cap| self.in_use(tenant) < cap));
                    self.running.push((g.query, tenant, token, g.deadline));
                }
                (e, g) => prop_assert!(false, "expected grant of waiter {e:?}, pool granted {g:?}"),
            }
            Ok(())
        }
    }

    proptest! {
        /// Under any interleaving of requests, ends (finish, cancel, expiry), abandons, stale
        /// calls and setting changes, the pool grants exactly what a naive FIFO-among-eligible
        /// reference grants: connections in use never exceed N at a grant, a tenant never
        /// exceeds its cap at a grant, an ended query always frees its connection, grants go to
        /// the oldest eligible waiter, and after every call no eligible waiter waits while a
        /// connection is free (no starvation). Deadlines are grant time plus the timeout that
        /// applies; misuse is an error that changes nothing.
        #[test]
        fn grants_match_a_fifo_among_eligible_reference(
            connections in 1u32..5,
            default_cap in prop::option::of(1u32..4),
            default_timeout in prop::option::of(1u64..30),
            ops in prop::collection::vec(op(), 1..300),
        ) {
            let default_timeout = default_timeout.map(SimDuration::from_millis);
            let mut p = ConnectionPool::<u8, u32>::new(PoolConfig {
                connections,
                statement_timeout: default_timeout,
                per_tenant_cap: default_cap,
            }).unwrap();
            let mut model = Reference {
                connections,
                default_timeout,
                default_cap,
                caps: [None; 4],
                waiters: Vec::new(),
                running: Vec::new(),
                ended: Vec::new(),
                left: Vec::new(),
            };
            let mut now = at(0);
            let mut next_token = 0u32;
            for op in ops {
                match op {
                    Op::Request { tenant, timeout } => {
                        let timeout = match timeout {
                            None => StatementTimeout::PoolDefault,
                            Some(None) => StatementTimeout::Unlimited,
                            Some(Some(ms)) => StatementTimeout::After(SimDuration::from_millis(ms)),
                        };
                        let token = next_token;
                        next_token += 1;
                        let can_start = (model.running.len() as u32) < model.connections
                            && model.eligible(tenant);
                        match p.request(now, &tenant, token, timeout) {
                            Requested::Granted(g) => {
                                prop_assert!(can_start, "granted over a limit");
                                prop_assert!(model.next().is_none(), "jumped an eligible waiter");
                                prop_assert_eq!((g.token, g.requested_at, g.granted_at), (token, now, now));
                                prop_assert_eq!(g.deadline, model.deadline(now, timeout));
                                model.running.push((g.query, tenant, token, g.deadline));
                            }
                            Requested::Queued(w) => {
                                prop_assert!(!can_start, "queued with a free connection under its cap");
                                model.waiters.push((w, tenant, token, now, timeout));
                            }
                        }
                    }
                    Op::Finish { pick } | Op::Cancel { pick } | Op::Expire { pick } => {
                        if model.running.is_empty() {
                            continue;
                        }
                        let i = pick % model.running.len();
                        let (query, _, _, deadline) = model.running[i];
                        let result = match op {
                            Op::Finish { .. } => p.finish(now, query),
                            Op::Cancel { .. } => p.cancel(now, query),
                            _ => p.expire(now, query),
                        };
                        if matches!(op, Op::Expire { .. }) && deadline.is_none_or(|d| now < d) {
                            prop_assert_eq!(result, Err(PoolError::NotDue { query, deadline }));
                            continue;
                        }
                        let grant = result.unwrap();
                        model.running.remove(i);
                        model.ended.push(query);
                        prop_assert!(p.running(query).is_none(), "an ended query kept its connection");
                        model.expect_grant(now, grant)?;
                    }
                    Op::Abandon { pick } => {
                        if model.waiters.is_empty() {
                            continue;
                        }
                        let (wait, _, token, ..) = model.waiters.remove(pick % model.waiters.len());
                        prop_assert_eq!(p.abandon(now, wait), Ok(token));
                        model.left.push(wait);
                    }
                    Op::EndAgain { pick } => {
                        let before = format!("{p:?}");
                        if !model.ended.is_empty() {
                            let query = model.ended[pick % model.ended.len()];
                            prop_assert_eq!(p.cancel(now, query), Err(PoolError::NotRunning(query)));
                        }
                        if !model.left.is_empty() {
                            let wait = model.left[pick % model.left.len()];
                            prop_assert_eq!(p.abandon(now, wait), Err(PoolError::NotWaiting(wait)));
                        }
                        prop_assert_eq!(format!("{p:?}"), before, "misuse changed state");
                    }
                    Op::SetCap { .. } | Op::SetDefaultCap { .. } | Op::SetConnections { .. } => {
                        match op {
                            Op::SetCap { tenant, cap } => {
                                p.set_tenant_cap(&tenant, cap).unwrap();
                                model.caps[tenant as usize] = cap;
                            }
                            Op::SetDefaultCap { cap } => {
                                p.set_default_tenant_cap(cap).unwrap();
                                model.default_cap = cap;
                            }
                            Op::SetConnections { n } => {
                                p.set_connections(n).unwrap();
                                model.connections = n;
                            }
                            _ => unreachable!(),
                        }
                        loop {
                            let grant = p.dispatch(now);
                            let done = grant.is_none();
                            model.expect_grant(now, grant)?;
                            if done {
                                break;
                            }
                        }
                    }
                    Op::Advance { ms } => now += SimDuration::from_millis(ms),
                }
                // No starvation, and the counts agree.
                prop_assert_eq!(model.next(), None, "an eligible waiter waits with a connection free");
                prop_assert_eq!(p.in_use() as usize, model.running.len());
                prop_assert_eq!(p.waiting() as usize, model.waiters.len());
                for tenant in 0..4u8 {
                    prop_assert_eq!(p.tenant_in_use(&tenant), model.in_use(tenant));
                    let waiting = model.waiters.iter().filter(|w| w.1 == tenant).count() as u32;
                    prop_assert_eq!(p.tenant_waiting(&tenant), waiting);
                    prop_assert_eq!(p.tenant_cap(&tenant), model.cap(tenant));
                }
                for (query, _, _, deadline) in &model.running {
                    prop_assert_eq!(p.running(*query).map(|r| r.deadline), Some(*deadline));
                }
                for (wait, ..) in &model.waiters {
                    prop_assert!(p.is_waiting(*wait));
                }
            }
        }
    }
}

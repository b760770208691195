//! The per-request components in steady state: once their tables have grown, a bulkhead
//! acquire or release, a connection-pool request or end, and a cache lookup or insert allocate
//! nothing (the simulator calls them per request, at millions of requests per second).
//!
//! Each test runs a long random workload twice: the first pass grows the tables (permit slots,
//! waiters, tenant records, the cache's map), the second is measured and must not allocate.

use tenantsim::components::bulkhead::{BulkheadConfig, BulkheadRegistry, ClassLimits, PermitId};
use tenantsim::components::cache::{CacheConfig, Insertion, Isolation, Lookup, TenantCache};
use tenantsim::components::connection_pool::{
    ConnectionPool, PoolConfig, QueryId, Requested, StatementTimeout, WaitId,
};
use tenantsim::kernel::rng::mix64;
use tenantsim::time::{SimDuration, SimTime};

/// Operations per pass.
const OPS: u64 = 200_000;

/// A deterministic pseudo-random word per operation.
fn word(pass: u64, op: u64) -> u64 {
    mix64(pass.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ op)
}

#[test]
fn bulkhead_registry_allocates_nothing_per_request_in_steady_state() {
    let mut registry = BulkheadRegistry::<u32, u32>::new(BulkheadConfig {
        retry_after: SimDuration::from_millis(100),
        per_tenant_total: Some(4),
    });
    for class in 0..3 {
        registry.set_class(
            class,
            ClassLimits {
                max_in_flight: Some(40),
                per_tenant: Some(2),
            },
        );
    }
    let mut held: Vec<PermitId> = Vec::with_capacity(128);
    let mut pass = |pass: u64, registry: &mut BulkheadRegistry<u32, u32>| {
        let mut admitted = 0u64;
        for op in 0..OPS {
            let w = word(pass, op);
            let now = SimTime::from_nanos(op * 1_000);
            if held.len() < 100 && w % 3 != 0 {
                let (tenant, class) = ((w >> 8) as u32 % 500, (w >> 40) as u32 % 3);
                if let Ok(permit) = registry.try_acquire(now, &tenant, &class) {
                    held.push(permit.id);
                    admitted += 1;
                }
            } else if !held.is_empty() {
                let permit = held.swap_remove((w >> 16) as usize % held.len());
                registry.release(now, permit).expect("held");
            }
        }
        admitted
    };
    pass(0, &mut registry);
    let mut admitted = 0;
    let info = allocation_counter::measure(|| admitted = pass(1, &mut registry));
    assert!(admitted > OPS / 4, "the workload admits: {admitted}");
    assert_eq!(info.count_total, 0, "allocations in steady state: {info:?}");
}

#[test]
fn connection_pool_allocates_nothing_per_query_in_steady_state() {
    let mut pool = ConnectionPool::<u32, u64>::new(PoolConfig {
        connections: 16,
        statement_timeout: Some(SimDuration::from_millis(50)),
        per_tenant_cap: Some(2),
    })
    .expect("valid pool");
    let mut running: Vec<(QueryId, Option<SimTime>)> = Vec::with_capacity(64);
    let mut waiting: Vec<WaitId> = Vec::with_capacity(512);
    let mut pass = |pass: u64, pool: &mut ConnectionPool<u32, u64>| {
        let mut granted = 0u64;
        let mut start = |grant: Option<tenantsim::components::connection_pool::Grant<u64>>,
                         running: &mut Vec<(QueryId, Option<SimTime>)>| {
            if let Some(grant) = grant {
                running.push((grant.query, grant.deadline));
                granted += 1;
            }
        };
        for op in 0..OPS {
            let w = word(pass, op);
            let now = SimTime::from_nanos((pass * OPS + op) * 1_000_000);
            match w % 8 {
                0..=3 if waiting.len() < 400 => {
                    let tenant = (w >> 8) as u32 % 200;
                    match pool.request(now, &tenant, op, StatementTimeout::PoolDefault) {
                        Requested::Granted(grant) => start(Some(grant), &mut running),
                        Requested::Queued(wait) => waiting.push(wait),
                    }
                }
                4 if !waiting.is_empty() => {
                    let wait = waiting.swap_remove((w >> 16) as usize % waiting.len());
                    // The waiter may have been granted since: that is an error, not a change.
                    let _ = pool.abandon(now, wait);
                }
                _ if !running.is_empty() => {
                    let (query, deadline) = running.swap_remove((w >> 16) as usize % running.len());
                    let handed = match deadline {
                        Some(deadline) if deadline <= now => pool.expire(now, query),
                        _ if w % 2 == 0 => pool.cancel(now, query),
                        _ => pool.finish(now, query),
                    };
                    start(handed.expect("running"), &mut running);
                }
                _ => {}
            }
        }
        granted
    };
    pass(0, &mut pool);
    let mut granted = 0;
    let info = allocation_counter::measure(|| granted = pass(1, &mut pool));
    assert!(granted > OPS / 4, "the workload runs queries: {granted}");
    assert_eq!(info.count_total, 0, "allocations in steady state: {info:?}");
}

#[test]
fn tenant_cache_allocates_nothing_per_lookup_in_steady_state() {
    for isolation in [
        Isolation::Shared,
        Isolation::Quota { max_entries: 300 },
        Isolation::Partitioned { slice: 100 },
    ] {
        let mut cache = TenantCache::<u32, u64, u64>::new(CacheConfig {
            capacity: 1_000,
            ttl: Some(SimDuration::from_millis(500)),
            isolation,
        })
        .expect("valid cache");
        let pass = |pass: u64, cache: &mut TenantCache<u32, u64, u64>| {
            let (mut hits, mut evictions) = (0u64, 0u64);
            for op in 0..OPS {
                let w = word(pass, op);
                let now = SimTime::from_nanos((pass * OPS + op) * 10_000);
                let tenant = (w >> 8) as u32 % 10;
                // Popular keys near 0 (a rough power law), so hits and evictions both occur.
                let key = (w >> 32) % (1 + (w >> 20) % 400);
                if w % 1_000 == 0 {
                    cache.flush_tenant(&tenant);
                    continue;
                }
                match cache.get(now, &tenant, &key) {
                    Lookup::Hit { .. } => hits += 1,
                    Lookup::Miss | Lookup::Expired => {
                        if let Insertion::Added { evicted: Some(_) } =
                            cache.insert(now, &tenant, key, op)
                        {
                            evictions += 1;
                        }
                    }
                }
            }
            (hits, evictions)
        };
        pass(0, &mut cache);
        let mut counts = (0, 0);
        let info = allocation_counter::measure(|| counts = pass(1, &mut cache));
        assert!(
            counts.0 > OPS / 10 && counts.1 > OPS / 20,
            "{isolation:?}: the workload hits and evicts: {counts:?}"
        );
        assert_eq!(
            info.count_total, 0,
            "{isolation:?}: allocations in steady state: {info:?}"
        );
    }
}

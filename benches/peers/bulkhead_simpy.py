"""SimPy 4 peer of benches/bulkhead.toml: two request classes in two pools of one cell, API
reads through a cache with a database miss path, reports in a bulkhead pool calling object
storage (`simulate bench bulkhead`).

Written from the scenario's documented semantics, not from tenantsim's code: no shared code,
streams or draws; agreement is statistical (docs/validation.md, "The SimPy peers").

Semantic choices (each the model's, as docs and scenario keys state it):
- Twenty tenants (tier business), each with two Poisson sources: `api` at 45 requests/s and
  `report` at 5/s (the tenant's 50/s split 0.9 / 0.1; one source process per class).
- Edge rate limiter, per tenant, per attempt of any class: a token bucket of 400 tokens,
  refilled at 200/s, full at the start; no token: refused at once (429, `throttled`), hinted
  at the time one token will be there.
- Bulkhead (reports only): a tenant holds at most one report in the cell at once; a second is
  refused at once (503, `rejected`), hinted 100 ms later. The report keeps its place until its
  work ends, also when its client has given up.
- Admission into the class's pool, after the bulkhead: admitted iff fewer than workers +
  queue attempts hold a place in that pool (api 4 + 64, reports 4 + 16) and the tenant holds
  fewer than its tier's cap of 32 there; otherwise refused (503, `rejected`), hinted 10 ms
  later (the model's hint: the larger of the pool's mean service time and 10 ms), and a
  report's bulkhead place is given back.
- Work, each pool a FIFO `simpy.Resource` of 4 workers, held to the end: exponential CPU
  (api: mean 2 ms; report: 10 ms), then
  - api: a lookup in the cell's cache (200 us); the key is a Zipf(1) rank among the tenant's
    1,000 keys, drawn per attempt. A hit (the tenant's own entry: keys carry their tenant)
    makes the entry the most recent; a miss runs one query on a connection of the database
    (a FIFO `simpy.Resource` of 16, log-normal: median 2 ms, p99 15 ms), then puts the key in
    the cache. The cache is an exact LRU of 8,000 entries with a quota of 300 per tenant: a
    new key of a tenant at its quota evicts that tenant's least recent entry, otherwise a full
    cache evicts its least recent entry. No time to live.
  - report: one operation at object storage (a FIFO `simpy.Resource` of 16, log-normal:
    median 15 ms, p99 80 ms).
  Every time is drawn per attempt. No circuit breakers: nothing in this run fails a call, so
  tenantsim's never trip.
- Client timeout: 1 s from admission (an attempt refused before arms none). On timeout the
  client stops waiting (`timed_out`); the work runs on and keeps what it holds until done.
- Retries: 3 attempts in all; after the k-th failed attempt wait a uniform time in
  [0, min(5 s, 100 ms * 2^(k-1))] ("full jitter"), and never less than until the server's hint;
  a request out of attempts ends with its last attempt's outcome. No retry budget.
- Measured per class: requests issued at or after the 10 s warmup and before the end;
  outcomes of those finished by the end (the rest are in flight); latency of `ok` requests from
  issue to answer (retries included), quantiles exact (nearest rank); cache hits and misses of
  lookups made after the warmup.

Usage: python bulkhead_simpy.py [--duration SECONDS] [--seed N]
Prints one JSON object: per-class counts and latency, the simulation loop's wall time, the
requests finished and the events SimPy scheduled.
"""
import argparse
import itertools
import json
import math
import platform
import random
import statistics
import time
from collections import OrderedDict

import simpy

WARMUP = 10.0
TENANTS = [f"tenant-{i:03}" for i in range(1, 21)]
TENANT_RATE, SHARES = 50.0, {"api": 0.9, "report": 0.1}
LIMIT_RATE, LIMIT_BURST, TENANT_CAP = 200.0, 400, 32
POOLS = {"api": (4, 64, 0.002), "report": (4, 16, 0.010)}  # workers, queue, CPU mean
REPORTS_PER_TENANT, BULKHEAD_HINT = 1, 0.100
ADMISSION_HINT = 0.010
CACHE_LATENCY, CACHE_CAPACITY, CACHE_QUOTA = 0.0002, 8000, 300
KEYS, ZIPF = 1000, 1.0
DB_CONNECTIONS, DB_MEDIAN, DB_P99 = 16, 0.002, 0.015
STORAGE_CONCURRENCY, STORAGE_MEDIAN, STORAGE_P99 = 16, 0.015, 0.080
TIMEOUT = 1.0
MAX_ATTEMPTS, BASE, CAP = 3, 0.100, 5.0
OUTCOMES = ("ok", "throttled", "rejected", "failed", "timed_out")
Z99 = statistics.NormalDist().inv_cdf(0.99)
KEY_WEIGHTS = list(itertools.accumulate(1.0 / k**ZIPF for k in range(1, KEYS + 1)))


def lognormal(rng, median, p99):
    return rng.lognormvariate(math.log(median), math.log(p99 / median) / Z99)


class TokenBucket:
    """`burst` tokens, refilled continuously at `rate`; one token per attempt."""

    def __init__(self, rate, burst):
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.at = float(burst), 0.0

    def take(self, now):
        """None if a token was taken, else when one will be there."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0 - 1e-9:
            self.tokens -= 1.0
            return None
        return now + (1.0 - self.tokens) / self.rate


class TenantLru:
    """An LRU cache of (tenant, key) entries with a per-tenant quota."""

    def __init__(self, capacity, quota):
        self.capacity, self.quota = capacity, quota
        self.all = OrderedDict()  # (tenant, key) -> None, least recent first
        self.own = {}  # tenant -> OrderedDict of its keys, least recent first

    def get(self, tenant, key):
        if (tenant, key) not in self.all:
            return False
        self.all.move_to_end((tenant, key))
        self.own[tenant].move_to_end(key)
        return True

    def put(self, tenant, key):
        own = self.own.setdefault(tenant, OrderedDict())
        if key in own:
            self.all.move_to_end((tenant, key))
            own.move_to_end(key)
            return
        if len(own) >= self.quota:
            old, _ = own.popitem(last=False)
            del self.all[(tenant, old)]
        elif len(self.all) >= self.capacity:
            (owner, old), _ = self.all.popitem(last=False)
            del self.own[owner][old]
        self.all[(tenant, key)] = None
        own[key] = None


class Pool:
    """A worker pool behind admission control: places (workers + queue, a cap per tenant)."""

    def __init__(self, env, workers, queue, cpu_mean):
        self.workers = simpy.Resource(env, capacity=workers)
        self.limit, self.cpu_mean = workers + queue, cpu_mean
        self.places, self.held = 0, {t: 0 for t in TENANTS}

    def admit(self, tenant):
        if self.places >= self.limit or self.held[tenant] >= TENANT_CAP:
            return False
        self.places += 1
        self.held[tenant] += 1
        return True

    def leave(self, tenant):
        self.places -= 1
        self.held[tenant] -= 1


class Stats:
    def __init__(self):
        self.counts = {o: 0 for o in OUTCOMES}
        self.requests = 0
        self.latencies = []

    def summary(self):
        xs = sorted(self.latencies)

        def q(p):
            return xs[max(0, math.ceil(p * len(xs)) - 1)] * 1e3 if xs else None

        finished = sum(self.counts.values())
        return dict(self.counts, requests=self.requests, in_flight=self.requests - finished,
                    p50_ms=q(0.50), p99_ms=q(0.99),
                    mean_ms=(sum(xs) / len(xs) * 1e3) if xs else None)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=1000.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    env = simpy.Environment()
    pools = {cls: Pool(env, *spec) for cls, spec in POOLS.items()}
    db = simpy.Resource(env, capacity=DB_CONNECTIONS)
    storage = simpy.Resource(env, capacity=STORAGE_CONCURRENCY)
    cache = TenantLru(CACHE_CAPACITY, CACHE_QUOTA)
    reports_held = {t: 0 for t in TENANTS}
    buckets = {t: TokenBucket(LIMIT_RATE, LIMIT_BURST) for t in TENANTS}
    stats = {cls: Stats() for cls in POOLS}
    lookups = {"hits": 0, "misses": 0}
    finished = [0]

    def api_calls(tenant):
        key = rng.choices(range(KEYS), cum_weights=KEY_WEIGHTS)[0]
        yield env.timeout(CACHE_LATENCY)
        hit = cache.get(tenant, key)
        if env.now >= WARMUP:
            lookups["hits" if hit else "misses"] += 1
        if not hit:
            with db.request() as connection:
                yield connection
                yield env.timeout(lognormal(rng, DB_MEDIAN, DB_P99))
            cache.put(tenant, key)

    def report_calls():
        with storage.request() as operation:
            yield operation
            yield env.timeout(lognormal(rng, STORAGE_MEDIAN, STORAGE_P99))

    def work(tenant, cls, pool):
        try:
            with pool.workers.request() as worker:
                yield worker
                yield env.timeout(rng.expovariate(1.0 / pool.cpu_mean))
                if cls == "api":
                    yield from api_calls(tenant)
                else:
                    yield from report_calls()
        finally:
            pool.leave(tenant)
            if cls == "report":
                reports_held[tenant] -= 1

    def attempt(tenant, cls):
        """One attempt: (outcome, retry hint or None)."""
        hint = buckets[tenant].take(env.now)
        if hint is not None:
            return "throttled", hint
        if cls == "report":
            if reports_held[tenant] >= REPORTS_PER_TENANT:
                return "rejected", env.now + BULKHEAD_HINT
            reports_held[tenant] += 1
        pool = pools[cls]
        if not pool.admit(tenant):
            if cls == "report":
                reports_held[tenant] -= 1
            return "rejected", env.now + ADMISSION_HINT
        running = env.process(work(tenant, cls, pool))
        result = yield running | env.timeout(TIMEOUT)
        return ("ok", None) if running in result else ("timed_out", None)

    def request(tenant, cls):
        issued = env.now
        for k in range(1, MAX_ATTEMPTS + 1):
            outcome, hint = yield from attempt(tenant, cls)
            if outcome == "ok" or k == MAX_ATTEMPTS:
                break
            at = env.now + rng.uniform(0.0, min(CAP, BASE * 2 ** (k - 1)))
            if hint is not None and hint > at:
                at = hint
            yield env.timeout(at - env.now)
        finished[0] += 1
        if issued >= WARMUP:
            tally = stats[cls]
            tally.counts[outcome] += 1
            if outcome == "ok":
                tally.latencies.append(env.now - issued)

    def source(tenant, cls, rate):
        while True:
            yield env.timeout(rng.expovariate(rate))
            if env.now >= WARMUP:
                stats[cls].requests += 1
            env.process(request(tenant, cls))

    for tenant in TENANTS:
        for cls, share in SHARES.items():
            env.process(source(tenant, cls, TENANT_RATE * share))
    started = time.perf_counter()
    cpu_started = time.process_time()
    env.run(until=args.duration)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    looked_up = lookups["hits"] + lookups["misses"]
    print(json.dumps({
        "peer": "bulkhead_simpy", "python": platform.python_version(),
        "simpy": simpy.__version__, "seed": args.seed, "duration_s": args.duration,
        "wall_s": wall, "cpu_s": cpu, "finished": finished[0], "events": next(env._eid),
        "classes": {cls: s.summary() for cls, s in stats.items()},
        "cache_hit_ratio": lookups["hits"] / looked_up if looked_up else None,
    }))


if __name__ == "__main__":
    main()

"""SimPy 4 peer of benches/hot-tenant-full.toml (the shape of scenarios/hot-tenant.toml): one
heavy tenant spikes 10x while fifty light tenants share the cell's API pool and database
(`simulate bench hot-tenant-full`).

Written from the scenario's documented semantics, not from tenantsim's code: no shared code,
streams or draws; agreement is statistical (docs/validation.md, "The SimPy peers").

Semantic choices (each the model's, as docs and scenario keys state it):
- Tenants: `heavy` (tier enterprise) Poisson at 1,000 requests/s, 10x from 30 s to 90 s (a
  piecewise-constant rate: the gap is drawn afresh at each rate change, exact for Poisson);
  50 `light-NNN` tenants (tier standard), Poisson at 10/s each. One source process each.
- Edge rate limiter, per tenant, per attempt: a token bucket holding `burst` tokens, refilled
  at the tier's `rate` (enterprise 1,500/s, burst 3,000; standard 100/s, burst 200), full at
  the start. An attempt takes a token or is refused at once (429, `throttled`) with the exact
  time one token will be there as its retry hint. (tenantsim writes the same rule as GCRA.)
- Admission into the API pool: admitted iff fewer than workers + queue = 64 + 512 attempts
  hold a place (queued or served) and the tenant holds fewer than its tier's cap (standard:
  16; enterprise: none); otherwise refused at once (503, `rejected`), hint 10 ms later (the
  model's: the larger of the pool's mean service time and 10 ms).
- Work: a FIFO `simpy.Resource` of 64 workers; exponential CPU, mean 4 ms; then 2 database
  queries one after another, each on a connection of a FIFO `simpy.Resource` of 40, log-normal
  (median 2 ms, p99 20 ms), all while holding the worker. Every time is drawn per attempt.
  No circuit breakers: nothing in this run fails a query, so tenantsim's never trip.
- Client timeout: 1 s from admission (an attempt refused at the edge or the door arms none).
  On timeout the client stops waiting (`timed_out`); the server finishes the work anyway and
  keeps its worker, connection and place in the pool until done.
- Retries: 3 attempts in all; after the k-th failed attempt wait a uniform time in
  [0, min(5 s, 100 ms * 2^(k-1))] ("full jitter"), and never less than until the server's hint;
  a request out of attempts ends with its last attempt's outcome. No retry budget.
- Measured per tier: requests issued at or after the 10 s warmup and before the end (120 s);
  outcomes of those finished by the end (the rest are in flight); latency of `ok` requests from
  issue to answer (retries included), quantiles exact (nearest rank).

Usage: python hot_tenant_simpy.py [--duration SECONDS] [--seed N]
Prints one JSON object: per-tier counts and latency, the simulation loop's wall time, the
requests finished and the events SimPy scheduled.
"""
import argparse
import json
import math
import platform
import random
import statistics
import time

import simpy

WARMUP = 10.0
TIERS = {
    # name: (rate/s, burst, per-tenant cap in the pool)
    "enterprise": (1500.0, 3000, None),
    "standard": (100.0, 200, 16),
}
TENANTS = [("heavy", "enterprise", 1000.0)] + [
    (f"light-{i:03}", "standard", 10.0) for i in range(1, 51)
]
SPIKE = ("heavy", 10.0, 30.0, 90.0)  # tenant, multiplier, from, until
WORKERS, QUEUE = 64, 512
CPU_MEAN = 0.004
DB_CONNECTIONS, DB_QUERIES = 40, 2
DB_MEDIAN, DB_P99 = 0.002, 0.020
TIMEOUT = 1.0
MAX_ATTEMPTS, BASE, CAP = 3, 0.100, 5.0
REJECT_HINT = 0.010
OUTCOMES = ("ok", "throttled", "rejected", "failed", "timed_out")
DB_MU = math.log(DB_MEDIAN)
DB_SIGMA = math.log(DB_P99 / DB_MEDIAN) / statistics.NormalDist().inv_cdf(0.99)


class TokenBucket:
    """`burst` tokens, refilled continuously at `rate`; one token per attempt."""

    def __init__(self, rate, burst):
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.at = float(burst), 0.0

    def take(self, now):
        """None if a token was taken, else when one will be there."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        # A hair of slack: at the hinted time the refill must count as a whole token.
        if self.tokens >= 1.0 - 1e-9:
            self.tokens -= 1.0
            return None
        return now + (1.0 - self.tokens) / self.rate


class Cell:
    """The API pool (admission, then FIFO workers) and its database."""

    def __init__(self, env, rng):
        self.env, self.rng = env, rng
        self.workers = simpy.Resource(env, capacity=WORKERS)
        self.db = simpy.Resource(env, capacity=DB_CONNECTIONS)
        self.places = 0
        self.held = {}  # tenant -> places held

    def admit(self, tenant, cap):
        if self.places >= WORKERS + QUEUE or (cap is not None and self.held[tenant] >= cap):
            return False
        self.places += 1
        self.held[tenant] += 1
        return True

    def serve(self, tenant):
        env, rng = self.env, self.rng
        try:
            with self.workers.request() as worker:
                yield worker
                yield env.timeout(rng.expovariate(1.0 / CPU_MEAN))
                for _ in range(DB_QUERIES):
                    with self.db.request() as connection:
                        yield connection
                        yield env.timeout(rng.lognormvariate(DB_MU, DB_SIGMA))
        finally:
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
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    env = simpy.Environment()
    cell = Cell(env, rng)
    stats = {tier: Stats() for tier in TIERS}
    finished = [0]

    def attempt(tenant, tier, bucket):
        """One attempt: (outcome, retry hint or None)."""
        hint = bucket.take(env.now)
        if hint is not None:
            return "throttled", hint
        if not cell.admit(tenant, TIERS[tier][2]):
            return "rejected", env.now + REJECT_HINT
        work = env.process(cell.serve(tenant))
        result = yield work | env.timeout(TIMEOUT)
        return ("ok", None) if work in result else ("timed_out", None)

    def request(tenant, tier, bucket):
        issued = env.now
        for k in range(1, MAX_ATTEMPTS + 1):
            outcome, hint = yield from attempt(tenant, tier, bucket)
            if outcome == "ok" or k == MAX_ATTEMPTS:
                break
            at = env.now + rng.uniform(0.0, min(CAP, BASE * 2 ** (k - 1)))
            if hint is not None and hint > at:
                at = hint
            yield env.timeout(at - env.now)
        finished[0] += 1
        if issued >= WARMUP:
            tally = stats[tier]
            tally.counts[outcome] += 1
            if outcome == "ok":
                tally.latencies.append(env.now - issued)

    def rate_at(tenant, base, t):
        """The tenant's rate at `t` and when it next changes."""
        name, multiplier, start, end = SPIKE
        if tenant != name:
            return base, math.inf
        if t < start:
            return base, start
        if t < end:
            return base * multiplier, end
        return base, math.inf

    def source(tenant, tier, base):
        bucket = TokenBucket(*TIERS[tier][:2])
        cell.held[tenant] = 0
        t = 0.0
        while True:
            rate, change = rate_at(tenant, base, t)
            arrival = t + rng.expovariate(rate)
            if arrival >= change:
                t = change  # memoryless: draw afresh at the new rate
                continue
            yield env.timeout(arrival - env.now)
            t = env.now
            if t >= WARMUP:
                stats[tier].requests += 1
            env.process(request(tenant, tier, bucket))

    for tenant, tier, rate in TENANTS:
        env.process(source(tenant, tier, rate))
    started = time.perf_counter()
    cpu_started = time.process_time()
    env.run(until=args.duration)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(json.dumps({
        "peer": "hot_tenant_simpy", "python": platform.python_version(),
        "simpy": simpy.__version__, "seed": args.seed, "duration_s": args.duration,
        "wall_s": wall, "cpu_s": cpu, "finished": finished[0], "events": next(env._eid),
        "tiers": {tier: s.summary() for tier, s in stats.items()},
    }))


if __name__ == "__main__":
    main()

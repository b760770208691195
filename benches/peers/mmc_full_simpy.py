"""SimPy 4 peer of benches/mmc-full.toml: the reference M/M/10 as a user writes it, with
admission control, a bounded queue and a client timeout left on (`simulate bench mmc-full`).

Written from the scenario's documented semantics, not from tenantsim's code: no shared code,
streams or draws; agreement is statistical (docs/validation.md, "The SimPy peers").

Semantic choices (each the model's, as docs and scenario keys state it):
- Two tenants, `heavy` at 900 requests/s and `light` at 100/s, Poisson (one source process
  each); one tier without a rate limiter (`[edge] rate_limiting = false`).
- Admission: an attempt is admitted iff fewer than workers + queue = 10 + 160 attempts hold a
  place in the pool (queued or served); otherwise it is refused at once (503, `rejected`)
  with a retry hint 10 ms later (the model's hint: the larger of the pool's mean service time
  and 10 ms). The tier has no per-tenant cap.
- Service: a FIFO `simpy.Resource` of 10 workers; exponential service, mean 8 ms, drawn per
  attempt.
- Client timeout: 1 s from admission (an attempt refused at the door arms none). On timeout
  the client stops waiting (`timed_out`), and the server finishes the work anyway: it keeps
  its worker and its place in the pool until done.
- Retries: 3 attempts in all; after the k-th failed attempt the client waits a uniform time
  in [0, min(5 s, 100 ms * 2^(k-1))] ("full jitter"), and never less than until the server's
  hint; a request out of attempts ends with its last attempt's outcome. No retry budget.
- Measured: requests issued at or after the 10 s warmup; outcomes of those finished by the
  end (the rest are in flight); latency of `ok` requests from issue to answer (retries
  included), quantiles exact (nearest rank).

Usage: python mmc_full_simpy.py [--duration SECONDS] [--seed N]
Prints one JSON object: per-tier counts and latency, the simulation loop's wall time, the
requests finished and the events SimPy scheduled.
"""
import argparse
import json
import math
import platform
import random
import time

import simpy

WARMUP = 10.0
TENANTS = (("heavy", 900.0), ("light", 100.0))
WORKERS, QUEUE = 10, 160
MEAN_SERVICE = 0.008
TIMEOUT = 1.0
MAX_ATTEMPTS, BASE, CAP = 3, 0.100, 5.0
REJECT_HINT = 0.010
OUTCOMES = ("ok", "throttled", "rejected", "failed", "timed_out")


class Pool:
    """The API pool: admission (a place among workers + queue), then a FIFO worker."""

    def __init__(self, env):
        self.env = env
        self.workers = simpy.Resource(env, capacity=WORKERS)
        self.places = 0

    def serve(self, rng):
        try:
            with self.workers.request() as worker:
                yield worker
                yield self.env.timeout(rng.expovariate(1.0 / MEAN_SERVICE))
        finally:
            self.places -= 1


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
    pool = Pool(env)
    stats = Stats()  # one tier
    finished = [0]

    def attempt():
        """One attempt: (outcome, retry hint or None)."""
        if pool.places >= WORKERS + QUEUE:
            return "rejected", env.now + REJECT_HINT
        pool.places += 1
        work = env.process(pool.serve(rng))
        result = yield work | env.timeout(TIMEOUT)
        return ("ok", None) if work in result else ("timed_out", None)

    def request():
        issued = env.now
        for k in range(1, MAX_ATTEMPTS + 1):
            outcome, hint = yield from attempt()
            if outcome == "ok" or k == MAX_ATTEMPTS:
                break
            at = env.now + rng.uniform(0.0, min(CAP, BASE * 2 ** (k - 1)))
            if hint is not None and hint > at:
                at = hint
            yield env.timeout(at - env.now)
        finished[0] += 1
        if issued >= WARMUP:
            stats.counts[outcome] += 1
            if outcome == "ok":
                stats.latencies.append(env.now - issued)

    def source(rate):
        while True:
            yield env.timeout(rng.expovariate(rate))
            if env.now >= WARMUP:
                stats.requests += 1
            env.process(request())

    for _, rate in TENANTS:
        env.process(source(rate))
    started = time.perf_counter()
    cpu_started = time.process_time()
    env.run(until=args.duration)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(json.dumps({
        "peer": "mmc_full_simpy", "python": platform.python_version(),
        "simpy": simpy.__version__, "seed": args.seed, "duration_s": args.duration,
        "wall_s": wall, "cpu_s": cpu, "finished": finished[0], "events": next(env._eid),
        "tiers": {"flat": stats.summary()},
    }))


if __name__ == "__main__":
    main()

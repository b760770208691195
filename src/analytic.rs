//! Closed-form queueing results used to validate the simulator: Erlang C for M/M/c, the
//! Pollaczek–Khinchine mean wait for M/G/1 (constant, exponential and log-normal service),
//! M/D/1/K loss (the exact admitted rate of a token bucket under Poisson arrivals), and Che's
//! approximation of an LRU cache's hit ratios under the independent reference model.
//!
//! Pure math, no dependencies: the benchmark and the fidelity tests (`tests/it/fidelity.rs`,
//! `docs/validation.md`) compare simulated waiting and response times with these.

/// Erlang C: the probability that an arrival waits in an M/M/c queue with offered load `a`
/// Erlangs (λ/μ), for `a < c`. Computed with the numerically stable Erlang B recursion.
pub fn erlang_c(c: u32, a: f64) -> f64 {
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (f64::from(k) + a * b);
    }
    let rho = a / f64::from(c);
    b / (1.0 - rho * (1.0 - b))
}

/// An M/M/c FIFO queue: arrival rate `lambda`, service rate `mu` per server, `c` servers.
#[derive(Clone, Copy, Debug)]
pub struct MMc {
    /// Arrivals per second.
    pub lambda: f64,
    /// Services per second per server.
    pub mu: f64,
    /// Servers.
    pub c: u32,
}

impl MMc {
    /// Utilisation λ/(cμ).
    pub fn rho(&self) -> f64 {
        self.lambda / (f64::from(self.c) * self.mu)
    }

    /// Probability of waiting (Erlang C).
    pub fn p_wait(&self) -> f64 {
        erlang_c(self.c, self.lambda / self.mu)
    }

    /// Rate of the conditional waiting-time exponential, cμ − λ.
    fn drain_rate(&self) -> f64 {
        f64::from(self.c) * self.mu - self.lambda
    }

    /// Mean waiting time in queue (seconds).
    pub fn mean_wait(&self) -> f64 {
        self.p_wait() / self.drain_rate()
    }

    /// The `q`-quantile of the waiting time (seconds): `max(0, ln(C/(1-q)) / (cμ−λ))`.
    pub fn wait_quantile(&self, q: f64) -> f64 {
        (self.p_wait() / (1.0 - q)).ln().max(0.0) / self.drain_rate()
    }

    /// Mean response time (wait + service, seconds).
    pub fn mean_response(&self) -> f64 {
        self.mean_wait() + 1.0 / self.mu
    }

    /// P(response time > t): the wait is 0 with probability 1−C, else Exp(cμ−λ); service is
    /// Exp(μ), independent of the wait.
    pub fn response_tail(&self, t: f64) -> f64 {
        let c = self.p_wait();
        let a = self.drain_rate();
        let mu = self.mu;
        let service_tail = (-mu * t).exp();
        let sum_tail = if (a - mu).abs() < 1e-9 * mu {
            (1.0 + mu * t) * service_tail
        } else {
            (a * service_tail - mu * (-a * t).exp()) / (a - mu)
        };
        (1.0 - c) * service_tail + c * sum_tail
    }

    /// The `q`-quantile of the response time (seconds), by bisection on the tail.
    pub fn response_quantile(&self, q: f64) -> f64 {
        let target = 1.0 - q;
        let (mut lo, mut hi) = (0.0, 1.0 / self.mu);
        while self.response_tail(hi) > target {
            hi *= 2.0;
        }
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if self.response_tail(mid) > target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }
}

/// The standard normal quantile at 0.99: a log-normal given by its median `m` and 99th
/// percentile `p` has `σ = ln(p/m) / Z99` (the parameterisation of scenario files).
pub const Z99: f64 = 2.326_347_874_040_840_8;

/// An M/G/1 FIFO queue: Poisson arrivals at `lambda` per second, one server, independent
/// service times given by their first two moments (seconds and seconds²).
#[derive(Clone, Copy, Debug)]
pub struct MG1 {
    /// Arrivals per second.
    pub lambda: f64,
    /// E\[S\], seconds.
    pub mean_service: f64,
    /// E\[S²\], seconds².
    pub second_moment: f64,
}

impl MG1 {
    /// M/D/1: every service takes `service` seconds (E\[S²\] = s²).
    pub fn deterministic(lambda: f64, service: f64) -> MG1 {
        MG1 {
            lambda,
            mean_service: service,
            second_moment: service * service,
        }
    }

    /// M/M/1 as an M/G/1: exponential service with mean `mean` (E\[S²\] = 2·mean²).
    pub fn exponential(lambda: f64, mean: f64) -> MG1 {
        MG1 {
            lambda,
            mean_service: mean,
            second_moment: 2.0 * mean * mean,
        }
    }

    /// Log-normal service given by its median and 99th percentile (seconds), as in scenario
    /// files: `σ = ln(p99/median)/Z99`, E\[S\] = median·e^(σ²/2), E\[S²\] = median²·e^(2σ²).
    pub fn lognormal(lambda: f64, median: f64, p99: f64) -> MG1 {
        let sigma = (p99 / median).ln() / Z99;
        MG1 {
            lambda,
            mean_service: median * (sigma * sigma / 2.0).exp(),
            second_moment: median * median * (2.0 * sigma * sigma).exp(),
        }
    }

    /// Utilisation λ·E\[S\]; the formulas need it below 1.
    pub fn rho(&self) -> f64 {
        self.lambda * self.mean_service
    }

    /// Squared coefficient of variation of the service time, Var\[S\]/E\[S\]².
    pub fn service_scv(&self) -> f64 {
        self.second_moment / (self.mean_service * self.mean_service) - 1.0
    }

    /// Mean waiting time in queue (seconds), Pollaczek–Khinchine: `λ·E[S²] / (2(1−ρ))`.
    pub fn mean_wait(&self) -> f64 {
        self.lambda * self.second_moment / (2.0 * (1.0 - self.rho()))
    }

    /// Mean response time (wait + service, seconds).
    pub fn mean_response(&self) -> f64 {
        self.mean_wait() + self.mean_service
    }

    /// Mean number waiting in queue, `λ·Wq` (Little's law).
    pub fn mean_queue_length(&self) -> f64 {
        self.lambda * self.mean_wait()
    }
}

/// An M/D/1/K queue: Poisson arrivals at `lambda` per second, one server with constant
/// service `service` seconds, at most `capacity` requests in the system (arrivals finding it
/// full are lost).
///
/// It is also the exact model of a token bucket (GCRA with emission interval T = 1/rate and
/// burst b) fed by Poisson arrivals: GCRA admits a request iff its virtual workload
/// `max(TAT − now, 0)` is at most `(b − 1)·T`, and an admitted request adds T to it, so the
/// workload is that of an M/D/1 queue with service T that admits iff fewer than b requests
/// are in it. The admitted rate is the queue's throughput.
#[derive(Clone, Copy, Debug)]
pub struct MD1K {
    /// Arrivals per second.
    pub lambda: f64,
    /// Service time, seconds.
    pub service: f64,
    /// Most requests in the system (at least 1).
    pub capacity: u32,
}

impl MD1K {
    /// Offered load λ·T (may exceed 1: the queue loses what it cannot take).
    pub fn rho(&self) -> f64 {
        self.lambda * self.service
    }

    /// The probability that an arrival is lost, `1 − 1/(π₀ + ρ)`, where π₀ is the probability
    /// that a departure leaves the system empty (the embedded Markov chain at departures, solved
    /// exactly; Gross and Harris, *Fundamentals of Queueing Theory*, M/G/1/K).
    pub fn blocking(&self) -> f64 {
        let k = self.capacity.max(1) as usize;
        let rho = self.rho();
        // a[j]: probability of j arrivals during one service (Poisson with mean ρ).
        let mut a = vec![(-rho).exp(); k];
        for j in 1..k {
            a[j] = a[j - 1] * rho / j as f64;
        }
        // Departure-epoch states 0..k−1 (customers left behind). From i (or from 0, after the
        // next arrival starts service) the next departure leaves i − 1 + arrivals, at most k − 1.
        let base = |i: usize| i.saturating_sub(1);
        let transition = |i: usize, j: usize| -> f64 {
            let from = base(i);
            if j < from {
                0.0
            } else if j < k - 1 {
                a[j - from]
            } else {
                1.0 - a[..k - 1 - from].iter().sum::<f64>()
            }
        };
        // Solve π(P − I) = 0 with Σπ = 1: rows are equations for each j, the last replaced by
        // the normalisation; Gaussian elimination with partial pivoting.
        let mut m = vec![vec![0.0; k + 1]; k];
        for (j, row) in m.iter_mut().enumerate().take(k - 1) {
            for (i, cell) in row.iter_mut().enumerate().take(k) {
                *cell = transition(i, j) - if i == j { 1.0 } else { 0.0 };
            }
        }
        for cell in m[k - 1].iter_mut() {
            *cell = 1.0;
        }
        for col in 0..k {
            let pivot = (col..k)
                .max_by(|&x, &y| m[x][col].abs().total_cmp(&m[y][col].abs()))
                .unwrap_or(col);
            m.swap(col, pivot);
            let pivot_row = m[col].clone();
            if pivot_row[col] == 0.0 {
                continue;
            }
            for (r, row) in m.iter_mut().enumerate() {
                if r != col {
                    let f = row[col] / pivot_row[col];
                    for (cell, p) in row.iter_mut().zip(&pivot_row).skip(col) {
                        *cell -= f * p;
                    }
                }
            }
        }
        let pi0 = m[0][k] / m[0][0];
        1.0 - 1.0 / (pi0 + rho)
    }

    /// Admitted (served) requests per second, `λ·(1 − blocking)`; it tends to `1/service` as
    /// the offered load grows.
    pub fn throughput(&self) -> f64 {
        self.lambda * (1.0 - self.blocking())
    }
}

/// Zipf popularity over `n` items: item `i` (rank 1 to `n`) is requested with probability
/// proportional to `1 / i^alpha`. Normalised to sum to 1; index 0 is rank 1.
pub fn zipf_popularity(n: usize, alpha: f64) -> Vec<f64> {
    let weights: Vec<f64> = (1..=n).map(|i| (i as f64).powf(-alpha)).collect();
    let total: f64 = weights.iter().sum();
    weights.into_iter().map(|w| w / total).collect()
}

/// Che's approximation of an LRU cache of `C` entries under the independent reference model
/// (Che, Tung and Wang, 2002; Fricker, Robert and Roberts, 2012): item `i` is requested as a
/// Poisson process of rate `λ_i`, independently of the others. An item stays in the cache for
/// a fixed *characteristic time* `T` after its last request (the time `C` other distinct items
/// take to be requested), so its hit ratio is `1 − exp(−λ_i·T)`, and `T` is the root of
/// `Σ_i (1 − exp(−λ_i·T)) + s·T = C`: the expected number of items in the cache equals its
/// capacity.
///
/// `s` is the rate of requests for items never requested again (a scan): each such item
/// occupies the cache for `T` after its only request, so `s·T` of them are in it on average
/// (the same mean-field argument; `s = 0` is Che's original approximation).
///
/// Rates may be in any unit (per second, or probabilities per request); `T` is in its inverse.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheLru {
    /// The characteristic time `T`; infinite when every item fits (then every hit ratio is 1).
    pub characteristic_time: f64,
}

impl CheLru {
    /// Che's approximation for items with request rates `rates` and a cache of `capacity`
    /// entries.
    pub fn new(rates: &[f64], capacity: f64) -> CheLru {
        CheLru::with_scan(rates, capacity, 0.0)
    }

    /// The same with a scan of rate `scan_rate` sharing the cache (see the type's
    /// documentation).
    pub fn with_scan(rates: &[f64], capacity: f64, scan_rate: f64) -> CheLru {
        let occupancy = |t: f64| -> f64 {
            rates.iter().map(|&r| -(-r * t).exp_m1()).sum::<f64>() + scan_rate * t
        };
        let slope =
            |t: f64| -> f64 { rates.iter().map(|&r| r * (-r * t).exp()).sum::<f64>() + scan_rate };
        let items = rates.iter().filter(|&&r| r > 0.0).count() as f64;
        if scan_rate <= 0.0 && capacity >= items {
            return CheLru {
                characteristic_time: f64::INFINITY,
            };
        }
        // Bracket the root, then Newton steps kept inside the bracket (bisection when a step
        // would leave it). The occupancy is increasing and concave, so this converges fast.
        let total: f64 = rates.iter().sum::<f64>() + scan_rate;
        let (mut lo, mut hi) = (0.0, capacity / total);
        while occupancy(hi) < capacity {
            lo = hi;
            hi *= 2.0;
        }
        let mut t = hi;
        for _ in 0..200 {
            let f = occupancy(t) - capacity;
            if f > 0.0 {
                hi = t;
            } else {
                lo = t;
            }
            if hi - lo <= 1e-13 * hi {
                break;
            }
            let newton = t - f / slope(t);
            t = if newton > lo && newton < hi {
                newton
            } else {
                0.5 * (lo + hi)
            };
        }
        CheLru {
            characteristic_time: 0.5 * (lo + hi),
        }
    }

    /// The hit ratio of an item requested at `rate`: `1 − exp(−rate·T)`.
    pub fn item_hit_ratio(&self, rate: f64) -> f64 {
        if self.characteristic_time.is_infinite() {
            return if rate > 0.0 { 1.0 } else { 0.0 };
        }
        -(-rate * self.characteristic_time).exp_m1()
    }

    /// The hit ratio of the requests for the items with these rates (weighted by rate).
    pub fn hit_ratio(&self, rates: &[f64]) -> f64 {
        let requests: f64 = rates.iter().sum();
        let hits: f64 = rates.iter().map(|&r| r * self.item_hit_ratio(r)).sum();
        hits / requests
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md1k_by_hand() {
        // K = 1 is a loss system: blocking ρ/(1 + ρ) for any service distribution (Erlang B).
        for rho in [0.5, 1.0, 3.0] {
            let q = MD1K {
                lambda: rho,
                service: 1.0,
                capacity: 1,
            };
            assert!((q.blocking() - rho / (1.0 + rho)).abs() < 1e-12);
        }
        // K = 2, ρ = 1: the departure chain has both rows (a₀, 1 − a₀), so π₀ = a₀ = e^−1 and
        // blocking = 1 − 1/(e^−1 + 1) = 0.268941.
        let q = MD1K {
            lambda: 1.0,
            service: 1.0,
            capacity: 2,
        };
        assert!((q.blocking() - 0.268_941).abs() < 1e-6, "{}", q.blocking());
        // Large capacity at ρ < 1 loses almost nothing; heavy overload serves 1/service.
        let light = MD1K {
            lambda: 50.0,
            service: 0.01,
            capacity: 60,
        };
        assert!(light.blocking() < 1e-12);
        let heavy = MD1K {
            lambda: 1_000.0,
            service: 0.005,
            capacity: 50,
        };
        assert!(
            (heavy.throughput() - 200.0).abs() < 1e-6,
            "{}",
            heavy.throughput()
        );
    }

    #[test]
    fn pollaczek_khinchine_by_hand() {
        // M/D/1, λ = 0.8/s, s = 1 s: ρ = 0.8, Wq = 0.8·1/(2·0.2) = 2 s, half of M/M/1's 4 s.
        let md1 = MG1::deterministic(0.8, 1.0);
        assert!((md1.rho() - 0.8).abs() < 1e-12);
        assert!((md1.mean_wait() - 2.0).abs() < 1e-12);
        assert!((md1.mean_response() - 3.0).abs() < 1e-12);
        assert!((md1.mean_queue_length() - 1.6).abs() < 1e-12);
        assert!(md1.service_scv().abs() < 1e-12);
        // M/M/1 through P-K equals Erlang C with one server: Wq = ρ/(μ−λ) = 0.8/0.2 = 4 s.
        let mm1 = MG1::exponential(0.8, 1.0);
        assert!((mm1.mean_wait() - 4.0).abs() < 1e-12);
        let erlang = MMc {
            lambda: 0.8,
            mu: 1.0,
            c: 1,
        };
        assert!((mm1.mean_wait() - erlang.mean_wait()).abs() < 1e-12);
        assert!((mm1.service_scv() - 1.0).abs() < 1e-12);
        // Log-normal with median 1 s and p99 e^Z99 s: σ = 1, E[S] = e^0.5 = 1.648721,
        // E[S²] = e² = 7.389056; λ = 0.5/s: ρ = 0.824361, Wq = 0.5·7.389056/(2·0.175639)
        // = 10.517369 s.
        let ln = MG1::lognormal(0.5, 1.0, Z99.exp());
        assert!((ln.mean_service - 1.648_721).abs() < 1e-6);
        assert!((ln.second_moment - 7.389_056).abs() < 1e-6);
        assert!((ln.rho() - 0.824_361).abs() < 1e-6);
        assert!(
            (ln.mean_wait() - 10.517_369).abs() < 1e-5,
            "{}",
            ln.mean_wait()
        );
        assert!((ln.service_scv() - (1.0_f64.exp() - 1.0)).abs() < 1e-9);
    }

    #[test]
    fn matches_the_peer_formula() {
        // benches/peers/erlangc.py, c = 10: P(wait) = 0.409180, Wq = 1.6367 ms, p99(W) = 14.8463 ms.
        let q = MMc {
            lambda: 1000.0,
            mu: 125.0,
            c: 10,
        };
        assert!((q.rho() - 0.8).abs() < 1e-12);
        assert!((q.p_wait() - 0.409_180).abs() < 1e-5, "{}", q.p_wait());
        assert!(
            (q.mean_wait() * 1e3 - 1.6367).abs() < 1e-3,
            "{}",
            q.mean_wait()
        );
        assert!((q.wait_quantile(0.99) * 1e3 - 14.8463).abs() < 1e-3);
        let p99 = q.response_quantile(0.99);
        assert!((q.response_tail(p99) - 0.01).abs() < 1e-9);
        assert!((q.mean_response() - (q.mean_wait() + 0.008)).abs() < 1e-15);
    }

    #[test]
    fn che_by_hand() {
        // Uniform popularity: LRU's hit ratio is exactly C/N, and Che's approximation gives it
        // too: N·(1 − e^(−T/N)) = C, so the hit ratio 1 − e^(−T/N) = C/N.
        let rates = vec![1.0 / 1000.0; 1000];
        let che = CheLru::new(&rates, 100.0);
        assert!((che.hit_ratio(&rates) - 0.1).abs() < 1e-12);
        let t = -1000.0 * (1.0_f64 - 0.1).ln();
        assert!((che.characteristic_time - t).abs() < 1e-9 * t);
        // Everything fits: every hit ratio is 1.
        let fits = CheLru::new(&rates, 1000.0);
        assert!(fits.characteristic_time.is_infinite());
        assert_eq!(fits.hit_ratio(&rates), 1.0);
        // A scan at rate s takes s·T places: with half the requests scanning, the uniform
        // items solve 1000·(1 − e^(−T/2000)) + T/2 = 100.
        let half: Vec<f64> = rates.iter().map(|r| r / 2.0).collect();
        let scan = CheLru::with_scan(&half, 100.0, 0.5);
        let t = scan.characteristic_time;
        let occupied = 1000.0 * -(-t / 2000.0).exp_m1() + 0.5 * t;
        assert!((occupied - 100.0).abs() < 1e-9, "{occupied}");
        // About half the cache holds scanned items, so the others hit about half as often.
        let items = scan.hit_ratio(&half);
        assert!((0.045..0.05).contains(&items), "{items}");
        // Zipf popularity sums to 1 and falls as 1/i^alpha.
        let zipf = zipf_popularity(100, 0.8);
        assert!((zipf.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((zipf[0] / zipf[9] - 10f64.powf(0.8)).abs() < 1e-9);
    }
}

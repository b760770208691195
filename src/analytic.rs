//! Closed-form queueing results used to validate the simulator (Erlang C for M/M/c).
//!
//! Pure math, no dependencies: the benchmark and the fidelity tests compare simulated waiting
//! and response times with these.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_peer_formula() {
        // ../shared/peers/erlangc.py, c = 10: P(wait) = 0.409180, Wq = 1.6367 ms, p99(W) = 14.8463 ms.
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
}

//! How busy the machine was with other work while `simulate bench` ran, read from `/proc`, so
//! that a figure measured on a shared or loaded machine says so beside it.
//!
//! A bench's ratios (against SimPy, against the minimal loop, between tenant counts) move with
//! the machine's load: on the shared VM of this project's history, a loaded host lowered SimPy's
//! speed more than ours and lifted the hot-tenant-full ratio from about 73x on a quiet host to
//! about 90x. The bench cannot make the machine quiet, but it can measure how much CPU time
//! went to processes other than itself and its children, and how much the hypervisor took
//! (steal), and print that with the figures.

use std::fs;

/// Share of the machine's CPU time that other processes (or the hypervisor) may take before
/// the bench warns that its figures are likely off: a few percent is background noise.
const QUIET_OTHERS: f64 = 0.05;
/// The same for steal, the time the hypervisor gave this VM's CPUs to other guests.
const QUIET_STEAL: f64 = 0.02;

/// Cumulative CPU time counters, in clock ticks, at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CpuSample {
    /// Every CPU's time, all states (user through steal).
    machine_total: u64,
    /// Every CPU's time not idle and not waiting for I/O (steal included).
    machine_busy: u64,
    /// Time the hypervisor ran other guests on this VM's CPUs.
    steal: u64,
    /// This process's CPU time and that of its children it has waited for.
    own: u64,
    /// CPUs the machine counts (`cpuN` lines).
    cpus: usize,
}

/// How the machine's CPU time was spent between two samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct HostLoad {
    /// Share of all CPUs' time taken by processes other than this one and its children.
    pub others: f64,
    /// Share of all CPUs' time taken by the hypervisor (steal).
    pub steal: f64,
    /// CPUs the machine has.
    pub cpus: usize,
}

impl HostLoad {
    /// Whether other work took so little that the figures are this program's own.
    pub fn is_quiet(&self) -> bool {
        self.others <= QUIET_OTHERS && self.steal <= QUIET_STEAL
    }
}

/// The counters now, or `None` where `/proc` cannot be read (not Linux, a sandbox).
pub(super) fn sample() -> Option<CpuSample> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let own = fs::read_to_string("/proc/self/stat").ok()?;
    let (machine_total, machine_busy, steal) = parse_machine(&stat)?;
    Some(CpuSample {
        machine_total,
        machine_busy,
        steal,
        own: parse_own(&own)?,
        cpus: count_cpus(&stat),
    })
}

/// The load between `start` and `end`, or `None` if no CPU time passed (or a counter went
/// back, which `/proc` does not do, but a wrong answer is worse than none).
pub(super) fn between(start: CpuSample, end: CpuSample) -> Option<HostLoad> {
    let total = end.machine_total.checked_sub(start.machine_total)?;
    let busy = end.machine_busy.checked_sub(start.machine_busy)?;
    let steal = end.steal.checked_sub(start.steal)?;
    let own = end.own.checked_sub(start.own)?;
    if total == 0 {
        return None;
    }
    // Ours and steal are both inside `busy`; tick rounding can make them add up to a little
    // more, which is no other load at all.
    let others = busy.saturating_sub(steal).saturating_sub(own);
    Some(HostLoad {
        others: others as f64 / total as f64,
        steal: steal as f64 / total as f64,
        cpus: end.cpus,
    })
}

/// The line `simulate bench` prints about the machine's load.
pub(super) fn describe(load: HostLoad) -> String {
    let cpus = load.cpus;
    let verdict = if load.is_quiet() {
        "the figures above are this program's own".to_string()
    } else {
        format!(
            "above {:.0} % (others) or {:.0} % (steal) the figures above were measured beside \
             other work and may be off either way: rerun on a quiet machine",
            QUIET_OTHERS * 100.0,
            QUIET_STEAL * 100.0
        )
    };
    format!(
        "Machine during this bench (/proc/stat): other processes used {:.1} % of its {cpus} \
         CPUs' time, the hypervisor took {:.1} % (steal); {verdict}",
        load.others * 100.0,
        load.steal * 100.0,
    )
}

/// `(total, busy, steal)` from the first line of `/proc/stat`:
/// `cpu user nice system idle iowait irq softirq steal [guest guest_nice]`. Guest time is
/// already inside user time, so it is not added again.
fn parse_machine(stat: &str) -> Option<(u64, u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let &[_user, _nice, _system, idle, iowait, _irq, _softirq, steal] = fields.as_slice() else {
        return None;
    };
    // Checked, so that a counter file that is not what the kernel writes gives no figure
    // rather than a wrapped one.
    let total = fields.iter().try_fold(0u64, |sum, &f| sum.checked_add(f))?;
    Some((total, total - idle - iowait, steal))
}

/// The `cpuN` lines of `/proc/stat`: one per CPU.
fn count_cpus(stat: &str) -> usize {
    stat.lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count()
}

/// This process's user and system time plus its waited-for children's, from
/// `/proc/self/stat` (fields 14-17; the command name in field 2 may hold spaces and
/// parentheses, so fields are counted from its last `)`).
fn parse_own(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: field 3 (state) is index 0, so field 14 (utime) is index 11.
    fields
        .get(11..15)?
        .iter()
        .try_fold(0u64, |sum, f| sum.checked_add(f.parse::<u64>().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_line_gives_total_busy_and_steal() {
        let stat = "cpu  100 5 20 800 30 1 2 7 9 0\ncpu0 50 2 10 400 15 0 1 3 0 0\n";
        // total = 100+5+20+800+30+1+2+7 = 965; busy = 965 - 800 - 30 = 135.
        assert_eq!(parse_machine(stat), Some((965, 135, 7)));
        assert_eq!(parse_machine("cpu0 1 2 3 4 5 6 7 8\n"), None);
        assert_eq!(parse_machine("cpu  1 2 3\n"), None);
        assert_eq!(parse_machine("cpu  1 2 x 4 5 6 7 8\n"), None);
        let wrapping = format!("cpu  {} 1 0 0 0 0 0 0\n", u64::MAX);
        assert_eq!(parse_machine(&wrapping), None);
        assert_eq!(count_cpus(stat), 1);
        assert_eq!(count_cpus("cpu  1\ncpu0 1\ncpu1 1\ncpufreq 3\nintr 5\n"), 2);
    }

    #[test]
    fn own_time_is_counted_after_the_last_parenthesis_of_the_name() {
        // A name with a space and a parenthesis; utime 11, stime 12, cutime 13, cstime 14.
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 11 12 13 14 20 0 1 0 5";
        assert_eq!(parse_own(stat), Some(11 + 12 + 13 + 14));
        assert_eq!(parse_own("42 (x) S 1 2"), None);
        assert_eq!(parse_own("no name at all"), None);
    }

    #[test]
    fn others_are_the_busy_time_neither_ours_nor_stolen() {
        let start = CpuSample {
            machine_total: 1_000,
            machine_busy: 100,
            steal: 10,
            own: 50,
            cpus: 2,
        };
        let end = CpuSample {
            machine_total: 2_000,
            machine_busy: 700,
            steal: 60,
            own: 450,
            cpus: 2,
        };
        // 1,000 ticks passed: 600 busy, of which 50 stolen and 400 ours: 150 others.
        let load = between(start, end).expect("time passed");
        assert!((load.others - 0.15).abs() < 1e-12);
        assert!((load.steal - 0.05).abs() < 1e-12);
        assert!(!load.is_quiet());
        assert!(describe(load).contains("15.0 % of its 2 CPUs' time"));
        assert!(describe(load).contains("may be off"));
    }

    #[test]
    fn a_machine_running_only_the_bench_is_quiet() {
        let start = CpuSample {
            machine_total: 0,
            machine_busy: 0,
            steal: 0,
            own: 0,
            cpus: 2,
        };
        // Rounding of ticks can make ours exceed the machine's busy time by a tick.
        let end = CpuSample {
            machine_total: 2_000,
            machine_busy: 1_000,
            steal: 0,
            own: 1_001,
            cpus: 2,
        };
        let load = between(start, end).expect("time passed");
        assert_eq!(load.others, 0.0);
        assert!(load.is_quiet());
        assert!(describe(load).contains("this program's own"));
        assert_eq!(between(start, start), None, "no time passed");
        assert_eq!(between(end, start), None, "counters went back");
    }

    #[test]
    fn this_machine_can_be_sampled_where_proc_exists() {
        if std::path::Path::new("/proc/stat").exists() {
            let first = sample().expect("/proc/stat and /proc/self/stat parse");
            let busy_work: u64 = (0..2_000_000u64).map(|i| i.wrapping_mul(i) % 7).sum();
            std::hint::black_box(busy_work);
            let second = sample().expect("still parses");
            assert!(second.machine_total >= first.machine_total);
            assert!(second.own >= first.own);
            assert!(second.cpus >= 1);
        }
    }
}

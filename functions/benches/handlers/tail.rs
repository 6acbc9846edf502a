//! Percentiles of per-call durations. Criterion reports means and medians of
//! batches; the target (p99 under 1 ms) is about single calls, so every call
//! is timed on its own and the percentiles are read from the sorted list.

use std::time::Duration;

/// The percentiles of one run of timed calls.
#[derive(Clone, Copy, Debug)]
pub struct Tail {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Tail {
    /// Nearest-rank percentiles; `None` for no calls.
    pub fn of(mut durations: Vec<Duration>) -> Option<Tail> {
        durations.sort_unstable();
        let max = *durations.last()?;
        let rank = |percent: usize| durations[(durations.len() * percent).div_ceil(100).max(1) - 1];
        Some(Tail { p50: rank(50), p90: rank(90), p99: rank(99), max })
    }
}

/// The median of each percentile over several runs: one slow run (another
/// build on the shared cores) moves it less than it moves a single run.
pub fn median_of(runs: &[Tail]) -> Option<Tail> {
    let median = |pick: fn(&Tail) -> Duration| {
        let mut values: Vec<Duration> = runs.iter().map(pick).collect();
        values.sort_unstable();
        values.get(values.len() / 2).copied()
    };
    Some(Tail { p50: median(|t| t.p50)?, p90: median(|t| t.p90)?, p99: median(|t| t.p99)?, max: median(|t| t.max)? })
}

/// Microseconds with one decimal, for the report.
pub fn micros(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1e6)
}

//! What a handler costs inside its process, I/O excluded: every command
//! handler (and a read through `queries`) invoked as the Lambda runtime does
//! it (the API Gateway JSON decoded, `registry::invoke_http`, the answer
//! encoded) on the embedded adapters over a temporary SQLite database, with
//! the card processor an instant stub (`processor`). No network and no disk;
//! no log subscriber either, so spans cost what an idle subscriber costs.
//! Every call is on an aggregate of its own (see `scenarios`) and must get
//! the answer a user would (201/200).
//!
//! Two passes:
//! - criterion: mean and median per call, from batches;
//! - per call: each call timed on its own, `HANDLER_TAIL_CALLS` (10,000)
//!   calls after 1,000 warm-up calls, `HANDLER_TAIL_RUNS` (3) times; prints
//!   the median over runs of p50, p90, p99 and max against the 1 ms target,
//!   in wall-clock time and in the thread's CPU time (on a shared machine
//!   the wall-clock tail is mostly other processes holding the core).
//!
//! `cargo bench -p functions --no-default-features --bench handlers [-- <filter>]`
//! (`scripts/bench handlers`); results and
//! the machine they ran on: BENCHMARKS.md at the workspace root.

#[path = "../../tests/handlers/support/mod.rs"]
mod support;

mod processor;
mod scenarios;
mod tail;

use criterion::{Criterion, SamplingMode};
use functions::http::{Request, Response};
use functions::registry::{self, Handler, HttpHandler};
use processor::InstantProcessor;
use scenarios::{SCENARIOS, Scenario};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::World;
use tail::{Tail, median_of, micros};
use tokio::runtime::Runtime;

/// Fresh aggregates are prepared in rounds of at most this many, each on a
/// new world, so the preparation's own bookkeeping (the recording bus keeps
/// every entry) stays small however many calls are timed.
const ROUND: usize = 1_000;
const WARM_UP_CALLS: usize = 1_000;
const TARGET: Duration = Duration::from_millis(1);

fn main() {
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let chosen: Vec<&Scenario> =
        SCENARIOS.iter().filter(|s| settings.filter.as_ref().is_none_or(|f| s.label.contains(f.as_str()))).collect();

    let mut criterion = Criterion::default().configure_from_args();
    {
        let mut group = criterion.benchmark_group("handler");
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(20)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        for scenario in &chosen {
            group.bench_function(scenario.label, |b| {
                b.iter_custom(|calls| time_calls(&runtime, scenario, calls as usize).iter().map(|call| call.wall).sum())
            });
        }
        group.finish();
    }
    criterion.final_summary();
    if settings.list {
        return;
    }

    println!(
        "\nPer call, {} runs of {} calls each after {} warm-up calls; µs, median over runs. CPU: the thread's own CPU time, \
         which leaves out the time other processes held the core.",
        settings.runs, settings.calls, settings.warm_up
    );
    println!("| handler | p50 | p90 | p99 | worst run's p99 | max | CPU p50 | CPU p99 | p99 < 1 ms (wall, CPU) |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    let mut over = vec![];
    for scenario in &chosen {
        time_calls(&runtime, scenario, settings.warm_up);
        let runs: Vec<Vec<Call>> = (0..settings.runs).map(|_| time_calls(&runtime, scenario, settings.calls)).collect();
        let tails = |time: fn(&Call) -> Duration| -> Vec<Tail> {
            runs.iter().filter_map(|calls| Tail::of(calls.iter().map(time).collect())).collect()
        };
        let (wall, cpu) = (tails(|call| call.wall), tails(|call| call.cpu));
        let (Some(median), Some(cpu_median), Some(worst)) = (median_of(&wall), median_of(&cpu), wall.iter().map(|run| run.p99).max())
        else {
            continue;
        };
        let within = median.p99 < TARGET;
        if !within {
            over.push(scenario.label);
        }
        let verdict = |met: bool| if met { "yes" } else { "**no**" };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {}, {} |",
            scenario.label,
            micros(median.p50),
            micros(median.p90),
            micros(median.p99),
            micros(worst),
            micros(median.max),
            micros(cpu_median.p50),
            micros(cpu_median.p99),
            verdict(within),
            verdict(cpu_median.p99 < TARGET)
        );
    }
    if over.is_empty() {
        println!("every handler's median wall-clock p99 is under {TARGET:?}");
    } else {
        println!("wall-clock p99 over the {TARGET:?} target: {}", over.join(", "));
    }
}

struct Settings {
    /// Criterion's filter (its first free argument), applied to the tail pass too.
    filter: Option<String>,
    calls: usize,
    runs: usize,
    warm_up: usize,
    /// `--list`: name the benchmarks, time nothing.
    list: bool,
}

impl Settings {
    fn from_env() -> Settings {
        let args: Vec<String> = std::env::args().skip(1).collect();
        // As criterion decides: without `--bench` (`cargo test --benches`) or
        // with `--test`, every benchmark runs once, briefly.
        let flag = |name: &str| args.iter().any(|arg| arg == name);
        let quick = flag("--test") || !flag("--bench");
        let filter = args.iter().find(|arg| !arg.starts_with('-')).cloned();
        let number = |name: &str, default: usize| std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default);
        let list = flag("--list");
        if quick {
            Settings { filter, calls: 20, runs: 1, warm_up: 5, list }
        } else {
            let (calls, runs) = (number("HANDLER_TAIL_CALLS", 10_000), number("HANDLER_TAIL_RUNS", 3));
            Settings { filter, calls, runs, warm_up: WARM_UP_CALLS, list }
        }
    }
}

/// One timed call: wall-clock time, and the CPU time of the calling thread
/// (everything runs on it: a current-thread runtime, synchronous SQLite).
struct Call {
    wall: Duration,
    cpu: Duration,
}

/// The calling thread's CPU time so far.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec for the call to write; this clock
    // exists on every Linux, and a failure leaves it zero (checked below).
    let done = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(done, 0, "CLOCK_THREAD_CPUTIME_ID is readable");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Times `calls` calls of the scenario, each on its own fresh aggregate
/// prepared untimed beforehand; panics on any answer but the expected one.
fn time_calls(runtime: &Runtime, scenario: &Scenario, calls: usize) -> Vec<Call> {
    let Some(Handler::Http(handler)) = registry::handler(scenario.function) else { panic!("{} is no HTTP function", scenario.function) };
    let mut timed = Vec::with_capacity(calls);
    while timed.len() < calls {
        let mut world = World::new();
        world.deps.payments = Arc::new(InstantProcessor);
        let payloads = runtime.block_on(scenario.prepare(&world, ROUND.min(calls - timed.len())));
        for payload in payloads {
            let (start, cpu_start) = (Instant::now(), thread_cpu_time());
            let answer = runtime.block_on(invoke(scenario.function, handler, &world, &payload));
            let (cpu, wall) = (thread_cpu_time() - cpu_start, start.elapsed());
            timed.push(Call { wall, cpu });
            let (status, body) = answer;
            assert_eq!(status, scenario.status, "{} answered {status}: {}", scenario.label, String::from_utf8_lossy(&body));
        }
    }
    timed
}

/// One invocation as the Lambda runtime makes it: the event decoded from
/// its JSON, the handler run, the answer encoded to JSON (returned, to
/// show what went wrong when the status is not the expected one).
async fn invoke(function: &str, handler: HttpHandler, world: &World, payload: &[u8]) -> (i64, Vec<u8>) {
    let request: Request = serde_json::from_slice(payload).expect("an API Gateway request");
    let response: Response = registry::invoke_http(function, handler, &world.deps, request).await;
    let encoded = serde_json::to_vec(&response).expect("a response encodes");
    (response.status_code, encoded)
}

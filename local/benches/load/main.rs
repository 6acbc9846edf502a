//! The local runner under load, over HTTP from another process's point of
//! view: the runner, as users build it (`--profile runner`), runs as a child
//! process with fresh data for each run, and this binary plays the users.
//!
//! `cargo build --profile runner -p local && cargo bench -p local --bench load -- <scenario>...`
//!
//! - `throughput`: full order lifecycles per second with N concurrent
//!   clients, p50/p99 of each command and of a lifecycle until the status
//!   view says delivered, and the runner's peak RSS. Knobs: `LOAD_CLIENTS`
//!   (8,32,64), `LOAD_RUNS` (3), `LOAD_WARM_UP_SECONDS` (3), `LOAD_SECONDS`
//!   (20), `LOAD_POLL_MS` (5).
//! - `breaker`: orders placed against a processor taking 400-620 ms per
//!   charge, 100 clients for 60 s: the share answered within 1 s and the
//!   charges without an order. Knobs: `BREAKER_CLIENTS` (100),
//!   `BREAKER_SECONDS` (60), `BREAKER_RUNS` (3), `BREAKER_LATENCY_MS` (400-620).
//!
//! `LOAD_RUNNER` names another runner binary. Results and the machine they
//! ran on: BENCHMARKS.md at the workspace root.

mod breaker;
mod client;
mod runner;
mod stats;
mod throughput;

const SCENARIOS: &str = "throughput, breaker";

/// The load generator shares the two cores with the runner: every cycle it
/// saves is the runner's. glibc's malloc was a sixth of its CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // `cargo bench` adds `--bench`; the scenarios are the other arguments.
    let scenarios: Vec<String> = std::env::args().skip(1).filter(|arg| !arg.starts_with("--")).collect();
    if scenarios.is_empty() {
        anyhow::bail!("name a scenario: {SCENARIOS}");
    }
    // Two workers, like the runner: the machine has two cores for both.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    for scenario in scenarios {
        match scenario.as_str() {
            "throughput" => runtime.block_on(throughput::run(throughput::Settings::from_env()?))?,
            "breaker" => runtime.block_on(breaker::run(breaker::Settings::from_env()?))?,
            other => anyhow::bail!("no scenario {other}: {SCENARIOS}"),
        }
    }
    Ok(())
}

//! Full order lifecycles over HTTP: N clients, each a customer, a store (with
//! its owner) and a rider of its own, each running lifecycles back to back:
//! place, accept, start and finish cooking, pick (once the delivery is open
//! and the food ready, which reach the delivery through the bus), complete,
//! then read the status view until it says "delivered".

use crate::client::{Answer, Api, order_body};
use crate::runner::{self, MachineCpu, Runner, cpu_of};
use crate::stats::{median, ms, percentile, show_ms};
use anyhow::{Context, bail};
use std::time::{Duration, Instant};

/// What each kind of request is reported as.
const ROWS: [&str; 8] = [
    "place order",
    "accept",
    "start cooking",
    "finish cooking",
    "pick",
    "complete",
    "pick, not ready yet (retried)",
    "status view (polled)",
];
const PLACE: usize = 0;
const KITCHEN: [(usize, &str); 3] = [(1, "accept"), (2, "start-cooking"), (3, "finish-cooking")];
const PICK: usize = 4;
const COMPLETE: usize = 5;
const PICK_EARLY: usize = 6;
const STATUS: usize = 7;
/// The commands the p99 target is about (not the polls).
const COMMANDS: std::ops::Range<usize> = 0..6;

const TARGET_RATE: f64 = 500.0;
const TARGET_P99: Duration = Duration::from_millis(20);
/// A lifecycle that takes longer than this is counted as failed.
const GIVE_UP: Duration = Duration::from_secs(30);

pub struct Settings {
    pub clients: Vec<usize>,
    pub runs: usize,
    pub warm_up: Duration,
    pub measure: Duration,
    /// Pause between two reads of something the bus has not brought yet.
    pub poll: Duration,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Settings> {
        let number = |name: &str, default: u64| -> anyhow::Result<u64> {
            std::env::var(name).map_or(Ok(default), |v| v.trim().parse().with_context(|| format!("{name}={v} is not a number")))
        };
        let clients = std::env::var("LOAD_CLIENTS").unwrap_or_else(|_| "8,32,64".into());
        Ok(Settings {
            clients: clients
                .split(',')
                .map(|n| n.trim().parse().with_context(|| format!("LOAD_CLIENTS={clients} is not a list of counts")))
                .collect::<anyhow::Result<_>>()?,
            runs: number("LOAD_RUNS", 3)?.max(1) as usize,
            warm_up: Duration::from_secs(number("LOAD_WARM_UP_SECONDS", 3)?),
            measure: Duration::from_secs(number("LOAD_SECONDS", 20)?.max(1)),
            poll: Duration::from_millis(number("LOAD_POLL_MS", 5)?),
        })
    }
}

/// One client's people, store and record.
struct Client {
    api: Api,
    customer: String,
    owner: String,
    rider: String,
    store: String,
    samples: Vec<(usize, Instant, Duration)>,
    /// (started, delivered) of each finished lifecycle.
    lifecycles: Vec<(Instant, Instant)>,
    errors: Vec<String>,
}

impl Client {
    fn record(&mut self, row: usize, answer: &Answer) {
        self.samples.push((row, answer.sent, answer.took));
    }

    async fn command(&mut self, row: usize, path: &str, token: &str, expected: u16) -> anyhow::Result<Answer> {
        let answer = self.api.post(path, token, None).await?;
        self.record(row, &answer);
        if answer.status != expected {
            bail!("{}: {} {}", ROWS[row], answer.status, answer.body);
        }
        Ok(answer)
    }

    async fn lifecycle(&mut self, poll: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        let placed = self.api.post("/orders", &self.customer, Some(&order_body(&self.store))).await?;
        self.record(PLACE, &placed);
        let order = match (placed.status, placed.text("/orderId")) {
            (201, Some(order)) => order.to_owned(),
            _ => bail!("place order: {} {}", placed.status, placed.body),
        };
        let (owner, rider, customer) = (self.owner.clone(), self.rider.clone(), self.customer.clone());
        for (row, step) in KITCHEN {
            self.command(row, &format!("/stores/{}/orders/{order}/{step}", self.store), &owner, 200).await?;
        }
        // The delivery opens on CookingStarted and hears of the food on
        // CookingFinished, both through the bus: until then a pick is refused.
        loop {
            let answer = self.api.post(&format!("/deliveries/{order}/pick"), &rider, None).await?;
            match answer.status {
                200 => {
                    self.record(PICK, &answer);
                    break;
                }
                404 | 409 if started.elapsed() < GIVE_UP => {
                    self.record(PICK_EARLY, &answer);
                    tokio::time::sleep(poll).await;
                }
                _ => bail!("pick: {} {}", answer.status, answer.body),
            }
        }
        self.command(COMPLETE, &format!("/deliveries/{order}/complete"), &rider, 200).await?;
        loop {
            let answer = self.api.get(&format!("/orders/{order}"), &customer).await?;
            self.record(STATUS, &answer);
            if answer.status == 200 && answer.text("/status") == Some("delivered") {
                break;
            }
            if !matches!(answer.status, 200 | 404) || started.elapsed() > GIVE_UP {
                bail!("status view: {} {}", answer.status, answer.body);
            }
            tokio::time::sleep(poll).await;
        }
        self.lifecycles.push((started, Instant::now()));
        Ok(())
    }

    /// Lifecycles back to back until `until`; the one in flight then finishes.
    async fn run(mut self, until: Instant, poll: Duration) -> Client {
        while Instant::now() < until && self.errors.len() < 20 {
            if let Err(error) = self.lifecycle(poll).await {
                self.errors.push(format!("{error:#}"));
            }
        }
        self
    }
}

/// The figures of one run.
struct Run {
    lifecycles_per_second: f64,
    requests_per_second: f64,
    /// Per row: (count, p50, p99) in ms.
    rows: Vec<(usize, f64, f64)>,
    lifecycle: (f64, f64),
    early_picks_per_lifecycle: f64,
    polls_per_lifecycle: f64,
    peak_rss_mib: f64,
    /// CPU time of the runner per delivered lifecycle, and the cores the
    /// runner and this load generator kept busy during the window.
    runner_cpu_ms_per_lifecycle: f64,
    runner_cores: f64,
    generator_cores: f64,
    /// The whole machine over the window: shares of all cores' time busy
    /// (softirq included), in softirq, taken by the hypervisor, idle.
    machine: (f64, f64, f64, f64),
    errors: Vec<String>,
}

async fn run_once(binary: &std::path::Path, clients: usize, settings: &Settings) -> anyhow::Result<Run> {
    let runner = Runner::start(binary, &[]).await?;
    let api = Api::new(&runner.url, GIVE_UP)?;
    let owner = api.token("owner", "owner").await?;
    let mut team = Vec::with_capacity(clients);
    for i in 0..clients {
        team.push(Client {
            api: api.clone(),
            customer: api.token(&format!("customer-{i}"), "customer").await?,
            rider: api.token(&format!("rider-{i}"), "rider").await?,
            store: api.register_store(&owner, &format!("Kitchen {i}")).await?,
            owner: owner.clone(),
            samples: Vec::new(),
            lifecycles: Vec::new(),
            errors: Vec::new(),
        });
    }
    let from = Instant::now() + settings.warm_up;
    let until = from + settings.measure;
    let tasks: Vec<_> = team.into_iter().map(|client| tokio::spawn(client.run(until, settings.poll))).collect();
    // CPU used in the window: the machine is shared, so CPU time per
    // lifecycle says more about the runner than the rate alone.
    let stat = runner.stat();
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(from.into()).await;
        let before = (cpu_of(&stat)?, cpu_of("/proc/self/stat")?, MachineCpu::now()?);
        tokio::time::sleep_until(until.into()).await;
        Ok::<_, anyhow::Error>((
            cpu_of(&stat)? - before.0,
            cpu_of("/proc/self/stat")? - before.1,
            MachineCpu::now()?.shares_since(&before.2),
        ))
    });
    let mut done = Vec::with_capacity(tasks.len());
    for task in tasks {
        done.push(task.await?);
    }
    let (runner_cpu, generator_cpu, machine) = cpu.await??;
    let peak_rss_mib = runner.peak_rss_kib()? as f64 / 1024.0;
    runner.stop().await?;

    let seconds = settings.measure.as_secs_f64();
    let in_window = |at: Instant| at >= from && at < until;
    let delivered = done.iter().flat_map(|c| &c.lifecycles).filter(|(_, end)| in_window(*end)).count();
    let mut lifecycle: Vec<Duration> =
        done.iter().flat_map(|c| &c.lifecycles).filter(|(start, _)| in_window(*start)).map(|(start, end)| *end - *start).collect();
    let mut per_row: Vec<Vec<Duration>> = vec![Vec::new(); ROWS.len()];
    for (row, sent, took) in done.iter().flat_map(|c| &c.samples) {
        if in_window(*sent) {
            per_row[*row].push(*took);
        }
    }
    let requests: usize = per_row.iter().map(Vec::len).sum();
    let started = lifecycle.len().max(1) as f64;
    Ok(Run {
        lifecycles_per_second: delivered as f64 / seconds,
        requests_per_second: requests as f64 / seconds,
        early_picks_per_lifecycle: per_row[PICK_EARLY].len() as f64 / started,
        polls_per_lifecycle: per_row[STATUS].len() as f64 / started,
        rows: per_row
            .iter_mut()
            .map(|samples| {
                let count = samples.len();
                let p = |samples: &mut Vec<Duration>, q| percentile(samples, q).map_or(f64::NAN, ms);
                (count, p(samples, 50.0), p(samples, 99.0))
            })
            .collect(),
        lifecycle: (percentile(&mut lifecycle, 50.0).map_or(f64::NAN, ms), percentile(&mut lifecycle, 99.0).map_or(f64::NAN, ms)),
        peak_rss_mib,
        runner_cpu_ms_per_lifecycle: ms(runner_cpu) / delivered.max(1) as f64,
        runner_cores: runner_cpu.as_secs_f64() / seconds,
        generator_cores: generator_cpu.as_secs_f64() / seconds,
        machine,
        errors: done.into_iter().flat_map(|c| c.errors).collect(),
    })
}

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let binary = runner::binary()?;
    println!(
        "runner: {}, fresh data per run; {} run(s) per client count, {} s warm-up then {} s measured; \
         polls every {} ms",
        binary.display(),
        settings.runs,
        settings.warm_up.as_secs(),
        settings.measure.as_secs(),
        settings.poll.as_millis()
    );
    // The target holds for a number of clients when both of its halves do
    // at that number: the rate a client count reaches is only worth what
    // its latencies are.
    let mut met_at = Vec::new();
    for &clients in &settings.clients {
        println!("\n## {clients} concurrent clients\n");
        let mut runs = Vec::new();
        for index in 1..=settings.runs {
            let run = run_once(&binary, clients, &settings).await?;
            println!(
                "run {index}: {:.0} lifecycles/s, {:.0} requests/s, lifecycle p50 {} ms p99 {} ms, runner {:.1} CPU-ms per lifecycle \
                 ({:.2} cores busy; load generator {:.2}; machine {:.0} % busy, {:.0} % softirq, {:.0} % stolen, {:.0} % idle), \
                 runner peak RSS {:.1} MiB, {} errors; load average {}",
                run.lifecycles_per_second,
                run.requests_per_second,
                show_ms(run.lifecycle.0),
                show_ms(run.lifecycle.1),
                run.runner_cpu_ms_per_lifecycle,
                run.runner_cores,
                run.generator_cores,
                100.0 * run.machine.0,
                100.0 * run.machine.1,
                100.0 * run.machine.2,
                100.0 * run.machine.3,
                run.peak_rss_mib,
                run.errors.len(),
                load_average()
            );
            for error in run.errors.iter().take(3) {
                println!("  error: {error}");
            }
            runs.push(run);
        }
        if report(clients, &runs) {
            met_at.push(clients);
        }
    }
    let target = format!("at least {TARGET_RATE} lifecycles/s with every command's p99 under {} ms", TARGET_P99.as_millis());
    match met_at.as_slice() {
        [] => println!("\nTARGET MISSED at every client count: {target}"),
        met => println!("\nTARGET MET at {met:?} clients: {target} (medians over the runs)"),
    }
    Ok(())
}

/// Prints the medians over runs; true if the target is met.
fn report(clients: usize, runs: &[Run]) -> bool {
    let of = |f: &dyn Fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let rate = of(&|r| r.lifecycles_per_second);
    println!("\nmedians over {} runs, {clients} clients:", runs.len());
    println!("- lifecycles/s: {rate:.0} (target >= {TARGET_RATE:.0}; runs: {})", list(runs, |r| r.lifecycles_per_second));
    println!("- requests/s (all kinds): {:.0}", of(&|r| r.requests_per_second));
    let cpu = of(&|r| r.runner_cpu_ms_per_lifecycle);
    println!(
        "- runner CPU per lifecycle: {cpu:.1} ms ({:.2} cores busy, load generator {:.2}); the most two free cores could carry: {:.0} lifecycles/s",
        of(&|r| r.runner_cores),
        of(&|r| r.generator_cores),
        2000.0 / cpu
    );
    println!(
        "- the machine (both cores): {:.0} % busy, of which {:.0} % softirq; {:.0} % taken by the hypervisor; {:.0} % idle",
        100.0 * of(&|r| r.machine.0),
        100.0 * of(&|r| r.machine.1),
        100.0 * of(&|r| r.machine.2),
        100.0 * of(&|r| r.machine.3)
    );
    println!(
        "- lifecycle, place until the status view says delivered: p50 {} ms, p99 {} ms",
        show_ms(of(&|r| r.lifecycle.0)),
        show_ms(of(&|r| r.lifecycle.1))
    );
    println!(
        "- per lifecycle: {:.1} early picks, {:.1} status polls",
        of(&|r| r.early_picks_per_lifecycle),
        of(&|r| r.polls_per_lifecycle)
    );
    println!(
        "- runner peak RSS (VmHWM): {:.1} MiB (max over runs {:.1} MiB)",
        of(&|r| r.peak_rss_mib),
        runs.iter().map(|r| r.peak_rss_mib).fold(0.0, f64::max)
    );
    println!("\n| request | per run | p50 ms | p99 ms | p99 < {} ms |", TARGET_P99.as_millis());
    println!("| --- | ---: | ---: | ---: | --- |");
    let mut worst_p99: f64 = 0.0;
    for (row, name) in ROWS.iter().enumerate() {
        let p99 = of(&|r| r.rows[row].2);
        let command = COMMANDS.contains(&row);
        if command {
            worst_p99 = worst_p99.max(p99);
        }
        let verdict = if !command {
            "(not a command)"
        } else if p99 < ms(TARGET_P99) {
            "yes"
        } else {
            "**no**"
        };
        println!("| {name} | {:.0} | {} | {} | {verdict} |", of(&|r| r.rows[row].0 as f64), show_ms(of(&|r| r.rows[row].1)), show_ms(p99));
    }
    let errors: usize = runs.iter().map(|r| r.errors.len()).sum();
    println!("\nerrors over all runs: {errors}");
    let met = rate >= TARGET_RATE && worst_p99 < ms(TARGET_P99) && errors == 0;
    println!("target at {clients} clients: {}", if met { "met" } else { "missed" });
    met
}

/// The machine's 1-minute load average: other work on the shared cores.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split_whitespace().next().map(str::to_owned)).unwrap_or_default()
}

fn list(runs: &[Run], figure: impl Fn(&Run) -> f64) -> String {
    runs.iter().map(|r| format!("{:.0}", figure(r))).collect::<Vec<_>>().join(", ")
}

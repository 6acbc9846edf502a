//! The circuit breaker under a slow processor: the simulated processor takes
//! 400-620 ms per charge, and C clients place orders back to back for S
//! seconds (as `siege -cC -tS` would). Reported: the share of requests
//! answered within 1 s (an order, or a fast 503 telling the customer to pay
//! again shortly), the answers by status, and after the run the processor's
//! ledger against the event store: a charge without an order must not be.

use crate::client::{Api, order_body};
use crate::runner::{self, Runner};
use crate::stats::{median, ms, percentile, show_ms};
use anyhow::Context;
use rusqlite::{Connection, OpenFlags};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const WITHIN: Duration = Duration::from_secs(1);

pub struct Settings {
    pub clients: usize,
    pub runs: usize,
    pub seconds: u64,
    pub latency: String,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Settings> {
        let number = |name: &str, default: u64| -> anyhow::Result<u64> {
            std::env::var(name).map_or(Ok(default), |v| v.trim().parse().with_context(|| format!("{name}={v} is not a number")))
        };
        Ok(Settings {
            clients: number("BREAKER_CLIENTS", 100)?.max(1) as usize,
            runs: number("BREAKER_RUNS", 3)?.max(1) as usize,
            seconds: number("BREAKER_SECONDS", 60)?.max(1),
            latency: std::env::var("BREAKER_LATENCY_MS").unwrap_or_else(|_| "400-620".into()),
        })
    }
}

/// The runner's settings compared: the defaults (breaker on, 3 s call
/// timeout), and a breaker that never opens with a timeout nobody reaches.
const VARIANTS: [(&str, &[&str]); 2] = [
    ("breaker on (defaults: 5 failures open it for 10 s, 3 s call timeout)", &[]),
    (
        "breaker off (1,000,000 failures to open, 60 s call timeout)",
        &["--payment-breaker-failures", "1000000", "--payment-timeout-ms", "60000"],
    ),
];

struct Run {
    requests: usize,
    within: usize,
    statuses: BTreeMap<u16, usize>,
    transport_errors: usize,
    p50: f64,
    p99: f64,
    max: f64,
    ledger: Ledger,
}

/// The processor's ledger against the event store, after the run.
#[derive(Debug, Default)]
struct Ledger {
    charges: i64,
    orders: i64,
    /// Charges whose order id has no order stream.
    without_order: i64,
    /// ... of which refunded (by compensation or reconciliation).
    without_order_refunded: i64,
}

fn ledger(database: &std::path::Path) -> anyhow::Result<Ledger> {
    let connection = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let count = |sql: &str| connection.query_row(sql, [], |row| row.get::<_, i64>(0));
    let orphans = "FROM simulated_charges c WHERE NOT EXISTS
                     (SELECT 1 FROM events e WHERE e.aggregate_type = 'Order' AND e.aggregate_id = c.order_id)";
    Ok(Ledger {
        charges: count("SELECT COUNT(*) FROM simulated_charges")?,
        orders: count("SELECT COUNT(DISTINCT aggregate_id) FROM events WHERE aggregate_type = 'Order'")?,
        without_order: count(&format!("SELECT COUNT(*) {orphans}"))?,
        without_order_refunded: count(&format!("SELECT COUNT(*) {orphans} AND c.refunded = 1"))?,
    })
}

async fn run_once(binary: &std::path::Path, settings: &Settings, variant: &[&str]) -> anyhow::Result<Run> {
    let mut args = vec!["--payment-latency-ms", settings.latency.as_str()];
    args.extend_from_slice(variant);
    let runner = Runner::start(binary, &args).await?;
    // Long enough to see how late an answer comes, not just that it is late.
    let api = Api::new(&runner.url, Duration::from_secs(60))?;
    let owner = api.token("owner", "owner").await?;
    let mut stores = Vec::new();
    for i in 0..settings.clients.div_ceil(10) {
        stores.push(api.register_store(&owner, &format!("Kitchen {i}")).await?);
    }
    let until = Instant::now() + Duration::from_secs(settings.seconds);
    let mut tasks = Vec::new();
    for i in 0..settings.clients {
        let (api, store) = (api.clone(), stores[i % stores.len()].clone());
        let customer = api.token(&format!("customer-{i}"), "customer").await?;
        tasks.push(tokio::spawn(async move {
            let body = order_body(&store);
            let mut answers = Vec::new();
            while Instant::now() < until {
                let sent = Instant::now();
                answers.push(match api.post("/orders", &customer, Some(&body)).await {
                    Ok(answer) => (Some(answer.status), answer.took),
                    Err(_) => (None, sent.elapsed()),
                });
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(task.await?);
    }
    let stopped = runner.stop().await?;
    let mut statuses = BTreeMap::new();
    for (status, _) in &answers {
        if let Some(status) = status {
            *statuses.entry(*status).or_insert(0) += 1;
        }
    }
    let within = answers.iter().filter(|(status, took)| matches!(status, Some(201 | 503)) && *took <= WITHIN).count();
    let mut times: Vec<Duration> = answers.iter().map(|(_, took)| *took).collect();
    Ok(Run {
        requests: answers.len(),
        within,
        transport_errors: answers.iter().filter(|(status, _)| status.is_none()).count(),
        statuses,
        p50: percentile(&mut times, 50.0).map_or(f64::NAN, ms),
        p99: percentile(&mut times, 99.0).map_or(f64::NAN, ms),
        max: times.last().copied().map_or(f64::NAN, ms),
        ledger: ledger(&stopped.database())?,
    })
}

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let binary = runner::binary()?;
    println!(
        "runner: {}, processor latency {} ms, {} clients placing orders back to back for {} s, {} run(s) each",
        binary.display(),
        settings.latency,
        settings.clients,
        settings.seconds,
        settings.runs
    );
    let mut orphans = 0;
    for (name, variant) in VARIANTS {
        println!("\n## {name}\n");
        let mut runs = Vec::new();
        for index in 1..=settings.runs {
            let run = run_once(&binary, &settings, variant).await?;
            println!(
                "run {index}: {} requests, {:.2}% answered within 1 s (201 or 503), statuses {:?}, {} without an answer, \
                 p50 {} ms p99 {} ms max {} ms; ledger {:?}",
                run.requests,
                100.0 * run.within as f64 / run.requests.max(1) as f64,
                run.statuses,
                run.transport_errors,
                show_ms(run.p50),
                show_ms(run.p99),
                show_ms(run.max),
                run.ledger
            );
            orphans += run.ledger.without_order - run.ledger.without_order_refunded;
            runs.push(run);
        }
        let of = |f: &dyn Fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
        let count = |status: u16| of(&|r| *r.statuses.get(&status).unwrap_or(&0) as f64);
        println!("\nmedians over {} runs:", runs.len());
        println!("- answered within 1 s (201 or 503): {:.2}%", of(&|r| 100.0 * r.within as f64 / r.requests.max(1) as f64));
        println!(
            "- requests {:.0} ({:.0}/s): 201 {:.0}, 503 {:.0}, other {:.0}, no answer {:.0}",
            of(&|r| r.requests as f64),
            of(&|r| r.requests as f64) / settings.seconds as f64,
            count(201),
            count(503),
            of(&|r| r.statuses.iter().filter(|(s, _)| !matches!(s, 201 | 503)).map(|(_, n)| *n).sum::<usize>() as f64),
            of(&|r| r.transport_errors as f64)
        );
        println!(
            "- answer time: p50 {} ms, p99 {} ms, max {} ms",
            show_ms(of(&|r| r.p50)),
            show_ms(of(&|r| r.p99)),
            show_ms(of(&|r| r.max))
        );
        println!(
            "- ledger (summed over runs): {} charges, {} orders, {} charges without an order ({} of them refunded)",
            runs.iter().map(|r| r.ledger.charges).sum::<i64>(),
            runs.iter().map(|r| r.ledger.orders).sum::<i64>(),
            runs.iter().map(|r| r.ledger.without_order).sum::<i64>(),
            runs.iter().map(|r| r.ledger.without_order_refunded).sum::<i64>()
        );
    }
    if orphans > 0 {
        anyhow::bail!("{orphans} charges without an order were not refunded (must be 0)");
    }
    Ok(())
}

//! `cargo run --profile runner -p local`: the whole food-delivery system on
//! http://127.0.0.1:3000, with its data in `.local-data/`.

use anyhow::Context;
use functions::embedded::{Latency, failure_rate};
use local::{Config, start};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: local [--port 3000] [--data-dir .local-data] [--template template.yaml]
             [--payment-latency-ms 400-620] [--payment-failure-rate 0.1]
             [--payment-timeout-ms 3000] [--payment-breaker-failures 5] [--payment-breaker-open-seconds 10]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    functions::lambda::init_tracing();
    let mut port = 3000u16;
    let mut data_dir = PathBuf::from(".local-data");
    let mut template = PathBuf::from("template.yaml");
    let mut config = Config::new(SocketAddr::from(([127, 0, 0, 1], port)), &data_dir, &template);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--port" => port = value()?.parse().context("--port takes a number")?,
            "--data-dir" => data_dir = value()?.into(),
            "--template" => template = value()?.into(),
            "--payment-latency-ms" => config.payments.latency = value()?.parse::<Latency>()?,
            "--payment-failure-rate" => config.payments.failure_rate = failure_rate(&value()?)?,
            "--payment-timeout-ms" => {
                config.breaker.call_timeout = Duration::from_millis(value()?.parse().context("--payment-timeout-ms takes milliseconds")?)
            }
            "--payment-breaker-failures" => {
                config.breaker.failures =
                    value()?.parse().ok().filter(|n| *n > 0).context("--payment-breaker-failures takes a count above 0")?
            }
            "--payment-breaker-open-seconds" => {
                config.breaker.open_for = Duration::from_secs(value()?.parse().context("--payment-breaker-open-seconds takes seconds")?)
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    if !template.exists() {
        // Run from anywhere in the repository.
        template = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"));
    }
    let running = start(Config { addr: SocketAddr::from(([127, 0, 0, 1], port)), data_dir: data_dir.clone(), template, ..config }).await?;
    println!("food-delivery is running on {} (data in {})", running.url(), data_dir.display());
    println!("get a token: curl -s -X POST {}/local/token -d '{{\"sub\":\"alice\",\"role\":\"customer\"}}'", running.url());
    stop_asked().await?;
    println!("stopping: finishing deliveries in flight");
    running.stop().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM (what `docker stop` and service managers send): either
/// stops cleanly, so the next start need not rebuild the views.
async fn stop_asked() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            asked = tokio::signal::ctrl_c() => asked,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
}

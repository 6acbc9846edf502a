//! Starting and stopping the whole system.

use crate::bus::LocalBus;
use crate::dispatcher::Dispatcher;
use crate::schedule::{Scheduled, rate};
use crate::server::{Api, router};
use crate::stream::StreamTailer;
use crate::template::Wiring;
use crate::token::TokenIssuer;
use anyhow::{Context, bail};
use async_trait::async_trait;
use domain::notification::Notification;
use functions::embedded::{Database, SimulatedProcessor, SimulatorSettings};
use functions::payments::{BreakerSettings, CircuitBreaker};
use functions::ports::{Notifier, NotifyError, Sent};
use functions::registry::{self, Handler};
use functions::{Deps, Settings};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const TOKEN_ISSUER: &str = "food-delivery-local";
pub const TOKEN_AUDIENCE: &str = "food-delivery";

#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub template: PathBuf,
    pub payments: SimulatorSettings,
    /// The circuit breaker around the simulated processor.
    pub breaker: BreakerSettings,
    /// Deliveries handled at once. Each spends most of its time waiting
    /// for its writes' group commit, as Lambda runs many at once.
    pub concurrency: usize,
    pub settings: Settings,
}

impl Config {
    pub fn new(addr: SocketAddr, data_dir: impl Into<PathBuf>, template: impl Into<PathBuf>) -> Config {
        Config {
            addr,
            data_dir: data_dir.into(),
            template: template.into(),
            payments: SimulatorSettings::default(),
            breaker: BreakerSettings::default(),
            concurrency: 64,
            settings: Settings::default(),
        }
    }
}

pub struct Running {
    pub addr: SocketAddr,
    pub database: Arc<Database>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops taking requests, lets work in flight finish, and returns once
    /// everything is on disk.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        if let Err(error) = self.database.close_views().await {
            tracing::error!(%error, "the views could not be written back; the next start rebuilds them");
        }
    }
}

/// The SNS stand-in: keeps each notification once and prints it.
struct PrintedNotifier(Arc<Database>);

#[async_trait]
impl Notifier for PrintedNotifier {
    async fn notify(&self, notification: &Notification) -> Result<Sent, NotifyError> {
        let sent = self.0.notify(notification).await?;
        if sent == Sent::New {
            println!("notification to {} about order {}: {}", notification.customer_id, notification.order_id, notification.message);
        }
        Ok(sent)
    }
}

/// The signing secret lives in the data directory, so tokens stay valid
/// across restarts of the same data.
fn secret(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join("token-secret");
    if let Ok(secret) = std::fs::read(&path) {
        if secret.len() >= 32 {
            return Ok(secret);
        }
    }
    let secret: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()].iter().flat_map(|u| u.into_bytes()).collect();
    std::fs::write(&path, &secret).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(secret)
}

/// Runs `work` on a thread of its own, in a runtime of its own: the stream
/// is the path every event takes to its consumers, and on the shared
/// workers it waited behind every request and delivery at each step.
fn own_thread(name: &str, work: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (done, finished) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name(name.chars().take(15).collect()).spawn(move || {
        runtime.block_on(work);
        let _ = done.send(());
    })?;
    Ok(tokio::spawn(async move {
        let _ = finished.await;
    }))
}

/// The views written back (`Database::open_with_view_write_back`): those a
/// rebuild restores from the events after a crash. Idempotency records are
/// no fold of events, and stay durable on every put.
fn rebuilt(view: &str) -> bool {
    functions::rebuild::VIEWS.contains(&view)
}

pub async fn start(config: Config) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let wiring = Wiring::load(&config.template)?;
    for function in &wiring.functions {
        if registry::handler(&function.name).is_none() {
            bail!("template.yaml declares {} but no such function exists", function.name);
        }
    }
    let database =
        Database::open_with_view_write_back(&config.data_dir.join("food-delivery.db"), rebuilt).context("cannot open the database")?;
    let bus = Arc::new(LocalBus::new(database.clone(), &wiring)?);
    let processor = Arc::new(SimulatedProcessor::with_ledger(database.clone(), config.payments.clone())?);
    let payments = Arc::new(CircuitBreaker::new(processor, config.breaker.clone()));
    let deps = Deps {
        events: database.clone(),
        views: database.clone(),
        notifier: Arc::new(PrintedNotifier(database.clone())),
        payments,
        bus: bus.clone(),
        settings: config.settings.clone(),
    };
    if database.views_need_rebuild() {
        // The last run stopped without closing the database: its last view
        // changes may be lost. The events are all there; fold them again.
        tracing::warn!("the last run did not stop cleanly: rebuilding the views from the events");
        let report = functions::rebuild::rebuild(&deps, &[]).await.context("cannot rebuild the views")?;
        tracing::info!(events = report.events, "views rebuilt");
    }
    let issuer = TokenIssuer::new(secret(&config.data_dir)?, TOKEN_ISSUER, TOKEN_AUDIENCE);
    let api = Arc::new(Api::new(deps.clone(), database.clone(), bus.clone(), issuer, &wiring).map_err(anyhow::Error::msg)?);
    let listener = tokio::net::TcpListener::bind(config.addr).await.with_context(|| format!("cannot listen on {}", config.addr))?;
    let addr = listener.local_addr()?;

    let (shutdown, watcher) = watch::channel(false);
    let mut tasks = Vec::new();
    for function in wiring.functions.iter().filter(|f| f.reads_stream) {
        let Some(Handler::Stream(handler)) = registry::handler(&function.name) else {
            bail!("{} reads the stream but is not a stream function", function.name);
        };
        let tailer = StreamTailer { database: database.clone(), deps: deps.clone(), function: function.name.clone(), handler };
        tasks.push(own_thread(&function.name, tailer.run(watcher.clone()))?);
    }
    for function in wiring.functions.iter().filter(|f| !f.schedules.is_empty()) {
        let Some(Handler::Scheduled(handler)) = registry::handler(&function.name) else {
            bail!("{} runs on a schedule but is not a scheduled function", function.name);
        };
        for expression in &function.schedules {
            let Some(every) = rate(expression) else {
                tracing::warn!(function = function.name, expression, "only rate(...) schedules run locally");
                continue;
            };
            let scheduled = Scheduled { deps: deps.clone(), function: function.name.clone(), handler, every };
            tasks.push(tokio::spawn(scheduled.run(watcher.clone())));
        }
    }
    let dispatcher = Dispatcher { database: database.clone(), deps: deps.clone(), queue: bus.queue(), concurrency: config.concurrency };
    tasks.push(tokio::spawn(dispatcher.run(watcher.clone())));
    let mut stopping = watcher.clone();
    tasks.push(tokio::spawn(async move {
        let serve = axum::serve(listener, router(api)).with_graceful_shutdown(async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        });
        if let Err(error) = serve.await {
            tracing::error!(%error, "the HTTP server stopped");
        }
    }));
    Ok(Running { addr, database, shutdown, tasks })
}

//! The Lambda bootstrap every binary shares: build the dependencies once per
//! cold start, then serve invocations with the named handler.

use crate::deps::{Deps, Settings};
use crate::embedded::{Database, SimulatedProcessor};
use crate::payments::{BreakerSettings, CircuitBreaker, ReconcileSettings};
use crate::ports::{BusEntry, BusError, EventBus, PaymentGateway, PutOutcome};
use crate::registry::{self, Handler};
use async_trait::async_trait;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::sync::Arc;
use std::time::Duration;

/// Structured JSON logs, one object per line, with the invocation's fields
/// (function, correlation id) on every line it logs (`logging::invocation`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    crate::logging::init(filter, std::io::stdout);
}

/// Serves the function named by `FUNCTION` (template.yaml sets it).
pub async fn run_from_env() -> Result<(), Error> {
    let name = std::env::var("FUNCTION").map_err(|_| "FUNCTION is not set: template.yaml names each function's handler")?;
    let function = registry::FUNCTIONS
        .iter()
        .copied()
        .find(|known| *known == name)
        .ok_or_else(|| format!("FUNCTION={name} names no function; known: {}", registry::FUNCTIONS.join(", ")))?;
    run(function).await
}

pub async fn run(function: &'static str) -> Result<(), Error> {
    init_tracing();
    let handler = registry::handler(function).ok_or_else(|| format!("no function named {function}"))?;
    let deps = Arc::new(deps_from_env().await?);
    match handler {
        Handler::Http(handler) => {
            lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
                let deps = deps.clone();
                async move { Ok::<_, Error>(registry::invoke_http(function, handler, &deps, event.payload).await) }
            }))
            .await
        }
        Handler::Event(handler) => {
            lambda_runtime::run(service_fn(move |event: LambdaEvent<registry::BusEvent>| {
                let deps = deps.clone();
                async move { registry::invoke_event(function, handler, &deps, &event.payload).await.map_err(Error::from) }
            }))
            .await
        }
        Handler::Scheduled(handler) => {
            lambda_runtime::run(service_fn(move |event: LambdaEvent<registry::ScheduleEvent>| {
                let deps = deps.clone();
                async move { registry::invoke_event(function, handler, &deps, &event.payload).await.map_err(Error::from) }
            }))
            .await
        }
        Handler::Stream(handler) => {
            lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
                let deps = deps.clone();
                async move { registry::invoke_stream(function, handler, &deps, event.payload).await.map_err(Error::from) }
            }))
            .await
        }
        Handler::Invoke(handler) => {
            lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
                let deps = deps.clone();
                async move { registry::invoke_operation(function, handler, &deps, event.payload).await.map_err(Error::from) }
            }))
            .await
        }
    }
}

/// The adapters the environment asks for: `FOOD_DELIVERY_ADAPTERS=aws` (what
/// template.yaml sets) for DynamoDB, EventBridge and SNS; `embedded` for a
/// SQLite file at `FOOD_DELIVERY_DB` (default `/tmp/food-delivery.db`), handy
/// with `sam local invoke --env-vars`. Payments go to the card processor at
/// `PAYMENT_PROCESSOR_URL`, or to the simulated processor when it is unset.
async fn deps_from_env() -> Result<Deps, Error> {
    let payments = payments_from_env()?;
    let settings = Settings { reconcile: reconcile_from_env()?, ..Settings::default() };
    match std::env::var("FOOD_DELIVERY_ADAPTERS").as_deref() {
        #[cfg(feature = "aws")]
        Ok("aws") => {
            let adapters = aws_adapters::environment::from_env().await?;
            Ok(Deps {
                events: Arc::new(adapters.events),
                views: Arc::new(adapters.views),
                notifier: Arc::new(adapters.notifier),
                payments,
                bus: Arc::new(adapters.bus),
                settings,
            })
        }
        Ok("embedded") | Err(_) => {
            let path = std::env::var("FOOD_DELIVERY_DB").unwrap_or_else(|_| "/tmp/food-delivery.db".into());
            let database = Database::open(std::path::Path::new(&path))?;
            Ok(Deps { settings, ..Deps::embedded(database, payments, Arc::new(LoggedBus)) })
        }
        Ok(other) => Err(format!("FOOD_DELIVERY_ADAPTERS={other} is not available in this build").into()),
    }
}

/// Under `sam local invoke` there is no bus to publish to: log the entries.
struct LoggedBus;

#[async_trait]
impl EventBus for LoggedBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<PutOutcome, BusError> {
        for entry in entries {
            tracing::info!(source = entry.source, detail_type = entry.detail_type, detail = entry.detail, "event published");
        }
        Ok(PutOutcome::default())
    }
}

/// The card processor behind a circuit breaker. The simulated processor's
/// ledger is in this container's memory: fine for `sam local invoke`, but on
/// AWS a refund from another container would not find the charge, so a
/// deployment sets `PAYMENT_PROCESSOR_URL`.
fn payments_from_env() -> Result<Arc<dyn PaymentGateway>, Error> {
    let breaker = breaker_from_env()?;
    let processor: Arc<dyn PaymentGateway> = match std::env::var("PAYMENT_PROCESSOR_URL").ok().filter(|url| !url.trim().is_empty()) {
        None => Arc::new(SimulatedProcessor::default()),
        #[cfg(feature = "aws")]
        Some(url) => {
            let api_key = std::env::var("PAYMENT_PROCESSOR_API_KEY").unwrap_or_default();
            // The adapter gives up a little after the breaker would, so the
            // breaker's timeout is the one a customer meets.
            let timeout = breaker.call_timeout + Duration::from_millis(500);
            Arc::new(aws_adapters::card_processor::HttpCardProcessor::new(&url, &api_key, timeout)?)
        }
        #[cfg(not(feature = "aws"))]
        Some(_) => return Err("PAYMENT_PROCESSOR_URL is set but this build has no HTTP card processor (feature aws)".into()),
    };
    Ok(Arc::new(CircuitBreaker::new(processor, breaker)))
}

/// `PAYMENT_TIMEOUT_MS`, `PAYMENT_BREAKER_FAILURES`, `PAYMENT_BREAKER_OPEN_SECONDS`;
/// each unset one keeps its default, and a malformed one stops the cold start.
fn breaker_from_env() -> Result<BreakerSettings, Error> {
    let defaults = BreakerSettings::default();
    Ok(BreakerSettings {
        failures: number("PAYMENT_BREAKER_FAILURES")?.map_or(defaults.failures, |n| u32::try_from(n).unwrap_or(u32::MAX)).max(1),
        open_for: number("PAYMENT_BREAKER_OPEN_SECONDS")?.map_or(defaults.open_for, Duration::from_secs),
        call_timeout: number("PAYMENT_TIMEOUT_MS")?.map_or(defaults.call_timeout, Duration::from_millis),
    })
}

/// `PAYMENT_RECONCILE_GRACE_SECONDS`, `PAYMENT_RECONCILE_WINDOW_MINUTES`.
fn reconcile_from_env() -> Result<ReconcileSettings, Error> {
    let defaults = ReconcileSettings::default();
    Ok(ReconcileSettings {
        grace: number("PAYMENT_RECONCILE_GRACE_SECONDS")?.map_or(defaults.grace, Duration::from_secs),
        window: number("PAYMENT_RECONCILE_WINDOW_MINUTES")?
            .map_or(defaults.window, |minutes| Duration::from_secs(minutes.saturating_mul(60))),
    })
}

fn number(name: &str) -> Result<Option<u64>, Error> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(text) => text.trim().parse().map(Some).map_err(|_| format!("{name}={text} is not a whole number").into()),
    }
}

//! The Lambda bootstrap every binary shares: build the dependencies once per
//! cold start, then serve invocations with the named handler.

use crate::deps::Deps;
use crate::embedded::{Database, SimulatedProcessor};
use crate::ports::{BusEntry, BusError, EventBus, PutOutcome};
use crate::registry::{self, Handler};
use async_trait::async_trait;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::sync::Arc;

/// Structured JSON logs, one object per line, with the invocation span's
/// fields (function, correlation id) on every line.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
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
            lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
                let deps = deps.clone();
                async move { registry::invoke_event(function, handler, &deps, event.payload).await.map_err(Error::from) }
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
    }
}

/// The adapters the environment asks for: `FOOD_DELIVERY_ADAPTERS=aws` (what
/// template.yaml sets) for DynamoDB, EventBridge and SNS; `embedded` for a
/// SQLite file at `FOOD_DELIVERY_DB` (default `/tmp/food-delivery.db`), handy
/// with `sam local invoke --env-vars`. Payments use the simulated processor
/// until a card processor's adapter is configured.
async fn deps_from_env() -> Result<Deps, Error> {
    let payments = Arc::new(SimulatedProcessor::default());
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
                settings: Default::default(),
            })
        }
        Ok("embedded") | Err(_) => {
            let path = std::env::var("FOOD_DELIVERY_DB").unwrap_or_else(|_| "/tmp/food-delivery.db".into());
            let database = Database::open(std::path::Path::new(&path))?;
            Ok(Deps::embedded(database, payments, Arc::new(LoggedBus)))
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

//! The functions a person invokes by hand (`aws lambda invoke`) to recover:
//! rebuild read models from the event store, and put dead-lettered events
//! back on the bus once their consumer works again. RELIABILITY.md has the
//! procedures.

use crate::deps::Deps;
use crate::rebuild;
use crate::registry::HandlerError;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// `{"views": ["order-status", ...]}`; no views (or `{}`) rebuilds them all.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RebuildRequest {
    #[serde(default)]
    views: Vec<String>,
}

pub async fn rebuild_views(deps: &Deps, payload: Value) -> Result<Value, HandlerError> {
    let request: RebuildRequest = payload_of(payload, r#"{"views": ["order-status", ...]}"#)?;
    let report = rebuild::rebuild(deps, &request.views).await?;
    answer(&report)
}

/// `{"maxMessages": 500}`: at most that many messages per invocation, so one
/// run stays well inside the function's timeout.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RedriveRequest {
    #[serde(default = "default_max_messages")]
    max_messages: usize,
}

impl Default for RedriveRequest {
    fn default() -> Self {
        RedriveRequest { max_messages: default_max_messages() }
    }
}

fn default_max_messages() -> usize {
    500
}

/// The queue the template sets on `redrive-dead-letters`.
pub const DEAD_LETTER_QUEUE_URL: &str = "DEAD_LETTER_QUEUE_URL";

pub async fn redrive_dead_letters(deps: &Deps, payload: Value) -> Result<Value, HandlerError> {
    let request: RedriveRequest = payload_of(payload, r#"{"maxMessages": 500}"#)?;
    let url = std::env::var(DEAD_LETTER_QUEUE_URL)
        .map_err(|_| HandlerError::Redrive(format!("{DEAD_LETTER_QUEUE_URL} is not set: template.yaml sets it on redrive-dead-letters")))?;
    redrive(deps, &url, request.max_messages).await
}

#[cfg(feature = "aws")]
async fn redrive(deps: &Deps, url: &str, max_messages: usize) -> Result<Value, HandlerError> {
    let queue = aws_adapters::redrive::DeadLetterQueue::from_env(url).await;
    let report = queue.redrive(deps.bus.as_ref(), max_messages).await.map_err(|error| HandlerError::Redrive(error.to_string()))?;
    answer(&report)
}

#[cfg(not(feature = "aws"))]
async fn redrive(_: &Deps, _: &str, _: usize) -> Result<Value, HandlerError> {
    Err(HandlerError::Redrive("this build has no AWS adapters; the local runner redrives with POST /local/dead-letters/redrive".into()))
}

/// The payload as `T`; `null` (`aws lambda invoke` without `--payload`) is
/// the default request.
fn payload_of<T: DeserializeOwned + Default>(payload: Value, shape: &str) -> Result<T, HandlerError> {
    if payload.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(payload).map_err(|error| HandlerError::BadPayload(format!("expected {shape}: {error}")))
}

fn answer(report: &impl serde::Serialize) -> Result<Value, HandlerError> {
    serde_json::to_value(report).map_err(|error| HandlerError::BadPayload(format!("the report does not serialize: {error}")))
}

use async_trait::async_trait;
use thiserror::Error;

/// One event as put on the bus (EventBridge's PutEvents entry).
#[derive(Debug, Clone, PartialEq)]
pub struct BusEntry {
    pub source: String,
    pub detail_type: String,
    /// The envelope, as JSON text.
    pub detail: String,
}

/// Which entries the bus did not take (indexes into the request, with the
/// reason): the caller retries exactly those.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PutOutcome {
    pub failed: Vec<(usize, String)>,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum BusError {
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait EventBus: Send + Sync {
    /// At most `MAX_BATCH` entries per call.
    async fn put_events(&self, entries: &[BusEntry]) -> Result<PutOutcome, BusError>;
}

/// EventBridge takes at most ten entries per PutEvents call.
pub const MAX_BATCH: usize = 10;

use async_trait::async_trait;
use domain::Envelope;
use serde_json::Value;
use thiserror::Error;

/// A rolling snapshot: an aggregate's state as of `version`.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub version: u64,
    pub state: Value,
}

/// What loading a stream returns: the latest snapshot, if any, and the events
/// after it in version order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadedStream {
    pub snapshot: Option<Snapshot>,
    pub events: Vec<Envelope>,
}

/// New events for one stream, to be stored only if the stream is still at
/// `expected_version` (0 for a new stream). The events carry versions
/// `expected_version + 1 ..` in order.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendStream {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub expected_version: u64,
    pub events: Vec<Envelope>,
    /// Replaces the stream's snapshot in the same write.
    pub snapshot: Option<Snapshot>,
}

/// One page of a read of the whole store (`EventStore::read_all`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventPage {
    pub events: Vec<Envelope>,
    /// Where the next page starts, to pass back as it is; `None` once every
    /// event has been read.
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum StoreError {
    /// Another writer got there first: reload and decide again.
    #[error("{0} was changed concurrently")]
    Conflict(String),
    /// The write was refused before it was tried (too many events, a gap in
    /// the versions, ...): a bug in the caller, not a race.
    #[error("refused write: {0}")]
    Refused(String),
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data does not decode: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait EventStore: Send + Sync {
    async fn load(&self, aggregate_type: &str, aggregate_id: &str) -> Result<LoadedStream, StoreError>;

    /// Appends to every stream or to none: one stream's conflict fails all.
    async fn append(&self, streams: Vec<AppendStream>) -> Result<(), StoreError>;

    /// Every stored event, a page at a time, for rebuilding read models and
    /// replaying: at most `limit` events per page, starting after the cursor
    /// `after` (a page's `next`; `None` for the first page). Events a snapshot
    /// covers are read too: a snapshot is a shortcut for loading, not a
    /// deletion. Order across streams is the adapter's own; within a stream,
    /// versions ascend. A page may be empty and still have a `next`. A cursor
    /// the store did not give is `Refused`.
    ///
    /// The default refuses, so a decorator that does not forward it fails
    /// loudly instead of reading nothing.
    async fn read_all(&self, after: Option<&str>, limit: usize) -> Result<EventPage, StoreError> {
        let _ = (after, limit);
        Err(StoreError::Refused("this event store cannot be read whole".into()))
    }
}

/// Checks what every adapter relies on before writing: versions follow on
/// from the expected version without gaps and belong to the named stream.
pub fn check_append(streams: &[AppendStream]) -> Result<(), StoreError> {
    for stream in streams {
        for (offset, event) in stream.events.iter().enumerate() {
            let expected = stream.expected_version + 1 + offset as u64;
            if event.version != expected || event.aggregate_id != stream.aggregate_id || event.aggregate_type != stream.aggregate_type {
                return Err(StoreError::Refused(format!(
                    "event {} does not follow {}-{} at version {expected}",
                    event.event_id, stream.aggregate_type, stream.aggregate_id
                )));
            }
        }
    }
    Ok(())
}

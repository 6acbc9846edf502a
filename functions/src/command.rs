//! Running a command against an event-sourced aggregate: load (snapshot +
//! tail), decide, append at the expected version, and on a lost race reload
//! and decide again, a bounded number of times.

use crate::deps::Deps;
use crate::ports::{AppendStream, EventStore, Snapshot, StoreError};
use domain::{Aggregate, DomainError, Envelope, Metadata, Versioned};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CommandError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Still losing races after every retry: the caller may try again.
    #[error("{0} is being changed by others right now; try again")]
    Contended(String),
}

/// The outcome of a command: the aggregate after it and the events stored.
#[derive(Debug)]
pub struct Executed<A> {
    pub state: Versioned<A>,
    pub events: Vec<Envelope>,
}

pub async fn load<A: Aggregate>(store: &dyn EventStore, aggregate_id: &str) -> Result<Versioned<A>, StoreError> {
    let loaded = store.load(A::TYPE, aggregate_id).await?;
    let mut current = match loaded.snapshot {
        Some(snapshot) => Versioned {
            version: snapshot.version,
            state: serde_json::from_value(snapshot.state).map_err(|e| corrupt(A::TYPE, aggregate_id, e))?,
        },
        None => Versioned::default(),
    };
    for envelope in &loaded.events {
        if envelope.version != current.version + 1 {
            return Err(StoreError::Corrupt(format!("{}-{aggregate_id} skips from {} to {}", A::TYPE, current.version, envelope.version)));
        }
        let event: A::Event = envelope.decode_as().map_err(|e| corrupt(A::TYPE, aggregate_id, e))?;
        current.apply_all([&event]);
    }
    Ok(current)
}

/// Decides `command(state)` on the current state and stores the events.
/// `command` sees the state so it can be re-derived after a reload.
pub async fn execute<A: Aggregate>(
    deps: &Deps,
    aggregate_id: &str,
    meta: &Metadata,
    command: impl Fn(&A) -> Result<A::Command, DomainError>,
) -> Result<Executed<A>, CommandError> {
    let mut meta = meta.clone();
    for attempt in 0..=deps.settings.conflict_retries {
        if attempt > 0 {
            // An event decided again after a lost race happened after the
            // winner's: its time must say so.
            meta.time = chrono::Utc::now();
        }
        let mut state = load::<A>(deps.events.as_ref(), aggregate_id).await?;
        let expected_version = state.version;
        let decided = state.execute(&command(&state.state)?)?;
        if decided.is_empty() {
            return Ok(Executed { state, events: vec![] });
        }
        let stream = stream_write(aggregate_id, expected_version, &state, &decided, &meta, deps.settings.snapshot_every);
        let events = stream.events.clone();
        match deps.events.append(vec![stream]).await {
            Ok(()) => return Ok(Executed { state, events }),
            Err(StoreError::Conflict(_)) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(CommandError::Contended(format!("{} {aggregate_id}", A::TYPE)))
}

/// The write for freshly decided events, with a snapshot of the new state
/// when the stream crosses a multiple of `snapshot_every`.
pub fn stream_write<A: Aggregate>(
    aggregate_id: &str,
    expected_version: u64,
    after: &Versioned<A>,
    decided: &[(u64, A::Event)],
    meta: &Metadata,
    snapshot_every: u64,
) -> AppendStream {
    let events = decided.iter().map(|(version, event)| Envelope::wrap::<A>(aggregate_id, *version, event, meta)).collect();
    let every = snapshot_every.max(1);
    let snapshot = (after.version / every > expected_version / every)
        .then(|| serde_json::to_value(&after.state).ok())
        .flatten()
        .map(|state| Snapshot { version: after.version, state });
    AppendStream { aggregate_type: A::TYPE.to_owned(), aggregate_id: aggregate_id.to_owned(), expected_version, events, snapshot }
}

fn corrupt(aggregate_type: &str, aggregate_id: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{aggregate_type}-{aggregate_id}: {error}"))
}

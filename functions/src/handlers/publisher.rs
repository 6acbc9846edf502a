//! The outbox relay: the event table's stream in, the event bus out. Events
//! are written once, by the command that decided them; this is the only
//! place that publishes them.

use crate::deps::Deps;
use crate::item;
use crate::ports::{BusEntry, MAX_BATCH};
use crate::registry::HandlerError;
use aws_lambda_events::event::dynamodb::Event as StreamBatch;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use std::time::Duration;

/// EventBridge refuses requests over 256 KB; stay under with room to spare.
const MAX_REQUEST_BYTES: usize = 240 * 1024;

/// Publishes every new event of the batch, in stream order. On the first
/// record that cannot be read or published it stops and reports that record
/// as the batch item failure: Lambda retries from there (and, after the
/// configured attempts, hands it to the on-failure destination), so nothing is
/// lost and nothing after it jumps the queue.
pub async fn publish_events(deps: &Deps, batch: StreamBatch) -> Result<DynamoDbEventResponse, HandlerError> {
    let mut entries: Vec<Outgoing> = Vec::new();
    let mut poisoned = None;
    for record in &batch.records {
        let sequence = record.change.sequence_number.clone().unwrap_or_default();
        if record.event_name != "INSERT" || !record.change.new_image.contains_key("eventId") {
            continue; // snapshots and rewrites are not events
        }
        let entry = item::from_image(&record.change.new_image).and_then(|envelope| {
            let source =
                envelope.source().ok_or_else(|| item::ItemError::Malformed(format!("no source for {}", envelope.aggregate_type)))?;
            let detail = serde_json::to_string(&envelope).map_err(|e| item::ItemError::Malformed(e.to_string()))?;
            let stream = format!("{}-{}", envelope.aggregate_type, envelope.aggregate_id);
            Ok((stream, BusEntry { source: source.to_owned(), detail_type: envelope.event_type.clone(), detail }))
        });
        match entry {
            Ok((stream, entry)) => entries.push(Outgoing { sequence, stream, entry }),
            Err(error) => {
                tracing::error!(%error, sequence, "unreadable stream record");
                poisoned = Some(sequence);
                break;
            }
        }
    }
    let mut failure = publish(deps, &entries).await;
    if failure.is_none() {
        failure = poisoned;
    }
    let mut response = DynamoDbEventResponse::default();
    if let Some(sequence) = failure {
        let mut item = DynamoDbBatchItemFailure::default();
        item.item_identifier = Some(sequence);
        response.batch_item_failures.push(item);
    }
    Ok(response)
}

/// A stream record's event on its way to the bus.
struct Outgoing {
    sequence: String,
    /// `{aggregateType}-{aggregateId}`: at most one event of a stream per put.
    stream: String,
    entry: BusEntry,
}

/// Publishes in requests of at most ten entries and 240 KB, retrying exactly
/// the entries the bus did not take. Returns the sequence number of the first
/// record that could not be published.
async fn publish(deps: &Deps, entries: &[Outgoing]) -> Option<String> {
    for chunk in chunks(entries) {
        let mut pending: Vec<&Outgoing> = chunk.iter().collect();
        for attempt in 0..=deps.settings.publish_retries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            let request: Vec<BusEntry> = pending.iter().map(|outgoing| outgoing.entry.clone()).collect();
            match deps.bus.put_events(&request).await {
                Ok(outcome) => {
                    for (index, reason) in &outcome.failed {
                        tracing::warn!(
                            attempt,
                            reason,
                            detail_type = request.get(*index).map(|e| e.detail_type.as_str()),
                            "entry not taken"
                        );
                    }
                    let failed: std::collections::HashSet<usize> = outcome.failed.iter().map(|(index, _)| *index).collect();
                    pending = pending.into_iter().enumerate().filter(|(i, _)| failed.contains(i)).map(|(_, e)| e).collect();
                }
                Err(error) => tracing::warn!(attempt, %error, "put events failed"),
            }
            if pending.is_empty() {
                break;
            }
        }
        // `pending` keeps stream order. Not the smallest sequence number as
        // text: they are decimal strings of 21 to 40 digits, and "100" < "99".
        if let Some(outgoing) = pending.first() {
            return Some(outgoing.sequence.clone());
        }
    }
    None
}

/// Consecutive runs of entries for one put each. A stream's next event waits
/// for the next put: were both in one and the first refused, its retry would
/// land after its successor, and the redelivery after a give-up would put
/// the successor on the bus twice.
fn chunks(entries: &[Outgoing]) -> Vec<&[Outgoing]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, outgoing) in entries.iter().enumerate() {
        let entry = &outgoing.entry;
        let size = entry.source.len() + entry.detail_type.len() + entry.detail.len();
        let repeated = entries[start..index].iter().any(|earlier| earlier.stream == outgoing.stream);
        if index > start && (index - start == MAX_BATCH || bytes + size > MAX_REQUEST_BYTES || repeated) {
            chunks.push(&entries[start..index]);
            (start, bytes) = (index, 0);
        }
        bytes += size;
    }
    if start < entries.len() {
        chunks.push(&entries[start..]);
    }
    chunks
}

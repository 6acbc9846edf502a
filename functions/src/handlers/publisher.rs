//! The outbox relay: the event table's stream in, the event bus out. Events
//! are written once, by the command that decided them; this is the only
//! place that publishes them.

use crate::deps::Deps;
use crate::item;
use crate::ports::{BusEntry, MAX_BATCH};
use crate::registry::HandlerError;
use aws_lambda_events::event::dynamodb::Event as StreamBatch;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures_util::future::join_all;
use std::time::Duration;

/// EventBridge refuses requests over 256 KB; stay under with room to spare.
const MAX_REQUEST_BYTES: usize = 240 * 1024;

/// Publishes every new event of the batch, each after the one before it in
/// its stream. It stops at the first record that cannot be read, or after a
/// wave of puts with a refusal, and reports the earliest record not on the
/// bus as the batch item failure: Lambda retries from there (and, after the
/// configured attempts, hands it to the on-failure destination), so nothing
/// is lost and no event overtakes an earlier one of its stream.
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
            Ok((stream, entry)) => entries.push(Outgoing { index: entries.len(), sequence, stream, entry }),
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
    /// Its place in the batch.
    index: usize,
    sequence: String,
    /// `{aggregateType}-{aggregateId}`: at most one event of a stream per wave.
    stream: String,
    entry: BusEntry,
}

/// Publishes in requests of at most ten entries and 240 KB, retrying exactly
/// the entries the bus did not take. Returns the sequence number of the
/// earliest record not on the bus, if any.
///
/// The batch goes out in waves: the first event of every stream in it, then
/// the second, and so on. The puts of a wave go out at once (one round trip
/// instead of one per ten events), and a stream's next event waits for the
/// next wave: were it sent beside its predecessor and that one refused, it
/// would be on the bus first, and once more when Lambda retries from the
/// refused record. After a wave with a refusal nothing more is sent.
async fn publish(deps: &Deps, entries: &[Outgoing]) -> Option<String> {
    let waves = waves(entries);
    for (sent, wave) in waves.iter().enumerate() {
        let refused: Vec<&Outgoing> =
            join_all(chunks(wave).into_iter().map(|chunk| put(deps, chunk))).await.into_iter().flatten().collect();
        if !refused.is_empty() {
            // Lambda hands the batch again from the reported record: the
            // earliest one not on the bus, refused or in a wave not sent
            // (that can come before the refused one). By index, not by
            // sequence number as text: those are decimal strings of 21 to
            // 40 digits, and "100" < "99".
            let unsent = waves[sent + 1..].iter().flatten().copied();
            return refused.into_iter().chain(unsent).min_by_key(|outgoing| outgoing.index).map(|first| first.sequence.clone());
        }
    }
    None
}

/// One put, and its retries for the entries the bus did not take. Returns
/// the first entry it could not publish.
async fn put<'a>(deps: &Deps, chunk: &[&'a Outgoing]) -> Option<&'a Outgoing> {
    let mut pending: Vec<&Outgoing> = chunk.to_vec();
    for attempt in 0..=deps.settings.publish_retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        let request: Vec<BusEntry> = pending.iter().map(|outgoing| outgoing.entry.clone()).collect();
        match deps.bus.put_events(&request).await {
            Ok(outcome) => {
                for (index, reason) in &outcome.failed {
                    tracing::warn!(attempt, reason, detail_type = request.get(*index).map(|e| e.detail_type.as_str()), "entry not taken");
                }
                let failed: std::collections::HashSet<usize> = outcome.failed.iter().map(|(index, _)| *index).collect();
                pending = pending.into_iter().enumerate().filter(|(i, _)| failed.contains(i)).map(|(_, e)| e).collect();
            }
            Err(error) => tracing::warn!(attempt, %error, "put events failed"),
        }
        if pending.is_empty() {
            return None;
        }
    }
    pending.first().copied()
}

/// The entries by wave: the n-th event of each stream in the batch is in
/// wave n, in stream order.
fn waves(entries: &[Outgoing]) -> Vec<Vec<&Outgoing>> {
    let mut waves: Vec<Vec<&Outgoing>> = Vec::new();
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for outgoing in entries {
        let wave = seen.entry(outgoing.stream.as_str()).or_insert(0);
        if *wave == waves.len() {
            waves.push(Vec::new());
        }
        waves[*wave].push(outgoing);
        *wave += 1;
    }
    waves
}

/// A wave's entries in runs of at most ten and 240 KB, one put each.
fn chunks<'a, 'b>(entries: &'b [&'a Outgoing]) -> Vec<&'b [&'a Outgoing]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, outgoing) in entries.iter().enumerate() {
        let entry = &outgoing.entry;
        let size = entry.source.len() + entry.detail_type.len() + entry.detail.len();
        if index > start && (index - start == MAX_BATCH || bytes + size > MAX_REQUEST_BYTES) {
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

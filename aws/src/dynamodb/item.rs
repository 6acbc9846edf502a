//! How an event and a snapshot are laid out as DynamoDB items in the event
//! table. The same layout as `functions::item` (which the stream publisher
//! decodes); a test in `tests/dynamodb.rs` reads items written here back
//! through `functions::item::from_image`, so the two can never drift.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use domain::Envelope;
use ports::Snapshot;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub type Item = HashMap<String, AttributeValue>;

/// The sort key of a stream's rolling snapshot; events start at 1.
pub const SNAPSHOT_SK: u64 = 0;

/// Partition key `pk` = `{aggregateType}#{aggregateId}`, sort key `sk` = version.
pub fn partition_key(aggregate_type: &str, aggregate_id: &str) -> String {
    format!("{aggregate_type}#{aggregate_id}")
}

/// The primary key of one item of a stream.
pub fn key(pk: &str, sk: u64) -> Item {
    HashMap::from([("pk".to_owned(), AttributeValue::S(pk.to_owned())), ("sk".to_owned(), number(sk))])
}

pub fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// One event per item. The snapshot item has no `eventId`: that is how the
/// stream filter and the publisher tell it apart.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventItem {
    pk: String,
    sk: u64,
    event_id: String,
    event_type: String,
    event_version: u32,
    aggregate_type: String,
    aggregate_id: String,
    correlation_id: String,
    causation_id: String,
    time: DateTime<Utc>,
    /// The payload as JSON text: exact, and no DynamoDB number limits.
    data: String,
}

/// The rolling snapshot at `sk` = 0: the state as JSON text as of `version`.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotItem {
    pk: String,
    sk: u64,
    version: u64,
    state: String,
}

pub fn event_to_item(envelope: &Envelope) -> Result<Item, String> {
    let item = EventItem {
        pk: partition_key(&envelope.aggregate_type, &envelope.aggregate_id),
        sk: envelope.version,
        event_id: envelope.event_id.clone(),
        event_type: envelope.event_type.clone(),
        event_version: envelope.event_version,
        aggregate_type: envelope.aggregate_type.clone(),
        aggregate_id: envelope.aggregate_id.clone(),
        correlation_id: envelope.correlation_id.clone(),
        causation_id: envelope.causation_id.clone(),
        time: envelope.time,
        data: envelope.data.to_string(),
    };
    serde_dynamo::to_item(item).map_err(|error| format!("event {}: {error}", envelope.event_id))
}

pub fn event_from_item(item: Item) -> Result<Envelope, String> {
    let item: EventItem = serde_dynamo::from_item(item).map_err(|error| format!("event item: {error}"))?;
    let data = serde_json::from_str(&item.data).map_err(|error| format!("data of event {}: {error}", item.event_id))?;
    Ok(Envelope {
        event_id: item.event_id,
        event_type: item.event_type,
        event_version: item.event_version,
        aggregate_type: item.aggregate_type,
        aggregate_id: item.aggregate_id,
        version: item.sk,
        correlation_id: item.correlation_id,
        causation_id: item.causation_id,
        time: item.time,
        data,
    })
}

pub fn snapshot_to_item(pk: &str, snapshot: &Snapshot) -> Result<Item, String> {
    let item = SnapshotItem { pk: pk.to_owned(), sk: SNAPSHOT_SK, version: snapshot.version, state: snapshot.state.to_string() };
    serde_dynamo::to_item(item).map_err(|error| format!("snapshot of {pk}: {error}"))
}

pub fn snapshot_from_item(item: Item) -> Result<Snapshot, String> {
    let item: SnapshotItem = serde_dynamo::from_item(item).map_err(|error| format!("snapshot item: {error}"))?;
    let state = serde_json::from_str(&item.state).map_err(|error| format!("state of the snapshot of {}: {error}", item.pk))?;
    Ok(Snapshot { version: item.version, state })
}

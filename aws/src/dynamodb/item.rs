//! How an event and a snapshot are laid out as DynamoDB items in the event
//! table. Events follow `ports::event_item`, the schema the stream publisher
//! reads back; a test in `tests/dynamodb.rs` also checks it through
//! `functions::item::from_image`.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::Envelope;
use ports::Snapshot;
use ports::event_item::EventItem;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub type Item = HashMap<String, AttributeValue>;

/// The sort key of a stream's rolling snapshot; events start at 1.
pub const SNAPSHOT_SK: u64 = 0;

pub use ports::event_item::partition_key;

/// The primary key of one item of a stream.
pub fn key(pk: &str, sk: u64) -> Item {
    HashMap::from([("pk".to_owned(), AttributeValue::S(pk.to_owned())), ("sk".to_owned(), number(sk))])
}

pub fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
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
    serde_dynamo::to_item(EventItem::from(envelope)).map_err(|error| format!("event {}: {error}", envelope.event_id))
}

pub fn event_from_item(item: Item) -> Result<Envelope, String> {
    let item: EventItem = serde_dynamo::from_item(item).map_err(|error| format!("event item: {error}"))?;
    item.try_into()
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

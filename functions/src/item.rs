//! How an event is laid out as a DynamoDB item, and the stream record that
//! announces it. The embedded change stream produces exactly these records,
//! so the stream publisher runs unchanged locally and on AWS.

use aws_lambda_events::event::dynamodb::{EventRecord, StreamRecord};
use chrono::{DateTime, Utc};
use domain::Envelope;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One event per item: partition key `pk` = `{aggregateType}#{aggregateId}`,
/// sort key `sk` = version. The rolling snapshot lives at `sk` = 0 and has no
/// `eventId`, which is how the stream filter and the publisher skip it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventItem {
    pub pk: String,
    pub sk: u64,
    pub event_id: String,
    pub event_type: String,
    pub event_version: u32,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub correlation_id: String,
    pub causation_id: String,
    pub time: DateTime<Utc>,
    /// The payload as JSON text: exact, and no DynamoDB number limits.
    pub data: String,
}

#[derive(Debug, Error)]
pub enum ItemError {
    #[error("not an event item: {0}")]
    NotAnEvent(String),
    #[error("event item does not decode: {0}")]
    Malformed(String),
}

pub fn partition_key(aggregate_type: &str, aggregate_id: &str) -> String {
    format!("{aggregate_type}#{aggregate_id}")
}

impl From<&Envelope> for EventItem {
    fn from(envelope: &Envelope) -> Self {
        EventItem {
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
        }
    }
}

impl TryFrom<EventItem> for Envelope {
    type Error = ItemError;

    fn try_from(item: EventItem) -> Result<Self, ItemError> {
        let data = serde_json::from_str(&item.data).map_err(|e| ItemError::Malformed(format!("{}: {e}", item.event_id)))?;
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
}

pub fn to_item(envelope: &Envelope) -> Result<serde_dynamo::Item, ItemError> {
    serde_dynamo::to_item(EventItem::from(envelope)).map_err(|e| ItemError::Malformed(e.to_string()))
}

/// Reads the envelope back from a stream record's new image.
pub fn from_image(image: &serde_dynamo::Item) -> Result<Envelope, ItemError> {
    if !image.contains_key("eventId") {
        return Err(ItemError::NotAnEvent("the item has no eventId".into()));
    }
    let item: EventItem = serde_dynamo::from_item(image.clone()).map_err(|e| ItemError::Malformed(e.to_string()))?;
    item.try_into()
}

/// The DynamoDB Streams record (INSERT, NEW_IMAGE) for a stored event.
/// `sequence` orders records like a stream's sequence numbers do.
pub fn stream_record(sequence: u64, envelope: &Envelope) -> Result<EventRecord, ItemError> {
    let image = to_item(envelope)?;
    let mut change = StreamRecord::default();
    change.approximate_creation_date_time = envelope.time;
    let keys: std::collections::HashMap<String, serde_dynamo::AttributeValue> =
        image.iter().filter(|(name, _)| *name == "pk" || *name == "sk").map(|(k, v)| (k.clone(), v.clone())).collect();
    change.keys = keys.into();
    change.new_image = image;
    change.sequence_number = Some(format!("{sequence:021}"));
    change.size_bytes = envelope.data.to_string().len() as i64;
    change.stream_view_type = Some(aws_lambda_events::event::dynamodb::StreamViewType::NewImage);
    let mut record = EventRecord::default();
    record.event_id = envelope.event_id.clone();
    record.event_name = "INSERT".into();
    record.event_source = Some("aws:dynamodb".into());
    record.event_version = Some("1.1".into());
    record.aws_region = "local".into();
    record.change = change;
    Ok(record)
}

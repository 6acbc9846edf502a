//! How an event is laid out as a DynamoDB item, and the stream record that
//! announces it. The embedded change stream produces exactly these records,
//! so the stream publisher runs unchanged locally and on AWS.

use aws_lambda_events::event::dynamodb::{EventRecord, StreamRecord};
use domain::Envelope;
use thiserror::Error;

pub use ports::event_item::{EventItem, partition_key};

#[derive(Debug, Error)]
pub enum ItemError {
    #[error("not an event item: {0}")]
    NotAnEvent(String),
    #[error("event item does not decode: {0}")]
    Malformed(String),
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
    item.try_into().map_err(ItemError::Malformed)
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
    // The payload's size, from the text the image already holds.
    change.size_bytes = match image.get("data") {
        Some(serde_dynamo::AttributeValue::S(data)) => data.len() as i64,
        _ => 0,
    };
    change.new_image = image;
    change.sequence_number = Some(format!("{sequence:021}"));
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

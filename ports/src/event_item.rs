//! How an event is laid out as an item of the event table: one schema for
//! the DynamoDB event store that writes it and the stream publisher that
//! reads it back from the table's stream.

use chrono::{DateTime, Utc};
use domain::Envelope;
use serde::{Deserialize, Serialize};

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
    /// Why the payload is not JSON.
    type Error = String;

    fn try_from(item: EventItem) -> Result<Self, String> {
        let data = serde_json::from_str(&item.data).map_err(|e| format!("data of event {}: {e}", item.event_id))?;
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

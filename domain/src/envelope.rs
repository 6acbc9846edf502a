//! The envelope every event travels in, from the event store through the
//! stream and the bus to every consumer.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::catalog::{Store, StoreEvent};
use crate::delivery::{Delivery, DeliveryEvent};
use crate::ordering::{Order, OrderEvent};
use crate::payment::{Payment, PaymentEvent};
use chrono::{DateTime, Utc};
use serde::de::value::MapDeserializer;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Unique and deterministic: `{aggregateType}-{aggregateId}-{version}`, so
    /// every copy of one event, however often delivered, has the same id.
    pub event_id: String,
    pub event_type: String,
    /// Schema version of `data`.
    pub event_version: u32,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Position in the aggregate's stream: 1, 2, 3, ... without gaps.
    pub version: u64,
    /// The order id (the store id for catalog events): ties together
    /// everything one order causes across aggregates and logs.
    pub correlation_id: String,
    /// The command or event that caused this one.
    pub causation_id: String,
    pub time: DateTime<Utc>,
    pub data: Value,
}

/// What the caller knows about why and when events happen.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub correlation_id: String,
    pub causation_id: String,
    pub time: DateTime<Utc>,
}

/// Any domain event, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Store(StoreEvent),
    Order(OrderEvent),
    Payment(PaymentEvent),
    Delivery(DeliveryEvent),
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum DecodeError {
    #[error("unknown aggregate type `{0}`")]
    UnknownAggregate(String),
    #[error("event {event_type} has schema version {found}, newer than {supported} that this code reads")]
    FutureVersion { event_type: String, found: u32, supported: u32 },
    #[error("event {event_type} does not decode: {reason}")]
    Malformed { event_type: String, reason: String },
}

pub fn event_id(aggregate_type: &str, aggregate_id: &str, version: u64) -> String {
    format!("{aggregate_type}-{aggregate_id}-{version}")
}

/// The EventBridge `source` of an aggregate's events: one per bounded context.
pub fn source_of(aggregate_type: &str) -> Option<&'static str> {
    Some(match aggregate_type {
        Store::TYPE => "food-delivery.catalog",
        Order::TYPE => "food-delivery.ordering",
        Payment::TYPE => "food-delivery.payment",
        Delivery::TYPE => "food-delivery.delivery",
        _ => return None,
    })
}

impl Envelope {
    pub fn wrap<A: Aggregate>(aggregate_id: &str, version: u64, event: &A::Event, meta: &Metadata) -> Envelope {
        let (event_type, data) = split(event);
        Envelope {
            event_id: event_id(A::TYPE, aggregate_id, version),
            event_type,
            event_version: A::Event::SCHEMA_VERSION,
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            version,
            correlation_id: meta.correlation_id.clone(),
            causation_id: meta.causation_id.clone(),
            time: meta.time,
            data,
        }
    }

    pub fn decode(&self) -> Result<Event, DecodeError> {
        Ok(match self.aggregate_type.as_str() {
            Store::TYPE => Event::Store(self.decode_as()?),
            Order::TYPE => Event::Order(self.decode_as()?),
            Payment::TYPE => Event::Payment(self.decode_as()?),
            Delivery::TYPE => Event::Delivery(self.decode_as()?),
            other => return Err(DecodeError::UnknownAggregate(other.to_owned())),
        })
    }

    pub fn decode_as<E: DomainEvent>(&self) -> Result<E, DecodeError> {
        if self.event_version > E::SCHEMA_VERSION {
            return Err(DecodeError::FutureVersion {
                event_type: self.event_type.clone(),
                found: self.event_version,
                supported: E::SCHEMA_VERSION,
            });
        }
        let upcast;
        let data = if self.event_version < E::SCHEMA_VERSION {
            upcast = E::upcast(&self.event_type, self.event_version, self.data.clone());
            &upcast
        } else {
            &self.data
        };
        // Read as `{"eventType", "data"}` straight from the borrowed parts:
        // every consumer decodes every event, so no copy of `data` is made.
        let event_type = Value::String(self.event_type.clone());
        let tagged = MapDeserializer::<_, serde_json::Error>::new([("eventType", &event_type), ("data", data)].into_iter());
        E::deserialize(tagged).map_err(|e| DecodeError::Malformed { event_type: self.event_type.clone(), reason: e.to_string() })
    }

    pub fn source(&self) -> Option<&'static str> {
        source_of(&self.aggregate_type)
    }
}

/// Splits an adjacently tagged event into its type name and payload.
fn split<E: DomainEvent>(event: &E) -> (String, Value) {
    // Serializing a derived, string-keyed type into a Value cannot fail.
    let Ok(Value::Object(mut tagged)) = serde_json::to_value(event) else { unreachable!("domain events serialize to tagged objects") };
    let event_type = match tagged.remove("eventType") {
        Some(Value::String(name)) => name,
        _ => unreachable!("domain events carry an eventType tag"),
    };
    (event_type, tagged.remove("data").unwrap_or(Value::Null))
}

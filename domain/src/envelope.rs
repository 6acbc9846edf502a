//! The envelope every event travels in, from the event store through the
//! stream and the bus to every consumer.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::catalog::{Store, StoreEvent};
use crate::delivery::{Delivery, DeliveryEvent};
use crate::ordering::{Order, OrderEvent};
use crate::payment::{Payment, PaymentEvent};
use chrono::{DateTime, Utc};
use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer};
use serde::de::{DeserializeSeed, MapAccess};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use thiserror::Error;

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    #[serde(with = "crate::time")]
    pub time: DateTime<Utc>,
    /// The payload as JSON text, kept as it came: every event is read and
    /// written several times on its way (store, stream, bus, consumers), and
    /// only a consumer decoding it needs its fields.
    pub data: Box<RawValue>,
}

/// Two envelopes are equal when their texts are: a payload is written once,
/// by `wrap`, and travels unchanged.
impl PartialEq for Envelope {
    fn eq(&self, other: &Envelope) -> bool {
        self.event_id == other.event_id
            && self.event_type == other.event_type
            && self.event_version == other.event_version
            && self.aggregate_type == other.aggregate_type
            && self.aggregate_id == other.aggregate_id
            && self.version == other.version
            && self.correlation_id == other.correlation_id
            && self.causation_id == other.causation_id
            && self.time == other.time
            && self.data.get() == other.data.get()
    }
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
            let old = serde_json::from_str(self.data.get()).map_err(|e| self.malformed(e))?;
            upcast =
                serde_json::value::to_raw_value(&E::upcast(&self.event_type, self.event_version, old)).map_err(|e| self.malformed(e))?;
            &upcast
        } else {
            &self.data
        };
        // Read as `{"eventType", "data"}` from the two parts in place: the
        // payload goes straight into the event, with no copy and no tree of
        // JSON values in between.
        let tagged = Tagged { event_type: &self.event_type, data, read: 0 };
        E::deserialize(MapAccessDeserializer::new(tagged)).map_err(|e| self.malformed(e))
    }

    /// The payload as a tree of JSON values, for a reader that wants fields
    /// by name rather than the typed event (`decode`).
    pub fn payload(&self) -> Value {
        // A RawValue is valid JSON by construction.
        serde_json::from_str(self.data.get()).unwrap_or(Value::Null)
    }

    fn malformed(&self, error: serde_json::Error) -> DecodeError {
        DecodeError::Malformed { event_type: self.event_type.clone(), reason: error.to_string() }
    }

    pub fn source(&self) -> Option<&'static str> {
        source_of(&self.aggregate_type)
    }
}

/// An event's adjacently tagged form, `{"eventType": ..., "data": ...}`,
/// made of an envelope's two parts.
struct Tagged<'a> {
    event_type: &'a str,
    data: &'a RawValue,
    /// Entries read so far.
    read: u8,
}

impl<'de> MapAccess<'de> for Tagged<'de> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        let key = match self.read {
            0 => "eventType",
            1 => "data",
            _ => return Ok(None),
        };
        seed.deserialize(BorrowedStrDeserializer::new(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        self.read += 1;
        match self.read {
            1 => seed.deserialize(BorrowedStrDeserializer::new(self.event_type)),
            _ => seed.deserialize(self.data),
        }
    }
}

/// Splits an adjacently tagged event into its type name and payload.
fn split<E: DomainEvent>(event: &E) -> (String, Box<RawValue>) {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Written {
        event_type: String,
        data: Option<Box<RawValue>>,
    }
    // Serializing a derived, string-keyed type cannot fail, and its text
    // reads back as the tagged form it was written in.
    let tagged = serde_json::to_string(event).ok().and_then(|text| serde_json::from_str::<Written>(&text).ok());
    let Some(Written { event_type, data }) = tagged else { unreachable!("domain events serialize to tagged objects") };
    (event_type, data.unwrap_or_else(|| RawValue::NULL.to_owned()))
}

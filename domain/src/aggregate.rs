//! The shape every aggregate shares: `decide` turns a command into events (or
//! a refusal), `apply` folds an event into the state. Decisions never mutate;
//! state only ever changes by applying events, so a replay is always exact.

use crate::error::DomainError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// A domain event type: one enum per aggregate, serialized adjacently tagged as
/// `{"eventType": "...", "data": {...}}` so the envelope can split the two.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + Debug + PartialEq {
    /// Schema version of the `data` this code writes. Bump it when a payload
    /// changes shape and teach `upcast` to read the older versions.
    const SCHEMA_VERSION: u32 = 1;

    /// Rewrites an older payload into the current shape. Version 1 is current
    /// for every event today, so there is nothing to convert yet.
    fn upcast(_event_type: &str, _from_version: u32, data: serde_json::Value) -> serde_json::Value {
        data
    }
}

pub trait Aggregate: Default + Clone + Debug + PartialEq + Serialize + DeserializeOwned {
    /// The aggregate type as stored and routed ("Order", "Store", ...).
    const TYPE: &'static str;
    type Command;
    type Event: DomainEvent;

    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, DomainError>;
    fn apply(&mut self, event: &Self::Event);
}

/// An aggregate's state with the version of the last event folded into it.
/// This is also the rolling snapshot: store it, load it, apply only the tail.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Versioned<A> {
    pub version: u64,
    pub state: A,
}

impl<A: Aggregate> Versioned<A> {
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a A::Event>) -> Self
    where
        A::Event: 'a,
    {
        let mut versioned = Self::default();
        versioned.apply_all(events);
        versioned
    }

    pub fn apply_all<'a>(&mut self, events: impl IntoIterator<Item = &'a A::Event>)
    where
        A::Event: 'a,
    {
        for event in events {
            self.state.apply(event);
            self.version += 1;
        }
    }

    /// Decides and, on success, applies: returns the new events, each paired
    /// with the version it will be stored under.
    pub fn execute(&mut self, command: &A::Command) -> Result<Vec<(u64, A::Event)>, DomainError> {
        let events = self.state.decide(command)?;
        let first = self.version + 1;
        self.apply_all(&events);
        Ok(events.into_iter().zip(first..).map(|(e, v)| (v, e)).collect())
    }
}

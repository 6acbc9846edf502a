//! Projections: the read models (CQRS). Each is a pure fold
//! `(view, envelope) -> view` over the events of one aggregate per view
//! document. Every field remembers the version of the event that set it, so
//! the fold converges to the same view whatever order events arrive in and
//! however often each one is delivered.

pub mod catalog;
pub mod delivery_board;
pub mod order_status;
pub mod popular_menus;
pub mod store_queue;

use crate::envelope::{Envelope, Event};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// Where a view document lives: its key, and the partition queries select by
/// (a customer's orders, a store's queue, a region's board).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ViewKey {
    pub key: String,
    pub partition: String,
}

pub trait Projection {
    /// Also the name the view is stored under.
    const NAME: &'static str;
    type View: Default + Clone + Debug + PartialEq + Serialize + DeserializeOwned;

    /// The document this event updates, or `None` when the view ignores it.
    fn locate(envelope: &Envelope, event: &Event) -> Option<ViewKey>;
    fn apply(view: Self::View, envelope: &Envelope, event: &Event) -> Self::View;
}

/// A value written by events, keeping the one from the highest version: a
/// late or repeated event can never roll it back.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Latest<T> {
    pub version: u64,
    pub value: T,
}

impl<T> Latest<T> {
    pub fn set(&mut self, version: u64, value: T) {
        if version > self.version {
            self.version = version;
            self.value = value;
        }
    }
}

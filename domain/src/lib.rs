//! The food-delivery business, pure.
//!
//! Customers order from stores and pay up front; the store's kitchen accepts or
//! rejects, cooks, and hands the food to a rider who delivers it. Every fact is
//! an event; every aggregate is rebuilt from its events; policies turn one
//! aggregate's events into the next aggregate's commands; projections fold
//! events into the read models customers, owners and riders look at.
//!
//! Nothing in this crate does I/O, reads a clock or draws a random number: the
//! callers pass in ids and times, so every decision is reproducible in a test.

pub mod aggregate;
pub mod catalog;
pub mod delivery;
pub mod envelope;
pub mod error;
pub mod ids;
pub mod kitchen;
pub mod money;
pub mod notification;
pub mod ordering;
pub mod payment;
pub mod policy;
pub mod projection;
pub mod time;

pub use aggregate::{Aggregate, DomainEvent, Versioned};
pub use envelope::{DecodeError, Envelope, Event, Metadata};
pub use error::DomainError;
pub use ids::{CustomerId, MenuItemId, OrderId, OwnerId, Region, RiderId, StoreId};
pub use money::Money;

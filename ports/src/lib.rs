//! Ports: the small traits the handlers need from the outside world. Each has
//! an embedded adapter (`functions::embedded`) and an AWS adapter
//! (`aws-adapters`), and every adapter must pass the same contract suite
//! (`contract`). A crate of its own so both adapter crates can depend on it.

pub mod contract;
pub mod event_item;

mod event_bus;
mod event_store;
mod notifier;
mod payment_gateway;
mod view_store;

pub use event_bus::{BusEntry, BusError, EventBus, MAX_BATCH, PutOutcome};
pub use event_store::{AppendStream, EventPage, EventStore, LoadedStream, Snapshot, StoreError, check_append};
pub use notifier::{Notifier, NotifyError, Sent};
pub use payment_gateway::{ChargeReceipt, ChargeRecord, ChargeRequest, PaymentError, PaymentGateway};
pub use view_store::{ViewDoc, ViewError, ViewStore};

/// A boxed, sendable future: what the contract's observation hooks return.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

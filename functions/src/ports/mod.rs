//! Ports: the small traits the handlers need from the outside world. Each has
//! an embedded adapter (`crate::embedded`) and an AWS adapter, and both must
//! pass the same contract suite (`crate::contract`).

mod event_bus;
mod event_store;
mod notifier;
mod payment_gateway;
mod view_store;

pub use event_bus::{BusEntry, BusError, EventBus, MAX_BATCH, PutOutcome};
pub use event_store::{AppendStream, EventStore, LoadedStream, Snapshot, StoreError, check_append};
pub use notifier::{NotifyError, Notifier, Sent};
pub use payment_gateway::{ChargeReceipt, ChargeRequest, PaymentError, PaymentGateway};
pub use view_store::{ViewDoc, ViewError, ViewStore};

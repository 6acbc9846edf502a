//! The DynamoDB adapters: the event store on the `EventTable` and the view
//! store on the `ViewTable` of `template.yaml`.
//!
//! - Appends are one `TransactWriteItems` over every stream they touch: a
//!   conditional put per event (no item at that version yet), a condition
//!   check that the item at the expected version exists (no gap), and the
//!   snapshot. So at most [`MAX_TRANSACTION_ACTIONS`] actions per append.
//!   One event on one stream is a conditional `PutItem` after a consistent
//!   read of the expected version instead: same guarantees, cheaper.
//! - Loads are consistent reads: the snapshot, then every event after it.
//! - View queries go through the GSI `by-partition`, which DynamoDB keeps
//!   eventually consistent: a query may miss a put made an instant earlier
//!   (a `get` never does). Read models are eventually consistent anyway.

mod error;
mod event_store;
mod item;
mod one_event;
mod tables;
mod view_store;

pub use event_store::{DynamoEventStore, MAX_TRANSACTION_ACTIONS};
pub use tables::{CreateTableError, create_event_table, create_view_table};
pub use view_store::{BY_PARTITION, DynamoViewStore, EXPIRES_AT};

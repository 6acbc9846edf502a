//! Embedded adapters: every port on one SQLite file, so the whole system runs
//! on a laptop with no AWS and no Docker, and survives a restart.
//!
//! Why SQLite (rusqlite, bundled): one file that is durable on commit, real
//! transactions for the atomic multi-stream append, a global autoincrement
//! position that doubles as the change stream (the local DynamoDB Stream),
//! secondary indexes for view queries by partition, and a `sqlite3` shell to
//! look inside. redb would avoid the C build but needs every index by hand.

mod checkpointer;
mod database;
mod event_store;
mod notifier;
mod payments;
mod view_store;
mod write_back;
mod writer;

pub use database::Database;
pub use payments::{InvalidSetting, Latency, SimulatedProcessor, SimulatorSettings, failure_rate};

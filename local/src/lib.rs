//! The local runner: the whole system in one process, wired from
//! `template.yaml` exactly as SAM wires it on AWS.
//!
//! - HTTP: every `HttpApi` route, turned into API Gateway v2 events for the
//!   same handler functions, behind a JWT check like the authorizer's.
//! - The event table's stream: the embedded store's change stream, fed to
//!   the `publish-events` function in DynamoDB Streams records.
//! - The bus: every `EventBridgeRule` pattern, matched by a real
//!   event-pattern matcher; deliveries are durable, asynchronous, retried
//!   with backoff and dead-lettered when they keep failing.
//! - SNS: notifications are printed and kept.
//! - Schedules: every `Schedule` event's function runs at its `rate(...)`.

pub mod bus;
pub mod dispatcher;
pub mod event_pattern;
pub mod queue;
pub mod runner;
pub mod schedule;
pub mod server;
pub mod stream;
pub mod template;
pub mod token;

pub use runner::{Config, Running, start};

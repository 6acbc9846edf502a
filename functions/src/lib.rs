//! The food-delivery Lambda functions. Every handler is a plain async
//! function over the ports in `Deps` and an AWS-shaped input (an API Gateway
//! HTTP API request, an EventBridge event, a DynamoDB Streams batch), so it
//! runs the same on Lambda, in tests and in the local runner.

pub mod command;
pub mod deps;
pub mod embedded;
pub mod handlers;
pub mod http;
pub mod idempotency;
pub mod item;
pub mod lambda;
pub mod logging;
pub mod payments;
pub mod rebuild;
pub mod registry;

/// The ports and their contract suite, re-exported so handlers say `crate::ports`.
pub use ::ports;
pub use ::ports::contract;
pub use deps::{Deps, Settings};
pub use registry::{FUNCTIONS, Handler, HandlerError};

//! The food-delivery Lambda functions. Every handler is a plain async
//! function over the ports in `Deps` and an AWS-shaped input (an API Gateway
//! HTTP API request, an EventBridge event, a DynamoDB Streams batch), so it
//! runs the same on Lambda, in tests and in the local runner.

pub mod command;
pub mod contract;
pub mod deps;
pub mod embedded;
pub mod handlers;
pub mod http;
pub mod item;
pub mod lambda;
pub mod ports;
pub mod registry;

pub use deps::{Deps, Settings};
pub use registry::{FUNCTIONS, Handler, HandlerError};

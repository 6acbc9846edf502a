//! The production adapters of the ports, on the AWS SDK for Rust.
pub mod dynamodb;
pub mod environment;
pub mod eventbridge;
pub mod sns;

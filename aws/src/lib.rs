//! The production adapters of the ports, on the AWS SDK for Rust.
pub mod card_processor;
pub mod dynamodb;
pub mod environment;
pub mod eventbridge;
pub mod redrive;
pub mod sns;

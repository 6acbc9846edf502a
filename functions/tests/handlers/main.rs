//! The handlers, driven through their ports on the embedded adapters: one
//! test binary, so the workspace links the AWS SDK into as few tests as it can.

mod support;

mod bad_input;
mod catalog;
mod contract;
mod database;
mod delivery;
mod faults;
mod idempotency;
mod kitchen;
mod ordering;
mod payments;
mod policies;
mod projections;
mod publisher;
mod queries;
mod rebuild;
mod write_back;

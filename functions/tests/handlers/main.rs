//! The handlers, driven through their ports on the embedded adapters: one
//! test binary, so the workspace links the AWS SDK into as few tests as it can.

mod support;

mod catalog;
mod contract;
mod delivery;
mod kitchen;
mod ordering;
mod policies;
mod projections;
mod publisher;
mod queries;

//! Resilience around the card processor: the circuit breaker every gateway
//! is wrapped in, and where its settings come from. The gateways themselves
//! are adapters: the simulator in `embedded`, the HTTP card processor in
//! `aws-adapters`.

pub mod breaker;

pub use breaker::{Breaker, BreakerSettings, CircuitBreaker, Clock, Health, State, SystemClock, Ticket};

use std::time::Duration;

/// Which charges `reconcile-payments` holds against the stored orders.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconcileSettings {
    /// How old a charge must be before it may be refunded for want of an
    /// order: longer than place-order can run (Lambda stops it after 10 s),
    /// so an order still being stored is never taken for a lost one.
    pub grace: Duration,
    /// How far back each run looks. Runs are 5 minutes apart, so a charge is
    /// checked many times; only an outage of the sweep longer than this
    /// leaves charges unchecked.
    pub window: Duration,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self { grace: Duration::from_secs(120), window: Duration::from_secs(6 * 3600) }
    }
}

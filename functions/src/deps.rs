use crate::embedded::Database;
use crate::ports::{EventBus, EventStore, Notifier, PaymentGateway, ViewStore};
use std::sync::Arc;

/// Everything a handler may touch outside its own memory. Built once per
/// process (per Lambda cold start) and shared by every invocation.
#[derive(Clone)]
pub struct Deps {
    pub events: Arc<dyn EventStore>,
    pub views: Arc<dyn ViewStore>,
    pub notifier: Arc<dyn Notifier>,
    pub payments: Arc<dyn PaymentGateway>,
    pub bus: Arc<dyn EventBus>,
    pub settings: Settings,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Write a snapshot whenever a stream crosses a multiple of this many events.
    pub snapshot_every: u64,
    /// How often a command is re-decided after losing an optimistic race.
    pub conflict_retries: u32,
    /// How often the publisher retries the entries the bus did not take.
    pub publish_retries: u32,
    /// How long Idempotency-Keys are remembered and claims held.
    pub idempotency: crate::idempotency::Policy,
    /// When reconciliation refunds a charge that has no order.
    pub reconcile: crate::payments::ReconcileSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            snapshot_every: 10,
            conflict_retries: 5,
            publish_retries: 3,
            idempotency: crate::idempotency::Policy::default(),
            reconcile: Default::default(),
        }
    }
}

impl Deps {
    /// Every store on one embedded database.
    pub fn embedded(database: Arc<Database>, payments: Arc<dyn PaymentGateway>, bus: Arc<dyn EventBus>) -> Deps {
        Deps { events: database.clone(), views: database.clone(), notifier: database, payments, bus, settings: Settings::default() }
    }
}

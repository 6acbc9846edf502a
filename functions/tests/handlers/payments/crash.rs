//! A crash between the charge and the store: place-order dies after the
//! processor charged and before the order was stored, so its compensating
//! refund never runs. `reconcile-payments` finds the charge and refunds it,
//! exactly once, and never touches a charge whose order exists.

use super::reconcile;
use crate::support::*;
use async_trait::async_trait;
use chrono::Utc;
use functions::ports::{AppendStream, EventStore, LoadedStream, PaymentError, PaymentGateway, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// An event store whose appends never finish: the process freezes there
/// until Lambda's timeout kills it.
struct DiesOnAppend(Arc<dyn EventStore>);

#[async_trait]
impl EventStore for DiesOnAppend {
    async fn load(&self, aggregate_type: &str, aggregate_id: &str) -> Result<LoadedStream, StoreError> {
        self.0.load(aggregate_type, aggregate_id).await
    }
    async fn append(&self, _streams: Vec<AppendStream>) -> Result<(), StoreError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn the_charge_of_an_order_lost_in_a_crash_is_refunded_exactly_once() {
    let mut world = World::new();
    let processor = Arc::new(CountingGateway::default());
    world.deps.payments = processor.clone();
    let store_id = world.register_store(OWNER, REGION).await;
    let kept = world.place_order(CUSTOMER, &store_id, &[("m1", 2)]).await;

    let healthy = world.deps.events.clone();
    world.deps.events = Arc::new(DiesOnAppend(healthy.clone()));
    let crashed =
        tokio::time::timeout(Duration::from_millis(300), world.send(order_request(OTHER_CUSTOMER, &store_id, &[("m3", 1)], "tok_visa")));
    assert!(crashed.await.is_err(), "the process died before answering");
    world.deps.events = healthy;

    let hour = chrono::Duration::hours(1);
    let charges = processor.inner.charges_between(Utc::now() - hour, Utc::now() + hour).await.expect("the ledger lists");
    assert_eq!(charges.len(), 2, "both customers were charged: {charges:?}");
    let lost = charges.iter().find(|charge| charge.order_id.0 != kept).expect("the lost order's charge");
    assert!(world.stream("Order", &lost.order_id.0).is_empty(), "its order was never stored");
    assert_eq!(processor.refund_calls(), 0, "and nothing refunded it");

    reconcile(&world).await.expect("reconciliation runs");
    assert_eq!(processor.inner.refund_count(), 0, "a charge younger than the grace period is left alone: its order may be on its way");

    world.deps.settings.reconcile.grace = Duration::ZERO;
    reconcile(&world).await.expect("reconciliation runs");
    assert!(processor.inner.is_refunded(&lost.charge_id), "the lost order's charge is refunded");
    reconcile(&world).await.expect("reconciliation runs again");
    assert_eq!(processor.inner.refund_count(), 1, "exactly one refund");
    assert_eq!(processor.refund_calls(), 1, "the second run asks for no refund at all");

    let kept_charge = world.stream("Payment", &kept)[0].payload()["chargeId"].as_str().expect("a charge id").to_owned();
    assert!(!processor.inner.is_refunded(&kept_charge), "a charge whose order exists is never refunded");
    assert_eq!(world.event_types("Payment", &kept), ["PaymentApproved"]);
    assert_eq!(world.order_view(CUSTOMER, &kept).await["status"], "placed", "its customer still has the order");
}

/// A gateway whose ledger cannot be read.
struct NoLedger(Arc<CountingGateway>);

#[async_trait]
impl PaymentGateway for NoLedger {
    async fn charge(&self, request: &functions::ports::ChargeRequest) -> Result<functions::ports::ChargeReceipt, PaymentError> {
        self.0.charge(request).await
    }
    async fn refund(&self, charge_id: &str, amount: domain::Money) -> Result<(), PaymentError> {
        self.0.refund(charge_id, amount).await
    }
    async fn charges_between(
        &self,
        _from: chrono::DateTime<Utc>,
        _until: chrono::DateTime<Utc>,
    ) -> Result<Vec<functions::ports::ChargeRecord>, PaymentError> {
        Err(PaymentError::Unavailable("the processor is down".into()))
    }
}

#[tokio::test]
async fn a_run_that_cannot_read_the_processor_fails_so_it_is_noticed_and_retried() {
    let mut world = World::new();
    world.deps.payments = Arc::new(NoLedger(Arc::new(CountingGateway::default())));
    let failed = reconcile(&world).await;
    assert!(
        matches!(failed, Err(functions::registry::HandlerError::Payment(PaymentError::Unavailable(_)))),
        "the failure reaches Lambda: {failed:?}"
    );
}

//! A policy failing in the middle of a batch of deliveries, and the whole
//! batch delivered again (a redrive, a replay, a retried Lambda batch): the
//! customer is told each status once and refunded once.

use super::figure;
use super::injectors::{Failure, FaultyNotifier, FaultyStore};
use crate::support::*;
use functions::ports::{NotifyError, StoreError};
use functions::registry::HandlerError;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The six status changes of a delivered order, as they were stored.
async fn delivered_order_events() -> (String, Vec<domain::Envelope>) {
    let source = World::new();
    let (_, order_id) = source.order_at("delivered").await;
    let events = source.stream("Order", &order_id);
    assert_eq!(events.len(), 6, "placed, accepted, cooking, cooked, picked up, delivered");
    (order_id, events)
}

#[tokio::test]
async fn notify_customer_failing_on_the_third_of_six_tells_each_status_once() {
    let (_, events) = delivered_order_events().await;
    for failure in [Failure::BeforeSending, Failure::AfterSending] {
        let mut world = World::new();
        let notifier = FaultyNotifier::around(world.deps.notifier.clone(), 3, failure);
        world.deps.notifier = notifier.clone();

        let mut outcomes = vec![];
        for event in &events {
            outcomes.push(world.deliver("notify-customer", event).await);
        }
        let failed: Vec<usize> = outcomes.iter().enumerate().filter(|(_, o)| o.is_err()).map(|(i, _)| i).collect();
        assert_eq!(failed, [2], "{failure:?}: the third delivery fails and goes back to Lambda");
        assert!(matches!(outcomes[2], Err(HandlerError::Notify(NotifyError::Unavailable(_)))), "{failure:?}: {:?}", outcomes[2]);
        let told_before = world.told(CUSTOMER).len();
        assert_eq!(told_before, if failure == Failure::BeforeSending { 5 } else { 6 }, "{failure:?}: what went out before the retry");

        for event in &events {
            world.deliver("notify-customer", event).await.expect("the redelivered batch succeeds");
        }
        assert_eq!(
            world.told(CUSTOMER),
            ["placed", "accepted", "cooking", "cooked", "picked-up", "delivered"],
            "{failure:?}: one notification per status change, in order"
        );
        let sent = world.database.notifications(CUSTOMER).unwrap();
        assert_eq!(sent.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), events.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>());
        let duplicates = notifier.duplicates.load(Ordering::SeqCst);
        assert_eq!(duplicates, 12 - 6 - usize::from(failure == Failure::BeforeSending), "{failure:?}: every repeat recognised");
        figure(
            "notifier failing mid-batch",
            format!("{failure:?}: {} calls, {duplicates} repeats suppressed, 6 notifications", notifier.calls.load(Ordering::SeqCst)),
        );
    }
}

/// Six cancelled orders; the processor refunds the third, then recording the
/// refund is throttled. The whole batch is delivered again: each order is
/// refunded once, at the processor and in its history.
#[tokio::test]
async fn a_refund_recorded_after_the_processor_refunded_is_not_refunded_twice() {
    let mut world = World::new();
    let counting = Arc::new(CountingGateway::default());
    world.deps.payments = counting.clone();
    let store_id = world.register_store(OWNER, REGION).await;
    let mut orders = vec![];
    for _ in 0..6 {
        orders.push(world.place_order(CUSTOMER, &store_id, &[("m1", 1)]).await);
    }
    // Cancelled without settling: the refunds are this test's to deliver.
    let mut cancellations = vec![];
    for order_id in orders {
        world.send(Req::post("/orders/{orderId}/cancel").path("orderId", &order_id).customer(CUSTOMER)).await.expect(200);
        let cancelled = world.last_event("Order", &order_id, "OrderCancelled");
        cancellations.push((order_id, cancelled));
    }
    let store = FaultyStore::around(world.deps.events.clone());
    store.only("Payment");
    world.deps.events = store.clone();

    let mut outcomes = vec![];
    for (index, (_, cancelled)) in cancellations.iter().enumerate() {
        if index == 2 {
            store.throttle_appends(1);
        }
        outcomes.push(world.deliver("refund-payment", cancelled).await);
    }
    assert!(
        matches!(outcomes[2], Err(HandlerError::Command(functions::command::CommandError::Store(StoreError::Unavailable(_))))),
        "recording the third refund failed: {:?}",
        outcomes[2]
    );
    assert_eq!(outcomes.iter().filter(|o| o.is_err()).count(), 1);
    let (third, _) = &cancellations[2];
    assert_eq!(world.event_types("Payment", third), ["PaymentApproved"], "the failed record stored nothing");
    let charge_id = world.stream("Payment", third)[0].payload()["chargeId"].as_str().unwrap().to_owned();
    assert!(counting.inner.is_refunded(&charge_id), "but the processor did refund");

    for (_, cancelled) in &cancellations {
        world.deliver("refund-payment", cancelled).await.expect("the redelivered batch succeeds");
    }
    for (order_id, _) in &cancellations {
        assert_eq!(world.event_types("Payment", order_id), ["PaymentApproved", "PaymentRefunded"], "{order_id}: one refund recorded");
    }
    assert_eq!(counting.inner.refund_count(), 6, "six charges refunded, each once");
    assert_eq!(counting.refund_calls(), 7, "the processor was asked again only for the refund that was not recorded");
    world.settle().await;
    for (order_id, _) in &cancellations {
        let seen = world.order_view(CUSTOMER, order_id).await;
        assert_eq!((seen["status"].as_str(), seen["refund"]["amount"].as_u64()), (Some("cancelled"), Some(900)), "{order_id}");
    }
    let told = world.told(CUSTOMER);
    assert_eq!(told.iter().filter(|s| *s == "cancelled").count(), 6, "one cancellation notice per order: {told:?}");
    figure(
        "refund failing mid-batch",
        "6 cancellations, 1 record throttled after the processor refunded, 7 processor calls, 6 refunds".into(),
    );
}

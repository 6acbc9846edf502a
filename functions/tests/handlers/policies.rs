//! The policy functions, fed EventBridge events as their rules deliver them:
//! at least once and in any order. `refund-payment`, `dispatch-delivery`,
//! `track-delivery`, `notify-customer`.

use crate::support::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{Envelope, Money};
use functions::ports::{ChargeReceipt, ChargeRecord, ChargeRequest, PaymentError, PaymentGateway};
use functions::registry::HandlerError;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The routes and rules the tests use are the template's.
#[test]
fn the_test_wiring_is_the_templates() {
    let wiring = template_wiring();
    let routes: BTreeSet<(String, String)> = wiring.routes.into_iter().collect();
    let ours: BTreeSet<(String, String)> = ROUTES.iter().map(|(k, f)| (k.to_string(), f.to_string())).collect();
    assert_eq!(ours, routes, "ROUTES in tests/support must be the template's HttpApi events");

    type Pattern = BTreeSet<(String, BTreeSet<String>)>;
    let rules: BTreeSet<(String, Pattern)> = wiring
        .rules
        .into_iter()
        .map(|(f, alternatives)| (f, alternatives.into_iter().map(|(s, d)| (s, d.into_iter().collect())).collect()))
        .collect();
    let ours: BTreeSet<(String, Pattern)> = RULES
        .iter()
        .map(|rule| {
            let pattern = rule.pattern.iter().map(|(s, d)| (s.to_string(), d.iter().map(|t| t.to_string()).collect())).collect();
            (rule.function.to_owned(), pattern)
        })
        .collect();
    assert_eq!(ours, rules, "RULES in tests/support must be the template's EventBridge patterns");
    let by_hand = functions::FUNCTIONS
        .iter()
        .filter(|name| matches!(functions::registry::handler(name), Some(functions::registry::Handler::Invoke(_))))
        .count();
    assert_eq!(by_hand, 2, "rebuild-views and redrive-dead-letters");
    assert_eq!(
        rules.len() + 1 + wiring.schedules.len() + ROUTES.iter().map(|(_, f)| f).collect::<BTreeSet<_>>().len() + by_hand,
        functions::FUNCTIONS.len(),
        "every function is wired once (the publisher by the stream, reconcile-payments by its schedule, the recovery functions by \
         nothing: they are invoked by hand)"
    );
}

// ============================================================ refund-payment

#[tokio::test]
async fn a_refund_delivered_twice_refunds_once() {
    let mut world = World::new();
    let counting = Arc::new(CountingGateway::default());
    world.deps.payments = counting.clone();
    let store_id = world.register_store(OWNER, REGION).await;
    let order_id = world.place_order(CUSTOMER, &store_id, &[("m1", 1)]).await;
    world.send(Req::post("/orders/{orderId}/cancel").path("orderId", &order_id).customer(CUSTOMER)).await.expect(200);
    let cancelled = world.last_event("Order", &order_id, "OrderCancelled");

    world.deliver("refund-payment", &cancelled).await.expect("the first delivery refunds");
    world.deliver("refund-payment", &cancelled).await.expect("the second delivery is no error");
    assert_eq!(world.event_types("Payment", &order_id), ["PaymentApproved", "PaymentRefunded"], "one PaymentRefunded");
    assert_eq!(counting.refund_calls(), 1, "the processor is asked once");
    let charge_id = world.stream("Payment", &order_id)[0].payload()["chargeId"].as_str().unwrap().to_owned();
    assert!(counting.inner.is_refunded(&charge_id));
    assert_eq!(counting.inner.refund_count(), 1);
}

/// Refuses the next refund, as a processor having a bad minute would.
struct FlakyRefunds {
    inner: Arc<CountingGateway>,
    fail_next: AtomicBool,
}

#[async_trait]
impl PaymentGateway for FlakyRefunds {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeReceipt, PaymentError> {
        self.inner.charge(request).await
    }
    async fn refund(&self, charge_id: &str, amount: Money) -> Result<(), PaymentError> {
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return Err(PaymentError::Unavailable("timeout".into()));
        }
        self.inner.refund(charge_id, amount).await
    }
    async fn charges_between(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<ChargeRecord>, PaymentError> {
        self.inner.charges_between(from, until).await
    }
}

#[tokio::test]
async fn a_refund_the_processor_fails_is_retried_and_recorded_only_once_done() {
    let mut world = World::new();
    let counting = Arc::new(CountingGateway::default());
    world.deps.payments = Arc::new(FlakyRefunds { inner: counting.clone(), fail_next: AtomicBool::new(true) });
    let store_id = world.register_store(OWNER, REGION).await;
    let order_id = world.place_order(CUSTOMER, &store_id, &[("m1", 1)]).await;
    let reject = Req::post("/stores/{storeId}/orders/{orderId}/reject").path("storeId", &store_id).path("orderId", &order_id);
    world.send(reject.owner(OWNER).json(json!({ "reason": "closed early" }))).await.expect(200);
    let rejected = world.last_event("Order", &order_id, "OrderRejected");

    let failed = world.deliver("refund-payment", &rejected).await;
    assert!(matches!(failed, Err(HandlerError::Payment(PaymentError::Unavailable(_)))), "the failure goes back to Lambda: {failed:?}");
    assert_eq!(world.event_types("Payment", &order_id), ["PaymentApproved"], "no refund is recorded that did not happen");
    world.deliver("refund-payment", &rejected).await.expect("the retry refunds");
    assert_eq!(world.event_types("Payment", &order_id), ["PaymentApproved", "PaymentRefunded"]);
    assert_eq!(counting.inner.refund_count(), 1);
}

#[tokio::test]
async fn events_that_are_no_refund_refund_nothing() {
    let world = World::new();
    let (_, order_id) = world.order_at("accepted").await;
    for event in world.stream("Order", &order_id) {
        world.deliver("refund-payment", &event).await.expect("an event the policy ignores is no error");
    }
    assert_eq!(world.event_types("Payment", &order_id), ["PaymentApproved"]);
    assert_eq!(world.processor.refund_count(), 0);
}

// ========================================================= dispatch-delivery

/// The order's events as stored, without the policies having seen them.
async fn cooked_but_undispatched(world: &World) -> (String, Envelope, Envelope) {
    let store_id = world.register_store(OWNER, REGION).await;
    let order_id = world.place_order(CUSTOMER, &store_id, &[("m1", 1)]).await;
    for route in [
        "/stores/{storeId}/orders/{orderId}/accept",
        "/stores/{storeId}/orders/{orderId}/start-cooking",
        "/stores/{storeId}/orders/{orderId}/finish-cooking",
    ] {
        world.send(Req::post(route).path("storeId", &store_id).path("orderId", &order_id).owner(OWNER)).await.expect(200);
    }
    let started = world.last_event("Order", &order_id, "CookingStarted");
    let finished = world.last_event("Order", &order_id, "CookingFinished");
    (order_id, started, finished)
}

#[tokio::test]
async fn dispatch_converges_whatever_the_order_and_number_of_deliveries() {
    let world = World::new();
    let (order_id, started, finished) = cooked_but_undispatched(&world).await;
    world.deliver("dispatch-delivery", &finished).await.unwrap();
    assert_eq!(world.event_types("Delivery", &order_id), ["DeliveryOpened", "FoodReady"], "an early 'finished' opens the delivery ready");
    world.deliver("dispatch-delivery", &started).await.unwrap();
    world.deliver("dispatch-delivery", &finished).await.unwrap();
    world.deliver("dispatch-delivery", &started).await.unwrap();
    assert_eq!(world.event_types("Delivery", &order_id), ["DeliveryOpened", "FoodReady"], "late and repeated events change nothing");

    let opened = world.last_event("Delivery", &order_id, "DeliveryOpened");
    assert_eq!(opened.correlation_id, order_id);
    assert_eq!(opened.causation_id, format!("dispatch-delivery/{}", finished.event_id), "caused by the event, not a request");
    assert_eq!(opened.payload()["details"]["address"], ADDRESS);
    world.settle().await;
    world.ride(RIDER, &order_id, "pick").await.expect(200);
}

// ============================================================ track-delivery

#[tokio::test]
async fn tracking_converges_whatever_the_order_and_number_of_deliveries() {
    let world = World::new();
    let (_, order_id) = world.order_at("cooked").await;
    // The rider picks up and delivers; the policy has not seen either yet.
    world.send(Req::post("/deliveries/{orderId}/pick").path("orderId", &order_id).rider(RIDER)).await.expect(200);
    world.send(Req::post("/deliveries/{orderId}/complete").path("orderId", &order_id).rider(RIDER)).await.expect(200);
    let picked = world.last_event("Delivery", &order_id, "DeliveryPicked");
    let completed = world.last_event("Delivery", &order_id, "DeliveryCompleted");

    world.deliver("track-delivery", &completed).await.unwrap();
    let expected = ["OrderPlaced", "OrderAccepted", "CookingStarted", "CookingFinished", "OrderPickedUp", "OrderDelivered"];
    assert_eq!(world.event_types("Order", &order_id), expected, "a completion implies the pick-up it followed");
    world.deliver("track-delivery", &picked).await.unwrap();
    world.deliver("track-delivery", &completed).await.unwrap();
    assert_eq!(world.event_types("Order", &order_id), expected, "late and repeated events change nothing");
    assert_eq!(world.last_event("Order", &order_id, "OrderDelivered").payload()["riderId"], RIDER);
}

#[tokio::test]
async fn an_accident_delivered_twice_cancels_and_refunds_once() {
    let world = World::new();
    let (_, order_id) = world.order_at("picked-up").await;
    let accident = Req::post("/deliveries/{orderId}/accident").path("orderId", &order_id);
    world.send(accident.rider(RIDER).json(json!({ "description": "skidded on ice" }))).await.expect(200);
    let reported = world.last_event("Delivery", &order_id, "AccidentReported");
    world.deliver("track-delivery", &reported).await.unwrap();
    world.deliver("track-delivery", &reported).await.unwrap();
    assert_eq!(world.event_types("Order", &order_id).iter().filter(|t| *t == "OrderCancelled").count(), 1);
    let cancelled = world.last_event("Order", &order_id, "OrderCancelled");
    world.deliver("refund-payment", &cancelled).await.unwrap();
    world.deliver("refund-payment", &cancelled).await.unwrap();
    assert_eq!(world.last_event("Payment", &order_id, "PaymentRefunded").payload()["reason"], "rider-accident");
    assert_eq!(world.processor.refund_count(), 1);
}

// =========================================================== notify-customer

#[tokio::test]
async fn a_notification_delivered_twice_reaches_the_customer_once() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let reply = world.send(order_request(CUSTOMER, &store_id, &[("m1", 1)], "tok_visa")).await;
    let order_id = reply.expect(201)["orderId"].as_str().unwrap().to_owned();
    let placed = world.last_event("Order", &order_id, "OrderPlaced");

    world.deliver("notify-customer", &placed).await.unwrap();
    world.deliver("notify-customer", &placed).await.unwrap();
    let sent = world.database.notifications(CUSTOMER).unwrap();
    assert_eq!(sent.len(), 1, "one message for one event");
    assert_eq!(sent[0].id, placed.event_id);
    assert_eq!(sent[0].order_id.0, order_id);
    assert_eq!(sent[0].message, "Your order is placed and 9.00 is paid. Waiting for the store to accept it.");
    assert!(world.database.notifications(OTHER_CUSTOMER).unwrap().is_empty(), "nobody else is told");
}

// ============================================================ broken events

/// An event a policy cannot read fails, so Lambda retries it and finally
/// parks it in the dead-letter queue: never silently dropped.
#[tokio::test]
async fn an_unreadable_event_fails_instead_of_vanishing() {
    let world = World::new();
    let (_, order_id) = world.order_at("placed").await;
    let placed = world.last_event("Order", &order_id, "OrderPlaced");
    for function in ["refund-payment", "dispatch-delivery", "track-delivery", "notify-customer"] {
        let not_an_envelope = eventbridge_json("food-delivery.ordering", "OrderPlaced", json!({ "hello": "world" }));
        let outcome = world.deliver_json(function, not_an_envelope).await;
        assert!(matches!(outcome, Err(HandlerError::BadEvent(_))), "{function}: {outcome:?}");

        let mut future = placed.clone();
        future.event_version = 99;
        let outcome = world.deliver(function, &future).await;
        assert!(matches!(outcome, Err(HandlerError::Decode(_))), "{function} must not guess at a newer schema: {outcome:?}");

        let mut malformed = placed.clone();
        malformed.data = serde_json::value::to_raw_value(&json!({ "customerId": 7 })).unwrap();
        let outcome = world.deliver(function, &malformed).await;
        assert!(matches!(outcome, Err(HandlerError::Decode(_))), "{function}: {outcome:?}");
    }
    assert_eq!(world.told(CUSTOMER), ["placed"], "nothing more was sent on a broken event");
    assert_eq!(world.event_types("Payment", &order_id), ["PaymentApproved"], "nor refunded");
    assert!(world.stream("Delivery", &order_id).is_empty(), "nor dispatched");
}

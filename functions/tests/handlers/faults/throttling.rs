//! DynamoDB throttling (ProvisionedThroughputExceeded, ThrottlingException,
//! RequestLimitExceeded: `StoreError::Unavailable`, see
//! aws/src/dynamodb/error.rs). A command answers 503 with Retry-After and
//! stores nothing; a policy or projection fails its delivery so it is
//! retried, and applies once when it goes through.

use super::figure;
use super::injectors::{FaultyStore, FaultyViews};
use crate::support::*;
use functions::command::CommandError;
use functions::ports::{StoreError, ViewError};
use functions::registry::HandlerError;

fn accept(store_id: &str, order_id: &str) -> Req {
    Req::post("/stores/{storeId}/orders/{orderId}/accept").path("storeId", store_id).path("orderId", order_id).owner(OWNER)
}

#[tokio::test]
async fn a_throttled_command_is_503_with_retry_after_and_its_retry_succeeds_once() {
    let mut world = World::new();
    let (store_id, order_id) = world.order_at("placed").await;
    let store = FaultyStore::around(world.deps.events.clone());
    world.deps.events = store.clone();

    store.throttle_appends(2);
    for attempt in 1..=2 {
        let reply = world.send(accept(&store_id, &order_id)).await;
        reply.problem(503, "try again");
        assert_eq!(reply.header("retry-after"), Some("1"), "attempt {attempt}: the client is told when to retry");
        assert_eq!(world.event_types("Order", &order_id), ["OrderPlaced"], "attempt {attempt}: nothing stored");
    }
    store.throttle_loads(1);
    let reply = world.send(accept(&store_id, &order_id)).await;
    reply.problem(503, "try again");
    assert_eq!(reply.header("retry-after"), Some("1"), "a throttled read is a 503 too");

    assert_eq!(world.send(accept(&store_id, &order_id)).await.expect(200)["status"], "accepted", "the retry goes through");
    world.send(accept(&store_id, &order_id)).await.problem(409, "accepted");
    assert_eq!(world.event_types("Order", &order_id), ["OrderPlaced", "OrderAccepted"], "accepted once");
    world.settle().await;
    assert_eq!(world.told(CUSTOMER), ["placed", "accepted"], "told once");
    assert_eq!(world.order_view(CUSTOMER, &order_id).await["status"], "accepted");
    figure("throttled command", format!("{} throttles injected, 3 answers 503 + Retry-After, 1 success, 1 event", store.injected()));
}

#[tokio::test]
async fn a_throttled_policy_fails_its_delivery_and_applies_once_when_redelivered() {
    let mut world = World::new();
    let (store_id, order_id) = world.order_at("accepted").await;
    world
        .send(
            Req::post("/stores/{storeId}/orders/{orderId}/start-cooking")
                .path("storeId", &store_id)
                .path("orderId", &order_id)
                .owner(OWNER),
        )
        .await
        .expect(200);
    let started = world.last_event("Order", &order_id, "CookingStarted");
    let store = FaultyStore::around(world.deps.events.clone());
    world.deps.events = store.clone();

    store.throttle_appends(2);
    for attempt in 1..=2 {
        let outcome = world.deliver("dispatch-delivery", &started).await;
        assert!(
            matches!(outcome, Err(HandlerError::Command(CommandError::Store(StoreError::Unavailable(_))))),
            "attempt {attempt}: the delivery fails so Lambda retries it: {outcome:?}"
        );
        assert!(world.stream("Delivery", &order_id).is_empty(), "attempt {attempt}: nothing dispatched");
    }
    world.deliver("dispatch-delivery", &started).await.expect("the third attempt dispatches");
    world.deliver("dispatch-delivery", &started).await.expect("a late copy is no error");
    assert_eq!(world.event_types("Delivery", &order_id), ["DeliveryOpened"], "opened once");
    world.settle().await;
    let board = world.send(Req::get("/deliveries").query("region", REGION).rider(RIDER)).await;
    let offered: Vec<&str> = board.expect(200)["deliveries"].as_array().unwrap().iter().filter_map(|d| d["orderId"].as_str()).collect();
    assert_eq!(offered, [order_id.as_str()], "offered to riders once");
    figure("throttled policy", format!("{} throttles injected, 2 failed deliveries, 1 delivery opened", store.injected()));
}

#[tokio::test]
async fn a_throttled_projection_fails_its_delivery_and_applies_once_when_redelivered() {
    let mut world = World::new();
    let (store_id, order_id) = world.order_at("placed").await;
    world.send(accept(&store_id, &order_id)).await.expect(200);
    let accepted = world.last_event("Order", &order_id, "OrderAccepted");
    let views = FaultyViews::around(world.deps.views.clone());
    world.deps.views = views.clone();
    let revision = |world: &World| {
        let views = world.deps.views.clone();
        let key = order_id.clone();
        async move { views.get("order-status", &key).await.unwrap().expect("the order's status document").revision }
    };
    let before = revision(&world).await;

    views.throttle_gets(1);
    let outcome = world.deliver("project-order-status", &accepted).await;
    assert!(matches!(outcome, Err(HandlerError::View(ViewError::Unavailable(_)))), "a throttled read fails the delivery: {outcome:?}");
    views.throttle_puts(1);
    let outcome = world.deliver("project-order-status", &accepted).await;
    assert!(matches!(outcome, Err(HandlerError::View(ViewError::Unavailable(_)))), "a throttled write fails the delivery: {outcome:?}");
    assert_eq!(revision(&world).await, before, "nothing written");
    assert_eq!(world.order_view(CUSTOMER, &order_id).await["status"], "placed");

    world.deliver("project-order-status", &accepted).await.expect("the retry applies");
    world.deliver("project-order-status", &accepted).await.expect("a late copy is no error");
    assert_eq!(revision(&world).await, before + 1, "applied exactly once");
    let seen = world.order_view(CUSTOMER, &order_id).await;
    assert_eq!(seen["status"], "accepted");
    let timeline: Vec<&str> = seen["timeline"].as_array().unwrap().iter().filter_map(|t| t["status"].as_str()).collect();
    assert_eq!(timeline, ["placed", "accepted"], "one timeline entry per status");
    figure(
        "throttled projection",
        format!("{} throttles injected, 2 failed deliveries, 1 write", views.injected.load(std::sync::atomic::Ordering::SeqCst)),
    );
}

//! Customers place orders, paying up front, and may cancel them until
//! cooking starts: `place-order`, `cancel-order`.

use crate::support::*;
use async_trait::async_trait;
use domain::Envelope;
use functions::ports::{AppendStream, EventStore, LoadedStream, StoreError};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Barrier;

fn order_body(store_id: &str) -> Value {
    json!({
        "storeId": store_id,
        "items": [{ "menuId": "m1", "quantity": 2 }, { "menuId": "m3", "quantity": 1 }],
        "region": REGION,
        "address": ADDRESS,
        "paymentToken": "tok_visa",
    })
}

fn order_events(world: &World) -> Vec<Envelope> {
    world.events().into_iter().filter(|e| e.aggregate_type == "Order" || e.aggregate_type == "Payment").collect()
}

// =============================================================== place-order

#[tokio::test]
async fn a_customer_places_an_order_and_pays_for_it() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let reply = world.send(Req::post("/orders").customer(CUSTOMER).json(order_body(&store_id))).await;
    let body = reply.expect(201).clone();
    let order_id = body["orderId"].as_str().unwrap().to_owned();
    assert_eq!(reply.header("location"), Some(format!("/orders/{order_id}").as_str()));
    assert_eq!(body, json!({ "orderId": order_id, "status": "placed", "total": 2050 }), "2 × 9.00 + 2.50, priced by the menu");
    assert_eq!(world.processor.charge_count(), 1, "the customer is charged once");

    let payment = world.stream("Payment", &order_id);
    let order = world.stream("Order", &order_id);
    assert_eq!(payment.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(), ["PaymentApproved"]);
    assert_eq!(order.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(), ["OrderPlaced"]);
    let charge_id = payment[0].payload()["chargeId"].as_str().unwrap().to_owned();
    assert!(charge_id.starts_with("ch_"), "the processor's charge id is recorded: {charge_id}");
    assert_eq!(order[0].payload()["chargeId"], charge_id, "the order names the charge it was paid with");
    assert_eq!(payment[0].payload()["amount"], 2050);
    assert_eq!(order[0].payload()["customerId"], CUSTOMER);
    for event in payment.iter().chain(&order) {
        assert_eq!(event.correlation_id, order_id, "everything the order causes carries its id");
        assert!(event.causation_id.starts_with("request/req-"), "caused by the request: {}", event.causation_id);
    }

    world.settle().await;
    let seen = world.order_view(CUSTOMER, &order_id).await;
    assert_eq!(seen["status"], "placed");
    assert_eq!(seen["total"], 2050);
    assert_eq!(seen["address"], ADDRESS);
    assert_eq!(
        seen["lines"],
        json!([
            { "menuId": "m1", "name": "Margherita", "unitPrice": 900, "quantity": 2 },
            { "menuId": "m3", "name": "Espresso", "unitPrice": 250, "quantity": 1 },
        ])
    );
    assert_eq!(world.told(CUSTOMER), ["placed"], "the customer is told the order is placed");
}

/// Order ids start with the time they were made, with or without an
/// Idempotency-Key: the embedded store keeps the orders in flight side by side
/// in its indexes because of it.
#[tokio::test]
async fn order_ids_sort_in_the_order_the_orders_were_placed() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let mut ids = Vec::new();
    for attempt in 0..6 {
        let mut request = Req::post("/orders").customer(CUSTOMER).json(order_body(&store_id));
        if attempt % 2 == 1 {
            request = request.header("Idempotency-Key", &format!("attempt-{attempt}"));
        }
        let reply = world.send(request).await;
        ids.push(reply.expect(201)["orderId"].as_str().unwrap().to_owned());
        // Version 7 UUIDs count milliseconds.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ids, "ids in the order the orders were placed");
    assert!(ids.iter().all(|id| id.len() == "order-".len() + 32), "{ids:?}");
}

#[tokio::test]
async fn repeated_items_are_merged_into_one_line() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let order_id = world.place_order(CUSTOMER, &store_id, &[("m2", 1), ("m2", 2)]).await;
    let seen = world.order_view(CUSTOMER, &order_id).await;
    assert_eq!(seen["lines"], json!([{ "menuId": "m2", "name": "Tiramisu", "unitPrice": 450, "quantity": 3 }]));
    assert_eq!(seen["total"], 1350);
}

#[tokio::test]
async fn a_declined_card_is_402_and_nothing_is_stored() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let before = world.events().len();
    let reply = world.send(order_request(CUSTOMER, &store_id, &[("m1", 1)], "tok_decline")).await;
    reply.problem(402, "declined");
    assert_eq!(world.events().len(), before, "no event is stored for a declined payment");
    assert_eq!(world.processor.charge_count(), 0, "nothing is charged");
    world.settle().await;
    let mine = world.send(Req::get("/orders").customer(CUSTOMER)).await;
    assert_eq!(mine.expect(200)["orders"], json!([]), "the customer has no order");
    assert!(world.told(CUSTOMER).is_empty(), "and is told nothing");
}

#[tokio::test]
async fn a_failing_processor_is_503_with_retry_after_and_nothing_is_stored() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let before = world.events().len();
    let reply = world.send(order_request(CUSTOMER, &store_id, &[("m1", 1)], "tok_error")).await;
    reply.problem(503, "nothing was charged");
    assert_eq!(reply.header("retry-after"), Some("5"), "the client is told when to try again");
    assert_eq!(world.events().len(), before, "no event is stored");
    assert_eq!(world.processor.charge_count(), 0, "nothing is charged");
}

#[tokio::test]
async fn a_malformed_order_is_refused_before_anyone_is_charged() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let send = |change: &dyn Fn(&mut Value)| {
        let mut body = order_body(&store_id);
        change(&mut body);
        world.send(Req::post("/orders").customer(CUSTOMER).json(body))
    };
    send(&|b| b["items"][0]["quantity"] = json!(-1)).await.problem(400, "invalid body");
    send(&|b| b["items"][0]["quantity"] = json!(0)).await.problem(400, "between 1 and 100");
    send(&|b| b["items"][0]["quantity"] = json!(101)).await.problem(400, "between 1 and 100");
    send(&|b| b["items"] = json!([{ "menuId": "m1", "quantity": 60 }, { "menuId": "m1", "quantity": 60 }]))
        .await
        .problem(400, "at most 100");
    send(&|b| b["items"] = json!([])).await.problem(400, "at least one item");
    send(&|b| b["items"][0]["menuId"] = json!("m99")).await.problem(400, "no menu item m99");
    send(&|b| b["items"][0]["price"] = json!(1)).await.problem(400, "unknown field `price`");
    send(&|b| b["total"] = json!(1)).await.problem(400, "unknown field `total`");
    send(&|b| b["region"] = json!("south")).await.problem(400, "does not deliver to region south");
    send(&|b| b["address"] = json!("   ")).await.problem(400, "address is required");
    send(&|b| b["address"] = json!("x".repeat(501))).await.problem(400, "at most 500");
    send(&|b| b["paymentToken"] = json!(" ")).await.problem(400, "paymentToken is required");
    send(&|b| {
        b.as_object_mut().unwrap().remove("paymentToken");
    })
    .await
    .problem(400, "missing field `paymentToken`");
    send(&|b| b["storeId"] = json!("store-nowhere")).await.problem(404, "store-nowhere");
    world.send(Req::post("/orders").customer(CUSTOMER).raw("application/json", "{\"storeId\": ")).await.problem(400, "invalid body");
    world
        .send(Req::post("/orders").customer(CUSTOMER).raw("text/plain", &order_body(&store_id).to_string()))
        .await
        .problem(415, "application/json");
    assert_eq!(world.processor.charge_count(), 0, "no refused order is charged");
    assert!(order_events(&world).is_empty(), "no order is stored");
}

#[tokio::test]
async fn only_a_signed_in_customer_places_orders() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    world.send(Req::post("/orders").json(order_body(&store_id))).await.problem(401, "bearer token");
    world.send(Req::post("/orders").owner(OWNER).json(order_body(&store_id))).await.problem(403, "only a customer");
    world.send(Req::post("/orders").rider(RIDER).json(order_body(&store_id))).await.problem(403, "only a customer");
    assert_eq!(world.processor.charge_count(), 0);
    assert!(order_events(&world).is_empty());
}

/// An event store whose every append fails: the order cannot be stored.
struct BrokenAppends(Arc<dyn EventStore>);

#[async_trait]
impl EventStore for BrokenAppends {
    async fn load(&self, aggregate_type: &str, aggregate_id: &str) -> Result<LoadedStream, StoreError> {
        self.0.load(aggregate_type, aggregate_id).await
    }
    async fn append(&self, _streams: Vec<AppendStream>) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("throttled".into()))
    }
}

#[tokio::test]
async fn a_charge_whose_order_cannot_be_stored_is_refunded_before_answering() {
    let mut world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    world.deps.events = Arc::new(BrokenAppends(world.deps.events.clone()));
    let reply = world.send(order_request(CUSTOMER, &store_id, &[("m1", 1)], "tok_visa")).await;
    reply.problem(503, "try again");
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(world.processor.charge_count(), 1, "the card was charged");
    assert_eq!(world.processor.refund_count(), 1, "and the charge returned: nobody pays for an order that does not exist");
    assert!(order_events(&world).is_empty());
}

// ============================================================== cancel-order

fn cancel(order_id: &str) -> Req {
    Req::post("/orders/{orderId}/cancel").path("orderId", order_id)
}

#[tokio::test]
async fn a_customer_cancels_and_gets_the_money_back_once() {
    let world = World::new();
    let (_, order_id) = world.order_at("accepted").await;
    let reply = world.send(cancel(&order_id).customer(CUSTOMER)).await;
    assert_eq!(reply.expect(200), &json!({ "orderId": order_id, "status": "cancelled" }));
    world.settle().await;

    let charge_id = world.stream("Payment", &order_id)[0].payload()["chargeId"].as_str().unwrap().to_owned();
    assert!(world.processor.is_refunded(&charge_id), "the charge is refunded");
    assert_eq!(world.processor.refund_count(), 1);
    let refunded = world.last_event("Payment", &order_id, "PaymentRefunded");
    assert_eq!(refunded.payload()["reason"], "customer-cancelled");
    assert_eq!(refunded.payload()["amount"], 2050);
    let seen = world.order_view(CUSTOMER, &order_id).await;
    assert_eq!(seen["status"], "cancelled");
    assert_eq!(seen["timeline"].as_array().unwrap().last().unwrap()["note"], "cancelled by the customer");
    assert_eq!(world.told(CUSTOMER), ["placed", "accepted", "cancelled"]);
}

#[tokio::test]
async fn a_placed_order_can_be_cancelled_too() {
    let world = World::new();
    let (_, order_id) = world.order_at("placed").await;
    world.send(cancel(&order_id).customer(CUSTOMER)).await.expect(200);
    world.settle().await;
    assert_eq!(world.processor.refund_count(), 1);
}

#[tokio::test]
async fn cancelling_after_cooking_started_is_409() {
    let world = World::new();
    let (_, order_id) = world.order_at("cooking").await;
    world.send(cancel(&order_id).customer(CUSTOMER)).await.problem(409, "cooking has started");
    world.settle().await;
    assert_eq!(world.order_view(CUSTOMER, &order_id).await["status"], "cooking", "the order keeps cooking");
    assert_eq!(world.processor.refund_count(), 0, "nothing is refunded");
}

#[tokio::test]
async fn only_the_orders_customer_cancels_it_and_only_once() {
    let world = World::new();
    let (_, order_id) = world.order_at("placed").await;
    world.send(cancel(&order_id).customer(OTHER_CUSTOMER)).await.problem(403, "only the customer who placed");
    world.send(cancel(&order_id).owner(OWNER)).await.problem(403, "only a customer");
    world.send(cancel(&order_id)).await.problem(401, "bearer token");
    world.send(cancel("order-nowhere").customer(CUSTOMER)).await.problem(404, "order not found");
    assert_eq!(world.event_types("Order", &order_id), ["OrderPlaced"], "none of those changed the order");

    world.send(cancel(&order_id).customer(CUSTOMER)).await.expect(200);
    world.send(cancel(&order_id).customer(CUSTOMER)).await.problem(409, "already cancelled");
    world.settle().await;
    assert_eq!(world.event_types("Payment", &order_id), ["PaymentApproved", "PaymentRefunded"], "one refund");
}

/// Holds the first two loads of an order until both have read it, so two
/// commands decide on the same version as two concurrent Lambdas can; counts
/// the appends that then lose the race.
struct Interleaving {
    inner: Arc<dyn EventStore>,
    paired: AtomicUsize,
    barrier: Barrier,
    conflicts: AtomicUsize,
}

#[async_trait]
impl EventStore for Interleaving {
    async fn load(&self, aggregate_type: &str, aggregate_id: &str) -> Result<LoadedStream, StoreError> {
        let loaded = self.inner.load(aggregate_type, aggregate_id).await;
        if aggregate_type == "Order" && self.paired.fetch_add(1, Ordering::SeqCst) < 2 {
            self.barrier.wait().await;
        }
        loaded
    }
    async fn append(&self, streams: Vec<AppendStream>) -> Result<(), StoreError> {
        let outcome = self.inner.append(streams).await;
        if let Err(StoreError::Conflict(_)) = outcome {
            self.conflicts.fetch_add(1, Ordering::SeqCst);
        }
        outcome
    }
}

/// The customer cancels while the kitchen starts cooking: both read the same
/// version, exactly one wins, the other is refused with a 409.
#[tokio::test]
async fn cancel_racing_start_cooking_has_exactly_one_winner() {
    let mut world = World::new();
    let (store_id, order_id) = world.order_at("accepted").await;
    let interleaving = Arc::new(Interleaving {
        inner: world.deps.events.clone(),
        paired: AtomicUsize::new(0),
        barrier: Barrier::new(2),
        conflicts: AtomicUsize::new(0),
    });
    world.deps.events = interleaving.clone();
    let start = Req::post("/stores/{storeId}/orders/{orderId}/start-cooking").path("storeId", &store_id).path("orderId", &order_id);
    let race = async { tokio::join!(world.send(cancel(&order_id).customer(CUSTOMER)), world.send(start.owner(OWNER))) };
    // Should a command never load the order, the barrier would wait forever.
    let (cancelled, cooking) = tokio::time::timeout(std::time::Duration::from_secs(10), race).await.expect("both commands finish");
    assert_eq!(interleaving.conflicts.load(Ordering::SeqCst), 1, "both decided on the same version and one append lost");
    let statuses = (cancelled.status, cooking.status);
    assert!(statuses == (200, 409) || statuses == (409, 200), "exactly one wins: {statuses:?}");
    let types = world.event_types("Order", &order_id);
    assert_eq!(types.len(), 3, "one more event, not two: {types:?}");
    let expected = if cancelled.status == 200 { "OrderCancelled" } else { "CookingStarted" };
    assert_eq!(types[2], expected, "the winner's event is stored");
    let loser = if cancelled.status == 409 { &cancelled } else { &cooking };
    loser.problem(409, if cancelled.status == 409 { "cooking has started" } else { "cancelled" });
}

// ================================================================= snapshots

/// With a snapshot every four events, an order's and its delivery's streams
/// load from a snapshot plus the tail, to exactly the full replay, and the
/// order keeps working on top of it.
#[tokio::test]
async fn an_order_loaded_from_its_snapshot_is_its_full_replay() {
    use domain::delivery::Delivery;
    use domain::ordering::Order;
    use domain::{Aggregate, Versioned};
    use functions::command::load;

    async fn same_as_replay<A: Aggregate>(world: &World, order_id: &str) -> Versioned<A> {
        let events: Vec<A::Event> = world.stream(A::TYPE, order_id).iter().map(|e| e.decode_as().unwrap()).collect();
        let loaded = load::<A>(world.deps.events.as_ref(), order_id).await.unwrap();
        assert_eq!(loaded, Versioned::<A>::replay(&events), "{} from snapshot + tail is its full replay", A::TYPE);
        loaded
    }

    let mut world = World::new();
    world.deps.settings.snapshot_every = 4;
    let (_, order_id) = world.order_at("picked-up").await;
    let order = world.deps.events.load("Order", &order_id).await.unwrap();
    assert_eq!(order.snapshot.map(|s| s.version), Some(4), "the order's snapshot is at version 4");
    assert_eq!(order.events.iter().map(|e| e.version).collect::<Vec<_>>(), [5]);
    let delivery = world.deps.events.load("Delivery", &order_id).await.unwrap();
    assert_eq!(delivery.snapshot.map(|s| s.version), None, "three delivery events: no snapshot yet");
    same_as_replay::<Order>(&world, &order_id).await;

    world.ride(RIDER, &order_id, "complete").await.expect(200);
    let delivery = world.deps.events.load("Delivery", &order_id).await.unwrap();
    assert_eq!(delivery.snapshot.map(|s| s.version), Some(4), "the delivery's snapshot is at version 4");
    assert!(delivery.events.is_empty());
    same_as_replay::<Delivery>(&world, &order_id).await;
    let order = same_as_replay::<Order>(&world, &order_id).await;
    assert_eq!(order.version, 6);
    assert_eq!(world.order_view(CUSTOMER, &order_id).await["status"], "delivered");
}

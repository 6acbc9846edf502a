//! The store's owner works an order: `accept-order`, `reject-order`,
//! `start-cooking`, `finish-cooking`.

use crate::support::*;
use serde_json::json;

fn step(route: &'static str, store_id: &str, order_id: &str) -> Req {
    Req::post(route).path("storeId", store_id).path("orderId", order_id)
}
const ACCEPT: &str = "/stores/{storeId}/orders/{orderId}/accept";
const REJECT: &str = "/stores/{storeId}/orders/{orderId}/reject";
const START: &str = "/stores/{storeId}/orders/{orderId}/start-cooking";
const FINISH: &str = "/stores/{storeId}/orders/{orderId}/finish-cooking";

async fn queue(world: &World, store_id: &str) -> Vec<(String, String)> {
    let reply = world.send(Req::get("/stores/{storeId}/orders").path("storeId", store_id).owner(OWNER)).await;
    reply.expect(200)["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|order| (order["orderId"].as_str().unwrap().to_owned(), order["status"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn the_owner_accepts_cooks_and_finishes_an_order() {
    let world = World::new();
    let (store_id, order_id) = world.order_at("placed").await;
    assert_eq!(queue(&world, &store_id).await, [(order_id.clone(), "placed".to_owned())], "the new order waits in the queue");

    let accepted = world.send(step(ACCEPT, &store_id, &order_id).owner(OWNER)).await;
    assert_eq!(accepted.expect(200), &json!({ "orderId": order_id, "status": "accepted" }));
    let cooking = world.send(step(START, &store_id, &order_id).owner(OWNER)).await;
    assert_eq!(cooking.expect(200)["status"], "cooking");
    world.settle().await;
    assert_eq!(queue(&world, &store_id).await, [(order_id.clone(), "cooking".to_owned())]);

    let cooked = world.send(step(FINISH, &store_id, &order_id).owner(OWNER)).await;
    assert_eq!(cooked.expect(200)["status"], "cooked");
    world.settle().await;
    assert_eq!(world.order_view(CUSTOMER, &order_id).await["status"], "cooked");
    assert_eq!(world.told(CUSTOMER), ["placed", "accepted", "cooking", "cooked"], "the customer hears of every step");
    assert_eq!(queue(&world, &store_id).await, [(order_id.clone(), "cooked".to_owned())], "cooked food waits for a rider");
    assert_eq!(world.event_types("Delivery", &order_id), ["DeliveryOpened", "FoodReady"], "the delivery is dispatched");
}

#[tokio::test]
async fn the_owner_rejects_an_order_and_the_customer_is_refunded() {
    let world = World::new();
    let (store_id, order_id) = world.order_at("placed").await;
    let reply = world.send(step(REJECT, &store_id, &order_id).owner(OWNER).json(json!({ "reason": "  out of flour " }))).await;
    assert_eq!(reply.expect(200)["status"], "rejected");
    world.settle().await;

    assert_eq!(world.processor.refund_count(), 1, "the charge is refunded");
    assert_eq!(world.last_event("Payment", &order_id, "PaymentRefunded").payload()["reason"], "store-rejected");
    let seen = world.order_view(CUSTOMER, &order_id).await;
    assert_eq!(seen["status"], "rejected");
    assert_eq!(seen["timeline"][1]["note"], "out of flour", "the customer sees why");
    assert_eq!(world.told(CUSTOMER), ["placed", "rejected"]);
    assert!(queue(&world, &store_id).await.is_empty(), "a rejected order leaves the active queue");
}

#[tokio::test]
async fn a_rejection_needs_a_reason() {
    let world = World::new();
    let (store_id, order_id) = world.order_at("placed").await;
    let reject = || step(REJECT, &store_id, &order_id).owner(OWNER);
    world.send(reject().json(json!({ "reason": "  " }))).await.problem(400, "needs a reason");
    world.send(reject().json(json!({ "reason": "x".repeat(501) }))).await.problem(400, "at most 500");
    world.send(reject().json(json!({}))).await.problem(400, "missing field `reason`");
    world.send(reject().json(json!({ "reason": "busy", "refund": false }))).await.problem(400, "unknown field `refund`");
    world.send(reject().raw("text/plain", "busy")).await.problem(415, "application/json");
    world.send(reject().raw("application/json", "")).await.problem(400, "a JSON body is required");
    assert_eq!(world.event_types("Order", &order_id), ["OrderPlaced"], "the order is untouched");
}

#[tokio::test]
async fn kitchen_steps_out_of_turn_are_409() {
    let world = World::new();
    let (store_id, order_id) = world.order_at("placed").await;
    let send = |route| world.send(step(route, &store_id, &order_id).owner(OWNER));
    send(START).await.problem(409, "cannot start cooking an order that is placed (it must be accepted)");
    send(FINISH).await.problem(409, "cannot finish cooking an order that is placed");
    send(ACCEPT).await.expect(200);
    send(ACCEPT).await.problem(409, "cannot accept an order that is accepted");
    world
        .send(step(REJECT, &store_id, &order_id).owner(OWNER).json(json!({ "reason": "changed my mind" })))
        .await
        .problem(409, "cannot reject an order that is accepted");
    send(START).await.expect(200);
    send(START).await.problem(409, "cannot start cooking an order that is cooking");
    assert_eq!(world.event_types("Order", &order_id), ["OrderPlaced", "OrderAccepted", "CookingStarted"]);
}

#[tokio::test]
async fn a_cancelled_order_cannot_be_accepted() {
    let world = World::new();
    let (store_id, order_id) = world.order_at("placed").await;
    world.send(Req::post("/orders/{orderId}/cancel").path("orderId", &order_id).customer(CUSTOMER)).await.expect(200);
    world.send(step(ACCEPT, &store_id, &order_id).owner(OWNER)).await.problem(409, "cancelled");
}

#[tokio::test]
async fn only_the_stores_owner_works_its_orders() {
    let world = World::new();
    let (store_id, order_id) = world.order_at("placed").await;
    let other_store = world.register_store(OTHER_OWNER, REGION).await;
    for route in [ACCEPT, START, FINISH] {
        world.send(step(route, &store_id, &order_id).owner(OTHER_OWNER)).await.problem(403, "another owner");
        world.send(step(route, &store_id, &order_id).customer(CUSTOMER)).await.problem(403, "store owner");
        world.send(step(route, &store_id, &order_id)).await.problem(401, "bearer token");
        // The other owner, through their own store: the order is not there.
        world.send(step(route, &other_store, &order_id).owner(OTHER_OWNER)).await.problem(404, "not found in this store");
        world.send(step(route, &store_id, "order-nowhere").owner(OWNER)).await.problem(404, "order not found");
        world.send(step(route, "store-nowhere", &order_id).owner(OWNER)).await.problem(404, "store-nowhere");
    }
    world
        .send(step(REJECT, &store_id, &order_id).owner(OTHER_OWNER).json(json!({ "reason": "spite" })))
        .await
        .problem(403, "another owner");
    assert_eq!(world.event_types("Order", &order_id), ["OrderPlaced"], "nobody else changed the order");
}

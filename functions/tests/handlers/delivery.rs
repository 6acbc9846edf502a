//! Riders pick up cooked food and deliver it, or report an accident:
//! `pick-delivery`, `complete-delivery`, `report-accident`.

use crate::support::*;
use serde_json::json;

fn pick(order_id: &str) -> Req {
    Req::post("/deliveries/{orderId}/pick").path("orderId", order_id)
}
fn complete(order_id: &str) -> Req {
    Req::post("/deliveries/{orderId}/complete").path("orderId", order_id)
}
fn accident(order_id: &str) -> Req {
    Req::post("/deliveries/{orderId}/accident").path("orderId", order_id)
}

async fn board(world: &World, region: &str) -> Vec<(String, bool)> {
    let reply = world.send(Req::get("/deliveries").query("region", region).rider(RIDER)).await;
    reply.expect(200)["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["orderId"].as_str().unwrap().to_owned(), d["foodReady"].as_bool().unwrap()))
        .collect()
}

/// The whole life of an order, from the menu to the door.
#[tokio::test]
async fn an_order_goes_from_the_menu_to_the_door() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let order_id = world.place_order(CUSTOMER, &store_id, &[("m1", 1), ("m2", 2)]).await;
    world.kitchen(OWNER, &store_id, &order_id, "accept").await.expect(200);
    world.kitchen(OWNER, &store_id, &order_id, "start-cooking").await.expect(200);
    assert_eq!(board(&world, REGION).await, [(order_id.clone(), false)], "riders see it coming while it cooks");
    world.kitchen(OWNER, &store_id, &order_id, "finish-cooking").await.expect(200);
    assert_eq!(board(&world, REGION).await, [(order_id.clone(), true)], "and see when the food is ready");

    let picked = world.ride(RIDER, &order_id, "pick").await;
    assert_eq!(picked.expect(200), &json!({ "orderId": order_id, "state": "picked-up", "riderId": RIDER }));
    assert!(board(&world, REGION).await.is_empty(), "a taken delivery is no longer offered");
    assert_eq!(world.order_view(CUSTOMER, &order_id).await["riderId"], RIDER, "the customer sees who brings it");

    let delivered = world.ride(RIDER, &order_id, "complete").await;
    assert_eq!(delivered.expect(200), &json!({ "orderId": order_id, "state": "delivered", "riderId": RIDER }));
    let seen = world.order_view(CUSTOMER, &order_id).await;
    assert_eq!(seen["status"], "delivered");
    let timeline: Vec<&str> = seen["timeline"].as_array().unwrap().iter().map(|t| t["status"].as_str().unwrap()).collect();
    assert_eq!(timeline, ["placed", "accepted", "cooking", "cooked", "picked-up", "delivered"]);
    assert_eq!(world.told(CUSTOMER), timeline, "one message per step");
    let queue = world.send(Req::get("/stores/{storeId}/orders").path("storeId", &store_id).owner(OWNER)).await;
    assert_eq!(queue.expect(200)["orders"], json!([]), "the kitchen's queue is empty again");
    assert_eq!(world.processor.refund_count(), 0, "a delivered order keeps its payment");
}

#[tokio::test]
async fn food_still_cooking_cannot_be_picked_up() {
    let world = World::new();
    let (_, order_id) = world.order_at("cooking").await;
    world.send(pick(&order_id).rider(RIDER)).await.problem(409, "still cooking");
    assert_eq!(board(&world, REGION).await, [(order_id.clone(), false)], "it is still on offer");
}

#[tokio::test]
async fn a_delivery_that_does_not_exist_is_404() {
    let world = World::new();
    let (_, order_id) = world.order_at("accepted").await;
    world.send(pick(&order_id).rider(RIDER)).await.problem(404, "no delivery");
    world.send(pick("order-nowhere").rider(RIDER)).await.problem(404, "no delivery");
}

#[tokio::test]
async fn one_rider_takes_a_delivery() {
    let world = World::new();
    let (_, order_id) = world.order_at("picked-up").await;
    world.send(pick(&order_id).rider(OTHER_RIDER)).await.problem(409, "another rider has taken");
    world.send(pick(&order_id).rider(RIDER)).await.problem(409, "already picked up");
    world.send(complete(&order_id).rider(OTHER_RIDER)).await.problem(403, "another rider");
    world.send(accident(&order_id).rider(OTHER_RIDER).json(json!({ "description": "fell off" }))).await.problem(403, "another rider");
    assert_eq!(world.event_types("Delivery", &order_id), ["DeliveryOpened", "FoodReady", "DeliveryPicked"]);
}

#[tokio::test]
async fn only_riders_ride() {
    let world = World::new();
    let (_, order_id) = world.order_at("cooked").await;
    world.send(pick(&order_id).customer(CUSTOMER)).await.problem(403, "only a rider");
    world.send(pick(&order_id).owner(OWNER)).await.problem(403, "only a rider");
    world.send(pick(&order_id)).await.problem(401, "bearer token");
    world.send(complete(&order_id).customer(CUSTOMER)).await.problem(403, "only a rider");
    assert_eq!(world.event_types("Delivery", &order_id), ["DeliveryOpened", "FoodReady"]);
}

#[tokio::test]
async fn delivery_steps_out_of_turn_are_409() {
    let world = World::new();
    let (_, order_id) = world.order_at("cooked").await;
    world.send(complete(&order_id).rider(RIDER)).await.problem(409, "not been picked up");
    world.send(accident(&order_id).rider(RIDER).json(json!({ "description": "flat tyre" }))).await.problem(409, "not been picked up");
    world.ride(RIDER, &order_id, "pick").await.expect(200);
    world.ride(RIDER, &order_id, "complete").await.expect(200);
    world.send(complete(&order_id).rider(RIDER)).await.problem(409, "already finished");
    world.send(accident(&order_id).rider(RIDER).json(json!({ "description": "late fall" }))).await.problem(409, "already finished");
    assert_eq!(world.order_view(CUSTOMER, &order_id).await["status"], "delivered");
}

#[tokio::test]
async fn an_accident_cancels_the_order_and_refunds_the_customer() {
    let world = World::new();
    let (store_id, order_id) = world.order_at("picked-up").await;
    let reply = world.send(accident(&order_id).rider(RIDER).json(json!({ "description": "  hit a pothole  " }))).await;
    assert_eq!(reply.expect(200), &json!({ "orderId": order_id, "state": "failed", "riderId": RIDER }));
    world.settle().await;

    assert_eq!(world.last_event("Delivery", &order_id, "AccidentReported").payload()["description"], "hit a pothole");
    let seen = world.order_view(CUSTOMER, &order_id).await;
    assert_eq!(seen["status"], "cancelled");
    assert_eq!(seen["timeline"].as_array().unwrap().last().unwrap()["note"], "delivery accident");
    assert_eq!(world.last_event("Payment", &order_id, "PaymentRefunded").payload()["reason"], "rider-accident");
    assert_eq!(world.processor.refund_count(), 1, "the customer gets the money back");
    assert_eq!(world.told(CUSTOMER).last().map(String::as_str), Some("cancelled"));
    let all = world.send(Req::get("/stores/{storeId}/orders").path("storeId", &store_id).query("status", "all").owner(OWNER)).await;
    assert_eq!(all.expect(200)["orders"][0]["status"], "cancelled", "the store sees the order cancelled");
}

#[tokio::test]
async fn an_accident_report_needs_a_description() {
    let world = World::new();
    let (_, order_id) = world.order_at("picked-up").await;
    let report = || accident(&order_id).rider(RIDER);
    world.send(report().json(json!({ "description": " " }))).await.problem(400, "describe what happened");
    world.send(report().json(json!({ "description": "x".repeat(2001) }))).await.problem(400, "at most 2000");
    world.send(report().json(json!({ "what": "fell" }))).await.problem(400, "unknown field `what`");
    world.send(report().raw("text/plain", "fell")).await.problem(415, "application/json");
    world.send(report().raw("application/json", "{\"description\":")).await.problem(400, "invalid body");
    assert_eq!(world.event_types("Delivery", &order_id), ["DeliveryOpened", "FoodReady", "DeliveryPicked"]);
}

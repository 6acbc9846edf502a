//! Bad input on every route gets a clear 4xx problem, never a 500, and
//! changes nothing: oversized bodies, unknown fields, wrong content types,
//! malformed JSON, negative or zero numbers, unknown and malformed ids.

use crate::support::*;
use functions::http::{MAX_BODY_BYTES, MAX_ID_LEN};
use serde_json::{Value, json};

/// Each route that takes a body, with a body it accepts, sent by the caller
/// who may use it, on a store with an order `placed` and one `picked` up.
struct Bodies {
    store_id: String,
    placed: String,
    picked: String,
}

impl Bodies {
    async fn new(world: &World) -> Bodies {
        let (store_id, picked) = world.order_at("picked-up").await;
        let placed = world.place_order(CUSTOMER, &store_id, &[("m2", 1)]).await;
        Bodies { store_id, placed, picked }
    }

    /// (what, request without its body, a body it accepts)
    fn routes(&self) -> Vec<(&'static str, Req, Value)> {
        let order_body = json!({
            "storeId": self.store_id, "items": [{ "menuId": "m1", "quantity": 1 }],
            "region": REGION, "address": ADDRESS, "paymentToken": "tok_visa",
        });
        vec![
            (
                "register-store",
                Req::post("/stores").owner(OWNER),
                json!({ "name": "Ada's", "region": REGION, "menu": [{ "name": "Soup", "price": 500 }] }),
            ),
            (
                "change-menu",
                Req::put("/stores/{storeId}/menu").path("storeId", &self.store_id).owner(OWNER),
                json!({ "menu": [{ "name": "Soup", "price": 500 }] }),
            ),
            ("place-order", Req::post("/orders").customer(CUSTOMER), order_body),
            (
                "reject-order",
                Req::post("/stores/{storeId}/orders/{orderId}/reject")
                    .path("storeId", &self.store_id)
                    .path("orderId", &self.placed)
                    .owner(OWNER),
                json!({ "reason": "out of soup" }),
            ),
            (
                "report-accident",
                Req::post("/deliveries/{orderId}/accident").path("orderId", &self.picked).rider(RIDER),
                json!({ "description": "a flat tyre" }),
            ),
        ]
    }
}

/// Sends every variant of every body route and expects the same refusal
/// each time, with nothing stored and nobody charged.
async fn refused_everywhere(world: &World, status: i64, detail: &str, variant: impl Fn(Req, Value) -> Req) {
    let bodies = Bodies::new(world).await;
    let (events, charges) = (world.events().len(), world.processor.charge_count());
    for (what, request, body) in bodies.routes() {
        let reply = world.send(variant(request, body)).await;
        assert_eq!(reply.status, status, "{what}: {}", reply.body);
        reply.problem(status, detail);
    }
    assert_eq!(world.events().len(), events, "nothing is stored");
    assert_eq!(world.processor.charge_count(), charges, "nobody is charged");
}

#[tokio::test]
async fn the_bodies_of_the_fixtures_are_accepted() {
    // The refusals below mean something only if the untouched bodies pass.
    for index in 0..5 {
        let world = World::new();
        let bodies = Bodies::new(&world).await;
        let (what, request, body) = bodies.routes().swap_remove(index);
        let reply = world.send(request.json(body)).await;
        assert!((200..300).contains(&reply.status), "{what} accepts its fixture: {} {}", reply.status, reply.body);
    }
}

#[tokio::test]
async fn an_oversized_body_is_413_on_every_route() {
    let world = World::new();
    refused_everywhere(&world, 413, "at most 65536 bytes", |request, mut body| {
        body["padding"] = json!("x".repeat(MAX_BODY_BYTES));
        request.json(body)
    })
    .await;
}

#[tokio::test]
async fn an_unknown_field_is_400_on_every_route() {
    let world = World::new();
    refused_everywhere(&world, 400, "unknown field `discount`", |request, mut body| {
        body["discount"] = json!(100);
        request.json(body)
    })
    .await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415_on_every_route() {
    let world = World::new();
    refused_everywhere(&world, 415, "application/json", |request, body| request.raw("text/plain", &body.to_string())).await;
    refused_everywhere(&world, 415, "application/json", |request, body| request.raw("application/xml", &body.to_string())).await;
    refused_everywhere(&world, 415, "application/json", |request, body| request.untyped(&body.to_string())).await;
}

#[tokio::test]
async fn malformed_json_is_400_on_every_route() {
    let world = World::new();
    refused_everywhere(&world, 400, "invalid body", |request, body| {
        let text = body.to_string();
        request.raw("application/json", &text[..text.len() - 1])
    })
    .await;
    refused_everywhere(&world, 400, "invalid body", |request, _| request.raw("application/json", "[1, 2, 3]")).await;
    refused_everywhere(&world, 400, "invalid body", |request, _| request.raw("application/json", "null")).await;
    refused_everywhere(&world, 400, "a JSON body is required", |request, _| request.raw("application/json", "")).await;
}

#[tokio::test]
async fn negative_zero_fractional_and_textual_quantities_are_400() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    for (quantity, detail) in [
        (json!(-1), "invalid body"),
        (json!(0), "between 1 and 100"),
        (json!(1.5), "invalid body"),
        (json!("2"), "invalid body"),
        (json!(u64::from(u32::MAX) + 1), "invalid body"),
        (json!(null), "invalid body"),
    ] {
        let body = json!({
            "storeId": store_id, "items": [{ "menuId": "m1", "quantity": quantity }],
            "region": REGION, "address": ADDRESS, "paymentToken": "tok_visa",
        });
        world.send(Req::post("/orders").customer(CUSTOMER).json(body)).await.problem(400, detail);
    }
    assert_eq!(world.processor.charge_count(), 0, "no refused order is charged");
}

#[tokio::test]
async fn negative_zero_and_oversized_prices_are_400() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let before = world.events().len();
    let change = |price: Value| {
        Req::put("/stores/{storeId}/menu")
            .path("storeId", &store_id)
            .owner(OWNER)
            .json(json!({ "menu": [{ "name": "Soup", "price": price }] }))
    };
    for (price, detail) in [
        (json!(-500), "invalid body"),
        (json!(-0.5), "invalid body"),
        (json!(0), "price of Soup"),
        (json!(1_000_001), "price of Soup"),
        (json!(4.99), "invalid body"),
        (json!("5.00"), "invalid body"),
    ] {
        world.send(change(price)).await.problem(400, detail);
    }
    assert_eq!(world.events().len(), before, "the menu is unchanged");
}

#[tokio::test]
async fn unknown_stores_and_orders_are_404_on_every_route() {
    let world = World::new();
    let (store_id, order_id) = world.order_at("placed").await;
    let before = world.events().len();
    let nowhere = "store-0000";
    let nothing = "order-0000";
    let requests = [
        Req::get("/stores/{storeId}").path("storeId", nowhere).customer(CUSTOMER),
        Req::put("/stores/{storeId}/menu")
            .path("storeId", nowhere)
            .owner(OWNER)
            .json(json!({ "menu": [{ "name": "Soup", "price": 500 }] })),
        Req::post("/stores/{storeId}/open").path("storeId", nowhere).owner(OWNER),
        Req::post("/stores/{storeId}/close").path("storeId", nowhere).owner(OWNER),
        Req::get("/stores/{storeId}/orders").path("storeId", nowhere).owner(OWNER),
        Req::post("/stores/{storeId}/orders/{orderId}/accept").path("storeId", nowhere).path("orderId", &order_id).owner(OWNER),
        Req::post("/stores/{storeId}/orders/{orderId}/accept").path("storeId", &store_id).path("orderId", nothing).owner(OWNER),
        Req::post("/stores/{storeId}/orders/{orderId}/reject")
            .path("storeId", &store_id)
            .path("orderId", nothing)
            .owner(OWNER)
            .json(json!({ "reason": "closed" })),
        Req::post("/stores/{storeId}/orders/{orderId}/start-cooking").path("storeId", &store_id).path("orderId", nothing).owner(OWNER),
        Req::post("/stores/{storeId}/orders/{orderId}/finish-cooking").path("storeId", &store_id).path("orderId", nothing).owner(OWNER),
        Req::get("/orders/{orderId}").path("orderId", nothing).customer(CUSTOMER),
        Req::post("/orders/{orderId}/cancel").path("orderId", nothing).customer(CUSTOMER),
        Req::post("/deliveries/{orderId}/pick").path("orderId", nothing).rider(RIDER),
        Req::post("/deliveries/{orderId}/complete").path("orderId", nothing).rider(RIDER),
        Req::post("/deliveries/{orderId}/accident").path("orderId", nothing).rider(RIDER).json(json!({ "description": "a flat tyre" })),
        order_request(CUSTOMER, nowhere, &[("m1", 1)], "tok_visa"),
    ];
    for request in requests {
        let route = request.route_key();
        let reply = world.send(request).await;
        assert_eq!(reply.status, 404, "{route}: {}", reply.body);
        // Each says what it could not find in its own words.
        reply.problem(404, "");
    }
    assert_eq!(world.events().len(), before, "nothing is stored");
    assert_eq!(world.processor.charge_count(), 1, "only the seeded order was charged");
}

#[tokio::test]
async fn odd_ids_in_the_path_are_4xx_never_5xx() {
    let world = World::new();
    let (store_id, _) = world.order_at("placed").await;
    let before = world.events().len();
    let too_long = format!("store-{}", "7".repeat(MAX_ID_LEN));
    let odd = ["..", "%00", "store-💥", " ", "store-1 OR 1=1", "-1", "0", "NaN", "\u{0}", "a/b"];
    for id in odd.iter().copied().chain([too_long.as_str()]) {
        for request in [
            Req::get("/stores/{storeId}").path("storeId", id).customer(CUSTOMER),
            Req::post("/stores/{storeId}/open").path("storeId", id).owner(OWNER),
            Req::get("/stores/{storeId}/popular-menus").path("storeId", id).customer(CUSTOMER),
            Req::get("/orders/{orderId}").path("orderId", id).customer(CUSTOMER),
            Req::post("/orders/{orderId}/cancel").path("orderId", id).customer(CUSTOMER),
            Req::post("/stores/{storeId}/orders/{orderId}/accept").path("storeId", &store_id).path("orderId", id).owner(OWNER),
            Req::post("/deliveries/{orderId}/pick").path("orderId", id).rider(RIDER),
        ] {
            let route = request.route_key();
            let reply = world.send(request).await;
            // popular-menus of a store nobody ordered from is an empty ranking.
            let empty_ranking = reply.status == 200 && route.ends_with("popular-menus") && reply.body["items"] == json!([]);
            assert!(empty_ranking || (400..500).contains(&reply.status), "{route} with {id:?}: {} {}", reply.status, reply.body);
            if !empty_ranking {
                assert_eq!(reply.header("content-type"), Some("application/problem+json"), "{route} with {id:?}");
            }
        }
    }
    let reply = world.send(Req::get("/stores/{storeId}").path("storeId", &too_long).customer(CUSTOMER)).await;
    reply.problem(400, "at most 128 bytes");
    world.send(Req::post("/stores/{storeId}/open").path("storeId", "").owner(OWNER)).await.problem(400, "storeId is missing");
    let long_store = order_request(CUSTOMER, &too_long, &[("m1", 1)], "tok_visa");
    world.send(long_store).await.problem(404, "no store");
    assert_eq!(world.events().len(), before, "nothing is stored");
}

#[tokio::test]
async fn an_overlong_region_is_400_when_registering_and_browsing() {
    let world = World::new();
    let region = "r".repeat(domain::catalog::MAX_REGION_LEN + 1);
    let registration = json!({ "name": "Ada's", "region": region, "menu": [{ "name": "Soup", "price": 500 }] });
    world.send(Req::post("/stores").owner(OWNER).json(registration)).await.problem(400, "region must be at most 120 characters");
    world.send(Req::get("/stores").query("region", &region).customer(CUSTOMER)).await.problem(400, "at most 120 characters");
    world.send(Req::get("/deliveries").query("region", &region).rider(RIDER)).await.problem(400, "at most 120 characters");
    assert!(world.events().is_empty(), "nothing is stored");
}

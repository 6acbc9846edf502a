//! The read side: every GET route of the `queries` function, answered from
//! the read models the projections keep.

use crate::support::*;
use serde_json::{Value, json};

fn ids(list: &Value, field: &str) -> Vec<String> {
    list.as_array().unwrap_or_else(|| panic!("a list: {list}")).iter().map(|v| v[field].as_str().unwrap().to_owned()).collect()
}

// ==================================================================== stores

#[tokio::test]
async fn customers_browse_the_stores_of_their_region() {
    let world = World::new();
    let first = world.register_store(OWNER, REGION).await;
    let second = world.register_store(OTHER_OWNER, REGION).await;
    let elsewhere = world.register_store(OWNER, "south").await;

    let reply = world.send(Req::get("/stores").query("region", REGION).customer(CUSTOMER)).await;
    let body = reply.expect(200);
    assert_eq!(body["region"], REGION);
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(ids(&body["stores"], "storeId"), expected, "exactly the region's stores");
    let store = &body["stores"][0];
    assert_eq!(store["name"], "Luigi's");
    assert_eq!(store["open"], true);
    assert_eq!(
        store["menu"],
        json!([
            { "menuId": "m1", "name": "Margherita", "price": 900 },
            { "menuId": "m2", "name": "Tiramisu", "price": 450 },
            { "menuId": "m3", "name": "Espresso", "price": 250 },
        ])
    );

    let south = world.send(Req::get("/stores").query("region", "south").rider(RIDER)).await;
    assert_eq!(ids(&south.expect(200)["stores"], "storeId"), [elsewhere], "anyone signed in may browse");
    let empty = world.send(Req::get("/stores").query("region", "nowhere").customer(CUSTOMER)).await;
    assert_eq!(empty.expect(200)["stores"], json!([]));
}

#[tokio::test]
async fn browsing_needs_a_region_and_a_token() {
    let world = World::new();
    world.send(Req::get("/stores").customer(CUSTOMER)).await.problem(400, "query parameter region is required");
    world.send(Req::get("/stores").query("region", "").customer(CUSTOMER)).await.problem(400, "region is required");
    world.send(Req::get("/stores").query("region", REGION)).await.problem(401, "bearer token");
}

#[tokio::test]
async fn one_store_by_its_id() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let reply = world.send(Req::get("/stores/{storeId}").path("storeId", &store_id).customer(CUSTOMER)).await;
    let body = reply.expect(200);
    assert_eq!((body["storeId"].as_str(), body["region"].as_str()), (Some(store_id.as_str()), Some(REGION)));
    world.send(Req::get("/stores/{storeId}").path("storeId", "store-nowhere").customer(CUSTOMER)).await.problem(404, "store-nowhere");
}

// ==================================================================== orders

#[tokio::test]
async fn a_customer_lists_only_their_own_orders_newest_first() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let first = world.place_order(CUSTOMER, &store_id, &[("m1", 1)]).await;
    let theirs = world.place_order(OTHER_CUSTOMER, &store_id, &[("m2", 1)]).await;
    let second = world.place_order(CUSTOMER, &store_id, &[("m3", 4)]).await;

    let mine = world.send(Req::get("/orders").customer(CUSTOMER)).await;
    let orders = &mine.expect(200)["orders"];
    assert_eq!(ids(orders, "orderId"), [second.clone(), first.clone()], "only mine, newest first");
    assert_eq!(orders[0]["total"], 1000);
    assert_eq!(orders[0]["status"], "placed");
    assert_eq!(orders[0]["storeId"], store_id.as_str());
    let others = world.send(Req::get("/orders").customer(OTHER_CUSTOMER)).await;
    assert_eq!(ids(&others.expect(200)["orders"], "orderId"), [theirs]);
    world.send(Req::get("/orders").owner(OWNER)).await.problem(403, "only a customer");
}

#[tokio::test]
async fn an_order_is_seen_by_its_customer_and_its_stores_owner_only() {
    let world = World::new();
    let (_, order_id) = world.order_at("accepted").await;
    world.register_store(OTHER_OWNER, REGION).await;
    let get = || Req::get("/orders/{orderId}").path("orderId", &order_id);

    let by_customer = world.send(get().customer(CUSTOMER)).await;
    let body = by_customer.expect(200).clone();
    assert_eq!(body["orderId"], order_id.as_str());
    assert_eq!(body["customerId"], CUSTOMER);
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["total"], 2050);
    assert_eq!(body["region"], REGION);
    assert_eq!(body["timeline"].as_array().unwrap().len(), 2);

    let by_owner = world.send(get().owner(OWNER)).await;
    assert_eq!(by_owner.expect(200), &body, "the store's owner sees the same order");

    world.send(get().customer(OTHER_CUSTOMER)).await.problem(403, "not yours");
    world.send(get().owner(OTHER_OWNER)).await.problem(403, "not yours");
    world.send(get().rider(RIDER)).await.problem(403, "not yours");
    world.send(Req::get("/orders/{orderId}").path("orderId", "order-nowhere").customer(CUSTOMER)).await.problem(404, "order-nowhere");
}

#[tokio::test]
async fn the_owner_sees_the_stores_queue_oldest_first() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let first = world.place_order(CUSTOMER, &store_id, &[("m1", 1)]).await;
    let second = world.place_order(OTHER_CUSTOMER, &store_id, &[("m2", 1)]).await;
    let cancelled = world.place_order(CUSTOMER, &store_id, &[("m3", 1)]).await;
    world.send(Req::post("/orders/{orderId}/cancel").path("orderId", &cancelled).customer(CUSTOMER)).await.expect(200);
    world.settle().await;
    let other_store = world.register_store(OTHER_OWNER, REGION).await;
    world.place_order(CUSTOMER, &other_store, &[("m1", 1)]).await;

    let queue = |status: Option<&str>| {
        let mut request = Req::get("/stores/{storeId}/orders").path("storeId", &store_id).owner(OWNER);
        if let Some(status) = status {
            request = request.query("status", status);
        }
        world.send(request)
    };
    let active = queue(None).await;
    let body = active.expect(200);
    assert_eq!(body["storeId"], store_id.as_str());
    assert_eq!(ids(&body["orders"], "orderId"), [first.clone(), second.clone()], "the active orders, oldest first");
    assert_eq!(body["orders"][0]["customerId"], CUSTOMER);
    assert_eq!(body["orders"][0]["address"], ADDRESS);
    assert_eq!(body["orders"][1]["lines"][0]["name"], "Tiramisu");
    let everything = queue(Some("all")).await;
    assert_eq!(ids(&everything.expect(200)["orders"], "orderId"), [first, second, cancelled], "?status=all shows every order");

    let other = Req::get("/stores/{storeId}/orders").path("storeId", &store_id);
    world.send(other.clone().owner(OTHER_OWNER)).await.problem(403, "another owner");
    world.send(other.clone().customer(CUSTOMER)).await.problem(403, "store owner");
    world.send(Req::get("/stores/{storeId}/orders").path("storeId", "store-nowhere").owner(OWNER)).await.problem(404, "store-nowhere");
}

// ================================================================ deliveries

#[tokio::test]
async fn riders_see_the_open_deliveries_of_their_region() {
    let world = World::new();
    let (_, cooking) = world.order_at("cooking").await;
    let (_, cooked) = world.order_at("cooked").await;
    let (_, taken) = world.order_at("picked-up").await;
    let (_, placed) = world.order_at("placed").await;
    let south_store = world.register_store(OTHER_OWNER, "south").await;
    let south_order = {
        let reply = world
            .send(Req::post("/orders").customer(CUSTOMER).json(json!({
                "storeId": south_store, "items": [{ "menuId": "m1", "quantity": 1 }],
                "region": "south", "address": "9 Dock Road", "paymentToken": "tok_visa",
            })))
            .await;
        reply.expect(201)["orderId"].as_str().unwrap().to_owned()
    };
    world.settle().await;
    for step in ["accept", "start-cooking"] {
        world.kitchen(OTHER_OWNER, &south_store, &south_order, step).await.expect(200);
    }

    let reply = world.send(Req::get("/deliveries").query("region", REGION).rider(RIDER)).await;
    let body = reply.expect(200);
    assert_eq!(body["region"], REGION);
    let deliveries = body["deliveries"].as_array().unwrap();
    let mut offered: Vec<(String, bool)> =
        deliveries.iter().map(|d| (d["orderId"].as_str().unwrap().to_owned(), d["foodReady"].as_bool().unwrap())).collect();
    offered.sort();
    let mut expected = vec![(cooking.clone(), false), (cooked.clone(), true)];
    expected.sort();
    assert_eq!(offered, expected, "open deliveries only: not {taken} (taken) nor {placed} (not cooking)");
    assert!(deliveries.iter().all(|d| d["address"] == ADDRESS && d["storeId"].is_string()));

    let south = world.send(Req::get("/deliveries").query("region", "south").rider(OTHER_RIDER)).await;
    assert_eq!(ids(&south.expect(200)["deliveries"], "orderId"), [south_order]);

    world.send(Req::get("/deliveries").query("region", REGION).customer(CUSTOMER)).await.problem(403, "only a rider");
    world.send(Req::get("/deliveries").query("region", REGION).owner(OWNER)).await.problem(403, "only a rider");
    world.send(Req::get("/deliveries").rider(RIDER)).await.problem(400, "region is required");
}

// ============================================================= popular menus

#[tokio::test]
async fn popular_menus_rank_items_by_orders_then_units() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    world.place_order(CUSTOMER, &store_id, &[("m1", 1), ("m2", 1)]).await;
    world.place_order(OTHER_CUSTOMER, &store_id, &[("m2", 5)]).await;
    world.place_order(CUSTOMER, &store_id, &[("m1", 2), ("m3", 1)]).await;
    let other = world.register_store(OTHER_OWNER, REGION).await;
    world.place_order(CUSTOMER, &other, &[("m3", 9)]).await;

    let reply = world.send(Req::get("/stores/{storeId}/popular-menus").path("storeId", &store_id).customer(CUSTOMER)).await;
    assert_eq!(
        reply.expect(200),
        &json!({
            "storeId": store_id,
            "items": [
                { "menuId": "m2", "name": "Tiramisu", "orders": 2, "quantity": 6 },
                { "menuId": "m1", "name": "Margherita", "orders": 2, "quantity": 3 },
                { "menuId": "m3", "name": "Espresso", "orders": 1, "quantity": 1 },
            ],
        })
    );
    let none = world.send(Req::get("/stores/{storeId}/popular-menus").path("storeId", "store-new").owner(OWNER)).await;
    assert_eq!(none.expect(200)["items"], json!([]));
}

#[tokio::test]
async fn an_unknown_route_is_404() {
    let world = World::new();
    let mut request = Req::get("/stores").query("region", REGION).customer(CUSTOMER).to_json();
    request["routeKey"] = json!("GET /secrets");
    request["requestContext"]["routeKey"] = json!("GET /secrets");
    let reply = world.call("queries", serde_json::from_value(request).unwrap()).await;
    reply.problem(404, "no query route GET /secrets");
}

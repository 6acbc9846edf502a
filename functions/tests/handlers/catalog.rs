//! Store owners register stores and keep their menus and hours:
//! `register-store`, `change-menu`, `open-store`, `close-store`.

use crate::support::*;
use domain::Versioned;
use domain::catalog::Store;
use functions::command::load;
use functions::http::MAX_BODY_BYTES;
use serde_json::{Value, json};

fn registration() -> Value {
    json!({
        "name": "  Luigi's  ",
        "region": "north",
        "menu": [
            { "name": "Margherita", "price": 900 },
            { "name": "Tiramisu", "price": 450 },
        ],
    })
}

fn menu_of(body: &Value) -> Vec<(String, String, u64)> {
    body["menu"]
        .as_array()
        .expect("a menu")
        .iter()
        .map(|item| {
            (item["menuId"].as_str().unwrap().to_owned(), item["name"].as_str().unwrap().to_owned(), item["price"].as_u64().unwrap())
        })
        .collect()
}

fn menu(items: &[(&str, &str, u64)]) -> Vec<(String, String, u64)> {
    items.iter().map(|(id, name, price)| (id.to_string(), name.to_string(), *price)).collect()
}

async fn listed(world: &World, store_id: &str) -> Value {
    world.send(Req::get("/stores/{storeId}").path("storeId", store_id).customer(CUSTOMER)).await.expect(200).clone()
}

// ============================================================ register-store

#[tokio::test]
async fn an_owner_registers_a_store_and_customers_find_it() {
    let world = World::new();
    let reply = world.send(Req::post("/stores").owner(OWNER).json(registration())).await;
    let body = reply.expect(201).clone();
    let store_id = body["storeId"].as_str().unwrap().to_owned();
    assert!(store_id.starts_with("store-"), "a store id names what it is: {store_id}");
    assert_eq!(reply.header("location"), Some(format!("/stores/{store_id}").as_str()));
    assert_eq!(body["name"], "Luigi's", "the name is trimmed");
    assert_eq!(body["region"], "north");
    assert_eq!(body["open"], true, "a new store is open");
    assert_eq!(menu_of(&body), menu(&[("m1", "Margherita", 900), ("m2", "Tiramisu", 450)]), "menu items are numbered");

    world.settle().await;
    let listing = listed(&world, &store_id).await;
    assert_eq!(listing["name"], "Luigi's");
    assert_eq!(menu_of(&listing), menu_of(&body), "the catalog shows the registered menu");
}

#[tokio::test]
async fn registering_takes_a_base64_body_and_a_charset() {
    let world = World::new();
    world.send(Req::post("/stores").owner(OWNER).json(registration()).base64()).await.expect(201);
    world.send(Req::post("/stores").owner(OWNER).raw("Application/JSON; charset=utf-8", &registration().to_string())).await.expect(201);
}

#[tokio::test]
async fn registering_needs_a_token() {
    let world = World::new();
    world.send(Req::post("/stores").json(registration())).await.problem(401, "bearer token");
    assert!(world.events().is_empty(), "nothing is stored");
}

#[tokio::test]
async fn registering_needs_the_owner_role() {
    let world = World::new();
    world.send(Req::post("/stores").customer(CUSTOMER).json(registration())).await.problem(403, "store owner");
    world.send(Req::post("/stores").rider(RIDER).json(registration())).await.problem(403, "store owner");
    world.send(Req::post("/stores").by(OWNER, "admins").json(registration())).await.problem(403, "no customer, owner or rider group");
    assert!(world.events().is_empty(), "nothing is stored");
}

/// Cognito group names may hold punctuation: only a whole name is a role.
#[tokio::test]
async fn a_group_whose_name_only_contains_owner_is_not_the_owner_role() {
    let world = World::new();
    for group in ["suspended:owner", "owner.pending", "[owner]"] {
        world.send(Req::post("/stores").by(OWNER, group).json(registration())).await.problem(403, "no customer, owner or rider group");
    }
    assert!(world.events().is_empty(), "nothing is stored");
    let answer = world.send(Req::post("/stores").by(OWNER, "admins owner").json(registration())).await;
    assert_eq!(answer.status, 201, "an owner who is in other groups too is still an owner: {answer:?}");
}

#[tokio::test]
async fn a_malformed_registration_is_refused_with_400() {
    let world = World::new();
    let mut unknown_field = registration();
    unknown_field["rating"] = json!(5);
    world.send(Req::post("/stores").owner(OWNER).json(unknown_field)).await.problem(400, "unknown field `rating`");

    let mut negative_price = registration();
    negative_price["menu"][0]["price"] = json!(-900);
    world.send(Req::post("/stores").owner(OWNER).json(negative_price)).await.problem(400, "invalid body");

    let mut missing_region = registration();
    missing_region.as_object_mut().unwrap().remove("region");
    world.send(Req::post("/stores").owner(OWNER).json(missing_region)).await.problem(400, "missing field `region`");

    world.send(Req::post("/stores").owner(OWNER).raw("application/json", "{\"name\": \"Luigi's\",")).await.problem(400, "invalid body");
    world.send(Req::post("/stores").owner(OWNER).raw("application/json", "  ")).await.problem(400, "a JSON body is required");
    world.send(Req::post("/stores").owner(OWNER).raw("application/json", "%%%").base64()).await.problem(400, "invalid body");
    assert!(world.events().is_empty(), "nothing is stored");
}

#[tokio::test]
async fn a_registration_the_catalog_refuses_is_400() {
    let world = World::new();
    let mut empty_menu = registration();
    empty_menu["menu"] = json!([]);
    world.send(Req::post("/stores").owner(OWNER).json(empty_menu)).await.problem(400, "at least one item");

    let mut blank_name = registration();
    blank_name["name"] = json!("   ");
    world.send(Req::post("/stores").owner(OWNER).json(blank_name)).await.problem(400, "store name must not be empty");

    let mut free_dish = registration();
    free_dish["menu"][1]["price"] = json!(0);
    world.send(Req::post("/stores").owner(OWNER).json(free_dish)).await.problem(400, "price of Tiramisu");

    let mut twice = registration();
    twice["menu"] = json!([{ "menuId": "x", "name": "A", "price": 1 }, { "menuId": "x", "name": "B", "price": 1 }]);
    world.send(Req::post("/stores").owner(OWNER).json(twice)).await.problem(400, "appears twice");
    assert!(world.events().is_empty(), "nothing is stored");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let world = World::new();
    let text = registration().to_string();
    world.send(Req::post("/stores").owner(OWNER).raw("text/plain", &text)).await.problem(415, "application/json");
    world
        .send(Req::post("/stores").owner(OWNER).raw("application/x-www-form-urlencoded", "name=Luigi"))
        .await
        .problem(415, "application/json");
    world.send(Req::post("/stores").owner(OWNER).untyped(&text)).await.problem(415, "application/json");
    assert!(world.events().is_empty(), "nothing is stored");
}

#[tokio::test]
async fn a_body_over_64_kb_is_413() {
    let world = World::new();
    let mut huge = registration();
    huge["name"] = json!("x".repeat(MAX_BODY_BYTES));
    world.send(Req::post("/stores").owner(OWNER).json(huge.clone())).await.problem(413, "at most 65536 bytes");
    world.send(Req::post("/stores").owner(OWNER).json(huge).base64()).await.problem(413, "at most 65536 bytes");
    assert!(world.events().is_empty(), "nothing is stored");
}

// =============================================================== change-menu

#[tokio::test]
async fn the_owner_changes_the_menu_keeping_item_ids() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let reply = world
        .send(Req::put("/stores/{storeId}/menu").path("storeId", &store_id).owner(OWNER).json(json!({
            "menu": [
                { "menuId": "m1", "name": "Margherita", "price": 950 },
                { "name": "Calzone", "price": 1100 },
            ],
        })))
        .await;
    let expected = menu(&[("m1", "Margherita", 950), ("m4", "Calzone", 1100)]);
    assert_eq!(menu_of(reply.expect(200)), expected, "kept ids stay, a new item gets the next free id");
    world.settle().await;
    assert_eq!(menu_of(&listed(&world, &store_id).await), expected, "customers see the new menu");
}

#[tokio::test]
async fn only_the_stores_owner_changes_its_menu() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let change = json!({ "menu": [{ "name": "Stolen", "price": 1 }] });
    let route = "/stores/{storeId}/menu";
    world.send(Req::put(route).path("storeId", &store_id).owner(OTHER_OWNER).json(change.clone())).await.problem(403, "another owner");
    world.send(Req::put(route).path("storeId", &store_id).customer(CUSTOMER).json(change.clone())).await.problem(403, "store owner");
    world.send(Req::put(route).path("storeId", "store-nowhere").owner(OWNER).json(change.clone())).await.problem(404, "not found");
    world.send(Req::put(route).path("storeId", &store_id).json(change)).await.problem(401, "token");
    world.settle().await;
    assert_eq!(listed(&world, &store_id).await["menu"][0]["name"], "Margherita", "the menu is unchanged");
}

#[tokio::test]
async fn a_malformed_menu_change_is_refused() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let route = "/stores/{storeId}/menu";
    let send = |body: Value| world.send(Req::put(route).path("storeId", &store_id).owner(OWNER).json(body));
    send(json!({ "menu": [], })).await.problem(400, "at least one item");
    send(json!({ "menu": [{ "name": "A", "price": 1 }], "open": true })).await.problem(400, "unknown field `open`");
    send(json!({ "menu": [{ "name": "A", "price": 1, "vegan": true }] })).await.problem(400, "unknown field `vegan`");
    send(json!({ "menu": [{ "name": "A", "price": 1_000_001 }] })).await.problem(400, "price of A");
    world.send(Req::put(route).path("storeId", &store_id).owner(OWNER).raw("text/csv", "A,1")).await.problem(415, "application/json");
    assert_eq!(world.event_types("Store", &store_id), ["StoreRegistered"], "nothing more is stored");
}

// ======================================================== open- and close-store

#[tokio::test]
async fn the_owner_closes_and_reopens_the_store() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let close = || Req::post("/stores/{storeId}/close").path("storeId", &store_id).owner(OWNER);
    let open = || Req::post("/stores/{storeId}/open").path("storeId", &store_id).owner(OWNER);

    assert_eq!(world.send(close()).await.expect(200)["open"], false);
    world.settle().await;
    assert_eq!(listed(&world, &store_id).await["open"], false, "customers see it closed");
    world.send(order_request(CUSTOMER, &store_id, &[("m1", 1)], "tok_visa")).await.problem(409, "closed and takes no orders");
    assert_eq!(world.processor.charge_count(), 0, "an order a closed store refuses is never charged");

    assert_eq!(world.send(close()).await.expect(200)["open"], false, "closing twice is no error");
    assert_eq!(world.send(open()).await.expect(200)["open"], true);
    assert_eq!(world.send(open()).await.expect(200)["open"], true, "opening twice is no error");
    world.settle().await;
    assert_eq!(listed(&world, &store_id).await["open"], true, "customers see it open again");
    assert_eq!(
        world.event_types("Store", &store_id),
        ["StoreRegistered", "StoreClosed", "StoreOpened"],
        "a repeated close or open records nothing"
    );
}

#[tokio::test]
async fn only_the_stores_owner_opens_or_closes_it() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    for route in ["/stores/{storeId}/close", "/stores/{storeId}/open"] {
        world.send(Req::post(route).path("storeId", &store_id).owner(OTHER_OWNER)).await.problem(403, "another owner");
        world.send(Req::post(route).path("storeId", &store_id).rider(RIDER)).await.problem(403, "store owner");
        world.send(Req::post(route).path("storeId", "store-nowhere").owner(OWNER)).await.problem(404, "store-nowhere");
    }
    world.settle().await;
    assert_eq!(listed(&world, &store_id).await["open"], true, "the store is still open");
}

// ================================================================= snapshots

/// More than ten events on one store: a snapshot is written at version 10,
/// and loading (snapshot + tail) gives the same state as replaying every
/// event; the store keeps working on top of it.
#[tokio::test]
async fn a_long_lived_store_is_snapshotted_and_loads_as_a_full_replay_would() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    for price in 1..=11u64 {
        let body = json!({ "menu": [{ "menuId": "m1", "name": "Margherita", "price": 900 + price }] });
        world.send(Req::put("/stores/{storeId}/menu").path("storeId", &store_id).owner(OWNER).json(body)).await.expect(200);
    }
    let loaded = world.deps.events.load("Store", &store_id).await.unwrap();
    assert_eq!(loaded.snapshot.as_ref().map(|s| s.version), Some(10), "a snapshot is written when the stream crosses version 10");
    assert_eq!(loaded.events.iter().map(|e| e.version).collect::<Vec<_>>(), [11, 12], "only the tail is read after it");

    let events: Vec<_> = world.stream("Store", &store_id).iter().map(|e| e.decode_as().unwrap()).collect();
    assert_eq!(events.len(), 12);
    let replayed = Versioned::<Store>::replay(&events);
    let from_snapshot = load::<Store>(world.deps.events.as_ref(), &store_id).await.unwrap();
    assert_eq!(from_snapshot, replayed, "snapshot + tail is the full replay");

    let closed = world.send(Req::post("/stores/{storeId}/close").path("storeId", &store_id).owner(OWNER)).await;
    assert_eq!(closed.expect(200)["menu"][0]["price"], 911, "commands work on the snapshotted state");
    assert_eq!(world.stream("Store", &store_id).last().unwrap().version, 13);
    world.settle().await;
    let listing = listed(&world, &store_id).await;
    assert_eq!((listing["open"].clone(), listing["menu"][0]["price"].clone()), (json!(false), json!(911)));
}

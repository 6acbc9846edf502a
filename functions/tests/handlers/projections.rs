//! The projection functions fold events into the read models. EventBridge
//! delivers at least once and in no particular order, so each must converge
//! to the same documents whatever it is fed: `project-order-status`,
//! `project-store-queue`, `project-delivery-board`, `project-popular-menus`,
//! `project-catalog`.

use crate::support::*;
use domain::Envelope;
use serde_json::{Value, json};

const PROJECTIONS: &[(&str, &str)] = &[
    ("project-order-status", "order-status"),
    ("project-store-queue", "store-queue"),
    ("project-delivery-board", "delivery-board"),
    ("project-popular-menus", "popular-menus"),
    ("project-catalog", "catalog"),
];

/// A store whose menu and hours changed, an order delivered, one cancelled
/// (and refunded), one rejected, one still cooking: every kind of event.
struct History {
    world: World,
    store_id: String,
    orders: Vec<String>,
}

async fn history() -> History {
    let world = World::new();
    let (store_id, delivered) = world.order_at("delivered").await;
    let menu = json!({ "menu": [
        { "menuId": "m1", "name": "Margherita", "price": 990 },
        { "menuId": "m2", "name": "Tiramisu", "price": 450 },
        { "menuId": "m3", "name": "Espresso", "price": 250 },
        { "name": "Calzone", "price": 1200 },
    ] });
    world.send(Req::put("/stores/{storeId}/menu").path("storeId", &store_id).owner(OWNER).json(menu)).await.expect(200);
    world.send(Req::post("/stores/{storeId}/close").path("storeId", &store_id).owner(OWNER)).await.expect(200);
    world.send(Req::post("/stores/{storeId}/open").path("storeId", &store_id).owner(OWNER)).await.expect(200);
    world.settle().await;
    let cancelled = world.place_order(OTHER_CUSTOMER, &store_id, &[("m4", 2)]).await;
    world.send(Req::post("/orders/{orderId}/cancel").path("orderId", &cancelled).customer(OTHER_CUSTOMER)).await.expect(200);
    let rejected = world.place_order(CUSTOMER, &store_id, &[("m2", 1), ("m1", 1)]).await;
    let reject = Req::post("/stores/{storeId}/orders/{orderId}/reject").path("storeId", &store_id).path("orderId", &rejected);
    world.send(reject.owner(OWNER).json(json!({ "reason": "no dough left" }))).await.expect(200);
    let cooking = world.place_order(CUSTOMER, &store_id, &[("m3", 3)]).await;
    world.kitchen(OWNER, &store_id, &cooking, "accept").await.expect(200);
    world.kitchen(OWNER, &store_id, &cooking, "start-cooking").await.expect(200);
    world.settle().await;
    History { world, store_id, orders: vec![delivered, cancelled, rejected, cooking] }
}

/// Feeds `events` to every projection whose rule takes them, as EventBridge would.
async fn project(world: &World, events: &[Envelope]) {
    for event in events {
        let source = event.source().unwrap();
        for rule in RULES.iter().filter(|rule| rule.function.starts_with("project-") && rule.matches(source, &event.event_type)) {
            world.deliver(rule.function, event).await.unwrap_or_else(|e| panic!("{} on {}: {e}", rule.function, event.event_id));
        }
    }
}

/// Every view document of the history, by view and key, without revisions.
async fn documents(world: &World, history: &History) -> Vec<(String, String, Option<(String, Value)>)> {
    let mut keys = history.orders.clone();
    keys.push(history.store_id.clone());
    let mut documents = vec![];
    for (_, view) in PROJECTIONS {
        for key in &keys {
            let doc = world.deps.views.get(view, key).await.unwrap();
            documents.push((view.to_string(), key.clone(), doc.map(|d| (d.partition, body_json(&d.body)))));
        }
    }
    documents
}

/// What users see of the history through the queries that need no event store.
async fn answers(world: &World, history: &History) -> Vec<Value> {
    let mut requests = vec![
        Req::get("/stores").query("region", REGION).customer(CUSTOMER),
        Req::get("/stores/{storeId}").path("storeId", &history.store_id).customer(CUSTOMER),
        Req::get("/stores/{storeId}/popular-menus").path("storeId", &history.store_id).customer(CUSTOMER),
        Req::get("/deliveries").query("region", REGION).rider(RIDER),
        Req::get("/orders").customer(CUSTOMER),
        Req::get("/orders").customer(OTHER_CUSTOMER),
    ];
    for order in &history.orders[..] {
        requests.push(Req::get("/orders/{orderId}").path("orderId", order).customer(CUSTOMER));
    }
    let mut answers = vec![];
    for request in requests {
        let reply = world.send(request).await;
        answers.push(json!({ "status": reply.status, "body": reply.body }));
    }
    answers
}

/// A fixed shuffle: a permutation by a small linear congruential walk.
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut keyed: Vec<(u64, T)> = items
        .iter()
        .enumerate()
        .map(|(i, item)| ((i as u64 + seed).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) >> 33, item.clone()))
        .collect();
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, item)| item).collect()
}

#[tokio::test]
async fn projections_fed_duplicates_out_of_order_converge_to_the_in_order_views() {
    let history = history().await;
    let events = history.world.events();
    assert!(events.len() >= 25, "a rich history: {} events", events.len());
    let expected_documents = documents(&history.world, &history).await;
    let expected_answers = answers(&history.world, &history).await;
    assert!(expected_documents.iter().filter(|(_, _, doc)| doc.is_some()).count() >= 12, "the history fills every view");

    for (name, feed) in [
        ("reversed", events.iter().rev().cloned().collect::<Vec<_>>()),
        ("shuffled", shuffled(&events, 7)),
        ("each twice, shuffled", shuffled(&[events.clone(), events.clone()].concat(), 11)),
        ("in order, then all again reversed", [events.clone(), events.iter().rev().cloned().collect()].concat()),
    ] {
        let fresh = World::new();
        project(&fresh, &feed).await;
        assert_eq!(documents(&fresh, &history).await, expected_documents, "{name}: the view documents converge");
        assert_eq!(answers(&fresh, &history).await, expected_answers, "{name}: users see the same answers");
    }
}

#[tokio::test]
async fn a_repeated_or_stale_event_writes_nothing() {
    let world = World::new();
    let (store_id, order_id) = world.order_at("cooking").await;
    let revision = |view: &'static str, key: String| {
        let views = world.deps.views.clone();
        async move { views.get(view, &key).await.unwrap().expect("the document exists").revision }
    };
    let status_before = revision("order-status", order_id.clone()).await;
    let queue_before = revision("store-queue", order_id.clone()).await;
    let board_before = revision("delivery-board", order_id.clone()).await;
    let catalog_before = revision("catalog", store_id.clone()).await;
    let events: Vec<Envelope> = world.events().into_iter().filter(|e| e.aggregate_id == order_id || e.aggregate_id == store_id).collect();
    project(&world, &events).await;
    assert_eq!(revision("order-status", order_id.clone()).await, status_before, "order-status was not rewritten");
    assert_eq!(revision("store-queue", order_id.clone()).await, queue_before, "store-queue was not rewritten");
    assert_eq!(revision("delivery-board", order_id.clone()).await, board_before, "delivery-board was not rewritten");
    assert_eq!(revision("catalog", store_id.clone()).await, catalog_before, "catalog was not rewritten");
}

#[tokio::test]
async fn a_store_is_listed_once_its_registration_arrives_with_the_newest_menu() {
    let source = World::new();
    let store_id = source.register_store(OWNER, REGION).await;
    let menu = json!({ "menu": [{ "menuId": "m1", "name": "Margherita", "price": 1000 }] });
    source.send(Req::put("/stores/{storeId}/menu").path("storeId", &store_id).owner(OWNER).json(menu)).await.expect(200);
    let events = source.stream("Store", &store_id);
    let (registered, changed) = (&events[0], &events[1]);

    let world = World::new();
    world.deliver("project-catalog", changed).await.unwrap();
    let get = || Req::get("/stores/{storeId}").path("storeId", &store_id).customer(CUSTOMER);
    world.send(get()).await.problem(404, "not found");
    let region = world.send(Req::get("/stores").query("region", REGION).customer(CUSTOMER)).await;
    assert_eq!(region.expect(200)["stores"], json!([]), "not listed before its registration is seen");

    world.deliver("project-catalog", registered).await.unwrap();
    let reply = world.send(get()).await;
    let listing = reply.expect(200);
    assert_eq!(listing["name"], "Luigi's");
    assert_eq!(
        listing["menu"],
        json!([{ "menuId": "m1", "name": "Margherita", "price": 1000 }]),
        "the later menu wins over the registration's"
    );
}

#[tokio::test]
async fn the_delivery_board_takes_a_pick_up_before_the_opening() {
    let source = World::new();
    let (_, order_id) = source.order_at("picked-up").await;
    let events = source.stream("Delivery", &order_id);
    assert_eq!(events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(), ["DeliveryOpened", "FoodReady", "DeliveryPicked"]);

    let world = World::new();
    world.deliver("project-delivery-board", &events[2]).await.unwrap();
    world.deliver("project-delivery-board", &events[0]).await.unwrap();
    let board = world.send(Req::get("/deliveries").query("region", REGION).rider(OTHER_RIDER)).await;
    assert_eq!(board.expect(200)["deliveries"], json!([]), "a taken delivery is never offered, however late its opening");
    world.deliver("project-delivery-board", &events[1]).await.unwrap();
    let board = world.send(Req::get("/deliveries").query("region", REGION).rider(OTHER_RIDER)).await;
    assert_eq!(board.expect(200)["deliveries"], json!([]));
}

#[tokio::test]
async fn one_order_counts_once_in_popular_menus_however_often_it_arrives() {
    let source = World::new();
    let store_id = source.register_store(OWNER, REGION).await;
    let order_id = source.place_order(CUSTOMER, &store_id, &[("m2", 2)]).await;
    let placed = source.last_event("Order", &order_id, "OrderPlaced");

    let world = World::new();
    for _ in 0..3 {
        world.deliver("project-popular-menus", &placed).await.unwrap();
    }
    let reply = world.send(Req::get("/stores/{storeId}/popular-menus").path("storeId", &store_id).customer(CUSTOMER)).await;
    assert_eq!(reply.expect(200)["items"], json!([{ "menuId": "m2", "name": "Tiramisu", "orders": 1, "quantity": 2 }]));
}

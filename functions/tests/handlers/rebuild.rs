//! `rebuild-views`, invoked by hand: every view folded afresh from the event
//! store replaces what is stored, so a corrupted, stale or deleted document
//! is back to what the live projections made, and users see the same answers.

use crate::support::*;
use async_trait::async_trait;
use functions::Deps;
use functions::ports::{ViewDoc, ViewError, ViewStore};
use functions::rebuild::VIEWS;
use functions::registry::{self, Handler, HandlerError};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Every document of `views` for these keys, without revisions.
async fn documents(deps: &Deps, keys: &[String]) -> Vec<(String, String, Option<(String, Value)>)> {
    let mut documents = Vec::new();
    for view in VIEWS {
        for key in keys {
            let doc = deps.views.get(view, key).await.expect("the view store reads");
            documents.push((view.to_string(), key.clone(), doc.map(|doc| (doc.partition, body_json(&doc.body)))));
        }
    }
    documents
}

async fn rebuild_views(deps: &Deps, payload: Value) -> Result<Value, HandlerError> {
    let Some(Handler::Invoke(handler)) = registry::handler("rebuild-views") else { panic!("rebuild-views is invoked by hand") };
    registry::invoke_operation("rebuild-views", handler, deps, payload).await
}

/// How many documents the rebuild rewrote, by view.
fn rewritten(report: &Value) -> Vec<(String, u64)> {
    let views = report["views"].as_array().expect("a report by view");
    views
        .iter()
        .map(|view| (view["view"].as_str().unwrap_or_default().to_owned(), view["rewritten"].as_u64().unwrap_or(u64::MAX)))
        .collect()
}

fn counts(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
    pairs.iter().map(|(view, count)| (view.to_string(), *count)).collect()
}

/// A store, an order delivered and one cancelled: every view has documents.
async fn history(world: &World) -> Vec<String> {
    let (store_id, delivered) = world.order_at("delivered").await;
    let cancelled = world.place_order(OTHER_CUSTOMER, &store_id, &[("m2", 1)]).await;
    world.send(Req::post("/orders/{orderId}/cancel").path("orderId", &cancelled).customer(OTHER_CUSTOMER)).await.expect(200);
    world.settle().await;
    vec![store_id, delivered, cancelled]
}

#[tokio::test]
async fn a_rebuild_restores_corrupted_stale_and_deleted_documents_and_touches_nothing_else() {
    let world = World::new();
    let keys = history(&world).await;
    let (store_id, delivered, cancelled) = (&keys[0], &keys[1], &keys[2]);
    let live = documents(&world.deps, &keys).await;
    let order_before = world.order_view(CUSTOMER, delivered).await;

    // Damage three views: a body the projection cannot read, a stale but
    // readable listing, and a document gone.
    let views = world.deps.views.clone();
    let status = views.get("order-status", delivered).await.unwrap().expect("the order's status");
    views
        .put(
            "order-status",
            &ViewDoc { body: body(json!({ "status": "lost" })), revision: status.revision + 1, ..status.clone() },
            status.revision,
        )
        .await
        .unwrap();
    let listing = views.get("catalog", store_id).await.unwrap().expect("the store's listing");
    let mut stale = body_json(&listing.body);
    stale["name"] = json!("Closed for good");
    views
        .put("catalog", &ViewDoc { body: body(stale), revision: listing.revision + 1, ..listing.clone() }, listing.revision)
        .await
        .unwrap();
    let gone = world
        .database
        .write_blocking({
            let cancelled = cancelled.clone();
            move |c| c.execute("DELETE FROM views WHERE view = 'store-queue' AND key = ?1", [cancelled])
        })
        .unwrap();
    assert_eq!(gone, 1, "the cancelled order's queue entry is deleted");
    assert_ne!(documents(&world.deps, &keys).await, live, "the views are damaged");
    let replayed = world.deliver("project-order-status", &world.last_event("Order", delivered, "OrderDelivered")).await;
    assert!(matches!(replayed, Err(HandlerError::View(ViewError::Corrupt(_)))), "the live projection cannot fold onto it: {replayed:?}");

    let report = rebuild_views(&world.deps, json!({})).await.expect("the rebuild runs");
    assert_eq!(report["events"], json!(world.events().len()), "every stored event is read");
    assert_eq!(
        rewritten(&report),
        counts(&[("order-status", 1), ("store-queue", 1), ("delivery-board", 0), ("popular-menus", 0), ("catalog", 1)]),
        "exactly the damaged documents are rewritten: {report}"
    );
    assert_eq!(documents(&world.deps, &keys).await, live, "every document is what the live projections made");
    assert_eq!(world.order_view(CUSTOMER, delivered).await, order_before, "the customer sees the order as before");

    let again = rebuild_views(&world.deps, Value::Null).await.expect("a second rebuild runs");
    assert!(rewritten(&again).iter().all(|(_, count)| *count == 0), "a rebuild of right views writes nothing: {again}");
}

#[tokio::test]
async fn a_rebuild_of_one_view_leaves_the_others_alone() {
    let world = World::new();
    let keys = history(&world).await;
    let delivered = &keys[1];
    world
        .database
        .write_blocking({
            let delivered = delivered.clone();
            move |c| c.execute("DELETE FROM views WHERE key = ?1", [delivered])
        })
        .unwrap();

    let report = rebuild_views(&world.deps, json!({ "views": ["delivery-board"] })).await.expect("the rebuild runs");
    assert_eq!(rewritten(&report), counts(&[("delivery-board", 1)]), "{report}");
    assert!(world.deps.views.get("delivery-board", delivered).await.unwrap().is_some(), "the board entry is back");
    assert_eq!(world.deps.views.get("order-status", delivered).await.unwrap(), None, "a view not asked for is not rebuilt");
}

/// The rolling snapshot is a shortcut for loading: a rebuild still reads the
/// events it covers (the store's registration names it in the catalog).
#[tokio::test]
async fn a_rebuild_reads_the_events_a_snapshot_covers() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    for price in 0..12 {
        let menu = json!({ "menu": [{ "menuId": "m1", "name": "Margherita", "price": 900 + price }] });
        world.send(Req::put("/stores/{storeId}/menu").path("storeId", &store_id).owner(OWNER).json(menu)).await.expect(200);
    }
    world.settle().await;
    let loaded = world.deps.events.load("Store", &store_id).await.unwrap();
    assert!(loaded.snapshot.is_some_and(|snapshot| snapshot.version >= 10), "the store's stream is snapshotted");
    let listing = world.deps.views.get("catalog", &store_id).await.unwrap().expect("listed");
    world.database.write_blocking(|c| c.execute("DELETE FROM views WHERE view = 'catalog'", [])).unwrap();

    rebuild_views(&world.deps, json!({ "views": ["catalog"] })).await.expect("the rebuild runs");
    let rebuilt = world.deps.views.get("catalog", &store_id).await.unwrap().expect("listed again");
    assert_eq!(
        (rebuilt.partition, body_json(&rebuilt.body)),
        (listing.partition, body_json(&listing.body)),
        "the listing has its name and newest menu"
    );
}

/// A stored body that says what the fold makes, in other whitespace and key
/// order, is not rewritten.
#[tokio::test]
async fn a_rebuild_leaves_a_body_formatted_differently_alone() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    world.settle().await;
    let listing = world.deps.views.get("catalog", &store_id).await.unwrap().expect("listed");
    let pretty = serde_json::to_string_pretty(&body_json(&listing.body)).unwrap();
    assert_ne!(pretty, listing.body, "the text differs");
    let reformatted = ViewDoc { body: pretty, revision: listing.revision + 1, ..listing.clone() };
    world.deps.views.put("catalog", &reformatted, listing.revision).await.unwrap();

    let report = rebuild_views(&world.deps, json!({ "views": ["catalog"] })).await.expect("the rebuild runs");
    assert_eq!(rewritten(&report), counts(&[("catalog", 0)]), "{report}");
    assert_eq!(world.deps.views.get("catalog", &store_id).await.unwrap(), Some(reformatted), "the stored text is kept");
}

/// Writes go through, but the first put of each document finds that a live
/// projection wrote it a moment before.
struct RacedViews {
    inner: Arc<dyn ViewStore>,
    races: AtomicUsize,
}

#[async_trait]
impl ViewStore for RacedViews {
    async fn get(&self, view: &str, key: &str) -> Result<Option<ViewDoc>, ViewError> {
        self.inner.get(view, key).await
    }
    async fn put(&self, view: &str, doc: &ViewDoc, expected: u64) -> Result<(), ViewError> {
        if self.races.fetch_add(1, Ordering::SeqCst) == 0 {
            let live = ViewDoc { body: body(json!({ "written": "live" })), revision: expected + 1, ..doc.clone() };
            self.inner.put(view, &live, expected).await?;
        }
        self.inner.put(view, doc, expected).await
    }
    async fn query(&self, view: &str, partition: &str) -> Result<Vec<ViewDoc>, ViewError> {
        self.inner.query(view, partition).await
    }
}

#[tokio::test]
async fn a_live_update_racing_the_rebuild_makes_it_read_again_and_retry() {
    let world = World::new();
    let keys = history(&world).await;
    let live = documents(&world.deps, &keys).await;
    world
        .database
        .write_blocking({
            let key = keys[1].clone();
            move |c| c.execute("DELETE FROM views WHERE view = 'order-status' AND key = ?1", [key])
        })
        .unwrap();
    let raced = Arc::new(RacedViews { inner: world.deps.views.clone(), races: AtomicUsize::new(0) });
    let deps = Deps { views: raced.clone(), ..world.deps.clone() };

    let report = rebuild_views(&deps, json!({ "views": ["order-status"] })).await.expect("the rebuild retries past the race");
    assert_eq!(rewritten(&report), counts(&[("order-status", 1)]), "{report}");
    assert!(raced.races.load(Ordering::SeqCst) >= 2, "the first put lost the race and was retried");
    assert_eq!(documents(&world.deps, &keys).await, live, "the rebuilt document wins");
}

#[tokio::test]
async fn a_payload_it_cannot_take_is_refused_and_changes_nothing() {
    let world = World::new();
    let keys = history(&world).await;
    let live = documents(&world.deps, &keys).await;
    for (payload, refusal) in [
        (json!({ "views": ["order-status", "kitchen-gossip"] }), "there is no view \"kitchen-gossip\""),
        (json!({ "view": "order-status" }), "bad payload"),
        (json!({ "views": "order-status" }), "bad payload"),
        (json!(["order-status"]), "bad payload"),
    ] {
        match rebuild_views(&world.deps, payload.clone()).await {
            Err(error) => assert!(error.to_string().contains(refusal), "{payload}: {error}"),
            Ok(report) => panic!("{payload} must be refused, got {report}"),
        }
    }
    assert_eq!(documents(&world.deps, &keys).await, live, "a refused rebuild writes nothing");
}

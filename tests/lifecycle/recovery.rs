//! Replay and recovery on the local runner: a replay from a point in time
//! changes nothing anyone sees, a rebuild repairs damaged views, and a
//! consumer that was down gets what it missed once its dead letters are
//! redriven.

use super::{STATUSES, timeline};
use food_delivery::{Answer, Cast, REGION, System, kitchen, place_order, register_store, repository};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Customers cannot be told anything: every notification fails, as when
/// SNS is unavailable, until `notifications_up`. Kept in the data, so it
/// lasts across a restart.
pub fn notifications_down(system: &System) {
    system
        .running()
        .database
        .write_blocking(|c| {
            c.execute_batch("CREATE TRIGGER sns_down BEFORE INSERT ON notifications BEGIN SELECT RAISE(ABORT, 'SNS is down'); END;")
        })
        .expect("the notifications go down");
}

pub fn notifications_up(system: &System) {
    system.running().database.write_blocking(|c| c.execute_batch("DROP TRIGGER sns_down")).expect("the notifications come back");
}

/// Deliveries to `target` that failed and wait for their retry.
pub fn pending_retries(system: &System, target: &str) -> i64 {
    system
        .running()
        .database
        .read(|c| c.query_row("SELECT COUNT(*) FROM deliveries WHERE target = ?1 AND attempts > 0", [target], |row| row.get(0)))
        .expect("the deliveries read")
}

/// Waits until a delivery to `target` has failed and waits for its retry.
pub async fn until_a_retry_is_pending(system: &System, target: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pending_retries(system, target) == 0 {
        assert!(Instant::now() < deadline, "no delivery to {target} failed within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Everything the cast can see of the store and the order.
async fn seen(system: &System, cast: &Cast, store_id: &str, order_id: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    for (path, token) in [
        (format!("/orders/{order_id}"), &cast.customer),
        ("/orders".to_owned(), &cast.customer),
        (format!("/stores/{store_id}/orders"), &cast.owner),
        (format!("/deliveries?region={REGION}"), &cast.rider),
        (format!("/stores?region={REGION}"), &cast.customer),
        (format!("/stores/{store_id}"), &cast.customer),
        (format!("/stores/{store_id}/popular-menus"), &cast.customer),
    ] {
        let answer = system.get(&path, token).await;
        seen.push(json!({ "path": path, "status": answer.status, "body": answer.body }));
    }
    seen
}

/// A store and one order taken all the way to its delivery.
async fn delivered_order(system: &System, cast: &Cast) -> (String, String) {
    let store_id = register_store(system, cast).await;
    let order_id = place_order(system, cast, &store_id).await;
    for step in ["accept", "start-cooking", "finish-cooking"] {
        kitchen(system, cast, &store_id, &order_id, step).await;
    }
    system.settle().await;
    assert_eq!(system.post(&format!("/deliveries/{order_id}/pick"), &cast.rider, None).await.status, 200);
    assert_eq!(system.post(&format!("/deliveries/{order_id}/complete"), &cast.rider, None).await.status, 200);
    system.settle().await;
    (store_id, order_id)
}

fn statuses(told: Vec<(String, String)>) -> Vec<String> {
    told.into_iter().map(|(status, _)| status).collect()
}

async fn local(system: &System, path: &str, body: Option<Value>) -> Answer {
    system.call(Method::POST, path, None, body).await
}

fn assert_problem(answer: &Answer, status: u16, what: &str) {
    assert_eq!((answer.status, answer.content_type.as_str()), (status, "application/problem+json"), "{what}: {answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_from_a_point_in_time_changes_nothing_anyone_sees_and_tells_nobody_twice() {
    let system = System::start().await;
    let cast = Cast::new(&system).await;
    let (store_id, order_id) = delivered_order(&system, &cast).await;
    let before = seen(&system, &cast, &store_id, &order_id).await;
    let told = statuses(system.notifications("alice").await);
    assert_eq!(told, STATUSES);
    // The views that missed the order: the replay brings them back.
    system
        .running()
        .database
        .write_blocking(|c| c.execute("DELETE FROM views WHERE view IN ('order-status', 'popular-menus')", []))
        .unwrap();
    assert_eq!(system.get(&format!("/orders/{order_id}"), &cast.customer).await.status, 404, "the order's status is gone");

    let since = before[0]["body"]["timeline"][0]["time"].as_str().expect("the order's placing time").to_owned();
    let replayed = local(&system, "/local/replay", Some(json!({ "since": since }))).await;
    assert_eq!(replayed.status, 200, "{replayed:?}");
    // The payment, the order's six changes and the delivery's four steps;
    // the store's registration came before and is not replayed.
    assert_eq!(replayed.at("/events"), &json!(11), "{replayed:?}");
    assert!(replayed.at("/deliveries").as_u64().is_some_and(|n| n > 11), "each event to every rule that takes it: {replayed:?}");
    system.settle().await;

    assert_eq!(seen(&system, &cast, &store_id, &order_id).await, before, "every view is as it was");
    assert_eq!(statuses(system.notifications("alice").await), told, "nobody is told anything twice");
    assert_eq!(system.ledger(), (1, 0), "charged once, never refunded");
    assert!(system.dead_letters().await.is_empty());

    for (body, what) in [
        (None, "no body"),
        (Some(json!({ "since": "yesterday" })), "a time that is not RFC 3339"),
        (Some(json!({ "since": since, "until": since })), "an unknown field"),
        (Some(json!(["not", "an", "object"])), "not an object"),
    ] {
        assert_problem(&local(&system, "/local/replay", body).await, 400, what);
    }
    let future = local(&system, "/local/replay", Some(json!({ "since": "2999-01-01T00:00:00Z" }))).await;
    assert_eq!((future.status, future.at("/events")), (200, &json!(0)), "nothing happened after that: {future:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_restores_damaged_views_and_refuses_a_view_it_does_not_know() {
    let system = System::start().await;
    let cast = Cast::new(&system).await;
    let (store_id, order_id) = delivered_order(&system, &cast).await;
    let before = seen(&system, &cast, &store_id, &order_id).await;
    system
        .running()
        .database
        .write_blocking(|c| {
            c.execute("UPDATE views SET body = '{\"status\": \"lost\"}' WHERE view = 'order-status'", [])?;
            c.execute("DELETE FROM views WHERE view IN ('catalog', 'delivery-board')", [])
        })
        .unwrap();
    assert_ne!(seen(&system, &cast, &store_id, &order_id).await, before, "the views are damaged");

    assert_problem(&local(&system, "/local/rebuild", Some(json!({ "views": ["kitchen-gossip"] }))).await, 400, "an unknown view");
    assert_problem(&local(&system, "/local/rebuild", Some(json!({ "view": "catalog" }))).await, 400, "an unknown field");
    let rebuilt = local(&system, "/local/rebuild", None).await;
    assert_eq!(rebuilt.status, 200, "{rebuilt:?}");
    let rewritten: u64 = rebuilt.at("/views").as_array().expect("a report by view").iter().filter_map(|v| v["rewritten"].as_u64()).sum();
    assert_eq!(rewritten, 3, "the status, the listing and the board entry: {rebuilt:?}");
    assert_eq!(seen(&system, &cast, &store_id, &order_id).await, before, "every view is as the live projections made it");
}

/// A template whose rules give up after one retry, so dead letters come in
/// a fraction of a second instead of EventBridge's twenty retries.
fn impatient_template(directory: &tempfile::TempDir) -> std::path::PathBuf {
    let template = std::fs::read_to_string(repository().join("template.yaml")).expect("template.yaml reads");
    assert!(template.contains("MaximumRetryAttempts: 20"), "the rules retry twenty times");
    let path = directory.path().join("template.yaml");
    std::fs::write(&path, template.replace("MaximumRetryAttempts: 20", "MaximumRetryAttempts: 1")).expect("the variant is written");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_was_down_gets_what_it_missed_once_its_dead_letters_are_redriven() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let mut system = System::start_with(impatient_template(&directory)).await;
    let cast = Cast::new(&system).await;
    let store_id = register_store(&system, &cast).await;
    system.settle().await;
    notifications_down(&system);
    let order_id = place_order(&system, &cast, &store_id).await;
    kitchen(&system, &cast, &store_id, &order_id, "accept").await;
    system.settle().await;

    let letters = system.dead_letters().await;
    let targets: Vec<&str> = letters.iter().map(|letter| letter["target"].as_str().unwrap_or("")).collect();
    assert_eq!(targets, ["notify-customer", "notify-customer"], "the placed and accepted notifications are parked: {letters:?}");
    assert!(system.notifications("alice").await.is_empty(), "nobody was told");
    assert_eq!(system.get(&format!("/orders/{order_id}"), &cast.customer).await.text("/status"), "accepted", "the others went on");

    // Down across a restart: the dead letters stay parked.
    system.restart().await;
    assert_eq!(system.dead_letters().await.len(), 2);
    notifications_up(&system);
    let redriven = local(&system, "/local/dead-letters/redrive", None).await;
    assert_eq!((redriven.status, redriven.at("/redriven"), redriven.at("/kept")), (200, &json!(2), &json!([])), "{redriven:?}");
    system.settle().await;
    assert_eq!(statuses(system.notifications("alice").await), ["placed", "accepted"], "told of each change, once");
    assert!(system.dead_letters().await.is_empty(), "nothing is parked any more");

    let again = local(&system, "/local/dead-letters/redrive", None).await;
    assert_eq!(again.at("/redriven"), &json!(0), "nothing left to redrive");
    kitchen(&system, &cast, &store_id, &order_id, "start-cooking").await;
    system.settle().await;
    assert_eq!(statuses(system.notifications("alice").await), ["placed", "accepted", "cooking"], "and told of what comes next");
    let order = system.get(&format!("/orders/{order_id}"), &cast.customer).await;
    assert_eq!(timeline(&order), ["placed", "accepted", "cooking"]);
}

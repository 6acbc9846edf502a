//! `Idempotency-Key` on every command: a retried request gets the first
//! answer, never a second order or charge; a key reused for another request
//! is 422; a failure (5xx) is not kept, and a run that crashed is taken over
//! onto the same charge.

use crate::support::*;
use async_trait::async_trait;
use functions::ports::{
    AppendStream, ChargeReceipt, ChargeRecord, ChargeRequest, EventStore, LoadedStream, PaymentError, PaymentGateway, StoreError,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Barrier;

const KEY: &str = "3f1c9a2e-order-attempt";

fn order_body(store_id: &str, quantity: u32) -> Value {
    json!({
        "storeId": store_id,
        "items": [{ "menuId": "m1", "quantity": quantity }],
        "region": REGION,
        "address": ADDRESS,
        "paymentToken": "tok_visa",
    })
}

fn place(customer: &str, store_id: &str, key: &str) -> Req {
    Req::post("/orders").customer(customer).header("Idempotency-Key", key).json(order_body(store_id, 2))
}

/// The orders stored, by the events that place them.
fn orders_placed(world: &World) -> Vec<String> {
    world.events().into_iter().filter(|e| e.event_type == "OrderPlaced").map(|e| e.aggregate_id).collect()
}

/// Charges not refunded.
fn live_charges(world: &World) -> usize {
    world.processor.charge_count() - world.processor.refund_count()
}

#[track_caller]
fn assert_replay_of(replay: &Reply, first: &Reply) {
    assert_eq!(replay.header("idempotency-replayed"), Some("true"), "a replay says so: {:?}", replay.headers);
    assert_eq!((replay.status, &replay.body), (first.status, &first.body), "a replay is the first answer");
    for header in ["content-type", "location", "retry-after"] {
        assert_eq!(replay.header(header), first.header(header), "a replay repeats {header}");
    }
}

#[track_caller]
fn assert_unprocessable(reply: &Reply) {
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    assert_eq!(reply.body["title"], "Unprocessable Content");
    assert_eq!(reply.body["detail"], "this Idempotency-Key was used with a different request");
}

// ================================================================== replays

#[tokio::test]
async fn the_same_key_and_body_twice_places_one_order_and_replays_the_answer() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let first = world.send(place(CUSTOMER, &store_id, KEY)).await;
    first.expect(201);
    assert_eq!(first.header("idempotency-replayed"), None, "the first answer is no replay");
    let order_id = first.body["orderId"].as_str().unwrap().to_owned();
    assert_eq!(first.header("location"), Some(format!("/orders/{order_id}").as_str()));

    let again = world.send(place(CUSTOMER, &store_id, KEY)).await;
    assert_replay_of(&again, &first);
    // The header's name is case-insensitive, as HTTP says.
    let shouted = world.send(Req::post("/orders").customer(CUSTOMER).header("IDEMPOTENCY-KEY", KEY).json(order_body(&store_id, 2))).await;
    assert_replay_of(&shouted, &first);

    assert_eq!(orders_placed(&world), [order_id], "one order");
    assert_eq!(world.processor.charge_count(), 1, "one charge");
    assert_eq!(world.processor.refund_count(), 0);
}

#[tokio::test]
async fn refusals_are_replayed_too() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let declined = || {
        let mut body = order_body(&store_id, 1);
        body["paymentToken"] = json!("tok_decline");
        Req::post("/orders").customer(CUSTOMER).header("Idempotency-Key", KEY).json(body)
    };
    let first = world.send(declined()).await;
    first.problem(402, "declined");
    assert_replay_of(&world.send(declined()).await, &first);
    assert!(orders_placed(&world).is_empty());
}

#[tokio::test]
async fn the_same_key_with_a_different_request_is_422_and_changes_nothing() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let first = world.send(place(CUSTOMER, &store_id, KEY)).await;
    let order_id = first.expect(201)["orderId"].as_str().unwrap().to_owned();
    let events = world.events().len();

    let more = Req::post("/orders").customer(CUSTOMER).header("Idempotency-Key", KEY).json(order_body(&store_id, 3));
    assert_unprocessable(&world.send(more).await);
    let elsewhere = Req::post("/orders/{orderId}/cancel").path("orderId", &order_id).customer(CUSTOMER).header("Idempotency-Key", KEY);
    assert_unprocessable(&world.send(elsewhere).await);

    assert_eq!(world.events().len(), events, "nothing new is stored");
    world.settle().await;
    assert_eq!(world.processor.charge_count(), 1, "nothing new is charged");
    assert_eq!(world.order_view(CUSTOMER, &order_id).await["status"], "placed", "the order was not cancelled");
    assert_replay_of(&world.send(place(CUSTOMER, &store_id, KEY)).await, &first);
}

#[tokio::test]
async fn keys_are_per_caller() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let bob = world.send(place(CUSTOMER, &store_id, KEY)).await;
    let eve = world.send(place(OTHER_CUSTOMER, &store_id, KEY)).await;
    bob.expect(201);
    eve.expect(201);
    assert_eq!(eve.header("idempotency-replayed"), None, "another customer's key is not replayed");
    assert_ne!(bob.body["orderId"], eve.body["orderId"], "two customers, two orders");
    assert_eq!(orders_placed(&world).len(), 2);
    assert_eq!(world.processor.charge_count(), 2);
}

#[tokio::test]
async fn a_key_past_its_retention_is_forgotten() {
    let mut world = World::new();
    world.deps.settings.idempotency.retention = Duration::ZERO;
    let store_id = world.register_store(OWNER, REGION).await;
    let first = world.send(place(CUSTOMER, &store_id, KEY)).await;
    let again = world.send(place(CUSTOMER, &store_id, KEY)).await;
    first.expect(201);
    again.expect(201);
    assert_eq!(again.header("idempotency-replayed"), None, "an expired key is new again");
    assert_ne!(first.body["orderId"], again.body["orderId"], "a new order, not the forgotten one");
    assert_eq!((orders_placed(&world).len(), live_charges(&world)), (2, 2));
}

#[tokio::test]
async fn malformed_keys_are_400_and_change_nothing() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let longest = "k".repeat(255);
    for bad in ["", "has space", "clé", "tab\there", &"k".repeat(256)] {
        let reply = world.send(place(CUSTOMER, &store_id, bad)).await;
        reply.problem(400, "Idempotency-Key must be 1 to 255 visible ASCII characters");
    }
    assert!(orders_placed(&world).is_empty(), "no order for a malformed key");
    assert_eq!(world.processor.charge_count(), 0);
    let first = world.send(place(CUSTOMER, &store_id, &longest)).await;
    first.expect(201);
    assert_replay_of(&world.send(place(CUSTOMER, &store_id, &longest)).await, &first);
}

#[tokio::test]
async fn without_a_token_the_key_is_not_looked_at() {
    let world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let anonymous = Req::post("/orders").header("Idempotency-Key", "has space").json(order_body(&store_id, 1));
    world.send(anonymous).await.problem(401, "bearer token");
}

// =============================================================== in flight

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_while_the_first_runs_is_409_with_retry_after() {
    let world = Arc::new(World::new());
    let store_id = world.register_store(OWNER, REGION).await;
    let slow = || {
        let mut body = order_body(&store_id, 1);
        body["paymentToken"] = json!("tok_slow");
        Req::post("/orders").customer(CUSTOMER).header("Idempotency-Key", KEY).json(body)
    };
    let first = tokio::spawn({
        let (world, request) = (world.clone(), slow());
        async move { world.send(request).await }
    });
    // Until the first has claimed the key.
    for _ in 0..1000 {
        if !world.deps.views.query(functions::idempotency::VIEW, CUSTOMER).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let busy = world.send(slow()).await;
    busy.problem(409, "in progress");
    assert_eq!(busy.header("retry-after"), Some("1"));

    let first = first.await.unwrap();
    first.expect(201);
    assert_replay_of(&world.send(slow()).await, &first);
    assert_eq!(world.processor.charge_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_duplicates_place_exactly_one_order() {
    let world = Arc::new(World::new());
    let store_id = world.register_store(OWNER, REGION).await;
    let barrier = Arc::new(Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (world, barrier, request) = (world.clone(), barrier.clone(), place(CUSTOMER, &store_id, KEY));
            tokio::spawn(async move {
                barrier.wait().await;
                world.send(request).await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    let (ran, others): (Vec<_>, Vec<_>) = replies.into_iter().partition(|r| r.status == 201 && r.header("idempotency-replayed").is_none());
    assert_eq!(ran.len(), 1, "exactly one request runs: {:?}", others.iter().map(|r| (r.status, &r.body)).collect::<Vec<_>>());
    for other in &others {
        if other.status == 409 {
            other.problem(409, "in progress");
            assert_eq!(other.header("retry-after"), Some("1"));
        } else {
            assert_replay_of(other, &ran[0]);
        }
    }
    assert_eq!(orders_placed(&world).len(), 1, "one order");
    assert_eq!(world.processor.charge_count(), 1, "one charge");
}

// ============================================================== failures

/// The event store with faults switched on by the test: a load or an append
/// that fails once, or an append that never returns, before or after it
/// stored (a Lambda timing out there).
struct FaultyStore {
    inner: Arc<dyn EventStore>,
    fail_load: AtomicBool,
    fail_append: AtomicBool,
    hang_before_append: AtomicBool,
    hang_after_append: AtomicBool,
    /// Set once an append hangs: the run is as far as it will get.
    hung: AtomicBool,
}

impl FaultyStore {
    fn around(world: &mut World) -> Arc<FaultyStore> {
        let store = Arc::new(FaultyStore {
            inner: world.deps.events.clone(),
            fail_load: AtomicBool::new(false),
            fail_append: AtomicBool::new(false),
            hang_before_append: AtomicBool::new(false),
            hang_after_append: AtomicBool::new(false),
            hung: AtomicBool::new(false),
        });
        world.deps.events = store.clone();
        store
    }
}

#[async_trait]
impl EventStore for FaultyStore {
    async fn load(&self, aggregate_type: &str, aggregate_id: &str) -> Result<LoadedStream, StoreError> {
        if self.fail_load.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Unavailable("throttled".into()));
        }
        self.inner.load(aggregate_type, aggregate_id).await
    }
    async fn append(&self, streams: Vec<AppendStream>) -> Result<(), StoreError> {
        if self.fail_append.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Unavailable("throttled".into()));
        }
        if self.hang_before_append.swap(false, Ordering::SeqCst) {
            self.hung.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        self.inner.append(streams).await?;
        if self.hang_after_append.swap(false, Ordering::SeqCst) {
            self.hung.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_5xx_is_not_kept_and_a_retry_with_the_key_runs_again() {
    let mut world = World::new();
    let store = FaultyStore::around(&mut world);
    let store_id = world.register_store(OWNER, REGION).await;
    store.fail_load.store(true, Ordering::SeqCst);
    world.send(place(CUSTOMER, &store_id, KEY)).await.problem(503, "try again");
    assert_eq!(world.processor.charge_count(), 0, "it failed before paying");

    let retry = world.send(place(CUSTOMER, &store_id, KEY)).await;
    retry.expect(201);
    assert_eq!(retry.header("idempotency-replayed"), None, "the failure was not kept: the retry ran");
    assert_eq!(orders_placed(&world).len(), 1);
    assert_eq!(world.processor.charge_count(), 1, "one charge");
}

#[tokio::test]
async fn a_retry_after_a_refunded_attempt_pays_with_a_fresh_charge() {
    let mut world = World::new();
    let store = FaultyStore::around(&mut world);
    let store_id = world.register_store(OWNER, REGION).await;
    store.fail_append.store(true, Ordering::SeqCst);
    world.send(place(CUSTOMER, &store_id, KEY)).await.problem(503, "try again");
    assert_eq!((world.processor.charge_count(), world.processor.refund_count()), (1, 1), "charged, then refunded");

    let order_id = world.send(place(CUSTOMER, &store_id, KEY)).await.expect(201)["orderId"].as_str().unwrap().to_owned();
    // A processor that honours idempotency keys would hand the refunded
    // charge back under the same order id: the retry must not be paid by it.
    let charge_id = world.last_event("Payment", &order_id, "PaymentApproved").payload()["chargeId"].as_str().unwrap().to_owned();
    assert!(!world.processor.is_refunded(&charge_id), "the order is paid by a live charge");
    assert_eq!(live_charges(&world), 1, "the customer pays once");
    assert_eq!(orders_placed(&world), [order_id]);
}

/// The simulator, except that every refund fails.
struct RefundsFail(Arc<functions::embedded::SimulatedProcessor>);

#[async_trait]
impl PaymentGateway for RefundsFail {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeReceipt, PaymentError> {
        self.0.charge(request).await
    }
    async fn refund(&self, _: &str, _: domain::Money) -> Result<(), PaymentError> {
        Err(PaymentError::Unavailable("refunds are down".into()))
    }
    async fn charges_between(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<ChargeRecord>, PaymentError> {
        self.0.charges_between(from, until).await
    }
}

#[tokio::test]
async fn a_retry_after_a_failed_refund_is_paid_by_the_charge_already_taken() {
    let mut world = World::new();
    let store = FaultyStore::around(&mut world);
    world.deps.payments = Arc::new(RefundsFail(world.processor.clone()));
    let store_id = world.register_store(OWNER, REGION).await;
    store.fail_append.store(true, Ordering::SeqCst);
    world.send(place(CUSTOMER, &store_id, KEY)).await.problem(503, "try again");

    let order_id = world.send(place(CUSTOMER, &store_id, KEY)).await.expect(201)["orderId"].as_str().unwrap().to_owned();
    assert_eq!(world.processor.charge_count(), 1, "the charge left standing pays for the order: one charge");
    assert_eq!(world.processor.refund_count(), 0);
    assert_eq!(orders_placed(&world), [order_id]);
}

/// Runs `request` until its append hangs, then drops it as a Lambda timeout
/// would.
async fn cut_off(world: &World, store: &FaultyStore, request: Req) {
    let hung = async {
        for _ in 0..2000 {
            if store.hung.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the append never hung");
    };
    tokio::select! {
        reply = world.send(request) => panic!("the request was meant to hang, but answered {} {}", reply.status, reply.body),
        () = hung => {}
    }
}

#[tokio::test]
async fn a_crash_between_charge_and_store_is_retried_onto_the_same_charge() {
    let mut world = World::new();
    world.deps.settings.idempotency.stale_after = Duration::ZERO;
    let store = FaultyStore::around(&mut world);
    let store_id = world.register_store(OWNER, REGION).await;
    store.hang_before_append.store(true, Ordering::SeqCst);
    cut_off(&world, &store, place(CUSTOMER, &store_id, KEY)).await;
    assert_eq!(world.processor.charge_count(), 1, "the crashed run had charged");
    assert!(orders_placed(&world).is_empty(), "and stored nothing");

    let retry = world.send(place(CUSTOMER, &store_id, KEY)).await;
    let order_id = retry.expect(201)["orderId"].as_str().unwrap().to_owned();
    assert_eq!(orders_placed(&world), std::slice::from_ref(&order_id), "one order");
    assert_eq!(world.processor.charge_count(), 1, "paid by the charge the crashed run took: one charge");
    assert_eq!(world.processor.refund_count(), 0, "nothing to refund");
    let charge_id = world.last_event("Payment", &order_id, "PaymentApproved").payload()["chargeId"].as_str().unwrap().to_owned();
    assert!(!world.processor.is_refunded(&charge_id));
}

#[tokio::test]
async fn a_crash_after_the_order_was_stored_answers_the_retry_with_that_order() {
    let mut world = World::new();
    world.deps.settings.idempotency.stale_after = Duration::ZERO;
    let store = FaultyStore::around(&mut world);
    let store_id = world.register_store(OWNER, REGION).await;
    store.hang_after_append.store(true, Ordering::SeqCst);
    cut_off(&world, &store, place(CUSTOMER, &store_id, KEY)).await;
    let stored = orders_placed(&world);
    assert_eq!(stored.len(), 1, "the crashed run stored its order");

    let retry = world.send(place(CUSTOMER, &store_id, KEY)).await;
    assert_eq!(
        retry.expect(201),
        &json!({ "orderId": stored[0], "status": "placed", "total": 1800 }),
        "the stored order, as first answered"
    );
    assert_eq!(retry.header("location"), Some(format!("/orders/{}", stored[0]).as_str()));
    assert_eq!(orders_placed(&world), stored, "no second order");
    assert_eq!((world.processor.charge_count(), world.processor.refund_count()), (1, 0), "one charge, never refunded");
}

/// Past the reconcile sweep's grace the crashed run's charge may be refunded
/// as orderless at any moment: the retry must not be paid by it.
#[tokio::test]
async fn a_crashed_run_taken_over_after_the_sweeps_grace_pays_with_a_fresh_charge() {
    let mut world = World::new();
    world.deps.settings.idempotency.stale_after = Duration::ZERO;
    world.deps.settings.reconcile.grace = Duration::from_millis(300);
    let store = FaultyStore::around(&mut world);
    let store_id = world.register_store(OWNER, REGION).await;
    store.hang_before_append.store(true, Ordering::SeqCst);
    cut_off(&world, &store, place(CUSTOMER, &store_id, KEY)).await;
    tokio::time::sleep(Duration::from_millis(350)).await;

    let order_id = world.send(place(CUSTOMER, &store_id, KEY)).await.expect(201)["orderId"].as_str().unwrap().to_owned();
    crate::payments::reconcile(&world).await.expect("reconciliation runs");
    let charge_id = world.last_event("Payment", &order_id, "PaymentApproved").payload()["chargeId"].as_str().unwrap().to_owned();
    assert!(!world.processor.is_refunded(&charge_id), "the order is paid by a charge the sweep leaves alone");
    assert_eq!((world.processor.charge_count(), world.processor.refund_count()), (2, 1), "the crashed run's charge is refunded");
    assert_eq!(orders_placed(&world), [order_id]);
}

#[tokio::test]
async fn a_fresh_claim_of_a_crashed_run_is_409_until_it_is_stale() {
    let mut world = World::new();
    let store = FaultyStore::around(&mut world);
    let store_id = world.register_store(OWNER, REGION).await;
    store.hang_before_append.store(true, Ordering::SeqCst);
    cut_off(&world, &store, place(CUSTOMER, &store_id, KEY)).await;
    world.send(place(CUSTOMER, &store_id, KEY)).await.problem(409, "in progress");
    assert!(orders_placed(&world).is_empty(), "the default 30 s has not passed: nothing is taken over");
}

// ========================================================== every command

/// Sends `request` twice: the second answer must be the first, replayed,
/// with nothing stored in between.
async fn twice(world: &World, request: Req) -> Value {
    let first = world.send(request.clone()).await;
    assert!(first.status < 300, "{} answered {} {}", request.route_key(), first.status, first.body);
    let events = world.events().len();
    let again = world.send(request.clone()).await;
    assert_replay_of(&again, &first);
    assert_eq!(world.events().len(), events, "a replay of {} stores nothing", request.route_key());
    world.settle().await;
    first.body
}

#[tokio::test]
async fn every_command_route_replays_its_first_answer() {
    let world = World::new();
    let key = |step: &str| format!("key-{step}");
    let store = twice(
        &world,
        Req::post("/stores").owner(OWNER).header("Idempotency-Key", &key("register")).json(json!({
            "name": "Luigi's", "region": REGION, "menu": [{ "name": "Margherita", "price": 900 }],
        })),
    )
    .await;
    let store_id = store["storeId"].as_str().unwrap().to_owned();
    let menu = json!({ "menu": [{ "menuId": "m1", "name": "Margherita", "price": 950 }] });
    twice(
        &world,
        Req::put("/stores/{storeId}/menu").path("storeId", &store_id).owner(OWNER).header("Idempotency-Key", &key("menu")).json(menu),
    )
    .await;
    for step in ["close", "open"] {
        let route = if step == "close" { "/stores/{storeId}/close" } else { "/stores/{storeId}/open" };
        twice(&world, Req::post(route).path("storeId", &store_id).owner(OWNER).header("Idempotency-Key", &key(step))).await;
    }
    let mut orders = Vec::new();
    for n in 0..4 {
        let order = twice(&world, place(CUSTOMER, &store_id, &key(&format!("order-{n}")))).await;
        orders.push(order["orderId"].as_str().unwrap().to_owned());
    }

    let kitchen = |order: &str, step: &'static str, route: &'static str| {
        Req::post(route)
            .path("storeId", &store_id)
            .path("orderId", order)
            .owner(OWNER)
            .header("Idempotency-Key", &key(&format!("{step}-{order}")))
    };
    let rider = |order: &str, route: &'static str| {
        Req::post(route).path("orderId", order).rider(RIDER).header("Idempotency-Key", &key(&format!("{route}-{order}")))
    };
    for order in &orders[..2] {
        twice(&world, kitchen(order, "accept", "/stores/{storeId}/orders/{orderId}/accept")).await;
        twice(&world, kitchen(order, "start", "/stores/{storeId}/orders/{orderId}/start-cooking")).await;
        twice(&world, kitchen(order, "finish", "/stores/{storeId}/orders/{orderId}/finish-cooking")).await;
        twice(&world, rider(order, "/deliveries/{orderId}/pick")).await;
    }
    twice(&world, rider(&orders[0], "/deliveries/{orderId}/complete")).await;
    twice(&world, rider(&orders[1], "/deliveries/{orderId}/accident").json(json!({ "description": "flat tyre" }))).await;
    twice(&world, kitchen(&orders[2], "reject", "/stores/{storeId}/orders/{orderId}/reject").json(json!({ "reason": "out of basil" })))
        .await;
    let cancel =
        Req::post("/orders/{orderId}/cancel").path("orderId", &orders[3]).customer(CUSTOMER).header("Idempotency-Key", &key("cancel"));
    twice(&world, cancel).await;

    let statuses: Vec<Value> = {
        let mut statuses = Vec::new();
        for order in &orders {
            statuses.push(world.order_view(CUSTOMER, order).await["status"].clone());
        }
        statuses
    };
    assert_eq!(statuses, [json!("delivered"), json!("cancelled"), json!("rejected"), json!("cancelled")]);
    assert_eq!(world.processor.charge_count(), 4, "one charge per order");
}

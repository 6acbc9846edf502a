//! At-least-once, in any order: every bus entry reaches every policy and
//! projection twice, shuffled by a seeded generator. Policies run between
//! the users' steps (their consequences are what the next step needs);
//! projections and notifications get the whole history at the end, doubled
//! and shuffled as one batch. Histories, views and notifications must be
//! exactly those of a single in-order delivery.

use super::figure;
use super::injectors::Rng;
use crate::support::*;
use domain::Envelope;
use functions::ports::BusEntry;
use serde_json::{Value, json};
use std::collections::VecDeque;

pub const VIEWS: [&str; 5] = ["order-status", "store-queue", "delivery-board", "popular-menus", "catalog"];

/// Every document of every view under these keys, without revisions.
pub async fn documents(world: &World, keys: &[String]) -> Vec<(String, String, Option<(String, Value)>)> {
    let mut documents = vec![];
    for view in VIEWS {
        for key in keys {
            let doc = world.deps.views.get(view, key).await.expect("the view store reads");
            documents.push((view.to_owned(), key.clone(), doc.map(|d| (d.partition, body_json(&d.body)))));
        }
    }
    documents
}

/// Feeds each event once, in order, to every projection whose rule takes it.
pub async fn project_once(world: &World, events: &[Envelope]) {
    for event in events {
        let source = event.source().expect("a domain event");
        for rule in RULES.iter().filter(|r| r.function.starts_with("project-") && r.matches(source, &event.event_type)) {
            world.deliver(rule.function, event).await.unwrap_or_else(|e| panic!("{} on {}: {e}", rule.function, event.event_id));
        }
    }
}

/// EventBridge at its worst: each delivery twice, in shuffled order.
struct Chaos {
    rng: Rng,
    /// How many bus entries have been handed out.
    cursor: usize,
    /// Projection and notification deliveries, kept for the end.
    deferred: Vec<(&'static str, BusEntry)>,
    deliveries: usize,
    duplicates: usize,
    retries: usize,
}

impl Chaos {
    fn new(seed: u64) -> Chaos {
        Chaos { rng: Rng::seeded(seed), cursor: 0, deferred: vec![], deliveries: 0, duplicates: 0, retries: 0 }
    }

    /// Publishes what is new and runs the policies on it, each delivery
    /// twice, shuffled, until nothing more happens.
    async fn settle(&mut self, world: &World) {
        loop {
            world.publish().await;
            let accepted = world.bus.accepted();
            let fresh = accepted[self.cursor..].to_vec();
            self.cursor = accepted.len();
            if fresh.is_empty() {
                return;
            }
            let mut now = vec![];
            for entry in fresh {
                for rule in RULES.iter().filter(|r| r.matches(&entry.source, &entry.detail_type)) {
                    let later = rule.function.starts_with("project-") || rule.function == "notify-customer";
                    let queue = if later { &mut self.deferred } else { &mut now };
                    queue.push((rule.function, entry.clone()));
                    queue.push((rule.function, entry.clone()));
                    self.duplicates += 1;
                }
            }
            self.rng.shuffle(&mut now);
            self.deliver(world, now).await;
        }
    }

    /// The projections' and notifications' whole history, doubled and shuffled.
    async fn finish(&mut self, world: &World) {
        self.settle(world).await;
        let mut deferred = std::mem::take(&mut self.deferred);
        self.rng.shuffle(&mut deferred);
        self.deliver(world, deferred).await;
        self.settle(world).await;
        assert!(self.deferred.is_empty(), "projections and notifications cause nothing");
    }

    /// A failed delivery goes to the back of the queue, as a Lambda retry would.
    async fn deliver(&mut self, world: &World, deliveries: Vec<(&'static str, BusEntry)>) {
        let mut queue: VecDeque<_> = deliveries.into();
        while let Some((function, entry)) = queue.pop_front() {
            self.deliveries += 1;
            if let Err(error) = world.deliver_entry(function, &entry).await {
                self.retries += 1;
                assert!(self.retries < 1_000, "{function} keeps failing on {}: {error}", entry.detail_type);
                queue.push_back((function, entry));
            }
        }
    }
}

/// A store, and orders delivered, cancelled, rejected and ended by an
/// accident, with the chaos between every step. Returns the store and orders.
async fn scenario(world: &World, chaos: &mut Chaos) -> (String, Vec<String>) {
    let menu = json!([{ "name": "Margherita", "price": 900 }, { "name": "Tiramisu", "price": 450 }, { "name": "Espresso", "price": 250 }]);
    let registered = world.send(Req::post("/stores").owner(OWNER).json(json!({ "name": "Luigi's", "region": REGION, "menu": menu }))).await;
    let store_id = registered.expect(201)["storeId"].as_str().unwrap().to_owned();
    chaos.settle(world).await;
    let mut orders = vec![];
    for (customer, items) in
        [(CUSTOMER, &[("m1", 2), ("m3", 1)][..]), (OTHER_CUSTOMER, &[("m2", 1)]), (CUSTOMER, &[("m1", 1)]), (OTHER_CUSTOMER, &[("m3", 4)])]
    {
        let placed = world.send(order_request(customer, &store_id, items, "tok_visa")).await;
        orders.push(placed.expect(201)["orderId"].as_str().unwrap().to_owned());
        chaos.settle(world).await;
    }
    let kitchen = |order: &str, step: &'static str| {
        let route = match step {
            "accept" => "/stores/{storeId}/orders/{orderId}/accept",
            "start-cooking" => "/stores/{storeId}/orders/{orderId}/start-cooking",
            _ => "/stores/{storeId}/orders/{orderId}/finish-cooking",
        };
        Req::post(route).path("storeId", &store_id).path("orderId", order).owner(OWNER)
    };
    let ride = |order: &str, step: &'static str| {
        let route = if step == "pick" { "/deliveries/{orderId}/pick" } else { "/deliveries/{orderId}/complete" };
        Req::post(route).path("orderId", order).rider(RIDER)
    };
    let (delivered, cancelled, rejected, accident) = (&orders[0], &orders[1], &orders[2], &orders[3]);
    let steps = vec![
        kitchen(delivered, "accept"),
        kitchen(cancelled, "accept"),
        kitchen(accident, "accept"),
        Req::post("/orders/{orderId}/cancel").path("orderId", cancelled).customer(OTHER_CUSTOMER),
        Req::post("/stores/{storeId}/orders/{orderId}/reject")
            .path("storeId", &store_id)
            .path("orderId", rejected)
            .owner(OWNER)
            .json(json!({ "reason": "out of dough" })),
        kitchen(delivered, "start-cooking"),
        kitchen(accident, "start-cooking"),
        kitchen(delivered, "finish-cooking"),
        kitchen(accident, "finish-cooking"),
        ride(delivered, "pick"),
        ride(accident, "pick"),
        ride(delivered, "complete"),
        Req::post("/deliveries/{orderId}/accident").path("orderId", accident).rider(RIDER).json(json!({ "description": "flat tyre" })),
    ];
    for step in steps {
        let route = step.route_key();
        let reply = world.send(step).await;
        assert_eq!(reply.status, 200, "{route}: {}", reply.body);
        chaos.settle(world).await;
    }
    chaos.finish(world).await;
    (store_id, orders)
}

#[tokio::test]
async fn every_delivery_twice_and_shuffled_changes_nothing_more() {
    const SEEDS: [u64; 5] = [1, 7, 42, 1_000_003, 0xFEED];
    let (mut duplicates, mut deliveries, mut retries) = (0, 0, 0);
    for seed in SEEDS {
        let world = World::new();
        let mut chaos = Chaos::new(seed);
        let (store_id, orders) = scenario(&world, &mut chaos).await;
        let (delivered, cancelled, rejected, accident) = (&orders[0], &orders[1], &orders[2], &orders[3]);

        let types = |aggregate: &str, id: &str| world.event_types(aggregate, id);
        assert_eq!(
            types("Order", delivered),
            ["OrderPlaced", "OrderAccepted", "CookingStarted", "CookingFinished", "OrderPickedUp", "OrderDelivered"],
            "seed {seed}"
        );
        assert_eq!(types("Delivery", delivered), ["DeliveryOpened", "FoodReady", "DeliveryPicked", "DeliveryCompleted"], "seed {seed}");
        assert_eq!(types("Order", cancelled), ["OrderPlaced", "OrderAccepted", "OrderCancelled"], "seed {seed}");
        assert_eq!(types("Order", rejected), ["OrderPlaced", "OrderRejected"], "seed {seed}");
        let accident_history = ["OrderPlaced", "OrderAccepted", "CookingStarted", "CookingFinished", "OrderPickedUp", "OrderCancelled"];
        assert_eq!(types("Order", accident), accident_history, "seed {seed}");
        for order in &orders {
            let refunded = order != delivered;
            let payment: &[&str] = if refunded { &["PaymentApproved", "PaymentRefunded"] } else { &["PaymentApproved"] };
            assert_eq!(types("Payment", order), payment, "seed {seed}: {order} refunded once, if at all");
        }
        assert_eq!(world.processor.refund_count(), 3, "seed {seed}: three refunds at the processor");

        // The views are a single in-order delivery's.
        let reference = World::new();
        project_once(&reference, &world.events()).await;
        let mut keys = orders.clone();
        keys.push(store_id.clone());
        assert_eq!(documents(&world, &keys).await, documents(&reference, &keys).await, "seed {seed}: the views converge");

        // One notification per status change: one per order event.
        for customer in [CUSTOMER, OTHER_CUSTOMER] {
            let sent = world.database.notifications(customer).unwrap();
            let mut ids: Vec<String> = sent.iter().map(|n| n.id.clone()).collect();
            let mut expected: Vec<String> = world
                .events()
                .into_iter()
                .filter(|e| e.aggregate_type == "Order" && e.payload()["customerId"] == customer)
                .map(|e| e.event_id)
                .collect();
            ids.sort();
            expected.sort();
            assert_eq!(ids, expected, "seed {seed}: {customer} is told each status change once");
        }
        duplicates += chaos.duplicates;
        deliveries += chaos.deliveries;
        retries += chaos.retries;
    }
    figure(
        "duplicates and reordering",
        format!("{} seeds, {deliveries} deliveries, {duplicates} duplicates injected, {retries} failed deliveries retried", SEEDS.len()),
    );
    assert!(duplicates >= 300, "a meaningful number of duplicates: {duplicates}");
}

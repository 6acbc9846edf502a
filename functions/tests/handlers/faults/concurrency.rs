//! Concurrency conflicts on one order: many commands decide on the same
//! version at once, and appends lose races (real or injected). Exactly the
//! winners' events are stored, versions stay unique and gapless, and every
//! success is answered once.

use super::figure;
use super::injectors::FaultyStore;
use crate::support::*;
use domain::Envelope;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;

const COMMANDS: [(&str, &str); 4] =
    [("accept", "OrderAccepted"), ("start-cooking", "CookingStarted"), ("finish-cooking", "CookingFinished"), ("cancel", "OrderCancelled")];

/// Every order history the kitchen and the customer can make from "placed".
const LIFECYCLES: [&[&str]; 6] = [
    &["OrderPlaced"],
    &["OrderPlaced", "OrderAccepted"],
    &["OrderPlaced", "OrderAccepted", "CookingStarted"],
    &["OrderPlaced", "OrderAccepted", "CookingStarted", "CookingFinished"],
    &["OrderPlaced", "OrderCancelled"],
    &["OrderPlaced", "OrderAccepted", "OrderCancelled"],
];

fn command(step: &str, store_id: &str, order_id: &str) -> Req {
    match step {
        "cancel" => Req::post("/orders/{orderId}/cancel").path("orderId", order_id).customer(CUSTOMER),
        "accept" => Req::post("/stores/{storeId}/orders/{orderId}/accept").path("storeId", store_id).path("orderId", order_id).owner(OWNER),
        "start-cooking" => {
            Req::post("/stores/{storeId}/orders/{orderId}/start-cooking").path("storeId", store_id).path("orderId", order_id).owner(OWNER)
        }
        "finish-cooking" => {
            Req::post("/stores/{storeId}/orders/{orderId}/finish-cooking").path("storeId", store_id).path("orderId", order_id).owner(OWNER)
        }
        other => panic!("no command {other}"),
    }
}

fn assert_gapless(stream: &[Envelope], what: &str) {
    let versions: Vec<u64> = stream.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=stream.len() as u64).collect::<Vec<_>>(), "{what}: versions unique and gapless");
    let ids: HashSet<&str> = stream.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len(), stream.len(), "{what}: event ids unique");
}

/// Sixteen commands (four each of accept, start, finish, cancel) released at
/// once on one order, placed or accepted, round after round, on four worker
/// threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_commands_on_one_order_leave_one_valid_history() {
    const ROUNDS: usize = 20;
    const COPIES: usize = 4;
    let mut world = World::new();
    let store_id = world.register_store(OWNER, REGION).await;
    let store = FaultyStore::around(world.deps.events.clone());
    store.pause_after_loading("Order", Duration::from_millis(2));
    world.deps.events = store.clone();
    let world = Arc::new(world);
    let (mut contended, mut histories) = (0, BTreeMap::<String, usize>::new());

    for round in 0..ROUNDS {
        let order_id = world.place_order(CUSTOMER, &store_id, &[("m1", 1)]).await;
        if round % 2 == 1 {
            // Half the races start from "accepted": cooking against cancelling.
            world.kitchen(OWNER, &store_id, &order_id, "accept").await.expect(200);
        }
        let before = world.stream("Order", &order_id).len();
        let barrier = Arc::new(Barrier::new(COMMANDS.len() * COPIES));
        let mut tasks = vec![];
        for copy in 0..COPIES {
            for (step, _) in COMMANDS {
                let (world, barrier, request) = (world.clone(), barrier.clone(), command(step, &store_id, &order_id));
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    (step, copy, world.send(request).await)
                }));
            }
        }
        let mut answers = vec![];
        for task in tasks {
            answers.push(task.await.expect("a command task finishes"));
        }

        let stream = world.stream("Order", &order_id);
        assert_gapless(&stream, &order_id);
        let types: Vec<&str> = stream.iter().map(|e| e.event_type.as_str()).collect();
        assert!(LIFECYCLES.contains(&types.as_slice()), "not a lifecycle: {types:?}");
        let raced = &stream[before..];
        for (step, event_type) in COMMANDS {
            let won: Vec<_> = answers.iter().filter(|(s, _, reply)| *s == step && reply.status == 200).collect();
            let stored = raced.iter().filter(|e| e.event_type == event_type).count();
            assert_eq!(won.len(), stored, "{step}: one success per {event_type} the race stored, and none without it");
            for (_, _, reply) in won {
                let after = raced.iter().find(|e| e.event_type == event_type).expect("the winner's event");
                assert_eq!(reply.body["status"], json!(status_after(after)), "{step} answers the status its event made");
            }
        }
        for (step, _, reply) in &answers {
            if reply.status != 200 {
                let detail = reply.problem(409, "");
                contended += usize::from(detail.contains("being changed by others"));
                assert!(!detail.is_empty(), "{step}: a refusal says why");
            }
        }
        *histories.entry(types.join(">")).or_default() += 1;

        world.settle().await;
        let told: Vec<String> = notifications_of(&world, &order_id);
        let expected: Vec<String> = stream.iter().map(|e| e.event_id.clone()).collect();
        assert_eq!(told, expected, "one notification per status change");
        let refunds = world.event_types("Payment", &order_id).iter().filter(|t| *t == "PaymentRefunded").count();
        assert_eq!(refunds, usize::from(types.contains(&"OrderCancelled")), "refunded once if and only if cancelled");
    }
    assert_eq!(world.processor.refund_count(), histories.iter().filter(|(h, _)| h.contains("Cancelled")).map(|(_, n)| n).sum::<usize>());
    figure(
        "concurrent commands",
        format!(
            "{ROUNDS} rounds x {} commands, {} appends lost a race and were re-decided, {contended} answered 409 contended; histories {histories:?}",
            COMMANDS.len() * COPIES,
            store.lost_races()
        ),
    );
    assert!(store.lost_races() >= ROUNDS, "the commands really raced: {} lost appends", store.lost_races());
}

fn status_after(event: &Envelope) -> &'static str {
    match event.event_type.as_str() {
        "OrderAccepted" => "accepted",
        "CookingStarted" => "cooking",
        "CookingFinished" => "cooked",
        "OrderCancelled" => "cancelled",
        other => panic!("no command makes {other}"),
    }
}

/// The ids of the notifications sent about one order, by order version (a
/// command re-decided after a lost race keeps its request's time, so times
/// need not follow versions).
fn notifications_of(world: &World, order_id: &str) -> Vec<String> {
    let mut sent = world.database.notifications(CUSTOMER).expect("notifications read back");
    sent.retain(|n| n.order_id.0 == order_id);
    sent.sort_by_key(|n| n.version);
    sent.into_iter().map(|n| n.id).collect()
}

/// Appends that lose races (injected: DynamoDB's TransactionConflict) are
/// re-decided; past the configured retries the caller gets a 409 and nothing
/// is stored, and trying again succeeds once.
#[tokio::test]
async fn lost_races_are_re_decided_and_past_the_retries_refused_with_nothing_stored() {
    let mut world = World::new();
    let (store_id, order_id) = world.order_at("placed").await;
    let store = FaultyStore::around(world.deps.events.clone());
    world.deps.events = store.clone();
    let retries = world.deps.settings.conflict_retries as usize;

    store.conflict_appends(retries);
    let accepted = world.send(command("accept", &store_id, &order_id)).await;
    assert_eq!(accepted.expect(200)["status"], "accepted", "{retries} lost races, then the append goes through");
    assert_eq!(world.event_types("Order", &order_id), ["OrderPlaced", "OrderAccepted"]);

    store.conflict_appends(retries + 1);
    let busy = world.send(command("start-cooking", &store_id, &order_id)).await;
    busy.problem(409, "being changed by others");
    assert_eq!(world.event_types("Order", &order_id), ["OrderPlaced", "OrderAccepted"], "a contended command stores nothing");
    world.send(command("start-cooking", &store_id, &order_id)).await.expect(200);
    world.send(command("start-cooking", &store_id, &order_id)).await.problem(409, "it must be accepted");
    assert_eq!(world.event_types("Order", &order_id), ["OrderPlaced", "OrderAccepted", "CookingStarted"], "started once");
    assert_gapless(&world.stream("Order", &order_id), &order_id);
    world.settle().await;
    assert_eq!(world.told(CUSTOMER), ["placed", "accepted", "cooking"]);
    figure("lost races", format!("{} lost races injected; {} real", store.injected(), store.lost_races()));
}

/// The same cancellation delivered eight times at once to `refund-payment`
/// (EventBridge's at-least-once, with the copies running concurrently).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_copies_of_one_cancellation_refund_once() {
    let mut world = World::new();
    let counting = Arc::new(CountingGateway::default());
    world.deps.payments = counting.clone();
    let (_, order_id) = world.order_at("accepted").await;
    world.send(command("cancel", "", &order_id)).await.expect(200);
    let cancelled = world.last_event("Order", &order_id, "OrderCancelled");
    let store = FaultyStore::around(world.deps.events.clone());
    store.pause_after_loading("Payment", Duration::from_millis(2));
    world.deps.events = store.clone();
    let world = Arc::new(world);

    const COPIES: usize = 8;
    let barrier = Arc::new(Barrier::new(COPIES));
    let tasks: Vec<_> = (0..COPIES)
        .map(|_| {
            let (world, barrier, cancelled) = (world.clone(), barrier.clone(), cancelled.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                world.deliver("refund-payment", &cancelled).await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a delivery task finishes").expect("every copy succeeds: the losers find the refund done");
    }
    assert_eq!(world.event_types("Payment", &order_id), ["PaymentApproved", "PaymentRefunded"], "one refund recorded");
    assert_eq!(counting.inner.refund_count(), 1, "the customer's money came back once");
    assert_gapless(&world.stream("Payment", &order_id), "payment");
    world.settle().await;
    assert_eq!(world.order_view(CUSTOMER, &order_id).await["refund"]["amount"], 2050);
    figure(
        "concurrent duplicate refunds",
        format!(
            "{COPIES} copies, {} processor refund calls, 1 refund; {} appends lost a race",
            counting.refund_calls(),
            store.lost_races()
        ),
    );
}

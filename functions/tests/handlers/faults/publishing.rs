//! PutEvents partial failures: EventBridge refuses some entries of a put
//! (`FailedEntryCount` > 0). The publisher retries exactly those; what it
//! cannot place in its retries it reports as the batch item failure, and
//! Lambda hands the batch again from that record.

use super::figure;
use super::injectors::FlakyBus;
use super::redelivery::{documents, project_once};
use crate::publisher::{event, reported};
use crate::support::*;
use aws_lambda_events::event::dynamodb::EventRecord;
use domain::Envelope;
use functions::item::stream_record;
use functions::ports::BusEntry;
use std::collections::{BTreeMap, HashMap};

/// Each stream's versions in the order the bus took them.
fn versions_by_stream(accepted: &[BusEntry]) -> BTreeMap<String, Vec<u64>> {
    let mut streams: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for entry in accepted {
        let envelope: Envelope = serde_json::from_str(&entry.detail).expect("the detail is an envelope");
        streams.entry(format!("{}-{}", envelope.aggregate_type, envelope.aggregate_id)).or_default().push(envelope.version);
    }
    streams
}

fn counts(ids: &[String]) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for id in ids {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    counts
}

/// Four orders' events interleaved, as a stream shard gives them when the
/// orders move at once; entries refused one to three times (the publisher
/// retries three times) are all placed in this invocation.
#[tokio::test]
async fn entries_refused_within_the_retries_are_published_once_each_in_stream_order() {
    let mut world = World::new();
    let bus = FlakyBus::around(world.bus.clone());
    world.deps.bus = bus.clone();
    let events: Vec<Envelope> = (1..=5).flat_map(|version| (1..=4).map(move |order| event(&format!("o{order}"), version, 0))).collect();
    let records: Vec<EventRecord> = events.iter().zip(1..).map(|(e, sequence)| stream_record(sequence, e).unwrap()).collect();
    for (event_id, times) in [("Order-o1-1", 1), ("Order-o2-3", 2), ("Order-o3-2", 3), ("Order-o4-5", 1)] {
        bus.refuse(event_id, times);
    }

    let response = world.publish_batch(records).await.expect("the publisher runs");
    assert!(reported(&response).is_empty(), "every refusal was retried away: {response:?}");
    let accepted = world.bus.accepted_ids();
    let counts = counts(&accepted);
    for event in &events {
        assert_eq!(counts.get(event.event_id.as_str()), Some(&1), "{} is on the bus exactly once", event.event_id);
    }
    assert_eq!(accepted.len(), events.len(), "nothing else is on the bus");
    for (stream, versions) in versions_by_stream(&world.bus.accepted()) {
        assert_eq!(versions, [1, 2, 3, 4, 5], "{stream}: a refused event is not overtaken by its successors");
    }
    figure("PutEvents partial failures", format!("{} events, {} entries refused and retried, 0 duplicates", events.len(), bus.refused()));
}

/// A real history; one entry refused more often than the publisher retries.
/// The earliest record not on the bus is reported, Lambda hands the batch
/// again from it, and it goes out. The entries after it that went out the
/// first time go out twice (EventBridge has no idempotent put), and the
/// consumers, deduplicating by event id, make nothing of it: views and
/// notifications are those of a single delivery.
#[tokio::test]
async fn an_entry_refused_past_the_retries_is_reported_then_published_on_redelivery() {
    let source = World::new();
    let (store_id, delivered) = source.order_at("delivered").await;
    let cancelled = source.place_order(OTHER_CUSTOMER, &store_id, &[("m2", 1)]).await;
    source.send(Req::post("/orders/{orderId}/cancel").path("orderId", &cancelled).customer(OTHER_CUSTOMER)).await.expect(200);
    source.settle().await;
    let stored = source.database.events_after(0, 10_000).expect("the change stream reads");
    let records: Vec<EventRecord> = stored.iter().map(|(position, e)| stream_record(*position as u64, e).unwrap()).collect();

    let mut world = World::new();
    let bus = FlakyBus::around(world.bus.clone());
    world.deps.bus = bus.clone();
    // The cancelled order's payment approval: its refund comes later in the
    // stream, and the order's placement follows it in the same put.
    let stuck = records.iter().position(|r| r.event_id == format!("Payment-{cancelled}-1")).expect("the cancelled order's payment");
    let attempts = world.deps.settings.publish_retries as usize + 1;
    bus.refuse(&records[stuck].event_id, attempts);

    let first = world.publish_batch(records.clone()).await.expect("the publisher runs");
    let after_first = world.bus.accepted_ids();
    assert!(!after_first.contains(&records[stuck].event_id));
    for later in records[stuck..].iter().filter(|r| r.event_id.starts_with(&format!("Payment-{cancelled}-"))) {
        assert!(!after_first.contains(&later.event_id), "{} must not overtake the stuck event of its stream", later.event_id);
    }
    // The batch item failure is the earliest record not on the bus: the
    // stuck one, or one before it that waited for a later wave. Lambda hands
    // the batch again from there, so everything before it must be out.
    let [sequence] = reported(&first).try_into().expect("one batch item failure");
    let from = records.iter().position(|r| r.change.sequence_number.as_deref() == Some(sequence.as_str())).expect("a record of the batch");
    assert!(from <= stuck, "reporting a record after the stuck one would skip it");
    assert!(!after_first.contains(&records[from].event_id), "the reported record is not on the bus yet");
    for earlier in &records[..from] {
        assert!(after_first.contains(&earlier.event_id), "{} comes before the reported record and must be out", earlier.event_id);
    }

    let redelivered = world.publish_batch(records[from..].to_vec()).await.expect("the publisher runs again");
    assert!(reported(&redelivered).is_empty(), "the redelivery places everything: {redelivered:?}");
    let accepted = world.bus.accepted();
    let ids = world.bus.accepted_ids();
    let counts = counts(&ids);
    for (_, event) in &stored {
        assert!(counts.contains_key(event.event_id.as_str()), "{} was lost", event.event_id);
    }
    let duplicated: Vec<&str> = counts.iter().filter(|(_, n)| **n > 1).map(|(id, _)| *id).collect();
    for id in &duplicated {
        assert_eq!(counts[id], 2, "{id}: at most one extra copy");
        let index = records.iter().position(|r| r.event_id == *id).expect("a stored event");
        assert!(
            index > from && after_first.iter().any(|taken| taken == id),
            "{id}: only what went out after the reported record goes out again"
        );
    }
    assert!(!duplicated.is_empty(), "the stuck entry's wave-mates went out twice");
    for (stream, versions) in versions_by_stream(&accepted) {
        assert!(versions.windows(2).all(|pair| pair[0] <= pair[1]), "{stream}: stream order kept on the bus: {versions:?}");
    }

    // Every copy on the bus reaches every consumer of it.
    let consumers = World::new();
    for entry in &accepted {
        for rule in RULES.iter().filter(|r| r.matches(&entry.source, &entry.detail_type)) {
            if rule.function.starts_with("project-") || rule.function == "notify-customer" {
                consumers.deliver_entry(rule.function, entry).await.expect("a consumer takes a copy");
            }
        }
    }
    let reference = World::new();
    let events: Vec<Envelope> = stored.iter().map(|(_, e)| e.clone()).collect();
    project_once(&reference, &events).await;
    let keys = [store_id.clone(), delivered.clone(), cancelled.clone()];
    assert_eq!(documents(&consumers, &keys).await, documents(&reference, &keys).await, "the views are a single delivery's");
    assert_eq!(consumers.told(CUSTOMER), source.told(CUSTOMER), "one notification per status change");
    assert_eq!(consumers.told(OTHER_CUSTOMER), source.told(OTHER_CUSTOMER));
    figure(
        "PutEvents refused past the retries",
        format!(
            "{} events, 1 record reported and redelivered, {} entries refused, {} duplicates on the bus, 0 seen by users",
            stored.len(),
            bus.refused(),
            duplicated.len()
        ),
    );
}

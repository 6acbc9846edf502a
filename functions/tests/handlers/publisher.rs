//! The outbox relay, `publish-events`: DynamoDB stream records of the event
//! table in, EventBridge PutEvents out.

use crate::support::*;
use aws_lambda_events::event::dynamodb::EventRecord;
use chrono::Utc;
use domain::Envelope;
use functions::item::stream_record;
use functions::ports::{BusEntry, BusError, EventBus, PutOutcome};
use serde_dynamo::AttributeValue;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Event `version` of order `order`, with a payload of about `size` bytes.
pub(crate) fn event(order: &str, version: u64, size: usize) -> Envelope {
    Envelope {
        event_id: domain::envelope::event_id("Order", order, version),
        event_type: "OrderAccepted".into(),
        event_version: 1,
        aggregate_type: "Order".into(),
        aggregate_id: order.into(),
        version,
        correlation_id: order.into(),
        causation_id: "request/r1".into(),
        time: Utc::now(),
        data: serde_json::value::to_raw_value(&json!({ "customerId": "c1", "storeId": "s1", "padding": "p".repeat(size) })).unwrap(),
    }
}

/// `count` events, each on its own order, with stream sequence numbers 1, 2, ...
fn records(count: u64) -> (Vec<Envelope>, Vec<EventRecord>) {
    let events: Vec<Envelope> = (1..=count).map(|n| event(&format!("o{n}"), 1, 10)).collect();
    let records = events.iter().zip(1..).map(|(e, sequence)| stream_record(sequence, e).unwrap()).collect();
    (events, records)
}

fn sequence(record: &EventRecord) -> String {
    record.change.sequence_number.clone().unwrap()
}

pub(crate) fn reported(response: &aws_lambda_events::event::streams::DynamoDbEventResponse) -> Vec<String> {
    response.batch_item_failures.iter().map(|f| f.item_identifier.clone().unwrap()).collect()
}

fn ids(events: &[Envelope]) -> Vec<String> {
    events.iter().map(|e| e.event_id.clone()).collect()
}

#[tokio::test]
async fn every_stored_event_is_published_as_it_was_stored() {
    let world = World::new();
    let (_, order_id) = world.order_at("accepted").await; // settle publishes through the stream
    let stored = world.events();
    let accepted = world.bus.accepted();
    assert_eq!(accepted.iter().map(event_id_of).collect::<Vec<_>>(), ids(&stored), "each event once, in stream order");
    for (entry, envelope) in accepted.iter().zip(&stored) {
        assert_eq!(Some(entry.source.as_str()), envelope.source(), "the source is the aggregate's context");
        assert_eq!(entry.detail_type, envelope.event_type, "the detail type is the event type");
        let detail: Envelope = serde_json::from_str(&entry.detail).unwrap();
        assert_eq!(&detail, envelope, "the detail is the whole envelope");
    }
    let sources: Vec<&str> = accepted.iter().map(|e| e.source.as_str()).collect();
    assert_eq!(
        sources,
        ["food-delivery.catalog", "food-delivery.payment", "food-delivery.ordering", "food-delivery.ordering"],
        "store registered; payment approved and order placed; order accepted ({order_id})"
    );
}

#[tokio::test]
async fn snapshot_items_and_modify_records_are_not_published() {
    let world = World::new();
    let first = event("o1", 10, 10);
    let mut snapshot = stream_record(2, &first).unwrap();
    let image: serde_dynamo::Item =
        serde_dynamo::to_item(json!({ "pk": "Order#o1", "sk": 0, "version": 10, "state": "{\"placed\":null}" })).unwrap();
    snapshot.change.new_image = image;
    let mut modify = stream_record(3, &event("o1", 11, 10)).unwrap();
    modify.event_name = "MODIFY".into();
    let mut remove = stream_record(4, &event("o1", 12, 10)).unwrap();
    remove.event_name = "REMOVE".into();
    let last = event("o1", 13, 10);
    let batch = vec![stream_record(1, &first).unwrap(), snapshot, modify, remove, stream_record(5, &last).unwrap()];

    let response = world.publish_batch(batch).await.unwrap();
    assert!(response.batch_item_failures.is_empty(), "skipping is no failure: {response:?}");
    assert_eq!(world.bus.accepted_ids(), ids(&[first, last]), "only the inserted events are published");
}

#[tokio::test]
async fn more_than_ten_records_go_out_in_puts_of_at_most_ten_in_order() {
    let world = World::new();
    let (events, batch) = records(25);
    let response = world.publish_batch(batch).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    let sizes: Vec<usize> = world.bus.calls().iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 10, 5], "PutEvents takes at most ten entries");
    assert_eq!(world.bus.accepted_ids(), ids(&events), "every event, in stream order");
}

#[tokio::test]
async fn large_events_are_split_to_stay_under_the_request_size_limit() {
    let world = World::new();
    let events: Vec<Envelope> = (1..=6).map(|n| event(&format!("big{n}"), 1, 60 * 1024)).collect();
    let batch = events.iter().zip(1..).map(|(e, s)| stream_record(s, e).unwrap()).collect();
    let response = world.publish_batch(batch).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    let calls = world.bus.calls();
    assert!(calls.len() >= 2, "six 60 KB events do not fit one 256 KB request");
    for call in &calls {
        let bytes: usize = call.iter().map(|e| e.source.len() + e.detail_type.len() + e.detail.len()).sum();
        assert!(bytes <= 256 * 1024, "a PutEvents request of {bytes} bytes is over EventBridge's 256 KB");
    }
    assert_eq!(world.bus.accepted_ids(), ids(&events));
}

#[tokio::test]
async fn entries_the_bus_refuses_once_are_retried_and_nothing_else_is() {
    let world = World::new();
    let (events, batch) = records(8);
    let refused = vec![events[2].event_id.clone(), events[6].event_id.clone()];
    world.bus.fail_once(refused.clone());
    let response = world.publish_batch(batch).await.unwrap();
    assert!(response.batch_item_failures.is_empty(), "the retry succeeded: {response:?}");
    let calls = world.bus.calls();
    assert_eq!(calls.len(), 2, "one put and one retry");
    assert_eq!(calls[1].iter().map(event_id_of).collect::<Vec<_>>(), refused, "exactly the refused entries are retried");
    let mut accepted = world.bus.accepted_ids();
    accepted.sort();
    let mut expected = ids(&events);
    expected.sort();
    assert_eq!(accepted, expected, "every event is on the bus exactly once");
}

/// Two events on each of 25 orders: the first of each, then the second.
fn two_per_order() -> (Vec<Envelope>, Vec<EventRecord>) {
    let events: Vec<Envelope> = (1..=2).flat_map(|version| (1..=25).map(move |n| event(&format!("o{n}"), version, 10))).collect();
    let records = events.iter().zip(1..).map(|(e, sequence)| stream_record(sequence, e).unwrap()).collect();
    (events, records)
}

#[tokio::test]
async fn an_entry_the_bus_keeps_refusing_is_reported_and_no_later_event_of_its_stream_is_sent() {
    let world = World::new();
    let (events, batch) = two_per_order();
    let stuck = &events[12]; // o13's first event
    world.bus.fail_always([stuck.event_id.clone()]);
    let response = world.publish_batch(batch.clone()).await.unwrap();
    assert_eq!(reported(&response), [sequence(&batch[12])], "Lambda retries the batch from the stuck record");

    let sent: Vec<String> = world.bus.calls().iter().flatten().map(event_id_of).collect();
    let successor = &events[25 + 12]; // o13's second event
    assert!(!sent.contains(&successor.event_id), "the stuck event's successor must not overtake it");
    for later in &events[25..] {
        assert!(!sent.contains(&later.event_id), "{}: nothing of the next wave is sent once one is stuck", later.event_id);
    }
    let accepted = world.bus.accepted_ids();
    for other in events[..25].iter().filter(|e| e.event_id != stuck.event_id) {
        assert!(accepted.contains(&other.event_id), "{}: the other orders' first events are published", other.event_id);
    }
    let retries = world.bus.calls().iter().filter(|call| call.len() == 1).count();
    assert_eq!(retries, 3, "the stuck entry is retried as often as configured");
    assert!(!accepted.contains(&stuck.event_id));
}

#[tokio::test]
async fn a_streams_events_go_out_in_order_each_after_the_last_was_taken() {
    let world = World::new();
    let (events, batch) = two_per_order();
    let response = world.publish_batch(batch).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    let calls = world.bus.calls();
    assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5, 10, 10, 5], "two waves of three puts");
    let put_of = |id: &str| calls.iter().position(|call| call.iter().any(|entry| event_id_of(entry) == id)).unwrap();
    for (first, second) in events[..25].iter().zip(&events[25..]) {
        assert!(put_of(&first.event_id) < put_of(&second.event_id), "{} goes out after {}", second.event_id, first.event_id);
    }
}

/// A bus that takes its time: how many puts it has in hand at once.
struct SlowBus {
    inner: Arc<RecordingBus>,
    in_hand: AtomicUsize,
    most: AtomicUsize,
}

#[async_trait::async_trait]
impl EventBus for SlowBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<PutOutcome, BusError> {
        let now = self.in_hand.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        self.in_hand.fetch_sub(1, Ordering::SeqCst);
        self.inner.put_events(entries).await
    }
}

/// On AWS each put is a round trip of tens of milliseconds: the puts of a
/// wave do not wait for each other.
#[tokio::test]
async fn the_puts_of_a_wave_go_out_at_once() {
    let mut world = World::new();
    let bus = Arc::new(SlowBus { inner: world.bus.clone(), in_hand: AtomicUsize::new(0), most: AtomicUsize::new(0) });
    world.deps.bus = bus.clone();
    let (events, batch) = records(25);
    let response = world.publish_batch(batch).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(bus.most.load(Ordering::SeqCst), 3, "the three puts of 25 events were in flight together");
    let mut accepted = world.bus.accepted_ids();
    accepted.sort();
    let mut expected = ids(&events);
    expected.sort();
    assert_eq!(accepted, expected, "every event once");
}

#[tokio::test]
async fn a_bus_that_is_down_gets_the_first_record_of_the_batch_reported() {
    let world = World::new();
    let (_, batch) = records(3);
    let first = sequence(&batch[0]);
    world.bus.go_down();
    let response = world.publish_batch(batch).await.unwrap();
    assert_eq!(reported(&response), [first]);
    assert!(world.bus.accepted().is_empty());
}

/// Sequence numbers are decimal strings of 21 to 40 digits: "100" comes after
/// "99" although it sorts before it as text.
#[tokio::test]
async fn the_earliest_failed_record_is_reported_whatever_the_length_of_sequence_numbers() {
    let world = World::new();
    let (_, mut batch) = records(2);
    batch[0].change.sequence_number = Some("99".into());
    batch[1].change.sequence_number = Some("100".into());
    world.bus.go_down();
    let response = world.publish_batch(batch).await.unwrap();
    assert_eq!(reported(&response), ["99"], "reporting 100 would make Lambda skip record 99");
}

#[tokio::test]
async fn an_unreadable_record_is_reported_after_publishing_what_came_before() {
    let world = World::new();
    let (events, mut batch) = records(5);
    batch[2].change.new_image.insert("data".into(), AttributeValue::S("{not json".into()));
    let broken = sequence(&batch[2]);
    let response = world.publish_batch(batch).await.unwrap();
    assert_eq!(reported(&response), [broken], "the unreadable record is reported");
    assert_eq!(world.bus.accepted_ids(), ids(&events[..2]), "what came before is published, nothing after");
}

#[tokio::test]
async fn an_event_of_an_unknown_aggregate_is_reported() {
    let world = World::new();
    let (events, mut batch) = records(3);
    batch[1].change.new_image.insert("aggregateType".into(), AttributeValue::S("Coupon".into()));
    let response = world.publish_batch(batch.clone()).await.unwrap();
    assert_eq!(reported(&response), [sequence(&batch[1])], "an event with no source cannot be routed");
    assert_eq!(world.bus.accepted_ids(), ids(&events[..1]));
}

#[tokio::test]
async fn a_record_missing_attributes_is_reported() {
    let world = World::new();
    let (_, mut batch) = records(1);
    batch[0].change.new_image.remove("eventType");
    let response = world.publish_batch(batch.clone()).await.unwrap();
    assert_eq!(reported(&response), [sequence(&batch[0])]);
    assert!(world.bus.calls().is_empty(), "nothing to put");
}

#[tokio::test]
async fn an_empty_batch_puts_nothing() {
    let world = World::new();
    let response = world.publish_batch(vec![]).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert!(world.bus.calls().is_empty());
}

#[tokio::test]
async fn a_stream_batch_deserializes_from_lambdas_json() {
    // What Lambda sends for one inserted event, written by hand.
    let detail = json!({ "customerId": "c1", "storeId": "s1" }).to_string();
    let batch: Value = json!({ "Records": [{
        "eventID": "c81e728d9d4c2f636f067f89cc14862c",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/2025-03-14T15:09:26.535",
        "dynamodb": {
            "ApproximateCreationDateTime": 1741964966,
            "Keys": { "pk": { "S": "Order#o1" }, "sk": { "N": "2" } },
            "NewImage": {
                "pk": { "S": "Order#o1" }, "sk": { "N": "2" },
                "eventId": { "S": "Order-o1-2" }, "eventType": { "S": "OrderAccepted" },
                "eventVersion": { "N": "1" }, "aggregateType": { "S": "Order" }, "aggregateId": { "S": "o1" },
                "correlationId": { "S": "o1" }, "causationId": { "S": "request/r1" },
                "time": { "S": "2025-03-14T15:09:26.535Z" }, "data": { "S": detail },
            },
            "SequenceNumber": "111000000000000000000001",
            "SizeBytes": 312,
            "StreamViewType": "NEW_IMAGE",
        },
    }]});
    let world = World::new();
    let batch: aws_lambda_events::event::dynamodb::Event = serde_json::from_value(batch).unwrap();
    let response = world.publish_batch(batch.records).await.unwrap();
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let accepted = world.bus.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!((accepted[0].source.as_str(), accepted[0].detail_type.as_str()), ("food-delivery.ordering", "OrderAccepted"));
    let published: Envelope = serde_json::from_str(&accepted[0].detail).unwrap();
    assert_eq!((published.event_id.as_str(), published.version), ("Order-o1-2", 2));
    assert_eq!(published.payload(), json!({ "customerId": "c1", "storeId": "s1" }));
}

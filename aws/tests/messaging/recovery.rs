//! Recovery on moto: the bus's archive replays what it carried, and the
//! dead-letter redrive puts parked events back on the bus (RELIABILITY.md,
//! "Replay and recovery").

use super::*;
use async_trait::async_trait;
use aws_adapters::redrive::DeadLetterQueue;
use aws_sdk_eventbridge::primitives::DateTime as AwsTime;
use aws_sdk_eventbridge::types::{ReplayDestination, ReplayState};

async fn bus_arn(aws: &Aws, bus: &EventBridgeBus) -> String {
    let described = aws.events.describe_event_bus().name(&bus.bus_name).send().await.expect("describe the bus");
    described.arn().expect("a bus arn").to_owned()
}

fn order_event(order: &str, version: u64, event_type: &str) -> BusEntry {
    let detail = json!({ "eventId": format!("Order-{order}-{version}"), "aggregateId": order, "version": version, "note": "寿司 🍣" });
    entry("food-delivery.ordering", event_type, detail)
}

/// Replays go to the bus the archive records, to every rule that matches:
/// here the one queue, which receives every archived event a second time,
/// marked with the replay's name. (moto replays the whole archive whatever
/// the time window; EventBridge replays the events of the window only.)
#[tokio::test]
async fn an_archived_bus_replays_its_events_to_the_rules_again() {
    let aws = Aws::new().await;
    let (bus, inbox) = aws.bus_routing(json!({ "source": [{ "prefix": "food-delivery." }] })).await;
    let bus_arn = bus_arn(&aws, &bus).await;
    let archive =
        aws.events.create_archive().archive_name(moto::unique("archive")).event_source_arn(&bus_arn).send().await.expect("an archive");
    let archive_arn = archive.archive_arn().expect("an archive arn").to_owned();
    let before = Utc::now() - Age::minutes(1);

    let sent = [order_event("o1", 1, "OrderPlaced"), order_event("o1", 2, "OrderAccepted"), order_event("o2", 1, "OrderPlaced")];
    assert_eq!(bus.put_events(&sent).await, Ok(PutOutcome::default()), "the bus takes the events");
    assert_eq!(inbox.events(3).await.len(), 3, "the rule's queue receives each event once");

    let replay = moto::unique("replay");
    let destination = ReplayDestination::builder().arn(&bus_arn).build().expect("a destination");
    aws.events
        .start_replay()
        .replay_name(&replay)
        .event_source_arn(&archive_arn)
        .event_start_time(AwsTime::from_secs(before.timestamp()))
        .event_end_time(AwsTime::from_secs((Utc::now() + Age::minutes(1)).timestamp()))
        .destination(destination)
        .send()
        .await
        .expect("start the replay");

    let received = inbox.events(6).await;
    assert_eq!(received.len(), 6, "every archived event arrives once more");
    let replayed: Vec<&Value> = received.iter().filter(|event| event["replay-name"] == json!(replay)).collect();
    let originals: Vec<Value> = sent.iter().map(|e| serde_json::from_str(&e.detail).expect("JSON")).collect();
    assert_eq!(replayed.iter().map(|event| event["detail"].clone()).collect::<Vec<_>>(), originals, "the replay carries the same details");
    for (event, sent) in replayed.iter().zip(&sent) {
        assert_eq!(
            (event["source"].as_str(), event["detail-type"].as_str()),
            (Some(sent.source.as_str()), Some(sent.detail_type.as_str()))
        );
    }
    let state = aws.events.describe_replay().replay_name(&replay).send().await.expect("describe the replay");
    assert_eq!(state.state(), Some(&ReplayState::Completed), "the replay has finished");
}

/// Takes every entry but those of one detail-type, as EventBridge reports
/// entries it could not take (throttled, an internal failure) by index.
struct RefusingBus {
    inner: EventBridgeBus,
    refused: &'static str,
}

#[async_trait]
impl EventBus for RefusingBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<PutOutcome, BusError> {
        let (refused, taken): (Vec<(usize, &BusEntry)>, Vec<(usize, &BusEntry)>) =
            entries.iter().enumerate().partition(|(_, entry)| entry.detail_type == self.refused);
        let forwarded: Vec<BusEntry> = taken.iter().map(|(_, entry)| (*entry).clone()).collect();
        let outcome = self.inner.put_events(&forwarded).await?;
        let mut failed: Vec<(usize, String)> =
            refused.iter().map(|(index, _)| (*index, "ThrottlingException: Rate exceeded".into())).collect();
        failed.extend(outcome.failed.into_iter().map(|(index, reason)| (taken[index].0, reason)));
        failed.sort();
        Ok(PutOutcome { failed })
    }
}

/// The event EventBridge writes to a rule's dead-letter queue.
fn dead_letter(entry: &BusEntry) -> String {
    json!({
        "version": "0", "id": uuid_like(&entry.detail), "detail-type": entry.detail_type, "source": entry.source,
        "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": moto::REGION, "resources": [],
        "detail": serde_json::from_str::<Value>(&entry.detail).expect("JSON"),
    })
    .to_string()
}

fn uuid_like(seed: &str) -> String {
    format!("{:032x}", seed.bytes().fold(0u128, |hash, byte| hash.wrapping_mul(31).wrapping_add(u128::from(byte))))
}

/// The bodies the queue holds now, left in place.
async fn held(aws: &Aws, url: &str) -> Vec<String> {
    let attributes = aws
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes");
    let count = |name: QueueAttributeName| {
        attributes.attributes().and_then(|a| a.get(&name)).and_then(|n| n.parse::<usize>().ok()).expect("a message count")
    };
    assert_eq!(count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible), 0, "no message is left hidden");
    let mut bodies = Vec::new();
    let received =
        aws.sqs.receive_message().queue_url(url).max_number_of_messages(10).visibility_timeout(0).send().await.expect("receive messages");
    bodies.extend(received.messages().iter().filter_map(|m| m.body().map(str::to_owned)));
    assert_eq!(bodies.len(), count(QueueAttributeName::ApproximateNumberOfMessages), "every held message is seen");
    bodies.sort();
    bodies
}

#[tokio::test]
async fn dead_letters_go_back_on_the_bus_and_leave_the_queue_only_once_taken() {
    let aws = Aws::new().await;
    let (bus, inbox) = aws.bus_routing(json!({ "source": [{ "prefix": "food-delivery." }] })).await;
    let dead_letters = aws.queue("dead-letters").await;
    let parked = [order_event("o1", 2, "OrderAccepted"), order_event("o1", 3, "CookingStarted"), order_event("o2", 2, "OrderRejected")];
    let throttled = order_event("o3", 1, "OrderPlaced");
    let garbage = "a note someone sent by hand".to_owned();
    let mut bodies: Vec<String> = parked.iter().chain([&throttled]).map(dead_letter).collect();
    bodies.push(garbage.clone());
    for body in &bodies {
        aws.sqs.send_message().queue_url(&dead_letters.url).message_body(body).send().await.expect("park a dead letter");
    }

    let queue = DeadLetterQueue::new(aws.sqs.clone(), &dead_letters.url);
    let refusing = RefusingBus { inner: bus.clone(), refused: "OrderPlaced" };
    let report = queue.redrive(&refusing, 100).await.expect("the redrive runs");
    assert_eq!(report.redriven, 3, "the events the bus took: {report:?}");
    assert_eq!(report.refused.len(), 1, "the event the bus refused: {report:?}");
    assert!(report.refused[0].reason.contains("ThrottlingException"), "with the bus's reason: {report:?}");
    assert_eq!(report.unreadable.len(), 1, "the message that is no event: {report:?}");
    assert!(report.not_deleted.is_empty(), "{report:?}");

    let delivered: Vec<(Value, Value, Value)> =
        inbox.events(3).await.iter().map(|e| (e["source"].clone(), e["detail-type"].clone(), e["detail"].clone())).collect();
    let expected: Vec<(Value, Value, Value)> =
        parked.iter().map(|e| (json!(e.source), json!(e.detail_type), serde_json::from_str(&e.detail).expect("JSON"))).collect();
    assert_eq!(delivered, expected, "each redriven event reaches the rule's target once, as it was first put");
    let mut left = vec![dead_letter(&throttled), garbage.clone()];
    left.sort();
    assert_eq!(held(&aws, &dead_letters.url).await, left, "what the bus did not take stays, visible for the next look");

    // The cause is fixed: the next redrive takes the rest, but never the note.
    let report = queue.redrive(&bus, 100).await.expect("the redrive runs");
    assert_eq!((report.redriven, report.refused.len(), report.unreadable.len()), (1, 0, 1), "{report:?}");
    assert_eq!(inbox.events(4).await.len(), 4, "the refused event arrives now, and nothing twice");
    assert_eq!(held(&aws, &dead_letters.url).await, vec![garbage], "only the note stays");
}

#[tokio::test]
async fn a_redrive_stops_at_its_limit_and_an_empty_queue_redrives_nothing() {
    let aws = Aws::new().await;
    let (bus, inbox) = aws.bus_routing(json!({ "source": [{ "prefix": "food-delivery." }] })).await;
    let dead_letters = aws.queue("dead-letters").await;
    let queue = DeadLetterQueue::new(aws.sqs.clone(), &dead_letters.url);
    assert_eq!(queue.redrive(&bus, 100).await.expect("the redrive runs").redriven, 0, "nothing to redrive");
    for version in 1..=12 {
        let body = dead_letter(&order_event("o1", version, "OrderAccepted"));
        aws.sqs.send_message().queue_url(&dead_letters.url).message_body(body).send().await.expect("park a dead letter");
    }
    assert_eq!(queue.redrive(&bus, 5).await.expect("the redrive runs").redriven, 5, "at most the limit");
    assert_eq!(held(&aws, &dead_letters.url).await.len(), 7, "the rest wait");
    assert_eq!(queue.redrive(&bus, 100).await.expect("the redrive runs").redriven, 7, "the rest, in pages of ten");
    assert_eq!(inbox.events(12).await.len(), 12, "every event once");
}

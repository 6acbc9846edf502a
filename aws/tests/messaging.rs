//! The EventBridge bus and the SNS notifier against moto (see `support/moto.rs`),
//! and the HTTP card processor against a local server (`support/card_processor.rs`).
//!
//! What a bus or a topic delivered is observed for real: every rule targets an
//! SQS queue, every topic has an SQS subscription, and the tests read the
//! queues. (moto's TestEventPattern is not implemented, so routing is only
//! ever checked by delivery.) The notifier's claims live in a DynamoDB table
//! on the same moto server.

#[path = "support/card_processor.rs"]
mod card_processor;
#[path = "support/moto.rs"]
mod moto;
#[path = "messaging/recovery.rs"]
mod recovery;
#[path = "support/watchdog.rs"]
mod watchdog;

use aws_adapters::eventbridge::EventBridgeBus;
use aws_adapters::sns::{SnsNotifier, claim_key};
use aws_sdk_dynamodb::types::{AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use aws_sdk_eventbridge::types::{RuleState, Target};
use aws_sdk_sqs::types::{Message, QueueAttributeName};
use chrono::{Duration as Age, TimeZone, Utc};
use domain::notification::Notification;
use domain::ordering::{Order, OrderEvent};
use domain::{CustomerId, Envelope, Metadata, StoreId};
use ports::contract::{self, BUS_SOURCE_PREFIX, BusDelivery};
use ports::{BoxFuture, BusEntry, BusError, EventBus, Notifier, NotifyError, PutOutcome, Sent};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ===================================================================== set-up

struct Aws {
    events: aws_sdk_eventbridge::Client,
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
}

impl Aws {
    async fn new() -> Aws {
        let config = moto::config().await;
        Aws {
            events: aws_sdk_eventbridge::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
        }
    }

    /// A fresh queue and an inbox that collects what it receives.
    async fn queue(&self, prefix: &str) -> Inbox {
        let name = moto::unique(prefix);
        let created = self.sqs.create_queue().queue_name(&name).send().await.expect("create queue");
        let url = created.queue_url().expect("a queue url").to_owned();
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes");
        let arn = attributes.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).expect("a queue arn").clone();
        Inbox { sqs: self.sqs.clone(), url, arn, seen: Arc::new(Mutex::new(Vec::new())) }
    }

    /// A fresh event bus whose one rule, with `pattern`, targets a fresh queue.
    async fn bus_routing(&self, pattern: Value) -> (EventBridgeBus, Inbox) {
        let bus_name = moto::unique("bus");
        self.events.create_event_bus().name(&bus_name).send().await.expect("create event bus");
        let inbox = self.queue("bus-sink").await;
        let rule = moto::unique("rule");
        self.events
            .put_rule()
            .name(&rule)
            .event_bus_name(&bus_name)
            .event_pattern(pattern.to_string())
            .state(RuleState::Enabled)
            .send()
            .await
            .expect("put rule");
        let target = Target::builder().id("sink").arn(&inbox.arn).build().expect("a target");
        let put = self.events.put_targets().rule(&rule).event_bus_name(&bus_name).targets(target).send().await.expect("put targets");
        assert_eq!(put.failed_entry_count(), 0, "the queue target must be taken");
        (EventBridgeBus::new(self.events.clone(), bus_name), inbox)
    }

    async fn topic(&self) -> String {
        let created = self.sns.create_topic().name(moto::unique("notifications")).send().await.expect("create topic");
        created.topic_arn().expect("a topic arn").to_owned()
    }

    /// A queue subscribed to the topic: raw delivery (the body is the message,
    /// the message attributes are SQS message attributes) or SNS's envelope;
    /// with a filter policy on message attributes, if any.
    async fn subscribe(&self, topic_arn: &str, raw: bool, filter_policy: Option<Value>) -> Inbox {
        let inbox = self.queue("subscriber").await;
        let mut request = self.sns.subscribe().topic_arn(topic_arn).protocol("sqs").endpoint(&inbox.arn);
        if raw {
            request = request.attributes("RawMessageDelivery", "true");
        }
        if let Some(policy) = filter_policy {
            request = request.attributes("FilterPolicy", policy.to_string());
        }
        request.send().await.expect("subscribe the queue");
        inbox
    }

    /// A table like the view table's key: `pk` (string) only.
    async fn claim_table(&self) -> String {
        let table = moto::unique("claims");
        self.dynamodb
            .create_table()
            .table_name(&table)
            .attribute_definitions(
                AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().expect("attribute"),
            )
            .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().expect("key"))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .expect("create the claim table");
        table
    }

    fn notifier(&self, topic_arn: &str, table: &str) -> SnsNotifier {
        SnsNotifier { sns: self.sns.clone(), topic_arn: topic_arn.to_owned(), dedupe: self.dynamodb.clone(), table: table.to_owned() }
    }

    async fn claim(&self, table: &str, notification_id: &str) -> Option<HashMap<String, AttributeValue>> {
        let read = self
            .dynamodb
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S(claim_key(notification_id)))
            .consistent_read(true)
            .send()
            .await
            .expect("read a claim");
        read.item
    }
}

/// Everything a queue has received so far: each look receives (and deletes)
/// what is new and keeps it.
#[derive(Clone)]
struct Inbox {
    sqs: aws_sdk_sqs::Client,
    url: String,
    arn: String,
    seen: Arc<Mutex<Vec<Message>>>,
}

impl Inbox {
    async fn all(&self) -> Vec<Message> {
        let mut new = Vec::new();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .message_attribute_names("All")
                .send()
                .await
                .expect("receive messages");
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for message in &messages {
                if let Some(handle) = message.receipt_handle() {
                    self.sqs.delete_message().queue_url(&self.url).receipt_handle(handle).send().await.expect("delete a message");
                }
            }
            new.extend(messages);
        }
        let mut seen = self.seen.lock().expect("the inbox lock");
        seen.extend(new);
        seen.clone()
    }

    /// Waits (up to 10 s) until at least `count` messages arrived, then a
    /// little longer for any that should not have (so a test that expects
    /// `count` and sees more catches the extra ones).
    async fn at_least(&self, count: usize) -> Vec<Message> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.all().await.len() < count && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.all().await
    }

    /// The EventBridge events the queue received.
    async fn events(&self, count: usize) -> Vec<Value> {
        self.at_least(count).await.iter().map(body_json).collect()
    }
}

fn body_json(message: &Message) -> Value {
    serde_json::from_str(message.body().expect("a message body")).expect("a JSON message body")
}

fn entry(source: &str, detail_type: &str, detail: Value) -> BusEntry {
    BusEntry { source: source.into(), detail_type: detail_type.into(), detail: detail.to_string() }
}

// ================================================================ EventBridge

#[tokio::test]
async fn eventbridge_bus_keeps_the_contract() {
    let aws = Aws::new().await;
    let (bus, inbox) = aws.bus_routing(json!({ "source": [{ "prefix": BUS_SOURCE_PREFIX }] })).await;
    contract::event_bus(&bus, move || -> BoxFuture<'static, Vec<BusDelivery>> {
        let inbox = inbox.clone();
        Box::pin(async move { inbox.all().await.iter().filter_map(|message| BusDelivery::from_event(&body_json(message))).collect() })
    })
    .await;
}

/// moto refuses an entry whose detail is not JSON (MalformedDetail) and one
/// without a detail-type (InvalidArgument): both come back at their index as
/// "code: message", and the entries around them are delivered.
#[tokio::test]
async fn entries_eventbridge_refuses_are_reported_at_their_index_and_the_others_delivered() {
    let aws = Aws::new().await;
    let (bus, inbox) = aws.bus_routing(json!({ "source": ["test.partial"] })).await;
    let good = |n: u32| entry("test.partial", "Good", json!({ "n": n }));
    let entries = [
        good(0),
        BusEntry { source: "test.partial".into(), detail_type: "Bad".into(), detail: "{not json".into() },
        good(2),
        BusEntry { source: "test.partial".into(), detail_type: String::new(), detail: json!({ "n": 3 }).to_string() },
        good(4),
    ];
    let outcome = bus.put_events(&entries).await.expect("PutEvents answers");
    assert_eq!(
        outcome,
        PutOutcome {
            failed: vec![
                (1, "MalformedDetail: Detail is malformed.".into()),
                (3, "InvalidArgument: Parameter DetailType is not valid. Reason: DetailType is a required argument.".into()),
            ]
        },
        "refused entries are reported at their index, with EventBridge's code and message"
    );
    let delivered: Vec<Value> = inbox.events(3).await.iter().map(|event| event["detail"].clone()).collect();
    assert_eq!(delivered, [json!({ "n": 0 }), json!({ "n": 2 }), json!({ "n": 4 })], "the taken entries are delivered, in order");
}

#[tokio::test]
async fn more_than_ten_entries_are_refused_before_anything_is_sent() {
    let aws = Aws::new().await;
    let (bus, inbox) = aws.bus_routing(json!({ "source": ["test.oversized"] })).await;
    let entries: Vec<BusEntry> = (0..11).map(|n| entry("test.oversized", "Probe", json!({ "n": n }))).collect();
    match bus.put_events(&entries).await {
        Err(BusError::Unavailable(reason)) => assert!(reason.contains("at most 10"), "the error says why: {reason}"),
        other => panic!("eleven entries must be refused, got {other:?}"),
    }
    assert!(inbox.at_least(0).await.is_empty(), "nothing of a refused request is sent");
    assert_eq!(bus.put_events(&[]).await, Ok(PutOutcome::default()), "no entries: nothing to do, no request");
}

#[tokio::test]
async fn a_service_error_is_unavailable_with_its_code_and_message() {
    let aws = Aws::new().await;
    let bus = EventBridgeBus::new(aws.events.clone(), moto::unique("no-such-bus"));
    match bus.put_events(&[entry("test.missing", "Probe", json!({}))]).await {
        Err(BusError::Unavailable(reason)) => {
            assert!(reason.contains("ResourceNotFoundException"), "the error carries the service's code: {reason}");
            assert!(reason.contains("does not exist"), "and its message: {reason}");
        }
        other => panic!("a PutEvents the service refuses as a whole must be Unavailable, got {other:?}"),
    }
}

/// `publish-events` with the EventBridge adapter: a DynamoDB stream batch of
/// 23 events (three PutEvents requests) reaches the bus, and a rule's queue
/// receives every event in stream order, its detail the stored envelope.
/// (In order on moto, which delivers synchronously; EventBridge itself
/// promises no order across requests, which is why consumers never rely on it.)
#[tokio::test]
async fn the_publisher_puts_a_stream_batch_on_eventbridge_in_order() {
    let aws = Aws::new().await;
    let (bus, inbox) = aws.bus_routing(json!({ "source": [{ "prefix": "food-delivery." }] })).await;
    let database = functions::embedded::Database::temporary().expect("a temporary database");
    let deps = functions::Deps::embedded(database, Arc::new(functions::embedded::SimulatedProcessor::default()), Arc::new(bus));

    let time = Utc.with_ymd_and_hms(2025, 3, 14, 15, 9, 26).unwrap() + Age::milliseconds(535);
    let envelope = |aggregate_type: &str, id: &str, version: u64, event_type: &str| Envelope {
        event_id: domain::envelope::event_id(aggregate_type, id, version),
        event_type: event_type.into(),
        event_version: 1,
        aggregate_type: aggregate_type.into(),
        aggregate_id: id.into(),
        version,
        correlation_id: id.into(),
        causation_id: format!("request/{id}/{version}"),
        time: time + Age::milliseconds(version as i64),
        data: serde_json::value::to_raw_value(&json!({ "customerId": "c1", "storeId": "s1", "note": "寿司 🍣", "version": version }))
            .unwrap(),
    };
    let mut stored = vec![envelope("Store", "s1", 1, "StoreRegistered")];
    for version in 1..=11 {
        stored.push(envelope("Order", "o1", version, "OrderAccepted"));
        stored.push(envelope("Order", "o2", version, "OrderRejected"));
    }
    let records: Vec<Value> = stored
        .iter()
        .zip(1..)
        .map(|(envelope, sequence)| {
            serde_json::to_value(functions::item::stream_record(sequence, envelope).expect("a stream record")).expect("JSON")
        })
        .collect();
    let batch = serde_json::from_value(json!({ "Records": records })).expect("a DynamoDB Streams batch");
    let Some(functions::Handler::Stream(publish)) = functions::registry::handler("publish-events") else {
        panic!("publish-events is a stream function")
    };
    let response = functions::registry::invoke_stream("publish-events", publish, &deps, batch).await.expect("the publisher runs");
    assert!(response.batch_item_failures.is_empty(), "every record is published: {:?}", response.batch_item_failures);

    let received = inbox.events(stored.len()).await;
    assert_eq!(received.len(), stored.len(), "every event arrives once");
    for (event, envelope) in received.iter().zip(&stored) {
        assert_eq!(event["source"], json!(envelope.source().expect("a known aggregate")), "the source is the aggregate's context");
        assert_eq!(event["detail-type"], json!(envelope.event_type), "the detail-type is the event type");
        let detail: Envelope = serde_json::from_value(event["detail"].clone()).expect("the detail is an envelope");
        assert_eq!(&detail, envelope, "the detail is the stored envelope, in stream order");
    }
}

// ======================================================================== SNS

/// The notification of event `version` of `order_id`, as the notify-customer
/// policy makes it (its id is the event's id).
fn notification(customer: &str, order_id: &str, version: u64) -> Notification {
    let event = OrderEvent::OrderAccepted { customer_id: CustomerId(customer.into()), store_id: StoreId("store-1".into()) };
    let meta = Metadata { correlation_id: order_id.into(), causation_id: "request/test".into(), time: Utc::now() };
    let envelope = Envelope::wrap::<Order>(order_id, version, &event, &meta);
    domain::notification::for_order_event(&envelope, &event)
}

fn raw_notification(message: &Message) -> Notification {
    serde_json::from_str(message.body().expect("a body")).expect("the raw body is the notification")
}

fn sqs_attribute<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message.message_attributes().and_then(|attributes| attributes.get(name)).and_then(|value| value.string_value())
}

#[tokio::test]
async fn a_notification_is_published_once_with_its_attributes() {
    let aws = Aws::new().await;
    let (topic, table) = (aws.topic().await, aws.claim_table().await);
    let raw = aws.subscribe(&topic, true, None).await;
    let enveloped = aws.subscribe(&topic, false, None).await;
    let notifier = aws.notifier(&topic, &table);
    let (customer, order) = (moto::unique("alice"), moto::unique("order"));
    let first = notification(&customer, &order, 2);

    assert_eq!(notifier.notify(&first).await, Ok(Sent::New));
    let received = raw.at_least(1).await;
    assert_eq!(received.len(), 1, "one message");
    assert_eq!(raw_notification(&received[0]), first, "the message is the notification as JSON");
    for (name, value) in
        [("customerId", customer.as_str()), ("orderId", order.as_str()), ("eventType", "OrderAccepted"), ("status", "accepted")]
    {
        assert_eq!(sqs_attribute(&received[0], name), Some(value), "message attribute {name}");
    }
    let envelope = body_json(&enveloped.at_least(1).await[0]);
    let message: Notification = serde_json::from_str(envelope["Message"].as_str().expect("SNS's Message")).expect("a notification");
    assert_eq!(message, first, "an enveloped subscriber gets the same message");
    assert_eq!(envelope["MessageAttributes"]["customerId"], json!({ "Type": "String", "Value": customer }));
    assert_eq!(envelope["MessageAttributes"]["orderId"], json!({ "Type": "String", "Value": order }));
    assert_eq!(envelope["MessageAttributes"]["eventType"], json!({ "Type": "String", "Value": "OrderAccepted" }));
    let claim = aws.claim(&table, &first.id).await.expect("the claim item");
    assert_eq!(claim.get("state"), Some(&AttributeValue::S("sent".into())), "the claim is marked sent");

    assert_eq!(notifier.notify(&first).await, Ok(Sent::Duplicate), "the same id again is a duplicate");
    assert_eq!(raw.at_least(1).await.len(), 1, "and is not published again");

    let second = notification(&customer, &order, 3);
    assert_eq!(notifier.notify(&second).await, Ok(Sent::New), "another id is a new notification");
    let received = raw.at_least(2).await;
    assert_eq!(received.iter().map(raw_notification).collect::<Vec<_>>(), [first, second], "a second message for the second id");
}

#[tokio::test]
async fn a_filter_policy_on_customer_id_receives_only_that_customers_messages() {
    let aws = Aws::new().await;
    let (topic, table) = (aws.topic().await, aws.claim_table().await);
    let (alice, bob) = (moto::unique("alice"), moto::unique("bob"));
    let alices = aws.subscribe(&topic, true, Some(json!({ "customerId": [alice] }))).await;
    let everyone = aws.subscribe(&topic, true, None).await;
    let notifier = aws.notifier(&topic, &table);
    let order = moto::unique("order");
    for (customer, version) in [(&alice, 2), (&bob, 3), (&alice, 4)] {
        assert_eq!(notifier.notify(&notification(customer, &order, version)).await, Ok(Sent::New));
    }
    assert_eq!(everyone.at_least(3).await.len(), 3, "an unfiltered subscription gets every message");
    let customers: Vec<String> = alices.at_least(2).await.iter().map(|m| raw_notification(m).customer_id.0).collect();
    assert_eq!(customers, [alice.clone(), alice], "the filtered subscription gets only alice's messages");
}

#[tokio::test]
async fn sns_notifier_keeps_the_contract() {
    let aws = Aws::new().await;
    let (topic, table) = (aws.topic().await, aws.claim_table().await);
    let inbox = aws.subscribe(&topic, true, None).await;
    let notifier = aws.notifier(&topic, &table);
    contract::notifier(&notifier, move |customer: &str| -> BoxFuture<'static, Vec<Notification>> {
        let (inbox, customer) = (inbox.clone(), customer.to_owned());
        Box::pin(async move {
            inbox.all().await.iter().map(raw_notification).filter(|notification| notification.customer_id.0 == customer).collect()
        })
    })
    .await;
}

/// A publish SNS refuses is an error, and the claim is given back, so the
/// retry sends at once.
#[tokio::test]
async fn a_failed_publish_gives_the_claim_back_for_the_retry() {
    let aws = Aws::new().await;
    let (topic, table) = (aws.topic().await, aws.claim_table().await);
    let inbox = aws.subscribe(&topic, true, None).await;
    let missing_topic = format!("{topic}-deleted");
    let once = notification(&moto::unique("carol"), &moto::unique("order"), 2);

    match aws.notifier(&missing_topic, &table).notify(&once).await {
        Err(NotifyError::Unavailable(reason)) => assert!(reason.contains("NotFound"), "the error carries SNS's code: {reason}"),
        other => panic!("publishing to a missing topic must fail, got {other:?}"),
    }
    assert_eq!(aws.claim(&table, &once.id).await, None, "a failed publish deletes its claim");

    assert_eq!(aws.notifier(&topic, &table).notify(&once).await, Ok(Sent::New), "the retry sends");
    assert_eq!(inbox.at_least(1).await.iter().map(raw_notification).collect::<Vec<_>>(), [once]);
}

/// A claim older than the timeout (its sender crashed) is taken over and the
/// notification sent; a fresh claim (a sender at work) is not: that delivery
/// fails, to be retried, and nothing is sent twice.
#[tokio::test]
async fn a_stale_claim_is_taken_over_and_a_fresh_one_is_not() {
    let aws = Aws::new().await;
    let (topic, table) = (aws.topic().await, aws.claim_table().await);
    let inbox = aws.subscribe(&topic, true, None).await;
    let notifier = aws.notifier(&topic, &table);
    let (customer, order) = (moto::unique("dave"), moto::unique("order"));
    let (crashed, busy) = (notification(&customer, &order, 2), notification(&customer, &order, 3));
    let timeout = aws_adapters::sns::CLAIM_TIMEOUT.as_millis() as i64;
    for (claimed, claimed_at) in [(&crashed, Utc::now().timestamp_millis() - timeout - 1_000), (&busy, Utc::now().timestamp_millis())] {
        aws.dynamodb
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(claim_key(&claimed.id)))
            .item("state", AttributeValue::S("claimed".into()))
            .item("claimedAt", AttributeValue::N(claimed_at.to_string()))
            .send()
            .await
            .expect("seed a claim");
    }

    assert_eq!(notifier.notify(&crashed).await, Ok(Sent::New), "a stale claim is taken over and the notification sent");
    match notifier.notify(&busy).await {
        Err(NotifyError::Unavailable(reason)) => assert!(reason.contains("another delivery"), "{reason}"),
        other => panic!("a fresh claim of another sender must make this delivery fail (to be retried), got {other:?}"),
    }
    assert_eq!(inbox.at_least(1).await.iter().map(raw_notification).collect::<Vec<_>>(), [crashed], "only the taken-over one is sent");
    let claim = aws.claim(&table, &busy.id).await.expect("the busy claim stays");
    assert_eq!(claim.get("state"), Some(&AttributeValue::S("claimed".into())), "the other sender's claim is left alone");
}

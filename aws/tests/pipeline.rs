//! The production wiring, end to end, on real local servers: a command
//! handler writes to DynamoDB Local; the table's stream, read through the
//! DynamoDB Streams API, feeds the stream publisher; the publisher puts the
//! events on EventBridge (moto) carrying every rule of template.yaml, each
//! targeting an SQS queue; a policy fed from its queue moves the next
//! aggregate. And the local runner's pattern matcher routes the very same
//! events to the very same functions.

#[path = "support/dynamodb_local.rs"]
mod dynamodb_local;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/watchdog.rs"]
mod watchdog;

use aws_adapters::dynamodb::{DynamoEventStore, DynamoViewStore, create_event_table, create_view_table};
use aws_adapters::eventbridge::EventBridgeBus;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_sdk_eventbridge::types::{RuleState, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use domain::delivery::{Delivery, DeliveryState};
use functions::command::load;
use functions::embedded::{Database, SimulatedProcessor};
use functions::http::Request;
use functions::registry::{self, Handler};
use functions::{Deps, Settings};
use local::template::Wiring;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

struct Queues {
    sqs: aws_sdk_sqs::Client,
    /// Function name → queue url.
    urls: BTreeMap<String, String>,
}

/// An EventBridge bus on moto with every rule of template.yaml, each rule
/// targeting a queue of its function.
async fn bus_with_template_rules(wiring: &Wiring) -> (EventBridgeBus, Queues) {
    let config = moto::config().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let bus_name = moto::unique("food-delivery");
    events.create_event_bus().name(&bus_name).send().await.expect("create the bus");
    let mut urls = BTreeMap::new();
    for function in wiring.functions.iter().filter(|function| !function.rules.is_empty()) {
        let queue = sqs.create_queue().queue_name(moto::unique(&function.name)).send().await.expect("create a queue");
        let url = queue.queue_url().expect("a queue url").to_owned();
        let attributes =
            sqs.get_queue_attributes().queue_url(&url).attribute_names(QueueAttributeName::QueueArn).send().await.expect("queue arn");
        let arn = attributes.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).expect("a queue arn").clone();
        for rule in &function.rules {
            let name = moto::unique(&function.name);
            events
                .put_rule()
                .name(&name)
                .event_bus_name(&bus_name)
                .event_pattern(rule.pattern_json.to_string())
                .state(RuleState::Enabled)
                .send()
                .await
                .expect("put the template's rule");
            let target = Target::builder().id("function").arn(&arn).build().expect("a target");
            events.put_targets().rule(&name).event_bus_name(&bus_name).targets(target).send().await.expect("put the target");
        }
        urls.insert(function.name.clone(), url);
    }
    (EventBridgeBus::new(events, bus_name), Queues { sqs, urls })
}

impl Queues {
    /// Everything each function's queue received: function → events.
    async fn drain(&self) -> BTreeMap<String, Vec<Value>> {
        let mut received = BTreeMap::new();
        for (function, url) in &self.urls {
            let mut events = Vec::new();
            loop {
                let page = self.sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.expect("receive");
                let messages = page.messages.unwrap_or_default();
                if messages.is_empty() {
                    break;
                }
                for message in messages {
                    events.push(serde_json::from_str::<Value>(message.body().unwrap_or("null")).expect("an EventBridge event"));
                    if let Some(handle) = message.receipt_handle() {
                        self.sqs.delete_message().queue_url(url).receipt_handle(handle).send().await.expect("delete");
                    }
                }
            }
            received.insert(function.clone(), events);
        }
        received
    }
}

/// An API Gateway v2 request as the JWT authorizer passes it on.
fn request(route: &str, path: &str, parameters: Value, sub: &str, group: &str, body: Option<Value>) -> Request {
    serde_json::from_value(json!({
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "headers": { "content-type": "application/json" },
        "pathParameters": parameters,
        "requestContext": {
            "requestId": moto::unique("request"),
            "routeKey": route,
            "http": { "method": route.split(' ').next(), "path": path },
            "authorizer": { "jwt": { "claims": { "sub": sub, "cognito:groups": format!("[{group}]") } } },
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false,
    }))
    .expect("an API Gateway request")
}

async fn http(deps: &Deps, function: &str, request: Request) -> Value {
    let Some(Handler::Http(handler)) = registry::handler(function) else { panic!("{function} is an HTTP function") };
    let response = registry::invoke_http(function, handler, deps, request).await;
    let body = match &response.body {
        Some(aws_lambda_events::encodings::Body::Text(text)) => serde_json::from_str(text).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    assert!(response.status_code < 300, "{function} answered {}: {body}", response.status_code);
    body
}

/// The event table's stream from its start, as Lambda would hand it over.
async fn stream_batch(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> aws_lambda_events::event::dynamodb::Event {
    let streams = dynamodb_local::streams_client().await;
    let described = dynamodb.describe_table().table_name(table).send().await.expect("describe the table");
    let arn = described.table().and_then(|t| t.latest_stream_arn()).expect("the event table has a stream").to_owned();
    let stream = streams.describe_stream().stream_arn(&arn).send().await.expect("describe the stream");
    let mut batch = aws_lambda_events::event::dynamodb::Event::default();
    for shard in stream.stream_description().map(|d| d.shards().to_vec()).unwrap_or_default() {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().expect("a shard id"))
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("a shard iterator")
            .shard_iterator;
        while let Some(current) = iterator {
            let page = streams.get_records().shard_iterator(current).send().await.expect("stream records");
            if page.records().is_empty() {
                break;
            }
            for record in page.records() {
                let change = record.dynamodb().expect("a change");
                let mut converted = aws_lambda_events::event::dynamodb::EventRecord::default();
                converted.event_name = record.event_name().map(|name| name.as_str().to_owned()).unwrap_or_default();
                converted.change.sequence_number = change.sequence_number().map(str::to_owned);
                converted.change.new_image = serde_dynamo::Item::from(change.new_image().cloned().unwrap_or_default());
                batch.records.push(converted);
            }
            iterator = page.next_shard_iterator;
        }
    }
    batch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_travels_the_production_wiring_to_the_next_aggregate() {
    let wiring = Wiring::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml")).expect("template.yaml");
    let dynamodb = dynamodb_local::client().await;
    let (event_table, view_table) = (dynamodb_local::unique_table("events"), dynamodb_local::unique_table("views"));
    create_event_table(&dynamodb, &event_table).await.expect("the event table");
    create_view_table(&dynamodb, &view_table).await.expect("the view table");
    let (bus, queues) = bus_with_template_rules(&wiring).await;
    let deps = Deps {
        events: Arc::new(DynamoEventStore::new(dynamodb.clone(), &event_table)),
        views: Arc::new(DynamoViewStore::new(dynamodb.clone(), &view_table)),
        notifier: Database::temporary().expect("a notifier"),
        payments: Arc::new(SimulatedProcessor::default()),
        bus: Arc::new(bus),
        settings: Settings::default(),
    };

    // Commands: a store, an order paid for, accepted, cooking.
    let menu = json!({ "name": "Seoul Kitchen", "region": "gangnam", "menu": [{ "name": "Bibimbap", "price": 1200 }] });
    let store = http(&deps, "register-store", request("POST /stores", "/stores", json!({}), "olivia", "owner", Some(menu))).await;
    let store_id = store["storeId"].as_str().expect("a store id").to_owned();
    let order = json!({ "storeId": store_id, "items": [{ "menuId": "m1", "quantity": 1 }], "region": "gangnam",
                        "address": "1 Teheran-ro", "paymentToken": "tok_visa" });
    let placed = http(&deps, "place-order", request("POST /orders", "/orders", json!({}), "alice", "customer", Some(order))).await;
    let order_id = placed["orderId"].as_str().expect("an order id").to_owned();
    for step in ["accept", "start-cooking"] {
        let route = format!("POST /stores/{{storeId}}/orders/{{orderId}}/{step}");
        let path = format!("/stores/{store_id}/orders/{order_id}/{step}");
        let parameters = json!({ "storeId": store_id, "orderId": order_id });
        http(
            &deps,
            &format!("{step}{}", if step == "accept" { "-order" } else { "" }),
            request(&route, &path, parameters, "olivia", "owner", None),
        )
        .await;
    }

    // The stream, through the publisher, onto EventBridge.
    let batch = stream_batch(&dynamodb, &event_table).await;
    let published: Vec<domain::Envelope> =
        batch.records.iter().filter_map(|record| functions::item::from_image(&record.change.new_image).ok()).collect();
    let kinds: Vec<&str> = published.iter().map(|envelope| envelope.event_type.as_str()).collect();
    assert_eq!(kinds, ["StoreRegistered", "PaymentApproved", "OrderPlaced", "OrderAccepted", "CookingStarted"], "the stream in order");
    let Some(Handler::Stream(publisher)) = registry::handler("publish-events") else { panic!("publish-events reads streams") };
    let response = registry::invoke_stream("publish-events", publisher, &deps, batch).await.expect("the publisher runs");
    assert!(response.batch_item_failures.is_empty(), "every record published");

    // Each event reached exactly the functions the local runner's matcher picks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = queues.drain().await;
    let mut routed_by_moto: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut delivered_events: BTreeMap<String, Value> = BTreeMap::new();
    for (function, events) in &received {
        for event in events {
            let id = event["detail"]["eventId"].as_str().expect("an envelope").to_owned();
            routed_by_moto.entry(id.clone()).or_default().insert(function.clone());
            delivered_events.insert(id, event.clone());
        }
    }
    for envelope in &published {
        let event = delivered_events.get(&envelope.event_id).cloned().unwrap_or_else(|| {
            json!({ "source": envelope.source(), "detail-type": envelope.event_type, "detail": serde_json::to_value(envelope).expect("json") })
        });
        let routed_locally: BTreeSet<String> = wiring
            .functions
            .iter()
            .filter(|function| function.rules.iter().any(|rule| rule.pattern.matches(&event)))
            .map(|function| function.name.clone())
            .collect();
        let by_moto = routed_by_moto.get(&envelope.event_id).cloned().unwrap_or_default();
        assert_eq!(by_moto, routed_locally, "{} must reach the same functions on both", envelope.event_type);
    }
    assert!(!routed_by_moto.contains_key(&published[1].event_id), "PaymentApproved concerns no function");

    // The policy, fed from its queue, opens the delivery: the next aggregate.
    let cooking =
        received["dispatch-delivery"].iter().find(|e| e["detail-type"] == "CookingStarted").expect("CookingStarted queued").clone();
    let Some(Handler::Event(dispatch)) = registry::handler("dispatch-delivery") else { panic!("dispatch-delivery is a policy") };
    let event: registry::BusEvent = serde_json::from_str(&cooking.to_string()).expect("an EventBridge event");
    registry::invoke_event("dispatch-delivery", dispatch, &deps, &event).await.expect("the policy runs");
    let delivery = load::<Delivery>(deps.events.as_ref(), &order_id).await.expect("the delivery loads");
    let opened = delivery.state.opened.expect("the delivery is opened");
    assert_eq!((opened.details.region.0.as_str(), opened.state), ("gangnam", DeliveryState::Open));
    assert!(!opened.food_ready, "cooking has only started");
}

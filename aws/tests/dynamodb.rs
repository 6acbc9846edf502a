//! The DynamoDB adapters against DynamoDB Local: the port contracts, the
//! transaction's limits and races, the item layout the stream publisher
//! reads, and the command handlers running on them unchanged.
//!
//! DynamoDB Local is started once for this binary (see
//! `support/dynamodb_local.rs`); every test works on tables of its own.

#[path = "support/dynamodb_local.rs"]
mod dynamodb_local;
#[path = "support/watchdog.rs"]
mod watchdog;

use aws_adapters::dynamodb::{DynamoEventStore, DynamoViewStore, MAX_TRANSACTION_ACTIONS, create_event_table, create_view_table};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::types::{OperationType, Record, ShardIteratorType};
use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::ordering::{ApprovedPayment, Order, OrderCommand, OrderLine, PlaceOrder};
use domain::projection::Projection;
use domain::projection::order_status::OrderStatusProjection;
use domain::projection::store_queue::StoreQueueProjection;
use domain::{CustomerId, Envelope, Metadata, Money, Region, StoreId, Versioned};
use functions::command::{CommandError, execute, load};
use functions::embedded::{Database, SimulatedProcessor};
use functions::handlers::projections::apply;
use functions::{Deps, Settings};
use ports::{AppendStream, BusEntry, BusError, EventBus, EventStore, LoadedStream, PutOutcome, Snapshot, StoreError, ViewDoc, ViewStore};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

type Item = HashMap<String, AttributeValue>;

struct Tables {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

async fn event_table() -> (Tables, DynamoEventStore) {
    let client = dynamodb_local::client().await;
    let table = dynamodb_local::unique_table("events");
    create_event_table(&client, &table).await.unwrap_or_else(|error| panic!("{error}"));
    (Tables { client: client.clone(), table: table.clone() }, DynamoEventStore::new(client, table))
}

async fn view_table() -> (Tables, DynamoViewStore) {
    let client = dynamodb_local::client().await;
    let table = dynamodb_local::unique_table("views");
    create_view_table(&client, &table).await.unwrap_or_else(|error| panic!("{error}"));
    (Tables { client: client.clone(), table: table.clone() }, DynamoViewStore::new(client, table))
}

fn time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 14, 15, 9, 26).unwrap() + Duration::nanoseconds(535_897_932)
}

/// A view document's body with this JSON.
fn body(value: Value) -> String {
    value.to_string()
}

/// What a view document's body says.
fn body_json(body: &str) -> Value {
    serde_json::from_str(body).expect("a stored body is JSON")
}

fn event(aggregate_type: &str, aggregate_id: &str, version: u64, data: Value) -> Envelope {
    Envelope {
        event_id: domain::envelope::event_id(aggregate_type, aggregate_id, version),
        event_type: "Probed".into(),
        event_version: 1,
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        version,
        correlation_id: format!("correlation-{aggregate_id}"),
        causation_id: format!("test/{version}"),
        time: time() + Duration::milliseconds(version as i64),
        data: serde_json::value::to_raw_value(&data).unwrap(),
    }
}

fn events(aggregate_id: &str, versions: std::ops::RangeInclusive<u64>) -> Vec<Envelope> {
    versions.map(|version| event("Probe", aggregate_id, version, json!({ "n": version, "text": "寿司 🍣" }))).collect()
}

fn write(aggregate_id: &str, expected_version: u64, events: Vec<Envelope>) -> AppendStream {
    AppendStream { aggregate_type: "Probe".into(), aggregate_id: aggregate_id.into(), expected_version, events, snapshot: None }
}

fn with_snapshot(mut stream: AppendStream, version: u64) -> AppendStream {
    stream.snapshot = Some(Snapshot { version, state: json!({ "after": version, "nested": { "list": [1, 2.5, null] } }) });
    stream
}

async fn loaded(store: &dyn EventStore, aggregate_id: &str) -> LoadedStream {
    store.load("Probe", aggregate_id).await.unwrap_or_else(|error| panic!("loading {aggregate_id} failed: {error}"))
}

async fn get_item(tables: &Tables, pk: &str, sk: u64) -> Option<Item> {
    let output = tables
        .client
        .get_item()
        .table_name(&tables.table)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::N(sk.to_string()))
        .consistent_read(true)
        .send()
        .await
        .unwrap_or_else(|error| panic!("GetItem {pk}/{sk}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(error)));
    output.item
}

// ================================================================ the contracts

#[tokio::test]
async fn the_event_store_passes_the_contract_and_its_long_stream_crosses_a_page() {
    let (tables, store) = event_table().await;
    ports::contract::event_store(&store).await;

    // The contract's long stream must really be read in more than one page,
    // or its rule proves nothing about following LastEvaluatedKey.
    let long = partition_keys_starting_with(&tables, &format!("{}#long-", ports::contract::PROBE_TYPE)).await;
    assert_eq!(long.len(), 1, "the contract writes one long stream, found {long:?}");
    let first_page = tables
        .client
        .query()
        .table_name(&tables.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(long[0].clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap_or_else(|error| panic!("Query: {}", aws_sdk_dynamodb::error::DisplayErrorContext(error)));
    let on_first_page = first_page.items().len();
    assert!(
        first_page.last_evaluated_key.is_some() && on_first_page < 150,
        "the contract's long stream must not fit one 1 MB page (first page: {on_first_page} of 150 items)"
    );

    // A read of the whole store asking for more events than there are still
    // comes in 1 MB scan pages, and every one must be followed.
    let (mut pages, mut long_versions, mut after) = (0, Vec::new(), None::<String>);
    loop {
        let page = store.read_all(after.as_deref(), 10_000).await.unwrap_or_else(|error| panic!("read_all: {error}"));
        pages += 1;
        let of_long = page.events.iter().filter(|e| ports::event_item::partition_key(&e.aggregate_type, &e.aggregate_id) == long[0]);
        long_versions.extend(of_long.map(|e| e.version));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert!(pages > 1, "over 1 MB of events must take more than one scan page, took {pages}");
    assert_eq!(long_versions, (1..=150).collect::<Vec<u64>>(), "the long stream is read whole, in version order, across pages");
}

async fn partition_keys_starting_with(tables: &Tables, prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut start = None;
    loop {
        let page = tables
            .client
            .scan()
            .table_name(&tables.table)
            .filter_expression("begins_with(pk, :prefix) AND sk = :first")
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.into()))
            .expression_attribute_values(":first", AttributeValue::N("1".into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap_or_else(|error| panic!("Scan: {}", aws_sdk_dynamodb::error::DisplayErrorContext(error)));
        found.extend(page.items().iter().filter_map(|item| item.get("pk")?.as_s().ok().cloned()));
        start = page.last_evaluated_key;
        if start.is_none() {
            return found;
        }
    }
}

#[tokio::test]
async fn the_view_store_passes_the_contract_and_queries_across_pages() {
    let (tables, views) = view_table().await;
    ports::contract::view_store(&views).await;

    // 150 documents of ~8 KB in one partition: over 1 MB, so the GSI query pages.
    let filler = "0123456789abcdef".repeat(500);
    let mut expected = Vec::new();
    for n in 0..150u64 {
        let doc =
            ViewDoc { key: format!("doc-{n:03}"), partition: "big".into(), revision: 1, body: body(json!({ "n": n, "filler": filler })) };
        views.put("paged", &doc, 0).await.unwrap_or_else(|error| panic!("put {}: {error}", doc.key));
        expected.push(doc);
    }
    let first_page = tables
        .client
        .query()
        .table_name(&tables.table)
        .index_name(aws_adapters::dynamodb::BY_PARTITION)
        .key_condition_expression("gsi1pk = :partition")
        .expression_attribute_values(":partition", AttributeValue::S("paged#big".into()))
        .send()
        .await
        .unwrap_or_else(|error| panic!("Query: {}", aws_sdk_dynamodb::error::DisplayErrorContext(error)));
    assert!(
        first_page.last_evaluated_key.is_some(),
        "the partition must not fit one page ({} items on the first)",
        first_page.items().len()
    );
    let found = views.query("paged", "big").await.unwrap_or_else(|error| panic!("query: {error}"));
    assert_eq!(found.len(), expected.len(), "a partition over 1 MB must query completely");
    assert!(found == expected, "a partition over 1 MB must query exactly, in key order");
}

/// DynamoDB's TTL reads only a top-level number attribute: a body's
/// `expiresAt` must land there, and nothing else may.
#[tokio::test]
async fn an_expiring_view_document_carries_the_tables_ttl_attribute() {
    let (tables, views) = view_table().await;
    let expires_at = Utc::now().timestamp() + 24 * 3600;
    let bodies = [
        ("expiring", json!({ "state": "completed", "expiresAt": expires_at })),
        ("lasting", json!({ "state": "completed" })),
        ("odd", json!({ "expiresAt": "tomorrow" })),
    ];
    for (key, value) in &bodies {
        let doc = ViewDoc { key: (*key).into(), partition: "p".into(), revision: 1, body: body(value.clone()) };
        views.put("idempotency", &doc, 0).await.unwrap_or_else(|error| panic!("put {key}: {error}"));
    }
    let mut ttl = Vec::new();
    for (key, _) in &bodies {
        let item = tables
            .client
            .get_item()
            .table_name(&tables.table)
            .key("pk", AttributeValue::S(format!("idempotency#{key}")))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|error| panic!("GetItem {key}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(error)))
            .item
            .unwrap_or_else(|| panic!("{key} is stored"));
        ttl.push(item.get(aws_adapters::dynamodb::EXPIRES_AT).cloned());
    }
    assert_eq!(ttl, [Some(AttributeValue::N(expires_at.to_string())), None, None], "only a numeric expiresAt becomes the TTL attribute");
}

// ============================================================ the transaction

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_appends_at_one_version_let_exactly_one_win() {
    let (_tables, store) = event_table().await;
    let store = Arc::new(store);
    for round in 0..20 {
        // Even rounds race transactions (two events each), odd ones single
        // events, which go without a transaction (a conditional put).
        let last = if round % 2 == 0 { 3 } else { 2 };
        let id = format!("race-{round}");
        store.append(vec![write(&id, 0, events(&id, 1..=1))]).await.unwrap_or_else(|error| panic!("seed {id}: {error}"));
        let contenders: Vec<_> = ["left", "right"]
            .into_iter()
            .map(|writer| {
                let (store, id) = (store.clone(), id.clone());
                let events = (2..=last).map(|version| event("Probe", &id, version, json!({ "writer": writer }))).collect();
                tokio::spawn(async move { (writer, store.append(vec![write(&id, 1, events)]).await) })
            })
            .collect();
        let mut outcomes = Vec::new();
        for contender in contenders {
            outcomes.push(contender.await.unwrap_or_else(|error| panic!("a contender panicked: {error}")));
        }
        let winners: Vec<&str> = outcomes.iter().filter(|(_, outcome)| outcome.is_ok()).map(|(writer, _)| *writer).collect();
        let conflicts = outcomes.iter().filter(|(_, outcome)| matches!(outcome, Err(StoreError::Conflict(_)))).count();
        assert!(winners.len() == 1 && conflicts == 1, "round {round}: exactly one append must win and one conflict: {outcomes:?}");
        let stream = loaded(store.as_ref(), &id).await.events;
        assert_eq!(stream.len() as u64, last, "round {round}: the loser must write nothing");
        assert!(
            stream[1..].iter().all(|event| event.payload()["writer"] == winners[0]),
            "round {round}: the stream holds the winner's events"
        );
    }
}

#[tokio::test]
async fn a_transaction_over_100_actions_is_refused_and_100_fit() {
    let (_tables, store) = event_table().await;
    assert_eq!(MAX_TRANSACTION_ACTIONS, 100);
    store.append(vec![write("limit", 0, events("limit", 1..=1))]).await.unwrap_or_else(|error| panic!("seed: {error}"));

    // Version check + 98 events + snapshot = 100 actions: the most one append may hold.
    let full = with_snapshot(write("limit", 1, events("limit", 2..=99)), 99);
    store.append(vec![full]).await.unwrap_or_else(|error| panic!("an append of exactly 100 actions must succeed: {error}"));
    assert_eq!(loaded(&store, "limit").await.snapshot.map(|snapshot| snapshot.version), Some(99));

    let over = [
        ("101 events", vec![write("fresh", 0, events("fresh", 1..=101))]),
        ("version check + 99 events + snapshot", vec![with_snapshot(write("limit", 99, events("limit", 100..=198)), 198)]),
        ("51 + 50 events over two streams", vec![write("one", 0, events("one", 1..=51)), write("two", 0, events("two", 1..=50))]),
    ];
    for (what, streams) in over {
        match store.append(streams).await {
            Err(StoreError::Refused(message)) => {
                assert!(message.contains("101") && message.contains("100"), "the refusal of {what} must say why: {message}")
            }
            other => panic!("an append of {what} must be Refused, got {other:?}"),
        }
    }
    for id in ["fresh", "one", "two"] {
        assert_eq!(loaded(&store, id).await, LoadedStream::default(), "a refused append must write nothing");
    }
    let limit = loaded(&store, "limit").await;
    assert!(limit.events.is_empty() && limit.snapshot.map(|snapshot| snapshot.version) == Some(99), "a refused append must write nothing");
}

#[tokio::test]
async fn one_stream_twice_in_an_append_is_refused() {
    let (_tables, store) = event_table().await;
    match store.append(vec![write("twice", 0, events("twice", 1..=1)), write("twice", 1, events("twice", 2..=2))]).await {
        Err(StoreError::Refused(message)) => assert!(message.contains("twice"), "{message}"),
        other => panic!("an append naming one stream twice must be Refused, got {other:?}"),
    }
}

// ======================================================= items and the stream

#[tokio::test]
async fn items_match_the_publishers_layout_and_the_stream_carries_exactly_the_events() {
    let (tables, store) = event_table().await;
    let (a, b) = ("streamed-a", "streamed-b");
    let mut written = Vec::new();
    let mut append = |streams: Vec<AppendStream>| {
        written.extend(streams.iter().flat_map(|stream| stream.events.clone()));
        let store = &store;
        async move { store.append(streams).await.unwrap_or_else(|error| panic!("append: {error}")) }
    };
    append(vec![write(a, 0, events(a, 1..=3))]).await;
    append(vec![with_snapshot(write(a, 3, events(a, 4..=5)), 5), write(b, 0, events(b, 1..=2))]).await;
    append(vec![with_snapshot(write(a, 5, events(a, 6..=6)), 6)]).await;

    // The snapshot is an item without eventId, which the publisher skips.
    let snapshot = get_item(&tables, &format!("Probe#{a}"), 0).await.expect("the snapshot item exists");
    assert!(!snapshot.contains_key("eventId"), "the snapshot item must have no eventId: {snapshot:?}");
    assert_eq!(snapshot.get("version"), Some(&AttributeValue::N("6".into())), "the snapshot's version is a number");
    assert!(matches!(snapshot.get("state"), Some(AttributeValue::S(_))), "the snapshot's state is JSON text");
    assert!(
        matches!(functions::item::from_image(&serde_dynamo::Item::from(snapshot)), Err(functions::item::ItemError::NotAnEvent(_))),
        "the publisher must see the snapshot as not an event"
    );

    // Every event item is exactly what `functions::item` lays out.
    for envelope in &written {
        let stored = get_item(&tables, &format!("Probe#{}", envelope.aggregate_id), envelope.version).await.expect("the event item exists");
        let publishers: Item = functions::item::to_item(envelope).unwrap_or_else(|error| panic!("{error}")).into();
        assert_eq!(stored, publishers, "event {} must be stored in the publisher's layout", envelope.event_id);
    }

    // The table's stream: each event once, as an INSERT whose new image the
    // publisher decodes to the envelope; the rest are the snapshot's writes.
    let records = stream_records(&tables, written.len()).await;
    let mut streamed = Vec::new();
    for record in &records {
        let change = record.dynamodb().expect("a stream record has its change");
        let image = change.new_image().expect("the stream carries new images").clone();
        if image.contains_key("eventId") {
            assert_eq!(record.event_name(), Some(&OperationType::Insert), "an event is only ever inserted");
            let envelope = functions::item::from_image(&serde_dynamo::Item::from(image)).unwrap_or_else(|error| panic!("{error}"));
            streamed.push(envelope);
        } else {
            assert_eq!(
                image.get("sk"),
                Some(&aws_sdk_dynamodbstreams::types::AttributeValue::N("0".into())),
                "only the snapshot lacks an eventId"
            );
        }
    }
    for id in [a, b] {
        let in_stream: Vec<&Envelope> = streamed.iter().filter(|event| event.aggregate_id == id).collect();
        let in_store: Vec<&Envelope> = written.iter().filter(|event| event.aggregate_id == id).collect();
        assert_eq!(in_stream, in_store, "the stream must carry {id}'s events exactly once each, in version order");
    }
    assert_eq!(streamed.len(), written.len(), "the stream must carry nothing but the written events");
    assert_eq!(records.len() - streamed.len(), 2, "the snapshot's two writes are the only other records");
}

/// Every record of the table's stream from its start, once `events` event
/// records are there (DynamoDB Local makes them visible almost at once).
async fn stream_records(tables: &Tables, events: usize) -> Vec<Record> {
    let streams = dynamodb_local::streams_client().await;
    let described = tables.client.describe_table().table_name(&tables.table).send().await.expect("DescribeTable");
    let arn = described.table().and_then(|table| table.latest_stream_arn()).expect("the event table has a stream").to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stream = streams.describe_stream().stream_arn(&arn).send().await.expect("DescribeStream");
        let shards = stream.stream_description().map(|description| description.shards().to_vec()).unwrap_or_default();
        let mut records = Vec::new();
        for shard in shards {
            let shard_id = shard.shard_id().expect("a shard has an id");
            let mut iterator = streams
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(shard_id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("GetShardIterator")
                .shard_iterator;
            while let Some(current) = iterator {
                let page = streams.get_records().shard_iterator(current).send().await.expect("GetRecords");
                if page.records().is_empty() {
                    break;
                }
                records.extend(page.records().iter().cloned());
                iterator = page.next_shard_iterator;
            }
        }
        let event_records = records
            .iter()
            .filter(|record| record.dynamodb().and_then(|change| change.new_image()).is_some_and(|image| image.contains_key("eventId")))
            .count();
        if event_records >= events || std::time::Instant::now() > deadline {
            return records;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

// ============================================================ the handlers

/// The bus is not part of a command: nothing is published here.
struct NoBus;

#[async_trait::async_trait]
impl EventBus for NoBus {
    async fn put_events(&self, _: &[BusEntry]) -> Result<PutOutcome, BusError> {
        Ok(PutOutcome::default())
    }
}

const ORDER: &str = "order-e2e";
const CUSTOMER: &str = "alice";
const STORE: &str = "store-e2e";

#[derive(Debug, PartialEq)]
struct Run {
    events: Vec<Envelope>,
    state: Versioned<Order>,
    snapshot: Option<u64>,
    order_status: Vec<ViewDoc>,
    store_queue: Vec<ViewDoc>,
}

/// Places an order and works it through the kitchen with the real command
/// runner, refuses an out-of-turn cancellation, and projects every event.
async fn run_an_order(deps: &Deps) -> Run {
    let meta = |step: u32| Metadata { correlation_id: ORDER.into(), causation_id: format!("request/{step}"), time: time() };
    let place = OrderCommand::Place(PlaceOrder {
        customer_id: CustomerId(CUSTOMER.into()),
        store_id: StoreId(STORE.into()),
        lines: vec![OrderLine { menu_id: "m1".into(), name: "Bibimbap".into(), unit_price: Money(1200), quantity: 2 }],
        region: Region("gangnam".into()),
        address: "1 Teheran-ro".into(),
        payment: ApprovedPayment { charge_id: "ch_e2e".into(), amount: Money(2400) },
    });
    let mut events = execute::<Order>(deps, ORDER, &meta(1), |_| Ok(place.clone())).await.expect("placing the order").events;
    let kitchen = [
        domain::kitchen::KitchenCommand::Accept,
        domain::kitchen::KitchenCommand::StartCooking,
        domain::kitchen::KitchenCommand::FinishCooking,
    ];
    for (step, command) in (2..).zip(kitchen) {
        let command = OrderCommand::Kitchen { store_id: StoreId(STORE.into()), command };
        let executed = execute::<Order>(deps, ORDER, &meta(step), |_| Ok(command.clone())).await;
        events.extend(executed.unwrap_or_else(|error| panic!("kitchen step {step}: {error}")).events);
    }
    let cancel = OrderCommand::Cancel { customer_id: CustomerId(CUSTOMER.into()) };
    match execute::<Order>(deps, ORDER, &meta(9), |_| Ok(cancel.clone())).await {
        Err(CommandError::Domain(_)) => {}
        other => panic!("cancelling a cooked order must be refused by the domain, got {other:?}"),
    }
    for envelope in &events {
        let event = envelope.decode().unwrap_or_else(|error| panic!("{error}"));
        apply::<OrderStatusProjection>(deps, envelope, &event).await.unwrap_or_else(|error| panic!("order-status: {error}"));
        apply::<StoreQueueProjection>(deps, envelope, &event).await.unwrap_or_else(|error| panic!("store-queue: {error}"));
    }
    let view = |name, partition| async move { deps.views.query(name, partition).await.unwrap_or_else(|error| panic!("{name}: {error}")) };
    Run {
        state: load::<Order>(deps.events.as_ref(), ORDER).await.unwrap_or_else(|error| panic!("load: {error}")),
        snapshot: deps.events.load("Order", ORDER).await.unwrap_or_else(|error| panic!("load: {error}")).snapshot.map(|s| s.version),
        order_status: view(OrderStatusProjection::NAME, CUSTOMER).await,
        store_queue: view(StoreQueueProjection::NAME, STORE).await,
        events,
    }
}

/// The order-status and store-queue documents of `run_an_order`, without revisions.
async fn order_views(deps: &Deps) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    for (view, partition) in [(OrderStatusProjection::NAME, CUSTOMER), (StoreQueueProjection::NAME, STORE)] {
        let docs = deps.views.query(view, partition).await.unwrap_or_else(|error| panic!("{view}: {error}"));
        found.extend(docs.into_iter().map(|doc| (format!("{view}/{}@{}", doc.key, doc.partition), body_json(&doc.body))));
    }
    found
}

#[tokio::test]
async fn a_rebuild_on_dynamodb_restores_the_views_the_live_projections_made() {
    let settings = Settings { snapshot_every: 2, ..Settings::default() };
    let database = Database::temporary().expect("a temporary database");
    let (_, event_store) = event_table().await;
    let (views, view_store) = view_table().await;
    let deps = Deps {
        events: Arc::new(event_store),
        views: Arc::new(view_store),
        notifier: database,
        payments: Arc::new(SimulatedProcessor::default()),
        bus: Arc::new(NoBus),
        settings,
    };
    run_an_order(&deps).await;
    let live = order_views(&deps).await;
    assert_eq!(live.len(), 2, "the order's status and its place in the store's queue: {live:?}");

    // The status says something the events never did; the queue entry is gone.
    let status = deps.views.get(OrderStatusProjection::NAME, ORDER).await.expect("get").expect("the order's status");
    let wrong = ViewDoc { body: body(json!({ "status": "lost" })), revision: status.revision + 1, ..status.clone() };
    deps.views.put(OrderStatusProjection::NAME, &wrong, status.revision).await.expect("put");
    views
        .client
        .delete_item()
        .table_name(&views.table)
        .key("pk", AttributeValue::S(format!("{}#{ORDER}", StoreQueueProjection::NAME)))
        .send()
        .await
        .expect("DeleteItem");
    assert_ne!(order_views(&deps).await, live, "the views are damaged");

    let names = [OrderStatusProjection::NAME.to_owned(), StoreQueueProjection::NAME.to_owned()];
    let report = functions::rebuild::rebuild(&deps, &names).await.unwrap_or_else(|error| panic!("rebuild: {error}"));
    assert_eq!(report.events, 4, "every event of the order, those its snapshot covers included");
    assert_eq!(report.views.iter().map(|v| v.rewritten).collect::<Vec<_>>(), [1, 1], "both damaged documents are rewritten");
    assert_eq!(order_views(&deps).await, live, "the views are what the live projections made");
    let again = functions::rebuild::rebuild(&deps, &names).await.unwrap_or_else(|error| panic!("rebuild: {error}"));
    assert!(again.views.iter().all(|v| v.rewritten == 0), "a second rebuild writes nothing: {again:?}");
}

#[tokio::test]
async fn commands_and_projections_run_unchanged_on_the_dynamodb_adapters() {
    let settings = Settings { snapshot_every: 2, ..Settings::default() };
    let bus: Arc<dyn EventBus> = Arc::new(NoBus);
    let database = Database::temporary().expect("a temporary database");
    let (_, event_store) = event_table().await;
    let (_, view_store) = view_table().await;
    let on_dynamodb = Deps {
        events: Arc::new(event_store),
        views: Arc::new(view_store),
        notifier: database.clone(),
        payments: Arc::new(SimulatedProcessor::default()),
        bus: bus.clone(),
        settings: settings.clone(),
    };
    let embedded = Deps {
        settings,
        ..Deps::embedded(Database::temporary().expect("a temporary database"), Arc::new(SimulatedProcessor::default()), bus)
    };

    let on_aws = run_an_order(&on_dynamodb).await;
    let reference = run_an_order(&embedded).await;
    assert_eq!(on_aws.state.state.placed.as_ref().map(|order| order.status), Some(domain::ordering::OrderStatus::Cooked));
    assert_eq!(on_aws.events.len(), 4, "placed, accepted, cooking, cooked");
    assert_eq!(on_aws.snapshot, Some(4), "the stream was snapshotted on DynamoDB and loaded from the snapshot");
    assert_eq!(on_aws.order_status.len(), 1, "the customer's order-status view");
    assert_eq!(on_aws.store_queue.len(), 1, "the store's queue");
    assert_eq!(on_aws, reference, "the DynamoDB adapters must give exactly what the embedded ones give");
}

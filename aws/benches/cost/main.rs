//! Cost per order on the production adapters: orders run through the
//! handlers against DynamoDB Local (every call's consumed capacity as
//! DynamoDB reports it) and moto's SNS, with the table's stream and the
//! template's EventBridge rules driven in process (`cloud`). Counted per
//! order: read and write request units, Lambda invocations and billed
//! milliseconds, API Gateway requests, EventBridge entries, SNS publishes,
//! log bytes; priced at on-demand list prices (`prices`).
//!
//! Two kinds of order: delivered (place, accept, start and finish cooking,
//! pick, complete) and cancelled (place, accept, cancel: refunded). Each is
//! run `COST_ORDERS` (5) times; the figures are medians per order, and the
//! runs must agree (the counts do not depend on timing).
//!
//! `cargo bench -p aws-adapters --bench cost --profile dev` (the dev profile
//! reuses the tests' build of the AWS SDK; the counts do not depend on
//! optimization). Needs `scripts/install-tools` (DynamoDB Local, moto).

#[path = "../../tests/support/dynamodb_local.rs"]
mod dynamodb_local;
#[path = "../../tests/support/moto.rs"]
mod moto;
#[path = "../../tests/support/watchdog.rs"]
mod watchdog;

mod capacity;
mod cloud;
mod prices;

use anyhow::Context;
use aws_adapters::dynamodb::{DynamoEventStore, DynamoViewStore, create_event_table, create_view_table};
use aws_adapters::sns::SnsNotifier;
use capacity::{CapacityInterceptor, Meter, Taken, Units};
use cloud::{Cloud, Tally};
use functions::embedded::SimulatedProcessor;
use functions::http::Request;
use local::template::Wiring;
use prices::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes the functions logged, as Lambda would ship them to CloudWatch.
static LOG_BYTES: AtomicU64 = AtomicU64::new(0);

struct LogCounter;

impl std::io::Write for LogCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG_BYTES.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The functions' log format (`functions::lambda::init_tracing`) at the
/// template's `RUST_LOG=info`, into the counter.
fn count_logs() {
    functions::logging::init(tracing_subscriber::EnvFilter::new("info"), || LogCounter);
}

/// An API Gateway v2 request as the JWT authorizer passes it on.
fn request(route: &str, path: &str, parameters: Value, sub: &str, group: &str, body: Option<Value>) -> anyhow::Result<Request> {
    Ok(serde_json::from_value(json!({
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "headers": { "content-type": "application/json" },
        "pathParameters": parameters,
        "requestContext": {
            "requestId": uuid(),
            "routeKey": route,
            "http": { "method": route.split(' ').next(), "path": path },
            "authorizer": { "jwt": { "claims": { "sub": sub, "cognito:groups": format!("[{group}]") } } },
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false,
    }))?)
}

fn uuid() -> String {
    moto::unique("request")
}

fn text(body: &Value, field: &str) -> anyhow::Result<String> {
    body[field].as_str().map(str::to_owned).with_context(|| format!("no {field} in {body}"))
}

async fn place(cloud: &Cloud, store_id: &str) -> anyhow::Result<String> {
    let order = json!({ "storeId": store_id, "items": [{ "menuId": "m1", "quantity": 2 }, { "menuId": "m2", "quantity": 1 }],
                        "region": "gangnam", "address": "1 Teheran-ro, Gangnam", "paymentToken": "tok_visa" });
    let placed = cloud.http("place-order", request("POST /orders", "/orders", json!({}), "alice", "customer", Some(order))?).await?;
    text(&placed, "orderId")
}

async fn kitchen(cloud: &Cloud, store_id: &str, order_id: &str, function: &str, step: &str) -> anyhow::Result<()> {
    let route = format!("POST /stores/{{storeId}}/orders/{{orderId}}/{step}");
    let path = format!("/stores/{store_id}/orders/{order_id}/{step}");
    let parameters = json!({ "storeId": store_id, "orderId": order_id });
    cloud.http(function, request(&route, &path, parameters, "olivia", "owner", None)?).await.map(drop)
}

async fn ride(cloud: &Cloud, order_id: &str, function: &str, step: &str) -> anyhow::Result<()> {
    let route = format!("POST /deliveries/{{orderId}}/{step}");
    let path = format!("/deliveries/{order_id}/{step}");
    cloud.http(function, request(&route, &path, json!({ "orderId": order_id }), "ryan", "rider", None)?).await.map(drop)
}

async fn delivered(cloud: &Cloud, store_id: &str) -> anyhow::Result<String> {
    let order_id = place(cloud, store_id).await?;
    kitchen(cloud, store_id, &order_id, "accept-order", "accept").await?;
    kitchen(cloud, store_id, &order_id, "start-cooking", "start-cooking").await?;
    kitchen(cloud, store_id, &order_id, "finish-cooking", "finish-cooking").await?;
    ride(cloud, &order_id, "pick-delivery", "pick").await?;
    ride(cloud, &order_id, "complete-delivery", "complete").await?;
    Ok(order_id)
}

async fn cancelled(cloud: &Cloud, store_id: &str) -> anyhow::Result<String> {
    let order_id = place(cloud, store_id).await?;
    kitchen(cloud, store_id, &order_id, "accept-order", "accept").await?;
    let route = "POST /orders/{orderId}/cancel";
    let path = format!("/orders/{order_id}/cancel");
    cloud.http("cancel-order", request(route, &path, json!({ "orderId": order_id }), "alice", "customer", None)?).await?;
    Ok(order_id)
}

/// The customer's status view, read once: counted apart from the order.
async fn status(cloud: &Cloud, order_id: &str) -> anyhow::Result<Value> {
    let path = format!("/orders/{order_id}");
    cloud.http("queries", request("GET /orders/{orderId}", &path, json!({ "orderId": order_id }), "alice", "customer", None)?).await
}

/// Checks the order ended as it should; the check is not part of its bill.
async fn expect_status(cloud: &Cloud, order_id: &str, expected: &str) -> anyhow::Result<()> {
    let view = status(cloud, order_id).await?;
    anyhow::ensure!(view["status"] == expected, "order {order_id} should be {expected}: {view}");
    Bill::take(cloud);
    Ok(())
}

/// Invocations per function, (calls, tenths of read, write and index units)
/// per (function, operation), and requests, entries, chunks and publishes.
type Counts = (Vec<(String, u64)>, Vec<((String, &'static str), (u64, u64, u64, u64))>, [u64; 4]);

/// What one order (or one read) cost.
struct Bill {
    tally: Tally,
    taken: Taken,
    log_bytes: u64,
}

impl Bill {
    fn take(cloud: &Cloud) -> Bill {
        Bill { tally: cloud.take(), taken: cloud.meter.take(), log_bytes: LOG_BYTES.swap(0, Ordering::Relaxed) }
    }

    fn invocations(&self) -> u64 {
        self.tally.invocations.values().sum()
    }

    /// Dollars per order, by service.
    fn dollars(&self) -> Vec<(&'static str, f64)> {
        let units = self.taken.total();
        let invocations = self.invocations() as f64;
        let gb_seconds = self.tally.billed_ms as f64 / 1000.0 * LAMBDA_MEMORY_GB;
        let log_gb = (self.log_bytes + PLATFORM_LOG_BYTES * self.invocations()) as f64 / 1e9;
        vec![
            ("DynamoDB writes", units.write * DYNAMODB_WRITE_PER_MILLION / 1e6),
            ("DynamoDB reads", units.read * DYNAMODB_READ_PER_MILLION / 1e6),
            ("DynamoDB Streams (read by Lambda)", DYNAMODB_STREAMS_FOR_LAMBDA),
            ("Lambda requests", invocations * LAMBDA_PER_MILLION_REQUESTS / 1e6),
            ("Lambda duration (GB-s, local latencies)", gb_seconds * LAMBDA_ARM64_PER_GB_SECOND),
            ("API Gateway HTTP API", self.tally.http_requests as f64 * HTTP_API_PER_MILLION / 1e6),
            ("EventBridge entries", self.tally.bus_chunks as f64 * EVENTBRIDGE_PER_MILLION / 1e6),
            ("SNS publishes", self.tally.sns_publishes as f64 * SNS_PER_MILLION_PUBLISHES / 1e6),
            ("CloudWatch Logs ingestion", log_gb * LOGS_PER_GB),
        ]
    }

    /// The counts, without the timing-dependent ones: equal for equal orders.
    fn counts(&self) -> Counts {
        let units = |u: &Units| (u.calls, (u.read * 10.0) as u64, (u.write * 10.0) as u64, (u.index_write * 10.0) as u64);
        (
            self.tally.invocations.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            self.taken.by_call.iter().map(|(k, u)| (k.clone(), units(u))).collect(),
            [self.tally.http_requests, self.tally.bus_entries, self.tally.bus_chunks, self.tally.sns_publishes],
        )
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 { values[middle] } else { (values[middle - 1] + values[middle]) / 2.0 }
}

fn report(kind: &str, bills: &[Bill]) {
    let of = |f: &dyn Fn(&Bill) -> f64| median(bills.iter().map(f).collect());
    let same = bills.windows(2).all(|pair| pair[0].counts() == pair[1].counts());
    println!("\n## {kind}: per order, medians of {} orders (counts identical in every order: {same})\n", bills.len());
    let first = &bills[0];
    println!("| function | invocations | DynamoDB calls | read units | write units | of which index writes |");
    println!("| --- | ---: | --- | ---: | ---: | ---: |");
    let mut by_function: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut units_by_function: BTreeMap<&str, Units> = BTreeMap::new();
    for ((function, operation), units) in &first.taken.by_call {
        by_function.entry(function).or_default().push(format!("{} {operation}", units.calls));
        *units_by_function.entry(function).or_default() += *units;
    }
    for (function, invocations) in &first.tally.invocations {
        let units = units_by_function.get(function.as_str()).copied().unwrap_or_default();
        let calls = by_function.get(function.as_str()).map(|calls| calls.join(", ")).unwrap_or_default();
        println!("| {function} | {invocations} | {calls} | {} | {} | {} |", units.read, units.write, units.index_write);
    }
    let total = first.taken.total();
    println!(
        "| **total** | **{}** | {} calls | **{}** | **{}** | {} |",
        first.invocations(),
        total.calls,
        total.read,
        total.write,
        total.index_write
    );
    println!(
        "\nAPI Gateway requests {}, EventBridge entries {} ({} chunks of 64 KB, largest entry {} bytes) in {} PutEvents calls, \
         SNS publishes {}, log bytes {:.0} (+ {} per invocation of Lambda's own lines), billed Lambda ms {:.0}",
        first.tally.http_requests,
        first.tally.bus_entries,
        first.tally.bus_chunks,
        first.tally.largest_entry,
        first.tally.put_events_calls,
        first.tally.sns_publishes,
        of(&|b| b.log_bytes as f64),
        PLATFORM_LOG_BYTES,
        of(&|b| b.tally.billed_ms as f64),
    );
    let transactions: f64 =
        first.taken.by_call.iter().filter(|((_, op), _)| *op == "TransactWriteItems").map(|(_, u)| u.write).sum::<f64>() + 0.0;
    println!(
        "Largest item written: {} bytes. TransactWriteItems counted by the documented rule: {transactions} WRU \
         (DynamoDB Local reported {}).",
        first.taken.largest_item, first.taken.local_transaction_units
    );
    if first.taken.failed > 0 || first.taken.unknown > 0 {
        println!("WARNING: {} DynamoDB calls failed and {} were not metered", first.taken.failed, first.taken.unknown);
    }
    println!("\n| service | $ per million orders |");
    println!("| --- | ---: |");
    let services = first.dollars();
    for (index, (service, _)) in services.iter().enumerate() {
        println!("| {service} | {:.2} |", of(&|b| b.dollars()[index].1) * 1e6);
    }
    println!("| **total** | **{:.2}** |", of(&|b| b.dollars().iter().map(|(_, d)| d).sum::<f64>()) * 1e6);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    count_logs();
    let orders: usize = std::env::var("COST_ORDERS").ok().and_then(|n| n.parse().ok()).unwrap_or(5).max(1);
    let wiring = Wiring::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))?;
    let meter = Arc::new(Meter::default());
    let plain = dynamodb_local::client().await;
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(plain.config().to_builder().interceptor(CapacityInterceptor(meter.clone())).build());
    let (event_table, view_table) = (dynamodb_local::unique_table("events"), dynamodb_local::unique_table("views"));
    create_event_table(&dynamodb, &event_table).await?;
    create_view_table(&dynamodb, &view_table).await?;
    let sns = aws_sdk_sns::Client::new(&moto::config().await);
    let topic = sns.create_topic().name(moto::unique("notifications")).send().await?;
    let notifier = SnsNotifier {
        sns,
        topic_arn: topic.topic_arn().context("a topic arn")?.to_owned(),
        dedupe: dynamodb.clone(),
        table: view_table.clone(),
    };
    let cloud = Cloud::new(
        Arc::new(DynamoEventStore::new(dynamodb.clone(), &event_table)),
        Arc::new(DynamoViewStore::new(dynamodb.clone(), &view_table)),
        Arc::new(notifier),
        Arc::new(SimulatedProcessor::default()),
        wiring,
        meter,
    );

    let menu = json!({ "name": "Seoul Kitchen", "region": "gangnam",
                       "menu": [{ "name": "Bibimbap", "price": 1200 }, { "name": "Kimchi stew", "price": 950 }] });
    let store = cloud.http("register-store", request("POST /stores", "/stores", json!({}), "olivia", "owner", Some(menu))?).await?;
    let store_id = text(&store, "storeId")?;
    Bill::take(&cloud);

    let mut full = Vec::new();
    let mut last = String::new();
    for _ in 0..orders {
        last = delivered(&cloud, &store_id).await?;
        full.push(Bill::take(&cloud));
        expect_status(&cloud, &last, "delivered").await?;
    }
    let mut cancel = Vec::new();
    for _ in 0..orders {
        let order_id = cancelled(&cloud, &store_id).await?;
        cancel.push(Bill::take(&cloud));
        expect_status(&cloud, &order_id, "cancelled").await?;
    }
    let mut reads = Vec::new();
    for _ in 0..orders {
        status(&cloud, &last).await?;
        reads.push(Bill::take(&cloud));
    }
    println!("DynamoDB Local and moto on this machine; prices: us-east-1 on-demand list prices (aws/benches/cost/prices.rs)");
    report("Delivered order", &full);
    report("Cancelled order (refunded)", &cancel);
    report("One read of the status view (GET /orders/{id})", &reads);
    Ok(())
}

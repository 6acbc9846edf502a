//! What the handler tests share: a world of embedded adapters, requests shaped
//! exactly as API Gateway (HTTP API, payload 2.0) sends them, a recording
//! event bus, and `settle`, which plays the part of the DynamoDB stream and
//! the EventBridge rules so a scenario reads like what users do.
#![allow(dead_code)]

use async_trait::async_trait;
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::dynamodb::{Event as StreamBatch, EventRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use domain::Envelope;
use functions::embedded::{Database, SimulatedProcessor};
use functions::ports::{BusEntry, BusError, ChargeReceipt, ChargeRequest, EventBus, PaymentError, PaymentGateway, PutOutcome};
use functions::registry::BusEvent;
use functions::registry::{self, Handler, HandlerError};
use functions::{Deps, item};
use http::HeaderMap;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const REGION: &str = "north";
pub const ADDRESS: &str = "1 Harbour Street, Flat 2";
pub const OWNER: &str = "owner-ada";
pub const OTHER_OWNER: &str = "owner-grace";
pub const CUSTOMER: &str = "customer-bob";
pub const OTHER_CUSTOMER: &str = "customer-eve";
pub const RIDER: &str = "rider-cy";
pub const OTHER_RIDER: &str = "rider-dee";

// ============================================================== routing table

/// Every HTTP route and the function behind it, as in `template.yaml`.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST /stores", "register-store"),
    ("PUT /stores/{storeId}/menu", "change-menu"),
    ("POST /stores/{storeId}/open", "open-store"),
    ("POST /stores/{storeId}/close", "close-store"),
    ("POST /orders", "place-order"),
    ("POST /orders/{orderId}/cancel", "cancel-order"),
    ("POST /stores/{storeId}/orders/{orderId}/accept", "accept-order"),
    ("POST /stores/{storeId}/orders/{orderId}/reject", "reject-order"),
    ("POST /stores/{storeId}/orders/{orderId}/start-cooking", "start-cooking"),
    ("POST /stores/{storeId}/orders/{orderId}/finish-cooking", "finish-cooking"),
    ("POST /deliveries/{orderId}/pick", "pick-delivery"),
    ("POST /deliveries/{orderId}/complete", "complete-delivery"),
    ("POST /deliveries/{orderId}/accident", "report-accident"),
    ("GET /stores", "queries"),
    ("GET /stores/{storeId}", "queries"),
    ("GET /orders", "queries"),
    ("GET /orders/{orderId}", "queries"),
    ("GET /stores/{storeId}/orders", "queries"),
    ("GET /deliveries", "queries"),
    ("GET /stores/{storeId}/popular-menus", "queries"),
];

/// An EventBridge rule: the function it targets and its pattern, a list of
/// alternatives (`$or`), each a source and the detail types it takes (none
/// listed: every one).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub function: &'static str,
    pub pattern: &'static [(&'static str, &'static [&'static str])],
}

impl Rule {
    pub fn matches(&self, source: &str, detail_type: &str) -> bool {
        self.pattern
            .iter()
            .any(|(wanted, detail_types)| *wanted == source && (detail_types.is_empty() || detail_types.contains(&detail_type)))
    }
}

const ORDERING: &str = "food-delivery.ordering";
const PAYMENT: &str = "food-delivery.payment";
const DELIVERY: &str = "food-delivery.delivery";
const CATALOG: &str = "food-delivery.catalog";

/// Every EventBridge rule of `template.yaml` (`template_wiring` reads the
/// template so a test can hold this table to it; the local runner matches
/// the real patterns).
pub const RULES: &[Rule] = &[
    Rule { function: "refund-payment", pattern: &[(ORDERING, &["OrderRejected", "OrderCancelled"])] },
    Rule { function: "dispatch-delivery", pattern: &[(ORDERING, &["CookingStarted", "CookingFinished"])] },
    Rule { function: "track-delivery", pattern: &[(DELIVERY, &["DeliveryPicked", "DeliveryCompleted", "AccidentReported"])] },
    Rule { function: "notify-customer", pattern: &[(ORDERING, &[])] },
    Rule { function: "project-order-status", pattern: &[(ORDERING, &[]), (PAYMENT, &["PaymentRefunded"])] },
    Rule { function: "project-store-queue", pattern: &[(ORDERING, &[])] },
    Rule { function: "project-delivery-board", pattern: &[(DELIVERY, &[])] },
    Rule { function: "project-popular-menus", pattern: &[(ORDERING, &["OrderPlaced"])] },
    Rule { function: "project-catalog", pattern: &[(CATALOG, &[])] },
];

/// What `template.yaml` wires, read from its text: each function's HTTP
/// routes (`METHOD /path`) and its EventBridge pattern as (source, detail
/// types) alternatives. Reads only the shapes this template uses.
#[derive(Debug, Default)]
pub struct Wiring {
    /// (route key, function)
    pub routes: Vec<(String, String)>,
    /// (function, pattern)
    pub rules: Vec<(String, Vec<Alternative>)>,
    /// (function, schedule expression)
    pub schedules: Vec<(String, String)>,
}

/// One alternative of a pattern: a source and its detail types (none: all).
pub type Alternative = (String, Vec<String>);

pub fn template_wiring() -> Wiring {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).expect("template.yaml reads");
    let indent = |line: &str| line.len() - line.trim_start().len();
    let list = |value: &str| -> Vec<String> {
        value
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(',')
            .map(|v| v.trim().trim_matches('"').to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    };
    let mut wiring = Wiring::default();
    let lines: Vec<&str> = text.lines().collect();
    // Resources are the keys indented by two spaces.
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| indent(lines[i]) == 2 && lines[i].trim_end().ends_with(':') && !lines[i].trim().starts_with('#'))
        .collect();
    for (n, &start) in starts.iter().enumerate() {
        let block = &lines[start..starts.get(n + 1).copied().unwrap_or(lines.len())];
        let Some(binary) = block.iter().find_map(|line| line.trim().strip_prefix("FUNCTION: ")) else { continue };
        let mut method = None;
        for (i, line) in block.iter().enumerate() {
            let trimmed = line.trim();
            if let Some(value) = trimmed.strip_prefix("Method: ") {
                method = Some(value.to_owned());
            }
            if let Some(schedule) = trimmed.strip_prefix("Schedule: ") {
                wiring.schedules.push((binary.to_owned(), schedule.to_owned()));
            }
            if let Some(path) = trimmed.strip_prefix("Path: ") {
                wiring.routes.push((format!("{} {path}", method.take().expect("Method before Path")), binary.to_owned()));
            }
            if trimmed == "Pattern:" {
                let mut alternatives: Vec<Alternative> = vec![];
                let mut open = false;
                for line in block[i + 1..].iter().take_while(|l| indent(l) > indent(block[i])) {
                    let mut entry = line.trim();
                    if let Some(rest) = entry.strip_prefix("- ") {
                        entry = rest;
                        open = false;
                    }
                    if !open && (entry.starts_with("source:") || entry.starts_with("detail-type:")) {
                        alternatives.push((String::new(), vec![]));
                        open = true;
                    }
                    let Some(current) = alternatives.last_mut() else { continue };
                    if let Some(value) = entry.strip_prefix("source:") {
                        let sources = list(value);
                        assert_eq!(sources.len(), 1, "one source per alternative in {binary}'s pattern");
                        current.0 = sources[0].clone();
                    } else if let Some(value) = entry.strip_prefix("detail-type:") {
                        current.1 = list(value);
                    }
                }
                wiring.rules.push((binary.to_owned(), alternatives));
            }
        }
    }
    wiring
}

// ================================================================== requests

/// An HTTP API request as API Gateway hands it to the Lambda (payload 2.0),
/// after its JWT authorizer has verified the token.
#[derive(Debug, Clone)]
pub struct Req {
    method: &'static str,
    route: &'static str,
    path_parameters: Vec<(&'static str, String)>,
    query: Vec<(&'static str, String)>,
    headers: serde_json::Map<String, Value>,
    body: Option<String>,
    base64: bool,
    claims: Option<Value>,
}

impl Req {
    fn new(method: &'static str, route: &'static str) -> Req {
        let mut headers = serde_json::Map::new();
        headers.insert("accept".into(), json!("application/json"));
        headers.insert("host".into(), json!("api-id.execute-api.us-east-1.amazonaws.com"));
        headers.insert("user-agent".into(), json!("food-delivery-tests/1.0"));
        Req { method, route, path_parameters: vec![], query: vec![], headers, body: None, base64: false, claims: None }
    }
    pub fn get(route: &'static str) -> Req {
        Req::new("GET", route)
    }
    pub fn post(route: &'static str) -> Req {
        Req::new("POST", route)
    }
    pub fn put(route: &'static str) -> Req {
        Req::new("PUT", route)
    }

    /// Fills `{name}` of the route.
    pub fn path(mut self, name: &'static str, value: &str) -> Req {
        self.path_parameters.push((name, value.to_owned()));
        self
    }
    pub fn query(mut self, name: &'static str, value: &str) -> Req {
        self.query.push((name, value.to_owned()));
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.insert(name.to_ascii_lowercase(), json!(value));
        self
    }
    /// A JSON body, sent as `application/json`.
    pub fn json(self, body: Value) -> Req {
        self.raw("application/json", &body.to_string())
    }
    /// A body as the client typed it, with its content type.
    pub fn raw(mut self, content_type: &str, body: &str) -> Req {
        self.headers.insert("content-type".into(), json!(content_type));
        self.body = Some(body.to_owned());
        self
    }
    /// A body with no content-type header at all.
    pub fn untyped(mut self, body: &str) -> Req {
        self.headers.remove("content-type");
        self.body = Some(body.to_owned());
        self
    }
    /// Sends the body base64 encoded, as API Gateway does for binary media.
    pub fn base64(mut self) -> Req {
        use base64::Engine;
        let body = self.body.take().unwrap_or_default();
        self.body = Some(base64::engine::general_purpose::STANDARD.encode(body));
        self.base64 = true;
        self
    }

    /// The verified claims of a Cognito user in `group`.
    pub fn by(mut self, sub: &str, group: &str) -> Req {
        self.headers.insert("authorization".into(), json!("Bearer eyJraWQiOiJ0ZXN0In0.e30.c2ln"));
        self.claims = Some(json!({
            "sub": sub,
            "cognito:groups": format!("[{group}]"),
            "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example",
            "aud": "food-delivery",
            "token_use": "id",
            "exp": "1893456000",
            "iat": "1735689600",
        }));
        self
    }
    pub fn customer(self, sub: &str) -> Req {
        self.by(sub, "customer")
    }
    pub fn owner(self, sub: &str) -> Req {
        self.by(sub, "owner")
    }
    pub fn rider(self, sub: &str) -> Req {
        self.by(sub, "rider")
    }

    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.route)
    }

    fn raw_path(&self) -> String {
        let mut path = self.route.to_owned();
        for (name, value) in &self.path_parameters {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        path
    }

    /// The JSON API Gateway sends.
    pub fn to_json(&self) -> Value {
        let raw_path = self.raw_path();
        let raw_query = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        let mut context = json!({
            "accountId": "123456789012",
            "apiId": "api-id",
            "domainName": "api-id.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "api-id",
            "http": {
                "method": self.method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "food-delivery-tests/1.0",
            },
            "requestId": format!("req-{}", uuid::Uuid::new_v4().simple()),
            "routeKey": self.route_key(),
            "stage": "$default",
            "time": "14/Mar/2025:15:09:26 +0000",
            "timeEpoch": 1741964966535_i64,
        });
        if let Some(claims) = &self.claims {
            context["authorizer"] = json!({ "jwt": { "claims": claims, "scopes": null } });
        }
        let mut request = json!({
            "version": "2.0",
            "routeKey": self.route_key(),
            "rawPath": raw_path,
            "rawQueryString": raw_query,
            "headers": self.headers,
            "requestContext": context,
            "isBase64Encoded": self.base64,
        });
        if !self.query.is_empty() {
            let params: serde_json::Map<String, Value> = self.query.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
            request["queryStringParameters"] = Value::Object(params);
        }
        if !self.path_parameters.is_empty() {
            let params: serde_json::Map<String, Value> = self.path_parameters.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
            request["pathParameters"] = Value::Object(params);
        }
        if let Some(body) = &self.body {
            request["body"] = json!(body);
        }
        request
    }

    pub fn build(&self) -> ApiGatewayV2httpRequest {
        serde_json::from_value(self.to_json()).expect("an API Gateway payload 2.0 request deserializes")
    }
}

/// What API Gateway sends back to the client.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: i64,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    fn from(response: ApiGatewayV2httpResponse) -> Reply {
        let body = match &response.body {
            Some(Body::Text(text)) => serde_json::from_str(text).unwrap_or_else(|e| panic!("the body is not JSON ({e}): {text}")),
            Some(Body::Binary(bytes)) => serde_json::from_slice(bytes).expect("a binary body is JSON"),
            Some(Body::Empty) | None => Value::Null,
            Some(_) => panic!("an unexpected body kind"),
        };
        Reply { status: response.status_code, headers: response.headers, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts the status (showing the body when it differs) and returns the body.
    #[track_caller]
    pub fn expect(&self, status: i64) -> &Value {
        assert_eq!(self.status, status, "expected HTTP {status}, got {} with {}", self.status, self.body);
        if (200..300).contains(&status) {
            assert_eq!(self.header("content-type"), Some("application/json"), "a success is application/json");
        }
        &self.body
    }

    /// Asserts an RFC 9457 problem with this status whose detail mentions
    /// `detail` (case-insensitively); returns the detail.
    #[track_caller]
    pub fn problem(&self, status: i64, detail: &str) -> String {
        assert_eq!(self.status, status, "expected HTTP {status}, got {} with {}", self.status, self.body);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "a refusal is application/problem+json");
        let title = match status {
            400 => "Bad Request",
            401 => "Unauthorized",
            402 => "Payment Required",
            403 => "Forbidden",
            404 => "Not Found",
            409 => "Conflict",
            413 => "Content Too Large",
            415 => "Unsupported Media Type",
            503 => "Service Unavailable",
            _ => "Internal Server Error",
        };
        assert_eq!(self.body["title"], title, "the problem's title for {status}: {}", self.body);
        assert_eq!(self.body["status"], status, "the problem repeats its status: {}", self.body);
        let got = self.body["detail"].as_str().unwrap_or_else(|| panic!("a problem has a detail: {}", self.body)).to_owned();
        assert!(got.to_lowercase().contains(&detail.to_lowercase()), "the problem's detail should mention {detail:?}, got {got:?}");
        got
    }
}

// ==================================================================== the bus

/// An EventBridge stand-in that records every PutEvents call. It can be told
/// to fail chosen entries (by event id) once or every time, or to be down.
#[derive(Default)]
pub struct RecordingBus {
    state: Mutex<BusState>,
}

#[derive(Default)]
struct BusState {
    calls: Vec<Vec<BusEntry>>,
    accepted: Vec<BusEntry>,
    fail_once: HashSet<String>,
    fail_always: HashSet<String>,
    down: bool,
}

/// The event id inside a bus entry's detail.
pub fn event_id_of(entry: &BusEntry) -> String {
    let detail: Value = serde_json::from_str(&entry.detail).expect("a bus entry's detail is JSON");
    detail["eventId"].as_str().expect("a bus entry's detail has an eventId").to_owned()
}

impl RecordingBus {
    fn state(&self) -> std::sync::MutexGuard<'_, BusState> {
        self.state.lock().unwrap()
    }
    /// Every PutEvents request, in order.
    pub fn calls(&self) -> Vec<Vec<BusEntry>> {
        self.state().calls.clone()
    }
    /// Every entry the bus took, in order.
    pub fn accepted(&self) -> Vec<BusEntry> {
        self.state().accepted.clone()
    }
    pub fn accepted_ids(&self) -> Vec<String> {
        self.accepted().iter().map(event_id_of).collect()
    }
    /// The entries with these event ids fail the first time they are put.
    pub fn fail_once(&self, event_ids: impl IntoIterator<Item = String>) {
        self.state().fail_once.extend(event_ids);
    }
    /// The entries with these event ids fail every time.
    pub fn fail_always(&self, event_ids: impl IntoIterator<Item = String>) {
        self.state().fail_always.extend(event_ids);
    }
    /// Every PutEvents call fails as a whole.
    pub fn go_down(&self) {
        self.state().down = true;
    }
}

#[async_trait]
impl EventBus for RecordingBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<PutOutcome, BusError> {
        let mut state = self.state();
        state.calls.push(entries.to_vec());
        if state.down {
            return Err(BusError::Unavailable("the bus is down".into()));
        }
        if entries.len() > functions::ports::MAX_BATCH {
            return Err(BusError::Unavailable(format!("{} entries: at most 10 per PutEvents", entries.len())));
        }
        let mut outcome = PutOutcome::default();
        for (index, entry) in entries.iter().enumerate() {
            let id = event_id_of(entry);
            if state.fail_always.contains(&id) || state.fail_once.remove(&id) {
                outcome.failed.push((index, "InternalFailure".into()));
            } else {
                state.accepted.push(entry.clone());
            }
        }
        Ok(outcome)
    }
}

// =========================================================== the payment side

/// Counts the calls a handler makes to the processor, around the simulator.
#[derive(Default)]
pub struct CountingGateway {
    pub inner: SimulatedProcessor,
    pub charges: AtomicUsize,
    pub refunds: AtomicUsize,
}

impl CountingGateway {
    pub fn refund_calls(&self) -> usize {
        self.refunds.load(Ordering::SeqCst)
    }
    pub fn charge_calls(&self) -> usize {
        self.charges.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl PaymentGateway for CountingGateway {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeReceipt, PaymentError> {
        self.charges.fetch_add(1, Ordering::SeqCst);
        self.inner.charge(request).await
    }
    async fn refund(&self, charge_id: &str, amount: domain::Money) -> Result<(), PaymentError> {
        self.refunds.fetch_add(1, Ordering::SeqCst);
        self.inner.refund(charge_id, amount).await
    }
    async fn charges_between(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<functions::ports::ChargeRecord>, PaymentError> {
        self.inner.charges_between(from, until).await
    }
}

// ================================================================== the world

/// Everything on one temporary database, a simulated processor and a
/// recording bus; `settle` moves events along as AWS would.
pub struct World {
    pub database: Arc<Database>,
    pub processor: Arc<SimulatedProcessor>,
    pub bus: Arc<RecordingBus>,
    pub deps: Deps,
    /// The change-stream position published so far.
    published: Mutex<i64>,
    /// How many accepted bus entries have been delivered to the rules.
    delivered: Mutex<usize>,
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl World {
    pub fn new() -> World {
        let database = Database::temporary().expect("a temporary database");
        let processor = Arc::new(SimulatedProcessor::default());
        let bus = Arc::new(RecordingBus::default());
        let deps = Deps::embedded(database.clone(), processor.clone(), bus.clone());
        World { database, processor, bus, deps, published: Mutex::new(0), delivered: Mutex::new(0) }
    }

    /// Sends the request to the function its route belongs to, as API Gateway would.
    pub async fn send(&self, request: Req) -> Reply {
        let route = request.route_key();
        let function =
            ROUTES.iter().find(|(key, _)| *key == route).map(|(_, function)| *function).unwrap_or_else(|| panic!("no route {route}"));
        self.call(function, request.build()).await
    }

    /// Invokes an HTTP function by name.
    pub async fn call(&self, function: &str, request: ApiGatewayV2httpRequest) -> Reply {
        let Some(Handler::Http(handler)) = registry::handler(function) else { panic!("{function} is no HTTP function") };
        Reply::from(registry::invoke_http(function, handler, &self.deps, request).await)
    }

    // ------------------------------------------------------------- events

    /// Every stored event, in the order the change stream has them.
    pub fn events(&self) -> Vec<Envelope> {
        self.database.events_after(0, 100_000).expect("the change stream reads").into_iter().map(|(_, e)| e).collect()
    }

    /// The events of one stream, in version order (snapshots aside).
    pub fn stream(&self, aggregate_type: &str, aggregate_id: &str) -> Vec<Envelope> {
        self.events().into_iter().filter(|e| e.aggregate_type == aggregate_type && e.aggregate_id == aggregate_id).collect()
    }

    pub fn event_types(&self, aggregate_type: &str, aggregate_id: &str) -> Vec<String> {
        self.stream(aggregate_type, aggregate_id).into_iter().map(|e| e.event_type).collect()
    }

    /// The latest event of a type for an aggregate.
    pub fn last_event(&self, aggregate_type: &str, aggregate_id: &str, event_type: &str) -> Envelope {
        self.stream(aggregate_type, aggregate_id)
            .into_iter()
            .rev()
            .find(|e| e.event_type == event_type)
            .unwrap_or_else(|| panic!("no {event_type} on {aggregate_type}-{aggregate_id}"))
    }

    /// Runs the stream publisher over everything stored since the last call,
    /// in batches as DynamoDB Streams delivers them.
    pub async fn publish(&self) -> usize {
        let mut published = 0;
        loop {
            let from = *self.published.lock().unwrap();
            let events = self.database.events_after(from, 100).expect("the change stream reads");
            let Some((last, _)) = events.last() else { return published };
            let last = *last;
            let records = events.iter().map(|(position, envelope)| item::stream_record(*position as u64, envelope).unwrap()).collect();
            let response = self.publish_batch(records).await.expect("the publisher runs");
            assert!(response.batch_item_failures.is_empty(), "the publisher reported failures: {response:?}");
            published += events.len();
            *self.published.lock().unwrap() = last;
        }
    }

    /// Invokes `publish-events` with these stream records.
    pub async fn publish_batch(&self, records: Vec<EventRecord>) -> Result<DynamoDbEventResponse, HandlerError> {
        let Some(Handler::Stream(handler)) = registry::handler("publish-events") else { panic!("publish-events is a stream function") };
        registry::invoke_stream("publish-events", handler, &self.deps, stream_batch(records)).await
    }

    /// Publishes what is new and delivers every new bus entry to each function
    /// whose rule takes it, until nothing more happens.
    pub async fn settle(&self) {
        for _ in 0..50 {
            let published = self.publish().await;
            let accepted = self.bus.accepted();
            let from = std::mem::replace(&mut *self.delivered.lock().unwrap(), accepted.len());
            let fresh = &accepted[from..];
            if published == 0 && fresh.is_empty() {
                return;
            }
            for entry in fresh {
                for rule in RULES.iter().filter(|rule| rule.matches(&entry.source, &entry.detail_type)) {
                    if let Err(error) = self.deliver_entry(rule.function, entry).await {
                        panic!("{} failed on {}: {error}", rule.function, entry.detail_type);
                    }
                }
            }
        }
        panic!("the system did not settle after 50 rounds");
    }

    /// Delivers a bus entry to an event function, as its EventBridge rule would.
    pub async fn deliver_entry(&self, function: &str, entry: &BusEntry) -> Result<(), HandlerError> {
        let detail: Value = serde_json::from_str(&entry.detail).expect("a bus entry's detail is JSON");
        self.deliver_json(function, eventbridge_json(&entry.source, &entry.detail_type, detail)).await
    }

    /// Delivers a stored event straight to an event function (a redelivery, a
    /// late or early arrival).
    pub async fn deliver(&self, function: &str, envelope: &Envelope) -> Result<(), HandlerError> {
        let source = envelope.source().expect("a domain event has a source");
        self.deliver_json(function, eventbridge_json(source, &envelope.event_type, serde_json::to_value(envelope).unwrap())).await
    }

    /// Delivers an EventBridge event given as JSON.
    pub async fn deliver_json(&self, function: &str, event: Value) -> Result<(), HandlerError> {
        // As the Lambda runtime reads it, from the invocation's JSON text: an
        // event that is not an event function's input fails the invocation.
        let event: BusEvent = serde_json::from_str(&event.to_string()).map_err(|e| HandlerError::BadEvent(e.to_string()))?;
        let Some(Handler::Event(handler)) = registry::handler(function) else { panic!("{function} is no event function") };
        registry::invoke_event(function, handler, &self.deps, &event).await
    }

    // ----------------------------------------------------------- scenarios

    /// An owner registers a store with a three-item menu (m1 9.00, m2 4.50,
    /// m3 2.50) and the catalog learns of it. Returns the store id.
    pub async fn register_store(&self, owner: &str, region: &str) -> String {
        let reply = self
            .send(Req::post("/stores").owner(owner).json(json!({
                "name": "Luigi's",
                "region": region,
                "menu": [
                    { "name": "Margherita", "price": 900 },
                    { "name": "Tiramisu", "price": 450 },
                    { "name": "Espresso", "price": 250 },
                ],
            })))
            .await;
        let store_id = reply.expect(201)["storeId"].as_str().expect("a store id").to_owned();
        self.settle().await;
        store_id
    }

    /// A customer orders from a store and pays with an approved card.
    pub async fn place_order(&self, customer: &str, store_id: &str, items: &[(&str, u32)]) -> String {
        let reply = self.send(order_request(customer, store_id, items, "tok_visa")).await;
        let order_id = reply.expect(201)["orderId"].as_str().expect("an order id").to_owned();
        self.settle().await;
        order_id
    }

    /// The store's owner does a kitchen step (`accept`, `start-cooking`, ...).
    pub async fn kitchen(&self, owner: &str, store_id: &str, order_id: &str, step: &'static str) -> Reply {
        let route = match step {
            "accept" => "/stores/{storeId}/orders/{orderId}/accept",
            "start-cooking" => "/stores/{storeId}/orders/{orderId}/start-cooking",
            "finish-cooking" => "/stores/{storeId}/orders/{orderId}/finish-cooking",
            other => panic!("no kitchen step {other}"),
        };
        let reply = self.send(Req::post(route).path("storeId", store_id).path("orderId", order_id).owner(owner)).await;
        self.settle().await;
        reply
    }

    /// A rider does a delivery step (`pick`, `complete`).
    pub async fn ride(&self, rider: &str, order_id: &str, step: &'static str) -> Reply {
        let route = match step {
            "pick" => "/deliveries/{orderId}/pick",
            "complete" => "/deliveries/{orderId}/complete",
            other => panic!("no delivery step {other}"),
        };
        let reply = self.send(Req::post(route).path("orderId", order_id).rider(rider)).await;
        self.settle().await;
        reply
    }

    /// A store of `OWNER` in `REGION` with an order of `CUSTOMER` taken to
    /// `stage`: "placed", "accepted", "cooking", "cooked", "picked-up" (by
    /// `RIDER`), "delivered".
    pub async fn order_at(&self, stage: &str) -> (String, String) {
        let store_id = self.register_store(OWNER, REGION).await;
        let order_id = self.place_order(CUSTOMER, &store_id, &[("m1", 2), ("m3", 1)]).await;
        let steps: &[&'static str] = match stage {
            "placed" => &[],
            "accepted" => &["accept"],
            "cooking" => &["accept", "start-cooking"],
            "cooked" | "picked-up" | "delivered" => &["accept", "start-cooking", "finish-cooking"],
            other => panic!("no stage {other}"),
        };
        for step in steps {
            self.kitchen(OWNER, &store_id, &order_id, step).await.expect(200);
        }
        if matches!(stage, "picked-up" | "delivered") {
            self.ride(RIDER, &order_id, "pick").await.expect(200);
        }
        if stage == "delivered" {
            self.ride(RIDER, &order_id, "complete").await.expect(200);
        }
        (store_id, order_id)
    }

    /// An order as its customer sees it through `GET /orders/{orderId}`.
    pub async fn order_view(&self, customer: &str, order_id: &str) -> Value {
        self.send(Req::get("/orders/{orderId}").path("orderId", order_id).customer(customer)).await.expect(200).clone()
    }

    /// The statuses a customer was told about, oldest first.
    pub fn told(&self, customer: &str) -> Vec<String> {
        let sent = self.database.notifications(customer).expect("notifications read back");
        sent.iter().map(|n| serde_json::to_value(n.status).unwrap().as_str().unwrap().to_owned()).collect()
    }
}

/// `POST /orders` for these items, delivered to `ADDRESS` in `REGION`.
pub fn order_request(customer: &str, store_id: &str, items: &[(&str, u32)], token: &str) -> Req {
    let items: Vec<Value> = items.iter().map(|(menu_id, quantity)| json!({ "menuId": menu_id, "quantity": quantity })).collect();
    Req::post("/orders").customer(customer).json(json!({
        "storeId": store_id,
        "items": items,
        "region": REGION,
        "address": ADDRESS,
        "paymentToken": token,
    }))
}

/// A DynamoDB Streams batch of these records, as Lambda receives it.
pub fn stream_batch(records: Vec<EventRecord>) -> StreamBatch {
    let records: Vec<Value> = records.iter().map(|record| serde_json::to_value(record).unwrap()).collect();
    serde_json::from_value(json!({ "Records": records })).expect("a DynamoDB Streams batch deserializes")
}

/// A view document's body with this JSON.
pub fn body(value: Value) -> String {
    value.to_string()
}

/// What a view document's body says.
pub fn body_json(body: &str) -> Value {
    serde_json::from_str(body).expect("a stored body is JSON")
}

/// An EventBridge event as a rule target receives it.
pub fn eventbridge_json(source: &str, detail_type: &str, detail: Value) -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2025-03-14T15:09:26Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    })
}

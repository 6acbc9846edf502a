//! `events/` holds one sample event per function, for
//! `sam local invoke <LogicalId> -e events/<binary>.json`. These tests hold
//! the samples to the template (one per function, each event matched by its
//! function's own rule), to the shapes the handlers take and the domain
//! writes, and run every sample through its handler on the embedded adapters,
//! after seeding exactly the state it presupposes, to show it does what a
//! user would expect.
//!
//! The samples share fixed ids: store `store-sample` (owned by `owner-sample`,
//! region `gangnam`, menu m1 Bibimbap 12.00 and m2 Kimchi stew 9.50), order
//! `order-sample` (2 × m1 + 1 × m2 = 33.50 by `customer-sample`), rider
//! `rider-sample`.

use domain::catalog::{MenuItem, Store, StoreCommand};
use domain::delivery::{Delivery, DeliveryCommand, DeliveryDetails};
use domain::kitchen::KitchenCommand;
use domain::ordering::{ApprovedPayment, DeliveryProgress, Order, OrderCommand, PlaceOrder};
use domain::payment::{Payment, PaymentCommand};
use domain::projection::order_status::OrderStatusProjection;
use domain::{Aggregate, CustomerId, Envelope, Event, MenuItemId, Metadata, Money, OwnerId, Region, RiderId, StoreId};
use food_delivery::repository;
use functions::command::{execute, load};
use functions::embedded::{Database, SimulatedProcessor};
use functions::ports::{BoxFuture, BusEntry, BusError, ChargeRequest, EventBus, PutOutcome};
use functions::registry::{self, Handler};
use functions::{Deps, item};
use local::event_pattern::EventPattern;
use local::template::{Function, Wiring};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const STORE: &str = "store-sample";
const ORDER: &str = "order-sample";
const OWNER: &str = "owner-sample";
const CUSTOMER: &str = "customer-sample";
const RIDER: &str = "rider-sample";
const REGION: &str = "gangnam";
const ADDRESS: &str = "1 Teheran-ro, Gangnam-gu, Seoul";
/// An order that was charged but never stored.
const LOST_ORDER: &str = "order-sample-lost";

fn wiring() -> Wiring {
    Wiring::load(&repository().join("template.yaml")).expect("template.yaml parses")
}

fn template() -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(repository().join("template.yaml")).expect("template.yaml reads"))
        .expect("template.yaml parses")
}

fn events_dir() -> PathBuf {
    repository().join("events")
}

fn sample(binary: &str) -> Value {
    let path = events_dir().join(format!("{binary}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn handler(binary: &str) -> Handler {
    registry::handler(binary).unwrap_or_else(|| panic!("{binary} has no handler"))
}

/// Types a value as the input `handler` takes (this package cannot name
/// the aws_lambda_events types, so the handler names them).
fn typed<T, R>(_handler: for<'a> fn(&'a Deps, T) -> BoxFuture<'a, R>, input: T) -> T {
    input
}

/// Deserializes a sample as the input its handler takes.
macro_rules! input {
    ($handler:expr, $json:expr) => {
        typed($handler, serde_json::from_value(($json).clone()).unwrap_or_else(|e| panic!("not the input its handler takes: {e}")))
    };
}

/// Reads a sample as an event function's input, from its JSON text as the
/// Lambda runtime does.
fn event_input<T: serde::de::DeserializeOwned>(json: &Value) -> T {
    serde_json::from_str(&json.to_string()).unwrap_or_else(|e| panic!("not the input its handler takes: {e}"))
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into())
}

/// Fails with every failing sample named, after checking them all.
fn report(failures: Vec<String>) {
    assert!(failures.is_empty(), "{} sample(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// Runs `check` on every function's sample, each on its own: one sample's
/// failure neither stops nor hides another's.
fn each_sample(check: impl Fn(&Function, &Value)) {
    let mut failures = vec![];
    for function in wiring().functions {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&function, &sample(&function.name)))) {
            failures.push(format!("events/{}.json: {}", function.name, panic_message(panic)));
        }
    }
    report(failures);
}

// ================================================================= the files

#[test]
fn every_function_has_exactly_one_sample_and_every_sample_names_a_function() {
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(events_dir()).expect("events/ exists") {
        let path = entry.expect("events/ lists").path();
        assert_eq!(path.extension().and_then(|e| e.to_str()), Some("json"), "{} is not a .json sample", path.display());
        files.insert(path.file_stem().and_then(|s| s.to_str()).expect("a file name").to_owned());
    }
    let functions: BTreeSet<String> = wiring().functions.into_iter().map(|f| f.name).collect();
    let missing: Vec<_> = functions.difference(&files).collect();
    let strays: Vec<_> = files.difference(&functions).collect();
    assert!(missing.is_empty() && strays.is_empty(), "functions without a sample: {missing:?}; samples naming no function: {strays:?}");
}

#[test]
fn every_sample_is_the_input_its_handler_takes() {
    each_sample(|function, json| match handler(&function.name) {
        Handler::Http(handler) => {
            let request = input!(handler, json);
            check_http(function, json);
            let caller = functions::http::caller(&request).unwrap_or_else(|p| panic!("the handler sees no caller: {p:?}"));
            assert_eq!(caller.id, json["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]);
        }
        Handler::Event(_) => {
            let event: registry::BusEvent = event_input(json);
            for field in ["version", "id", "account", "time", "region"] {
                assert!(json[field].is_string(), "the EventBridge event has no {field}");
            }
            assert_eq!(json["resources"], json!([]), "resources");
            let envelope = &event.detail;
            assert_eq!(
                serde_json::to_value(envelope).expect("serializes"),
                json["detail"],
                "the detail is exactly an envelope, nothing more"
            );
            check_envelope(envelope);
            assert_eq!(Some(event.source.as_str()), envelope.source(), "source");
            assert_eq!(event.detail_type, envelope.event_type, "detail-type");
        }
        Handler::Scheduled(_) => {
            let event: registry::ScheduleEvent = event_input(json);
            for field in ["version", "id", "account", "time", "region"] {
                assert!(json[field].is_string(), "the scheduled event has no {field}");
            }
            assert_eq!((event.source.as_str(), event.detail_type.as_str()), ("aws.events", "Scheduled Event"), "what a schedule sends");
            assert_eq!(json["detail"], json!({}), "a schedule's detail is empty");
            let rules = json["resources"].as_array().expect("resources");
            assert!(rules.len() == 1 && rules[0].as_str().is_some_and(|arn| arn.contains(":rule/")), "the schedule's rule: {rules:?}");
        }
        Handler::Invoke(handler) => {
            let payload = input!(handler, json);
            assert!(payload.is_object(), "a function invoked by hand takes a JSON object, as `aws lambda invoke --payload` sends");
        }
        Handler::Stream(handler) => {
            let batch = input!(handler, json);
            let records = json["Records"].as_array().expect("Records");
            assert_eq!(batch.records.len(), records.len());
            let names: Vec<&str> = batch.records.iter().map(|r| r.event_name.as_str()).collect();
            assert_eq!(names, ["INSERT", "INSERT", "MODIFY"], "two new events and a rewritten snapshot");
            for (record, raw) in batch.records.iter().zip(records) {
                let change = &raw["dynamodb"];
                assert_eq!(change["StreamViewType"], "NEW_IMAGE", "the table streams NEW_IMAGE");
                assert!(change["SequenceNumber"].is_string(), "a record has its sequence number");
                assert!(raw["eventSourceARN"].as_str().is_some_and(|arn| arn.contains("/stream/")), "the stream's ARN");
                assert_eq!(change["Keys"], json!({ "pk": change["NewImage"]["pk"], "sk": change["NewImage"]["sk"] }), "Keys are pk and sk");
                if record.event_name == "INSERT" {
                    let envelope = item::from_image(&record.change.new_image).unwrap_or_else(|e| panic!("not an event item: {e}"));
                    let laid_out = serde_json::to_value(item::to_item(&envelope).expect("an item")).expect("serializes");
                    assert_eq!(
                        with_data_parsed(&change["NewImage"]),
                        with_data_parsed(&laid_out),
                        "the item is laid out as item.rs lays it out"
                    );
                    check_envelope(&envelope);
                } else {
                    assert_eq!(change["NewImage"]["sk"], json!({ "N": "0" }), "a snapshot lives at sk 0");
                    assert!(change["NewImage"].get("eventId").is_none(), "a snapshot has no eventId");
                }
            }
        }
    });
}

fn check_http(function: &Function, json: &Value) {
    let context = &json["requestContext"];
    assert_eq!(json["version"], "2.0", "payload format version");
    assert_eq!(json["isBase64Encoded"], false);
    let route_key = json["routeKey"].as_str().expect("routeKey");
    let route = function.routes.iter().find(|r| r.key() == route_key).unwrap_or_else(|| {
        panic!(
            "routeKey {route_key} is none of {}'s routes {:?}",
            function.name,
            function.routes.iter().map(|r| r.key()).collect::<Vec<_>>()
        )
    });
    assert_eq!(context["routeKey"], route_key);
    assert_eq!(context["http"]["method"], route.method.as_str());
    let mut path = route.path.clone();
    let mut names = BTreeSet::new();
    for segment in route.path.split('/').filter(|s| s.starts_with('{')) {
        let name = segment.trim_matches(|c| c == '{' || c == '}');
        names.insert(name.to_owned());
        let value = json["pathParameters"][name].as_str().unwrap_or_else(|| panic!("pathParameters.{name} is missing"));
        assert!([STORE, ORDER].contains(&value), "{name} {value} is not one of the fixed sample ids");
        path = path.replace(segment, value);
    }
    let given: BTreeSet<String> = json["pathParameters"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default();
    assert_eq!(given, names, "pathParameters are exactly the route's");
    assert_eq!(json["rawPath"], path.as_str());
    assert_eq!(context["http"]["path"], path.as_str());
    assert_eq!(json["rawQueryString"], "", "the sample routes take no query");
    for field in ["accountId", "apiId", "domainName", "requestId", "stage", "time"] {
        assert!(context[field].is_string(), "requestContext.{field} is missing");
    }
    assert!(context["timeEpoch"].is_i64(), "requestContext.timeEpoch is missing");
    assert_eq!(json["headers"]["content-type"], "application/json");
    assert!(
        json["headers"]["authorization"].as_str().is_some_and(|a| a.starts_with("Bearer ")),
        "an authorization header with a bearer token"
    );
    let claims = &context["authorizer"]["jwt"]["claims"];
    let sub = claims["sub"].as_str().expect("claims.sub");
    let role = sub.strip_suffix("-sample").unwrap_or_else(|| panic!("sub {sub} is not one of the fixed sample ids"));
    assert_eq!(claims["cognito:groups"], format!("[{role}]"), "{sub} is in the {role} group");
    // The authorizer trusts the stack's user pool and its app client.
    let region = context["domainName"].as_str().and_then(|d| d.split('.').nth(2)).expect("an execute-api domain name");
    let pool = claims["iss"].as_str().and_then(|iss| iss.strip_prefix(&format!("https://cognito-idp.{region}.amazonaws.com/")));
    assert!(pool.is_some_and(|pool| pool.starts_with(&format!("{region}_"))), "iss {} is no user pool of {region}", claims["iss"]);
    assert!(claims["aud"].as_str().is_some_and(|aud| !aud.is_empty()), "aud names the app client");
    if let Some(text) = json.get("body").map(|body| body.as_str().expect("the body is a string")) {
        let body: Value = serde_json::from_str(text).expect("the body is JSON");
        assert!(body.is_object(), "the body is a JSON object");
        assert_eq!(json["headers"]["content-length"], text.len().to_string(), "content-length");
    }
}

/// The envelope is one the domain writes: its payload decodes and encodes
/// back to exactly itself, and its ids are the ones the system derives.
fn check_envelope(envelope: &Envelope) {
    let event = envelope.decode().unwrap_or_else(|e| panic!("the envelope does not decode: {e}"));
    let encoded = match &event {
        Event::Store(e) => serde_json::to_value(e),
        Event::Order(e) => serde_json::to_value(e),
        Event::Payment(e) => serde_json::to_value(e),
        Event::Delivery(e) => serde_json::to_value(e),
    }
    .expect("serializes");
    assert_eq!(
        encoded,
        json!({ "eventType": envelope.event_type, "data": envelope.data }),
        "the payload is exactly what the domain writes"
    );
    let id = format!("{}-{}-{}", envelope.aggregate_type, envelope.aggregate_id, envelope.version);
    assert_eq!(envelope.event_id, id, "the event id is {{aggregateType}}-{{aggregateId}}-{{version}}");
    assert_eq!(envelope.correlation_id, envelope.aggregate_id, "the correlation id is the order (or store) id");
    assert!(
        [STORE, ORDER].contains(&envelope.aggregate_id.as_str()),
        "aggregate {} is not one of the fixed sample ids",
        envelope.aggregate_id
    );
}

/// An item with its `data` (JSON text) parsed, so key order does not matter.
fn with_data_parsed(image: &Value) -> Value {
    let mut image = image.clone();
    if let Some(text) = image["data"]["S"].as_str() {
        image["data"]["S"] = serde_json::from_str(text).expect("data is JSON text");
    }
    image
}

// ================================================================== routing

#[test]
fn every_event_sample_is_matched_by_its_functions_own_rule() {
    let template = template();
    each_sample(|function, json| {
        if !function.rules.is_empty() {
            let patterns: Vec<&Value> = function.rules.iter().map(|rule| &rule.pattern_json).collect();
            assert!(function.rules.iter().any(|rule| rule.pattern.matches(json)), "no rule of {} matches it: {patterns:?}", function.name);
        }
        if function.reads_stream {
            // The event source mapping's filter: the events pass, the snapshot does not.
            let events = &template["Resources"][function.logical_id.as_str()]["Properties"]["Events"];
            let filters: Vec<EventPattern> = events
                .as_mapping()
                .into_iter()
                .flatten()
                .filter(|(_, event)| event["Type"].as_str() == Some("DynamoDB"))
                .flat_map(|(_, event)| event["Properties"]["FilterCriteria"]["Filters"].as_sequence().cloned().unwrap_or_default())
                .map(|filter| {
                    let pattern: Value =
                        serde_json::from_str(filter["Pattern"].as_str().expect("a filter pattern")).expect("a JSON pattern");
                    EventPattern::parse(&pattern).expect("a valid pattern")
                })
                .collect();
            assert!(!filters.is_empty(), "{} has no stream filter", function.name);
            for record in json["Records"].as_array().expect("Records") {
                let passes = filters.iter().any(|filter| filter.matches(record));
                assert_eq!(passes, record["eventName"] == "INSERT", "the stream filter on the {} record", record["eventName"]);
            }
        }
    });
}

// ============================================================ the outcomes

/// What the samples presuppose, built with the domain's commands.
#[derive(Debug, Clone, Copy)]
enum Step {
    Register,
    CloseStore,
    /// Charged by the processor, then the payment and the order stored.
    Place,
    Accept,
    StartCooking,
    FinishCooking,
    Cancel,
    /// What dispatch-delivery does on CookingStarted and CookingFinished.
    OpenDelivery,
    FoodReady,
    RiderPicks,
    /// What track-delivery does on DeliveryPicked.
    TrackPickUp,
    /// The order-status read model caught up with every stored event.
    ProjectOrderStatus,
    /// Charged by the processor for `LOST_ORDER`, whose order was never
    /// stored (place-order died in between).
    LostCharge,
}

use Step::*;

const NOTHING: &[Step] = &[];
const STORE_OPEN: &[Step] = &[Register];
const STORE_CLOSED: &[Step] = &[Register, CloseStore];
const PLACED: &[Step] = &[Register, Place];
const PLACED_AND_SHOWN: &[Step] = &[Register, Place, ProjectOrderStatus];
const ACCEPTED: &[Step] = &[Register, Place, Accept];
const CANCELLED: &[Step] = &[Register, Place, Cancel];
const COOKING: &[Step] = &[Register, Place, Accept, StartCooking];
/// Cooked, and the delivery open with the food ready.
const READY: &[Step] = &[Register, Place, Accept, StartCooking, OpenDelivery, FinishCooking, FoodReady];
/// A rider has the food; the order does not know yet.
const PICKED: &[Step] = &[Register, Place, Accept, StartCooking, OpenDelivery, FinishCooking, FoodReady, RiderPicks];
/// A rider has the food and the order says so.
const ON_THE_WAY: &[Step] = &[Register, Place, Accept, StartCooking, OpenDelivery, FinishCooking, FoodReady, RiderPicks, TrackPickUp];

/// What a user would expect after the sample. JSON texts are the fields the
/// document must have (objects may have more; arrays are matched in full).
enum Expect {
    /// The HTTP status and fields of the body.
    Reply(i64, &'static str),
    /// A 201 whose Location is `prefix` + the id at `pointer` in the body,
    /// and that aggregate stored.
    Created(&'static str, &'static str, &'static str),
    /// Fields of an aggregate's state, loaded from the event store.
    State(&'static str, &'static str, &'static str),
    /// An aggregate's stream holds exactly these events.
    Stream(&'static str, &'static str, &'static [&'static str]),
    /// A read-model document: view, key, partition, fields of its body.
    View(&'static str, &'static str, &'static str, &'static str),
    /// The customer has exactly one notification, with these fields.
    Notified(&'static str, &'static str),
    Charges(usize),
    Refunds(usize),
    /// Whether the processor refunded the charge of this order.
    Refunded(&'static str, bool),
    /// A function invoked by hand answered with a report with these fields.
    Answered(&'static str),
    /// A function invoked by hand refused, saying this.
    Refused(&'static str),
    /// What the bus took, in order: (source, detail-type, eventId).
    Published(&'static [(&'static str, &'static str, &'static str)]),
}

use Expect::*;

struct Case {
    sample: &'static str,
    seed: &'static [Step],
    expect: &'static [Expect],
}

const DETAILS: &str =
    r#"{"customerId":"customer-sample","storeId":"store-sample","region":"gangnam","address":"1 Teheran-ro, Gangnam-gu, Seoul"}"#;
const LINES: &str = r#"[{"menuId":"m1","name":"Bibimbap","unitPrice":1200,"quantity":2},
    {"menuId":"m2","name":"Kimchi stew","unitPrice":950,"quantity":1}]"#;

/// Every sample, the state it presupposes, and what it must achieve.
static CASES: &[Case] = &[
    Case {
        sample: "register-store",
        seed: NOTHING,
        expect: &[
            Reply(
                201,
                r#"{"name":"Seoul Kitchen","region":"gangnam","open":true,
                    "menu":[{"menuId":"m1","name":"Bibimbap","price":1200},{"menuId":"m2","name":"Kimchi stew","price":950}]}"#,
            ),
            Created("Store", "/storeId", "/stores/"),
        ],
    },
    Case {
        sample: "change-menu",
        seed: STORE_OPEN,
        expect: &[
            Reply(
                200,
                r#"{"storeId":"store-sample","menu":[{"menuId":"m1","name":"Bibimbap","price":1300},
                    {"menuId":"m2","name":"Kimchi stew","price":950},{"menuId":"m3","name":"Japchae","price":1100}]}"#,
            ),
            Stream("Store", STORE, &["StoreRegistered", "MenuChanged"]),
        ],
    },
    Case {
        sample: "close-store",
        seed: STORE_OPEN,
        expect: &[Reply(200, r#"{"storeId":"store-sample","open":false}"#), Stream("Store", STORE, &["StoreRegistered", "StoreClosed"])],
    },
    Case {
        sample: "open-store",
        seed: STORE_CLOSED,
        expect: &[
            Reply(200, r#"{"storeId":"store-sample","name":"Seoul Kitchen","region":"gangnam","open":true}"#),
            Stream("Store", STORE, &["StoreRegistered", "StoreClosed", "StoreOpened"]),
        ],
    },
    Case {
        sample: "place-order",
        seed: STORE_OPEN,
        expect: &[Reply(201, r#"{"status":"placed","total":3350}"#), Created("Order", "/orderId", "/orders/"), Charges(1)],
    },
    Case {
        sample: "cancel-order",
        seed: PLACED,
        expect: &[
            Reply(200, r#"{"orderId":"order-sample","status":"cancelled"}"#),
            Stream("Order", ORDER, &["OrderPlaced", "OrderCancelled"]),
        ],
    },
    Case {
        sample: "accept-order",
        seed: PLACED,
        expect: &[
            Reply(200, r#"{"orderId":"order-sample","status":"accepted"}"#),
            Stream("Order", ORDER, &["OrderPlaced", "OrderAccepted"]),
        ],
    },
    Case {
        sample: "reject-order",
        seed: PLACED,
        expect: &[
            Reply(200, r#"{"orderId":"order-sample","status":"rejected"}"#),
            Stream("Order", ORDER, &["OrderPlaced", "OrderRejected"]),
        ],
    },
    Case {
        sample: "start-cooking",
        seed: ACCEPTED,
        expect: &[
            Reply(200, r#"{"orderId":"order-sample","status":"cooking"}"#),
            Stream("Order", ORDER, &["OrderPlaced", "OrderAccepted", "CookingStarted"]),
        ],
    },
    Case {
        sample: "finish-cooking",
        seed: COOKING,
        expect: &[
            Reply(200, r#"{"orderId":"order-sample","status":"cooked"}"#),
            Stream("Order", ORDER, &["OrderPlaced", "OrderAccepted", "CookingStarted", "CookingFinished"]),
        ],
    },
    Case {
        sample: "pick-delivery",
        seed: READY,
        expect: &[
            Reply(200, r#"{"orderId":"order-sample","state":"picked-up","riderId":"rider-sample"}"#),
            Stream("Delivery", ORDER, &["DeliveryOpened", "FoodReady", "DeliveryPicked"]),
        ],
    },
    Case {
        sample: "complete-delivery",
        seed: ON_THE_WAY,
        expect: &[
            Reply(200, r#"{"orderId":"order-sample","state":"delivered","riderId":"rider-sample"}"#),
            Stream("Delivery", ORDER, &["DeliveryOpened", "FoodReady", "DeliveryPicked", "DeliveryCompleted"]),
        ],
    },
    Case {
        sample: "report-accident",
        seed: ON_THE_WAY,
        expect: &[
            Reply(200, r#"{"orderId":"order-sample","state":"failed","riderId":"rider-sample"}"#),
            Stream("Delivery", ORDER, &["DeliveryOpened", "FoodReady", "DeliveryPicked", "AccidentReported"]),
        ],
    },
    Case {
        sample: "queries",
        seed: PLACED_AND_SHOWN,
        expect: &[Reply(
            200,
            r#"{"orderId":"order-sample","customerId":"customer-sample","storeId":"store-sample","status":"placed",
                "lines":LINES,
                "total":3350,"region":"gangnam","address":"1 Teheran-ro, Gangnam-gu, Seoul","riderId":null,
                "timeline":[{"version":1,"status":"placed"}],"refund":null}"#,
        )],
    },
    Case {
        sample: "publish-events",
        seed: NOTHING,
        expect: &[Published(&[
            ("food-delivery.payment", "PaymentApproved", "Payment-order-sample-1"),
            ("food-delivery.ordering", "OrderPlaced", "Order-order-sample-1"),
        ])],
    },
    Case {
        sample: "refund-payment",
        seed: CANCELLED,
        expect: &[
            State("Payment", ORDER, r#"{"charge":{"customerId":"customer-sample","amount":3350,"refunded":"customer-cancelled"}}"#),
            Stream("Payment", ORDER, &["PaymentApproved", "PaymentRefunded"]),
            Refunds(1),
        ],
    },
    Case {
        sample: "reconcile-payments",
        seed: &[Register, Place, LostCharge],
        expect: &[
            Charges(2),
            Refunds(1),
            Refunded(LOST_ORDER, true),
            Refunded(ORDER, false),
            Stream("Payment", ORDER, &["PaymentApproved"]),
        ],
    },
    Case {
        sample: "dispatch-delivery",
        seed: COOKING,
        expect: &[
            State("Delivery", ORDER, r#"{"opened":{"details":DETAILS,"foodReady":false,"state":{"state":"open"}}}"#),
            Stream("Delivery", ORDER, &["DeliveryOpened"]),
        ],
    },
    Case {
        sample: "track-delivery",
        seed: PICKED,
        expect: &[
            State("Order", ORDER, r#"{"placed":{"status":"picked-up","riderId":"rider-sample"}}"#),
            Stream("Order", ORDER, &["OrderPlaced", "OrderAccepted", "CookingStarted", "CookingFinished", "OrderPickedUp"]),
        ],
    },
    Case {
        sample: "notify-customer",
        seed: ACCEPTED,
        expect: &[Notified(
            CUSTOMER,
            r#"{"id":"Order-order-sample-2","customerId":"customer-sample","orderId":"order-sample","version":2,
                "eventType":"OrderAccepted","status":"accepted","message":"The store accepted your order."}"#,
        )],
    },
    Case {
        // The order was stored but never projected: the rebuild makes its view.
        sample: "rebuild-views",
        seed: PLACED,
        expect: &[
            View(
                "order-status",
                ORDER,
                CUSTOMER,
                r#"{"orderId":"order-sample","customerId":"customer-sample","storeId":"store-sample","status":"placed",
                    "timeline":[{"version":1,"status":"placed"}],"refund":null}"#,
            ),
            Answered(r#"{"events":3,"views":[{"view":"order-status","documents":1,"rewritten":1}]}"#),
        ],
    },
    Case {
        // The queue is SQS: on the embedded adapters there is none to read
        // (aws/tests/messaging.rs redrives one on moto).
        sample: "redrive-dead-letters",
        seed: NOTHING,
        expect: &[Refused("DEAD_LETTER_QUEUE_URL is not set"), Published(&[])],
    },
    Case {
        sample: "project-order-status",
        seed: NOTHING,
        expect: &[View(
            "order-status",
            ORDER,
            CUSTOMER,
            r#"{"orderId":"order-sample","customerId":"customer-sample","storeId":"store-sample","status":"placed",
                "summary":{"lines":LINES,"total":3350,"region":"gangnam","address":"1 Teheran-ro, Gangnam-gu, Seoul",
                    "placedAt":"2025-03-14T12:00:05.391Z"},
                "riderId":null,"timeline":[{"version":1,"status":"placed"}],"refund":null}"#,
        )],
    },
    Case {
        sample: "project-store-queue",
        seed: NOTHING,
        expect: &[View(
            "store-queue",
            ORDER,
            STORE,
            r#"{"orderId":"order-sample","storeId":"store-sample","customerId":"customer-sample","status":{"version":1,"value":"placed"},
                "summary":{"lines":LINES,"total":3350,"address":"1 Teheran-ro, Gangnam-gu, Seoul"}}"#,
        )],
    },
    Case {
        sample: "project-popular-menus",
        seed: NOTHING,
        expect: &[View(
            "popular-menus",
            ORDER,
            STORE,
            r#"{"storeId":"store-sample",
                "items":[{"menuId":"m1","name":"Bibimbap","quantity":2},{"menuId":"m2","name":"Kimchi stew","quantity":1}]}"#,
        )],
    },
    Case {
        sample: "project-delivery-board",
        seed: NOTHING,
        expect: &[View(
            "delivery-board",
            ORDER,
            REGION,
            r#"{"orderId":"order-sample","details":DETAILS,"foodReady":false,"state":{"version":1,"value":{"state":"open"}}}"#,
        )],
    },
    Case {
        sample: "project-catalog",
        seed: NOTHING,
        expect: &[View(
            "catalog",
            STORE,
            REGION,
            r#"{"storeId":"store-sample","region":"gangnam","owner":"owner-sample","name":"Seoul Kitchen","open":{"version":1,"value":true},
                "menu":{"version":1,"value":[{"id":"m1","name":"Bibimbap","price":1200},{"id":"m2","name":"Kimchi stew","price":950}]}}"#,
        )],
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_does_what_its_function_promises() {
    let functions: BTreeSet<String> = wiring().functions.into_iter().map(|f| f.name).collect();
    let cases: Vec<&str> = CASES.iter().map(|case| case.sample).collect();
    let covered: BTreeSet<String> = cases.iter().map(|s| s.to_string()).collect();
    assert_eq!(covered.len(), cases.len(), "a sample is in the table twice");
    assert_eq!(covered, functions, "the table runs every function's sample");

    let runs: Vec<_> = CASES.iter().map(|case| (case.sample, tokio::spawn(run(case)))).collect();
    let mut failures = vec![];
    for (sample, run) in runs {
        if let Err(error) = run.await {
            let message = error.try_into_panic().map(panic_message).unwrap_or_else(|e| e.to_string());
            failures.push(format!("events/{sample}.json: {message}"));
        }
    }
    report(failures);
}

async fn run(case: &'static Case) {
    let world = World::new();
    for step in case.seed {
        world.seed(*step).await;
    }
    let outcome = world.invoke(case.sample, sample(case.sample)).await;
    for expect in case.expect {
        world.verify(expect, &outcome).await;
    }
}

// ================================================================ the world

/// Every port embedded on one temporary database, a simulated processor and
/// a bus that records what it is given.
struct World {
    database: Arc<Database>,
    processor: Arc<SimulatedProcessor>,
    bus: Arc<RecordingBus>,
    deps: Deps,
}

#[derive(Default)]
struct RecordingBus(Mutex<Vec<BusEntry>>);

impl EventBus for RecordingBus {
    // What `#[async_trait]` expands to; this package does not depend on the macro.
    fn put_events<'a, 'b, 'c>(&'a self, entries: &'b [BusEntry]) -> BoxFuture<'c, Result<PutOutcome, BusError>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        self.0.lock().unwrap().extend_from_slice(entries);
        Box::pin(std::future::ready(Ok(PutOutcome::default())))
    }
}

/// What a handler gave back.
enum Outcome {
    Http {
        status: i64,
        location: Option<String>,
        body: Value,
    },
    Done,
    /// What a function invoked by hand answered: its report, or its error.
    Invoked(Result<Value, String>),
}

impl World {
    fn new() -> World {
        let database = Database::temporary().expect("a temporary database");
        let processor = Arc::new(SimulatedProcessor::default());
        let bus = Arc::new(RecordingBus::default());
        let mut deps = Deps::embedded(database.clone(), processor.clone(), bus.clone());
        // The samples run the moment they are seeded: reconcile-payments may
        // take a charge seeded a millisecond ago for a lost one.
        deps.settings.reconcile.grace = std::time::Duration::ZERO;
        World { database, processor, bus, deps }
    }

    async fn invoke(&self, binary: &str, sample: Value) -> Outcome {
        match handler(binary) {
            Handler::Http(handler) => {
                let response = registry::invoke_http(binary, handler, &self.deps, input!(handler, &sample)).await;
                let location = response.headers.get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let body = match serde_json::to_value(&response.body).expect("a body serializes") {
                    Value::String(text) => serde_json::from_str(&text).unwrap_or_else(|e| panic!("the body is not JSON ({e}): {text}")),
                    other => other,
                };
                Outcome::Http { status: response.status_code, location, body }
            }
            Handler::Event(handler) => {
                let outcome = registry::invoke_event(binary, handler, &self.deps, &event_input(&sample)).await;
                outcome.unwrap_or_else(|e| panic!("{binary} failed, so EventBridge would retry it: {e}"));
                Outcome::Done
            }
            Handler::Scheduled(handler) => {
                let outcome = registry::invoke_event(binary, handler, &self.deps, &event_input(&sample)).await;
                outcome.unwrap_or_else(|e| panic!("{binary} failed, so EventBridge would retry it: {e}"));
                Outcome::Done
            }
            Handler::Invoke(handler) => {
                let outcome = registry::invoke_operation(binary, handler, &self.deps, input!(handler, &sample)).await;
                Outcome::Invoked(outcome.map_err(|e| e.to_string()))
            }
            Handler::Stream(handler) => {
                let outcome = registry::invoke_stream(binary, handler, &self.deps, input!(handler, &sample)).await;
                let response = outcome.unwrap_or_else(|e| panic!("{binary} failed: {e}"));
                let failures: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
                assert!(failures.is_empty(), "{binary} reported batch item failures: {failures:?}");
                Outcome::Done
            }
        }
    }

    async fn seed(&self, step: Step) {
        let owner = || OwnerId::from(OWNER);
        let customer = || CustomerId::from(CUSTOMER);
        let store_id = || StoreId::from(STORE);
        let details =
            || DeliveryDetails { customer_id: customer(), store_id: store_id(), region: Region::from(REGION), address: ADDRESS.into() };
        let kitchen = |command| OrderCommand::Kitchen { store_id: store_id(), command };
        let rider_id = || RiderId::from(RIDER);
        match step {
            Step::Register => {
                let item = |id: &str, name: &str, price| MenuItem { id: MenuItemId::from(id), name: name.into(), price: Money(price) };
                let menu = vec![item("m1", "Bibimbap", 1200), item("m2", "Kimchi stew", 950)];
                let register = StoreCommand::Register {
                    store_id: store_id(),
                    owner: owner(),
                    name: "Seoul Kitchen".into(),
                    region: Region::from(REGION),
                    menu,
                };
                self.command::<Store>(STORE, register).await;
            }
            Step::CloseStore => self.command::<Store>(STORE, StoreCommand::Close { owner: owner() }).await,
            Step::Place => {
                let store = load::<Store>(self.deps.events.as_ref(), STORE).await.expect("the store loads");
                let items = [(MenuItemId::from("m1"), 2), (MenuItemId::from("m2"), 1)];
                let (lines, total) = store.state.quote(&Region::from(REGION), &items).expect("the store quotes the order");
                let charge = ChargeRequest { order_id: ORDER.into(), customer_id: customer(), token: "tok_visa".into(), amount: total };
                let receipt = self.deps.payments.charge(&charge).await.expect("the processor charges");
                let charge_id = receipt.charge_id;
                self.command::<Payment>(
                    ORDER,
                    PaymentCommand::Approve { customer_id: customer(), charge_id: charge_id.clone(), amount: total },
                )
                .await;
                let place = PlaceOrder {
                    customer_id: customer(),
                    store_id: store_id(),
                    lines,
                    region: Region::from(REGION),
                    address: ADDRESS.into(),
                    payment: ApprovedPayment { charge_id, amount: total },
                };
                self.command::<Order>(ORDER, OrderCommand::Place(place)).await;
            }
            Step::Accept => self.command::<Order>(ORDER, kitchen(KitchenCommand::Accept)).await,
            Step::StartCooking => self.command::<Order>(ORDER, kitchen(KitchenCommand::StartCooking)).await,
            Step::FinishCooking => self.command::<Order>(ORDER, kitchen(KitchenCommand::FinishCooking)).await,
            Step::Cancel => self.command::<Order>(ORDER, OrderCommand::Cancel { customer_id: customer() }).await,
            Step::OpenDelivery => self.command::<Delivery>(ORDER, DeliveryCommand::Open(details())).await,
            Step::FoodReady => self.command::<Delivery>(ORDER, DeliveryCommand::MarkFoodReady(details())).await,
            Step::RiderPicks => self.command::<Delivery>(ORDER, DeliveryCommand::Pick { rider_id: rider_id() }).await,
            Step::TrackPickUp => {
                self.command::<Order>(ORDER, OrderCommand::Delivery(DeliveryProgress::PickedUp { rider_id: rider_id() })).await;
            }
            Step::LostCharge => {
                let charge =
                    ChargeRequest { order_id: LOST_ORDER.into(), customer_id: customer(), token: "tok_visa".into(), amount: Money(1200) };
                self.deps.payments.charge(&charge).await.expect("the processor charges");
                // Reconciliation lists charges made before now, to the
                // millisecond: let this one be in the past when it runs.
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            Step::ProjectOrderStatus => {
                for envelope in self.stored() {
                    let event = envelope.decode().expect("a stored event decodes");
                    functions::handlers::projections::apply::<OrderStatusProjection>(&self.deps, &envelope, &event)
                        .await
                        .expect("the order status projects");
                }
            }
        }
    }

    /// Runs a command as a handler would and insists it changed something.
    async fn command<A: Aggregate>(&self, aggregate_id: &str, command: A::Command)
    where
        A::Command: Clone + std::fmt::Debug,
    {
        let meta = Metadata {
            correlation_id: aggregate_id.to_owned(),
            causation_id: "request/seed".into(),
            time: "2025-03-14T11:00:00Z".parse().expect("a time"),
        };
        let executed = execute::<A>(&self.deps, aggregate_id, &meta, |_| Ok(command.clone()))
            .await
            .unwrap_or_else(|e| panic!("seeding {} {aggregate_id} with {command:?}: {e}", A::TYPE));
        assert!(!executed.events.is_empty(), "seeding {} {aggregate_id} with {command:?} changed nothing", A::TYPE);
    }

    /// Every stored event, in the order the change stream has them.
    fn stored(&self) -> Vec<Envelope> {
        self.database.events_after(0, 10_000).expect("the change stream reads").into_iter().map(|(_, envelope)| envelope).collect()
    }

    fn stream(&self, aggregate_type: &str, aggregate_id: &str) -> Vec<String> {
        self.stored()
            .into_iter()
            .filter(|e| e.aggregate_type == aggregate_type && e.aggregate_id == aggregate_id)
            .map(|e| e.event_type)
            .collect()
    }

    async fn state(&self, aggregate_type: &str, aggregate_id: &str) -> Value {
        async fn of<A: Aggregate>(deps: &Deps, id: &str) -> Value {
            let loaded = load::<A>(deps.events.as_ref(), id).await.unwrap_or_else(|e| panic!("{} {id} does not load: {e}", A::TYPE));
            serde_json::to_value(loaded.state).expect("a state serializes")
        }
        match aggregate_type {
            "Store" => of::<Store>(&self.deps, aggregate_id).await,
            "Order" => of::<Order>(&self.deps, aggregate_id).await,
            "Payment" => of::<Payment>(&self.deps, aggregate_id).await,
            "Delivery" => of::<Delivery>(&self.deps, aggregate_id).await,
            other => panic!("no aggregate type {other}"),
        }
    }

    async fn verify(&self, expect: &Expect, outcome: &Outcome) {
        let reply = || match outcome {
            Outcome::Http { status, location, body } => (*status, location.clone(), body.clone()),
            Outcome::Done | Outcome::Invoked(_) => panic!("an HTTP expectation on a function that gives no HTTP reply"),
        };
        let invoked = || match outcome {
            Outcome::Invoked(answer) => answer.clone(),
            _ => panic!("an expectation on a function invoked by hand, for one that is not"),
        };
        match *expect {
            Reply(status, fields) => {
                let (got, _, body) = reply();
                assert_eq!(got, status, "expected HTTP {status}, got {got} with {body}");
                contains(&body, &expected(fields), "the reply");
            }
            Created(aggregate_type, pointer, prefix) => {
                let (status, location, body) = reply();
                assert_eq!(status, 201, "expected 201 Created, got {status} with {body}");
                let id = body.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("no {pointer} in {body}"));
                assert_eq!(location.as_deref(), Some(format!("{prefix}{id}").as_str()), "the Location header");
                assert!(!self.stream(aggregate_type, id).is_empty(), "{aggregate_type} {id} was not stored");
            }
            State(aggregate_type, id, fields) => {
                contains(&self.state(aggregate_type, id).await, &expected(fields), &format!("the {aggregate_type} {id}"));
            }
            Stream(aggregate_type, id, events) => {
                assert_eq!(self.stream(aggregate_type, id), events, "the events of {aggregate_type} {id}");
            }
            View(view, key, partition, fields) => {
                let doc = self.deps.views.get(view, key).await.expect("the view store reads");
                let doc = doc.unwrap_or_else(|| panic!("no {view} document {key}"));
                assert_eq!(doc.partition, partition, "the partition of {view}/{key}");
                let body: Value = doc.decode().expect("a stored body is JSON");
                contains(&body, &expected(fields), &format!("{view}/{key}"));
            }
            Notified(customer, fields) => {
                let sent = self.database.notifications(customer).expect("the notifications read");
                assert_eq!(sent.len(), 1, "{customer} should have one notification: {sent:?}");
                contains(&serde_json::to_value(&sent[0]).expect("serializes"), &expected(fields), "the notification");
            }
            Answered(fields) => match invoked() {
                Ok(report) => contains(&report, &expected(fields), "the report"),
                Err(error) => panic!("expected a report, the function failed: {error}"),
            },
            Refused(reason) => match invoked() {
                Err(error) => assert!(error.contains(reason), "the refusal must say {reason:?}: {error}"),
                Ok(report) => panic!("expected a refusal saying {reason:?}, got {report}"),
            },
            Charges(count) => assert_eq!(self.processor.charge_count(), count, "charges taken by the processor"),
            Refunds(count) => assert_eq!(self.processor.refund_count(), count, "refunds made by the processor"),
            Refunded(order_id, refunded) => {
                let all =
                    self.deps.payments.charges_between(chrono::DateTime::UNIX_EPOCH, chrono::Utc::now()).await.expect("the ledger lists");
                let charge = all.iter().find(|c| c.order_id.0 == order_id).unwrap_or_else(|| panic!("no charge for {order_id}"));
                assert_eq!(charge.refunded, refunded, "whether the charge of {order_id} was refunded");
            }
            Published(wanted) => {
                let taken = self.bus.0.lock().unwrap().clone();
                let got: Vec<(String, String, String)> = taken
                    .iter()
                    .map(|entry| {
                        let detail: Envelope = serde_json::from_str(&entry.detail).expect("a bus entry's detail is an envelope");
                        (entry.source.clone(), entry.detail_type.clone(), detail.event_id)
                    })
                    .collect();
                let wanted: Vec<(String, String, String)> =
                    wanted.iter().map(|(s, t, id)| (s.to_string(), t.to_string(), id.to_string())).collect();
                assert_eq!(got, wanted, "what the bus took: (source, detail-type, eventId)");
            }
        }
    }
}

/// An expectation's JSON, with the shared fragments filled in.
fn expected(fields: &str) -> Value {
    let text = fields.replace("DETAILS", DETAILS).replace("LINES", LINES);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("the expectation is not JSON ({e}): {text}"))
}

/// `actual` has every field of `wanted` (objects may have more; arrays must
/// match element by element).
#[track_caller]
fn contains(actual: &Value, wanted: &Value, what: &str) {
    if let Err(difference) = difference(actual, wanted, "") {
        panic!("{what}: {difference}\nin {}", serde_json::to_string_pretty(actual).unwrap_or_default());
    }
}

fn difference(actual: &Value, wanted: &Value, path: &str) -> Result<(), String> {
    match (actual, wanted) {
        (Value::Object(actual), Value::Object(wanted)) => wanted.iter().try_for_each(|(key, wanted)| {
            let at = format!("{path}/{key}");
            match actual.get(key) {
                Some(actual) => difference(actual, wanted, &at),
                None => Err(format!("{at} is missing (expected {wanted})")),
            }
        }),
        (Value::Array(items), Value::Array(wanted)) if items.len() == wanted.len() => {
            items.iter().zip(wanted).enumerate().try_for_each(|(i, (actual, wanted))| difference(actual, wanted, &format!("{path}/{i}")))
        }
        _ if actual == wanted => Ok(()),
        _ => Err(format!("{} is {actual}, expected {wanted}", if path.is_empty() { "/" } else { path })),
    }
}

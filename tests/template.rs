//! template.yaml is the single source of wiring: these tests hold it, the
//! function binaries, the registry and the documented API to each other.

use food_delivery::repository;
use functions::registry::{self, FUNCTIONS, Handler};
use local::template::Wiring;
use serde_json::json;
use std::collections::BTreeSet;

#[path = "template/openapi.rs"]
mod openapi;

fn wiring() -> Wiring {
    Wiring::load(&repository().join("template.yaml")).expect("template.yaml parses")
}

#[test]
fn every_registered_function_is_in_the_template_once_and_ships_the_bootstrap() {
    let wiring = wiring();
    let declared: Vec<String> = wiring.functions.iter().map(|f| f.name.clone()).collect();
    let unique: BTreeSet<String> = declared.iter().cloned().collect();
    assert_eq!(unique.len(), declared.len(), "a FUNCTION is declared twice: {declared:?}");
    let registered: BTreeSet<String> = FUNCTIONS.iter().map(|f| f.to_string()).collect();
    assert_eq!(registered, unique, "registry::FUNCTIONS vs the FUNCTION variables of template.yaml");
    let binaries: BTreeSet<String> = std::fs::read_dir(repository().join("functions/src/bin"))
        .expect("functions/src/bin exists")
        .filter_map(|entry| entry.ok()?.path().file_stem()?.to_str().map(str::to_owned))
        .collect();
    assert_eq!(binaries, BTreeSet::from(["bootstrap".to_owned()]), "one entry point for every Lambda");
    for function in &wiring.functions {
        assert_eq!(function.binary, "bootstrap", "{} must ship the bootstrap", function.logical_id);
    }
}

#[test]
fn each_function_is_wired_to_what_its_handler_expects() {
    for function in wiring().functions {
        let handler = registry::handler(&function.name).unwrap_or_else(|| panic!("{} has no handler", function.name));
        let (routes, rules, stream) = (!function.routes.is_empty(), !function.rules.is_empty(), function.reads_stream);
        let scheduled = !function.schedules.is_empty();
        match handler {
            Handler::Http(_) => assert!(routes && !rules && !stream && !scheduled, "{} is an HTTP function", function.name),
            Handler::Event(_) => assert!(rules && !routes && !stream && !scheduled, "{} is an event function", function.name),
            Handler::Stream(_) => assert!(stream && !routes && !rules && !scheduled, "{} is the stream function", function.name),
            Handler::Scheduled(_) => assert!(scheduled && !routes && !rules && !stream, "{} is a scheduled function", function.name),
            Handler::Invoke(_) => {
                assert!(!scheduled && !routes && !rules && !stream, "{} is invoked by hand, by nothing else", function.name)
            }
        }
    }
}

#[test]
fn the_routes_are_exactly_the_documented_api() {
    let documented: BTreeSet<&str> = [
        "POST /stores",
        "PUT /stores/{storeId}/menu",
        "POST /stores/{storeId}/open",
        "POST /stores/{storeId}/close",
        "GET /stores",
        "GET /stores/{storeId}",
        "POST /orders",
        "GET /orders",
        "GET /orders/{orderId}",
        "POST /orders/{orderId}/cancel",
        "GET /stores/{storeId}/orders",
        "POST /stores/{storeId}/orders/{orderId}/accept",
        "POST /stores/{storeId}/orders/{orderId}/reject",
        "POST /stores/{storeId}/orders/{orderId}/start-cooking",
        "POST /stores/{storeId}/orders/{orderId}/finish-cooking",
        "GET /deliveries",
        "POST /deliveries/{orderId}/pick",
        "POST /deliveries/{orderId}/complete",
        "POST /deliveries/{orderId}/accident",
        "GET /stores/{storeId}/popular-menus",
    ]
    .into_iter()
    .collect();
    let wiring = wiring();
    let routes: Vec<String> = wiring.functions.iter().flat_map(|f| f.routes.iter().map(|r| r.key())).collect();
    let unique: BTreeSet<&str> = routes.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), routes.len(), "a route is served twice");
    assert_eq!(unique, documented);
}

/// Which functions each event reaches, by the template's own rules.
fn receivers(source: &str, detail_type: &str) -> BTreeSet<String> {
    let event = json!({
        "version": "0", "id": "1", "detail-type": detail_type, "source": source, "account": "0",
        "time": "2026-11-22T00:00:00Z", "region": "local", "resources": [], "detail": {},
    });
    wiring().functions.iter().filter(|f| f.rules.iter().any(|rule| rule.pattern.matches(&event))).map(|f| f.name.clone()).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn the_rules_route_every_event_to_its_consumers() {
    let order = ["notify-customer", "project-order-status", "project-store-queue"];
    let with = |extra: &[&str]| set(&[&order[..], extra].concat());
    let ordering = "food-delivery.ordering";
    assert_eq!(receivers(ordering, "OrderPlaced"), with(&["project-popular-menus"]));
    assert_eq!(receivers(ordering, "OrderAccepted"), with(&[]));
    assert_eq!(receivers(ordering, "OrderRejected"), with(&["refund-payment"]));
    assert_eq!(receivers(ordering, "CookingStarted"), with(&["dispatch-delivery"]));
    assert_eq!(receivers(ordering, "CookingFinished"), with(&["dispatch-delivery"]));
    assert_eq!(receivers(ordering, "OrderPickedUp"), with(&[]));
    assert_eq!(receivers(ordering, "OrderDelivered"), with(&[]));
    assert_eq!(receivers(ordering, "OrderCancelled"), with(&["refund-payment"]));
    let delivery = "food-delivery.delivery";
    assert_eq!(receivers(delivery, "DeliveryOpened"), set(&["project-delivery-board"]));
    assert_eq!(receivers(delivery, "FoodReady"), set(&["project-delivery-board"]));
    for progress in ["DeliveryPicked", "DeliveryCompleted", "AccidentReported"] {
        assert_eq!(receivers(delivery, progress), set(&["project-delivery-board", "track-delivery"]), "{progress}");
    }
    assert_eq!(receivers("food-delivery.payment", "PaymentApproved"), set(&[]));
    assert_eq!(receivers("food-delivery.payment", "PaymentRefunded"), set(&["project-order-status"]));
    for change in ["StoreRegistered", "MenuChanged", "StoreOpened", "StoreClosed"] {
        assert_eq!(receivers("food-delivery.catalog", change), set(&["project-catalog"]), "{change}");
    }
    assert_eq!(receivers("somebody.else", "OrderPlaced"), set(&[]));
}

/// The sweep that refunds charges without an order runs every five minutes
/// and may only read the event table: it never writes an event.
#[test]
fn payments_are_reconciled_on_a_schedule_by_a_function_that_only_reads_events() {
    let wiring = wiring();
    let scheduled: Vec<(String, Vec<String>)> =
        wiring.functions.iter().filter(|f| !f.schedules.is_empty()).map(|f| (f.name.clone(), f.schedules.clone())).collect();
    assert_eq!(scheduled, vec![("reconcile-payments".to_owned(), vec!["rate(5 minutes)".to_owned()])]);
    let template: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repository().join("template.yaml")).expect("readable")).expect("yaml");
    let function = wiring.functions.iter().find(|f| f.name == "reconcile-payments").expect("reconcile-payments");
    let policies = &template["Resources"][function.logical_id.as_str()]["Properties"]["Policies"];
    let statements: Vec<&serde_yaml::Value> =
        policies.as_sequence().expect("policies").iter().flat_map(|p| p["Statement"].as_sequence().into_iter().flatten()).collect();
    let actions: BTreeSet<&str> =
        statements.iter().flat_map(|s| s["Action"].as_sequence().into_iter().flatten()).filter_map(|a| a.as_str()).collect();
    assert_eq!(actions, BTreeSet::from(["dynamodb:GetItem", "dynamodb:Query"]), "reads, never writes");
    for statement in statements {
        let resource = serde_yaml::to_string(&statement["Resource"]).expect("a resource serializes");
        assert_eq!(resource.trim(), "!GetAtt EventTable.Arn", "the event table and nothing else");
    }
}

#[test]
fn exactly_one_function_reads_the_event_stream() {
    let readers: Vec<String> = wiring().functions.into_iter().filter(|f| f.reads_stream).map(|f| f.name).collect();
    assert_eq!(readers, vec!["publish-events".to_owned()]);
}

#[test]
fn every_policy_rule_retries_and_dead_letters() {
    let template: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repository().join("template.yaml")).expect("readable")).expect("yaml");
    let resources = template["Resources"].as_mapping().expect("resources");
    for (name, resource) in resources {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else { continue };
        for (_, event) in events {
            if event["Type"].as_str() == Some("EventBridgeRule") {
                let properties = &event["Properties"];
                assert!(properties["RetryPolicy"]["MaximumRetryAttempts"].as_u64().is_some(), "{name:?} has no retry policy");
                assert!(!properties["DeadLetterConfig"]["Arn"].is_null(), "{name:?} has no dead-letter queue");
            }
            if event["Type"].as_str() == Some("DynamoDB") {
                let properties = &event["Properties"];
                assert_eq!(properties["BisectBatchOnFunctionError"].as_bool(), Some(true), "{name:?}");
                assert!(properties["MaximumRetryAttempts"].as_u64().is_some(), "{name:?}");
                assert!(properties["DestinationConfig"]["OnFailure"].is_mapping(), "{name:?}");
                let responses = properties["FunctionResponseTypes"].as_sequence().expect("response types");
                assert!(responses.iter().any(|t| t.as_str() == Some("ReportBatchItemFailures")), "{name:?}");
            }
        }
    }
}

/// Each statement's actions with the resource it names, of one function.
fn permissions(name: &str) -> BTreeSet<(String, String)> {
    let template: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repository().join("template.yaml")).expect("readable")).expect("yaml");
    let wiring = wiring();
    let function = wiring.functions.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("{name} is in the template"));
    let policies = &template["Resources"][function.logical_id.as_str()]["Properties"]["Policies"];
    let statements = policies.as_sequence().expect("policies").iter().flat_map(|p| p["Statement"].as_sequence().into_iter().flatten());
    let mut found = BTreeSet::new();
    for statement in statements {
        let resource = serde_yaml::to_string(&statement["Resource"]).expect("a resource serializes").trim().to_owned();
        for action in statement["Action"].as_sequence().into_iter().flatten().filter_map(|a| a.as_str()) {
            found.insert((action.to_owned(), resource.clone()));
        }
    }
    found
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter().map(|(action, resource)| (action.to_string(), resource.to_string())).collect()
}

/// The recovery functions are invoked by hand (nothing triggers them, as
/// `each_function_is_wired_to_what_its_handler_expects` holds) and may touch
/// only what they recover from and what they repair: a rebuild never writes
/// an event, a redrive never reads the store.
#[test]
fn the_recovery_functions_touch_only_what_they_recover_from_and_repair() {
    assert_eq!(
        permissions("rebuild-views"),
        pairs(&[
            ("dynamodb:Scan", "!GetAtt EventTable.Arn"),
            ("dynamodb:GetItem", "!GetAtt ViewTable.Arn"),
            ("dynamodb:PutItem", "!GetAtt ViewTable.Arn"),
        ])
    );
    assert_eq!(
        permissions("redrive-dead-letters"),
        pairs(&[
            ("sqs:ReceiveMessage", "!GetAtt EventDeadLetterQueue.Arn"),
            ("sqs:DeleteMessage", "!GetAtt EventDeadLetterQueue.Arn"),
            ("sqs:ChangeMessageVisibility", "!GetAtt EventDeadLetterQueue.Arn"),
            ("sqs:GetQueueAttributes", "!GetAtt EventDeadLetterQueue.Arn"),
            ("events:PutEvents", "!GetAtt EventBus.Arn"),
        ])
    );
    let template: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repository().join("template.yaml")).expect("readable")).expect("yaml");
    let variables = &template["Resources"]["RedriveDeadLettersFunction"]["Properties"]["Environment"]["Variables"];
    let queue = serde_yaml::to_string(&variables[functions::handlers::operations::DEAD_LETTER_QUEUE_URL]).expect("serializes");
    assert_eq!(queue.trim(), "!Ref EventDeadLetterQueue", "the redrive reads the rules' dead-letter queue");
}

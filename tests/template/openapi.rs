//! openapi.yaml describes the HTTP API the template wires: the same routes,
//! and refusals as problem+json, so clients and the fuzzer can rely on it.

use super::wiring;
use food_delivery::repository;
use serde_yaml::Value;
use std::collections::BTreeSet;

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];

fn openapi() -> Value {
    let text = std::fs::read_to_string(repository().join("openapi.yaml")).expect("openapi.yaml is readable");
    serde_yaml::from_str(&text).expect("openapi.yaml is YAML")
}

/// Follows a local `$ref` (`#/components/...`) until it reaches the object.
fn resolve<'a>(spec: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..10 {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else { return value };
        let pointer = reference.strip_prefix("#/").unwrap_or_else(|| panic!("only local references: {reference}"));
        value = pointer.split('/').fold(spec, |node, key| node.get(key).unwrap_or_else(|| panic!("{reference} resolves to nothing")));
    }
    panic!("a $ref chain too long")
}

/// Every operation as (`METHOD /path`, path item, operation).
fn operations(spec: &Value) -> Vec<(String, &Value, &Value)> {
    let paths = spec["paths"].as_mapping().expect("openapi.yaml has paths");
    let mut found = Vec::new();
    for (path, item) in paths {
        let path = path.as_str().expect("a path is text");
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                found.push((format!("{} {path}", method.to_ascii_uppercase()), item, operation));
            }
        }
    }
    found
}

/// The parameters of an operation, its path item's included, resolved.
fn parameters<'a>(spec: &'a Value, item: &'a Value, operation: &'a Value) -> Vec<&'a Value> {
    let listed = |node: &'a Value| node.get("parameters").and_then(Value::as_sequence).into_iter().flatten();
    listed(item).chain(listed(operation)).map(|parameter| resolve(spec, parameter)).collect()
}

#[test]
fn openapi_describes_exactly_the_routes_of_the_template() {
    let spec = openapi();
    let version = spec["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3."), "an OpenAPI 3 document, not {version:?}");
    let described: Vec<String> = operations(&spec).into_iter().map(|(key, _, _)| key).collect();
    let described: BTreeSet<String> = described.into_iter().collect();
    let routed: BTreeSet<String> = wiring().functions.iter().flat_map(|f| f.routes.iter().map(|r| r.key())).collect();
    let missing: Vec<&String> = routed.difference(&described).collect();
    let extra: Vec<&String> = described.difference(&routed).collect();
    assert!(missing.is_empty() && extra.is_empty(), "routed but not described: {missing:?}; described but not routed: {extra:?}");
}

#[test]
fn every_operation_refuses_with_problem_json() {
    let spec = openapi();
    for (key, _, operation) in operations(&spec) {
        let responses = operation["responses"].as_mapping().unwrap_or_else(|| panic!("{key} has no responses"));
        let refusals: Vec<(&str, &Value)> = responses
            .iter()
            .filter_map(|(status, response)| Some((status.as_str()?, response)))
            .filter(|(s, _)| s.starts_with('4'))
            .collect();
        assert!(!refusals.is_empty(), "{key} declares no 4xx response");
        for (status, response) in refusals {
            let content = resolve(&spec, response)["content"].as_mapping().unwrap_or_else(|| panic!("{key} {status} has no content"));
            let types: Vec<&str> = content.keys().filter_map(Value::as_str).collect();
            assert_eq!(types, ["application/problem+json"], "{key} {status} is a problem");
            let schema = &content[&Value::from("application/problem+json")]["schema"];
            assert_eq!(schema["$ref"].as_str(), Some("#/components/schemas/Problem"), "{key} {status} uses the one Problem schema");
        }
        for status in ["401", "403"] {
            assert!(responses.contains_key(status), "every route is authorized, so {key} declares {status}");
        }
    }
    let problem = &spec["components"]["schemas"]["Problem"];
    let required: BTreeSet<&str> =
        problem["required"].as_sequence().expect("Problem lists its fields").iter().filter_map(Value::as_str).collect();
    assert_eq!(required, BTreeSet::from(["type", "title", "status", "detail"]), "what http::Problem sends");
}

#[test]
fn every_path_parameter_is_declared_and_every_write_takes_an_idempotency_key() {
    let spec = openapi();
    for (key, item, operation) in operations(&spec) {
        let parameters = parameters(&spec, item, operation);
        let named = |place: &str| -> BTreeSet<String> {
            parameters.iter().filter(|p| p["in"].as_str() == Some(place)).filter_map(|p| p["name"].as_str().map(str::to_owned)).collect()
        };
        let templated: BTreeSet<String> =
            key.split('/').filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).map(str::to_owned).collect();
        assert_eq!(named("path"), templated, "{key} declares its path parameters");
        let writes = key.starts_with("POST ") || key.starts_with("PUT ");
        assert_eq!(named("header").contains("Idempotency-Key"), writes, "{key}: Idempotency-Key on every POST and PUT, and only there");
        assert!(operation.get("security").is_none_or(|s| s.as_sequence().is_some_and(|s| !s.is_empty())), "{key} is not public");
    }
    assert_eq!(spec["components"]["securitySchemes"]["cognito"]["scheme"].as_str(), Some("bearer"));
    assert_eq!(spec["security"][0]["cognito"].as_sequence().map(Vec::len), Some(0), "every operation needs the bearer token");
}

#[test]
fn every_request_body_refuses_unknown_fields_like_the_handlers() {
    let spec = openapi();
    let mut bodies = 0;
    for (key, _, operation) in operations(&spec) {
        let Some(body) = operation.get("requestBody") else { continue };
        bodies += 1;
        let content = resolve(&spec, body)["content"].as_mapping().unwrap_or_else(|| panic!("{key} body has no content"));
        let types: Vec<&str> = content.keys().filter_map(Value::as_str).collect();
        assert_eq!(types, ["application/json"], "{key} takes JSON");
        // Walk every object schema the body can contain.
        let mut pending = vec![resolve(&spec, &content[&Value::from("application/json")]["schema"])];
        while let Some(schema) = pending.pop() {
            if let Some(properties) = schema.get("properties").and_then(Value::as_mapping) {
                assert_eq!(schema["additionalProperties"].as_bool(), Some(false), "{key}: an object in the body allows unknown fields");
                pending.extend(properties.values().map(|p| resolve(&spec, p)));
            }
            if let Some(items) = schema.get("items") {
                pending.push(resolve(&spec, items));
            }
        }
        for status in ["400", "413", "415"] {
            assert!(operation["responses"].get(status).is_some(), "{key} takes a body, so it declares {status}");
        }
    }
    assert_eq!(bodies, 5, "register-store, change-menu, place-order, reject-order and report-accident take bodies");
}

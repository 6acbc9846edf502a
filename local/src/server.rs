//! The HTTP side: API Gateway's HTTP API as the functions see it, plus a few
//! `/local/*` conveniences that exist only here.

use crate::bus::{LocalBus, ReplayError, dead_letters};
use crate::template::{Route, Wiring};
use crate::token::{TokenIssuer, bearer};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body as LambdaBody;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::{DateTime, Utc};
use functions::Deps;
use functions::embedded::Database;
use functions::http::Problem;
use functions::registry::{self, Handler, HttpHandler};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// API Gateway's own payload limit.
const MAX_PAYLOAD: usize = 10 * 1024 * 1024;
pub const TOKEN_TTL_SECONDS: i64 = 12 * 3600;

struct Endpoint {
    function: String,
    handler: HttpHandler,
    route: Route,
    segments: Vec<String>,
}

pub struct Api {
    deps: Deps,
    database: Arc<Database>,
    bus: Arc<LocalBus>,
    issuer: TokenIssuer,
    endpoints: Vec<Endpoint>,
}

impl Api {
    pub fn new(deps: Deps, database: Arc<Database>, bus: Arc<LocalBus>, issuer: TokenIssuer, wiring: &Wiring) -> Result<Api, String> {
        let mut endpoints = Vec::new();
        for function in &wiring.functions {
            for route in &function.routes {
                let Some(Handler::Http(handler)) = registry::handler(&function.name) else {
                    return Err(format!("{} serves {} but is not an HTTP function", function.name, route.key()));
                };
                let segments = route.path.split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect();
                endpoints.push(Endpoint { function: function.name.clone(), handler, route: route.clone(), segments });
            }
        }
        Ok(Api { deps, database, bus, issuer, endpoints })
    }
}

pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/local/token", post(issue_token))
        .route("/local/notifications", get(notifications))
        .route("/local/dead-letters", get(list_dead_letters))
        .route("/local/dead-letters/redrive", post(redrive_dead_letters))
        .route("/local/replay", post(replay))
        .route("/local/rebuild", post(rebuild))
        .route("/local/health", get(|| async { axum::Json(json!({ "status": "ok" })) }))
        .fallback(gateway)
        .with_state(api)
}

fn problem(status: u16, detail: impl Into<String>) -> Response {
    lambda_response(Problem::new(status, detail).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TokenRequest {
    sub: String,
    role: String,
    ttl_seconds: Option<i64>,
}

/// `POST /local/token {sub, role}`: a signed token, for local use only.
async fn issue_token(State(api): State<Arc<Api>>, body: Body) -> Response {
    let Ok(bytes) = to_bytes(body, 64 * 1024).await else { return problem(413, "the body is too large") };
    let request: TokenRequest = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(error) => return problem(400, format!("expected {{\"sub\", \"role\"}}: {error}")),
    };
    if request.sub.trim().is_empty() {
        return problem(400, "sub must not be empty");
    }
    if !matches!(request.role.as_str(), "customer" | "owner" | "rider") {
        return problem(400, "role must be customer, owner or rider");
    }
    let ttl = request.ttl_seconds.unwrap_or(TOKEN_TTL_SECONDS);
    let now = Utc::now().timestamp();
    let token = api.issuer.issue(&request.sub, std::slice::from_ref(&request.role), now, ttl);
    axum::Json(json!({ "token": token, "sub": request.sub, "role": request.role, "expiresAt": now.saturating_add(ttl) })).into_response()
}

async fn notifications(State(api): State<Arc<Api>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let Some(customer_id) = query.get("customerId").filter(|id| !id.is_empty()) else {
        return problem(400, "query parameter customerId is required");
    };
    match api.database.notifications(customer_id) {
        Ok(sent) => axum::Json(json!({ "customerId": customer_id, "notifications": sent })).into_response(),
        Err(error) => problem(503, error.to_string()),
    }
}

async fn list_dead_letters(State(api): State<Arc<Api>>) -> Response {
    match dead_letters(&api.database) {
        Ok(letters) => axum::Json(json!({ "deadLetters": letters })).into_response(),
        Err(error) => problem(503, error.to_string()),
    }
}

/// `POST /local/dead-letters/redrive`: every dead letter back to its
/// consumer, once the cause is fixed.
async fn redrive_dead_letters(State(api): State<Arc<Api>>) -> Response {
    match api.bus.redrive().await {
        Ok(redriven) => axum::Json(redriven).into_response(),
        Err(error) => problem(503, error.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    since: DateTime<Utc>,
}

/// `POST /local/replay {"since": "<RFC 3339>"}`: every stored event of that
/// time or later, delivered again to every rule that matches it.
async fn replay(State(api): State<Arc<Api>>, body: Body) -> Response {
    let request: ReplayRequest = match json_body(body, r#"{"since": "2026-01-01T00:00:00Z"}"#, None).await {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    match api.bus.replay(api.deps.events.as_ref(), request.since).await {
        Ok(replayed) => axum::Json(replayed).into_response(),
        Err(error @ ReplayError::Refused(_)) => problem(422, error.to_string()),
        Err(error) => problem(503, error.to_string()),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RebuildRequest {
    #[serde(default)]
    views: Vec<String>,
}

/// `POST /local/rebuild {"views": [...]}` (no body or no views: all of them):
/// the views folded afresh from the event store.
async fn rebuild(State(api): State<Arc<Api>>, body: Body) -> Response {
    let request: RebuildRequest = match json_body(body, r#"{"views": ["order-status"]}"#, Some(RebuildRequest::default())).await {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    match functions::rebuild::rebuild(&api.deps, &request.views).await {
        Ok(report) => axum::Json(report).into_response(),
        Err(error @ functions::rebuild::RebuildError::UnknownView(_)) => problem(400, error.to_string()),
        Err(error) => problem(503, error.to_string()),
    }
}

/// A small JSON body; an empty one is `empty`, if the request has a default.
async fn json_body<T: serde::de::DeserializeOwned>(body: Body, shape: &str, empty: Option<T>) -> Result<T, Response> {
    let Ok(bytes) = to_bytes(body, 64 * 1024).await else { return Err(problem(413, "the body is too large")) };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return empty.ok_or_else(|| problem(400, format!("expected {shape}")));
    }
    serde_json::from_slice(&bytes).map_err(|error| problem(400, format!("expected {shape}: {error}")))
}

/// Matches a path against the template's routes, like API Gateway does:
/// literal segments first would matter only with overlapping routes, which
/// the template does not have.
fn find<'a>(api: &'a Api, method: &Method, path: &str) -> Result<(&'a Endpoint, HashMap<String, String>), u16> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut path_matched = false;
    for endpoint in &api.endpoints {
        if endpoint.segments.len() != segments.len() {
            continue;
        }
        let mut parameters = HashMap::new();
        let matched = endpoint.segments.iter().zip(&segments).all(|(pattern, actual)| {
            match pattern.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => {
                    parameters.insert(name.to_owned(), percent_decode(actual));
                    true
                }
                None => pattern == actual,
            }
        });
        if !matched {
            continue;
        }
        path_matched = true;
        if endpoint.route.method == method.as_str() {
            return Ok((endpoint, parameters));
        }
    }
    Err(if path_matched { 405 } else { 404 })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every API route: authorize like the JWT authorizer, then invoke the
/// route's function with the API Gateway v2 event it would get on AWS.
async fn gateway(State(api): State<Arc<Api>>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let (endpoint, path_parameters) = match find(&api, &method, uri.path()) {
        Ok(found) => found,
        Err(405) => return problem(405, format!("{method} is not allowed on {}", uri.path())),
        Err(_) => return problem(404, format!("no route {method} {}", uri.path())),
    };
    let claims = match headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).and_then(bearer) {
        None => return problem(401, "a bearer token is required"),
        Some(token) => match api.issuer.verify(token, Utc::now().timestamp()) {
            Ok(claims) => TokenIssuer::authorizer_claims(&claims),
            Err(error) => return problem(401, format!("the token is not valid: {error}")),
        },
    };
    let bytes = match to_bytes(body, MAX_PAYLOAD).await {
        Ok(bytes) => bytes,
        Err(_) => return problem(413, format!("the body must be at most {MAX_PAYLOAD} bytes")),
    };
    let (body, is_base64) = match std::str::from_utf8(&bytes) {
        _ if bytes.is_empty() => (Value::Null, false),
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => (Value::String(base64::engine::general_purpose::STANDARD.encode(&bytes)), true),
    };
    let event = gateway_event(endpoint, &method, &uri, &headers, path_parameters, claims, body, is_base64);
    let request: ApiGatewayV2httpRequest = match serde_json::from_value(event) {
        Ok(request) => request,
        Err(error) => return problem(400, format!("the request cannot be passed on: {error}")),
    };
    let response = registry::invoke_http(&endpoint.function, endpoint.handler, &api.deps, request).await;
    lambda_response(response)
}

#[allow(clippy::too_many_arguments)]
fn gateway_event(
    endpoint: &Endpoint,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    path_parameters: HashMap<String, String>,
    claims: HashMap<String, String>,
    body: Value,
    is_base64: bool,
) -> Value {
    // API Gateway lower-cases header names and joins repeated ones with commas.
    let mut header_map: HashMap<String, String> = HashMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        header_map.entry(name.as_str().to_ascii_lowercase()).and_modify(|v| *v = format!("{v},{value}")).or_insert(value);
    }
    let mut query: HashMap<String, String> = HashMap::new();
    for (name, value) in form_pairs(uri.query().unwrap_or("")) {
        query.entry(name).and_modify(|v| *v = format!("{v},{value}")).or_insert(value);
    }
    let now = Utc::now();
    let route_key = endpoint.route.key();
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": uri.path(),
        "rawQueryString": uri.query().unwrap_or(""),
        "headers": header_map,
        "queryStringParameters": if query.is_empty() { Value::Null } else { json!(query) },
        "pathParameters": if path_parameters.is_empty() { Value::Null } else { json!(path_parameters) },
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method.as_str(),
                "path": uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or(""),
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
            "authorizer": { "jwt": { "claims": claims, "scopes": null } },
        },
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(&name.replace('+', " ")), percent_decode(&value.replace('+', " ")))
        })
        .collect()
}

fn lambda_response(response: functions::http::Response) -> Response {
    let status = StatusCode::from_u16(u16::try_from(response.status_code).unwrap_or(500)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match response.body {
        Some(LambdaBody::Text(text)) => Body::from(text),
        Some(LambdaBody::Binary(bytes)) => Body::from(bytes),
        _ => Body::empty(),
    };
    let mut out = Response::new(body);
    *out.status_mut() = status;
    for (name, value) in &response.headers {
        out.headers_mut().insert(name.clone(), value.clone());
    }
    out
}

//! The HTTP side: API Gateway's HTTP API as the functions see it, plus a few
//! `/local/*` conveniences that exist only here.

use crate::bus::{LocalBus, ReplayError, dead_letters};
use crate::template::{Route, Wiring};
use crate::token::{TokenIssuer, bearer};
use aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription, ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
    ApiGatewayV2httpRequestContextHttpDescription,
};
use aws_lambda_events::encodings::Body as LambdaBody;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::{DateTime, Utc};
use functions::Deps;
use functions::embedded::Database;
use functions::http::Problem;
use functions::registry::{self, Handler, HttpHandler};
use serde::Deserialize;
use serde_json::json;
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
fn find<'a>(endpoints: &'a [Endpoint], method: &Method, path: &str) -> Result<(&'a Endpoint, HashMap<String, String>), u16> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let parameter = |pattern: &'a str| pattern.strip_prefix('{').and_then(|p| p.strip_suffix('}'));
    let mut path_matched = false;
    for endpoint in endpoints {
        let matched = endpoint.segments.len() == segments.len()
            && endpoint.segments.iter().zip(&segments).all(|(pattern, actual)| parameter(pattern).is_some() || pattern == actual);
        if !matched {
            continue;
        }
        path_matched = true;
        if endpoint.route.method == method.as_str() {
            let parameters = endpoint
                .segments
                .iter()
                .zip(&segments)
                .filter_map(|(pattern, actual)| Some((parameter(pattern)?.to_owned(), percent_decode(actual))))
                .collect();
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
    let (endpoint, path_parameters) = match find(&api.endpoints, &method, uri.path()) {
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
        _ if bytes.is_empty() => (None, false),
        Ok(text) => (Some(text.to_owned()), false),
        Err(_) => (Some(base64::engine::general_purpose::STANDARD.encode(&bytes)), true),
    };
    let request = gateway_request(endpoint, &method, &uri, &headers, path_parameters, claims, body, is_base64);
    let response = registry::invoke_http(&endpoint.function, endpoint.handler, &api.deps, request).await;
    lambda_response(response)
}

/// The API Gateway v2 (payload format 2.0) request a function gets on AWS,
/// built as the struct the function decodes it into, not as JSON to be
/// parsed again: this is on every request's path.
#[allow(clippy::too_many_arguments)]
fn gateway_request(
    endpoint: &Endpoint,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    path_parameters: HashMap<String, String>,
    claims: HashMap<String, String>,
    body: Option<String>,
    is_base64: bool,
) -> ApiGatewayV2httpRequest {
    // API Gateway joins repeated headers with commas (names are lower-case
    // already).
    let mut joined = HeaderMap::with_capacity(headers.keys_len());
    for name in headers.keys() {
        let mut values = headers.get_all(name).iter();
        let Some(first) = values.next() else { continue };
        let mut value = first.clone();
        for next in values {
            let bytes = [value.as_bytes(), b",", next.as_bytes()].concat();
            value = HeaderValue::from_bytes(&bytes).unwrap_or(value);
        }
        joined.insert(name.clone(), value);
    }
    // Repeated parameters reach the function as API Gateway's comma-joined
    // value, which its request type splits into a list again.
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in form_pairs(uri.query().unwrap_or("")) {
        query.entry(name).or_default().extend(value.split(',').map(str::to_owned));
    }
    let now = Utc::now();
    let route_key = endpoint.route.key();

    let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
    jwt.claims = claims;
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.jwt = Some(jwt);
    let mut http = ApiGatewayV2httpRequestContextHttpDescription::default();
    http.method = method.clone();
    http.path = Some(uri.path().to_owned());
    http.protocol = Some("HTTP/1.1".into());
    http.source_ip = Some("127.0.0.1".into());
    http.user_agent = Some(headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned());
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route_key.clone());
    context.account_id = Some("000000000000".into());
    context.stage = Some("$default".into());
    context.request_id = Some(uuid::Uuid::new_v4().to_string());
    context.authorizer = Some(authorizer);
    context.apiid = Some("local".into());
    context.domain_name = Some("localhost".into());
    context.domain_prefix = Some("localhost".into());
    context.time = Some(now.format("%d/%b/%Y:%H:%M:%S %z").to_string());
    context.time_epoch = now.timestamp_millis();
    context.http = http;

    let mut request = ApiGatewayV2httpRequest::default();
    request.version = Some("2.0".into());
    request.route_key = Some(route_key);
    request.raw_path = Some(uri.path().to_owned());
    request.raw_query_string = Some(uri.query().unwrap_or("").to_owned());
    request.headers = joined;
    request.query_string_parameters = query.into();
    request.path_parameters = path_parameters;
    request.request_context = context;
    request.body = body;
    request.is_base64_encoded = is_base64;
    request
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

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        let Some(Handler::Http(handler)) = registry::handler("queries") else { panic!("queries is an HTTP function") };
        let route = Route { method: "GET".into(), path: "/orders/{orderId}".into() };
        Endpoint { function: "queries".into(), handler, segments: vec!["orders".into(), "{orderId}".into()], route }
    }

    #[test]
    fn a_path_finds_its_route_and_its_decoded_parameters_like_api_gateway() {
        let (orders, mut cancel) = (endpoint(), endpoint());
        cancel.route = Route { method: "POST".into(), path: "/orders/{orderId}/cancel".into() };
        cancel.segments = vec!["orders".into(), "{orderId}".into(), "cancel".into()];
        let endpoints = [orders, cancel];

        let (found, parameters) = find(&endpoints, &Method::POST, "/orders/o%201/cancel").unwrap();
        assert_eq!(found.route.path, "/orders/{orderId}/cancel");
        assert_eq!(parameters, HashMap::from([("orderId".to_owned(), "o 1".to_owned())]));
        let (found, parameters) = find(&endpoints, &Method::GET, "/orders/o2/").unwrap();
        assert_eq!(found.route.path, "/orders/{orderId}");
        assert_eq!(parameters["orderId"], "o2");
        assert_eq!(find(&endpoints, &Method::DELETE, "/orders/o2").err(), Some(405), "the path is known, the method is not");
        assert_eq!(find(&endpoints, &Method::POST, "/orders/o2/eat").err(), Some(404));
        assert_eq!(find(&endpoints, &Method::GET, "/orders").err(), Some(404));
    }

    #[test]
    fn the_request_is_what_api_gateway_sends_and_reads_back_the_same_from_json() {
        let uri: Uri = "/orders/o%201?tag=a&tag=b+c&empty=".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.append("x-trace", HeaderValue::from_static("one"));
        headers.append("x-trace", HeaderValue::from_static("two"));
        headers.insert(header::USER_AGENT, HeaderValue::from_static("curl/8"));
        // What `find` matched for this path.
        let parameters = HashMap::from([("orderId".to_owned(), "o 1".to_owned())]);
        let claims = HashMap::from([("sub".to_owned(), "alice".to_owned())]);
        let request = gateway_request(&endpoint(), &Method::GET, &uri, &headers, parameters, claims, Some("{}".into()), false);

        assert_eq!(request.route_key.as_deref(), Some("GET /orders/{orderId}"));
        assert_eq!(request.request_context.route_key.as_deref(), Some("GET /orders/{orderId}"));
        assert_eq!(request.request_context.http.method, Method::GET);
        assert_eq!(request.request_context.http.user_agent.as_deref(), Some("curl/8"));
        assert_eq!(request.path_parameters.get("orderId").map(String::as_str), Some("o 1"));
        assert_eq!(request.headers.get("x-trace").map(HeaderValue::as_bytes), Some(&b"one,two"[..]));
        assert_eq!(request.query_string_parameters.all("tag"), Some(vec!["a", "b c"]));
        assert_eq!(request.query_string_parameters.first("empty"), Some(""));
        let claims = request.request_context.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).map(|jwt| &jwt.claims);
        assert_eq!(claims.and_then(|c| c.get("sub")).map(String::as_str), Some("alice"));

        // On AWS the function reads the same request from JSON.
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["requestContext"]["authorizer"]["jwt"]["claims"]["sub"], "alice");
        assert_eq!(json["requestContext"]["http"]["method"], "GET");
        let read: ApiGatewayV2httpRequest = serde_json::from_value(json).unwrap();
        assert_eq!(read, request);
    }
}

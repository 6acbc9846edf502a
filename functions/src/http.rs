//! API Gateway HTTP API glue: who is calling, what they sent, and how an
//! answer or a refusal (RFC 9457 problem+json) goes back.

use crate::command::CommandError;
use crate::ports::{PaymentError, StoreError, ViewError};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use chrono::Utc;
use domain::{DomainError, Metadata};
use http::header::{CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub type Request = ApiGatewayV2httpRequest;
pub type Response = ApiGatewayV2httpResponse;

/// Request bodies are small JSON documents; anything bigger is refused unread.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A refusal as the client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub status: u16,
    pub detail: String,
    pub retry_after: Option<u32>,
}

impl Problem {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        Problem { status, detail: detail.into(), retry_after: None }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, detail)
    }
    pub fn unavailable(detail: impl Into<String>, retry_after: u32) -> Self {
        Problem { status: 503, detail: detail.into(), retry_after: Some(retry_after) }
    }

    pub fn title(&self) -> &'static str {
        match self.status {
            400 => "Bad Request",
            401 => "Unauthorized",
            402 => "Payment Required",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            409 => "Conflict",
            413 => "Content Too Large",
            415 => "Unsupported Media Type",
            422 => "Unprocessable Content",
            503 => "Service Unavailable",
            _ => "Internal Server Error",
        }
    }

    pub fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": "about:blank",
            "title": self.title(),
            "status": self.status,
            "detail": self.detail,
        });
        let mut response = json(self.status, &body);
        response.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = self.retry_after {
            response.headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<DomainError> for Problem {
    fn from(error: DomainError) -> Self {
        let status = match &error {
            DomainError::Invalid(_) => 400,
            DomainError::Forbidden(_) => 403,
            DomainError::NotFound(_) => 404,
            DomainError::Conflict(_) => 409,
        };
        Problem::new(status, error.to_string())
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "event store failed");
        match error {
            StoreError::Unavailable(_) | StoreError::Conflict(_) => Problem::unavailable("storage is busy; try again shortly", 1),
            StoreError::Refused(_) | StoreError::Corrupt(_) => Problem::new(500, "the order could not be processed"),
        }
    }
}

impl From<ViewError> for Problem {
    fn from(error: ViewError) -> Self {
        tracing::error!(%error, "view store failed");
        Problem::unavailable("read models are unavailable; try again shortly", 1)
    }
}

impl From<CommandError> for Problem {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Domain(error) => error.into(),
            CommandError::Store(error) => error.into(),
            // The whole message: the variant holds only the aggregate's name.
            error @ CommandError::Contended(_) => Problem::new(409, error.to_string()),
        }
    }
}

impl From<PaymentError> for Problem {
    fn from(error: PaymentError) -> Self {
        match error {
            PaymentError::Declined(reason) => Problem::new(402, format!("the payment was declined: {reason}")),
            PaymentError::Unavailable(reason) => {
                tracing::warn!(%reason, "payment processor unavailable");
                Problem::unavailable("payments are unavailable right now: nothing was charged, please pay again shortly", 5)
            }
            PaymentError::TimedOut(reason) => {
                tracing::warn!(%reason, "payment processor timed out");
                Problem::unavailable(
                    "the card processor did not answer in time: the order was not placed, any charge taken for it is refunded \
                     automatically; please pay again shortly",
                    5,
                )
            }
            // No call was made: the breaker is open after repeated failures.
            PaymentError::CircuitOpen { retry_after_seconds } => Problem::unavailable(
                format!("payments are paused for a moment: nothing was charged, please pay again in {retry_after_seconds} seconds"),
                retry_after_seconds,
            ),
        }
    }
}

/// Turns a handler's outcome into what API Gateway sends back.
pub fn respond(outcome: Result<Response, Problem>) -> Response {
    outcome.unwrap_or_else(|problem| {
        if problem.status >= 500 {
            tracing::error!(status = problem.status, detail = %problem.detail, "request failed");
        } else {
            tracing::info!(status = problem.status, detail = %problem.detail, "request refused");
        }
        problem.into_response()
    })
}

pub fn json<T: Serialize>(status: u16, body: &T) -> Response {
    let mut response = Response::default();
    response.status_code = i64::from(status);
    response.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Serializing our own response types cannot fail; an empty body would
    // still be an honest answer if it somehow did.
    response.body = Some(Body::Text(serde_json::to_string(body).unwrap_or_default()));
    response
}

pub fn created<T: Serialize>(location: &str, body: &T) -> Response {
    let mut response = json(201, body);
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers.insert(LOCATION, location);
    }
    response
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Owner,
    Rider,
}

/// The authenticated caller, from the claims the JWT authorizer verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub id: String,
    pub role: Role,
}

impl Caller {
    pub fn require(&self, role: Role) -> Result<(), Problem> {
        if self.role == role { Ok(()) } else { Err(Problem::forbidden(format!("only a {} may do this", role_word(role)))) }
    }
}

fn role_word(role: Role) -> &'static str {
    match role {
        Role::Customer => "customer",
        Role::Owner => "store owner",
        Role::Rider => "rider",
    }
}

/// Reads `sub` and the role from `cognito:groups`, which API Gateway passes
/// as text such as `[owner]` (or `owner` for a single group).
pub fn caller(request: &Request) -> Result<Caller, Problem> {
    let unauthorized = || Problem::new(401, "a valid bearer token is required");
    let claims = request
        .request_context
        .authorizer
        .as_ref()
        .and_then(|authorizer| authorizer.jwt.as_ref())
        .map(|jwt| &jwt.claims)
        .ok_or_else(unauthorized)?;
    let id = claims.get("sub").filter(|sub| !sub.is_empty()).ok_or_else(unauthorized)?.clone();
    // Only a whole group name is a role: Cognito names hold no whitespace but
    // may hold punctuation, and `suspended:owner` is not the owner group.
    let groups = claims.get("cognito:groups").map(String::as_str).unwrap_or("").trim();
    let listed = groups.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).unwrap_or(groups);
    let role = listed
        .split_whitespace()
        .find_map(|group| match group {
            "customer" => Some(Role::Customer),
            "owner" => Some(Role::Owner),
            "rider" => Some(Role::Rider),
            _ => None,
        })
        .ok_or_else(|| Problem::forbidden("the token carries no customer, owner or rider group"))?;
    Ok(Caller { id, role })
}

/// Ids are ours (`store-` or `order-` and a UUID); a longer one names nothing
/// and, on AWS, would exceed DynamoDB's key size and fail as a 500.
pub const MAX_ID_LEN: usize = 128;

pub fn path<'a>(request: &'a Request, name: &str) -> Result<&'a str, Problem> {
    let value = request
        .path_parameters
        .get(name)
        .map(String::as_str)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| Problem::bad_request(format!("path parameter {name} is missing")))?;
    if value.len() > MAX_ID_LEN {
        return Err(Problem::bad_request(format!("path parameter {name} must be at most {MAX_ID_LEN} bytes")));
    }
    Ok(value)
}

pub fn query<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.query_string_parameters.first(name).filter(|value| !value.is_empty())
}

/// Parses the JSON body into `T`; unknown fields, wrong types and missing
/// fields are refused with serde's own precise message.
pub fn body<T: DeserializeOwned>(request: &Request) -> Result<T, Problem> {
    let content_type = request.headers.get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if media_type != "application/json" && !media_type.ends_with("+json") {
        return Err(Problem::new(415, "send the body as application/json"));
    }
    let raw = request.body.as_deref().unwrap_or("");
    if raw.len() > MAX_BODY_BYTES * 4 / 3 + 4 {
        return Err(Problem::new(413, format!("the body must be at most {MAX_BODY_BYTES} bytes")));
    }
    let bytes = if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD.decode(raw).map_err(|_| Problem::bad_request("the body is not valid base64"))?
    } else {
        raw.as_bytes().to_vec()
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Problem::new(413, format!("the body must be at most {MAX_BODY_BYTES} bytes")));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::bad_request("a JSON body is required"));
    }
    serde_json::from_slice(&bytes).map_err(|e| Problem::bad_request(format!("invalid body: {e}")))
}

/// Correlation and causation for the events a request causes: the request id
/// is the command id.
pub fn metadata(request: &Request, correlation_id: &str) -> Metadata {
    let request_id = request.request_context.request_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    crate::logging::correlate(correlation_id);
    Metadata { correlation_id: correlation_id.to_owned(), causation_id: format!("request/{request_id}"), time: Utc::now() }
}

/// A fresh identifier: a short prefix saying what it names, then a UUID.
/// Version 7: it starts with the time, so the rows of the orders in flight
/// sit side by side at the end of every index instead of one page each
/// anywhere in it (on SQLite; DynamoDB hashes keys whatever they are).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

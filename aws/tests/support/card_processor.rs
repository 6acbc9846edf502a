//! The HTTP card processor adapter against the payment gateway contract: a
//! small axum server speaks the card processor's protocol (see
//! `aws_adapters::card_processor`) over the simulated processor, and the
//! adapter is pointed at it. The server names each charge by its
//! `Idempotency-Key`, so the contract's idempotency rules hold only if the
//! adapter sends the order id as the key.

use aws_adapters::card_processor::{CardProcessorError, HttpCardProcessor};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::{CustomerId, Money, OrderId};
use functions::embedded::{SimulatedProcessor, SimulatorSettings};
use ports::contract::{self, TestTokens};
use ports::{BoxFuture, ChargeRequest, PaymentError, PaymentGateway};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const API_KEY: &str = "sk_test_contract";

/// The processor on a local port, stopped when dropped.
struct Served {
    url: String,
    ledger: Arc<SimulatedProcessor>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(settings: SimulatorSettings) -> Served {
    let ledger = Arc::new(SimulatedProcessor::new(settings));
    let app = Router::new()
        .route("/v1/charges", post(charge).get(list))
        .route("/v1/charges/{charge_id}/refunds", post(refund))
        .with_state(ledger.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a local port");
    let url = format!("http://{}", listener.local_addr().expect("the bound address"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Served { url, ledger, task }
}

type Ledger = State<Arc<SimulatedProcessor>>;

fn refused(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": { "message": message } }))).into_response()
}

fn authorized(headers: &HeaderMap) -> Result<(), Response> {
    let bearer = headers.get("authorization").and_then(|value| value.to_str().ok());
    if bearer == Some(&format!("Bearer {API_KEY}")) { Ok(()) } else { Err(refused(StatusCode::UNAUTHORIZED, "invalid API key")) }
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, Response> {
    let key = headers.get("idempotency-key").and_then(|value| value.to_str().ok()).filter(|key| !key.is_empty());
    key.map(str::to_owned).ok_or_else(|| refused(StatusCode::BAD_REQUEST, "Idempotency-Key is required"))
}

fn failure(error: PaymentError) -> Response {
    match error {
        PaymentError::Declined(message) => refused(StatusCode::PAYMENT_REQUIRED, &message),
        PaymentError::TimedOut(message) => refused(StatusCode::GATEWAY_TIMEOUT, &message),
        other => refused(StatusCode::SERVICE_UNAVAILABLE, &other.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewCharge {
    customer_id: String,
    token: String,
    amount: u64,
}

async fn charge(State(ledger): Ledger, headers: HeaderMap, Json(body): Json<NewCharge>) -> Result<Response, Response> {
    authorized(&headers)?;
    // The key, not the body, names the charge: that is what makes a retry safe.
    let request = ChargeRequest {
        order_id: OrderId(idempotency_key(&headers)?),
        customer_id: CustomerId(body.customer_id),
        token: body.token,
        amount: Money(body.amount),
    };
    let receipt = ledger.charge(&request).await.map_err(failure)?;
    let charge = json!({
        "id": receipt.charge_id,
        "orderId": request.order_id.0,
        "amount": body.amount,
        "created": Utc::now().timestamp_millis(),
        "refunded": false,
    });
    Ok(Json(charge).into_response())
}

#[derive(Deserialize)]
struct NewRefund {
    amount: u64,
}

async fn refund(
    State(ledger): Ledger,
    Path(charge_id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<NewRefund>,
) -> Result<Response, Response> {
    authorized(&headers)?;
    idempotency_key(&headers)?;
    match ledger.refund(&charge_id, Money(body.amount)).await {
        Ok(()) => Ok(Json(json!({ "id": format!("re_{charge_id}"), "chargeId": charge_id, "amount": body.amount })).into_response()),
        Err(PaymentError::Declined(message)) if message.starts_with("no charge") => Err(refused(StatusCode::NOT_FOUND, &message)),
        Err(PaymentError::Declined(message)) => Err(refused(StatusCode::BAD_REQUEST, &message)),
        Err(other) => Err(failure(other)),
    }
}

#[derive(Deserialize)]
struct Window {
    created_gte: i64,
    created_lt: i64,
    limit: usize,
    starting_after: Option<String>,
}

async fn list(State(ledger): Ledger, headers: HeaderMap, Query(window): Query<Window>) -> Result<Response, Response> {
    authorized(&headers)?;
    let time = |ms| DateTime::<Utc>::from_timestamp_millis(ms).ok_or_else(|| refused(StatusCode::BAD_REQUEST, "not a time"));
    let all = ledger.charges_between(time(window.created_gte)?, time(window.created_lt)?).await.map_err(failure)?;
    let start = match &window.starting_after {
        Some(after) => all.iter().position(|charge| &charge.charge_id == after).map_or(all.len(), |at| at + 1),
        None => 0,
    };
    let page: Vec<_> = all[start..]
        .iter()
        .take(window.limit)
        .map(|charge| {
            json!({
                "id": charge.charge_id,
                "orderId": charge.order_id.0,
                "amount": charge.amount.cents(),
                "created": charge.created_at.timestamp_millis(),
                "refunded": charge.refunded,
            })
        })
        .collect();
    let has_more = start + page.len() < all.len();
    Ok(Json(json!({ "data": page, "hasMore": has_more })).into_response())
}

fn adapter(url: &str, timeout: Duration) -> HttpCardProcessor {
    HttpCardProcessor::new(url, API_KEY, timeout).expect("the adapter builds")
}

fn request(token: &str) -> ChargeRequest {
    ChargeRequest {
        // Each test has a processor of its own.
        order_id: OrderId("order-1".into()),
        customer_id: CustomerId("customer-1".into()),
        token: token.into(),
        amount: Money(1250),
    }
}

#[tokio::test]
async fn the_http_card_processor_keeps_the_payment_contract() {
    let served = serve(SimulatorSettings::default()).await;
    // Pages of two, so listing a window pages through the charges.
    let gateway = adapter(&served.url, Duration::from_secs(5)).with_page_size(2);
    let ledger = served.ledger.clone();
    contract::payment_gateway(&gateway, TestTokens::SIMULATED, move |charge_id: &str| -> BoxFuture<'static, usize> {
        let refunds = usize::from(ledger.is_refunded(charge_id));
        Box::pin(async move { refunds })
    })
    .await;
}

#[tokio::test]
async fn a_wrong_api_key_is_the_processors_trouble_not_the_customers() {
    let served = serve(SimulatorSettings::default()).await;
    let gateway = HttpCardProcessor::new(&served.url, "sk_test_wrong", Duration::from_secs(5)).expect("the adapter builds");
    let outcome = gateway.charge(&request("tok_visa")).await;
    assert!(matches!(outcome, Err(PaymentError::Unavailable(_))), "401 is no declined card: {outcome:?}");
    assert_eq!(served.ledger.charge_count(), 0);
}

#[tokio::test]
async fn a_processor_error_is_unavailable() {
    let served = serve(SimulatorSettings::default()).await;
    let outcome = adapter(&served.url, Duration::from_secs(5)).charge(&request("tok_error")).await;
    assert!(matches!(outcome, Err(PaymentError::Unavailable(_))), "a 503 is the processor's trouble: {outcome:?}");
}

#[tokio::test]
async fn no_answer_within_the_timeout_is_timed_out() {
    let served = serve(SimulatorSettings { slow: Duration::from_secs(3), ..SimulatorSettings::default() }).await;
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let outcome = adapter(&served.url, timeout).charge(&request("tok_slow")).await;
    let took = started.elapsed();
    assert!(matches!(outcome, Err(PaymentError::TimedOut(_))), "{outcome:?}");
    assert!(took >= timeout && took < Duration::from_secs(2), "given up at the timeout: {took:?}");
}

#[tokio::test]
async fn a_processor_that_is_not_there_is_unavailable() {
    let address = std::net::TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free port");
    let outcome = adapter(&format!("http://{address}"), Duration::from_secs(2)).charge(&request("tok_visa")).await;
    assert!(matches!(outcome, Err(PaymentError::Unavailable(_))), "{outcome:?}");
}

#[test]
fn the_api_key_never_crosses_a_network_in_the_clear() {
    let build = |url: &str| HttpCardProcessor::new(url, API_KEY, Duration::from_secs(1));
    assert!(matches!(build("http://processor.example.com"), Err(CardProcessorError::Url(_))));
    assert!(matches!(build("processor.example.com"), Err(CardProcessorError::Url(_))));
    assert!(build("https://processor.example.com/").is_ok());
    assert!(build("http://127.0.0.1:9").is_ok(), "plain HTTP to this machine, for tests and a local processor");
    assert!(matches!(
        HttpCardProcessor::new("https://processor.example.com", "sk\nlive", Duration::from_secs(1)),
        Err(CardProcessorError::ApiKey)
    ));
}

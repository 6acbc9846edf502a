//! The production payment gateway: a card processor over HTTPS, speaking a
//! small Stripe-like JSON protocol.
//!
//! Every request carries `Authorization: Bearer <api key>`; bodies are JSON,
//! amounts are cents, times are Unix milliseconds.
//!
//! | request | answer |
//! |---|---|
//! | `POST {base}/v1/charges`, `Idempotency-Key: <order id>`, `{"orderId", "customerId", "token", "amount"}` | `200`/`201` a charge; `402` declined |
//! | `POST {base}/v1/charges/{chargeId}/refunds`, `Idempotency-Key: refund-<chargeId>`, `{"amount"}` | `200`/`201` `{"id", "chargeId", "amount"}`; `404` no such charge |
//! | `GET {base}/v1/charges?created_gte=<ms>&created_lt=<ms>&limit=<n>[&starting_after=<chargeId>]` | `200` `{"data": [charge, ...], "hasMore"}`, oldest first |
//!
//! A charge is `{"id", "orderId", "amount", "created", "refunded"}`. The
//! processor answers a repeated idempotency key with the first answer, so a
//! retried charge or refund never moves money twice. A refusal is
//! `{"error": {"message"}}`.
//!
//! 400, 402, 404, 409 and 422 refuse the request for good: `Declined`. 401,
//! 403, 429, any 5xx and a failed connection are the processor's trouble (or
//! our configuration's): `Unavailable`. No answer within the timeout is
//! `TimedOut`. The circuit breaker counts both.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use domain::{Money, OrderId};
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ports::{ChargeReceipt, ChargeRecord, ChargeRequest, PaymentError, PaymentGateway};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::Duration;
use thiserror::Error;

/// Answers are small JSON documents; a bigger one is refused unread.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

#[derive(Debug, Error)]
pub enum CardProcessorError {
    #[error("the card processor URL {0:?} must be https:// (or http:// to this machine)")]
    Url(String),
    #[error("the card processor API key cannot be sent in a header")]
    ApiKey,
    #[error("no trusted root certificates for TLS: {0}")]
    Tls(std::io::Error),
}

pub struct HttpCardProcessor {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    authorization: HeaderValue,
    timeout: Duration,
    page_size: usize,
}

impl HttpCardProcessor {
    /// `timeout` bounds each request, connection included.
    pub fn new(base_url: &str, api_key: &str, timeout: Duration) -> Result<HttpCardProcessor, CardProcessorError> {
        let base = base_url.trim().trim_end_matches('/').to_owned();
        let uri: Uri = base.parse().map_err(|_| CardProcessorError::Url(base_url.to_owned()))?;
        let loopback = matches!(uri.host(), Some("localhost" | "127.0.0.1" | "[::1]"));
        // The API key must never cross a network in the clear.
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if loopback => {}
            _ => return Err(CardProcessorError::Url(base_url.to_owned())),
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", api_key.trim())).map_err(|_| CardProcessorError::ApiKey)?;
        authorization.set_sensitive(true);
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let connector = HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(CardProcessorError::Tls)?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(HttpCardProcessor { client, base, authorization, timeout, page_size: 100 })
    }

    /// How many charges one listing request asks for.
    pub fn with_page_size(mut self, page_size: usize) -> HttpCardProcessor {
        self.page_size = page_size.max(1);
        self
    }

    /// One request and its whole answer, within the timeout.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        idempotency_key: Option<&str>,
        body: Option<Value>,
    ) -> Result<(StatusCode, Bytes), PaymentError> {
        let what = format!("{method} {path}");
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json");
        if let Some(key) = idempotency_key {
            let key = HeaderValue::from_str(key).map_err(|_| PaymentError::Declined(format!("{key:?} cannot be an idempotency key")))?;
            request = request.header("idempotency-key", key);
        }
        let bytes = match body {
            Some(body) => {
                request = request.header(CONTENT_TYPE, "application/json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let request = request.body(Full::new(bytes)).map_err(|error| PaymentError::Unavailable(format!("{what}: {error}")))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|error| PaymentError::Unavailable(format!("{what}: {error}")))?;
            let status = response.status();
            let answer = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|error| PaymentError::Unavailable(format!("{what}: reading the answer: {error}")))?;
            Ok((status, answer.to_bytes()))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| PaymentError::TimedOut(format!("{what}: no answer within {} ms", self.timeout.as_millis())))?
    }

    /// A success's body as `T`, or the refusal the status stands for.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        idempotency_key: Option<&str>,
        body: Option<Value>,
    ) -> Result<T, PaymentError> {
        let (status, answer) = self.exchange(method.clone(), path, idempotency_key, body).await?;
        if !status.is_success() {
            return Err(refusal(status, &answer, &format!("{method} {path}")));
        }
        serde_json::from_slice(&answer).map_err(|error| PaymentError::Unavailable(format!("{method} {path}: unexpected answer: {error}")))
    }
}

#[derive(Deserialize)]
struct Refusal {
    error: RefusalDetail,
}

#[derive(Deserialize)]
struct RefusalDetail {
    message: String,
}

fn refusal(status: StatusCode, answer: &[u8], what: &str) -> PaymentError {
    let message = serde_json::from_slice::<Refusal>(answer)
        .map(|refusal| refusal.error.message.chars().take(200).collect())
        .unwrap_or_else(|_| status.to_string());
    match status.as_u16() {
        400 | 402 | 404 | 409 | 422 => PaymentError::Declined(message),
        _ => PaymentError::Unavailable(format!("{what}: HTTP {status}: {message}")),
    }
}

#[derive(Deserialize)]
struct Charge {
    id: String,
    #[serde(rename = "orderId")]
    order_id: String,
    amount: u64,
    created: i64,
    refunded: bool,
}

#[derive(Deserialize)]
struct Created {
    id: String,
    /// A repeated idempotency key answers with the first charge, as it is now.
    #[serde(default)]
    refunded: bool,
}

#[derive(Deserialize)]
struct Page {
    data: Vec<Charge>,
    #[serde(rename = "hasMore")]
    has_more: bool,
}

/// A path segment or query value, percent-encoded.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(byte).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[async_trait]
impl PaymentGateway for HttpCardProcessor {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeReceipt, PaymentError> {
        let body = json!({
            "orderId": request.order_id.0,
            "customerId": request.customer_id.0,
            "token": request.token,
            "amount": request.amount.cents(),
        });
        let created: Created = self.call(Method::POST, "/v1/charges", Some(&request.order_id.0), Some(body)).await?;
        if created.id.is_empty() {
            return Err(PaymentError::Unavailable("POST /v1/charges: the charge has no id".into()));
        }
        if created.refunded {
            return Err(PaymentError::Declined(format!("the charge {} of this order was refunded: pay anew", created.id)));
        }
        Ok(ChargeReceipt { charge_id: created.id })
    }

    async fn refund(&self, charge_id: &str, amount: Money) -> Result<(), PaymentError> {
        let path = format!("/v1/charges/{}/refunds", encode(charge_id));
        let key = format!("refund-{charge_id}");
        let _: Value = self.call(Method::POST, &path, Some(&key), Some(json!({ "amount": amount.cents() }))).await?;
        Ok(())
    }

    async fn charges_between(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<ChargeRecord>, PaymentError> {
        let mut listed = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut path = format!(
                "/v1/charges?created_gte={}&created_lt={}&limit={}",
                from.timestamp_millis(),
                until.timestamp_millis(),
                self.page_size
            );
            if let Some(after) = &after {
                path.push_str(&format!("&starting_after={}", encode(after)));
            }
            let page: Page = self.call(Method::GET, &path, None, None).await?;
            let last = page.data.last().map(|charge| charge.id.clone());
            for charge in page.data {
                let created_at = DateTime::from_timestamp_millis(charge.created)
                    .ok_or_else(|| PaymentError::Unavailable(format!("charge {} was created at no valid time", charge.id)))?;
                listed.push(ChargeRecord {
                    order_id: OrderId(charge.order_id),
                    charge_id: charge.id,
                    amount: Money(charge.amount),
                    created_at,
                    refunded: charge.refunded,
                });
            }
            // A page that does not move the cursor would repeat forever.
            if !page.has_more || last.is_none() || last == after {
                return Ok(listed);
            }
            after = last;
        }
    }
}

//! The users' side: HTTP/1.1 with keep-alive, each request timed from send
//! until its whole body is in. Each simulated user has a connection of its
//! own (an `Api` and its clones), as each of them would.

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// One user's connection to the runner, opened on first use and again after
/// it broke. A clone opens a connection of its own.
pub struct Api {
    /// `host:port` of the runner.
    authority: String,
    timeout: Duration,
    connection: Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl Clone for Api {
    fn clone(&self) -> Api {
        Api { authority: self.authority.clone(), timeout: self.timeout, connection: Mutex::new(None) }
    }
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// When the request went out, and how long the answer took.
    pub sent: Instant,
    pub took: Duration,
}

impl Answer {
    pub fn text(&self, pointer: &str) -> Option<&str> {
        self.body.pointer(pointer).and_then(Value::as_str)
    }
}

impl Api {
    /// `base` is the runner's `http://host:port`.
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Api> {
        let authority = base.strip_prefix("http://").with_context(|| format!("{base} is not http://host:port"))?.trim_end_matches('/');
        Ok(Api { authority: authority.to_owned(), timeout, connection: Mutex::new(None) })
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> anyhow::Result<Answer> {
        let mut request = Request::builder().method(method).uri(path).header(HOST, &self.authority);
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header(CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(body.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request.body(body)?;
        let sent = Instant::now();
        let (status, bytes) = self.send(request).await.with_context(|| format!("{path}: no answer"))?;
        let took = sent.elapsed();
        Ok(Answer { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null), sent, took })
    }

    /// Sends on this user's connection; one that failed or timed out is
    /// dropped, and the next request opens another.
    async fn send(&self, request: Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
        let mut connection = self.connection.lock().await;
        let exchange = async {
            if connection.as_ref().is_none_or(SendRequest::is_closed) {
                let stream = tokio::net::TcpStream::connect(&self.authority).await?;
                stream.set_nodelay(true)?;
                let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(driver);
                *connection = Some(sender);
            }
            let Some(sender) = connection.as_mut() else { bail!("no connection") };
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await?.to_bytes();
            Ok((status, bytes))
        };
        let outcome = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Err(anyhow::anyhow!("no answer within {:?}", self.timeout)),
        };
        if outcome.is_err() {
            *connection = None;
        }
        outcome
    }

    pub async fn post(&self, path: &str, token: &str, body: Option<&Value>) -> anyhow::Result<Answer> {
        self.call(Method::POST, path, Some(token), body).await
    }

    pub async fn get(&self, path: &str, token: &str) -> anyhow::Result<Answer> {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn token(&self, sub: &str, role: &str) -> anyhow::Result<String> {
        let answer = self.call(Method::POST, "/local/token", None, Some(&json!({ "sub": sub, "role": role }))).await?;
        answer.text("/token").map(str::to_owned).with_context(|| format!("no token for {sub}: {}", answer.body))
    }

    /// Registers a store with a two-dish menu and returns its id.
    pub async fn register_store(&self, owner: &str, name: &str) -> anyhow::Result<String> {
        let menu = json!([{ "name": "Bibimbap", "price": 1200 }, { "name": "Kimchi stew", "price": 950 }]);
        let answer = self.post("/stores", owner, Some(&json!({ "name": name, "region": REGION, "menu": menu }))).await?;
        match (answer.status, answer.text("/storeId")) {
            (201, Some(id)) => Ok(id.to_owned()),
            _ => anyhow::bail!("registering {name}: {} {}", answer.status, answer.body),
        }
    }
}

pub const REGION: &str = "gangnam";

/// Two bibimbap and a kimchi stew, paid with the processor's test card.
pub fn order_body(store_id: &str) -> Value {
    json!({
        "storeId": store_id,
        "items": [{ "menuId": "m1", "quantity": 2 }, { "menuId": "m2", "quantity": 1 }],
        "region": REGION,
        "address": "1 Teheran-ro, Gangnam",
        "paymentToken": "tok_visa",
    })
}

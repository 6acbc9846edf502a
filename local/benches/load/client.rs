//! The users' side: HTTP/1.1 with keep-alive, each request timed from send
//! until its whole body is in.

use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
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
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Api> {
        let client = reqwest::Client::builder().timeout(timeout).pool_max_idle_per_host(1024).build()?;
        Ok(Api { client, base: base.to_owned() })
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> anyhow::Result<Answer> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let sent = Instant::now();
        let response = request.send().await.with_context(|| format!("{path}: no answer"))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.with_context(|| format!("{path}: the body broke off"))?;
        let took = sent.elapsed();
        Ok(Answer { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null), sent, took })
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

//! The harness of the workspace tests: the whole system started in-process on
//! a free port with its own data directory, and a small HTTP client that
//! speaks to it the way a user's app would.

use local::{Config, Running, start};
use reqwest::Method;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct System {
    running: Option<Running>,
    data: tempfile::TempDir,
    template: PathBuf,
    client: reqwest::Client,
    base: String,
}

/// An answer: the status code and the JSON body (Null when there is none).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Answer {
    /// A field of the body, for terse assertions.
    pub fn at(&self, pointer: &str) -> &Value {
        self.body.pointer(pointer).unwrap_or(&Value::Null)
    }
    pub fn text(&self, pointer: &str) -> String {
        self.at(pointer).as_str().unwrap_or_default().to_owned()
    }
}

impl System {
    pub async fn start() -> System {
        Self::start_with(repository().join("template.yaml")).await
    }

    /// The system wired from another template (a variant of the real one).
    pub async fn start_with(template: PathBuf) -> System {
        let data = tempfile::tempdir().expect("a temporary directory");
        let running = Self::boot(&data, &template).await;
        let base = running.url();
        System { running: Some(running), data, template, client: reqwest::Client::new(), base }
    }

    async fn boot(data: &tempfile::TempDir, template: &std::path::Path) -> Running {
        let config = Config::new(SocketAddr::from(([127, 0, 0, 1], 0)), data.path(), template);
        start(config).await.expect("the local runner starts")
    }

    /// Stops the system (work in flight finishes, queued work stays queued)
    /// and starts it again on the same data.
    pub async fn restart(&mut self) {
        self.restart_after(|_| {}).await;
    }

    /// `restart`, with `between` given the database file while the system is
    /// down: to stage what a crash would have left, or to look at the file.
    pub async fn restart_after(&mut self, between: impl FnOnce(&std::path::Path)) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        between(&self.data.path().join("food-delivery.db"));
        let running = Self::boot(&self.data, &self.template).await;
        self.base = running.url();
        self.running = Some(running);
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("the system is running")
    }

    /// Where the system keeps its data, including the runner's `token-secret`.
    pub fn data_dir(&self) -> &std::path::Path {
        self.data.path()
    }

    pub async fn token(&self, sub: &str, role: &str) -> String {
        let answer = self.call(Method::POST, "/local/token", None, Some(json!({ "sub": sub, "role": role }))).await;
        assert_eq!(answer.status, 200, "token for {sub}: {answer:?}");
        answer.text("/token")
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.expect("the system answers");
        let status = response.status().as_u16();
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let bytes = response.bytes().await.expect("a body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, content_type, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Option<Value>) -> Answer {
        self.call(Method::POST, path, Some(token), body).await
    }

    /// Waits until every event is published and every delivery made.
    pub async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if local::bus::is_settled(&self.running().database).expect("the database answers") {
                return;
            }
            assert!(Instant::now() < deadline, "the system did not settle within 20 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The notifications a customer has received, as (status, message).
    pub async fn notifications(&self, customer: &str) -> Vec<(String, String)> {
        let answer = self.call(Method::GET, &format!("/local/notifications?customerId={customer}"), None, None).await;
        answer
            .at("/notifications")
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|n| (n["status"].as_str().unwrap_or("").to_owned(), n["message"].as_str().unwrap_or("").to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn dead_letters(&self) -> Vec<Value> {
        let answer = self.call(Method::GET, "/local/dead-letters", None, None).await;
        answer.at("/deadLetters").as_array().cloned().unwrap_or_default()
    }

    /// How the simulated processor's ledger stands: (charges, refunds).
    pub fn ledger(&self) -> (i64, i64) {
        self.running()
            .database
            .read(|c| {
                c.query_row("SELECT COUNT(*), COALESCE(SUM(refunded), 0) FROM simulated_charges", [], |row| Ok((row.get(0)?, row.get(1)?)))
            })
            .expect("the ledger is readable")
    }
}

/// The people of the tests and their tokens.
pub struct Cast {
    pub owner: String,
    pub customer: String,
    pub other_customer: String,
    pub rider: String,
    pub other_rider: String,
}

impl Cast {
    pub async fn new(system: &System) -> Cast {
        Cast {
            owner: system.token("olivia", "owner").await,
            customer: system.token("alice", "customer").await,
            other_customer: system.token("bob", "customer").await,
            rider: system.token("ryan", "rider").await,
            other_rider: system.token("rita", "rider").await,
        }
    }
}

pub const REGION: &str = "gangnam";

/// Registers Seoul Kitchen (m1 Bibimbap 12.00, m2 Kimchi stew 9.50) and
/// returns its id.
pub async fn register_store(system: &System, cast: &Cast) -> String {
    let menu = json!([{ "name": "Bibimbap", "price": 1200 }, { "name": "Kimchi stew", "price": 950 }]);
    let answer = system.post("/stores", &cast.owner, Some(json!({ "name": "Seoul Kitchen", "region": REGION, "menu": menu }))).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    answer.text("/storeId")
}

/// Alice orders two bibimbap and a kimchi stew (33.50) and pays.
pub async fn place_order(system: &System, cast: &Cast, store_id: &str) -> String {
    let body = json!({
        "storeId": store_id,
        "items": [{ "menuId": "m1", "quantity": 2 }, { "menuId": "m2", "quantity": 1 }],
        "region": REGION,
        "address": "1 Teheran-ro, Gangnam",
        "paymentToken": "tok_visa",
    });
    let answer = system.post("/orders", &cast.customer, Some(body)).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    answer.text("/orderId")
}

/// Runs one kitchen step and expects it to succeed.
pub async fn kitchen(system: &System, cast: &Cast, store_id: &str, order_id: &str, step: &str) {
    let answer = system.post(&format!("/stores/{store_id}/orders/{order_id}/{step}"), &cast.owner, None).await;
    assert_eq!(answer.status, 200, "{step}: {answer:?}");
}

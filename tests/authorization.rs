//! The authorization matrix, on the local runner: every route of
//! template.yaml, called by every kind of caller, is allowed or refused
//! exactly as `POLICY` says; a refusal changes nothing anyone can see; and a
//! missing, expired, forged or malformed token is a 401 problem on every route.
//!
//! The "A" people own every target: customer A placed the orders, owner A runs
//! their store, rider A picked the picked ones. The "B" twins are the same kind
//! of caller with no claim on the target.

use food_delivery::{Answer, REGION, System, repository};
use local::runner::{TOKEN_AUDIENCE, TOKEN_ISSUER};
use local::template::Wiring;
use local::token::TokenIssuer;
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    CustomerA,
    CustomerB,
    OwnerA,
    OwnerB,
    RiderA,
    RiderB,
}
use Who::*;

const CALLERS: [Who; 7] = [Nobody, CustomerA, CustomerB, OwnerA, OwnerB, RiderA, RiderB];
const SIGNED_IN: &[Who] = &[CustomerA, CustomerB, OwnerA, OwnerB, RiderA, RiderB];
const CUSTOMERS: &[Who] = &[CustomerA, CustomerB];
const OWNERS: &[Who] = &[OwnerA, OwnerB];
const RIDERS: &[Who] = &[RiderA, RiderB];

/// Who may use each route. Anyone else signed in is refused with 403, and a
/// caller without a valid token with 401, on every route. 403 rather than a
/// hiding 404: ids are random UUIDs, so "not yours" gives an outsider nothing
/// to use; 404 is kept for what does not exist, including an order named under
/// a store it does not belong to. The order of the rows is the order they run
/// in: the store closes before it opens again and takes orders.
const POLICY: &[(&str, &[Who])] = &[
    ("POST /stores", OWNERS),
    ("PUT /stores/{storeId}/menu", &[OwnerA]),
    ("POST /stores/{storeId}/close", &[OwnerA]),
    ("POST /stores/{storeId}/open", &[OwnerA]),
    ("GET /stores", SIGNED_IN),
    ("GET /stores/{storeId}", SIGNED_IN),
    ("GET /stores/{storeId}/popular-menus", SIGNED_IN),
    ("POST /orders", CUSTOMERS),
    ("GET /orders", CUSTOMERS),
    ("GET /orders/{orderId}", &[CustomerA, OwnerA]),
    ("POST /orders/{orderId}/cancel", &[CustomerA]),
    ("GET /stores/{storeId}/orders", &[OwnerA]),
    ("POST /stores/{storeId}/orders/{orderId}/accept", &[OwnerA]),
    ("POST /stores/{storeId}/orders/{orderId}/reject", &[OwnerA]),
    ("POST /stores/{storeId}/orders/{orderId}/start-cooking", &[OwnerA]),
    ("POST /stores/{storeId}/orders/{orderId}/finish-cooking", &[OwnerA]),
    ("GET /deliveries", RIDERS),
    // Any rider may try; once one has it, the others meet a 409.
    ("POST /deliveries/{orderId}/pick", RIDERS),
    ("POST /deliveries/{orderId}/complete", &[RiderA]),
    ("POST /deliveries/{orderId}/accident", &[RiderA]),
];

const COOKED: &[&str] = &["accept", "start-cooking", "finish-cooking"];

/// The order each order route acts on: the kitchen steps it has been through
/// and whether rider A has picked it, so the allowed caller can succeed.
const TARGETS: &[(&str, &[&str], bool)] = &[
    ("GET /orders/{orderId}", COOKED, true),
    ("POST /orders/{orderId}/cancel", &[], false),
    ("POST /stores/{storeId}/orders/{orderId}/accept", &[], false),
    ("POST /stores/{storeId}/orders/{orderId}/reject", &[], false),
    ("POST /stores/{storeId}/orders/{orderId}/start-cooking", &["accept"], false),
    ("POST /stores/{storeId}/orders/{orderId}/finish-cooking", &["accept", "start-cooking"], false),
    ("POST /deliveries/{orderId}/pick", COOKED, false),
    ("POST /deliveries/{orderId}/complete", COOKED, true),
    ("POST /deliveries/{orderId}/accident", COOKED, true),
];

fn identity(who: Who) -> Option<(&'static str, &'static str)> {
    match who {
        Nobody => None,
        CustomerA => Some(("alice", "customer")),
        CustomerB => Some(("bob", "customer")),
        OwnerA => Some(("olivia", "owner")),
        OwnerB => Some(("oscar", "owner")),
        RiderA => Some(("ryan", "rider")),
        RiderB => Some(("rita", "rider")),
    }
}

fn template_routes() -> BTreeSet<String> {
    let wiring = Wiring::load(&repository().join("template.yaml")).expect("template.yaml parses");
    wiring.functions.iter().flat_map(|f| f.routes.iter().map(|r| r.key())).collect()
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

fn is_problem(answer: &Answer, status: u16) -> bool {
    answer.status == status && answer.content_type == "application/problem+json" && answer.at("/status") == &json!(status)
}

struct Fixture {
    system: System,
    tokens: Vec<(Who, String)>,
    store_a: String,
    store_b: String,
    targets: Vec<(&'static str, String)>,
    bobs_order: String,
}

impl Fixture {
    async fn start() -> Fixture {
        let system = System::start().await;
        let mut tokens = Vec::new();
        for who in SIGNED_IN {
            let (sub, role) = identity(*who).unwrap_or_default();
            tokens.push((*who, system.token(sub, role).await));
        }
        let mut fixture =
            Fixture { system, tokens, store_a: String::new(), store_b: String::new(), targets: Vec::new(), bobs_order: String::new() };
        fixture.store_a = fixture.register(OwnerA, "Seoul Kitchen").await;
        fixture.store_b = fixture.register(OwnerB, "Busan Bistro").await;
        fixture.bobs_order = fixture.place(CustomerB, &fixture.store_b).await;
        for (route, steps, _) in TARGETS {
            let order = fixture.place(CustomerA, &fixture.store_a).await;
            for step in *steps {
                let path = format!("/stores/{}/orders/{order}/{step}", fixture.store_a);
                let done = fixture.system.post(&path, fixture.token(OwnerA), None).await;
                assert_eq!(done.status, 200, "{step} for {route}: {done:?}");
            }
            fixture.targets.push((route, order));
        }
        fixture.system.settle().await;
        for (route, _, _) in TARGETS.iter().filter(|(_, _, picked)| *picked) {
            let order = fixture.target(route).unwrap_or_default();
            let answer = fixture.system.post(&format!("/deliveries/{order}/pick"), fixture.token(RiderA), None).await;
            assert_eq!(answer.status, 200, "rider A picks the order for {route}: {answer:?}");
        }
        fixture.system.settle().await;
        fixture
    }

    fn token(&self, who: Who) -> &str {
        self.tokens.iter().find(|(w, _)| *w == who).map(|(_, token)| token.as_str()).unwrap_or_default()
    }

    fn target(&self, route: &str) -> Option<&str> {
        self.targets.iter().find(|(r, _)| *r == route).map(|(_, order)| order.as_str())
    }

    async fn register(&self, owner: Who, name: &str) -> String {
        let menu = json!([{ "name": "Bibimbap", "price": 1200 }, { "name": "Kimchi stew", "price": 950 }]);
        let answer = self.system.post("/stores", self.token(owner), Some(json!({ "name": name, "region": REGION, "menu": menu }))).await;
        assert_eq!(answer.status, 201, "{answer:?}");
        answer.text("/storeId")
    }

    async fn place(&self, customer: Who, store_id: &str) -> String {
        let answer = self.system.post("/orders", self.token(customer), Some(order_body(store_id))).await;
        assert_eq!(answer.status, 201, "{answer:?}");
        answer.text("/orderId")
    }

    /// The concrete request for a route: path parameters name the A side
    /// (store A, the route's target order); bodies are valid, so only
    /// authorization stands between the caller and success.
    fn request(&self, route: &str) -> (Method, String, Option<Value>) {
        let (method, template) = route.split_once(' ').unwrap_or_else(|| panic!("route key {route}"));
        let method = Method::from_bytes(method.as_bytes()).unwrap_or_else(|_| panic!("method of {route}"));
        let mut path = template.replace("{storeId}", &self.store_a);
        if path.contains("{orderId}") {
            let order = self.target(route).unwrap_or_else(|| panic!("{route} has no target order in TARGETS"));
            path = path.replace("{orderId}", order);
        }
        assert!(!path.contains('{'), "{route} has a path parameter the matrix does not fill");
        if method == Method::GET && matches!(template, "/stores" | "/deliveries") {
            path = format!("{path}?region={REGION}");
        }
        let body = match route {
            "POST /stores" => Some(json!({ "name": "Third Place", "region": REGION, "menu": [{ "name": "Tteokbokki", "price": 700 }] })),
            "PUT /stores/{storeId}/menu" => Some(json!({ "menu": [{ "menuId": "m1", "name": "Bibimbap", "price": 100 }] })),
            "POST /orders" => Some(order_body(&self.store_a)),
            "POST /stores/{storeId}/orders/{orderId}/reject" => Some(json!({ "reason": "out of rice" })),
            "POST /deliveries/{orderId}/accident" => Some(json!({ "description": "flat tyre" })),
            _ => None,
        };
        (method, path, body)
    }

    async fn call(&self, route: &str, who: Who) -> Answer {
        let (method, path, body) = self.request(route);
        let token = (who != Nobody).then(|| self.token(who));
        self.system.call(method, &path, token, body).await
    }

    /// Everything stored and everything any of the people can see. A refusal
    /// must leave all of it as it was.
    async fn seen(&self) -> Value {
        self.system.settle().await;
        let events = self
            .system
            .running()
            .database
            .read(|c| c.query_row("SELECT COUNT(*) FROM events", [], |row| row.get::<_, i64>(0)))
            .expect("the event store is readable");
        let mut seen = Map::new();
        seen.insert("events".into(), json!(events));
        seen.insert("ledger".into(), json!(self.system.ledger()));
        let (a, b) = (&self.store_a, &self.store_b);
        let views = [
            (format!("/stores?region={REGION}"), CustomerA),
            (format!("/stores/{a}"), CustomerA),
            (format!("/stores/{b}"), CustomerA),
            (format!("/stores/{a}/popular-menus"), CustomerA),
            (format!("/stores/{a}/orders?status=all"), OwnerA),
            (format!("/stores/{b}/orders?status=all"), OwnerB),
            (format!("/deliveries?region={REGION}"), RiderA),
            ("/orders".to_owned(), CustomerA),
            ("/orders".to_owned(), CustomerB),
            (format!("/orders/{}", self.bobs_order), CustomerB),
        ];
        for (path, who) in views.iter().cloned().chain(self.targets.iter().map(|(_, order)| (format!("/orders/{order}"), CustomerA))) {
            let answer = self.system.get(&path, self.token(who)).await;
            assert_eq!(answer.status, 200, "{path}: {answer:?}");
            seen.insert(format!("{who:?} GET {path}"), answer.body);
        }
        Value::Object(seen)
    }
}

fn order_body(store_id: &str) -> Value {
    json!({
        "storeId": store_id,
        "items": [{ "menuId": "m1", "quantity": 1 }],
        "region": REGION,
        "address": "1 Teheran-ro, Gangnam",
        "paymentToken": "tok_visa",
    })
}

fn order_ids(answer: &Answer) -> BTreeSet<String> {
    answer.at("/orders").as_array().into_iter().flatten().filter_map(|o| o["orderId"].as_str().map(str::to_owned)).collect()
}

#[test]
fn every_route_of_the_template_has_a_policy() {
    let routes = template_routes();
    let covered: BTreeSet<String> = POLICY.iter().map(|(route, _)| route.to_string()).collect();
    assert_eq!(POLICY.len(), covered.len(), "a route is in POLICY twice");
    let missing: Vec<&String> = routes.difference(&covered).collect();
    let stale: Vec<&String> = covered.difference(&routes).collect();
    assert!(missing.is_empty(), "routes with no authorization expectation: {missing:?}");
    assert!(stale.is_empty(), "POLICY names routes the template no longer has: {stale:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_allows_exactly_whom_the_policy_says_and_refusals_change_nothing() {
    let fixture = Fixture::start().await;
    let routes = template_routes();
    let mut cases = 0;

    // Owner B names their own store with store A's orders: not found there.
    for step in ["accept", "reject", "start-cooking", "finish-cooking"] {
        let route = format!("POST /stores/{{storeId}}/orders/{{orderId}}/{step}");
        let order = fixture.target(&route).unwrap_or_default();
        let before = fixture.seen().await;
        let body = (step == "reject").then(|| json!({ "reason": "not mine" }));
        let path = format!("/stores/{}/orders/{order}/{step}", fixture.store_b);
        let answer = fixture.system.post(&path, fixture.token(OwnerB), body).await;
        assert!(is_problem(&answer, 404), "owner B's store has no such order to {step}: {answer:?}");
        assert_eq!(fixture.seen().await, before, "a refused {step} changed something");
        cases += 1;
    }

    for (route, allowed) in POLICY {
        assert!(routes.contains(*route), "{route} is not in the template");
        let mutates = !route.starts_with("GET ");
        let refused = CALLERS.iter().filter(|who| !allowed.contains(who));
        for who in refused.chain(allowed.iter()) {
            let expected = match who {
                Nobody => Some(401),
                who if allowed.contains(who) => None,
                _ => Some(403),
            };
            let before = match (mutates, expected) {
                (true, Some(_)) => Some(fixture.seen().await),
                _ => None,
            };
            let answer = fixture.call(route, *who).await;
            match expected {
                Some(status) => assert!(is_problem(&answer, status), "{route} as {who:?}: expected a {status} problem, got {answer:?}"),
                None => assert!(
                    (200..300).contains(&answer.status) || is_problem(&answer, 409),
                    "{route} as {who:?} must be allowed: {answer:?}"
                ),
            }
            if expected.is_none() && who == &allowed[0] {
                assert!((200..300).contains(&answer.status), "{route}: the first allowed caller, {who:?}, succeeds: {answer:?}");
            }
            if let Some(before) = before {
                assert_eq!(fixture.seen().await, before, "{route} refused {who:?} but changed something");
            }
            if mutates && expected.is_none() {
                fixture.system.settle().await;
            }
            cases += 1;
        }
    }

    // The lists a caller may read hold only their own.
    let (alices, bobs) = (fixture.call("GET /orders", CustomerA).await, fixture.call("GET /orders", CustomerB).await);
    let targets: BTreeSet<String> = fixture.targets.iter().map(|(_, order)| order.clone()).collect();
    assert!(order_ids(&alices).is_superset(&targets) && !order_ids(&alices).contains(&fixture.bobs_order), "{alices:?}");
    assert!(order_ids(&bobs).contains(&fixture.bobs_order) && order_ids(&bobs).is_disjoint(&targets), "{bobs:?}");
    let queue_b = fixture.system.get(&format!("/stores/{}/orders?status=all", fixture.store_b), fixture.token(OwnerB)).await;
    assert!(order_ids(&queue_b).contains(&fixture.bobs_order) && order_ids(&queue_b).is_disjoint(&targets), "{queue_b:?}");
    cases += 3;

    // What does not exist is 404, to its rightful kind of caller too.
    for (path, who) in [("/orders/order-none", CustomerA), ("/stores/store-none/orders", OwnerA)] {
        let answer = fixture.system.get(path, fixture.token(who)).await;
        assert!(is_problem(&answer, 404), "{path}: {answer:?}");
        cases += 1;
    }
    println!(
        "authorization matrix: {cases} cases checked ({} routes x {} callers, plus cross-store, list and 404 cases)",
        POLICY.len(),
        CALLERS.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_tokens_are_a_401_problem_on_every_route_and_change_nothing() {
    let fixture = Fixture::start().await;
    let secret = std::fs::read(fixture.system.data_dir().join("token-secret")).expect("the runner's token secret");
    let runner = TokenIssuer::new(secret.clone(), TOKEN_ISSUER, TOKEN_AUDIENCE);
    let elsewhere = TokenIssuer::new(secret.clone(), "https://cognito-idp.example/another-pool", TOKEN_AUDIENCE);
    let other_client = TokenIssuer::new(secret, TOKEN_ISSUER, "another-client");
    let other_key = TokenIssuer::new(b"not the runner's secret, 32 bytes long".to_vec(), TOKEN_ISSUER, TOKEN_AUDIENCE);
    let (now, client, base) = (now(), reqwest::Client::new(), fixture.system.running().url());
    let before = fixture.seen().await;
    let mut cases = 0;

    for (route, allowed) in POLICY {
        // Each forgery speaks for a caller the route would let through.
        let (sub, role) = allowed.first().and_then(|who| identity(*who)).unwrap_or(("alice", "customer"));
        let groups = [role.to_owned()];
        let valid = runner.issue(sub, &groups, now, 3600);
        let parts: Vec<&str> = valid.split('.').collect();
        let [header, payload, _] = parts[..] else { panic!("a JWT has three parts") };
        let someone_else = runner.issue("mallory", &groups, now, 3600);
        let signature = someone_else.rsplit('.').next().unwrap_or_default();
        let bearer = |token: String| format!("Bearer {token}").into_bytes();
        let invalid: Vec<(&str, Vec<u8>)> = vec![
            ("expired an hour ago", bearer(runner.issue(sub, &groups, now - 7200, 3600))),
            ("expiring this second", bearer(runner.issue(sub, &groups, now - 60, 60))),
            ("signed with another key", bearer(other_key.issue(sub, &groups, now, 3600))),
            ("claims swapped after signing", bearer(format!("{header}.{payload}.{signature}"))),
            ("unsigned, alg none", bearer(format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}."))),
            ("another issuer", bearer(elsewhere.issue(sub, &groups, now, 3600))),
            ("another audience", bearer(other_client.issue(sub, &groups, now, 3600))),
            ("not a JWT", b"Bearer not.a.token".to_vec()),
            ("no scheme", valid.clone().into_bytes()),
            ("basic credentials", b"Basic YWxpY2U6cGFzc3dvcmQ=".to_vec()),
            ("empty bearer", b"Bearer ".to_vec()),
            ("two tokens", format!("Bearer {valid} {valid}").into_bytes()),
            ("not text", b"Bearer \xff\xfe".to_vec()),
        ];
        let (method, path, body) = fixture.request(route);
        for (kind, authorization) in invalid {
            let mut request = client.request(method.clone(), format!("{base}{path}")).header("authorization", authorization);
            if let Some(body) = &body {
                request = request.header("content-type", "application/json").body(body.to_string());
            }
            let response = request.send().await.expect("the system answers");
            let status = response.status().as_u16();
            let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let body = serde_json::from_slice(&response.bytes().await.expect("a body")).unwrap_or(Value::Null);
            let answer = Answer { status, content_type, body };
            assert!(is_problem(&answer, 401), "{route} with a token {kind}: {answer:?}");
            cases += 1;
        }
        // A genuine token with no role the product knows gets no further,
        // nor does a group whose name merely contains a role's.
        for groups in [vec![], vec!["admin".to_owned()], vec![format!("suspended:{role}")]] {
            let token = runner.issue(sub, &groups, now, 3600);
            let answer = fixture.system.call(method.clone(), &path, Some(&token), body.clone()).await;
            assert!(is_problem(&answer, 403), "{route} with groups {groups:?}: {answer:?}");
            cases += 1;
        }
    }
    assert_eq!(fixture.seen().await, before, "a refused request changed something");
    println!("authorization tokens: {cases} cases checked ({} routes x (13 invalid tokens + 3 role-less))", POLICY.len());
}

//! One scenario per command handler (and a read through `queries`): the
//! request, the answer it must get, and the state it needs. Repeating a
//! command on one aggregate would time an ever longer stream, or a refusal,
//! so every timed call gets its own fresh store or order, prepared untimed
//! through the handlers themselves.

use crate::support::{CUSTOMER, OWNER, REGION, RIDER, Req, World, order_request};
use serde_json::json;

/// What a scenario's aggregate must have gone through before the timed call.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
pub enum Stage {
    /// Nothing: the command creates its aggregate.
    Nothing,
    /// A registered (and so open) store of `OWNER`.
    Store,
    /// A store of `OWNER` that was closed.
    ClosedStore,
    Placed,
    Accepted,
    Cooking,
    /// Cooked, with the delivery dispatched to the riders of `REGION`.
    Cooked,
    PickedUp,
    /// Delivered, with every view projected.
    Delivered,
}

/// The request for a store and an order (either may be unused).
type RequestFor = fn(store_id: &str, order_id: &str) -> Req;

pub struct Scenario {
    /// The function of template.yaml that serves the request.
    pub function: &'static str,
    /// How the result is labelled: the function, plus the route for `queries`.
    pub label: &'static str,
    pub stage: Stage,
    /// The status every timed call must get; anything else is a failed run.
    pub status: i64,
    request: RequestFor,
}

fn register_body() -> serde_json::Value {
    json!({
        "name": "Luigi's",
        "region": REGION,
        "menu": [
            { "name": "Margherita", "price": 900 },
            { "name": "Tiramisu", "price": 450 },
            { "name": "Espresso", "price": 250 },
        ],
    })
}

fn kitchen(route: &'static str, store_id: &str, order_id: &str) -> Req {
    Req::post(route).path("storeId", store_id).path("orderId", order_id).owner(OWNER)
}

fn ride(route: &'static str, order_id: &str) -> Req {
    Req::post(route).path("orderId", order_id).rider(RIDER)
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        function: "register-store",
        label: "register-store",
        stage: Stage::Nothing,
        status: 201,
        request: |_, _| Req::post("/stores").owner(OWNER).json(register_body()),
    },
    Scenario {
        function: "change-menu",
        label: "change-menu",
        stage: Stage::Store,
        status: 200,
        request: |store_id, _| {
            Req::put("/stores/{storeId}/menu").path("storeId", store_id).owner(OWNER).json(json!({
                "menu": [
                    { "menuId": "m1", "name": "Margherita", "price": 950 },
                    { "menuId": "m3", "name": "Espresso", "price": 250 },
                    { "name": "Lasagne", "price": 1100 },
                ],
            }))
        },
    },
    Scenario {
        function: "open-store",
        label: "open-store",
        stage: Stage::ClosedStore,
        status: 200,
        request: |store_id, _| Req::post("/stores/{storeId}/open").path("storeId", store_id).owner(OWNER),
    },
    Scenario {
        function: "close-store",
        label: "close-store",
        stage: Stage::Store,
        status: 200,
        request: |store_id, _| Req::post("/stores/{storeId}/close").path("storeId", store_id).owner(OWNER),
    },
    Scenario {
        function: "place-order",
        label: "place-order",
        // A new order each call, at a store many orders went to before.
        stage: Stage::Store,
        status: 201,
        request: |store_id, _| order_request(CUSTOMER, store_id, &[("m1", 2), ("m3", 1)], "tok_visa"),
    },
    Scenario {
        function: "cancel-order",
        label: "cancel-order",
        stage: Stage::Placed,
        status: 200,
        request: |_, order_id| Req::post("/orders/{orderId}/cancel").path("orderId", order_id).customer(CUSTOMER),
    },
    Scenario {
        function: "accept-order",
        label: "accept-order",
        stage: Stage::Placed,
        status: 200,
        request: |store_id, order_id| kitchen("/stores/{storeId}/orders/{orderId}/accept", store_id, order_id),
    },
    Scenario {
        function: "reject-order",
        label: "reject-order",
        stage: Stage::Placed,
        status: 200,
        request: |store_id, order_id| {
            kitchen("/stores/{storeId}/orders/{orderId}/reject", store_id, order_id).json(json!({ "reason": "out of flour" }))
        },
    },
    Scenario {
        function: "start-cooking",
        label: "start-cooking",
        stage: Stage::Accepted,
        status: 200,
        request: |store_id, order_id| kitchen("/stores/{storeId}/orders/{orderId}/start-cooking", store_id, order_id),
    },
    Scenario {
        function: "finish-cooking",
        label: "finish-cooking",
        stage: Stage::Cooking,
        status: 200,
        request: |store_id, order_id| kitchen("/stores/{storeId}/orders/{orderId}/finish-cooking", store_id, order_id),
    },
    Scenario {
        function: "pick-delivery",
        label: "pick-delivery",
        stage: Stage::Cooked,
        status: 200,
        request: |_, order_id| ride("/deliveries/{orderId}/pick", order_id),
    },
    Scenario {
        function: "complete-delivery",
        label: "complete-delivery",
        stage: Stage::PickedUp,
        status: 200,
        request: |_, order_id| ride("/deliveries/{orderId}/complete", order_id),
    },
    Scenario {
        function: "report-accident",
        label: "report-accident",
        stage: Stage::PickedUp,
        status: 200,
        request: |_, order_id| ride("/deliveries/{orderId}/accident", order_id).json(json!({ "description": "flat tyre" })),
    },
    Scenario {
        function: "queries",
        label: "queries GET /orders/{orderId}",
        stage: Stage::Delivered,
        status: 200,
        request: |_, order_id| Req::get("/orders/{orderId}").path("orderId", order_id).customer(CUSTOMER),
    },
];

impl Scenario {
    /// `n` requests as the Lambda runtime receives them (API Gateway's JSON),
    /// each for its own fresh aggregate in `world`.
    pub async fn prepare(&self, world: &World, n: usize) -> Vec<Vec<u8>> {
        let payload = |request: Req| request.to_json().to_string().into_bytes();
        match self.stage {
            Stage::Nothing => (0..n).map(|_| payload((self.request)("", ""))).collect(),
            Stage::Store | Stage::ClosedStore => {
                let mut payloads = Vec::with_capacity(n);
                // place-order needs only one store: the order is what is new.
                let stores = if self.function == "place-order" { 1 } else { n };
                let mut store_id = String::new();
                for i in 0..n {
                    if i < stores {
                        store_id = store(world, self.stage == Stage::ClosedStore).await;
                    }
                    payloads.push(payload((self.request)(&store_id, "")));
                }
                payloads
            }
            stage => {
                let store_id = store(world, false).await;
                let orders = orders_at(world, &store_id, stage, n).await;
                orders.iter().map(|order_id| payload((self.request)(&store_id, order_id))).collect()
            }
        }
    }
}

async fn store(world: &World, closed: bool) -> String {
    let reply = world.send(Req::post("/stores").owner(OWNER).json(register_body())).await;
    let store_id = reply.expect(201)["storeId"].as_str().expect("a store id").to_owned();
    if closed {
        world.send(Req::post("/stores/{storeId}/close").path("storeId", &store_id).owner(OWNER)).await.expect(200);
    }
    store_id
}

/// `n` orders of `CUSTOMER` at the store, each taken to `stage` one step at a
/// time for all of them; the events move along (`settle`) only where a later
/// step reads what a policy or projection made.
async fn orders_at(world: &World, store_id: &str, stage: Stage, n: usize) -> Vec<String> {
    let mut orders = Vec::with_capacity(n);
    for _ in 0..n {
        let reply = world.send(order_request(CUSTOMER, store_id, &[("m1", 2), ("m3", 1)], "tok_visa")).await;
        orders.push(reply.expect(201)["orderId"].as_str().expect("an order id").to_owned());
    }
    let steps: [(Stage, RequestFor); 5] = [
        (Stage::Accepted, |s, o| kitchen("/stores/{storeId}/orders/{orderId}/accept", s, o)),
        (Stage::Cooking, |s, o| kitchen("/stores/{storeId}/orders/{orderId}/start-cooking", s, o)),
        (Stage::Cooked, |s, o| kitchen("/stores/{storeId}/orders/{orderId}/finish-cooking", s, o)),
        (Stage::PickedUp, |_, o| ride("/deliveries/{orderId}/pick", o)),
        (Stage::Delivered, |_, o| ride("/deliveries/{orderId}/complete", o)),
    ];
    for (reached, step) in steps {
        if stage < reached {
            break;
        }
        if reached == Stage::PickedUp {
            // The dispatch policy opens the delivery riders pick.
            world.settle().await;
        }
        for order_id in &orders {
            world.send(step(store_id, order_id)).await.expect(200);
        }
    }
    if stage >= Stage::Cooked {
        world.settle().await;
    }
    orders
}

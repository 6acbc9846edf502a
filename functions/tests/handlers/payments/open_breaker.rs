//! `POST /orders` behind the circuit breaker: once the processor has failed
//! repeatedly, customers hear "pay again shortly" at once, with nothing
//! charged and nothing stored; a probe after the open time closes it again.

use super::{ManualClock, figure};
use crate::support::*;
use functions::payments::{BreakerSettings, CircuitBreaker, State};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CALL_TIMEOUT: Duration = Duration::from_secs(1);
const OPEN_FOR: Duration = Duration::from_secs(10);

/// A store, and a processor behind a breaker whose clock the test moves.
struct Guarded {
    world: World,
    processor: Arc<CountingGateway>,
    breaker: Arc<CircuitBreaker>,
    clock: Arc<ManualClock>,
    store_id: String,
}

impl Guarded {
    async fn new(failures: u32) -> Guarded {
        let mut world = World::new();
        let processor = Arc::new(CountingGateway::default());
        let clock = Arc::new(ManualClock::new());
        let settings = BreakerSettings { failures, open_for: OPEN_FOR, call_timeout: CALL_TIMEOUT };
        let breaker = Arc::new(CircuitBreaker::with_clock(processor.clone(), settings, clock.clone()));
        world.deps.payments = breaker.clone();
        let store_id = world.register_store(OWNER, REGION).await;
        Guarded { world, processor, breaker, clock, store_id }
    }

    async fn order(&self, token: &str) -> Reply {
        self.world.send(order_request(CUSTOMER, &self.store_id, &[("m1", 1)], token)).await
    }

    /// Fails `n` charges, which opens a breaker that opens after `n`.
    async fn open(&self, n: u32) {
        for _ in 0..n {
            self.order("tok_error").await.problem(503, "nothing was charged");
        }
        assert!(matches!(self.breaker.state(), State::Open { .. }), "{n} failures in a row open it: {:?}", self.breaker.state());
    }

    /// Events of orders and payments: what a placed order stores.
    fn stored(&self) -> usize {
        self.world.events().iter().filter(|e| e.aggregate_type == "Order" || e.aggregate_type == "Payment").count()
    }
}

#[tokio::test]
async fn after_repeated_failures_an_order_is_refused_at_once_with_nothing_charged_or_stored() {
    let guarded = Guarded::new(3).await;
    guarded.open(3).await;
    let asked = guarded.processor.charge_calls();

    let started = Instant::now();
    let reply = guarded.order("tok_visa").await;
    let took = started.elapsed();

    let detail = reply.problem(503, "nothing was charged");
    assert!(detail.contains("pay again in 10 seconds"), "the customer is told when to pay again: {detail}");
    assert_eq!(reply.header("retry-after"), Some("10"), "Retry-After is the time the breaker stays open");
    assert!(took < CALL_TIMEOUT / 10, "refused at once, not after a call timeout: {took:?}");
    assert_eq!(guarded.processor.charge_calls(), asked, "the processor is not even asked");
    assert_eq!(guarded.processor.inner.charge_count(), 0, "nothing is charged");
    assert_eq!(guarded.stored(), 0, "no order and no payment is stored");
    figure(
        "open breaker",
        format!("POST /orders refused in {:.2} ms (call timeout {} ms)", took.as_secs_f64() * 1e3, CALL_TIMEOUT.as_millis()),
    );
}

#[tokio::test]
async fn the_retry_after_shrinks_as_the_open_time_passes() {
    let guarded = Guarded::new(2).await;
    guarded.open(2).await;
    guarded.clock.advance(Duration::from_millis(6500));
    let reply = guarded.order("tok_visa").await;
    reply.problem(503, "pay again in 4 seconds");
    assert_eq!(reply.header("retry-after"), Some("4"), "3.5 s left, rounded up");
}

#[tokio::test]
async fn after_the_open_time_a_probe_that_succeeds_closes_it() {
    let guarded = Guarded::new(3).await;
    guarded.open(3).await;
    guarded.clock.advance(OPEN_FOR);

    let probe = guarded.order("tok_visa").await;
    let order_id = probe.expect(201)["orderId"].as_str().expect("an order id").to_owned();
    assert_eq!(guarded.breaker.state(), State::Closed { failures: 0 }, "the probe's answer closes it");
    assert_eq!(guarded.world.event_types("Order", &order_id), ["OrderPlaced"]);
    guarded.order("tok_visa").await.expect(201);
    assert_eq!(guarded.processor.inner.charge_count(), 2, "one charge per placed order");
}

#[tokio::test]
async fn a_probe_that_fails_opens_it_again() {
    let guarded = Guarded::new(3).await;
    guarded.open(3).await;
    guarded.clock.advance(OPEN_FOR);
    guarded.order("tok_error").await.problem(503, "nothing was charged");
    let reply = guarded.order("tok_visa").await;
    reply.problem(503, "pay again in 10 seconds");
    assert_eq!(guarded.processor.charge_calls(), 4, "three failures and the probe; the last order never reached it");
    assert_eq!(guarded.processor.inner.charge_count(), 0);
    assert_eq!(guarded.stored(), 0);
}

#[tokio::test]
async fn declined_cards_never_open_it() {
    let guarded = Guarded::new(3).await;
    for _ in 0..5 {
        guarded.order("tok_decline").await.problem(402, "declined");
    }
    assert_eq!(guarded.breaker.state(), State::Closed { failures: 0 }, "a declined card is a working processor");
    guarded.order("tok_visa").await.expect(201);
}

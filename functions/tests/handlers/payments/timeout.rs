//! A processor slower than the call timeout: the customer hears 503 at the
//! timeout, no order is stored, and the charge the processor took all the
//! same is found and refunded by reconciliation.

use super::{figure, reconcile};
use crate::support::*;
use functions::embedded::{SimulatedProcessor, SimulatorSettings};
use functions::payments::{BreakerSettings, CircuitBreaker};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_charge_answered_after_the_timeout_gets_503_and_is_refunded_once() {
    let mut world = World::new();
    let slow = Duration::from_millis(1500);
    let timeout = Duration::from_millis(200);
    let processor = Arc::new(SimulatedProcessor::new(SimulatorSettings { slow, ..SimulatorSettings::default() }));
    world.deps.payments = Arc::new(CircuitBreaker::new(processor.clone(), BreakerSettings { call_timeout: timeout, ..Default::default() }));
    let store_id = world.register_store(OWNER, REGION).await;

    let started = Instant::now();
    let reply = world.send(order_request(CUSTOMER, &store_id, &[("m1", 1)], "tok_slow")).await;
    let took = started.elapsed();

    reply.problem(503, "did not answer in time");
    assert!(reply.header("retry-after").is_some(), "503 says when to try again");
    assert!(took >= timeout && took < slow, "answered at the timeout, not when the processor got round to it: {took:?}");
    assert!(world.events().iter().all(|e| e.aggregate_type == "Store"), "no order and no payment is stored");
    assert_eq!(processor.charge_count(), 1, "the processor took the charge all the same");

    world.deps.settings.reconcile.grace = Duration::ZERO;
    reconcile(&world).await.expect("reconciliation runs");
    assert_eq!(processor.refund_count(), 1, "no charge is left standing");
    reconcile(&world).await.expect("reconciliation runs again");
    assert_eq!((processor.charge_count(), processor.refund_count()), (1, 1), "one charge, one refund");
    figure(
        "timeout",
        format!("tok_slow ({} ms) answered 503 after {} ms (timeout {} ms)", slow.as_millis(), took.as_millis(), timeout.as_millis()),
    );
}

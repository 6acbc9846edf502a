//! The simulated processor's knobs: random latency and failure rate, with
//! the test-mode tokens behaving as always.

use functions::embedded::{Latency, SimulatedProcessor, SimulatorSettings, failure_rate};
use functions::ports::{ChargeRequest, PaymentError, PaymentGateway};
use std::time::{Duration, Instant};

fn request(token: &str) -> ChargeRequest {
    ChargeRequest {
        order_id: domain::OrderId(format!("order-{}", uuid::Uuid::new_v4().simple())),
        customer_id: domain::CustomerId("customer-1".into()),
        token: token.into(),
        amount: domain::Money(1000),
    }
}

fn millis(min: u64, max: u64) -> Latency {
    Latency { min: Duration::from_millis(min), max: Duration::from_millis(max) }
}

#[test]
fn settings_read_as_the_local_runner_takes_them() {
    assert_eq!("400-620".parse::<Latency>(), Ok(millis(400, 620)));
    assert_eq!(" 500 ".parse::<Latency>(), Ok(millis(500, 500)));
    for wrong in ["620-400", "fast", "400-", "-5", ""] {
        assert!(wrong.parse::<Latency>().is_err(), "{wrong:?} is no latency");
    }
    assert_eq!(failure_rate("0.1"), Ok(0.1));
    assert_eq!(failure_rate("1"), Ok(1.0));
    for wrong in ["1.5", "-0.1", "NaN", "often"] {
        assert!(failure_rate(wrong).is_err(), "{wrong:?} is no failure rate");
    }
}

/// Timing on a shared machine: an answer may come this much late.
const SLACK: Duration = Duration::from_millis(200);

#[tokio::test]
async fn every_answer_takes_a_latency_drawn_from_the_range() {
    let processor = SimulatedProcessor::new(SimulatorSettings { latency: millis(40, 120), ..SimulatorSettings::default() });
    let mut took = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        processor.charge(&request("tok_visa")).await.expect("approved");
        took.push(started.elapsed());
    }
    let (fastest, slowest) = (took.iter().min().copied().unwrap(), took.iter().max().copied().unwrap());
    assert!(fastest >= Duration::from_millis(40) && slowest <= Duration::from_millis(120) + SLACK, "within 40-120 ms: {took:?}");
    // Twenty uniform draws span about 76 ms; a fixed latency would span only the jitter.
    assert!(slowest - fastest > Duration::from_millis(30), "drawn at random, not fixed: {took:?}");
    assert_eq!(processor.charge_count(), 20);
}

#[tokio::test]
async fn tok_slow_takes_the_charge_then_answers_late() {
    let settings = SimulatorSettings { slow: Duration::from_millis(300), latency: millis(100, 100), ..SimulatorSettings::default() };
    let processor = SimulatedProcessor::new(settings);
    let started = Instant::now();
    processor.charge(&request("tok_slow")).await.expect("approved, late");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400) && took <= Duration::from_millis(400) + SLACK, "the latency and `slow` more: {took:?}");
    assert_eq!(processor.charge_count(), 1);
}

#[tokio::test]
async fn a_failure_rate_of_one_fails_every_charge_and_charges_nothing() {
    let processor = SimulatedProcessor::new(SimulatorSettings { failure_rate: 1.0, ..SimulatorSettings::default() });
    for _ in 0..20 {
        assert!(matches!(processor.charge(&request("tok_visa")).await, Err(PaymentError::Unavailable(_))));
    }
    assert!(matches!(processor.charge(&request("tok_decline")).await, Err(PaymentError::Declined(_))), "tok_decline is still declined");
    assert_eq!(processor.charge_count(), 0);
}

#[tokio::test]
async fn a_failure_rate_fails_about_that_share_of_charges() {
    let processor = SimulatedProcessor::new(SimulatorSettings { failure_rate: 0.25, ..SimulatorSettings::default() });
    let mut failed = 0;
    for _ in 0..800 {
        if processor.charge(&request("tok_visa")).await.is_err() {
            failed += 1;
        }
    }
    // 200 expected; 120..280 is more than six standard deviations either way.
    assert!((120..280).contains(&failed), "{failed} of 800 failed at a rate of 0.25");
    assert_eq!(processor.charge_count(), 800 - failed, "a failed charge takes no money");
}

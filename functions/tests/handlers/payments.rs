//! Payment resilience: the circuit breaker around the card processor, the
//! simulated processor's knobs, a processor slower than the timeout, and a
//! crash between the charge and the order, which `reconcile-payments` mends.
//! Each fault test asserts that nothing is lost (no charge without an order
//! left standing) and nothing is duplicated (one charge, at most one refund),
//! and prints its figures on lines starting with `payments:`
//! (`cargo test -p functions --test handlers payments -- --nocapture`).

mod breaker;
mod crash;
mod open_breaker;
mod simulator;
mod timeout;

use crate::support::World;
use functions::payments::Clock;
use functions::registry::ScheduleEvent;
use functions::registry::{self, Handler, HandlerError};
use serde_json::{Value, json};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A figure for the report, printed so `--nocapture` shows it.
fn figure(test: &str, text: String) {
    println!("payments: {test}: {text}");
}

/// A clock that moves only when told to.
pub struct ManualClock {
    start: Instant,
    elapsed: Mutex<Duration>,
}

impl ManualClock {
    pub fn new() -> ManualClock {
        ManualClock { start: Instant::now(), elapsed: Mutex::new(Duration::ZERO) }
    }
    pub fn advance(&self, by: Duration) {
        *self.elapsed.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.elapsed.lock().unwrap()
    }
}

/// The event EventBridge's schedule sends `reconcile-payments`.
pub fn scheduled_event() -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2025-03-14T12:05:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/food-delivery-ReconcilePayments"],
        "detail": {},
    })
}

/// One run of `reconcile-payments`, as its schedule would start it.
pub async fn reconcile(world: &World) -> Result<(), HandlerError> {
    let Some(Handler::Scheduled(handler)) = registry::handler("reconcile-payments") else {
        panic!("reconcile-payments is a scheduled function")
    };
    let event: ScheduleEvent = serde_json::from_str(&scheduled_event().to_string()).expect("a scheduled event deserializes");
    registry::invoke_event("reconcile-payments", handler, &world.deps, &event).await
}

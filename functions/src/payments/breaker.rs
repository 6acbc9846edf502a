//! A circuit breaker around the card processor. After `failures` failed or
//! timed-out calls in a row it opens: for `open_for` every call fails at once
//! with `PaymentError::CircuitOpen`, so customers hear "pay again shortly"
//! without waiting on a processor that is down, and nothing is charged. Then
//! one probe is let through (half-open): a healthy answer closes the breaker,
//! a failure opens it again.
//!
//! The state lives in the process. On Lambda that is one container: each
//! warm container of place-order learns of an outage on its own, after its
//! own `failures` calls, and a cold start begins closed. That bounds the
//! damage per container, which is what a customer waiting on one feels.

use crate::ports::{ChargeReceipt, ChargeRecord, ChargeRequest, PaymentError, PaymentGateway};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::Money;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSettings {
    /// Failed or timed-out calls in a row that open the breaker.
    pub failures: u32,
    /// How long it stays open before a probe is let through.
    pub open_for: Duration,
    /// How long one charge or refund may take before it counts as failed.
    pub call_timeout: Duration,
}

impl Default for BreakerSettings {
    /// A processor's slowest answers stay well under 3 s; Lambda gives
    /// place-order 10 s in all.
    fn default() -> Self {
        Self { failures: 5, open_for: Duration::from_secs(10), call_timeout: Duration::from_secs(3) }
    }
}

/// Where the breaker reads the time: the monotonic clock, or a test's.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls go through; `failures` in a row so far.
    Closed { failures: u32 },
    /// No call goes through until `until`.
    Open { until: Instant },
    /// One probe went out at `probe_since`; the others wait for its answer.
    HalfOpen { probe_since: Instant },
}

/// What kind of call was let through, so its answer moves the right state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticket {
    Normal,
    Probe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The processor answered: approved, or declined (a declined card is a
    /// working processor).
    Answered,
    /// It failed or did not answer in time.
    Failed,
}

/// The pure state machine: no clock and no I/O, every instant is given.
#[derive(Debug, Clone)]
pub struct Breaker {
    settings: BreakerSettings,
    state: State,
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Breaker {
        Breaker { settings, state: State::Closed { failures: 0 } }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Lets a call go out at `now`, or says how long until one may.
    pub fn admit(&mut self, now: Instant) -> Result<Ticket, Duration> {
        match self.state {
            State::Closed { .. } => Ok(Ticket::Normal),
            State::Open { until } if now < until => Err(until - now),
            // Every call is bounded by the call timeout, so a probe not
            // heard of after it was abandoned (its caller went away).
            State::HalfOpen { probe_since } if now < probe_since + self.settings.call_timeout => {
                Err(probe_since + self.settings.call_timeout - now)
            }
            State::Open { .. } | State::HalfOpen { .. } => {
                self.state = State::HalfOpen { probe_since: now };
                Ok(Ticket::Probe)
            }
        }
    }

    /// Takes in the answer to a call `admit` let through.
    pub fn record(&mut self, ticket: Ticket, health: Health, now: Instant) {
        let opened = State::Open { until: now + self.settings.open_for };
        self.state = match (self.state, ticket, health) {
            (State::Closed { .. }, Ticket::Normal, Health::Answered) => State::Closed { failures: 0 },
            (State::Closed { failures }, Ticket::Normal, Health::Failed) if failures + 1 >= self.settings.failures.max(1) => opened,
            (State::Closed { failures }, Ticket::Normal, Health::Failed) => State::Closed { failures: failures + 1 },
            (State::HalfOpen { .. }, Ticket::Probe, Health::Answered) => State::Closed { failures: 0 },
            (State::HalfOpen { .. }, Ticket::Probe, Health::Failed) => opened,
            // A late answer to a call from before the last change of state
            // says nothing the state does not already know.
            (state, _, _) => state,
        };
    }
}

/// Seconds for `Retry-After`: rounded up, at least one.
fn whole_seconds(wait: Duration) -> u32 {
    u32::try_from(wait.as_millis().div_ceil(1000)).unwrap_or(u32::MAX).max(1)
}

/// Any payment gateway behind a breaker, each charge and refund bounded by
/// the call timeout.
pub struct CircuitBreaker {
    inner: Arc<dyn PaymentGateway>,
    call_timeout: Duration,
    breaker: Mutex<Breaker>,
    clock: Arc<dyn Clock>,
}

impl CircuitBreaker {
    pub fn new(inner: Arc<dyn PaymentGateway>, settings: BreakerSettings) -> CircuitBreaker {
        Self::with_clock(inner, settings, Arc::new(SystemClock))
    }

    pub fn with_clock(inner: Arc<dyn PaymentGateway>, settings: BreakerSettings, clock: Arc<dyn Clock>) -> CircuitBreaker {
        CircuitBreaker { inner, call_timeout: settings.call_timeout, breaker: Mutex::new(Breaker::new(settings)), clock }
    }

    pub fn state(&self) -> State {
        self.lock().state()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Breaker> {
        // The state is always whole: a panic elsewhere cannot leave it torn.
        self.breaker.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn guarded<T>(&self, what: &str, call: impl Future<Output = Result<T, PaymentError>>) -> Result<T, PaymentError> {
        let ticket =
            self.lock().admit(self.clock.now()).map_err(|wait| PaymentError::CircuitOpen { retry_after_seconds: whole_seconds(wait) })?;
        let outcome = match tokio::time::timeout(self.call_timeout, call).await {
            Ok(outcome) => outcome,
            Err(_) => Err(PaymentError::TimedOut(format!("no answer to a {what} within {} ms", self.call_timeout.as_millis()))),
        };
        let health = match &outcome {
            Ok(_) | Err(PaymentError::Declined(_)) => Health::Answered,
            Err(PaymentError::Unavailable(_) | PaymentError::TimedOut(_) | PaymentError::CircuitOpen { .. }) => Health::Failed,
        };
        let mut breaker = self.lock();
        let before = breaker.state();
        breaker.record(ticket, health, self.clock.now());
        match (before, breaker.state()) {
            (State::Open { .. }, _) => {}
            (_, State::Open { .. }) => tracing::warn!(what, "payment processor failing: circuit breaker opened"),
            (State::HalfOpen { .. }, State::Closed { .. }) => tracing::info!("payment processor answering again: circuit breaker closed"),
            _ => {}
        }
        outcome
    }
}

#[async_trait]
impl PaymentGateway for CircuitBreaker {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeReceipt, PaymentError> {
        self.guarded("charge", self.inner.charge(request)).await
    }

    async fn refund(&self, charge_id: &str, amount: Money) -> Result<(), PaymentError> {
        self.guarded("refund", self.inner.refund(charge_id, amount)).await
    }

    /// Reconciliation's sweep runs in the background with nobody waiting on
    /// it: it goes straight to the processor, bounded by the adapter's own
    /// request timeout rather than the budget of a customer's call.
    async fn charges_between(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<ChargeRecord>, PaymentError> {
        self.inner.charges_between(from, until).await
    }
}

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{CustomerId, Money, OrderId};
use thiserror::Error;

/// A charge against a processor's payment token. The order id is the
/// processor's idempotency key: a retried charge never charges twice.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargeRequest {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub token: String,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChargeReceipt {
    pub charge_id: String,
}

/// A charge as the processor's ledger lists it: what reconciliation holds
/// against the stored orders.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargeRecord {
    pub order_id: OrderId,
    pub charge_id: String,
    pub amount: Money,
    /// When the processor took the charge, by its own clock.
    pub created_at: DateTime<Utc>,
    pub refunded: bool,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum PaymentError {
    /// The card was refused: the customer must pay another way (402).
    #[error("payment declined: {0}")]
    Declined(String),
    /// The processor failed: try again shortly (503).
    #[error("payment processor unavailable: {0}")]
    Unavailable(String),
    /// The processor did not answer in time. It may have taken the charge
    /// all the same: reconciliation refunds a charge whose order was never
    /// stored. Try again shortly (503).
    #[error("payment processor timed out: {0}")]
    TimedOut(String),
    /// The processor failed so often lately that no call was made at all:
    /// nothing was charged; try again after this many seconds (503).
    #[error("payments are paused after repeated processor failures; retry in {retry_after_seconds} s")]
    CircuitOpen { retry_after_seconds: u32 },
}

#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// Charging an order again returns its charge; once that charge was
    /// refunded it is `Declined`, never a receipt for money given back.
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeReceipt, PaymentError>;

    /// Returns the whole charge. Idempotent per charge: refunding twice
    /// returns the money once.
    async fn refund(&self, charge_id: &str, amount: Money) -> Result<(), PaymentError>;

    /// Every charge the processor took from `from` (inclusive) until `until`
    /// (exclusive), refunded or not, one per order, oldest first.
    async fn charges_between(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<ChargeRecord>, PaymentError>;
}

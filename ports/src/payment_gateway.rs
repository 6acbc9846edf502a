use async_trait::async_trait;
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

#[derive(Debug, Clone, PartialEq, Error)]
pub enum PaymentError {
    /// The card was refused: the customer must pay another way (402).
    #[error("payment declined: {0}")]
    Declined(String),
    /// The processor failed or took too long: try again shortly (503).
    #[error("payment processor unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait PaymentGateway: Send + Sync {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeReceipt, PaymentError>;

    /// Returns the whole charge. Idempotent per charge: refunding twice
    /// returns the money once.
    async fn refund(&self, charge_id: &str, amount: Money) -> Result<(), PaymentError>;
}

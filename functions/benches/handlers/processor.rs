//! The card processor as an instant stub. In Lambda a charge is a network
//! call, which this benchmark leaves out; the embedded simulator would not
//! do either: even with no latency configured it awaits a zero-length tokio
//! sleep, which waits for the timer's next 1 ms tick.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use functions::ports::{ChargeReceipt, ChargeRecord, ChargeRequest, PaymentError, PaymentGateway};

/// Approves every charge (its id derived from the order, so a retried
/// charge gets the same one) and every refund, at once.
pub struct InstantProcessor;

#[async_trait]
impl PaymentGateway for InstantProcessor {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeReceipt, PaymentError> {
        Ok(ChargeReceipt { charge_id: format!("ch_{}", request.order_id.0) })
    }

    async fn refund(&self, _charge_id: &str, _amount: domain::Money) -> Result<(), PaymentError> {
        Ok(())
    }

    async fn charges_between(&self, _from: DateTime<Utc>, _until: DateTime<Utc>) -> Result<Vec<ChargeRecord>, PaymentError> {
        Ok(vec![])
    }
}

use crate::ports::{ChargeReceipt, ChargeRequest, PaymentError, PaymentGateway};
use async_trait::async_trait;
use domain::Money;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SimulatorSettings {
    /// How long a `tok_slow` charge takes.
    pub slow: Duration,
}

impl Default for SimulatorSettings {
    fn default() -> Self {
        Self { slow: Duration::from_millis(1500) }
    }
}

#[derive(Default)]
struct Ledger {
    /// Order id (the idempotency key) to charge id and amount.
    charges: HashMap<String, (String, Money)>,
    refunded: HashSet<String>,
}

/// A card processor in test mode: `tok_decline` is declined, `tok_error`
/// fails, `tok_slow` is slow, any other token is approved. Like a real
/// processor it honours idempotency keys, so it can show that no retry ever
/// charges or refunds twice.
#[derive(Default)]
pub struct SimulatedProcessor {
    settings: SimulatorSettings,
    ledger: Mutex<Ledger>,
}

impl SimulatedProcessor {
    pub fn new(settings: SimulatorSettings) -> Self {
        Self { settings, ledger: Mutex::default() }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Charges taken so far (one per order, however often retried).
    pub fn charge_count(&self) -> usize {
        self.ledger().charges.len()
    }

    pub fn refund_count(&self) -> usize {
        self.ledger().refunded.len()
    }

    pub fn is_refunded(&self, charge_id: &str) -> bool {
        self.ledger().refunded.contains(charge_id)
    }
}

#[async_trait]
impl PaymentGateway for SimulatedProcessor {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeReceipt, PaymentError> {
        match request.token.as_str() {
            "tok_decline" => return Err(PaymentError::Declined("the card was declined".into())),
            "tok_error" => return Err(PaymentError::Unavailable("the processor reported an internal error".into())),
            "tok_slow" => tokio::time::sleep(self.settings.slow).await,
            _ => {}
        }
        let mut ledger = self.ledger();
        let (charge_id, _) = ledger
            .charges
            .entry(request.order_id.0.clone())
            .or_insert_with(|| (format!("ch_{}", uuid::Uuid::new_v4().simple()), request.amount));
        Ok(ChargeReceipt { charge_id: charge_id.clone() })
    }

    async fn refund(&self, charge_id: &str, amount: Money) -> Result<(), PaymentError> {
        let mut ledger = self.ledger();
        let charged = ledger.charges.values().find(|(id, _)| id == charge_id).map(|(_, amount)| *amount);
        match charged {
            None => Err(PaymentError::Declined(format!("no charge {charge_id}"))),
            Some(charged) if charged != amount => {
                Err(PaymentError::Declined(format!("refund of {amount} does not match the charge of {charged}")))
            }
            Some(_) => {
                ledger.refunded.insert(charge_id.to_owned());
                Ok(())
            }
        }
    }
}

use super::Database;
use crate::ports::{ChargeReceipt, ChargeRequest, PaymentError, PaymentGateway};
use async_trait::async_trait;
use domain::Money;
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;
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

const LEDGER: &str = "
CREATE TABLE IF NOT EXISTS simulated_charges (
    order_id TEXT PRIMARY KEY,
    charge_id TEXT NOT NULL UNIQUE,
    amount INTEGER NOT NULL,
    refunded INTEGER NOT NULL DEFAULT 0
);";

/// A card processor in test mode: `tok_decline` is declined, `tok_error`
/// fails, `tok_slow` is slow, any other token is approved. Like a real
/// processor it honours idempotency keys (the order id), so it shows that no
/// retry ever charges or refunds twice. Its ledger lives in a database so a
/// local runner that restarts still knows what it charged.
pub struct SimulatedProcessor {
    settings: SimulatorSettings,
    ledger: Arc<Database>,
}

impl Default for SimulatedProcessor {
    fn default() -> Self {
        Self::new(SimulatorSettings::default())
    }
}

impl SimulatedProcessor {
    /// A processor with a private in-memory ledger.
    pub fn new(settings: SimulatorSettings) -> Self {
        // An in-memory SQLite database only fails to open when out of memory.
        let ledger = Database::in_memory().expect("an in-memory database opens");
        Self::with_ledger(ledger, settings).expect("the ledger table is created in a fresh database")
    }

    /// A processor whose ledger lives in `ledger`, surviving restarts.
    pub fn with_ledger(ledger: Arc<Database>, settings: SimulatorSettings) -> rusqlite::Result<Self> {
        ledger.with(|connection| connection.execute_batch(LEDGER))?;
        Ok(Self { settings, ledger })
    }

    fn count(&self, sql: &str) -> usize {
        self.ledger.with(|connection| connection.query_row(sql, [], |row| row.get::<_, i64>(0))).unwrap_or(0) as usize
    }

    /// Charges taken so far (one per order, however often retried).
    pub fn charge_count(&self) -> usize {
        self.count("SELECT COUNT(*) FROM simulated_charges")
    }

    pub fn refund_count(&self) -> usize {
        self.count("SELECT COUNT(*) FROM simulated_charges WHERE refunded = 1")
    }

    pub fn is_refunded(&self, charge_id: &str) -> bool {
        self.ledger
            .with(|connection| {
                connection
                    .query_row("SELECT refunded FROM simulated_charges WHERE charge_id = ?1", params![charge_id], |row| {
                        row.get::<_, i64>(0)
                    })
                    .optional()
            })
            .ok()
            .flatten()
            == Some(1)
    }
}

fn unavailable(error: rusqlite::Error) -> PaymentError {
    PaymentError::Unavailable(error.to_string())
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
        let fresh = format!("ch_{}", uuid::Uuid::new_v4().simple());
        let charge_id = self
            .ledger
            .with(|connection| {
                connection.execute(
                    "INSERT INTO simulated_charges (order_id, charge_id, amount) VALUES (?1, ?2, ?3) ON CONFLICT (order_id) DO NOTHING",
                    params![request.order_id.0, fresh, request.amount.cents() as i64],
                )?;
                connection.query_row("SELECT charge_id FROM simulated_charges WHERE order_id = ?1", params![request.order_id.0], |row| {
                    row.get::<_, String>(0)
                })
            })
            .map_err(unavailable)?;
        Ok(ChargeReceipt { charge_id })
    }

    async fn refund(&self, charge_id: &str, amount: Money) -> Result<(), PaymentError> {
        let charged = self
            .ledger
            .with(|connection| {
                let charged = connection
                    .query_row("SELECT amount FROM simulated_charges WHERE charge_id = ?1", params![charge_id], |row| row.get::<_, i64>(0))
                    .optional()?;
                if charged == Some(amount.cents() as i64) {
                    connection.execute("UPDATE simulated_charges SET refunded = 1 WHERE charge_id = ?1", params![charge_id])?;
                }
                Ok(charged)
            })
            .map_err(unavailable)?;
        match charged {
            None => Err(PaymentError::Declined(format!("no charge {charge_id}"))),
            Some(charged) if charged != amount.cents() as i64 => {
                Err(PaymentError::Declined(format!("refund of {amount} does not match the charge of {}", Money(charged as u64))))
            }
            Some(_) => Ok(()),
        }
    }
}

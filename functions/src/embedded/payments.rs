use super::Database;
use crate::ports::{ChargeReceipt, ChargeRecord, ChargeRequest, PaymentError, PaymentGateway};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{Money, OrderId};
use rusqlite::{OptionalExtension, params};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq)]
pub struct SimulatorSettings {
    /// How much later than the others a `tok_slow` charge answers.
    pub slow: Duration,
    /// How long each charge takes to answer, drawn uniformly from this range.
    pub latency: Latency,
    /// The share of charges (0.0 to 1.0) answered `Unavailable`, as by a
    /// processor having a bad day. `tok_*` tokens behave as always.
    pub failure_rate: f64,
}

impl Default for SimulatorSettings {
    fn default() -> Self {
        Self { slow: Duration::from_millis(1500), latency: Latency::NONE, failure_rate: 0.0 }
    }
}

/// A range of answer times, `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub min: Duration,
    pub max: Duration,
}

impl Latency {
    pub const NONE: Latency = Latency { min: Duration::ZERO, max: Duration::ZERO };

    fn draw(&self, rng: &mut fastrand::Rng) -> Duration {
        let (min, max) = (self.min.as_millis() as u64, self.max.as_millis() as u64);
        Duration::from_millis(if max > min { rng.u64(min..=max) } else { min })
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
#[error("{0}")]
pub struct InvalidSetting(String);

/// Milliseconds, `400-620` for a range or `500` for a fixed latency.
impl FromStr for Latency {
    type Err = InvalidSetting;
    fn from_str(text: &str) -> Result<Latency, InvalidSetting> {
        let invalid = || InvalidSetting(format!("latency {text:?} is not milliseconds such as 400-620 or 500"));
        let (min, max) = text.split_once('-').unwrap_or((text, text));
        let millis = |part: &str| part.trim().parse::<u64>().map(Duration::from_millis).map_err(|_| invalid());
        let (min, max) = (millis(min)?, millis(max)?);
        if min > max {
            return Err(InvalidSetting(format!("latency {text:?} ends before it starts")));
        }
        Ok(Latency { min, max })
    }
}

/// A share of charges between 0.0 and 1.0, such as `0.1`.
pub fn failure_rate(text: &str) -> Result<f64, InvalidSetting> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(InvalidSetting(format!("failure rate {text:?} is not a share between 0.0 and 1.0"))),
    }
}

const LEDGER: &str = "
CREATE TABLE IF NOT EXISTS simulated_charges (
    order_id TEXT PRIMARY KEY,
    charge_id TEXT NOT NULL UNIQUE,
    amount INTEGER NOT NULL,
    refunded INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL DEFAULT 0
);";

/// A card processor in test mode: `tok_decline` is declined, `tok_error`
/// fails, `tok_slow` answers late, any other token is approved. Like a real
/// processor it honours idempotency keys (the order id), so it shows that no
/// retry ever charges or refunds twice. Its ledger lives in a database so a
/// local runner that restarts still knows what it charged.
///
/// A late answer comes after the charge is taken, as when a real processor
/// is slow: a caller that gives up waiting leaves a charge behind, which
/// reconciliation must find.
pub struct SimulatedProcessor {
    settings: SimulatorSettings,
    ledger: Arc<Database>,
    rng: Mutex<fastrand::Rng>,
}

impl Default for SimulatedProcessor {
    fn default() -> Self {
        Self::new(SimulatorSettings::default())
    }
}

impl SimulatedProcessor {
    /// A processor with a private ledger, in a temporary database.
    pub fn new(settings: SimulatorSettings) -> Self {
        // Only fails when the temporary directory cannot take a file.
        let ledger = Database::temporary().expect("a temporary database opens");
        Self::with_ledger(ledger, settings).expect("the ledger table is created in a fresh database")
    }

    /// A processor whose ledger lives in `ledger`, surviving restarts.
    pub fn with_ledger(ledger: Arc<Database>, settings: SimulatorSettings) -> rusqlite::Result<Self> {
        ledger.write_blocking(|connection| {
            connection.execute_batch(LEDGER)?;
            // Ledgers from before charges were listed by time lack the column.
            let dated: i64 = connection.query_row(
                "SELECT COUNT(*) FROM pragma_table_info('simulated_charges') WHERE name = 'created_ms'",
                [],
                |row| row.get(0),
            )?;
            if dated == 0 {
                connection.execute_batch("ALTER TABLE simulated_charges ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0")?;
            }
            connection.execute_batch("CREATE INDEX IF NOT EXISTS simulated_charges_by_time ON simulated_charges (created_ms)")
        })?;
        Ok(Self { settings, ledger, rng: Mutex::new(fastrand::Rng::new()) })
    }

    fn count(&self, sql: &str) -> usize {
        self.ledger.read(|connection| connection.query_row(sql, [], |row| row.get::<_, i64>(0))).unwrap_or(0) as usize
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
            .read(|connection| {
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

    /// Whether this charge fails at random, and how long its answer takes.
    fn draw(&self) -> (bool, Duration) {
        let mut rng = self.rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let fails = self.settings.failure_rate > 0.0 && rng.f64() < self.settings.failure_rate;
        (fails, self.settings.latency.draw(&mut rng))
    }

    async fn record(&self, request: &ChargeRequest) -> Result<String, PaymentError> {
        // Time-ordered, as the order ids: a charge lands at the end of the
        // ledger's index, not on a page of its own.
        let fresh = format!("ch_{}", uuid::Uuid::now_v7().simple());
        let (order_id, amount) = (request.order_id.0.clone(), request.amount.cents() as i64);
        self.ledger
            .write(move |connection| {
                connection
                    .prepare_cached(
                        "INSERT INTO simulated_charges (order_id, charge_id, amount, created_ms) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (order_id) DO NOTHING",
                    )?
                    .execute(params![order_id, fresh, amount, Utc::now().timestamp_millis()])?;
                connection
                    .prepare_cached("SELECT charge_id, refunded FROM simulated_charges WHERE order_id = ?1")?
                    .query_row(params![order_id], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? == 1)))
            })
            .await
            .map_err(unavailable)
            .and_then(|(charge_id, refunded)| match refunded {
                true => Err(PaymentError::Declined(format!("the charge {charge_id} of this order was refunded: pay anew"))),
                false => Ok(charge_id),
            })
    }
}

fn unavailable(error: rusqlite::Error) -> PaymentError {
    PaymentError::Unavailable(error.to_string())
}

#[async_trait]
impl PaymentGateway for SimulatedProcessor {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeReceipt, PaymentError> {
        let (fails, latency) = self.draw();
        let outcome = match request.token.as_str() {
            "tok_decline" => Err(PaymentError::Declined("the card was declined".into())),
            "tok_error" => Err(PaymentError::Unavailable("the processor reported an internal error".into())),
            _ if fails => Err(PaymentError::Unavailable("the processor failed (simulated outage)".into())),
            _ => self.record(request).await.map(|charge_id| ChargeReceipt { charge_id }),
        };
        let slow = if request.token == "tok_slow" { self.settings.slow } else { Duration::ZERO };
        let delay = latency + slow;
        // A zero sleep still waits for the timer's next 1 ms tick.
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        outcome
    }

    async fn refund(&self, charge_id: &str, amount: Money) -> Result<(), PaymentError> {
        let (charge, cents) = (charge_id.to_owned(), amount.cents() as i64);
        let charged = self
            .ledger
            .write(move |connection| {
                let charged = connection
                    .query_row("SELECT amount FROM simulated_charges WHERE charge_id = ?1", params![charge], |row| row.get::<_, i64>(0))
                    .optional()?;
                if charged == Some(cents) {
                    connection.execute("UPDATE simulated_charges SET refunded = 1 WHERE charge_id = ?1", params![charge])?;
                }
                Ok(charged)
            })
            .await
            .map_err(unavailable)?;
        match charged {
            None => Err(PaymentError::Declined(format!("no charge {charge_id}"))),
            Some(charged) if charged != amount.cents() as i64 => {
                Err(PaymentError::Declined(format!("refund of {amount} does not match the charge of {}", Money(charged as u64))))
            }
            Some(_) => Ok(()),
        }
    }

    async fn charges_between(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<ChargeRecord>, PaymentError> {
        self.ledger
            .read(|connection| {
                let mut listed = connection.prepare(
                    "SELECT order_id, charge_id, amount, created_ms, refunded FROM simulated_charges
                     WHERE created_ms >= ?1 AND created_ms < ?2 ORDER BY created_ms, charge_id",
                )?;
                let rows = listed.query_map(params![from.timestamp_millis(), until.timestamp_millis()], |row| {
                    Ok(ChargeRecord {
                        order_id: OrderId(row.get(0)?),
                        charge_id: row.get(1)?,
                        amount: Money(row.get::<_, i64>(2)?.max(0) as u64),
                        created_at: DateTime::from_timestamp_millis(row.get(3)?).unwrap_or_default(),
                        refunded: row.get::<_, i64>(4)? == 1,
                    })
                })?;
                rows.collect()
            })
            .map_err(unavailable)
    }
}

//! Delivers the bus's stored deliveries to their functions, concurrently and
//! in no guaranteed order (as EventBridge does), retrying failures with
//! exponential backoff and dead-lettering what keeps failing.

use crate::bus::dead_letter;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Utc;
use functions::Deps;
use functions::embedded::Database;
use functions::registry::{self, EventHandler, Handler};
use rusqlite::params;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};

const MAX_BACKOFF: Duration = Duration::from_secs(5);
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Deliveries claimed at once, in slots' worth.
const CLAIM_SLOTS: usize = 4;

pub struct Dispatcher {
    pub database: Arc<Database>,
    pub deps: Deps,
    pub doorbell: Arc<Notify>,
    pub concurrency: usize,
}

struct Delivery {
    id: i64,
    target: String,
    rule: String,
    event: String,
    attempts: u32,
    max_retries: u32,
}

impl Dispatcher {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let handlers: HashMap<&str, EventHandler> = registry::FUNCTIONS
            .iter()
            .filter_map(|name| match registry::handler(name) {
                Some(Handler::Event(handler)) => Some((*name, handler)),
                _ => None,
            })
            .collect();
        // Whatever was in flight when the last run stopped is due again.
        if let Err(error) = self.database.write(|c| c.execute("UPDATE deliveries SET leased = 0 WHERE leased = 1", [])).await {
            tracing::error!(%error, "cannot release deliveries");
        }
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let this = Arc::new(self);
        while !*shutdown.borrow() {
            // A free slot first, so a delivery that finishes wakes this loop:
            // waiting on the doorbell with every slot busy left due
            // deliveries waiting (up to IDLE_POLL) after slots came free.
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                _ = shutdown.changed() => continue,
            };
            // Claimed in batches of several slots' worth: one write
            // transaction per batch, not per delivery. The claimed wait here
            // for a slot, in due order.
            let batch = this.claim(this.concurrency * CLAIM_SLOTS).await.unwrap_or_default();
            if batch.is_empty() {
                drop(permit);
                tokio::select! {
                    _ = this.doorbell.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let mut first = Some(permit);
            for delivery in batch {
                let permit = match first.take() {
                    Some(permit) => permit,
                    None => match slots.clone().acquire_owned().await {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                };
                let this = this.clone();
                let handler = handlers.get(delivery.target.as_str()).copied();
                tokio::spawn(async move {
                    let outcome = match handler {
                        Some(handler) => this.deliver(handler, &delivery).await,
                        None => Err(format!("no event function named {}", delivery.target)),
                    };
                    this.settle(&delivery, outcome).await;
                    drop(permit);
                });
            }
        }
        // Let the deliveries in flight finish before the process goes.
        let _ = slots.acquire_many(this.concurrency as u32).await;
    }

    async fn claim(&self, limit: usize) -> rusqlite::Result<Vec<Delivery>> {
        let now = Utc::now().timestamp_millis();
        self.database
            .write(move |connection| {
                connection
                    .prepare_cached(
                        "UPDATE deliveries SET leased = 1 WHERE id IN
                           (SELECT id FROM deliveries WHERE leased = 0 AND due_at <= ?1 ORDER BY due_at, id LIMIT ?2)
                         RETURNING id, target, rule, event, attempts, max_retries",
                    )?
                    .query_map(params![now, limit as i64], |row| {
                        Ok(Delivery {
                            id: row.get(0)?,
                            target: row.get(1)?,
                            rule: row.get(2)?,
                            event: row.get(3)?,
                            attempts: row.get(4)?,
                            max_retries: row.get(5)?,
                        })
                    })?
                    .collect()
            })
            .await
    }

    async fn deliver(&self, handler: EventHandler, delivery: &Delivery) -> Result<(), String> {
        let event: EventBridgeEvent<serde_json::Value> = serde_json::from_str(&delivery.event).map_err(|e| e.to_string())?;
        registry::invoke_event(&delivery.target, handler, &self.deps, event).await.map_err(|e| e.to_string())
    }

    async fn settle(&self, delivery: &Delivery, outcome: Result<(), String>) {
        let id = delivery.id;
        let result = match outcome {
            Ok(()) => {
                self.database.write(move |c| c.prepare_cached("DELETE FROM deliveries WHERE id = ?1")?.execute(params![id]).map(drop)).await
            }
            Err(error) if delivery.attempts >= delivery.max_retries => {
                tracing::error!(target = delivery.target, rule = delivery.rule, %error, "retries spent: dead-lettered");
                let letter = [&delivery.target, &delivery.rule, &delivery.event, &error].map(|text| text.to_string());
                self.database
                    .write(move |c| {
                        let [target, rule, event, error] = &letter;
                        dead_letter(c, target, rule, event, error)?;
                        c.execute("DELETE FROM deliveries WHERE id = ?1", params![id]).map(drop)
                    })
                    .await
            }
            Err(error) => {
                let attempts = delivery.attempts + 1;
                let backoff = Duration::from_millis(50u64.saturating_mul(1 << attempts.min(16))).min(MAX_BACKOFF);
                let due_at = Utc::now().timestamp_millis() + backoff.as_millis() as i64;
                tracing::warn!(target = delivery.target, attempts, %error, "delivery failed; will retry");
                self.database
                    .write(move |c| {
                        c.execute(
                            "UPDATE deliveries SET leased = 0, attempts = ?2, due_at = ?3, last_error = ?4 WHERE id = ?1",
                            params![id, attempts, due_at, error],
                        )
                        .map(drop)
                    })
                    .await
            }
        };
        if let Err(error) = result {
            tracing::error!(%error, delivery = delivery.id, "cannot record the delivery's outcome");
        }
    }
}

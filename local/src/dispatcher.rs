//! Delivers the bus's queued deliveries to their functions, concurrently and
//! in no guaranteed order (as EventBridge does), retrying failures with
//! exponential backoff and dead-lettering what keeps failing.

use crate::bus::{dead_letter, remove_delivery};
use crate::queue::{Delivery, Queue};
use chrono::Utc;
use functions::Deps;
use functions::embedded::Database;
use functions::registry::{self, EventHandler, Handler};
use rusqlite::params;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, watch};

const MAX_BACKOFF: Duration = Duration::from_secs(5);
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Outcomes recorded in one write at most.
const SETTLE_BATCH: usize = 256;

pub struct Dispatcher {
    pub database: Arc<Database>,
    pub deps: Deps,
    pub queue: Arc<Queue>,
    pub concurrency: usize,
}

/// A delivery handled, and how it went.
type Outcome = (Delivery, Result<(), String>);

impl Dispatcher {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let handlers: HashMap<&str, EventHandler> = registry::FUNCTIONS
            .iter()
            .filter_map(|name| match registry::handler(name) {
                Some(Handler::Event(handler)) => Some((*name, handler)),
                _ => None,
            })
            .collect();
        let (settled, outcomes) = mpsc::unbounded_channel();
        let settler = tokio::spawn(settle(self.database.clone(), self.queue.clone(), outcomes));
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let this = Arc::new(self);
        while !*shutdown.borrow() {
            // A free slot first, so a delivery that finishes wakes this loop.
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                _ = shutdown.changed() => continue,
            };
            let now = Utc::now().timestamp_millis();
            let due = this.queue.take_due(now, slots.available_permits() + 1);
            if due.is_empty() {
                drop(permit);
                let wait = this.queue.next_due().map_or(IDLE_POLL, |at| Duration::from_millis((at - now).clamp(1, 100) as u64));
                tokio::select! {
                    _ = this.queue.doorbell().notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let mut first = Some(permit);
            for delivery in due {
                let permit = match first.take() {
                    Some(permit) => permit,
                    None => match slots.clone().acquire_owned().await {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                };
                let (this, settled) = (this.clone(), settled.clone());
                let handler = handlers.get(&*delivery.target).copied();
                tokio::spawn(async move {
                    let outcome = match handler {
                        Some(handler) => this.deliver(handler, &delivery).await,
                        None => Err(format!("no event function named {}", delivery.target)),
                    };
                    drop(permit);
                    let _ = settled.send((delivery, outcome));
                });
            }
        }
        // Let the deliveries in flight finish, and their outcomes be recorded,
        // before the process goes.
        let _ = slots.acquire_many(this.concurrency as u32).await;
        drop(settled);
        let _ = settler.await;
    }

    async fn deliver(&self, handler: EventHandler, delivery: &Delivery) -> Result<(), String> {
        let event = (*delivery.event).clone();
        registry::invoke_event(&delivery.target, handler, &self.deps, event).await.map_err(|e| e.to_string())
    }
}

/// Records outcomes as they come, in batches: a handled delivery is deleted,
/// a failed one is due again after its backoff, one out of retries becomes
/// a dead letter. A crash before a handled delivery is deleted delivers it
/// again after the restart; the consumers are idempotent.
async fn settle(database: Arc<Database>, queue: Arc<Queue>, mut outcomes: mpsc::UnboundedReceiver<Outcome>) {
    while let Some(first) = outcomes.recv().await {
        let mut batch = vec![first];
        while batch.len() < SETTLE_BATCH {
            match outcomes.try_recv() {
                Ok(outcome) => batch.push(outcome),
                Err(_) => break,
            }
        }
        let now = Utc::now().timestamp_millis();
        let mut changes = Vec::with_capacity(batch.len());
        let mut again = Vec::new();
        for (delivery, outcome) in batch {
            changes.push(match outcome {
                Ok(()) => Change::Done(delivery.id),
                Err(error) if delivery.attempts >= delivery.max_retries => {
                    tracing::error!(target = &*delivery.target, rule = &*delivery.rule, %error, "retries spent: dead-lettered");
                    let event = serde_json::to_string(&*delivery.event).unwrap_or_default();
                    Change::Spent { id: delivery.id, target: delivery.target.to_string(), rule: delivery.rule.to_string(), event, error }
                }
                Err(error) => {
                    let attempts = delivery.attempts + 1;
                    let backoff = Duration::from_millis(50u64.saturating_mul(1 << attempts.min(16))).min(MAX_BACKOFF);
                    let due_at = now + backoff.as_millis() as i64;
                    tracing::warn!(target = &*delivery.target, attempts, %error, "delivery failed; will retry");
                    again.push(Delivery { attempts, due_at, ..delivery.clone() });
                    Change::Retry { id: delivery.id, attempts, due_at, error }
                }
            });
        }
        let recorded = database
            .write(move |connection| {
                for change in &changes {
                    match change {
                        Change::Done(id) => remove_delivery(connection, *id)?,
                        Change::Spent { id, target, rule, event, error } => {
                            dead_letter(connection, target, rule, event, error)?;
                            remove_delivery(connection, *id)?
                        }
                        Change::Retry { id, attempts, due_at, error } => {
                            connection
                                .prepare_cached("UPDATE deliveries SET attempts = ?2, due_at = ?3, last_error = ?4 WHERE id = ?1")?
                                .execute(params![id, attempts, due_at, error])?;
                        }
                    }
                }
                Ok::<_, rusqlite::Error>(())
            })
            .await;
        if let Err(error) = recorded {
            // The stored deliveries stay as they were: after a restart they
            // are delivered again.
            tracing::error!(%error, "cannot record the deliveries' outcomes");
        }
        queue.push(again);
    }
}

enum Change {
    Done(i64),
    Spent { id: i64, target: String, rule: String, event: String, error: String },
    Retry { id: i64, attempts: u32, due_at: i64, error: String },
}

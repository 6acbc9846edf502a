//! Delivers the bus's queued deliveries to their functions, concurrently and
//! in no guaranteed order (as EventBridge does), retrying failures with
//! exponential backoff and dead-lettering what keeps failing.

use crate::bus::{dead_letter, remove_batch, remove_delivery, store_alone};
use crate::queue::{Delivery, Queue, Stored};
use chrono::Utc;
use functions::Deps;
use functions::embedded::Database;
use functions::registry::{self, EventHandler, Handler};
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
        match &delivery.event.decoded {
            Ok(event) => registry::invoke_event(&delivery.target, handler, &self.deps, event).await.map_err(|e| e.to_string()),
            Err(error) => Err(error.clone()),
        }
    }
}

/// Records outcomes as they come, several in one write: a handled delivery
/// is done with (its batch's row goes with the batch's last delivery; a row
/// of its own goes at once), a failed one is stored alone, due again after
/// its backoff, and one out of retries becomes a dead letter. A crash before
/// a handled delivery's row is removed delivers it again after the restart;
/// the consumers are idempotent.
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
            // Whatever the outcome, this delivery no longer needs its batch's row.
            match &delivery.stored {
                Stored::Batch(stored) if stored.finish() => changes.push(Change::BatchDone(stored.id)),
                Stored::Batch(_) => {}
                Stored::Alone => changes.push(Change::Done(delivery.id)),
            }
            match outcome {
                Ok(()) => {}
                Err(error) if delivery.attempts >= delivery.max_retries => {
                    tracing::error!(target = &*delivery.target, rule = &*delivery.rule, %error, "retries spent: dead-lettered");
                    let event = delivery.event.text.to_string();
                    changes.push(Change::Spent { target: delivery.target.to_string(), rule: delivery.rule.to_string(), event, error });
                }
                Err(error) => {
                    let attempts = delivery.attempts + 1;
                    let backoff = Duration::from_millis(50u64.saturating_mul(1 << attempts.min(16))).min(MAX_BACKOFF);
                    let due_at = now + backoff.as_millis() as i64;
                    tracing::warn!(target = &*delivery.target, attempts, %error, "delivery failed; will retry");
                    let retry = Delivery { attempts, due_at, stored: Stored::Alone, ..delivery };
                    changes.push(Change::Retry(retry.clone(), error));
                    again.push(retry);
                }
            }
        }
        let recorded = database
            .write(move |connection| {
                for change in &changes {
                    match change {
                        Change::BatchDone(id) => remove_batch(connection, *id)?,
                        Change::Done(id) => remove_delivery(connection, *id)?,
                        Change::Spent { target, rule, event, error } => dead_letter(connection, target, rule, event, error)?,
                        // Its old row, if it had one alone, is removed above.
                        Change::Retry(delivery, error) => store_alone(connection, delivery, error)?,
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

/// What one outcome changes in the stored deliveries.
enum Change {
    /// The last delivery of a batch is done with.
    BatchDone(i64),
    /// A delivery stored alone is done with.
    Done(i64),
    Spent {
        target: String,
        rule: String,
        event: String,
        error: String,
    },
    /// Failed: stored alone, with its attempts and when it is due again.
    Retry(Delivery, String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{LocalBus, stored_deliveries};
    use crate::template::Wiring;
    use functions::ports::{BusEntry, EventBus};

    /// Two functions whose rules match the same events.
    fn wiring() -> Wiring {
        let pattern = r#"{"source": ["food-delivery.test"]}"#;
        crate::template::rule_targets(&[("first", pattern), ("second", pattern)])
    }

    /// Records `outcomes` as the dispatcher does, and waits until they are.
    async fn record(database: &Arc<Database>, queue: &Arc<Queue>, outcomes: Vec<Outcome>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        for outcome in outcomes {
            sender.send(outcome).expect("the settler listens");
        }
        drop(sender);
        settle(database.clone(), queue.clone(), receiver).await;
    }

    #[tokio::test]
    async fn a_batch_stays_stored_until_its_last_delivery_is_done_with_and_a_failed_one_is_stored_alone() {
        let database = Database::temporary().expect("a temporary database");
        let bus = LocalBus::new(database.clone(), &wiring()).expect("the bus starts");
        let entry =
            BusEntry { source: "food-delivery.test".into(), detail_type: "OrderPlaced".into(), detail: r#"{"orderId":"o1"}"#.into() };
        let outcome = bus.put_events(&[entry]).await.expect("the entry is taken");
        assert!(outcome.failed.is_empty());
        let queue = bus.queue();
        let mut due = queue.take_due(i64::MAX, 10);
        let targets: Vec<&str> = due.iter().map(|d| &*d.target).collect();
        assert_eq!(targets, ["first", "second"], "one delivery per matching rule");
        let stored = |database: &Arc<Database>| {
            stored_deliveries(database).expect("the stored deliveries read").into_iter().map(|(target, _)| target).collect::<Vec<_>>()
        };

        let second = due.pop().expect("two deliveries");
        let first = due.pop().expect("two deliveries");
        record(&database, &queue, vec![(first, Ok(()))]).await;
        assert_eq!(stored(&database), ["first", "second"], "the batch stays while one of its deliveries is not done");
        assert!(!crate::bus::is_settled(&database).expect("it reads"), "nor is the bus settled");

        record(&database, &queue, vec![(second, Err("the function failed".into()))]).await;
        assert_eq!(stored(&database), ["second"], "the batch is gone; the failed delivery is stored alone");
        let retry = queue.take_due(i64::MAX, 10);
        assert_eq!(retry.iter().map(|d| (&*d.target, d.attempts)).collect::<Vec<_>>(), [("second", 1)], "and due again");

        let reopened = LocalBus::new(database.clone(), &wiring()).expect("a new bus starts on what is stored");
        let requeued = reopened.queue().take_due(i64::MAX, 10);
        assert_eq!(requeued.iter().map(|d| (&*d.target, d.attempts)).collect::<Vec<_>>(), [("second", 1)], "after a restart too");

        record(&database, &queue, retry.into_iter().map(|d| (d, Ok(()))).collect()).await;
        assert!(stored(&database).is_empty(), "done with: nothing is stored any more");
        assert!(crate::bus::is_settled(&database).expect("it reads"));
    }
}

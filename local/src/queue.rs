//! The bus's deliveries waiting for their turn, in memory, earliest due
//! first. The `deliveries` table is their durable copy: a delivery is stored
//! before PutEvents answers and deleted once its function has handled it, and
//! the queue is filled from the table when the runner starts. In between the
//! dispatcher never reads the table back: no claim to write, no event to
//! decode again.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use functions::registry::BusEvent;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// A PutEvents entry as the bus hands it to every target of its rules.
pub type Event = Arc<Routed>;

#[derive(Debug)]
pub struct Routed {
    /// The EventBridge event as JSON: what is stored, and dead-lettered.
    pub text: Box<str>,
    /// The event as event functions take it, read once for all the targets;
    /// or why it cannot be (its detail is no envelope), which fails each
    /// delivery as the Lambda runtime would fail the invocation.
    pub decoded: Result<BusEvent, String>,
}

impl Routed {
    /// `text` must be an EventBridge event; its detail may be any object.
    pub fn read(text: impl Into<Box<str>>) -> Result<Routed, String> {
        let text = text.into();
        serde_json::from_str::<EventBridgeEvent<Box<RawValue>>>(&text).map_err(|e| e.to_string())?;
        Ok(Routed::new(text))
    }

    /// An event as the bus built it.
    pub fn of(event: &EventBridgeEvent<Box<RawValue>>) -> Result<Routed, String> {
        Ok(Routed::new(serde_json::to_string(event).map_err(|e| e.to_string())?.into()))
    }

    /// The text of an EventBridge event, and the event read from it.
    pub fn new(text: Box<str>) -> Routed {
        let decoded = serde_json::from_str(&text).map_err(|e| format!("the event is not the input of an event function: {e}"));
        Routed { text, decoded }
    }
}

#[derive(Debug, Clone)]
pub struct Delivery {
    /// Unique among the deliveries of a run; the row's id in `deliveries`
    /// once it is stored alone.
    pub id: i64,
    pub stored: Stored,
    pub target: Arc<str>,
    pub rule: Arc<str>,
    pub event: Event,
    /// Failed attempts so far.
    pub attempts: u32,
    pub max_retries: u32,
    /// Unix milliseconds.
    pub due_at: i64,
}

/// Where a delivery's durable copy is.
#[derive(Debug, Clone)]
pub enum Stored {
    /// In the row of the PutEvents call that made it, beside the other
    /// deliveries of that call: one row per call, not one per delivery.
    Batch(Arc<Batch>),
    /// In a row of its own in `deliveries`: one that failed and waits for
    /// its retry.
    Alone,
}

/// The stored row of one PutEvents call, and how many of its deliveries
/// are not done yet: the row goes with the last of them.
#[derive(Debug)]
pub struct Batch {
    pub id: i64,
    remaining: AtomicUsize,
}

impl Batch {
    pub fn new(id: i64, deliveries: usize) -> Arc<Batch> {
        Arc::new(Batch { id, remaining: AtomicUsize::new(deliveries) })
    }

    /// One of its deliveries is done with; true for the last.
    pub fn finish(&self) -> bool {
        self.remaining.fetch_sub(1, Ordering::AcqRel) == 1
    }
}

#[derive(Default)]
pub struct Queue {
    waiting: Mutex<BTreeMap<(i64, i64), Delivery>>,
    doorbell: Notify,
}

impl Queue {
    pub fn push(&self, deliveries: impl IntoIterator<Item = Delivery>) {
        let mut waiting = self.lock();
        let before = waiting.len();
        for delivery in deliveries {
            waiting.insert((delivery.due_at, delivery.id), delivery);
        }
        if waiting.len() > before {
            drop(waiting);
            self.doorbell.notify_one();
        }
    }

    /// Takes up to `limit` deliveries due at `now`, earliest first.
    pub fn take_due(&self, now: i64, limit: usize) -> Vec<Delivery> {
        let mut waiting = self.lock();
        let mut due = Vec::new();
        while due.len() < limit {
            match waiting.first_entry() {
                Some(entry) if entry.key().0 <= now => due.push(entry.remove()),
                _ => break,
            }
        }
        due
    }

    /// When the earliest waiting delivery is due, if any waits.
    pub fn next_due(&self) -> Option<i64> {
        self.lock().first_key_value().map(|((due_at, _), _)| *due_at)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rung whenever deliveries are pushed.
    pub fn doorbell(&self) -> &Notify {
        &self.doorbell
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<(i64, i64), Delivery>> {
        // Every change to the map is a single call: a panic elsewhere leaves it whole.
        self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eventbridge(detail: &str) -> String {
        format!(r#"{{"version":"0","id":"e1","detail-type":"OrderAccepted","source":"food-delivery.ordering","detail":{detail}}}"#)
    }

    #[test]
    fn an_event_is_read_once_for_its_functions_and_a_detail_that_is_no_envelope_fails_them() {
        let meta = domain::Metadata { correlation_id: "o1".into(), causation_id: "r1".into(), time: chrono::Utc::now() };
        let accepted = domain::ordering::OrderEvent::OrderAccepted {
            customer_id: domain::CustomerId("c1".into()),
            store_id: domain::StoreId("s1".into()),
        };
        let envelope = domain::Envelope::wrap::<domain::ordering::Order>("o1", 2, &accepted, &meta);
        let text = eventbridge(&serde_json::to_string(&envelope).expect("an envelope serializes"));
        let routed = Routed::read(text.as_str()).expect("an EventBridge event");
        assert_eq!(routed.decoded.as_ref().map(|event| &event.detail), Ok(&envelope), "the functions get the envelope as sent");
        assert_eq!(&*routed.text, text, "and the text is kept as it came, to store");

        let other = Routed::read(eventbridge(r#"{"orderId":"o1"}"#)).expect("any object is an EventBridge detail");
        let error = other.decoded.expect_err("but no function takes it");
        assert!(error.contains("not the input of an event function"), "{error}");
        assert!(Routed::read("[]").is_err(), "what is no EventBridge event at all is not read");
    }

    fn delivery(id: i64, due_at: i64) -> Delivery {
        Delivery {
            id,
            stored: Stored::Alone,
            target: "notify-customer".into(),
            rule: "Notify".into(),
            event: Arc::new(Routed::new("{}".into())),
            attempts: 0,
            max_retries: 3,
            due_at,
        }
    }

    #[test]
    fn deliveries_come_out_due_first_and_not_before_their_time() {
        let queue = Queue::default();
        queue.push([delivery(3, 20), delivery(1, 10), delivery(2, 10), delivery(4, 50)]);
        let ids = |taken: Vec<Delivery>| taken.iter().map(|d| d.id).collect::<Vec<_>>();
        assert_eq!(ids(queue.take_due(5, 10)), Vec::<i64>::new(), "nothing is due yet");
        assert_eq!(ids(queue.take_due(20, 2)), vec![1, 2], "at most the limit, earliest first, ties by id");
        assert_eq!(ids(queue.take_due(20, 10)), vec![3]);
        assert_eq!(queue.next_due(), Some(50));
        assert_eq!(ids(queue.take_due(i64::MAX, 10)), vec![4]);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_batch_is_done_with_its_last_delivery_and_only_then() {
        let batch = Batch::new(7, 3);
        let finished: Vec<bool> = (0..3).map(|_| batch.finish()).collect();
        assert_eq!(finished, [false, false, true]);
    }
}

//! The local EventBridge: `PutEvents` matches every entry against the rules
//! of `template.yaml` and stores the call's deliveries (one per matching
//! target) in one row, in the same SQLite file as the events, so nothing
//! accepted is lost on a restart; it queues them in memory for the
//! dispatcher (`queue.rs`) without waiting for that commit. The row goes
//! once every delivery in it is done; one that fails gets a row of its own
//! in `deliveries` until its retry succeeds or it is dead-lettered.

use crate::queue::{Batch, Delivery, Event, Queue, Routed, Stored};
use crate::template::{Rule, Wiring};
use async_trait::async_trait;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use domain::Envelope;
use functions::embedded::Database;
use functions::ports::{BusEntry, BusError, EventBus, EventStore, MAX_BATCH, PutOutcome, StoreError};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    rule TEXT NOT NULL,
    event TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_retries INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    leased INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
-- Deliveries are claimed in memory now: the table is only their durable copy.
DROP INDEX IF EXISTS deliveries_due;
-- One row per PutEvents call: its events, each stored once, and its deliveries.
CREATE TABLE IF NOT EXISTS put_batches (
    id INTEGER PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    rule TEXT NOT NULL,
    event TEXT NOT NULL,
    error TEXT NOT NULL,
    failed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);";

/// A rule and the function it invokes.
#[derive(Debug, Clone)]
pub struct Target {
    pub function: String,
    pub rule: Rule,
}

pub struct LocalBus {
    database: Arc<Database>,
    targets: Vec<Target>,
    /// The events' fields the rules read.
    fields: Vec<String>,
    queue: Arc<Queue>,
    /// The id the next batch or delivery gets: known before it is stored,
    /// so it can be queued at once.
    next_id: AtomicI64,
}

impl LocalBus {
    /// Creates the bus's tables, and queues every delivery stored by an
    /// earlier run that was not handled yet.
    pub fn new(database: Arc<Database>, wiring: &Wiring) -> rusqlite::Result<LocalBus> {
        database.write_blocking(|connection| connection.execute_batch(SCHEMA))?;
        let targets: Vec<Target> = wiring
            .functions
            .iter()
            .flat_map(|function| function.rules.iter().map(|rule| Target { function: function.name.clone(), rule: rule.clone() }))
            .collect();
        // AUTOINCREMENT's sequence: ids are never given twice, even after
        // the rows that had them are deleted. Batches and deliveries share it.
        let last: i64 = database.read(|connection| {
            connection.query_row(
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'deliveries'), 0),
                            COALESCE((SELECT MAX(id) FROM deliveries), 0),
                            COALESCE((SELECT MAX(id) FROM put_batches), 0))",
                [],
                |row| row.get(0),
            )
        })?;
        let bus = LocalBus {
            database,
            targets,
            fields: fields_read(wiring),
            queue: Arc::new(Queue::default()),
            next_id: AtomicI64::new(last + 1),
        };
        bus.requeue_stored()?;
        Ok(bus)
    }

    /// The deliveries waiting for the dispatcher.
    pub fn queue(&self) -> Arc<Queue> {
        self.queue.clone()
    }

    fn requeue_stored(&self) -> rusqlite::Result<()> {
        let (batches, alone) = self.database.read(|connection| {
            let batches: Vec<(i64, String)> = connection
                .prepare("SELECT id, body FROM put_batches ORDER BY id")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let alone: Vec<(i64, String, String, String, u32, u32, i64)> = connection
                .prepare("SELECT id, target, rule, event, attempts, max_retries, due_at FROM deliveries ORDER BY id")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok::<_, rusqlite::Error>((batches, alone))
        })?;
        let (mut queued, mut unreadable) = (Vec::new(), Unreadable::default());
        for (id, body) in batches {
            self.requeue_batch(id, &body, &mut queued, &mut unreadable);
        }
        for (id, target, rule, text, attempts, max_retries, due_at) in alone {
            match Routed::read(text.as_str()) {
                Ok(event) => queued.push(Delivery {
                    id,
                    stored: Stored::Alone,
                    target: target.into(),
                    rule: rule.into(),
                    event: Arc::new(event),
                    attempts,
                    max_retries,
                    due_at,
                }),
                Err(error) => {
                    unreadable.parked.push((target, rule, text, format!("the stored event is not readable: {error}")));
                    unreadable.rows.push(id);
                }
            }
        }
        if !unreadable.parked.is_empty() {
            tracing::error!(count = unreadable.parked.len(), "stored deliveries cannot be read: dead-lettered");
            self.database.write_blocking(move |connection| {
                for (target, rule, text, error) in &unreadable.parked {
                    dead_letter(connection, target, rule, text, error)?;
                }
                for id in &unreadable.rows {
                    remove_delivery(connection, *id)?;
                }
                for id in &unreadable.batches {
                    remove_batch(connection, *id)?;
                }
                Ok::<_, rusqlite::Error>(())
            })?;
        }
        if !queued.is_empty() {
            tracing::info!(count = queued.len(), "deliveries from the last run are due again");
        }
        self.queue.push(queued);
        Ok(())
    }

    /// Queues the deliveries of a stored batch; what cannot be read is
    /// parked, and a batch none of whose deliveries can be read goes.
    fn requeue_batch(&self, id: i64, body: &str, queued: &mut Vec<Delivery>, unreadable: &mut Unreadable) {
        let batch: StoredBatch = match serde_json::from_str(body) {
            Ok(batch) => batch,
            Err(error) => {
                unreadable.parked.push((
                    String::new(),
                    String::new(),
                    body.to_owned(),
                    format!("the stored batch is not readable: {error}"),
                ));
                unreadable.batches.push(id);
                return;
            }
        };
        let events: Vec<Result<Event, String>> = batch.events.iter().map(|event| Routed::read(event.get()).map(Arc::new)).collect();
        let mut readable = Vec::new();
        for delivery in batch.deliveries {
            match events.get(delivery.event) {
                Some(Ok(event)) => readable.push((delivery, event.clone())),
                found => {
                    let text = batch.events.get(delivery.event).map(|event| event.get().to_owned()).unwrap_or_default();
                    let error = match found {
                        Some(Err(error)) => format!("the stored event is not readable: {error}"),
                        _ => format!("the stored batch has no event {}", delivery.event),
                    };
                    unreadable.parked.push((delivery.target, delivery.rule, text, error));
                }
            }
        }
        if readable.is_empty() {
            unreadable.batches.push(id);
            return;
        }
        let stored = Batch::new(id, readable.len());
        let first = self.next_id.fetch_add(readable.len() as i64, Ordering::Relaxed);
        queued.extend(readable.into_iter().zip(first..).map(|((delivery, event), delivery_id)| Delivery {
            id: delivery_id,
            stored: Stored::Batch(stored.clone()),
            target: delivery.target.into(),
            rule: delivery.rule.into(),
            event,
            attempts: 0,
            max_retries: delivery.max_retries,
            due_at: 0,
        }));
    }

    /// The functions whose rules match `event`, as EventBridge would pick them.
    pub fn targets_of(&self, event: &Value) -> Vec<&Target> {
        self.targets.iter().filter(|target| target.rule.pattern.matches(event)).collect()
    }
}

/// The event EventBridge hands to a rule's targets for one PutEvents entry.
/// Its detail must be a JSON object.
pub fn eventbridge_event(entry: &BusEntry) -> Result<EventBridgeEvent<Box<RawValue>>, String> {
    let malformed = || "the detail must be a JSON object".to_owned();
    let detail = RawValue::from_string(entry.detail.clone()).map_err(|_| malformed())?;
    if !detail.get().starts_with('{') {
        return Err(malformed());
    }
    let mut event = EventBridgeEvent::<Box<RawValue>>::default();
    event.version = Some("0".into());
    event.id = Some(uuid::Uuid::new_v4().to_string());
    event.detail_type = entry.detail_type.clone();
    event.source = entry.source.clone();
    event.account = Some("000000000000".into());
    // EventBridge's times are whole seconds.
    event.time = Utc::now().with_nanosecond(0);
    event.region = Some("local".into());
    event.resources = Some(Vec::new());
    event.detail = detail;
    Ok(event)
}

/// The events' top-level fields that the rules of `wiring` read.
pub fn fields_read(wiring: &Wiring) -> Vec<String> {
    let rules = wiring.functions.iter().flat_map(|function| &function.rules);
    let mut fields: Vec<String> = rules.flat_map(|rule| rule.pattern.fields()).map(str::to_owned).collect();
    fields.sort();
    fields.dedup();
    fields
}

/// The event as the rules' patterns see it, with the fields they read
/// (`fields`) and no others: the rest cannot change a match, and the
/// detail need not be decoded when no pattern looks into it.
pub fn matchable(event: &EventBridgeEvent<Box<RawValue>>, fields: &[String]) -> Result<Value, String> {
    let mut seen = Map::new();
    for field in fields {
        let value = match field.as_str() {
            "version" => json!(event.version),
            "id" => json!(event.id),
            "detail-type" => json!(event.detail_type),
            "source" => json!(event.source),
            "account" => json!(event.account),
            "time" => json!(event.time.map(|time| time.to_rfc3339_opts(SecondsFormat::Secs, true))),
            "region" => json!(event.region),
            "resources" => json!(event.resources),
            "detail" => serde_json::from_str(event.detail.get()).map_err(|e| e.to_string())?,
            _ => continue,
        };
        seen.insert(field.clone(), value);
    }
    Ok(Value::Object(seen))
}

/// One delivery to store and queue.
struct Row {
    target: Arc<str>,
    rule: Arc<str>,
    event: Event,
    max_retries: u32,
}

/// A stored batch: each event once, and the deliveries that point at them.
#[derive(Deserialize)]
struct StoredBatch {
    events: Vec<Box<RawValue>>,
    deliveries: Vec<StoredDelivery>,
}

/// Read with owned names, written with borrowed ones.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredDelivery<S = String> {
    /// Its event's index in `events`.
    event: usize,
    target: S,
    rule: S,
    max_retries: u32,
}

/// The JSON of a `StoredBatch`, built from the texts the rows share: an
/// event matched by several rules is written once.
fn batch_body(rows: &[Row]) -> serde_json::Result<String> {
    let mut events: Vec<&Event> = Vec::new();
    let mut deliveries = Vec::with_capacity(rows.len());
    for row in rows {
        let event = match events.iter().position(|event| Arc::ptr_eq(event, &row.event)) {
            Some(index) => index,
            None => {
                events.push(&row.event);
                events.len() - 1
            }
        };
        deliveries.push(StoredDelivery { event, target: &*row.target, rule: &*row.rule, max_retries: row.max_retries });
    }
    let events: Vec<&str> = events.iter().map(|event| &*event.text).collect();
    Ok(format!(r#"{{"events":[{}],"deliveries":{}}}"#, events.join(","), serde_json::to_string(&deliveries)?))
}

/// What a restart found it cannot deliver: parked as dead letters
/// (target, rule, event, error), and the rows to remove with them. A batch
/// some of whose deliveries can be read stays until those are done; were
/// the runner to stop before, the others would be parked once more.
#[derive(Default)]
struct Unreadable {
    parked: Vec<(String, String, String, String)>,
    rows: Vec<i64>,
    batches: Vec<i64>,
}

#[async_trait]
impl EventBus for LocalBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<PutOutcome, BusError> {
        self.enqueue(entries).await.map(|(outcome, _)| outcome)
    }
}

impl LocalBus {
    /// PutEvents: one stored delivery per matching target. Also says how many
    /// deliveries were stored.
    async fn enqueue(&self, entries: &[BusEntry]) -> Result<(PutOutcome, usize), BusError> {
        let mut outcome = PutOutcome::default();
        let mut rows: Vec<Row> = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            match self.rows_for(entry) {
                Ok(matched) => rows.extend(matched),
                Err(error) => outcome.failed.push((index, format!("MalformedDetail: {error}"))),
            }
        }
        let stored = rows.len();
        self.store(rows, Vec::new()).await.map_err(|e| BusError::Unavailable(e.to_string()))?;
        Ok((outcome, stored))
    }

    /// The entry's deliveries, one per matching target: its event is built,
    /// written as text and shared by all of them.
    fn rows_for(&self, entry: &BusEntry) -> Result<Vec<Row>, String> {
        let event = eventbridge_event(entry)?;
        let targets = self.targets_of(&matchable(&event, &self.fields)?);
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let event: Event = Arc::new(Routed::of(&event)?);
        Ok(targets
            .into_iter()
            .map(|target| Row {
                target: target.function.as_str().into(),
                rule: target.rule.name.as_str().into(),
                event: event.clone(),
                max_retries: target.rule.max_retries,
            })
            .collect())
    }

    /// Stores the deliveries, in one row, and removes the dead letters they
    /// replace, in one transaction: a crash leaves either both or neither.
    /// They are queued at once, not after the commit: a delivery handled
    /// before its row is stored is recorded after it (the writer keeps the
    /// order of writes), and if the commit fails, PutEvents fails and the
    /// sender sends again; the consumers take repeats. That keeps a group
    /// commit off every hop between a command and the policies it sets off.
    async fn store(&self, rows: Vec<Row>, redriven: Vec<i64>) -> rusqlite::Result<()> {
        if rows.is_empty() && redriven.is_empty() {
            return Ok(());
        }
        let now = Utc::now().timestamp_millis();
        let batch = self.next_id.fetch_add(1 + rows.len() as i64, Ordering::Relaxed);
        let body = (!rows.is_empty())
            .then(|| batch_body(&rows))
            .transpose()
            .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?;
        let written = self.database.write(move |connection| {
            if let Some(body) = &body {
                connection.prepare_cached("INSERT INTO put_batches (id, body) VALUES (?1, ?2)")?.execute(params![batch, body])?;
            }
            let mut delete = connection.prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?;
            for id in &redriven {
                delete.execute(params![id])?;
            }
            Ok::<_, rusqlite::Error>(())
        });
        let stored = Batch::new(batch, rows.len());
        self.queue.push(rows.into_iter().zip(batch + 1..).map(|(row, id)| Delivery {
            id,
            stored: Stored::Batch(stored.clone()),
            target: row.target,
            rule: row.rule,
            event: row.event,
            attempts: 0,
            max_retries: row.max_retries,
            due_at: now,
        }));
        written.await
    }

    /// Re-delivers every stored event of time `since` or later to every rule
    /// that matches it, as EventBridge's archive replay does. The consumers
    /// are idempotent: what they already did, they do not do twice.
    pub async fn replay(&self, store: &dyn EventStore, since: DateTime<Utc>) -> Result<Replayed, ReplayError> {
        let mut replayed = Replayed { since, events: 0, deliveries: 0 };
        let mut after = None;
        loop {
            let page = store.read_all(after.as_deref(), 500).await?;
            let entries = page.events.iter().filter(|event| event.time >= since).map(entry_of).collect::<Result<Vec<_>, _>>()?;
            for chunk in entries.chunks(MAX_BATCH) {
                let (outcome, deliveries) = self.enqueue(chunk).await?;
                if let Some((index, reason)) = outcome.failed.first() {
                    return Err(ReplayError::Refused(format!("{}: {reason}", chunk[*index].detail_type)));
                }
                replayed.events += chunk.len();
                replayed.deliveries += deliveries;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        tracing::info!(%since, events = replayed.events, deliveries = replayed.deliveries, "events replayed");
        Ok(replayed)
    }

    /// Moves every dead letter back: a delivery that failed goes to its
    /// target again, with its retries afresh; an event the stream could not
    /// publish is published. What cannot go back (its rule is gone from the
    /// template, the stored event is unreadable) stays a dead letter.
    pub async fn redrive(&self) -> rusqlite::Result<Redriven> {
        let letters: Vec<(i64, String, String, String)> = self.database.read(|connection| {
            connection
                .prepare("SELECT id, target, rule, event FROM dead_letters ORDER BY id")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?
                .collect()
        })?;
        let (mut rows, mut redriven_ids, mut kept) = (Vec::new(), Vec::new(), Vec::new());
        for (id, target, rule, event) in letters {
            let again = if rule == STREAM_RULE {
                serde_json::from_str::<Envelope>(&event)
                    .map_err(|e| format!("the event is not readable: {e}"))
                    .and_then(|envelope| entry_of(&envelope).map_err(|e| e.to_string()))
                    .and_then(|entry| self.rows_for(&entry))
            } else {
                self.targets
                    .iter()
                    .find(|t| t.function == target && t.rule.name == rule)
                    .ok_or_else(|| format!("template.yaml has no rule {rule} for {target} any more"))
                    .and_then(|t| {
                        let routed = Routed::read(event.as_str()).map_err(|e| format!("the stored event is not readable: {e}"))?;
                        Ok(vec![Row {
                            target: target.as_str().into(),
                            rule: rule.as_str().into(),
                            event: Arc::new(routed),
                            max_retries: t.rule.max_retries,
                        }])
                    })
            };
            match again {
                Ok(again) => {
                    rows.extend(again);
                    redriven_ids.push(id);
                }
                Err(reason) => kept.push(KeptLetter { id, target, reason }),
            }
        }
        let (redriven, deliveries) = (redriven_ids.len(), rows.len());
        self.store(rows, redriven_ids).await?;
        tracing::info!(redriven, kept = kept.len(), "dead letters redriven");
        Ok(Redriven { redriven, deliveries, kept })
    }
}

/// The rule name under which the stream's failures are dead-lettered.
pub const STREAM_RULE: &str = "Stream";

/// The bus entry the publisher makes of a stored event.
fn entry_of(envelope: &Envelope) -> Result<BusEntry, ReplayError> {
    let source = envelope.source().ok_or_else(|| ReplayError::Refused(format!("{} has no source", envelope.event_id)))?;
    let detail = serde_json::to_string(envelope).map_err(|e| ReplayError::Refused(e.to_string()))?;
    Ok(BusEntry { source: source.to_owned(), detail_type: envelope.event_type.clone(), detail })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replayed {
    pub since: DateTime<Utc>,
    /// Stored events of that time or later.
    pub events: usize,
    /// Deliveries they made: one per matching rule.
    pub deliveries: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("an event cannot be replayed: {0}")]
    Refused(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Redriven {
    /// Dead letters moved back.
    pub redriven: usize,
    /// Deliveries they made.
    pub deliveries: usize,
    /// Dead letters that stay, and why.
    pub kept: Vec<KeptLetter>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptLetter {
    pub id: i64,
    pub target: String,
    pub reason: String,
}

/// A position kept across restarts (how far the stream has been published).
pub fn read_cursor(database: &Database, name: &str) -> rusqlite::Result<i64> {
    database.read(|connection| {
        connection.query_row("SELECT COALESCE((SELECT position FROM cursors WHERE name = ?1), 0)", params![name], |row| row.get(0))
    })
}

/// Queued at once: writes of one cursor are committed in the order they are made.
pub fn write_cursor(database: &Database, name: &str, position: i64) -> impl Future<Output = rusqlite::Result<()>> + use<> {
    let name = name.to_owned();
    database.write_statement(move |connection| {
        connection
            .prepare_cached("INSERT INTO cursors (name, position) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET position = ?2")?
            .execute(params![name, position])?;
        Ok(())
    })
}

/// A stored batch whose deliveries are all done with.
pub fn remove_batch(connection: &Connection, id: i64) -> rusqlite::Result<()> {
    connection.prepare_cached("DELETE FROM put_batches WHERE id = ?1")?.execute(params![id])?;
    Ok(())
}

/// A failed delivery of a batch, stored alone to wait for its retry.
pub fn store_alone(connection: &Connection, delivery: &Delivery, error: &str) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO deliveries (id, target, rule, event, attempts, max_retries, due_at, last_error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            delivery.id,
            &*delivery.target,
            &*delivery.rule,
            &*delivery.event.text,
            delivery.attempts,
            delivery.max_retries,
            delivery.due_at,
            error
        ])?;
    Ok(())
}

/// Every stored delivery not done yet, as (target, EventBridge event), in
/// the order stored: batched ones first, then those waiting for a retry.
pub fn stored_deliveries(database: &Database) -> rusqlite::Result<Vec<(String, Value)>> {
    let (batches, alone): (Vec<String>, Vec<(String, String)>) = database.read(|connection| {
        let batches = connection
            .prepare("SELECT body FROM put_batches ORDER BY id")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let alone = connection
            .prepare("SELECT target, event FROM deliveries ORDER BY id")?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok::<_, rusqlite::Error>((batches, alone))
    })?;
    let unreadable = |error: serde_json::Error| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(error));
    let mut stored = Vec::new();
    for body in batches {
        let batch: StoredBatch = serde_json::from_str(&body).map_err(unreadable)?;
        for delivery in batch.deliveries {
            let event = batch.events.get(delivery.event).map(|event| serde_json::from_str(event.get())).transpose().map_err(unreadable)?;
            stored.push((delivery.target, event.unwrap_or(Value::Null)));
        }
    }
    for (target, event) in alone {
        stored.push((target, serde_json::from_str(&event).map_err(unreadable)?));
    }
    Ok(stored)
}

/// A stored delivery that is done with: handled, or parked as a dead letter.
pub fn remove_delivery(connection: &Connection, id: i64) -> rusqlite::Result<()> {
    connection.prepare_cached("DELETE FROM deliveries WHERE id = ?1")?.execute(params![id])?;
    Ok(())
}

/// Parks what could not be delivered, for a person to look at and redrive.
/// Runs inside a write, so parking a delivery and removing it are one.
pub fn dead_letter(connection: &Connection, target: &str, rule: &str, event: &str, error: &str) -> rusqlite::Result<()> {
    connection.execute(
        "INSERT INTO dead_letters (target, rule, event, error, failed_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![target, rule, event, error, Utc::now().to_rfc3339()],
    )?;
    Ok(())
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub target: String,
    pub rule: String,
    pub event: Value,
    pub error: String,
    pub failed_at: String,
}

pub fn dead_letters(database: &Database) -> rusqlite::Result<Vec<DeadLetter>> {
    database.read(|connection| {
        connection
            .prepare("SELECT target, rule, event, error, failed_at FROM dead_letters ORDER BY id")?
            .query_map([], |row| {
                let event: String = row.get(2)?;
                Ok(DeadLetter {
                    target: row.get(0)?,
                    rule: row.get(1)?,
                    event: serde_json::from_str(&event).unwrap_or(Value::String(event)),
                    error: row.get(3)?,
                    failed_at: row.get(4)?,
                })
            })?
            .collect()
    })
}

/// True once every stored event has been published and every delivery made
/// (or dead-lettered): nothing more will happen until the next command.
pub fn is_settled(database: &Database) -> rusqlite::Result<bool> {
    database.read(|connection| {
        connection.query_row(
            "SELECT (SELECT COUNT(*) FROM deliveries) = 0
                AND (SELECT COUNT(*) FROM put_batches) = 0
                AND COALESCE((SELECT MIN(position) FROM cursors WHERE name LIKE 'stream:%'), 0)
                    >= COALESCE((SELECT MAX(position) FROM events), 0)",
            [],
            |row| row.get(0),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One rule that reads the detail, one that does not.
    fn wiring() -> Wiring {
        crate::template::rule_targets(&[("paid", r#"{"detail": {"status": ["paid"]}}"#), ("any", r#"{"source": ["food-delivery.test"]}"#)])
    }

    #[tokio::test]
    async fn the_detail_is_read_for_the_rules_that_look_into_it_and_must_be_an_object() {
        let database = Database::temporary().expect("a temporary database");
        let bus = LocalBus::new(database, &wiring()).expect("the bus starts");
        assert_eq!(bus.fields, ["detail", "source"]);
        let entry = |detail: &str| BusEntry { source: "food-delivery.test".into(), detail_type: "Test".into(), detail: detail.into() };
        let entries = [entry(r#" {"status": "paid"} "#), entry(r#"{"status":"due"}"#), entry("[1]"), entry("{nope")];
        let outcome = bus.put_events(&entries).await.expect("the call is taken");
        let failed: Vec<usize> = outcome.failed.iter().map(|(index, _)| *index).collect();
        assert_eq!(failed, [2, 3], "exactly the entries whose detail is no JSON object are refused");
        let due = bus.queue().take_due(i64::MAX, 10);
        let routed: Vec<(&str, Value)> = due
            .iter()
            .map(|d| (&*d.target, serde_json::from_str::<Value>(&d.event.text).expect("the event is JSON")["detail"]["status"].clone()))
            .collect();
        assert_eq!(routed, [("paid", json!("paid")), ("any", json!("paid")), ("any", json!("due"))]);
    }
}

//! The local EventBridge: `PutEvents` matches every entry against the rules
//! of `template.yaml` and stores one delivery per matching target, in the
//! same SQLite file as the events, so nothing accepted is lost on a restart;
//! it queues them in memory for the dispatcher (`queue.rs`) without waiting
//! for that commit.

use crate::queue::{Delivery, Event, Queue};
use crate::template::{Rule, Wiring};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::Envelope;
use functions::embedded::Database;
use functions::ports::{BusEntry, BusError, EventBus, EventStore, MAX_BATCH, PutOutcome, StoreError};
use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::{Value, json};
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
    queue: Arc<Queue>,
    /// The id the next stored delivery gets: known before it is stored, so
    /// it can be queued at once.
    next_id: AtomicI64,
}

impl LocalBus {
    /// Creates the bus's tables, and queues every delivery stored by an
    /// earlier run that was not handled yet.
    pub fn new(database: Arc<Database>, wiring: &Wiring) -> rusqlite::Result<LocalBus> {
        database.write_blocking(|connection| connection.execute_batch(SCHEMA))?;
        let targets = wiring
            .functions
            .iter()
            .flat_map(|function| function.rules.iter().map(|rule| Target { function: function.name.clone(), rule: rule.clone() }))
            .collect();
        // AUTOINCREMENT's sequence: ids are never given twice, even after
        // the rows that had them are deleted.
        let last: i64 = database.read(|connection| {
            connection.query_row(
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'deliveries'), 0),
                            COALESCE((SELECT MAX(id) FROM deliveries), 0))",
                [],
                |row| row.get(0),
            )
        })?;
        let bus = LocalBus { database, targets, queue: Arc::new(Queue::default()), next_id: AtomicI64::new(last + 1) };
        bus.requeue_stored()?;
        Ok(bus)
    }

    /// The deliveries waiting for the dispatcher.
    pub fn queue(&self) -> Arc<Queue> {
        self.queue.clone()
    }

    fn requeue_stored(&self) -> rusqlite::Result<()> {
        type Stored = (i64, String, String, String, u32, u32, i64);
        let stored: Vec<Stored> = self.database.read(|connection| {
            connection
                .prepare("SELECT id, target, rule, event, attempts, max_retries, due_at FROM deliveries ORDER BY id")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?)))?
                .collect()
        })?;
        let (mut queued, mut unreadable) = (Vec::new(), Vec::new());
        for (id, target, rule, text, attempts, max_retries, due_at) in stored {
            match serde_json::from_str(&text) {
                Ok(event) => queued.push(Delivery {
                    id,
                    target: target.into(),
                    rule: rule.into(),
                    event: Arc::new(event),
                    attempts,
                    max_retries,
                    due_at,
                }),
                Err(error) => unreadable.push((id, target, rule, text, format!("the stored event is not readable: {error}"))),
            }
        }
        if !unreadable.is_empty() {
            tracing::error!(count = unreadable.len(), "stored deliveries cannot be read: dead-lettered");
            self.database.write_blocking(move |connection| {
                for (id, target, rule, text, error) in &unreadable {
                    dead_letter(connection, target, rule, text, error)?;
                    remove_delivery(connection, *id)?;
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

    /// The functions whose rules match `event`, as EventBridge would pick them.
    pub fn targets_of(&self, event: &Value) -> Vec<&Target> {
        self.targets.iter().filter(|target| target.rule.pattern.matches(event)).collect()
    }
}

/// The event EventBridge hands to a rule's target for one PutEvents entry.
pub fn eventbridge_event(entry: &BusEntry, detail: Value) -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": entry.detail_type,
        "source": entry.source,
        "account": "000000000000",
        "time": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "region": "local",
        "resources": [],
        "detail": detail,
    })
}

/// One delivery to store and queue.
struct Row {
    target: Arc<str>,
    rule: Arc<str>,
    text: Arc<str>,
    event: Event,
    max_retries: u32,
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
            let detail = match serde_json::from_str::<Value>(&entry.detail) {
                Ok(detail @ Value::Object(_)) => detail,
                _ => {
                    outcome.failed.push((index, "MalformedDetail: the detail must be a JSON object".into()));
                    continue;
                }
            };
            match self.rows_for(eventbridge_event(entry, detail)) {
                Ok(matched) => rows.extend(matched),
                Err(error) => outcome.failed.push((index, format!("MalformedDetail: {error}"))),
            }
        }
        let stored = rows.len();
        self.store(rows, Vec::new()).await.map_err(|e| BusError::Unavailable(e.to_string()))?;
        Ok((outcome, stored))
    }

    /// The event is decoded once for all its targets.
    fn rows_for(&self, event: Value) -> Result<Vec<Row>, serde_json::Error> {
        let targets = self.targets_of(&event);
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let text: Arc<str> = event.to_string().into();
        let decoded: Event = Arc::new(serde_json::from_value(event)?);
        Ok(targets
            .into_iter()
            .map(|target| Row {
                target: target.function.as_str().into(),
                rule: target.rule.name.as_str().into(),
                text: text.clone(),
                event: decoded.clone(),
                max_retries: target.rule.max_retries,
            })
            .collect())
    }

    /// Stores the deliveries and removes the dead letters they replace, in
    /// one transaction: a crash leaves either both or neither. They are
    /// queued at once, not after the commit: a delivery handled before its
    /// row is stored is deleted after it (the writer keeps the order of
    /// writes), and if the commit fails, PutEvents fails and the sender
    /// sends again; the consumers take repeats. That keeps a group commit
    /// off every hop between a command and the policies it sets off.
    async fn store(&self, rows: Vec<Row>, redriven: Vec<i64>) -> rusqlite::Result<()> {
        let now = Utc::now().timestamp_millis();
        let first = self.next_id.fetch_add(rows.len() as i64, Ordering::Relaxed);
        let stored: Vec<_> = rows
            .iter()
            .zip(first..)
            .map(|(row, id)| (id, row.target.clone(), row.rule.clone(), row.text.clone(), row.max_retries))
            .collect();
        let written = self.database.write(move |connection| {
            let mut insert = connection
                .prepare_cached("INSERT INTO deliveries (id, target, rule, event, max_retries, due_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
            for (id, target, rule, text, max_retries) in &stored {
                insert.execute(params![id, &**target, &**rule, &**text, max_retries, now])?;
            }
            let mut delete = connection.prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?;
            for id in &redriven {
                delete.execute(params![id])?;
            }
            Ok::<_, rusqlite::Error>(())
        });
        self.queue.push(rows.into_iter().zip(first..).map(|(row, id)| Delivery {
            id,
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
                    .and_then(|entry| {
                        let detail = serde_json::from_str(&entry.detail).map_err(|e| e.to_string())?;
                        self.rows_for(eventbridge_event(&entry, detail)).map_err(|e| e.to_string())
                    })
            } else {
                self.targets
                    .iter()
                    .find(|t| t.function == target && t.rule.name == rule)
                    .ok_or_else(|| format!("template.yaml has no rule {rule} for {target} any more"))
                    .and_then(|t| {
                        let decoded = serde_json::from_str(&event).map_err(|e| format!("the stored event is not readable: {e}"))?;
                        Ok(vec![Row {
                            target: target.as_str().into(),
                            rule: rule.as_str().into(),
                            text: event.as_str().into(),
                            event: Arc::new(decoded),
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
                AND COALESCE((SELECT MIN(position) FROM cursors WHERE name LIKE 'stream:%'), 0)
                    >= COALESCE((SELECT MAX(position) FROM events), 0)",
            [],
            |row| row.get(0),
        )
    })
}

//! The local EventBridge: `PutEvents` matches every entry against the rules
//! of `template.yaml` and stores one delivery per matching target, in the
//! same SQLite file as the events, so nothing accepted is lost on a restart.

use crate::template::{Rule, Wiring};
use async_trait::async_trait;
use chrono::{SecondsFormat, Utc};
use functions::embedded::Database;
use functions::ports::{BusEntry, BusError, EventBus, PutOutcome};
use rusqlite::params;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::Notify;

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
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (leased, due_at, id);
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
    doorbell: Arc<Notify>,
}

impl LocalBus {
    pub fn new(database: Arc<Database>, wiring: &Wiring) -> rusqlite::Result<LocalBus> {
        database.with(|connection| connection.execute_batch(SCHEMA))?;
        let targets = wiring
            .functions
            .iter()
            .flat_map(|function| function.rules.iter().map(|rule| Target { function: function.name.clone(), rule: rule.clone() }))
            .collect();
        Ok(LocalBus { database, targets, doorbell: Arc::new(Notify::new()) })
    }

    /// Rung whenever deliveries are added.
    pub fn doorbell(&self) -> Arc<Notify> {
        self.doorbell.clone()
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

#[async_trait]
impl EventBus for LocalBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<PutOutcome, BusError> {
        let mut outcome = PutOutcome::default();
        let mut rows = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let detail = match serde_json::from_str::<Value>(&entry.detail) {
                Ok(detail @ Value::Object(_)) => detail,
                _ => {
                    outcome.failed.push((index, "MalformedDetail: the detail must be a JSON object".into()));
                    continue;
                }
            };
            let event = eventbridge_event(entry, detail);
            let text = event.to_string();
            for target in self.targets_of(&event) {
                rows.push((target.function.clone(), target.rule.name.clone(), text.clone(), target.rule.max_retries));
            }
        }
        let now = Utc::now().timestamp_millis();
        self.database
            .with(|connection| {
                let transaction = connection.transaction()?;
                {
                    let mut insert = transaction
                        .prepare_cached("INSERT INTO deliveries (target, rule, event, max_retries, due_at) VALUES (?1, ?2, ?3, ?4, ?5)")?;
                    for (target, rule, event, max_retries) in &rows {
                        insert.execute(params![target, rule, event, max_retries, now])?;
                    }
                }
                transaction.commit()
            })
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        if !rows.is_empty() {
            self.doorbell.notify_one();
        }
        Ok(outcome)
    }
}

/// A position kept across restarts (how far the stream has been published).
pub fn read_cursor(database: &Database, name: &str) -> rusqlite::Result<i64> {
    database.with(|connection| {
        connection.execute_batch(SCHEMA)?;
        connection.query_row("SELECT COALESCE((SELECT position FROM cursors WHERE name = ?1), 0)", params![name], |row| row.get(0))
    })
}

pub fn write_cursor(database: &Database, name: &str, position: i64) -> rusqlite::Result<()> {
    database.with(|connection| {
        connection.execute(
            "INSERT INTO cursors (name, position) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET position = ?2",
            params![name, position],
        )?;
        Ok(())
    })
}

/// Parks what could not be delivered, for a person to look at and redrive.
pub fn dead_letter(database: &Database, target: &str, rule: &str, event: &str, error: &str) -> rusqlite::Result<()> {
    database.with(|connection| {
        connection.execute(
            "INSERT INTO dead_letters (target, rule, event, error, failed_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![target, rule, event, error, Utc::now().to_rfc3339()],
        )?;
        Ok(())
    })
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
    database.with(|connection| {
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
    database.with(|connection| {
        connection.query_row(
            "SELECT (SELECT COUNT(*) FROM deliveries) = 0
                AND COALESCE((SELECT MIN(position) FROM cursors WHERE name LIKE 'stream:%'), 0)
                    >= COALESCE((SELECT MAX(position) FROM events), 0)",
            [],
            |row| row.get(0),
        )
    })
}

use super::Database;
use crate::ports::{AppendStream, EventPage, EventStore, LoadedStream, Snapshot, StoreError, check_append};
use async_trait::async_trait;
use domain::Envelope;
use rusqlite::{OptionalExtension, params};

#[async_trait]
impl EventStore for Database {
    async fn load(&self, aggregate_type: &str, aggregate_id: &str) -> Result<LoadedStream, StoreError> {
        // Needs no transaction of its own (fetches share one anyway): the
        // snapshot only moves forward, so every event after the one read is
        // still there when the events are read.
        let (aggregate_type, aggregate_id) = (aggregate_type.to_owned(), aggregate_id.to_owned());
        self.fetch(move |connection| {
            let snapshot = connection
                .prepare_cached("SELECT version, state FROM snapshots WHERE aggregate_type = ?1 AND aggregate_id = ?2")?
                .query_row(params![aggregate_type, aggregate_id], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))
                .optional()?;
            let after = snapshot.as_ref().map_or(0, |(version, _)| *version);
            let mut statement = connection.prepare_cached(
                "SELECT envelope FROM events WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND version > ?3 ORDER BY version",
            )?;
            let rows = statement
                .query_map(params![aggregate_type, aggregate_id, after], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok((snapshot, rows))
        })
        .await
        .map_err(unavailable)
        .and_then(|(snapshot, rows)| {
            let snapshot = snapshot
                .map(|(version, state)| Ok::<_, StoreError>(Snapshot { version: version as u64, state: decode(&state)? }))
                .transpose()?;
            let events = rows.iter().map(|row| decode(row)).collect::<Result<_, _>>()?;
            Ok(LoadedStream { snapshot, events })
        })
    }

    async fn append(&self, streams: Vec<AppendStream>) -> Result<(), StoreError> {
        check_append(&streams)?;
        let mut rows = Vec::new();
        for stream in &streams {
            for event in &stream.events {
                let json = serde_json::to_string(event).map_err(|e| StoreError::Refused(e.to_string()))?;
                rows.push((event.aggregate_type.clone(), event.aggregate_id.clone(), event.version as i64, json));
            }
        }
        let appended = self
            .write(move |connection| {
                for stream in &streams {
                    let current: i64 = connection
                        .prepare_cached("SELECT COALESCE(MAX(version), 0) FROM events WHERE aggregate_type = ?1 AND aggregate_id = ?2")?
                        .query_row(params![stream.aggregate_type, stream.aggregate_id], |row| row.get(0))?;
                    if current as u64 != stream.expected_version {
                        return Err(Refusal::Conflict(format!("{}-{}", stream.aggregate_type, stream.aggregate_id)));
                    }
                    if let Some(snapshot) = &stream.snapshot {
                        connection
                            .prepare_cached(
                                "INSERT INTO snapshots (aggregate_type, aggregate_id, version, state) VALUES (?1, ?2, ?3, ?4)
                                 ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET version = ?3, state = ?4",
                            )?
                            .execute(params![
                                stream.aggregate_type,
                                stream.aggregate_id,
                                snapshot.version as i64,
                                snapshot.state.to_string()
                            ])?;
                    }
                }
                let mut insert = connection
                    .prepare_cached("INSERT INTO events (aggregate_type, aggregate_id, version, envelope) VALUES (?1, ?2, ?3, ?4)")?;
                for (aggregate_type, aggregate_id, version, json) in &rows {
                    insert.execute(params![aggregate_type, aggregate_id, version, json])?;
                }
                Ok(())
            })
            .await;
        match appended {
            Ok(()) => {
                self.appended().notify_one();
                Ok(())
            }
            Err(Refusal::Conflict(stream)) => Err(StoreError::Conflict(stream)),
            Err(Refusal::Sql(rusqlite::Error::SqliteFailure(error, _))) if error.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(StoreError::Conflict("a stream".into()))
            }
            Err(Refusal::Sql(error)) => Err(unavailable(error)),
        }
    }

    /// In storage order (the change stream's positions); the cursor is the
    /// position of the last event read.
    async fn read_all(&self, after: Option<&str>, limit: usize) -> Result<EventPage, StoreError> {
        let position = match after {
            None => 0,
            Some(cursor) => cursor
                .parse::<i64>()
                .ok()
                .filter(|position| *position >= 0)
                .ok_or_else(|| StoreError::Refused(format!("{cursor:?} is not a cursor of this store")))?,
        };
        if limit == 0 {
            return Err(StoreError::Refused("a page of read_all holds at least one event".into()));
        }
        let rows = self.events_after(position, limit)?;
        let next = match rows.last() {
            Some((last, _)) if rows.len() == limit => Some(last.to_string()),
            _ => None,
        };
        Ok(EventPage { events: rows.into_iter().map(|(_, event)| event).collect(), next })
    }
}

impl Database {
    /// The change stream: events stored after `position`, with their
    /// positions, oldest first. What DynamoDB Streams is on AWS.
    pub fn events_after(&self, position: i64, limit: usize) -> Result<Vec<(i64, Envelope)>, StoreError> {
        let rows = self
            .read(|connection| {
                let mut statement =
                    connection.prepare_cached("SELECT position, envelope FROM events WHERE position > ?1 ORDER BY position LIMIT ?2")?;
                statement
                    .query_map(params![position, limit as i64], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(unavailable)?;
        rows.into_iter().map(|(position, json)| Ok((position, decode(&json)?))).collect()
    }
}

fn decode<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// Why an append's write was rolled back.
enum Refusal {
    Conflict(String),
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for Refusal {
    fn from(error: rusqlite::Error) -> Refusal {
        Refusal::Sql(error)
    }
}

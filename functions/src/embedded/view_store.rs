use super::Database;
use super::write_back::{Attempt, WriteBack};
use crate::ports::{ViewDoc, ViewError, ViewStore};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;

/// Views on the database: straight to their rows, or, for the local runner's
/// projections, through memory first (`write_back.rs`), where a get or a put of a
/// document changed lately needs no trip to the writer's thread. Otherwise
/// the stored row is read on that thread, where no flush can commit between
/// the read and what memory makes of it.
#[async_trait]
impl ViewStore for Database {
    async fn get(&self, view: &str, key: &str) -> Result<Option<ViewDoc>, ViewError> {
        let memory = written_back(self, view);
        if let Some(doc) = memory.as_ref().and_then(|memory| memory.get(view, key)) {
            return Ok(Some(doc));
        }
        let (view, key) = (view.to_owned(), key.to_owned());
        self.fetch(move |connection| {
            let row = connection
                .prepare_cached("SELECT key, partition, revision, body FROM views WHERE view = ?1 AND key = ?2")?
                .query_row(params![view, key], read_row)
                .optional()?;
            Ok(memory.and_then(|memory| memory.get(&view, &key)).or(row.map(into_doc)))
        })
        .await
        .map_err(unavailable)
    }

    async fn put(&self, view: &str, doc: &ViewDoc, expected_revision: u64) -> Result<(), ViewError> {
        let done = match written_back(self, view) {
            Some(memory) => put_back(self, &memory, view, doc.clone(), expected_revision).await?,
            None => put_row(self, view, doc, expected_revision).await?,
        };
        if done { Ok(()) } else { Err(ViewError::Conflict(format!("{view}/{}", doc.key))) }
    }

    async fn query(&self, view: &str, partition: &str) -> Result<Vec<ViewDoc>, ViewError> {
        let memory = written_back(self, view);
        let (view, partition) = (view.to_owned(), partition.to_owned());
        self.fetch(move |connection| {
            let rows = connection
                .prepare_cached("SELECT key, partition, revision, body FROM views WHERE view = ?1 AND partition = ?2 ORDER BY key")?
                .query_map(params![view, partition], read_row)?
                .map(|row| row.map(into_doc))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(match memory {
                Some(memory) => memory.overlay(&view, &partition, rows),
                None => rows,
            })
        })
        .await
        .map_err(unavailable)
    }
}

/// The memory `view` goes through, if it is written back.
fn written_back(database: &Database, view: &str) -> Option<Arc<WriteBack>> {
    database.views.clone().filter(|memory| memory.covers(view))
}

/// A put in memory; false on a conflict.
async fn put_back(database: &Database, memory: &Arc<WriteBack>, view: &str, doc: ViewDoc, expected: u64) -> Result<bool, ViewError> {
    let attempt = match memory.try_put(view, doc, expected) {
        Attempt::Stored(doc) => {
            let (memory, view) = (memory.clone(), view.to_owned());
            database
                .fetch(move |connection| {
                    let stored = connection
                        .prepare_cached("SELECT revision, partition FROM views WHERE view = ?1 AND key = ?2")?
                        .query_row(params![view, doc.key], |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?)))
                        .optional()?;
                    Ok(memory.put_over(&view, doc, expected, stored))
                })
                .await
                .map_err(unavailable)?
        }
        attempt => attempt,
    };
    Ok(matches!(attempt, Attempt::Done))
}

/// A put straight to the row, durable when it returns; false on a conflict.
async fn put_row(database: &Database, view: &str, doc: &ViewDoc, expected_revision: u64) -> Result<bool, ViewError> {
    let body = doc.body.clone();
    let (name, key, partition) = (view.to_owned(), doc.key.clone(), doc.partition.clone());
    let written = database
        .write_statement(move |connection| {
            let view = &name;
            if expected_revision == 0 {
                connection
                    .prepare_cached(
                        "INSERT INTO views (view, key, partition, revision, body) VALUES (?1, ?2, ?3, 1, ?4)
                             ON CONFLICT (view, key) DO NOTHING",
                    )?
                    .execute(params![view, key, partition, body])
            } else {
                // A partition named in SET rewrites its index entry even
                // when it stays the same, and it nearly always does: try
                // without it first. Only one of the two changes anything.
                let revision = expected_revision as i64;
                let kept = connection
                    .prepare_cached(
                        "UPDATE views SET revision = revision + 1, body = ?4
                             WHERE view = ?1 AND key = ?2 AND revision = ?5 AND partition = ?3",
                    )?
                    .execute(params![view, key, partition, body, revision])?;
                if kept == 1 {
                    return Ok(1);
                }
                connection
                    .prepare_cached(
                        "UPDATE views SET partition = ?3, revision = revision + 1, body = ?4
                             WHERE view = ?1 AND key = ?2 AND revision = ?5",
                    )?
                    .execute(params![view, key, partition, body, revision])
            }
        })
        .await
        .map_err(unavailable)?;
    Ok(written == 1)
}

type Row = (String, String, i64, String);

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

/// The stored text as it is: its readers decode it.
fn into_doc((key, partition, revision, body): Row) -> ViewDoc {
    ViewDoc { key, partition, revision: revision as u64, body }
}

fn unavailable(error: rusqlite::Error) -> ViewError {
    ViewError::Unavailable(error.to_string())
}

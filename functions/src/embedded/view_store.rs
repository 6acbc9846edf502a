use super::Database;
use crate::ports::{ViewDoc, ViewError, ViewStore};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

#[async_trait]
impl ViewStore for Database {
    async fn get(&self, view: &str, key: &str) -> Result<Option<ViewDoc>, ViewError> {
        let (view, key) = (view.to_owned(), key.to_owned());
        let row = self
            .fetch(move |connection| {
                connection
                    .prepare_cached("SELECT key, partition, revision, body FROM views WHERE view = ?1 AND key = ?2")?
                    .query_row(params![view, key], read_row)
                    .optional()
            })
            .await
            .map_err(unavailable)?;
        Ok(row.map(into_doc))
    }

    async fn put(&self, view: &str, doc: &ViewDoc, expected_revision: u64) -> Result<(), ViewError> {
        let body = doc.body.clone();
        let (name, key, partition) = (view.to_owned(), doc.key.clone(), doc.partition.clone());
        let written = self
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
        if written == 1 { Ok(()) } else { Err(ViewError::Conflict(format!("{view}/{}", doc.key))) }
    }

    async fn query(&self, view: &str, partition: &str) -> Result<Vec<ViewDoc>, ViewError> {
        let (view, partition) = (view.to_owned(), partition.to_owned());
        let rows = self
            .fetch(move |connection| {
                connection
                    .prepare_cached("SELECT key, partition, revision, body FROM views WHERE view = ?1 AND partition = ?2 ORDER BY key")?
                    .query_map(params![view, partition], read_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await
            .map_err(unavailable)?;
        Ok(rows.into_iter().map(into_doc).collect())
    }
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

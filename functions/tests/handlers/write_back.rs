//! The local runner's views, changed in memory and written back in batches
//! (functions/src/embedded/write_back.rs): what a put changes is seen at
//! once, stored by a clean close, and a database left open says so.

use functions::embedded::Database;
use functions::ports::{ViewDoc, ViewStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn doc(key: &str, partition: &str, revision: u64, body: &str) -> ViewDoc {
    ViewDoc { key: key.into(), partition: partition.into(), revision, body: body.into() }
}

/// The row as stored in the file, read by a database that keeps no views in memory.
async fn stored_in(path: &Path, view: &str, key: &str) -> Option<ViewDoc> {
    let plain = Database::open(path).expect("the file opens");
    plain.get(view, key).await.expect("the row reads")
}

async fn stored(path: &Path, key: &str) -> Option<ViewDoc> {
    stored_in(path, "order-status", key).await
}

fn projections(view: &str) -> bool {
    functions::rebuild::VIEWS.contains(&view)
}

/// A database that writes the projections back, on a file of its own (kept
/// while the directory is).
fn opened() -> (tempfile::TempDir, PathBuf, Arc<Database>) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("views.db");
    let database = Database::open_with_view_write_back(&path, projections).expect("the file opens");
    (directory, path, database)
}

#[tokio::test]
async fn puts_are_seen_at_once_and_stored_by_a_clean_close() {
    let (_directory, path, database) = opened();
    assert!(!database.views_need_rebuild(), "a new file has nothing to rebuild");
    for revision in 0..30 {
        let body = format!(r#"{{"events":{}}}"#, revision + 1);
        database.put("order-status", &doc("o1", "c1", revision, &body), revision).await.expect("each revision follows the last");
        let seen = database.get("order-status", "o1").await.expect("a get").expect("the document");
        assert_eq!((seen.revision, seen.body), (revision + 1, body), "a put is seen by the next get at once");
    }
    assert!(database.put("order-status", &doc("o1", "c1", 3, "{}"), 3).await.is_err(), "a stale put still conflicts");
    database.close_views().await.expect("the views are written back");
    let row = stored(&path, "o1").await.expect("the row is stored");
    assert_eq!((row.revision, row.body.as_str()), (30, r#"{"events":30}"#), "the latest revision, once");
    drop(database);
    let reopened = Database::open_with_view_write_back(&path, projections).expect("the file opens again");
    assert!(!reopened.views_need_rebuild(), "closed cleanly");
    assert_eq!(reopened.get("order-status", "o1").await.expect("a get").map(|d| d.revision), Some(30));
    // A put over a stored row that memory no longer holds checks the row.
    assert!(reopened.put("order-status", &doc("o1", "c1", 0, "{}"), 0).await.is_err(), "the stored row is at 30");
    reopened.put("order-status", &doc("o1", "c2", 30, "{}"), 30).await.expect("a put at the stored revision");
}

#[tokio::test]
async fn changes_are_written_back_without_a_close() {
    let (_directory, path, database) = opened();
    database.put("order-status", &doc("o1", "c1", 0, "{}"), 0).await.expect("a put");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while stored(&path, "o1").await.is_none() {
        assert!(std::time::Instant::now() < deadline, "the flush came within 5 s");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_query_sees_documents_moved_in_memory_and_not_yet_stored() {
    let (_directory, _path, database) = opened();
    for key in ["o1", "o2", "o3"] {
        database.put("order-status", &doc(key, "east", 0, "{}"), 0).await.expect("a put");
    }
    database.close_views().await.expect("stored");
    // o2 moves west in memory; o4 is new, in memory only.
    database.put("order-status", &doc("o2", "west", 1, "{}"), 1).await.expect("a move");
    database.put("order-status", &doc("o4", "east", 0, "{}"), 0).await.expect("a new one");
    let keys = |docs: Vec<ViewDoc>| docs.into_iter().map(|d| d.key).collect::<Vec<_>>();
    assert_eq!(keys(database.query("order-status", "east").await.expect("a query")), ["o1", "o3", "o4"]);
    assert_eq!(keys(database.query("order-status", "west").await.expect("a query")), ["o2"]);
}

#[tokio::test]
async fn a_database_left_open_needs_its_views_rebuilt() {
    let (_directory, path, database) = opened();
    database.put("order-status", &doc("o1", "c1", 0, "{}"), 0).await.expect("a put");
    // A crash: the process goes without closing anything.
    std::mem::forget(database);
    let reopened = Database::open_with_view_write_back(&path, projections).expect("the file opens again");
    assert!(reopened.views_need_rebuild(), "the views were never noted closed");
    drop(reopened);
    let again = Database::open_with_view_write_back(&path, projections).expect("the file opens a third time");
    assert!(!again.views_need_rebuild(), "the clean close of the second run counts");
}

#[tokio::test]
async fn a_view_it_does_not_cover_is_stored_before_a_put_returns() {
    let (_directory, path, database) = opened();
    // Idempotency records are no fold of events: a crash must not lose one.
    database.put(functions::idempotency::VIEW, &doc("k1", "p", 0, "{}"), 0).await.expect("a put");
    assert_eq!(stored_in(&path, functions::idempotency::VIEW, "k1").await.map(|d| d.revision), Some(1));
}

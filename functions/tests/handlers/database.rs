//! The embedded database's group commit: writes that queue up while one
//! commits share the next transaction, each in its own savepoint.

use functions::embedded::Database;
use std::sync::Arc;
use std::time::Duration;

fn with_table() -> Arc<Database> {
    let database = Database::temporary().expect("a temporary database opens");
    database.write_blocking(|c| c.execute_batch("CREATE TABLE dishes (name TEXT PRIMARY KEY)")).expect("the table is created");
    database
}

fn dishes(database: &Database) -> Vec<String> {
    database
        .read(|c| c.prepare("SELECT name FROM dishes ORDER BY name")?.query_map([], |row| row.get(0))?.collect())
        .expect("the dishes read")
}

/// Holds the writer for a moment, so the writes queued meanwhile go in one group.
fn hold_the_writer(database: &Arc<Database>) -> std::thread::JoinHandle<()> {
    let database = database.clone();
    let held = std::thread::spawn(move || {
        database
            .write_blocking(|_| {
                std::thread::sleep(Duration::from_millis(100));
                Ok::<_, rusqlite::Error>(())
            })
            .expect("the held write commits");
    });
    std::thread::sleep(Duration::from_millis(20));
    held
}

#[tokio::test]
async fn a_failing_write_rolls_back_alone_and_the_rest_of_its_group_commits() {
    let database = with_table();
    database.write_blocking(|c| c.execute("INSERT INTO dishes (name) VALUES ('taken')", [])).expect("the first dish is stored");
    let held = hold_the_writer(&database);
    let writes = (0..20).map(|i| {
        let database = database.clone();
        tokio::spawn(async move {
            database
                .write(move |c| {
                    c.execute("INSERT INTO dishes (name) VALUES (?1)", [format!("dish {i:02}")])?;
                    // Every fifth write fails after writing a row of its own.
                    if i % 5 == 0 {
                        c.execute("INSERT INTO dishes (name) VALUES ('taken')", [])?;
                    }
                    Ok::<_, rusqlite::Error>(i)
                })
                .await
        })
    });
    let mut outcomes = Vec::new();
    for write in writes.collect::<Vec<_>>() {
        outcomes.push(write.await);
    }
    held.join().expect("the held write ends");

    let failed: Vec<usize> = outcomes.iter().enumerate().filter(|(_, outcome)| !matches!(outcome, Ok(Ok(_)))).map(|(i, _)| i).collect();
    assert_eq!(failed, vec![0, 5, 10, 15], "the writes that broke the key fail, and only they");
    let mut expected: Vec<String> = (0..20).filter(|i| i % 5 != 0).map(|i| format!("dish {i:02}")).collect();
    expected.push("taken".into());
    assert_eq!(dishes(&database), expected, "a failed write leaves none of its rows; the others all stay");
}

#[tokio::test]
async fn a_write_that_panics_fails_and_the_writer_goes_on() {
    let database = with_table();
    let panicked = database.write(|_| -> rusqlite::Result<()> { panic!("a bug in a write") }).await;
    assert!(panicked.is_err(), "the panicking write fails");
    database.write(|c| c.execute("INSERT INTO dishes (name) VALUES ('bibimbap')", [])).await.expect("the next write commits");
    assert_eq!(dishes(&database), vec!["bibimbap".to_owned()]);
}

#[tokio::test]
async fn what_a_write_returned_is_what_every_reader_sees_next() {
    let database = with_table();
    for i in 0..50 {
        let name = format!("dish {i:02}");
        database.write(move |c| c.execute("INSERT INTO dishes (name) VALUES (?1)", [name])).await.expect("the write commits");
        assert_eq!(dishes(&database).len(), i + 1, "the reader sees write {i} as soon as it returned");
    }
}

#[test]
fn writes_committed_in_a_group_are_in_the_file_when_it_is_opened_again() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("closing.db");
    let database = Database::open(&path).expect("the file opens");
    database.write_blocking(|c| c.execute_batch("CREATE TABLE dishes (name TEXT PRIMARY KEY)")).expect("the table is created");
    let held = hold_the_writer(&database);
    let queued: Vec<_> = (0..10)
        .map(|i| {
            let database = database.clone();
            std::thread::spawn(move || database.write_blocking(move |c| c.execute("INSERT INTO dishes (name) VALUES (?1)", [i])))
        })
        .collect();
    for write in queued {
        write.join().expect("the writing thread ends").expect("the write commits");
    }
    held.join().expect("the held write ends");
    drop(database);
    let reopened = Database::open(&path).expect("the file opens again");
    assert_eq!(dishes(&reopened).len(), 10, "every write that returned is in the file");
}

#[tokio::test]
async fn a_failing_statement_written_without_a_savepoint_fails_alone() {
    let database = with_table();
    database.write_blocking(|c| c.execute("INSERT INTO dishes (name) VALUES ('taken')", [])).expect("the first dish is stored");
    let held = hold_the_writer(&database);
    let writes: Vec<_> = (0..12)
        .map(|i| {
            let name = if i % 4 == 0 { "taken".to_owned() } else { format!("dish {i:02}") };
            database.write_statement(move |c| c.execute("INSERT INTO dishes (name) VALUES (?1)", [name]))
        })
        .collect();
    let mut failed = Vec::new();
    for (i, write) in writes.into_iter().enumerate() {
        if write.await.is_err() {
            failed.push(i);
        }
    }
    held.join().expect("the held write ends");
    assert_eq!(failed, vec![0, 4, 8], "the statements that broke the key fail, and only they");
    let mut expected: Vec<String> = (0..12).filter(|i| i % 4 != 0).map(|i| format!("dish {i:02}")).collect();
    expected.push("taken".into());
    assert_eq!(dishes(&database), expected, "the rest of their group is committed");
}

async fn fetched(database: &Database) -> Vec<String> {
    database
        .fetch(|c| c.prepare("SELECT name FROM dishes ORDER BY name")?.query_map([], |row| row.get(0))?.collect())
        .await
        .expect("the dishes are fetched")
}

#[tokio::test]
async fn what_a_write_returned_is_what_a_fetch_on_the_writing_connection_sees_next() {
    let database = with_table();
    for i in 0..50 {
        let name = format!("dish {i:02}");
        database.write(move |c| c.execute("INSERT INTO dishes (name) VALUES (?1)", [name])).await.expect("the write commits");
        assert_eq!(fetched(&database).await.len(), i + 1, "the fetch sees write {i} as soon as it returned");
    }
}

/// A fetch runs at the start of a group's transaction, before its writes:
/// queued behind writes that have not committed, it does not see them (after
/// them, in the same transaction, it would, before they are committed or
/// rolled back).
#[tokio::test]
async fn a_fetch_never_sees_what_a_group_has_not_committed() {
    let database = with_table();
    let held = hold_the_writer(&database);
    let failing = database.write(|c| {
        c.execute("INSERT INTO dishes (name) VALUES ('rolled back')", [])?;
        c.execute("INSERT INTO dishes (name) VALUES ('rolled back')", [])
    });
    let kept = database.write(|c| c.execute("INSERT INTO dishes (name) VALUES ('kept')", []));
    let during = fetched(&database).await;
    assert!(kept.await.is_ok() && failing.await.is_err());
    held.join().expect("the held write ends");
    assert!(during.is_empty(), "the fetch queued behind the writes ran before them: {during:?}");
    assert_eq!(fetched(&database).await, ["kept"], "the failed write left nothing");
}

#[tokio::test]
async fn a_fetch_that_panics_fails_and_the_writer_goes_on() {
    let database = with_table();
    let panicked = database.fetch(|_| -> rusqlite::Result<()> { panic!("a bug in a read") }).await;
    assert!(panicked.is_err(), "the panicking fetch fails");
    database.write(|c| c.execute("INSERT INTO dishes (name) VALUES ('bibimbap')", [])).await.expect("the next write commits");
    assert_eq!(fetched(&database).await, ["bibimbap"]);
}

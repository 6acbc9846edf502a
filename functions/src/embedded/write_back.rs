//! The local runner's projection views, written back. A projection rewrites its order's
//! documents at every event of the order: each rewrite was a row written
//! whole to the WAL (a third of its bytes under load) and a trip to the
//! writer's thread for its get and one for its put. Here a put changes the
//! document in memory and returns; a flush writes the latest revision of
//! every changed document, however many puts made it, in one write, once
//! puts have paused for `QUIET` or `GATHER` after the first change.
//!
//! A put returns before its row is committed, so a crash can lose the last
//! `GATHER` of view changes while the bus has already been told they were
//! made. The views are a fold of the events, which are durable: the
//! database notes that the views are open, a clean close notes that they are
//! closed in its last flush, and a runner that finds them left open rebuilds
//! them from the events before it serves (`Database::views_need_rebuild`).
//!
//! Memory and the stored rows agree: a document in memory is at least as new
//! as its row, it leaves memory only on the writer's thread once its flush is
//! committed, and every read of a row runs on that thread and looks in memory
//! after it. A flushed document stays in memory for one flush more while
//! changes go on (an order's next event wants it), and leaves once they stop.

use super::writer::{Submitter, failure};
use crate::ports::ViewDoc;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Changes followed by this much silence are flushed at once.
const QUIET: Duration = Duration::from_millis(2);
/// Under a steady stream of changes, the longest a change waits to be
/// written: what a crash may lose, and what each flush gathers. A longer
/// gather coalesces more revisions of each document (10 ms wrote 0.65 rows
/// per put, 50 ms 0.36) but holds the writer longer for each flush
/// (BENCHMARKS.md, step 24).
const GATHER: Duration = Duration::from_millis(100);

/// The row that says whether the views were closed cleanly.
const MARK: &str = "views";

/// What became of a put tried against memory alone.
pub(super) enum Attempt {
    Done,
    Conflict,
    /// The document is not in memory: its stored row decides.
    Stored(ViewDoc),
}

pub(super) struct WriteBack {
    /// Which views are written back; every other goes straight to its rows.
    covers: fn(&str) -> bool,
    state: Mutex<State>,
    /// Rung for the flusher: a first change, a flush settled, or closing.
    ring: Condvar,
}

#[derive(Default)]
struct State {
    /// Documents in memory, by view, then key.
    views: HashMap<String, HashMap<String, Entry>>,
    /// When the first and the last change not yet taken by a flush came.
    first: Option<Instant>,
    last: Option<Instant>,
    /// Flushes settled so far.
    flushes: u64,
    flushing: bool,
    closing: bool,
}

struct Entry {
    doc: ViewDoc,
    /// The stored row's partition; `None` when no row is stored yet.
    stored: Option<String>,
    /// Changed since its last flush.
    changed: bool,
    /// The flush that stored it last.
    flushed: u64,
}

/// One document as a flush writes it.
struct Row {
    view: String,
    doc: ViewDoc,
    stored: Option<String>,
}

impl WriteBack {
    pub(super) fn new(covers: fn(&str) -> bool) -> WriteBack {
        WriteBack { covers, state: Mutex::default(), ring: Condvar::new() }
    }

    pub(super) fn covers(&self, view: &str) -> bool {
        (self.covers)(view)
    }

    /// The document, if it is in memory.
    pub(super) fn get(&self, view: &str, key: &str) -> Option<ViewDoc> {
        let state = self.lock();
        state.views.get(view).and_then(|docs| docs.get(key)).map(|entry| entry.doc.clone())
    }

    /// `doc` at `expected + 1`, if the document is in memory.
    pub(super) fn try_put(&self, view: &str, doc: ViewDoc, expected: u64) -> Attempt {
        let mut state = self.lock();
        let Some(entry) = state.views.get_mut(view).and_then(|docs| docs.get_mut(doc.key.as_str())) else {
            return Attempt::Stored(doc);
        };
        if entry.doc.revision != expected {
            return Attempt::Conflict;
        }
        (entry.doc, entry.changed) = (ViewDoc { revision: expected + 1, ..doc }, true);
        self.changed(&mut state);
        Attempt::Done
    }

    /// `doc` at `expected + 1`, given the stored row's revision and
    /// partition: on the writer's thread, right after reading them.
    pub(super) fn put_over(&self, view: &str, doc: ViewDoc, expected: u64, stored: Option<(u64, String)>) -> Attempt {
        let mut state = self.lock();
        if state.views.get(view).is_some_and(|docs| docs.contains_key(doc.key.as_str())) {
            // Put in memory since the caller looked: memory decides.
            drop(state);
            return self.try_put(view, doc, expected);
        }
        let (revision, stored) = stored.map_or((0, None), |(revision, partition)| (revision, Some(partition)));
        if revision != expected {
            return Attempt::Conflict;
        }
        let doc = ViewDoc { revision: expected + 1, ..doc };
        let entry = Entry { doc, stored, changed: true, flushed: 0 };
        state.views.entry(view.to_owned()).or_default().insert(entry.doc.key.clone(), entry);
        self.changed(&mut state);
        Attempt::Done
    }

    /// The stored rows of a query with the documents in memory in their
    /// place, in key order.
    pub(super) fn overlay(&self, view: &str, partition: &str, rows: Vec<ViewDoc>) -> Vec<ViewDoc> {
        let state = self.lock();
        let Some(docs) = state.views.get(view) else { return rows };
        let mut merged: Vec<ViewDoc> = rows.into_iter().filter(|row| !docs.contains_key(row.key.as_str())).collect();
        merged.extend(docs.values().filter(|entry| entry.doc.partition == partition).map(|entry| entry.doc.clone()));
        merged.sort_by(|a, b| a.key.cmp(&b.key));
        merged
    }

    fn changed(&self, state: &mut State) {
        let now = Instant::now();
        if state.first.is_none() {
            state.first = Some(now);
            self.ring.notify_one();
        }
        state.last = Some(now);
    }

    /// On the writer's thread, inside a group: writes every changed
    /// document's latest revision, and on closing notes the views closed.
    /// Rows are upserted, so what a failed flush wrote is written again.
    fn write(&self, connection: &Connection, closing: bool) -> rusqlite::Result<Vec<Row>> {
        let rows = {
            let mut state = self.lock();
            (state.first, state.last) = (None, None);
            state
                .views
                .iter()
                .flat_map(|(view, docs)| {
                    docs.values().filter(|entry| entry.changed).map(|entry| Row {
                        view: view.clone(),
                        doc: entry.doc.clone(),
                        stored: entry.stored.clone(),
                    })
                })
                .collect::<Vec<_>>()
        };
        for Row { view, doc, stored } in &rows {
            let revision = doc.revision as i64;
            match stored {
                // The partition's index entry is rewritten only when it
                // changes: named in a SET, it is rewritten even when equal.
                Some(partition) if *partition == doc.partition => connection
                    .prepare_cached("UPDATE views SET revision = ?3, body = ?4 WHERE view = ?1 AND key = ?2")?
                    .execute(params![view, doc.key, revision, doc.body])?,
                _ => connection
                    .prepare_cached(
                        "INSERT INTO views (view, key, partition, revision, body) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (view, key) DO UPDATE
                         SET partition = excluded.partition, revision = excluded.revision, body = excluded.body",
                    )?
                    .execute(params![view, doc.key, doc.partition, revision, doc.body])?,
            };
        }
        if closing {
            mark(connection, "closed")?;
        }
        Ok(rows)
    }

    /// On the writer's thread, once the flush's group is committed or not.
    fn settle(&self, outcome: rusqlite::Result<Vec<Row>>) {
        let mut state = self.lock();
        state.flushing = false;
        self.ring.notify_one();
        let rows = match outcome {
            Ok(rows) => rows,
            Err(error) => {
                // The documents are still changed: try again a gather later.
                tracing::error!(%error, "the views' flush failed; it is retried");
                let now = Instant::now();
                state.first.get_or_insert(now);
                state.last = Some(now);
                return;
            }
        };
        state.flushes += 1;
        let flushes = state.flushes;
        for Row { view, doc, .. } in rows {
            let Some(entry) = state.views.get_mut(&view).and_then(|docs| docs.get_mut(doc.key.as_str())) else { continue };
            if entry.doc.revision == doc.revision {
                (entry.changed, entry.flushed) = (false, flushes);
            }
            entry.stored = Some(doc.partition);
        }
        let going_on = state.first.is_some();
        for docs in state.views.values_mut() {
            docs.retain(|_, entry| entry.changed || (going_on && entry.flushed + 1 >= flushes));
        }
        state.views.retain(|_, docs| !docs.is_empty());
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; were it to, the state is whole.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Writes what is changed and notes the views closed, now: once `outcome`
/// hears back, the stored rows hold every put made before.
pub(super) fn close(write_back: &Arc<WriteBack>, writer: &Submitter, outcome: impl FnOnce(rusqlite::Result<()>) + Send + 'static) {
    flush(write_back, writer, true, outcome);
}

/// Queues a flush on the writer; `then` hears whether it was committed.
fn flush(write_back: &Arc<WriteBack>, writer: &Submitter, closing: bool, then: impl FnOnce(rusqlite::Result<()>) + Send + 'static) {
    let (writing, settling) = (write_back.clone(), write_back.clone());
    writer.submit(
        move |connection| writing.write(connection, closing),
        false,
        Box::new(move |written: rusqlite::Result<Vec<Row>>| {
            // The error goes to the flush's settling too: `then` gets its text.
            let failed = written.as_ref().err().map(|error| failure(rusqlite::ffi::SQLITE_ERROR, error.to_string()));
            settling.settle(written);
            then(failed.map_or(Ok(()), Err));
        }),
    );
}

/// Notes the views open, on opening: true when they were left open, by a
/// process that stopped without closing them.
pub(super) fn open(connection: &Connection) -> rusqlite::Result<bool> {
    let before: Option<String> = connection.query_row("SELECT value FROM marks WHERE name = ?1", [MARK], |row| row.get(0)).optional()?;
    mark(connection, "open")?;
    Ok(before.as_deref() == Some("open"))
}

fn mark(connection: &Connection, value: &str) -> rusqlite::Result<()> {
    connection.prepare_cached("INSERT OR REPLACE INTO marks (name, value) VALUES (?1, ?2)")?.execute(params![MARK, value]).map(drop)
}

/// The thread that starts each flush, one at a time, and the last one when
/// the database closes.
pub(super) struct Flusher {
    write_back: Arc<WriteBack>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    pub(super) fn start(write_back: Arc<WriteBack>, writer: Submitter) -> std::io::Result<Flusher> {
        let shared = write_back.clone();
        let thread = std::thread::Builder::new().name("views-flusher".into()).spawn(move || flush_while_open(&shared, &writer))?;
        Ok(Flusher { write_back, thread: Some(thread) })
    }
}

fn flush_while_open(write_back: &Arc<WriteBack>, writer: &Submitter) {
    let mut state = write_back.lock();
    loop {
        state = write_back.ring.wait_while(state, |s| !s.closing && (s.flushing || s.first.is_none())).unwrap_or_else(|p| p.into_inner());
        while let (false, Some(first), Some(last)) = (state.closing, state.first, state.last) {
            let due = (first + GATHER).min(last + QUIET);
            let now = Instant::now();
            if now >= due {
                break;
            }
            state = write_back.ring.wait_timeout(state, due - now).unwrap_or_else(|p| p.into_inner()).0;
        }
        let closing = state.closing;
        state.flushing = true;
        drop(state);
        // A failure is logged by the settling, and the next flush retries.
        flush(write_back, writer, closing, drop);
        if closing {
            return;
        }
        state = write_back.lock();
    }
}

impl Drop for Flusher {
    /// Queues the last flush; the writer commits it before it closes.
    fn drop(&mut self) {
        self.write_back.lock().closing = true;
        self.write_back.ring.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

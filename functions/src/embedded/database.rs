use super::checkpointer::Checkpointer;
use super::write_back::{Flusher, WriteBack};
use super::writer::{Writer, failure, stopped};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};

// Positions and seqs are rowids without AUTOINCREMENT: no row is ever
// deleted, so the next is always the largest so far plus one, and no commit
// writes the `sqlite_sequence` page.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    envelope TEXT NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, version)
);
CREATE TABLE IF NOT EXISTS snapshots (
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
CREATE TABLE IF NOT EXISTS views (
    view TEXT NOT NULL,
    key TEXT NOT NULL,
    partition TEXT NOT NULL,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (view, key)
);
CREATE INDEX IF NOT EXISTS views_by_partition ON views (view, partition, key);
CREATE TABLE IF NOT EXISTS notifications (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_by_customer ON notifications (customer_id, seq);
-- Whether the views written back were closed cleanly (write_back.rs).
CREATE TABLE IF NOT EXISTS marks (name TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// Connections that read, beside the one that writes: WAL lets them read
/// the last commit while the writer works, so a read never waits for a
/// write, and two worker threads never wait for each other.
const READERS: usize = 4;

/// One SQLite database holding every embedded port, in WAL mode: one writing
/// connection on a thread of its own that commits writes in groups
/// (`writer.rs`), a few reading connections, and a checkpointer that keeps
/// the WAL small off the writer's path (`checkpointer.rs`).
pub struct Database {
    writer: Writer,
    checkpointer: Option<Checkpointer>,
    /// The views in memory and the thread that writes them back, when
    /// opened so (`open_with_view_write_back`).
    pub(super) views: Option<Arc<WriteBack>>,
    flusher: Option<Flusher>,
    views_left_open: bool,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    appended: Notify,
    /// A temporary database's file, removed when it is dropped.
    temporary: Option<PathBuf>,
}

impl Database {
    pub fn open(path: &Path) -> rusqlite::Result<Arc<Database>> {
        Self::setup(path, None, None)
    }

    /// `open`, with the documents of the views it `covers` changed in memory and written
    /// back in batches (`write_back.rs`): for the local runner, whose one
    /// process owns the file, and for views that can be rebuilt from the
    /// events. A put of theirs returns before its row is committed; if the
    /// process stops without closing the database, `views_need_rebuild` says
    /// so when it is opened again.
    pub fn open_with_view_write_back(path: &Path, covers: fn(&str) -> bool) -> rusqlite::Result<Arc<Database>> {
        Self::setup(path, None, Some(covers))
    }

    /// Writes back the views changed in memory and notes them closed; for
    /// a clean stop, once nothing puts any more. Resolves once committed.
    pub fn close_views(&self) -> impl Future<Output = rusqlite::Result<()>> + use<> {
        let (reply, outcome) = oneshot::channel();
        if let Some(views) = &self.views {
            super::write_back::close(views, self.writer.submitter(), move |done| drop(reply.send(done)));
        } else {
            drop(reply.send(Ok(())));
        }
        async move { outcome.await.unwrap_or_else(|_| Err(stopped())) }
    }

    /// True when the views were last opened with write-back and never
    /// closed: changes made just before may be lost, and the views should be
    /// rebuilt from the events (`functions::rebuild`) before they are read.
    pub fn views_need_rebuild(&self) -> bool {
        self.views_left_open
    }

    /// A private database in a file of its own that is removed when the
    /// database is dropped: for tests, and processors that keep no ledger.
    pub fn temporary() -> rusqlite::Result<Arc<Database>> {
        let path = std::env::temp_dir().join(format!("food-delivery-{}.db", uuid::Uuid::new_v4().simple()));
        Self::setup(&path, Some(path.clone()), None)
    }

    fn setup(path: &Path, temporary: Option<PathBuf>, write_back: Option<fn(&str) -> bool>) -> rusqlite::Result<Arc<Database>> {
        let mut writing = Connection::open(path)?;
        // WAL with NORMAL sync survives a crash of the process (what a local
        // runner meets), at a fraction of FULL's fsync cost. Commits do not
        // checkpoint: the checkpointer does, off the writer's path.
        writing.pragma_update(None, "journal_mode", "WAL")?;
        writing.pragma_update(None, "wal_autocheckpoint", 0)?;
        writing.pragma_update(None, "synchronous", "NORMAL")?;
        writing.pragma_update(None, "temp_store", "MEMORY")?;
        // The WAL grows between restarts, to about 100 MB under full load.
        // A limit under that cut it back at every restart, and its blocks
        // were allocated again at once (the restarts then held the writer
        // 42 ms at the median, against 36 with this limit); above the peak,
        // it is cut back only once the load drops.
        writing.pragma_update(None, "journal_size_limit", 256i64 << 20)?;
        tune(&mut writing)?;
        writing.execute_batch(SCHEMA)?;
        let views_left_open = write_back.is_some() && super::write_back::open(&writing)?;
        let readers = (0..READERS)
            .map(|_| {
                let mut reading = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
                tune(&mut reading)?;
                Ok(Mutex::new(reading))
            })
            .collect::<rusqlite::Result<_>>()?;
        let dirty = Arc::new(AtomicBool::new(false));
        let mut checkpointing = Connection::open(path)?;
        tune(&mut checkpointing)?;
        let checkpointer = Some(Checkpointer::start(checkpointing, dirty.clone()).map_err(io_failure)?);
        let writer = Writer::start(writing, dirty).map_err(io_failure)?;
        let (views, flusher) = match write_back {
            Some(covers) => {
                let views = Arc::new(WriteBack::new(covers));
                let flusher = Flusher::start(views.clone(), writer.submitter().clone()).map_err(io_failure)?;
                (Some(views), Some(flusher))
            }
            None => (None, None),
        };
        Ok(Arc::new(Database {
            writer,
            checkpointer,
            views,
            flusher,
            views_left_open,
            readers,
            next_reader: AtomicUsize::new(0),
            appended: Notify::new(),
            temporary,
        }))
    }

    /// Runs `work` on a reading connection: it sees every write whose
    /// `write` has returned.
    pub fn read<T>(&self, work: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        for reader in &self.readers {
            if let Ok(connection) = reader.try_lock() {
                return work(&connection);
            }
        }
        let next = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        work(&lock(&self.readers[next]))
    }

    /// Runs `work` (reads only) on the writing connection, before the next
    /// group's writes: for the hot point reads, whose pages stay in that
    /// connection's cache (a reading connection starts cold after every
    /// commit). It sees every write whose `write` has returned.
    pub fn fetch<T, W>(&self, work: W) -> impl Future<Output = rusqlite::Result<T>> + use<T, W>
    where
        W: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, outcome) = oneshot::channel();
        self.writer.submit_read(work, Box::new(move |done| drop(reply.send(done))));
        async move { outcome.await.unwrap_or_else(|_| Err(stopped())) }
    }

    /// Queues `work` for the writer's next group, at once (writes run in the
    /// order they are made), in a savepoint: an error rolls back what it
    /// wrote, and only that. Resolves once the group is committed, so what
    /// it wrote is durable and every reader sees it; dropped unawaited, the
    /// write still happens.
    pub fn write<T, E, W>(&self, work: W) -> impl Future<Output = Result<T, E>> + use<T, E, W>
    where
        W: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<rusqlite::Error> + Send + 'static,
    {
        self.queue_write(work, true)
    }

    /// `write`, for `work` whose changes are all made by one SQL statement
    /// (others may read, or change nothing): SQLite undoes a failing
    /// statement by itself, so it goes without the savepoint, which copies
    /// every page it touches. Were a second statement to change something,
    /// a failure would not undo it: use `write` for that.
    pub fn write_statement<T, E, W>(&self, work: W) -> impl Future<Output = Result<T, E>> + use<T, E, W>
    where
        W: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<rusqlite::Error> + Send + 'static,
    {
        self.queue_write(work, false)
    }

    fn queue_write<T, E, W>(&self, work: W, guarded: bool) -> impl Future<Output = Result<T, E>> + use<T, E, W>
    where
        W: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<rusqlite::Error> + Send + 'static,
    {
        let (reply, outcome) = oneshot::channel();
        self.writer.submitter().submit(work, guarded, Box::new(move |done| drop(reply.send(done))));
        async move { outcome.await.unwrap_or_else(|_| Err(E::from(stopped()))) }
    }

    /// `write`, waiting on this thread: for setting up and for tests, not
    /// for async code that serves requests.
    pub fn write_blocking<T, E>(&self, work: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<rusqlite::Error> + Send + 'static,
    {
        let (reply, outcome) = std::sync::mpsc::sync_channel(1);
        self.writer.submitter().submit(work, true, Box::new(move |done| drop(reply.send(done))));
        outcome.recv().unwrap_or_else(|_| Err(E::from(stopped())))
    }

    /// Rung after every append: the change stream's doorbell. It keeps one
    /// permit, so an append between two reads of the stream is never missed.
    pub fn appended(&self) -> &Notify {
        &self.appended
    }
}

impl Drop for Database {
    /// The writer closes last: it commits what is queued, and as the last
    /// connection it checkpoints the WAL into the file.
    fn drop(&mut self) {
        self.readers.clear();
        self.checkpointer.take();
        self.flusher.take();
        self.writer.close();
        if let Some(path) = &self.temporary {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
}

/// Every connection: hot statements stay prepared. Without the query
/// planner stability guarantee, SQLite (with STAT4, as bundled) prepares a
/// statement again whenever a value bound to a LIMIT or a range changes,
/// which was an eighth of the local runner's CPU under load (BENCHMARKS.md).
fn tune(connection: &mut Connection) -> rusqlite::Result<()> {
    // Locks are held for microseconds here (short reads, group commits, the
    // checkpointer's restart), and SQLite's own busy timeout sleeps whole
    // milliseconds between tries: retry every 20 us, for up to 5 s.
    connection.busy_handler(Some(|tries: i32| {
        std::thread::sleep(Duration::from_micros(20));
        tries < 250_000
    }))?;
    connection.set_prepared_statement_cache_capacity(64);
    connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

fn lock(reader: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while reading leaves nothing half done: the connection is usable.
    reader.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn io_failure(error: std::io::Error) -> rusqlite::Error {
    failure(rusqlite::ffi::SQLITE_CANTOPEN, error.to_string())
}

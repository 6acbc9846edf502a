use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
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
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_by_customer ON notifications (customer_id, seq);
";

/// One SQLite database holding every embedded port. A single connection
/// behind a mutex: SQLite serializes writers anyway, each call is short and
/// never held across an `.await`.
pub struct Database {
    connection: Mutex<Connection>,
    appended: Notify,
}

impl Database {
    pub fn open(path: &Path) -> rusqlite::Result<Arc<Database>> {
        Self::setup(Connection::open(path)?)
    }

    /// A private database that vanishes with the process: for tests.
    pub fn in_memory() -> rusqlite::Result<Arc<Database>> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(connection: Connection) -> rusqlite::Result<Arc<Database>> {
        // WAL with NORMAL sync survives a crash of the process (what a local
        // runner meets), at a fraction of FULL's fsync cost.
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        // Every statement of the hot path is cached (rusqlite keeps 16), and
        // stays prepared: without the query planner stability guarantee,
        // SQLite (with STAT4, as bundled) prepares a statement again whenever
        // a value bound to a LIMIT or a range changes, which was an eighth of
        // the local runner's CPU under load (BENCHMARKS.md).
        connection.set_prepared_statement_cache_capacity(64);
        connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        connection.execute_batch(SCHEMA)?;
        Ok(Arc::new(Database { connection: Mutex::new(connection), appended: Notify::new() }))
    }

    /// Runs `work` on the connection. Other embedded components (the local
    /// runner's bus and cursors) keep their tables in the same file.
    pub fn with<T>(&self, work: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        work(&mut self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-done write behind:
        // SQLite rolled the transaction back, so the connection is usable.
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Rung after every append: the change stream's doorbell. It keeps one
    /// permit, so an append between two reads of the stream is never missed.
    pub fn appended(&self) -> &Notify {
        &self.appended
    }
}

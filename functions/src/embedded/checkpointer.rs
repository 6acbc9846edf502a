//! Keeps the WAL small without holding up commits. Commits do not
//! checkpoint (`wal_autocheckpoint` is off): this thread copies committed
//! pages into the database file every `COPY_EVERY`, passively, beside the
//! writer and the readers. Under a steady load a passive checkpoint never
//! catches up with the last commit, and the WAL would grow without end: it
//! only starts over after a checkpoint that caught up while nothing wrote
//! and no reader still read an older frame. So every `RESTART_EVERY` a
//! restarting checkpoint, right after a passive one, holds the writer for
//! the few frames left to copy and one sync of each file. The database file
//! is synced here too, every `SYNC_EVERY` and just before each restart,
//! outside SQLite's locks, so that the restart's own sync finds little left
//! to write (a passive copy syncs the WAL, never the database file, unless
//! it caught up).

use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const COPY_EVERY: Duration = Duration::from_millis(25);
/// A restart holds the writer while it copies what the last passive copy
/// left and syncs both files: 10-30 ms on this machine's disk at a light
/// load; under the throughput bench's, where the WAL takes about 100 MB/s,
/// 35-60 ms when only the restart synced the database file, 13-18 ms at the
/// median with the syncs every `SYNC_EVERY` (BENCHMARKS.md). Every 250 ms restarts took a
/// tenth of the time, and every command's p99; every 4 s they did worse than
/// every second. The WAL peaks near 100 MB under full load.
const RESTART_EVERY: Duration = Duration::from_secs(1);
/// How often the database file is synced outside the locks, under load:
/// each sync then writes what about 100 ms of copies changed.
const SYNC_EVERY: Duration = Duration::from_millis(100);

pub(super) struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// `dirty` is raised by the writer after every commit.
    pub(super) fn start(connection: Connection, dirty: Arc<AtomicBool>) -> std::io::Result<Checkpointer> {
        let (stop, stopping) = channel::<()>();
        let thread = std::thread::Builder::new().name("sqlite-checkpointer".into()).spawn(move || {
            // Opened for writing, which some systems require of a file to sync.
            let database_file = connection.path().and_then(|path| std::fs::OpenOptions::new().write(true).open(path).ok());
            let (mut restarted, mut synced) = (Instant::now(), Instant::now());
            while let Err(RecvTimeoutError::Timeout) = stopping.recv_timeout(COPY_EVERY) {
                if !dirty.swap(false, Ordering::AcqRel) {
                    continue;
                }
                checkpoint(&connection, "PASSIVE");
                let restart_due = restarted.elapsed() >= RESTART_EVERY;
                if let Some(file) = database_file.as_ref().filter(|_| restart_due || synced.elapsed() >= SYNC_EVERY) {
                    synced = Instant::now();
                    if let Err(error) = file.sync_data() {
                        tracing::warn!(%error, "cannot sync the database file; the next checkpoint syncs it");
                    }
                }
                if restart_due {
                    restarted = Instant::now();
                    checkpoint(&connection, "RESTART");
                }
            }
        })?;
        Ok(Checkpointer { stop: Some(stop), thread: Some(thread) })
    }
}

fn checkpoint(connection: &Connection, mode: &str) {
    if let Err(error) = connection.execute_batch(&format!("PRAGMA wal_checkpoint({mode})")) {
        tracing::warn!(%error, "checkpoint failed; the next one retries");
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

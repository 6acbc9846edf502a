//! Keeps the WAL small without holding up commits. Commits do not
//! checkpoint (`wal_autocheckpoint` is off): this thread copies committed
//! pages into the database file every `COPY_EVERY`, passively, beside the
//! writer and the readers. Under a steady load a passive checkpoint never
//! catches up with the last commit, and the WAL would grow without end: it
//! only starts over after a checkpoint that caught up while nothing wrote
//! and no reader still read an older frame. So every `RESTART_EVERY` a
//! restarting checkpoint, right after a passive one, holds the writer for
//! the few frames left to copy and one sync of the database file.

use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const COPY_EVERY: Duration = Duration::from_millis(25);
/// A restart holds the writer while it copies what the last passive copy
/// left and syncs both files: 10-30 ms on this machine's disk at a light
/// load, 50-200 ms under the throughput bench's, where the WAL takes about
/// 125 MB/s (BENCHMARKS.md: about a sixth of that bench's rate). Every
/// 250 ms restarts took a tenth of the time, and every command's p99; every
/// 4 s they did worse than every second. The WAL peaks near 100 MB under
/// full load (`journal_size_limit` trims it once the load drops).
const RESTART_EVERY: Duration = Duration::from_secs(1);

pub(super) struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// `dirty` is raised by the writer after every commit.
    pub(super) fn start(connection: Connection, dirty: Arc<AtomicBool>) -> std::io::Result<Checkpointer> {
        let (stop, stopping) = channel::<()>();
        let thread = std::thread::Builder::new().name("sqlite-checkpointer".into()).spawn(move || {
            let mut restarted = Instant::now();
            while let Err(RecvTimeoutError::Timeout) = stopping.recv_timeout(COPY_EVERY) {
                if !dirty.swap(false, Ordering::AcqRel) {
                    continue;
                }
                checkpoint(&connection, "PASSIVE");
                if restarted.elapsed() >= RESTART_EVERY {
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

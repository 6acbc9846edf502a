//! Group commit: every write to the embedded database runs on one thread
//! that owns the only writing connection. Writes that arrive while a commit
//! is under way wait and go together in the next transaction, each in a
//! savepoint of its own, so one failing write rolls back only itself. A
//! writer hears back only once its transaction is committed: as durable as a
//! commit of its own, for a fraction of the cost (one `BEGIN`, one `COMMIT`
//! and one copy of each page touched, for the whole group), and no async
//! task ever blocks a worker thread waiting for the database's lock.
//!
//! Hot reads run on this thread too, at the start of a group's transaction,
//! before its writes, all in that one transaction. SQLite empties a
//! connection's page cache whenever another connection has committed, so
//! under load every read on a reading connection starts cold (about 40 us
//! of system calls and copies for a point read); the writing connection's
//! cache survives its own commits.

use rusqlite::{Connection, ffi};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

/// Writes committed together at most: bounds how long the first of them
/// waits for the last.
const MAX_GROUP: usize = 128;

/// A read waiting for the writer to finish its group: it runs alone, outside
/// any transaction, and hands over its own outcome.
type Read = Box<dyn FnOnce(&Connection) + Send>;

/// What the writer thread is asked to do.
enum Task {
    Write(Box<dyn Job>),
    Read(Read),
}

/// A write waiting for its turn, and then for its group's commit.
trait Job: Send {
    /// Runs the write; false when it failed (undone by its savepoint, or by
    /// SQLite itself for a single statement).
    fn run(&mut self, connection: &Connection) -> bool;
    /// False for a write of a single statement: SQLite undoes a failed
    /// statement by itself, so it needs no savepoint (nor the copy of every
    /// page it touches that a savepoint keeps).
    fn guarded(&self) -> bool;
    /// Hands the outcome to whoever waits, once the group's fate is known.
    fn finish(self: Box<Self>, committed: Result<(), &rusqlite::Error>);
}

struct Write<F, T, E> {
    work: Option<F>,
    guarded: bool,
    outcome: Option<Result<T, E>>,
    reply: Box<dyn FnOnce(Result<T, E>) + Send>,
}

impl<F, T, E> Job for Write<F, T, E>
where
    F: FnOnce(&Connection) -> Result<T, E> + Send,
    T: Send,
    E: From<rusqlite::Error> + Send,
{
    fn run(&mut self, connection: &Connection) -> bool {
        let Some(work) = self.work.take() else { return false };
        // A panicking write fails alone; the writer thread goes on.
        let outcome = catch_unwind(AssertUnwindSafe(|| work(connection)))
            .unwrap_or_else(|_| Err(E::from(failure(ffi::SQLITE_ERROR, "the write panicked".into()))));
        let succeeded = outcome.is_ok();
        self.outcome = Some(outcome);
        succeeded
    }

    fn guarded(&self) -> bool {
        self.guarded
    }

    fn finish(self: Box<Self>, committed: Result<(), &rusqlite::Error>) {
        let outcome = match (self.outcome, committed) {
            // A write that failed was rolled back whatever became of the group.
            (Some(Err(error)), _) => Err(error),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(error)) => Err(E::from(again(error))),
            (None, Ok(())) => Err(E::from(failure(ffi::SQLITE_ERROR, "the write never ran".into()))),
        };
        (self.reply)(outcome);
    }
}

/// The writing connection's thread, and the way to it.
pub(super) struct Writer {
    submitter: Submitter,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// `dirty` is raised after every commit, for the checkpointer.
    pub(super) fn start(connection: Connection, dirty: Arc<AtomicBool>) -> std::io::Result<Writer> {
        let (jobs, queue) = channel();
        let thread = std::thread::Builder::new().name("sqlite-writer".into()).spawn(move || run(&connection, &queue, &dirty))?;
        Ok(Writer { submitter: Submitter { jobs: Some(jobs) }, thread: Some(thread) })
    }

    /// The way to queue writes. A clone kept by another thread must be
    /// dropped before the writer closes, which waits for every clone.
    pub(super) fn submitter(&self) -> &Submitter {
        &self.submitter
    }

    /// Queues a read on the writing connection; `reply` gets its outcome. It
    /// sees every write whose reply was given before it was queued.
    pub(super) fn submit_read<F, T>(&self, work: F, reply: Box<dyn FnOnce(rusqlite::Result<T>) + Send>)
    where
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let read: Read = Box::new(move |connection| {
            let outcome = catch_unwind(AssertUnwindSafe(|| work(connection)))
                .unwrap_or_else(|_| Err(failure(ffi::SQLITE_ERROR, "the read panicked".into())));
            reply(outcome);
        });
        // A refused read is dropped with its reply: the caller hears the
        // reply go, which it takes for a stopped writer.
        drop(self.submitter.send(Task::Read(read)));
    }

    /// Lets the queued writes commit, then closes the connection. Writes
    /// submitted afterwards fail.
    pub(super) fn close(&mut self) {
        drop(self.submitter.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Queues writes for the writer's thread.
#[derive(Clone)]
pub(super) struct Submitter {
    jobs: Option<Sender<Task>>,
}

impl Submitter {
    /// Queues `work`; `reply` gets its outcome once its group is committed
    /// or rolled back.
    pub(super) fn submit<F, T, E>(&self, work: F, guarded: bool, reply: Box<dyn FnOnce(Result<T, E>) + Send>)
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<rusqlite::Error> + Send + 'static,
    {
        let job: Box<dyn Job> = Box::new(Write { work: Some(work), guarded, outcome: None, reply });
        if let Some(Task::Write(job)) = self.send(Task::Write(job)) {
            job.finish(Err(&stopped()));
        }
    }

    /// Hands `task` to the thread; gives it back if the thread has stopped.
    fn send(&self, task: Task) -> Option<Task> {
        match &self.jobs {
            Some(jobs) => jobs.send(task).err().map(|returned| returned.0),
            None => Some(task),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

fn run(connection: &Connection, queue: &Receiver<Task>, dirty: &AtomicBool) {
    let (mut group, mut reads) = (Vec::new(), Vec::new());
    while let Ok(first) = queue.recv() {
        let mut next = Some(first);
        while let Some(task) = next.take() {
            match task {
                Task::Write(job) => group.push(job),
                Task::Read(read) => reads.push(read),
            }
            if group.len() + reads.len() < MAX_GROUP {
                next = queue.try_recv().ok();
            }
        }
        // Reads first, in the group's transaction before any of its writes
        // (or in a read transaction of their own): whoever asked for one had
        // heard back from every write it depends on, so that write is
        // committed; the group's writes are not, and must not be seen. One
        // transaction for them all spares each statement its own file locks.
        let began = statement(connection, if group.is_empty() { "BEGIN" } else { "BEGIN IMMEDIATE" });
        for read in reads.drain(..) {
            read(connection);
        }
        if group.is_empty() {
            if began.is_ok() && statement(connection, "COMMIT").is_err() {
                let _ = connection.execute_batch("ROLLBACK");
            }
            continue;
        }
        let committed = began.and_then(|()| commit_group(connection, &mut group));
        if committed.is_ok() {
            dirty.store(true, Ordering::Release);
        }
        for job in group.drain(..) {
            job.finish(committed.as_ref().map(|_| ()));
        }
    }
}

fn statement(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql).and_then(|mut s| s.execute([])).map(drop)
}

/// The group's writes in the transaction already begun, a savepoint for
/// each write of more than one statement, then the commit.
fn commit_group(connection: &Connection, group: &mut [Box<dyn Job>]) -> rusqlite::Result<()> {
    let statement = |sql: &str| statement(connection, sql);
    let ran = group.iter_mut().try_for_each(|job| {
        if !job.guarded() {
            job.run(connection);
            return Ok(());
        }
        statement("SAVEPOINT write")?;
        if !job.run(connection) {
            statement("ROLLBACK TO write")?;
        }
        statement("RELEASE write")
    });
    match ran.and_then(|()| statement("COMMIT")) {
        Ok(()) => Ok(()),
        Err(error) => {
            // Whatever the group did is undone; every write in it fails.
            if !connection.is_autocommit() {
                let _ = connection.execute_batch("ROLLBACK");
            }
            Err(error)
        }
    }
}

pub(super) fn failure(code: i32, message: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(message))
}

/// What a write gets once the writer has closed.
pub(super) fn stopped() -> rusqlite::Error {
    failure(ffi::SQLITE_MISUSE, "the database writer has stopped".into())
}

/// The group's failure, once more for each of its writes.
fn again(error: &rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(cause, message) => rusqlite::Error::SqliteFailure(*cause, message.clone()),
        other => failure(ffi::SQLITE_ERROR, format!("the group's commit failed: {other}")),
    }
}

//! Fault-injecting decorators of the ports: each wraps a working adapter and
//! fails the calls it is told to, the way DynamoDB, EventBridge or SNS fail
//! in production, and counts what it did so tests can report figures.

use crate::support::{RecordingBus, event_id_of};
use async_trait::async_trait;
use domain::notification::Notification;
use functions::ports::{
    AppendStream, BusEntry, BusError, EventBus, EventStore, LoadedStream, Notifier, NotifyError, PutOutcome, Sent, StoreError, ViewDoc,
    ViewError, ViewStore,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn take(budget: &AtomicUsize) -> bool {
    budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1)).is_ok()
}

// ============================================================== event store

/// An event store that throttles or loses races on demand. Faulty appends
/// write nothing, as DynamoDB's refused transactions do.
pub struct FaultyStore {
    inner: Arc<dyn EventStore>,
    /// Only appends touching this aggregate type are faulted (None: any).
    only: Mutex<Option<String>>,
    throttled_appends: AtomicUsize,
    conflicting_appends: AtomicUsize,
    throttled_loads: AtomicUsize,
    /// Held after each load of this aggregate type, so concurrent commands
    /// decide on one version.
    load_pause: Mutex<Option<(String, Duration)>>,
    /// What was injected and what the real store answered.
    pub injected: AtomicUsize,
    pub appends: AtomicUsize,
    pub lost_races: AtomicUsize,
}

impl FaultyStore {
    pub fn around(inner: Arc<dyn EventStore>) -> Arc<FaultyStore> {
        Arc::new(FaultyStore {
            inner,
            only: Mutex::new(None),
            throttled_appends: AtomicUsize::new(0),
            conflicting_appends: AtomicUsize::new(0),
            throttled_loads: AtomicUsize::new(0),
            load_pause: Mutex::new(None),
            injected: AtomicUsize::new(0),
            appends: AtomicUsize::new(0),
            lost_races: AtomicUsize::new(0),
        })
    }
    /// The next `n` appends answer "throttled" (ProvisionedThroughputExceeded).
    pub fn throttle_appends(&self, n: usize) {
        self.throttled_appends.store(n, Ordering::SeqCst);
    }
    /// The next `n` appends lose a race that never happened.
    pub fn conflict_appends(&self, n: usize) {
        self.conflicting_appends.store(n, Ordering::SeqCst);
    }
    pub fn throttle_loads(&self, n: usize) {
        self.throttled_loads.store(n, Ordering::SeqCst);
    }
    /// Faults only appends to streams of this aggregate type.
    pub fn only(&self, aggregate_type: &str) {
        *self.only.lock().unwrap() = Some(aggregate_type.to_owned());
    }
    pub fn pause_after_loading(&self, aggregate_type: &str, pause: Duration) {
        *self.load_pause.lock().unwrap() = Some((aggregate_type.to_owned(), pause));
    }
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }
    pub fn lost_races(&self) -> usize {
        self.lost_races.load(Ordering::SeqCst)
    }

    fn targeted(&self, streams: &[AppendStream]) -> bool {
        self.only.lock().unwrap().as_ref().is_none_or(|only| streams.iter().any(|stream| &stream.aggregate_type == only))
    }
}

#[async_trait]
impl EventStore for FaultyStore {
    async fn load(&self, aggregate_type: &str, aggregate_id: &str) -> Result<LoadedStream, StoreError> {
        if take(&self.throttled_loads) {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Unavailable("GetItem: ProvisionedThroughputExceededException (injected)".into()));
        }
        let loaded = self.inner.load(aggregate_type, aggregate_id).await;
        let pause = self.load_pause.lock().unwrap().as_ref().filter(|(only, _)| only == aggregate_type).map(|(_, pause)| *pause);
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
        loaded
    }

    async fn append(&self, streams: Vec<AppendStream>) -> Result<(), StoreError> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        if self.targeted(&streams) {
            if take(&self.throttled_appends) {
                self.injected.fetch_add(1, Ordering::SeqCst);
                return Err(StoreError::Unavailable("TransactWriteItems: ProvisionedThroughputExceededException (injected)".into()));
            }
            if take(&self.conflicting_appends) {
                self.injected.fetch_add(1, Ordering::SeqCst);
                return Err(StoreError::Conflict("injected lost race".into()));
            }
        }
        let outcome = self.inner.append(streams).await;
        if let Err(StoreError::Conflict(_)) = outcome {
            self.lost_races.fetch_add(1, Ordering::SeqCst);
        }
        outcome
    }
}

// =============================================================== view store

/// A view store whose next reads or writes are throttled.
pub struct FaultyViews {
    inner: Arc<dyn ViewStore>,
    throttled_gets: AtomicUsize,
    throttled_puts: AtomicUsize,
    pub injected: AtomicUsize,
}

impl FaultyViews {
    pub fn around(inner: Arc<dyn ViewStore>) -> Arc<FaultyViews> {
        Arc::new(FaultyViews {
            inner,
            throttled_gets: AtomicUsize::new(0),
            throttled_puts: AtomicUsize::new(0),
            injected: AtomicUsize::new(0),
        })
    }
    pub fn throttle_gets(&self, n: usize) {
        self.throttled_gets.store(n, Ordering::SeqCst);
    }
    pub fn throttle_puts(&self, n: usize) {
        self.throttled_puts.store(n, Ordering::SeqCst);
    }
    fn throttled(&self, budget: &AtomicUsize, call: &str) -> Result<(), ViewError> {
        if take(budget) {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(ViewError::Unavailable(format!("{call}: ThrottlingException (injected)")));
        }
        Ok(())
    }
}

#[async_trait]
impl ViewStore for FaultyViews {
    async fn get(&self, view: &str, key: &str) -> Result<Option<ViewDoc>, ViewError> {
        self.throttled(&self.throttled_gets, "GetItem")?;
        self.inner.get(view, key).await
    }
    async fn put(&self, view: &str, doc: &ViewDoc, expected_revision: u64) -> Result<(), ViewError> {
        self.throttled(&self.throttled_puts, "PutItem")?;
        self.inner.put(view, doc, expected_revision).await
    }
    async fn query(&self, view: &str, partition: &str) -> Result<Vec<ViewDoc>, ViewError> {
        self.inner.query(view, partition).await
    }
}

// ====================================================================== bus

/// EventBridge refusing chosen entries (by event id) for their first `k`
/// puts, as PutEvents does with `FailedEntryCount` > 0; the rest go on to
/// the recording bus.
pub struct FlakyBus {
    pub inner: Arc<RecordingBus>,
    refusals: Mutex<HashMap<String, usize>>,
    pub refused: AtomicUsize,
}

impl FlakyBus {
    pub fn around(inner: Arc<RecordingBus>) -> Arc<FlakyBus> {
        Arc::new(FlakyBus { inner, refusals: Mutex::new(HashMap::new()), refused: AtomicUsize::new(0) })
    }
    /// The entry of this event is refused the next `times` it is put.
    pub fn refuse(&self, event_id: &str, times: usize) {
        self.refusals.lock().unwrap().insert(event_id.to_owned(), times);
    }
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl EventBus for FlakyBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<PutOutcome, BusError> {
        let mut failed = vec![];
        let mut passed = vec![];
        {
            let mut refusals = self.refusals.lock().unwrap();
            for (index, entry) in entries.iter().enumerate() {
                match refusals.get_mut(&event_id_of(entry)).filter(|left| **left > 0) {
                    Some(left) => {
                        *left -= 1;
                        failed.push((index, "ThrottlingException".to_owned()));
                    }
                    None => passed.push(index),
                }
            }
        }
        self.refused.fetch_add(failed.len(), Ordering::SeqCst);
        let forwarded: Vec<BusEntry> = passed.iter().map(|index| entries[*index].clone()).collect();
        if !forwarded.is_empty() {
            let outcome = self.inner.put_events(&forwarded).await?;
            failed.extend(outcome.failed.into_iter().map(|(index, reason)| (passed[index], reason)));
        }
        failed.sort();
        Ok(PutOutcome { failed })
    }
}

// ================================================================= notifier

/// When a faulty notification call fails: before the customer is messaged,
/// or after (the message went out but the answer was lost).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Failure {
    BeforeSending,
    AfterSending,
}

/// A notifier whose `nth` call (1-based) fails.
pub struct FaultyNotifier {
    inner: Arc<dyn Notifier>,
    nth: usize,
    failure: Failure,
    pub calls: AtomicUsize,
    pub duplicates: AtomicUsize,
}

impl FaultyNotifier {
    pub fn around(inner: Arc<dyn Notifier>, nth: usize, failure: Failure) -> Arc<FaultyNotifier> {
        Arc::new(FaultyNotifier { inner, nth, failure, calls: AtomicUsize::new(0), duplicates: AtomicUsize::new(0) })
    }
}

#[async_trait]
impl Notifier for FaultyNotifier {
    async fn notify(&self, notification: &Notification) -> Result<Sent, NotifyError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let failing = call == self.nth;
        if failing && self.failure == Failure::BeforeSending {
            return Err(NotifyError::Unavailable("SNS Publish: ThrottledException (injected)".into()));
        }
        let sent = self.inner.notify(notification).await?;
        if sent == Sent::Duplicate {
            self.duplicates.fetch_add(1, Ordering::SeqCst);
        }
        if failing {
            return Err(NotifyError::Unavailable("SNS Publish: timed out after sending (injected)".into()));
        }
        Ok(sent)
    }
}

// ====================================================================== rng

/// SplitMix64: a seeded, reproducible shuffle without another dependency.
pub struct Rng(u64);

impl Rng {
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

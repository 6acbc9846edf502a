//! The production wiring in one process, counting what AWS would bill: the
//! handlers on the DynamoDB adapters (DynamoDB Local) and the SNS notifier
//! (moto); the table's stream handed to `publish-events` after every append
//! (what the event source mapping does when orders do not share a batch);
//! and an EventBridge that routes each entry by the template's rules to an
//! invocation of each matching function.

use crate::capacity::Meter;
use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::Event as StreamBatch;
use domain::Envelope;
use domain::notification::Notification;
use functions::Deps;
use functions::http::Request;
use functions::ports::{
    AppendStream, BusEntry, BusError, EventBus, EventPage, EventStore, LoadedStream, Notifier, NotifyError, PutOutcome, Sent, StoreError,
};
use functions::registry::{self, Handler};
use local::template::Wiring;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// EventBridge bills an entry per 64 KB chunk.
const EVENT_CHUNK: usize = 64 * 1024;

/// Everything billed per request, counted.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    /// Lambda invocations per function (HTTP ones are API Gateway requests too).
    pub invocations: BTreeMap<String, u64>,
    pub http_requests: u64,
    /// Sum of each invocation's wall time rounded up to the millisecond, as
    /// Lambda bills it (here against DynamoDB Local and moto).
    pub billed_ms: u64,
    pub put_events_calls: u64,
    pub bus_entries: u64,
    pub bus_chunks: u64,
    pub largest_entry: usize,
    pub sns_publishes: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The event store, with each append's events kept for the stream.
pub struct Streamed {
    pub inner: Arc<dyn EventStore>,
    appends: Mutex<VecDeque<Vec<Envelope>>>,
}

#[async_trait]
impl EventStore for Streamed {
    async fn load(&self, aggregate_type: &str, aggregate_id: &str) -> Result<LoadedStream, StoreError> {
        self.inner.load(aggregate_type, aggregate_id).await
    }

    async fn append(&self, streams: Vec<AppendStream>) -> Result<(), StoreError> {
        let events: Vec<Envelope> = streams.iter().flat_map(|stream| stream.events.iter().cloned()).collect();
        self.inner.append(streams).await?;
        // Snapshot items are filtered out by the event source mapping.
        if !events.is_empty() {
            lock(&self.appends).push_back(events);
        }
        Ok(())
    }

    async fn read_all(&self, after: Option<&str>, limit: usize) -> Result<EventPage, StoreError> {
        self.inner.read_all(after, limit).await
    }
}

/// EventBridge: each entry to every function whose rule matches it.
pub struct RoutingBus {
    wiring: Wiring,
    deliveries: Mutex<VecDeque<(String, registry::BusEvent)>>,
    tally: Arc<Mutex<Tally>>,
}

#[async_trait]
impl EventBus for RoutingBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<PutOutcome, BusError> {
        let mut tally = lock(&self.tally);
        tally.put_events_calls += 1;
        for entry in entries {
            // EventBridge's entry size: detail, detail type and source.
            let size = entry.detail.len() + entry.detail_type.len() + entry.source.len();
            tally.bus_entries += 1;
            tally.bus_chunks += size.div_ceil(EVENT_CHUNK).max(1) as u64;
            tally.largest_entry = tally.largest_entry.max(size);
            let event = local::bus::eventbridge_event(entry).map_err(BusError::Unavailable)?;
            let seen = local::bus::matchable(&event, &local::bus::fields_read(&self.wiring)).map_err(BusError::Unavailable)?;
            // As the Lambda runtime reads it: the event's JSON text.
            let text = serde_json::to_string(&event).map_err(|e| BusError::Unavailable(e.to_string()))?;
            let event: registry::BusEvent = serde_json::from_str(&text).map_err(|e| BusError::Unavailable(e.to_string()))?;
            for function in &self.wiring.functions {
                // Each matching rule is a target of its own: one invocation each.
                for _ in function.rules.iter().filter(|rule| rule.pattern.matches(&seen)) {
                    lock(&self.deliveries).push_back((function.name.clone(), event.clone()));
                }
            }
        }
        Ok(PutOutcome::default())
    }
}

/// The SNS notifier, counting what it publishes.
pub struct CountedNotifier {
    pub inner: Arc<dyn Notifier>,
    tally: Arc<Mutex<Tally>>,
}

#[async_trait]
impl Notifier for CountedNotifier {
    async fn notify(&self, notification: &Notification) -> Result<Sent, NotifyError> {
        let sent = self.inner.notify(notification).await?;
        if sent == Sent::New {
            lock(&self.tally).sns_publishes += 1;
        }
        Ok(sent)
    }
}

pub struct Cloud {
    pub deps: Deps,
    stream: Arc<Streamed>,
    bus: Arc<RoutingBus>,
    pub meter: Arc<Meter>,
    tally: Arc<Mutex<Tally>>,
    sequence: Mutex<u64>,
}

impl Cloud {
    /// The handlers' dependencies, with the event store, bus and notifier
    /// wrapped to count.
    pub fn new(
        events: Arc<dyn EventStore>,
        views: Arc<dyn functions::ports::ViewStore>,
        notifier: Arc<dyn Notifier>,
        payments: Arc<dyn functions::ports::PaymentGateway>,
        wiring: Wiring,
        meter: Arc<Meter>,
    ) -> Cloud {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let stream = Arc::new(Streamed { inner: events, appends: Mutex::default() });
        let bus = Arc::new(RoutingBus { wiring, deliveries: Mutex::default(), tally: tally.clone() });
        let notifier = Arc::new(CountedNotifier { inner: notifier, tally: tally.clone() });
        let deps = Deps { events: stream.clone(), views, notifier, payments, bus: bus.clone(), settings: functions::Settings::default() };
        Cloud { deps, stream, bus, meter, tally, sequence: Mutex::new(0) }
    }

    /// What was counted since the last call, and a fresh start.
    pub fn take(&self) -> Tally {
        std::mem::take(&mut *lock(&self.tally))
    }

    fn invoked(&self, function: &str, started: Instant) {
        let mut tally = lock(&self.tally);
        *tally.invocations.entry(function.to_owned()).or_default() += 1;
        tally.billed_ms += started.elapsed().as_micros().div_ceil(1000) as u64;
    }

    /// One API request, then everything it sets off, to the end.
    pub async fn http(&self, function: &str, request: Request) -> anyhow::Result<Value> {
        let Some(Handler::Http(handler)) = registry::handler(function) else { anyhow::bail!("{function} is not an HTTP function") };
        self.meter.set_function(function);
        let started = Instant::now();
        let response = registry::invoke_http(function, handler, &self.deps, request).await;
        self.invoked(function, started);
        lock(&self.tally).http_requests += 1;
        let body = match &response.body {
            Some(aws_lambda_events::encodings::Body::Text(text)) => serde_json::from_str(text).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        if response.status_code >= 300 {
            anyhow::bail!("{function} answered {}: {body}", response.status_code);
        }
        self.settle().await?;
        Ok(body)
    }

    /// Runs the stream and the bus until nothing is left to deliver.
    async fn settle(&self) -> anyhow::Result<()> {
        loop {
            let appended = lock(&self.stream.appends).pop_front();
            if let Some(events) = appended {
                let mut batch = StreamBatch::default();
                for envelope in &events {
                    let mut sequence = lock(&self.sequence);
                    *sequence += 1;
                    batch.records.push(functions::item::stream_record(*sequence, envelope)?);
                }
                let Some(Handler::Stream(publisher)) = registry::handler("publish-events") else { anyhow::bail!("no publisher") };
                self.meter.set_function("publish-events");
                let started = Instant::now();
                let response = registry::invoke_stream("publish-events", publisher, &self.deps, batch).await?;
                self.invoked("publish-events", started);
                if !response.batch_item_failures.is_empty() {
                    anyhow::bail!("the publisher failed records: {:?}", response.batch_item_failures);
                }
                continue;
            }
            let delivery = lock(&self.bus.deliveries).pop_front();
            if let Some((function, event)) = delivery {
                let Some(Handler::Event(handler)) = registry::handler(&function) else { anyhow::bail!("{function} takes no events") };
                self.meter.set_function(&function);
                let started = Instant::now();
                registry::invoke_event(&function, handler, &self.deps, &event).await?;
                self.invoked(&function, started);
                continue;
            }
            return Ok(());
        }
    }
}

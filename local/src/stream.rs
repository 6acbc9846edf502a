//! The local DynamoDB Stream: tails the embedded change stream and hands the
//! new events to the stream function (`publish-events`) in DynamoDB Streams
//! records, batch by batch, resuming after a restart where it stopped.

use crate::bus::{STREAM_RULE, dead_letter, read_cursor, write_cursor};
use aws_lambda_events::event::dynamodb::Event as StreamBatch;
use functions::Deps;
use functions::embedded::Database;
use functions::item::stream_record;
use functions::registry::{self, StreamHandler};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const BATCH_SIZE: usize = 100;
/// Like the event source mapping's MaximumRetryAttempts: a record that keeps
/// failing goes to the dead letters (the on-failure destination) and the
/// stream moves on.
const MAX_ATTEMPTS: u32 = 10;

pub struct StreamTailer {
    pub database: Arc<Database>,
    pub deps: Deps,
    pub function: String,
    pub handler: StreamHandler,
}

impl StreamTailer {
    fn cursor(&self) -> String {
        format!("stream:{}", self.function)
    }

    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut position = read_cursor(&self.database, &self.cursor()).unwrap_or(0);
        let mut attempts = 0u32;
        while !*shutdown.borrow() {
            let events = match self.database.events_after(position, BATCH_SIZE) {
                Ok(events) => events,
                Err(error) => {
                    tracing::error!(%error, position, "cannot read the change stream");
                    self.pause(&mut shutdown, Duration::from_secs(1)).await;
                    continue;
                }
            };
            if events.is_empty() {
                tokio::select! {
                    _ = self.database.appended().notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let mut batch = StreamBatch::default();
            // A record that cannot even be built fails at its position, like
            // one the function reports: never skipped in silence.
            let mut unbuildable = None;
            for (at, envelope) in &events {
                match stream_record(*at as u64, envelope) {
                    Ok(record) => batch.records.push(record),
                    Err(error) => {
                        tracing::error!(%error, position = at, "cannot build a stream record");
                        unbuildable = Some(*at);
                        break;
                    }
                }
            }
            let last = batch.records.len().checked_sub(1).and_then(|i| events.get(i)).map_or(position, |(at, _)| *at);
            let failed_at = match registry::invoke_stream(&self.function, self.handler, &self.deps, batch).await {
                Ok(response) => {
                    response.batch_item_failures.iter().filter_map(|failure| failure.item_identifier.as_deref()?.parse::<i64>().ok()).min()
                }
                Err(error) => {
                    tracing::warn!(%error, "stream function failed");
                    events.first().map(|(at, _)| *at)
                }
            };
            match failed_at.or(unbuildable) {
                None => {
                    position = last;
                    attempts = 0;
                }
                Some(at) => {
                    // Everything before the failed record is published.
                    position = at - 1;
                    attempts += 1;
                    if attempts >= MAX_ATTEMPTS {
                        let event = events.iter().find(|(p, _)| *p == at).and_then(|(_, e)| serde_json::to_string(e).ok());
                        let function = self.function.clone();
                        let parked = self
                            .database
                            .write(move |c| dead_letter(c, &function, STREAM_RULE, &event.unwrap_or_default(), "record kept failing"))
                            .await;
                        if let Err(error) = parked {
                            tracing::error!(%error, position = at, "cannot dead-letter the record; it is skipped");
                        }
                        position = at;
                        attempts = 0;
                    } else {
                        self.pause(&mut shutdown, Duration::from_millis(100 << attempts.min(6))).await;
                    }
                }
            }
            // Not waited for: the next batch needs only the position in
            // memory, and the cursor's writes commit in order. A crash before
            // one commits publishes its records again, as Lambda would.
            let saving = write_cursor(&self.database, &self.cursor(), position);
            tokio::spawn(async move {
                if let Err(error) = saving.await {
                    tracing::error!(%error, "cannot save the stream position");
                }
            });
        }
    }

    async fn pause(&self, shutdown: &mut watch::Receiver<bool>, pause: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => {}
        }
    }
}

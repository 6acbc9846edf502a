//! The event bus on Amazon EventBridge: one `PutEvents` request per call.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, PutEventsResultEntry};
use ports::{BusEntry, BusError, EventBus, MAX_BATCH, PutOutcome};

/// Puts events on one custom event bus.
#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    pub client: Client,
    /// The bus's name or ARN (the template's `EVENT_BUS`).
    pub bus_name: String,
}

impl EventBridgeBus {
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self { client, bus_name: bus_name.into() }
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    /// More than `MAX_BATCH` entries is refused with a `BusError` before
    /// anything is sent, rather than split: the port promises one request per
    /// call, the caller must size its requests anyway (EventBridge also caps a
    /// request at 256 KB, which only the caller can chunk by), and splitting
    /// here would turn one failed request into a half-sent batch.
    async fn put_events(&self, entries: &[BusEntry]) -> Result<PutOutcome, BusError> {
        if entries.is_empty() {
            return Ok(PutOutcome::default()); // EventBridge refuses an empty request
        }
        if entries.len() > MAX_BATCH {
            tracing::error!(entries = entries.len(), max = MAX_BATCH, bus = %self.bus_name, "PutEvents request too large");
            return Err(BusError::Unavailable(format!(
                "PutEvents takes at most {MAX_BATCH} entries, got {}: the caller must split the batch",
                entries.len()
            )));
        }
        let request: Vec<PutEventsRequestEntry> = entries
            .iter()
            .map(|entry| {
                PutEventsRequestEntry::builder()
                    .source(&entry.source)
                    .detail_type(&entry.detail_type)
                    .detail(&entry.detail)
                    .event_bus_name(&self.bus_name)
                    .build()
            })
            .collect();
        let output = self.client.put_events().set_entries(Some(request)).send().await.map_err(|error| {
            let code = error.code().unwrap_or("Unknown").to_owned();
            let message = error.message().map(str::to_owned).unwrap_or_else(|| DisplayErrorContext(&error).to_string());
            tracing::error!(bus = %self.bus_name, entries = entries.len(), error_code = %code, error_message = %message, "PutEvents failed");
            BusError::Unavailable(format!("PutEvents: {code}: {message}"))
        })?;
        let outcome = PutOutcome { failed: failed_entries(entries.len(), output.entries()) };
        let reported = usize::try_from(output.failed_entry_count()).unwrap_or(0);
        if reported != outcome.failed.len() {
            tracing::warn!(bus = %self.bus_name, reported, found = outcome.failed.len(), "FailedEntryCount disagrees with the result entries");
        }
        for (index, reason) in &outcome.failed {
            let entry = &entries[*index];
            tracing::warn!(bus = %self.bus_name, index, source = %entry.source, detail_type = %entry.detail_type, reason = %reason, "entry not taken");
        }
        Ok(outcome)
    }
}

/// The request's entries EventBridge did not take, as (index, "code: message").
/// Results come back in request order; an entry with an error code, without an
/// event id, or without a result at all counts as not taken, so it is retried
/// (at worst published twice, never lost).
fn failed_entries(requested: usize, results: &[PutEventsResultEntry]) -> Vec<(usize, String)> {
    (0..requested)
        .filter_map(|index| match results.get(index) {
            None => Some((index, "MissingResult: PutEvents returned no result for this entry".to_owned())),
            Some(result) => match (result.error_code(), result.event_id()) {
                (Some(code), _) => Some((index, format!("{code}: {}", result.error_message().unwrap_or("")))),
                (None, None) => Some((index, "NoEventId: the entry was not given an event id".to_owned())),
                (None, Some(_)) => None,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_read_by_index_with_code_and_message() {
        let results = [
            PutEventsResultEntry::builder().event_id("e0").build(),
            PutEventsResultEntry::builder().error_code("MalformedDetail").error_message("Detail is malformed.").build(),
            PutEventsResultEntry::builder().event_id("e2").build(),
            PutEventsResultEntry::builder().build(),
        ];
        assert_eq!(
            failed_entries(5, &results),
            vec![
                (1, "MalformedDetail: Detail is malformed.".to_owned()),
                (3, "NoEventId: the entry was not given an event id".to_owned()),
                (4, "MissingResult: PutEvents returned no result for this entry".to_owned()),
            ]
        );
        assert!(failed_entries(1, &results[..1]).is_empty());
    }
}

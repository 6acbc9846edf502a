//! Dead-letter redrive. EventBridge parks an event a rule's target could not
//! take, once its retries are spent, in the rule's dead-letter queue (the
//! template's `EventDeadLetterQueue`); the message body is the event as the
//! target would have received it. Once the cause is fixed, [`DeadLetterQueue::redrive`]
//! puts each one back on the bus with its source, detail-type and detail, and
//! deletes from the queue exactly the messages the bus took. What the bus
//! refuses, and what is not an event at all, stays in the queue.
//!
//! Back on the bus, an event reaches every rule that matches it, not only the
//! target that failed: the consumers are idempotent, so the others change
//! nothing.

use aws_config::BehaviorVersion;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message};
use ports::{BusEntry, BusError, EventBus, MAX_BATCH};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;
use thiserror::Error;

/// Seconds a received message stays hidden while it is redriven: what the
/// bus refuses is not received again in the same run, and is made visible
/// again at its end.
const IN_FLIGHT_SECONDS: i32 = 300;

pub struct DeadLetterQueue {
    pub sqs: Client,
    pub url: String,
}

/// What one redrive did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Redriven {
    /// Put back on the bus and deleted from the queue.
    pub redriven: usize,
    /// Left in the queue: the bus did not take them.
    pub refused: Vec<Left>,
    /// Left in the queue: the body is not an EventBridge event.
    pub unreadable: Vec<Left>,
    /// Taken by the bus, but the queue did not delete them: they come back
    /// and would be redriven again (harmless: consumers are idempotent).
    pub not_deleted: Vec<Left>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Left {
    pub message_id: String,
    pub reason: String,
}

#[derive(Debug, Error)]
pub enum RedriveError {
    #[error("dead-letter queue {url}: {reason}")]
    Queue { url: String, reason: String },
    /// Nothing of the batch was taken; its messages stay in the queue.
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// A received message: its id and the handle to delete or release it with.
struct Received {
    id: String,
    receipt: String,
}

impl DeadLetterQueue {
    pub fn new(sqs: Client, url: impl Into<String>) -> DeadLetterQueue {
        DeadLetterQueue { sqs, url: url.into() }
    }

    /// With the SDK's own configuration chain (credentials, region, `AWS_ENDPOINT_URL`).
    pub async fn from_env(url: impl Into<String>) -> DeadLetterQueue {
        let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
        DeadLetterQueue::new(Client::new(&config), url)
    }

    /// Moves up to `max_messages` messages back onto `bus`, ten at a time,
    /// until the queue shows no more.
    pub async fn redrive(&self, bus: &dyn EventBus, max_messages: usize) -> Result<Redriven, RedriveError> {
        let (mut report, mut kept, mut seen) = (Redriven::default(), Vec::new(), 0);
        while seen < max_messages {
            let messages = self.receive((max_messages - seen).min(MAX_BATCH)).await?;
            if messages.is_empty() {
                break;
            }
            seen += messages.len();
            let (mut entries, mut read) = (Vec::new(), Vec::new());
            for message in messages {
                let received = Received { id: message.message_id.clone().unwrap_or_default(), receipt: receipt(&message) };
                match entry_of(message.body().unwrap_or_default()) {
                    Ok(entry) => {
                        entries.push(entry);
                        read.push(received);
                    }
                    Err(reason) => {
                        tracing::warn!(queue = %self.url, message_id = %received.id, reason, "dead letter is not an event: kept");
                        report.unreadable.push(Left { message_id: received.id.clone(), reason });
                        kept.push(received);
                    }
                }
            }
            if entries.is_empty() {
                continue;
            }
            let outcome = match bus.put_events(&entries).await {
                Ok(outcome) => outcome,
                Err(error) => {
                    kept.extend(read);
                    self.release(&kept).await;
                    return Err(error.into());
                }
            };
            let refused: HashSet<usize> = outcome.failed.iter().map(|(index, _)| *index).collect();
            for (index, reason) in outcome.failed {
                if let Some(received) = read.get(index) {
                    report.refused.push(Left { message_id: received.id.clone(), reason });
                }
            }
            let mut taken = Vec::new();
            for (index, received) in read.into_iter().enumerate() {
                if refused.contains(&index) { kept.push(received) } else { taken.push(received) }
            }
            let not_deleted = self.delete(&taken).await?;
            report.redriven += taken.len() - not_deleted.len();
            report.not_deleted.extend(not_deleted);
        }
        self.release(&kept).await;
        tracing::info!(
            queue = %self.url,
            redriven = report.redriven,
            refused = report.refused.len(),
            unreadable = report.unreadable.len(),
            "dead letters redriven"
        );
        Ok(report)
    }

    async fn receive(&self, count: usize) -> Result<Vec<Message>, RedriveError> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(count).unwrap_or(10))
            .visibility_timeout(IN_FLIGHT_SECONDS)
            // Long polling asks every server, so a small queue is not taken for empty.
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|error| self.failed("receive", error))?;
        Ok(received.messages.unwrap_or_default())
    }

    /// Deletes the messages the bus took; returns those the queue kept.
    async fn delete(&self, taken: &[Received]) -> Result<Vec<Left>, RedriveError> {
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        let entries = taken
            .iter()
            .enumerate()
            .map(|(index, received)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(&received.receipt)
                    .build()
                    .map_err(|error| RedriveError::Queue { url: self.url.clone(), reason: format!("delete entry: {error}") })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let deleted = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|error| self.failed("delete", error))?;
        let kept: Vec<Left> = deleted
            .failed
            .iter()
            .filter_map(|failure| {
                let received = taken.get(failure.id.parse::<usize>().ok()?)?;
                Some(Left { message_id: received.id.clone(), reason: format!("{}: {}", failure.code, failure.message().unwrap_or("")) })
            })
            .collect();
        for left in &kept {
            tracing::warn!(queue = %self.url, message_id = %left.message_id, reason = %left.reason, "redriven but not deleted");
        }
        Ok(kept)
    }

    /// Makes the kept messages visible again at once, for the next look.
    async fn release(&self, kept: &[Received]) {
        for chunk in kept.chunks(MAX_BATCH) {
            let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(index, received)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(index.to_string())
                        .receipt_handle(&received.receipt)
                        .visibility_timeout(0)
                        .build()
                        .ok()
                })
                .collect();
            let released = self.sqs.change_message_visibility_batch().queue_url(&self.url).set_entries(Some(entries)).send().await;
            if let Err(error) = released {
                // They come back by themselves once IN_FLIGHT_SECONDS pass.
                tracing::warn!(queue = %self.url, error = %DisplayErrorContext(&error), "could not release kept dead letters");
            }
        }
    }

    fn failed<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
        &self,
        what: &str,
        error: aws_sdk_sqs::error::SdkError<E, R>,
    ) -> RedriveError {
        let reason = match error.as_service_error() {
            Some(service) => format!("{what}: {}: {}", service.code().unwrap_or("unknown error"), service.message().unwrap_or("")),
            None => format!("{what}: {}", DisplayErrorContext(&error)),
        };
        tracing::error!(queue = %self.url, reason, "dead-letter queue failed");
        RedriveError::Queue { url: self.url.clone(), reason }
    }
}

fn receipt(message: &Message) -> String {
    message.receipt_handle.clone().unwrap_or_default()
}

/// The bus entry an EventBridge event (a dead letter's body) was put as.
pub fn entry_of(body: &str) -> Result<BusEntry, String> {
    let event: Value = serde_json::from_str(body).map_err(|error| format!("the body is not JSON: {error}"))?;
    let text = |field: &str| {
        event.get(field).and_then(Value::as_str).filter(|text| !text.is_empty()).ok_or_else(|| format!("the event has no {field}"))
    };
    let detail = event.get("detail").filter(|detail| detail.is_object()).ok_or("the event has no detail object")?;
    Ok(BusEntry { source: text("source")?.to_owned(), detail_type: text("detail-type")?.to_owned(), detail: detail.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_dead_letter_is_put_back_with_its_source_detail_type_and_detail() {
        let detail = json!({ "eventId": "Order-o1-2", "data": { "text": "寿司 🍣", "n": 2.5 } });
        let body = json!({
            "version": "0", "id": "e1", "detail-type": "OrderAccepted", "source": "food-delivery.ordering",
            "account": "1", "time": "2026-11-22T00:00:00Z", "region": "us-east-1", "resources": [], "detail": detail,
        });
        let entry = entry_of(&body.to_string()).expect("an event");
        assert_eq!((entry.source.as_str(), entry.detail_type.as_str()), ("food-delivery.ordering", "OrderAccepted"));
        assert_eq!(serde_json::from_str::<Value>(&entry.detail).expect("JSON"), detail);
    }

    #[test]
    fn what_is_not_an_event_is_unreadable() {
        for body in ["", "not json", "[]", r#"{"source": "s", "detail-type": "t"}"#, r#"{"source": "", "detail-type": "t", "detail": {}}"#]
        {
            assert!(entry_of(body).is_err(), "{body:?} is not an event");
        }
    }
}

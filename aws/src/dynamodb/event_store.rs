//! The event store on one DynamoDB table (the template's `EventTable`): one
//! item per event, the rolling snapshot at `sk` = 0, and one
//! `TransactWriteItems` per append so several streams change together or not
//! at all; an append of a single event, the most common, is a conditional
//! `PutItem` for a quarter of the write units (`one_event`).

use super::error::{code, describe};
use super::item::{self, SNAPSHOT_SK, event_from_item, event_to_item, key, number, partition_key, snapshot_from_item, snapshot_to_item};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use ports::{AppendStream, EventPage, EventStore, LoadedStream, StoreError, check_append};
use std::collections::HashSet;

/// DynamoDB takes at most this many actions in one `TransactWriteItems`.
pub const MAX_TRANSACTION_ACTIONS: usize = 100;

pub struct DynamoEventStore {
    pub client: Client,
    pub table: String,
}

impl DynamoEventStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoEventStore { client, table: table.into() }
    }

    async fn load_snapshot(&self, pk: &str) -> Result<Option<ports::Snapshot>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, SNAPSHOT_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| self.unavailable("load the snapshot", pk, describe(&error)))?;
        output.item.map(snapshot_from_item).transpose().map_err(|reason| self.corrupt(pk, reason))
    }

    /// The events after `after`, following every page (a page holds at most 1 MB).
    async fn load_events(&self, pk: &str, after: u64) -> Result<Vec<domain::Envelope>, StoreError> {
        let mut events = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk > :after")
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
                .expression_attribute_values(":after", number(after))
                .consistent_read(true)
                .scan_index_forward(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|error| self.unavailable("load the events", pk, describe(&error)))?;
            for item in page.items.unwrap_or_default() {
                events.push(event_from_item(item).map_err(|reason| self.corrupt(pk, reason))?);
            }
            start = page.last_evaluated_key.filter(|key| !key.is_empty());
            if start.is_none() {
                return Ok(events);
            }
        }
    }

    /// Every action of one append, each with the stream it guards (to name
    /// the stream a cancellation reason points at).
    fn actions(&self, streams: &[AppendStream]) -> Result<Vec<(String, TransactWriteItem)>, StoreError> {
        let mut actions = Vec::new();
        for stream in streams {
            let name = format!("{}-{}", stream.aggregate_type, stream.aggregate_id);
            let pk = partition_key(&stream.aggregate_type, &stream.aggregate_id);
            if stream.expected_version > 0 {
                // The stream must be at least at the expected version: no gap.
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(&pk, stream.expected_version)))
                    .condition_expression("attribute_exists(pk)")
                    .build()
                    .map_err(refused)?;
                actions.push((name.clone(), TransactWriteItem::builder().condition_check(check).build()));
            }
            for event in &stream.events {
                // ... and not beyond it: no event may exist at a version we write.
                let put = self.put(event_to_item(event).map_err(StoreError::Refused)?, Some("attribute_not_exists(pk)"))?;
                actions.push((name.clone(), put));
            }
            if let Some(snapshot) = &stream.snapshot {
                let put = self.put(snapshot_to_item(&pk, snapshot).map_err(StoreError::Refused)?, None)?;
                actions.push((name.clone(), put));
            }
        }
        Ok(actions)
    }

    fn put(&self, item: item::Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(refused)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    pub(super) fn unavailable(&self, what: &str, pk: &str, reason: String) -> StoreError {
        tracing::warn!(table = %self.table, pk, reason, "could not {what}");
        StoreError::Unavailable(format!("{what} of {pk}: {reason}"))
    }

    fn corrupt(&self, pk: &str, reason: String) -> StoreError {
        tracing::error!(table = %self.table, pk, reason, "stored item does not decode");
        StoreError::Corrupt(format!("{pk}: {reason}"))
    }
}

#[async_trait]
impl EventStore for DynamoEventStore {
    async fn load(&self, aggregate_type: &str, aggregate_id: &str) -> Result<LoadedStream, StoreError> {
        let pk = partition_key(aggregate_type, aggregate_id);
        // The snapshot first: it only moves forward, so every event after it
        // is still there when the query runs.
        let snapshot = self.load_snapshot(&pk).await?;
        let events = self.load_events(&pk, snapshot.as_ref().map_or(0, |snapshot| snapshot.version)).await?;
        Ok(LoadedStream { snapshot, events })
    }

    async fn append(&self, streams: Vec<AppendStream>) -> Result<(), StoreError> {
        check_append(&streams)?;
        let mut seen = HashSet::new();
        if let Some(twice) = streams.iter().find(|stream| !seen.insert((&stream.aggregate_type, &stream.aggregate_id))) {
            return Err(StoreError::Refused(format!("{}-{} appears twice in one append", twice.aggregate_type, twice.aggregate_id)));
        }
        // One event of one stream is one item: no transaction needed.
        if let [stream @ AppendStream { snapshot: None, .. }] = streams.as_slice() {
            if let [event] = stream.events.as_slice() {
                return self.append_one(stream, event).await;
            }
        }
        let (names, actions): (Vec<String>, Vec<TransactWriteItem>) = self.actions(&streams)?.into_iter().unzip();
        if actions.is_empty() {
            return Ok(());
        }
        if actions.len() > MAX_TRANSACTION_ACTIONS {
            tracing::error!(table = %self.table, streams = ?names, actions = actions.len(), "append over the transaction limit");
            return Err(StoreError::Refused(format!(
                "one append needs {} DynamoDB transaction actions (events, version checks, snapshots); at most {MAX_TRANSACTION_ACTIONS} fit",
                actions.len()
            )));
        }
        match self.client.transact_write_items().set_transact_items(Some(actions)).send().await {
            Ok(_) => Ok(()),
            Err(error) => Err(failed(&self.table, &names, error)),
        }
    }

    /// One consistent `Scan` page per call, snapshots filtered out (they have
    /// no `eventId`). A scan reads a stream's items together in sort-key
    /// order, so versions ascend within a stream. `Limit` bounds the items
    /// read, not the events returned, and a page also ends at 1 MB: either
    /// way `LastEvaluatedKey`, as the cursor, says where to go on.
    async fn read_all(&self, after: Option<&str>, limit: usize) -> Result<EventPage, StoreError> {
        let start = after.map(cursor::decode).transpose()?;
        let limit = i32::try_from(limit)
            .ok()
            .filter(|limit| *limit > 0)
            .ok_or_else(|| StoreError::Refused(format!("a page of read_all holds 1 to {} events, not {limit}", i32::MAX)))?;
        let page = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("attribute_exists(eventId)")
            .consistent_read(true)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|error| self.unavailable("scan the events", after.unwrap_or("the start"), describe(&error)))?;
        let mut events = Vec::new();
        for item in page.items.unwrap_or_default() {
            let pk = item.get("pk").and_then(|pk| pk.as_s().ok()).cloned().unwrap_or_default();
            events.push(event_from_item(item).map_err(|reason| self.corrupt(&pk, reason))?);
        }
        let next = page.last_evaluated_key.filter(|key| !key.is_empty()).map(cursor::encode).transpose()?;
        Ok(EventPage { events, next })
    }
}

/// `LastEvaluatedKey` as a cursor: the event table's key, `{"pk", "sk"}` as JSON.
mod cursor {
    use super::item::{Item, key};
    use ports::StoreError;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Position {
        pk: String,
        sk: u64,
    }

    pub fn encode(last: Item) -> Result<String, StoreError> {
        let text = |name: &str| last.get(name).and_then(|value| value.as_s().or_else(|_| value.as_n()).ok()).cloned();
        let (Some(pk), Some(sk)) = (text("pk"), text("sk").and_then(|sk| sk.parse().ok())) else {
            return Err(StoreError::Corrupt(format!("the scan's LastEvaluatedKey is not an event table key: {last:?}")));
        };
        serde_json::to_string(&Position { pk, sk }).map_err(|error| StoreError::Corrupt(error.to_string()))
    }

    pub fn decode(cursor: &str) -> Result<Item, StoreError> {
        let position: Position = serde_json::from_str(cursor)
            .map_err(|error| StoreError::Refused(format!("{cursor:?} is not a cursor of this store: {error}")))?;
        Ok(key(&position.pk, position.sk))
    }
}

/// What a failed transaction means for the caller.
fn failed<R: std::fmt::Debug>(table: &str, streams: &[String], error: SdkError<TransactWriteItemsError, R>) -> StoreError {
    let reason = describe(&error);
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = error.as_service_error() {
        let reasons = cancelled.cancellation_reasons();
        let codes: Vec<&str> = reasons.iter().map(|reason| reason.code().unwrap_or("None")).collect();
        let mut lost: Vec<&str> = codes
            .iter()
            .zip(streams)
            .filter(|(code, _)| matches!(**code, "ConditionalCheckFailed" | "TransactionConflict"))
            .map(|(_, stream)| stream.as_str())
            .collect();
        lost.dedup();
        if !lost.is_empty() {
            tracing::debug!(table, streams = ?lost, ?codes, "append lost a race");
            return StoreError::Conflict(lost.join(", "));
        }
        if codes.contains(&"ValidationError") {
            tracing::error!(table, ?streams, ?codes, reason, "append refused by DynamoDB");
            return StoreError::Refused(format!("{reason} {codes:?}"));
        }
        tracing::warn!(table, ?streams, ?codes, reason, "append cancelled");
        return StoreError::Unavailable(format!("{reason} {codes:?}"));
    }
    if code(&error) == Some("ValidationException") {
        // Over 4 MB, an item over 400 KB, ...: retrying cannot help.
        tracing::error!(table, ?streams, reason, "append refused by DynamoDB");
        return StoreError::Refused(reason);
    }
    tracing::warn!(table, ?streams, reason, "append failed");
    StoreError::Unavailable(reason)
}

fn refused(error: impl std::fmt::Display) -> StoreError {
    StoreError::Refused(error.to_string())
}

#[cfg(test)]
mod tests {
    //! How DynamoDB's answers map to `StoreError`, for the answers DynamoDB
    //! Local never gives (it serializes transactions, so a race there is
    //! always `ConditionalCheckFailed`, never `TransactionConflict`).

    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;

    fn cancelled(codes: &[&str]) -> SdkError<TransactWriteItemsError, ()> {
        let reasons = codes.iter().map(|code| CancellationReason::builder().code(*code).build()).collect();
        let exception = TransactionCanceledException::builder()
            .set_cancellation_reasons(Some(reasons))
            .message("Transaction cancelled")
            .meta(ErrorMetadata::builder().code("TransactionCanceledException").message("Transaction cancelled").build())
            .build();
        SdkError::service_error(TransactWriteItemsError::TransactionCanceledException(exception), ())
    }

    fn service(code: &str) -> SdkError<TransactWriteItemsError, ()> {
        let meta = ErrorMetadata::builder().code(code).message("from the service").build();
        SdkError::service_error(TransactWriteItemsError::generic(meta), ())
    }

    fn streams() -> Vec<String> {
        ["Order-1", "Order-1", "Payment-1"].map(str::to_owned).to_vec()
    }

    #[test]
    fn a_failed_condition_or_a_transaction_conflict_is_a_conflict_naming_the_stream() {
        for code in ["ConditionalCheckFailed", "TransactionConflict"] {
            match failed("t", &streams(), cancelled(&["None", "None", code])) {
                StoreError::Conflict(stream) => assert_eq!(stream, "Payment-1"),
                other => panic!("{code} must be a Conflict, got {other:?}"),
            }
        }
        match failed("t", &streams(), cancelled(&["ConditionalCheckFailed", "TransactionConflict", "ThrottlingError"])) {
            StoreError::Conflict(stream) => assert_eq!(stream, "Order-1"),
            other => panic!("a lost race wins over throttling: {other:?}"),
        }
    }

    #[test]
    fn throttling_and_other_service_errors_are_unavailable_with_their_code() {
        for error in [
            cancelled(&["None", "ThrottlingError", "None"]),
            service("ProvisionedThroughputExceededException"),
            service("InternalServerError"),
        ] {
            match failed("t", &streams(), error) {
                StoreError::Unavailable(message) => assert!(
                    message.contains("Throttling") || message.contains("Exceeded") || message.contains("InternalServerError"),
                    "{message}"
                ),
                other => panic!("must be Unavailable, got {other:?}"),
            }
        }
    }

    #[test]
    fn validation_errors_are_refused() {
        for error in [cancelled(&["None", "ValidationError", "None"]), service("ValidationException")] {
            assert!(matches!(failed("t", &streams(), error), StoreError::Refused(_)), "a validation error cannot be retried");
        }
    }
}

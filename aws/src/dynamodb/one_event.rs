//! The append of most commands and policies: one event on one stream, no
//! snapshot. It needs no transaction, and a transaction costs twice: 2 write
//! units per KB of each item, the gap check's condition included (4 units
//! for a small event), where a conditional `PutItem` costs 1 unit per KB.
//!
//! The same guarantees, cheaper (BENCHMARKS.md, cost per order):
//! - no gap: a consistent read (1 read unit, a fifth of the price of a write
//!   unit) finds the event at the expected version before the put. Events are
//!   never deleted, so once it is there it stays there: no race between the
//!   read and the put;
//! - no overwrite: the put's `attribute_not_exists(pk)` on the next version
//!   settles a race between two writers, as the transaction's did.

use super::error::{code, describe};
use super::event_store::DynamoEventStore;
use super::item::{event_to_item, key, partition_key};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use domain::Envelope;
use ports::{AppendStream, StoreError};

impl DynamoEventStore {
    pub(super) async fn append_one(&self, stream: &AppendStream, event: &Envelope) -> Result<(), StoreError> {
        let name = format!("{}-{}", stream.aggregate_type, stream.aggregate_id);
        let pk = partition_key(&stream.aggregate_type, &stream.aggregate_id);
        if stream.expected_version > 0 {
            let found = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key(&pk, stream.expected_version)))
                .consistent_read(true)
                .projection_expression("pk")
                .send()
                .await
                .map_err(|error| self.unavailable("check the expected version", &pk, describe(&error)))?;
            if found.item.is_none() {
                tracing::debug!(table = %self.table, stream = name, expected = stream.expected_version, "append ahead of the stream");
                return Err(StoreError::Conflict(name));
            }
        }
        let item = event_to_item(event).map_err(StoreError::Refused)?;
        let put = self.client.put_item().table_name(&self.table).set_item(Some(item)).condition_expression("attribute_not_exists(pk)");
        match put.send().await {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_) | PutItemError::TransactionConflictException(_)) => {
                    tracing::debug!(table = %self.table, stream = name, "append lost a race");
                    Err(StoreError::Conflict(name))
                }
                // An item over 400 KB: retrying cannot help.
                _ if code(&error) == Some("ValidationException") => {
                    tracing::error!(table = %self.table, stream = name, reason = describe(&error), "append refused by DynamoDB");
                    Err(StoreError::Refused(describe(&error)))
                }
                _ => Err(self.unavailable("append to", &pk, describe(&error))),
            },
        }
    }
}

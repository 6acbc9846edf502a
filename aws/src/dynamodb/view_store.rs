//! The view store on one DynamoDB table (the template's `ViewTable`): one item
//! per document, `pk` = `{view}#{key}`, found by partition through the GSI
//! `by-partition` (`gsi1pk` = `{view}#{partition}`, `gsi1sk` = key). Every
//! put is conditioned on the revision it read. A body's top-level `expiresAt`
//! (Unix seconds) is copied to the item's `expiresAt`, the table's TTL.

use super::error::describe;
use super::item::number;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use ports::{ViewDoc, ViewError, ViewStore};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The GSI that finds a view's documents by partition, in key order.
pub const BY_PARTITION: &str = "by-partition";
/// The table's TTL attribute, and the body field it is copied from.
pub const EXPIRES_AT: &str = "expiresAt";

pub struct DynamoViewStore {
    pub client: Client,
    pub table: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ViewItem {
    pk: String,
    gsi1pk: String,
    /// The document's key.
    gsi1sk: String,
    revision: u64,
    /// The body as JSON text: exact, and no DynamoDB number limits.
    body: String,
    /// For DynamoDB's TTL, which reads only a top-level number attribute.
    #[serde(rename = "expiresAt", default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

fn scoped(view: &str, name: &str) -> String {
    format!("{view}#{name}")
}

/// The body's top-level `expiresAt` if it is an `i64`, read without building
/// the body; `None` for any other body.
fn expires_at(body: &str) -> Option<i64> {
    #[derive(Deserialize)]
    struct Expiring {
        // EXPIRES_AT: serde's rename takes only a literal.
        #[serde(rename = "expiresAt")]
        expires_at: Option<i64>,
    }
    // A struct decodes from an array too, but only an object has fields.
    if !body.starts_with('{') {
        return None;
    }
    serde_json::from_str::<Expiring>(body).ok()?.expires_at
}

impl DynamoViewStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoViewStore { client, table: table.into() }
    }

    fn decode(&self, view: &str, item: HashMap<String, AttributeValue>) -> Result<ViewDoc, ViewError> {
        let corrupt = |reason: String| {
            tracing::error!(table = %self.table, view, reason, "stored view document does not decode");
            ViewError::Corrupt(format!("{view}: {reason}"))
        };
        let item: ViewItem = serde_dynamo::from_item(item).map_err(|error| corrupt(error.to_string()))?;
        let partition = item
            .gsi1pk
            .strip_prefix(&scoped(view, ""))
            .ok_or_else(|| corrupt(format!("{} has partition {} of another view", item.pk, item.gsi1pk)))?
            .to_owned();
        Ok(ViewDoc { key: item.gsi1sk, partition, revision: item.revision, body: item.body })
    }

    fn unavailable(&self, what: &str, view: &str, reason: String) -> ViewError {
        tracing::warn!(table = %self.table, view, reason, "could not {what}");
        ViewError::Unavailable(format!("{what} {view}: {reason}"))
    }
}

#[async_trait]
impl ViewStore for DynamoViewStore {
    async fn get(&self, view: &str, key: &str) -> Result<Option<ViewDoc>, ViewError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(scoped(view, key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| self.unavailable("get from", view, describe(&error)))?;
        output.item.map(|item| self.decode(view, item)).transpose()
    }

    async fn put(&self, view: &str, doc: &ViewDoc, expected_revision: u64) -> Result<(), ViewError> {
        let item = ViewItem {
            pk: scoped(view, &doc.key),
            gsi1pk: scoped(view, &doc.partition),
            gsi1sk: doc.key.clone(),
            revision: expected_revision + 1,
            body: doc.body.clone(),
            expires_at: expires_at(&doc.body),
        };
        let item = serde_dynamo::to_item(item).map_err(|error| self.unavailable("encode for", view, error.to_string()))?;
        let request = self.client.put_item().table_name(&self.table).set_item(Some(item));
        let request = if expected_revision == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request.condition_expression("revision = :expected").expression_attribute_values(":expected", number(expected_revision))
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_) | PutItemError::TransactionConflictException(_)) => {
                    tracing::debug!(table = %self.table, view, key = doc.key, expected_revision, "view put lost a race");
                    Err(ViewError::Conflict(format!("{view}/{}", doc.key)))
                }
                _ => Err(self.unavailable("put to", view, describe(&error))),
            },
        }
    }

    async fn query(&self, view: &str, partition: &str) -> Result<Vec<ViewDoc>, ViewError> {
        let mut docs = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_PARTITION)
                .key_condition_expression("gsi1pk = :partition")
                .expression_attribute_values(":partition", AttributeValue::S(scoped(view, partition)))
                .scan_index_forward(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|error| self.unavailable("query", view, describe(&error)))?;
            for item in page.items.unwrap_or_default() {
                docs.push(self.decode(view, item)?);
            }
            start = page.last_evaluated_key.filter(|key| !key.is_empty());
            if start.is_none() {
                break;
            }
        }
        // The index returns key order already (UTF-8 bytes, as `str` compares):
        // sorting again keeps the port's promise whatever the pages did.
        docs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(docs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Only an `i64` at the top level of an object is a TTL.
    #[test]
    fn expires_at_is_a_top_level_whole_number_or_nothing() {
        let cases = [
            (json!({ "state": "done", "expiresAt": 1_700_000_000 }), Some(1_700_000_000)),
            (json!({ "expiresAt": -5 }), Some(-5)),
            (json!({ "state": "done" }), None),
            (json!({ "expiresAt": null }), None),
            (json!({ "expiresAt": "tomorrow" }), None),
            (json!({ "expiresAt": 1.5 }), None),
            (json!({ "expiresAt": u64::MAX }), None),
            (json!({ "nested": { "expiresAt": 7 } }), None),
            (json!([1_700_000_000]), None),
            (json!(7), None),
            (json!(null), None),
        ];
        for (body, expected) in cases {
            assert_eq!(expires_at(&body.to_string()), expected, "{body}");
        }
    }
}

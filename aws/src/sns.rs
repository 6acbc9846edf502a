//! Customer notifications on an SNS topic, sent once per notification id.
//!
//! A standard topic does not deduplicate, so the notifier does, with a claim
//! item in the view table (key `notification#{id}`):
//!
//! 1. claim: PutItem `{state: claimed, claimedAt}` if no item exists, or if
//!    the existing claim is older than [`CLAIM_TIMEOUT`] (its sender crashed);
//!    an item in state `sent` means a duplicate, a fresh claim means another
//!    delivery of the same event is sending right now (an error, so this one
//!    is retried later and then finds it sent);
//! 2. publish the notification;
//! 3. mark the item `sent`. A failed publish deletes the claim instead, so the
//!    retry can send.
//!
//! The one window left: a sender that crashes (or cannot reach DynamoDB)
//! after step 2 and before step 3 leaves a claim that a retry takes over once
//! it is [`CLAIM_TIMEOUT`] old, and the customer gets the message twice.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sns::types::MessageAttributeValue;
use chrono::Utc;
use domain::notification::Notification;
use ports::{Notifier, NotifyError, Sent};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

/// How old a claim must be before another sender may take it over.
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a claim is kept: a week, far past the rules' 24 h event age.
pub const CLAIM_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

const CLAIMED: &str = "claimed";
const SENT: &str = "sent";

pub struct SnsNotifier {
    pub sns: aws_sdk_sns::Client,
    pub topic_arn: String,
    /// The table holding the claims (the view table on AWS).
    pub dedupe: aws_sdk_dynamodb::Client,
    pub table: String,
}

/// What the claim found.
enum Claim {
    /// Ours: send it.
    Taken,
    /// Sent before.
    Sent,
    /// Another sender holds a fresh claim.
    Busy,
}

/// The key of a notification's claim item.
pub fn claim_key(notification_id: &str) -> String {
    format!("notification#{notification_id}")
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn notify(&self, notification: &Notification) -> Result<Sent, NotifyError> {
        let message = serde_json::to_string(notification).map_err(|e| NotifyError::Unavailable(format!("notification to JSON: {e}")))?;
        let key = claim_key(&notification.id);
        let claimed_at = Utc::now().timestamp_millis();
        match self.claim(&key, claimed_at).await? {
            Claim::Taken => {}
            Claim::Sent => return Ok(Sent::Duplicate),
            Claim::Busy => {
                tracing::warn!(notification_id = %notification.id, "notification is being sent by another delivery");
                return Err(NotifyError::Unavailable(format!("notification {} is being sent by another delivery", notification.id)));
            }
        }
        if let Err(error) = self.publish(notification, message).await {
            self.release(&key, claimed_at).await;
            return Err(error);
        }
        self.mark_sent(&key, claimed_at).await;
        Ok(Sent::New)
    }
}

impl SnsNotifier {
    async fn claim(&self, key: &str, claimed_at: i64) -> Result<Claim, NotifyError> {
        let stale_before = claimed_at - CLAIM_TIMEOUT.as_millis() as i64;
        let claimed = self
            .dedupe
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_owned()))
            .item("state", AttributeValue::S(CLAIMED.into()))
            .item("claimedAt", AttributeValue::N(claimed_at.to_string()))
            // DynamoDB's TTL (seconds) sweeps the claim long after any retry.
            .item("expiresAt", AttributeValue::N((claimed_at / 1000 + CLAIM_RETENTION.as_secs() as i64).to_string()))
            .condition_expression("attribute_not_exists(pk) OR (#state = :claimed AND claimedAt < :stale)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":claimed", AttributeValue::S(CLAIMED.into()))
            .expression_attribute_values(":stale", AttributeValue::N(stale_before.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let error = match claimed {
            Ok(_) => return Ok(Claim::Taken),
            Err(error) => error,
        };
        let existing = match error.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(failed)) => match failed.item() {
                Some(item) => Some(item.clone()),
                // Not every DynamoDB returns the item on a failed condition: read it.
                None => self.read_claim(key).await?,
            },
            _ => {
                let (code, message) = metadata(&error);
                tracing::error!(table = %self.table, key, error_code = %code, error_message = %message, "claiming a notification failed");
                return Err(NotifyError::Unavailable(format!("claim {key}: {code}: {message}")));
            }
        };
        let state = existing.as_ref().and_then(|item| item.get("state")).and_then(|state| state.as_s().ok());
        Ok(if state.map(String::as_str) == Some(SENT) { Claim::Sent } else { Claim::Busy })
    }

    async fn read_claim(&self, key: &str) -> Result<Option<HashMap<String, AttributeValue>>, NotifyError> {
        let read = self
            .dedupe
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| {
                let (code, message) = metadata(&error);
                tracing::error!(table = %self.table, key, error_code = %code, error_message = %message, "reading a notification claim failed");
                NotifyError::Unavailable(format!("read claim {key}: {code}: {message}"))
            })?;
        Ok(read.item)
    }

    async fn publish(&self, notification: &Notification, message: String) -> Result<(), NotifyError> {
        let mut request = self.sns.publish().topic_arn(&self.topic_arn).message(message);
        // As message attributes, so a subscription can filter on them.
        let attributes = [
            ("customerId", notification.customer_id.0.clone()),
            ("orderId", notification.order_id.0.clone()),
            ("eventType", notification.event_type.clone()),
            ("status", as_text(&notification.status)),
        ];
        for (name, value) in attributes {
            if value.is_empty() {
                continue; // SNS refuses empty attribute values
            }
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| NotifyError::Unavailable(format!("message attribute {name}: {e}")))?;
            request = request.message_attributes(name, attribute);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error) => {
                let (code, message) = metadata(&error);
                tracing::error!(topic = %self.topic_arn, notification_id = %notification.id, error_code = %code, error_message = %message, "publishing a notification failed");
                Err(NotifyError::Unavailable(format!("Publish: {code}: {message}")))
            }
        }
    }

    /// After a failed publish: gives the claim up (only if it is still ours),
    /// so the retry can send at once instead of after the claim times out.
    async fn release(&self, key: &str, claimed_at: i64) {
        let released = self
            .dedupe
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .condition_expression("#state = :claimed AND claimedAt = :mine")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":claimed", AttributeValue::S(CLAIMED.into()))
            .expression_attribute_values(":mine", AttributeValue::N(claimed_at.to_string()))
            .send()
            .await;
        if let Err(error) = released {
            let (code, message) = metadata(&error);
            // Not fatal: the claim times out and a retry takes it over.
            tracing::warn!(table = %self.table, key, error_code = %code, error_message = %message, "releasing a notification claim failed");
        }
    }

    /// After a successful publish. A failure here is logged, not returned: the
    /// customer has the message, and failing would only make a retry that
    /// sends it again once the claim times out.
    async fn mark_sent(&self, key: &str, claimed_at: i64) {
        let marked = self
            .dedupe
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .update_expression("SET #state = :sent, sentAt = :now")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sent", AttributeValue::S(SENT.into()))
            .expression_attribute_values(":now", AttributeValue::N(Utc::now().timestamp_millis().to_string()))
            .send()
            .await;
        if let Err(error) = marked {
            let (code, message) = metadata(&error);
            tracing::error!(
                table = %self.table, key, claimed_at, error_code = %code, error_message = %message,
                "marking a notification sent failed: a retry after the claim times out sends it again"
            );
        }
    }
}

/// An SDK error's code and message, for logs and port errors.
fn metadata<E: ProvideErrorMetadata + std::error::Error + 'static>(error: &E) -> (String, String) {
    let code = error.code().unwrap_or("Unknown").to_owned();
    let message = error.message().map(str::to_owned).unwrap_or_else(|| DisplayErrorContext(error).to_string());
    (code, message)
}

/// A unit enum's serde name (`picked-up`), as the JSON message spells it.
fn as_text<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(text)) => text,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

use async_trait::async_trait;
use thiserror::Error;

/// One read-model document. `revision` counts its writes and guards them.
/// `body` is the document as JSON text: writers encode their typed view
/// straight to it, readers decode straight from it (`decode`), which is also
/// where a body that is not JSON shows; a store does not parse it to check.
///
/// A body whose top-level `expiresAt` is a Unix time in seconds may be
/// removed by the store some time after then (DynamoDB's TTL takes up to a
/// few days; the embedded store keeps it). Until removed it reads back as any
/// other document, so readers check the time themselves.
/// Bodies compare as text: the same JSON formatted differently is not equal.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewDoc {
    pub key: String,
    pub partition: String,
    pub revision: u64,
    pub body: String,
}

impl ViewDoc {
    /// The body decoded as a view (or any other type it holds).
    pub fn decode<V: serde::de::DeserializeOwned>(&self) -> serde_json::Result<V> {
        serde_json::from_str(&self.body)
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum ViewError {
    #[error("view document {0} was changed concurrently")]
    Conflict(String),
    #[error("view store unavailable: {0}")]
    Unavailable(String),
    #[error("stored view does not decode: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait ViewStore: Send + Sync {
    async fn get(&self, view: &str, key: &str) -> Result<Option<ViewDoc>, ViewError>;

    /// Stores `doc` with revision `expected_revision + 1`, only if the stored
    /// revision is still `expected_revision` (0: the document must not exist).
    async fn put(&self, view: &str, doc: &ViewDoc, expected_revision: u64) -> Result<(), ViewError>;

    /// Every document of `view` in `partition`, in key order.
    async fn query(&self, view: &str, partition: &str) -> Result<Vec<ViewDoc>, ViewError>;
}

use async_trait::async_trait;
use domain::notification::Notification;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    New,
    /// This notification id was sent before; the customer is not messaged again.
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum NotifyError {
    #[error("notifier unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends the notification once per `notification.id`, however often called.
    async fn notify(&self, notification: &Notification) -> Result<Sent, NotifyError>;
}

use super::Database;
use crate::ports::{Notifier, NotifyError, Sent};
use async_trait::async_trait;
use domain::notification::Notification;
use rusqlite::params;

/// Locally a notification is "sent" by keeping it: the local runner prints it
/// and serves it back at `/local/notifications`.
#[async_trait]
impl Notifier for Database {
    async fn notify(&self, notification: &Notification) -> Result<Sent, NotifyError> {
        let body = serde_json::to_string(notification).map_err(|e| NotifyError::Unavailable(e.to_string()))?;
        let (id, customer_id) = (notification.id.clone(), notification.customer_id.0.clone());
        let inserted = self
            .write_statement(move |connection| {
                connection
                    .prepare_cached("INSERT INTO notifications (id, customer_id, body) VALUES (?1, ?2, ?3) ON CONFLICT (id) DO NOTHING")?
                    .execute(params![id, customer_id, body])
            })
            .await
            .map_err(|e| NotifyError::Unavailable(e.to_string()))?;
        Ok(if inserted == 1 { Sent::New } else { Sent::Duplicate })
    }
}

impl Database {
    /// The notifications a customer received, in the order their events
    /// happened (deliveries may have arrived in another order).
    pub fn notifications(&self, customer_id: &str) -> Result<Vec<Notification>, NotifyError> {
        let rows = self
            .read(|connection| {
                connection
                    .prepare_cached("SELECT body FROM notifications WHERE customer_id = ?1 ORDER BY seq")?
                    .query_map(params![customer_id], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| NotifyError::Unavailable(e.to_string()))?;
        let mut sent: Vec<Notification> = rows
            .iter()
            .map(|body| serde_json::from_str(body).map_err(|e| NotifyError::Unavailable(e.to_string())))
            .collect::<Result<_, _>>()?;
        sent.sort_by(|a, b| (a.time, &a.order_id, a.version).cmp(&(b.time, &b.order_id, b.version)));
        Ok(sent)
    }
}

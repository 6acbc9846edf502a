//! Notification: the message a customer receives for each status change of
//! their order. One event, one message, identified by the event's id so a
//! redelivered event can never message the customer twice.

use crate::envelope::Envelope;
use crate::ids::{CustomerId, OrderId};
use crate::ordering::{CancelReason, OrderEvent, OrderStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// The id of the event it announces: the deduplication key.
    pub id: String,
    pub customer_id: CustomerId,
    pub order_id: OrderId,
    /// The order's version after this change: delivery may reorder
    /// notifications, and this puts them back in order.
    #[serde(default)]
    pub version: u64,
    pub event_type: String,
    pub status: OrderStatus,
    pub message: String,
    #[serde(with = "crate::time")]
    pub time: DateTime<Utc>,
}

pub fn for_order_event(envelope: &Envelope, event: &OrderEvent) -> Notification {
    Notification {
        id: envelope.event_id.clone(),
        customer_id: event.customer_id().clone(),
        order_id: OrderId(envelope.aggregate_id.clone()),
        version: envelope.version,
        event_type: envelope.event_type.clone(),
        status: event.status(),
        message: message(event),
        time: envelope.time,
    }
}

fn message(event: &OrderEvent) -> String {
    match event {
        OrderEvent::OrderPlaced { total, .. } => format!("Your order is placed and {total} is paid. Waiting for the store to accept it."),
        OrderEvent::OrderAccepted { .. } => "The store accepted your order.".into(),
        OrderEvent::OrderRejected { reason, .. } => {
            format!("The store could not take your order ({reason}). Your payment will be refunded.")
        }
        OrderEvent::CookingStarted { .. } => "The kitchen started cooking your order.".into(),
        OrderEvent::CookingFinished { .. } => "Your food is ready and waiting for a rider.".into(),
        OrderEvent::OrderPickedUp { .. } => "A rider picked up your food and is on the way.".into(),
        OrderEvent::OrderDelivered { .. } => "Your order was delivered. Enjoy your meal!".into(),
        OrderEvent::OrderCancelled { reason: CancelReason::Customer, .. } => {
            "Your order is cancelled as you asked. Your payment will be refunded.".into()
        }
        OrderEvent::OrderCancelled { reason: CancelReason::RiderAccident, .. } => {
            "We are sorry: your delivery had an accident and the order is cancelled. Your payment will be refunded.".into()
        }
    }
}

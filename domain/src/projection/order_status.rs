//! The customer's view of one order: its status and a timeline of every
//! status change with its time.

use super::{Projection, ViewKey};
use crate::envelope::{Envelope, Event};
use crate::ids::{CustomerId, OrderId, Region, RiderId, StoreId};
use crate::money::Money;
use crate::ordering::{CancelReason, OrderEvent, OrderLine, OrderStatus};
use crate::payment::{PaymentEvent, RefundReason};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSummary {
    pub lines: Vec<OrderLine>,
    pub total: Money,
    pub region: Region,
    pub address: String,
    #[serde(with = "crate::time")]
    pub placed_at: DateTime<Utc>,
}

impl OrderSummary {
    /// What an `OrderPlaced` says about the order; `None` for other events.
    pub fn of(event: &OrderEvent, placed_at: DateTime<Utc>) -> Option<OrderSummary> {
        let OrderEvent::OrderPlaced { lines, total, region, address, .. } = event else { return None };
        Some(OrderSummary { lines: lines.clone(), total: *total, region: region.clone(), address: address.clone(), placed_at })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    pub version: u64,
    pub status: OrderStatus,
    #[serde(with = "crate::time")]
    pub time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderStatusView {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub store_id: StoreId,
    /// The status of the latest change in the timeline.
    pub status: Option<OrderStatus>,
    pub summary: Option<OrderSummary>,
    pub rider_id: Option<RiderId>,
    /// Sorted by version, one entry per event.
    pub timeline: Vec<TimelineEntry>,
    /// Set once the payment has been returned.
    #[serde(default)]
    pub refund: Option<Refund>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub amount: Money,
    pub reason: RefundReason,
    #[serde(with = "crate::time")]
    pub time: DateTime<Utc>,
}

pub struct OrderStatusProjection;

impl Projection for OrderStatusProjection {
    const NAME: &'static str = "order-status";
    type View = OrderStatusView;

    fn locate(envelope: &Envelope, event: &Event) -> Option<ViewKey> {
        let customer_id = match event {
            Event::Order(event) => event.customer_id(),
            Event::Payment(PaymentEvent::PaymentRefunded { customer_id, .. }) => customer_id,
            _ => return None,
        };
        // The payment shares its order's id, so both land in one document.
        Some(ViewKey { key: envelope.aggregate_id.clone(), partition: customer_id.0.clone() })
    }

    fn apply(mut view: OrderStatusView, envelope: &Envelope, event: &Event) -> OrderStatusView {
        let event = match event {
            Event::Order(event) => event,
            Event::Payment(PaymentEvent::PaymentRefunded { customer_id, amount, reason, .. }) => {
                view.order_id = OrderId(envelope.aggregate_id.clone());
                view.customer_id = customer_id.clone();
                view.refund = Some(Refund { amount: *amount, reason: *reason, time: envelope.time });
                return view;
            }
            _ => return view,
        };
        view.order_id = OrderId(envelope.aggregate_id.clone());
        view.customer_id = event.customer_id().clone();
        view.store_id = event.store_id().clone();
        if let Some(summary) = OrderSummary::of(event, envelope.time) {
            view.summary = Some(summary);
        }
        if let OrderEvent::OrderPickedUp { rider_id, .. } | OrderEvent::OrderDelivered { rider_id, .. } = event {
            view.rider_id = Some(rider_id.clone());
        }
        if let Err(at) = view.timeline.binary_search_by_key(&envelope.version, |entry| entry.version) {
            let entry = TimelineEntry { version: envelope.version, status: event.status(), time: envelope.time, note: note(event) };
            view.timeline.insert(at, entry);
        }
        view.status = view.timeline.last().map(|entry| entry.status);
        view
    }
}

fn note(event: &OrderEvent) -> Option<String> {
    match event {
        OrderEvent::OrderRejected { reason, .. } => Some(reason.clone()),
        OrderEvent::OrderCancelled { reason: CancelReason::Customer, .. } => Some("cancelled by the customer".into()),
        OrderEvent::OrderCancelled { reason: CancelReason::RiderAccident, .. } => Some("delivery accident".into()),
        _ => None,
    }
}

//! The store's order queue: every order of the store with its current status;
//! the active ones are what the kitchen works on.

use super::order_status::OrderSummary;
use super::{Latest, Projection, ViewKey};
use crate::envelope::{Envelope, Event};
use crate::ids::{CustomerId, OrderId, StoreId};
use crate::ordering::OrderStatus;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedOrder {
    pub order_id: OrderId,
    pub store_id: StoreId,
    pub customer_id: CustomerId,
    pub status: Latest<Option<OrderStatus>>,
    pub summary: Option<OrderSummary>,
}

impl QueuedOrder {
    pub fn is_active(&self) -> bool {
        self.status.value.is_some_and(OrderStatus::is_active)
    }
}

pub struct StoreQueueProjection;

impl Projection for StoreQueueProjection {
    const NAME: &'static str = "store-queue";
    type View = QueuedOrder;

    fn locate(envelope: &Envelope, event: &Event) -> Option<ViewKey> {
        let Event::Order(event) = event else { return None };
        Some(ViewKey { key: envelope.aggregate_id.clone(), partition: event.store_id().0.clone() })
    }

    fn apply(mut view: QueuedOrder, envelope: &Envelope, event: &Event) -> QueuedOrder {
        let Event::Order(event) = event else { return view };
        view.order_id = OrderId(envelope.aggregate_id.clone());
        view.store_id = event.store_id().clone();
        view.customer_id = event.customer_id().clone();
        view.status.set(envelope.version, Some(event.status()));
        if let Some(summary) = OrderSummary::of(event, envelope.time) {
            view.summary = Some(summary);
        }
        view
    }
}

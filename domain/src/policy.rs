//! Policies: the choreography between bounded contexts. Each is a pure
//! function from an event to the command it causes. The command id is derived
//! from the event id, so a duplicate event yields the very same command, and
//! the commands themselves are idempotent on their aggregates.

use crate::delivery::{DeliveryCommand, DeliveryDetails, DeliveryEvent};
use crate::envelope::{Envelope, Event};
use crate::notification::{self, Notification};
use crate::ordering::{CancelReason, DeliveryProgress, OrderCommand, OrderEvent};
use crate::payment::{PaymentCommand, RefundReason};

/// A command issued by a policy: which aggregate it goes to and the id that
/// makes it recognisable when the causing event is delivered again.
#[derive(Debug, Clone, PartialEq)]
pub struct Issued<C> {
    pub command_id: String,
    pub aggregate_id: String,
    pub command: C,
}

fn issue<C>(policy: &str, envelope: &Envelope, command: C) -> Issued<C> {
    Issued {
        command_id: format!("{policy}/{}", envelope.event_id),
        // Payment and delivery share their order's id.
        aggregate_id: envelope.aggregate_id.clone(),
        command,
    }
}

/// Rejection, cancellation and accident each refund the order's payment.
pub fn refund_payment(envelope: &Envelope, event: &Event) -> Option<Issued<PaymentCommand>> {
    let reason = match event {
        Event::Order(OrderEvent::OrderRejected { .. }) => RefundReason::StoreRejected,
        Event::Order(OrderEvent::OrderCancelled { reason: CancelReason::Customer, .. }) => RefundReason::CustomerCancelled,
        Event::Order(OrderEvent::OrderCancelled { reason: CancelReason::RiderAccident, .. }) => RefundReason::RiderAccident,
        _ => return None,
    };
    Some(issue("refund-payment", envelope, PaymentCommand::Refund { reason }))
}

/// Cooking started: offer the delivery to the region's riders. Cooking
/// finished: the food can be picked up.
pub fn dispatch_delivery(envelope: &Envelope, event: &Event) -> Option<Issued<DeliveryCommand>> {
    let Event::Order(order_event) = event else { return None };
    let command = match order_event {
        OrderEvent::CookingStarted { customer_id, store_id, region, address } => DeliveryCommand::Open(DeliveryDetails {
            customer_id: customer_id.clone(),
            store_id: store_id.clone(),
            region: region.clone(),
            address: address.clone(),
        }),
        OrderEvent::CookingFinished { customer_id, store_id, region, address } => DeliveryCommand::MarkFoodReady(DeliveryDetails {
            customer_id: customer_id.clone(),
            store_id: store_id.clone(),
            region: region.clone(),
            address: address.clone(),
        }),
        _ => return None,
    };
    Some(issue("dispatch-delivery", envelope, command))
}

/// The rider's progress becomes the order's progress.
pub fn track_delivery(envelope: &Envelope, event: &Event) -> Option<Issued<OrderCommand>> {
    let progress = match event {
        Event::Delivery(DeliveryEvent::DeliveryPicked { rider_id, .. }) => DeliveryProgress::PickedUp { rider_id: rider_id.clone() },
        Event::Delivery(DeliveryEvent::DeliveryCompleted { rider_id, .. }) => DeliveryProgress::Delivered { rider_id: rider_id.clone() },
        Event::Delivery(DeliveryEvent::AccidentReported { rider_id, .. }) => DeliveryProgress::Accident { rider_id: rider_id.clone() },
        _ => return None,
    };
    Some(issue("track-delivery", envelope, OrderCommand::Delivery(progress)))
}

/// Every status change of an order tells its customer.
pub fn notify_customer(envelope: &Envelope, event: &Event) -> Option<Notification> {
    match event {
        Event::Order(order_event) => Some(notification::for_order_event(envelope, order_event)),
        _ => None,
    }
}

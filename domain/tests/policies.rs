//! Policies: which event causes which command, and the customer's
//! notifications.

mod support;

use domain::catalog::Store;
use domain::delivery::{Delivery, DeliveryCommand, DeliveryEvent};
use domain::notification::Notification;
use domain::ordering::{CancelReason, DeliveryProgress, Order, OrderCommand, OrderEvent, OrderStatus};
use domain::payment::{Payment, PaymentCommand, RefundReason};
use domain::policy::{dispatch_delivery, notify_customer, refund_payment, track_delivery};
use domain::{Envelope, Event, Versioned};
use std::collections::HashSet;
use support::*;

/// An order's stream, wrapped: versions 1.. under aggregate id `order-1`.
fn order_stream(events: &[OrderEvent]) -> Vec<(Envelope, Event)> {
    with_events(envelopes::<Order>(&order_id().0, events))
}

fn delivery_stream(events: &[DeliveryEvent]) -> Vec<(Envelope, Event)> {
    with_events(envelopes::<Delivery>(&order_id().0, events))
}

fn with_events(envelopes: Vec<Envelope>) -> Vec<(Envelope, Event)> {
    envelopes.into_iter().map(|e| (decode(&e), e)).map(|(event, e)| (e, event)).collect()
}

fn last(stream: Vec<(Envelope, Event)>) -> (Envelope, Event) {
    stream.into_iter().last().unwrap()
}

/// Every event of every aggregate, for the "nothing else" checks.
fn every_event() -> Vec<(Envelope, Event)> {
    let mut all = order_stream(&[order_at(OrderStatus::Delivered), vec![rejected("sold out")]].concat());
    let cancellations = [order_placed(), cancelled(CancelReason::Customer), cancelled(CancelReason::RiderAccident)];
    all.extend(with_events(envelopes::<Order>("order-2", &cancellations)));
    let delivery = [delivery_opened(), food_ready(), delivery_picked(rider()), delivery_completed(rider())];
    all.extend(delivery_stream(&[delivery.to_vec(), vec![accident_reported(rider(), "fell")]].concat()));
    all.extend(with_events(envelopes::<Payment>(&order_id().0, &[payment_approved(), payment_refunded(RefundReason::StoreRejected)])));
    all.extend(with_events(envelopes::<Store>(&store_id().0, &[store_registered(), store_closed()])));
    all
}

// ---------------------------------------------------------------- refund-payment

#[test]
fn rejection_and_both_cancellations_refund_the_payment_with_their_reason() {
    let cases = [
        (rejected("sold out"), RefundReason::StoreRejected),
        (cancelled(CancelReason::Customer), RefundReason::CustomerCancelled),
        (cancelled(CancelReason::RiderAccident), RefundReason::RiderAccident),
    ];
    for (event, reason) in cases {
        let (envelope, event) = last(order_stream(&[order_placed(), event]));
        let issued = refund_payment(&envelope, &event).expect("a refund");
        assert_eq!(issued.command, PaymentCommand::Refund { reason });
        assert_eq!(issued.aggregate_id, "order-1", "the payment is the order's");
        assert_eq!(issued.command_id, "refund-payment/Order-order-1-2");
    }
}

#[test]
fn no_other_event_refunds_anything() {
    let refunded: Vec<_> = every_event().iter().filter_map(|(e, event)| refund_payment(e, event).map(|_| e.event_type.clone())).collect();
    assert_eq!(refunded, ["OrderRejected", "OrderCancelled", "OrderCancelled"]);
}

// ---------------------------------------------------------------- dispatch-delivery

#[test]
fn cooking_started_opens_the_delivery_and_cooking_finished_marks_the_food_ready() {
    let stream = order_stream(&order_at(OrderStatus::Cooked));
    let (started, finished) = (&stream[2], &stream[3]);
    let open = dispatch_delivery(&started.0, &started.1).expect("open the delivery");
    assert_eq!(open.command, DeliveryCommand::Open(details()));
    assert_eq!((open.aggregate_id.as_str(), open.command_id.as_str()), ("order-1", "dispatch-delivery/Order-order-1-3"));
    let ready = dispatch_delivery(&finished.0, &finished.1).expect("food is ready");
    assert_eq!(ready.command, DeliveryCommand::MarkFoodReady(details()));
    assert_eq!(ready.command_id, "dispatch-delivery/Order-order-1-4");
}

#[test]
fn no_other_event_dispatches_a_delivery() {
    let dispatched: Vec<_> =
        every_event().iter().filter_map(|(e, event)| dispatch_delivery(e, event).map(|_| e.event_type.clone())).collect();
    assert_eq!(dispatched, ["CookingStarted", "CookingFinished"]);
}

// ---------------------------------------------------------------- track-delivery

#[test]
fn the_riders_progress_becomes_the_orders_progress() {
    let cases = [
        (delivery_picked(rider()), DeliveryProgress::PickedUp { rider_id: rider() }),
        (delivery_completed(rider()), DeliveryProgress::Delivered { rider_id: rider() }),
        (accident_reported(rider(), "fell"), DeliveryProgress::Accident { rider_id: rider() }),
    ];
    for (event, progress) in cases {
        let (envelope, event) = last(delivery_stream(&[delivery_opened(), food_ready(), event]));
        let issued = track_delivery(&envelope, &event).expect("progress");
        assert_eq!(issued.command, OrderCommand::Delivery(progress));
        assert_eq!(issued.aggregate_id, "order-1");
        assert_eq!(issued.command_id, "track-delivery/Delivery-order-1-3");
    }
}

#[test]
fn no_other_event_is_tracked() {
    let tracked: Vec<_> = every_event().iter().filter_map(|(e, event)| track_delivery(e, event).map(|_| e.event_type.clone())).collect();
    assert_eq!(tracked, ["DeliveryPicked", "DeliveryCompleted", "AccidentReported"]);
}

// ---------------------------------------------------------------- command ids

#[test]
fn the_same_event_delivered_again_issues_the_very_same_command() {
    let (envelope, event) = last(order_stream(&[order_placed(), rejected("sold out")]));
    let redelivered: Envelope = serde_json::from_str(&serde_json::to_string(&envelope).unwrap()).unwrap();
    assert_eq!(refund_payment(&envelope, &event), refund_payment(&redelivered, &decode(&redelivered)));
}

#[test]
fn different_events_and_policies_issue_distinct_command_ids() {
    let mut ids = Vec::new();
    for (e, event) in every_event() {
        ids.extend(refund_payment(&e, &event).map(|i| i.command_id));
        ids.extend(dispatch_delivery(&e, &event).map(|i| i.command_id));
        ids.extend(track_delivery(&e, &event).map(|i| i.command_id));
    }
    assert_eq!(ids.len(), 8);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "{ids:?}");
}

#[test]
fn redelivered_events_change_nothing_downstream() {
    // The order cooks; the policy opens the delivery, every event arriving twice.
    let mut delivery = Versioned::<Delivery>::default();
    for (envelope, event) in order_stream(&order_at(OrderStatus::Cooked)).iter().flat_map(|e| [e.clone(), e.clone()]) {
        if let Some(issued) = dispatch_delivery(&envelope, &event) {
            delivery.execute(&issued.command).unwrap();
        }
    }
    assert_eq!(delivery, Versioned::replay(&[delivery_opened(), food_ready()]));

    // A rider picks; the pick reaches the order twice.
    let picked = delivery_stream(&[delivery_opened(), food_ready(), delivery_picked(rider())]);
    let mut order = Versioned::<Order>::replay(&order_at(OrderStatus::Cooked));
    for _ in 0..2 {
        let issued = track_delivery(&picked[2].0, &picked[2].1).unwrap();
        order.execute(&issued.command).unwrap();
    }
    assert_eq!(order, Versioned::replay(&order_at(OrderStatus::PickedUp)));
}

// ---------------------------------------------------------------- notify-customer

fn notifications(events: &[OrderEvent]) -> Vec<Notification> {
    order_stream(events).iter().map(|(e, event)| notify_customer(e, event).expect("every order event")).collect()
}

#[test]
fn every_order_event_notifies_its_customer_once() {
    let sent = notifications(&order_at(OrderStatus::Delivered));
    assert_eq!(sent.len(), 6);
    for (version, notification) in (1..).zip(&sent) {
        assert_eq!(notification.id, format!("Order-order-1-{version}"), "the id is the event's");
        assert_eq!(notification.customer_id, customer());
        assert_eq!(notification.order_id, order_id());
        assert_eq!(notification.time, at(version));
    }
    let statuses: Vec<_> = sent.iter().map(|n| n.status).collect();
    use OrderStatus as S;
    assert_eq!(statuses, [S::Placed, S::Accepted, S::Cooking, S::Cooked, S::PickedUp, S::Delivered]);
    assert_eq!(sent[5].event_type, "OrderDelivered");
    assert!(sent[0].message.contains("33.50"), "placed mentions what was paid: {}", sent[0].message);
}

#[test]
fn only_order_events_notify() {
    let notified: HashSet<_> =
        every_event().iter().filter_map(|(e, event)| notify_customer(e, event).map(|_| e.aggregate_type.clone())).collect();
    assert_eq!(notified, HashSet::from(["Order".to_owned()]));
}

#[test]
fn a_rejection_or_cancellation_tells_the_customer_about_the_refund() {
    let rejection = &notifications(&[order_placed(), rejected("out of rice")])[1];
    assert!(rejection.message.contains("out of rice") && rejection.message.contains("refunded"), "{}", rejection.message);
    for reason in [CancelReason::Customer, CancelReason::RiderAccident] {
        let cancellation = &notifications(&[order_placed(), cancelled(reason)])[1];
        assert_eq!(cancellation.status, OrderStatus::Cancelled);
        assert!(cancellation.message.contains("refunded"), "{reason:?}: {}", cancellation.message);
    }
    let accident = &notifications(&[order_placed(), cancelled(CancelReason::RiderAccident)])[1];
    assert!(accident.message.contains("accident"), "{}", accident.message);
    for other in notifications(&order_at(OrderStatus::Delivered)) {
        assert!(!other.message.contains("refund"), "{}: {}", other.event_type, other.message);
    }
}

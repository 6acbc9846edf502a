//! The envelope: what every stored and published event looks like on the
//! wire, and how it decodes back.

mod support;

use domain::catalog::Store;
use domain::delivery::Delivery;
use domain::envelope::{event_id, source_of};
use domain::ordering::{CancelReason, Order, OrderEvent, OrderStatus};
use domain::payment::{Payment, RefundReason};
use domain::{Aggregate, DecodeError, Envelope, Event};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use support::*;

fn wrap<A: Aggregate>(id: &str, version: u64, event: A::Event) -> Envelope {
    Envelope::wrap::<A>(id, version, &event, &meta("command-7", 5))
}

/// One envelope per event type (both cancellation reasons), with the event
/// it must decode to.
fn every_event() -> Vec<(Envelope, Event)> {
    let mut all = Vec::new();
    let store = [store_registered(), menu_changed(menu()), store_closed(), store_opened()];
    all.extend(store.into_iter().map(|e| (wrap::<Store>("store-1", 1, e.clone()), Event::Store(e))));
    let mut orders = order_at(OrderStatus::Delivered);
    orders.extend([rejected("sold out"), cancelled(CancelReason::Customer), cancelled(CancelReason::RiderAccident)]);
    all.extend(orders.into_iter().map(|e| (wrap::<Order>("order-1", 1, e.clone()), Event::Order(e))));
    let payments = [payment_approved(), payment_refunded(RefundReason::RiderAccident)];
    all.extend(payments.into_iter().map(|e| (wrap::<Payment>("order-1", 1, e.clone()), Event::Payment(e))));
    let deliveries =
        [delivery_opened(), food_ready(), delivery_picked(rider()), delivery_completed(rider()), accident_reported(rider(), "fell")];
    all.extend(deliveries.into_iter().map(|e| (wrap::<Delivery>("order-1", 1, e.clone()), Event::Delivery(e))));
    all
}

fn raw(data: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(data).unwrap()
}

fn to_json(envelope: &Envelope) -> Value {
    serde_json::to_value(envelope).unwrap()
}

fn from_json(value: Value) -> Envelope {
    serde_json::from_value(value).unwrap()
}

#[test]
fn every_event_type_is_covered() {
    let types: BTreeSet<_> = every_event().iter().map(|(e, _)| e.event_type.clone()).collect();
    let expected = [
        "StoreRegistered",
        "MenuChanged",
        "StoreOpened",
        "StoreClosed",
        "OrderPlaced",
        "OrderAccepted",
        "OrderRejected",
        "CookingStarted",
        "CookingFinished",
        "OrderPickedUp",
        "OrderDelivered",
        "OrderCancelled",
        "PaymentApproved",
        "PaymentRefunded",
        "DeliveryOpened",
        "FoodReady",
        "DeliveryPicked",
        "DeliveryCompleted",
        "AccidentReported",
    ];
    assert_eq!(types, expected.into_iter().map(String::from).collect());
}

#[test]
fn every_event_decodes_to_itself_after_a_trip_through_json() {
    for (envelope, event) in every_event() {
        assert_eq!(envelope.decode().as_ref(), Ok(&event), "{}", envelope.event_type);
        let text = serde_json::to_string(&envelope).unwrap();
        let received: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(received, envelope);
        assert_eq!(received.decode(), Ok(event));
    }
}

#[test]
fn the_envelope_fields_are_camel_case() {
    for (envelope, _) in every_event() {
        let Value::Object(fields) = to_json(&envelope) else { panic!("an object") };
        let names: BTreeSet<_> = fields.keys().map(String::as_str).collect();
        let expected = [
            "eventId",
            "eventType",
            "eventVersion",
            "aggregateType",
            "aggregateId",
            "version",
            "correlationId",
            "causationId",
            "time",
            "data",
        ];
        assert_eq!(names, BTreeSet::from(expected));
    }
}

#[test]
fn an_envelope_reads_as_documented() {
    let envelope = wrap::<Order>("order-1", 3, cooking_started());
    assert_eq!(
        to_json(&envelope),
        json!({
            "eventId": "Order-order-1-3",
            "eventType": "CookingStarted",
            "eventVersion": 1,
            "aggregateType": "Order",
            "aggregateId": "order-1",
            "version": 3,
            "correlationId": "order-1",
            "causationId": "command-7",
            "time": "2026-01-01T00:05:00Z",
            "data": { "customerId": "customer-1", "storeId": "store-1", "region": "gangnam", "address": ADDRESS },
        })
    );
}

#[test]
fn event_data_is_camel_case_with_money_in_cents() {
    let data = wrap::<Order>("order-1", 1, order_placed()).payload();
    assert_eq!(data["customerId"], "customer-1");
    assert_eq!(data["chargeId"], "charge-1");
    assert_eq!(data["total"], 3350);
    assert_eq!(data["lines"][0], json!({ "menuId": "bibimbap", "name": "Bibimbap", "unitPrice": 1200, "quantity": 2 }));
    let data = wrap::<Order>("order-1", 2, cancelled(CancelReason::RiderAccident)).payload();
    assert_eq!(data["reason"], "rider-accident");
    let data = wrap::<Delivery>("order-1", 3, delivery_picked(rider())).payload();
    assert_eq!((&data["riderId"], &data["details"]["storeId"]), (&json!("rider-1"), &json!("store-1")));
}

#[test]
fn the_event_id_is_deterministic() {
    let once = wrap::<Payment>("order-1", 2, payment_refunded(RefundReason::StoreRejected));
    let again = wrap::<Payment>("order-1", 2, payment_refunded(RefundReason::StoreRejected));
    assert_eq!(once.event_id, "Payment-order-1-2");
    assert_eq!(once, again);
    assert_eq!(event_id("Delivery", "order-1", 4), "Delivery-order-1-4");
    assert_ne!(once.event_id, wrap::<Payment>("order-1", 1, payment_approved()).event_id);
}

#[test]
fn the_envelope_carries_the_callers_metadata_and_the_current_schema_version() {
    let envelope = Envelope::wrap::<Order>("order-1", 2, &accepted(), &meta("accept-order-1", 9));
    assert_eq!(envelope.correlation_id, "order-1");
    assert_eq!(envelope.causation_id, "accept-order-1");
    assert_eq!(envelope.time, at(9));
    assert_eq!((envelope.event_version, envelope.version), (1, 2));
}

#[test]
fn each_aggregate_publishes_under_its_bounded_context() {
    let sources: Vec<_> = ["Store", "Order", "Payment", "Delivery"].into_iter().map(source_of).collect();
    let expected = ["food-delivery.catalog", "food-delivery.ordering", "food-delivery.payment", "food-delivery.delivery"];
    assert_eq!(sources, expected.map(Some));
    assert_eq!(source_of("Kitchen"), None);
    assert_eq!(wrap::<Order>("order-1", 1, order_placed()).source(), Some("food-delivery.ordering"));
}

#[test]
fn an_unknown_aggregate_type_does_not_decode() {
    let mut envelope = wrap::<Order>("order-1", 2, accepted());
    envelope.aggregate_type = "Kitchen".into();
    assert_eq!(envelope.decode(), Err(DecodeError::UnknownAggregate("Kitchen".into())));
}

#[test]
fn malformed_data_does_not_decode() {
    let valid = wrap::<Order>("order-1", 1, order_placed());
    let mut missing_field = valid.clone();
    let mut data = valid.payload();
    data.as_object_mut().unwrap().remove("total");
    missing_field.data = raw(&data);
    let mut wrong_type = valid.clone();
    let mut data = valid.payload();
    data["total"] = json!("33.50");
    wrong_type.data = raw(&data);
    let mut unknown_type = valid.clone();
    unknown_type.event_type = "OrderTeleported".into();
    let mut wrong_aggregate = valid.clone();
    wrong_aggregate.aggregate_type = "Payment".into();
    let mut no_data = valid;
    no_data.data = raw(&Value::Null);
    for envelope in [missing_field, wrong_type, unknown_type, wrong_aggregate, no_data] {
        match envelope.decode() {
            Err(DecodeError::Malformed { event_type, reason }) => {
                assert_eq!(event_type, envelope.event_type);
                assert!(!reason.is_empty());
            }
            other => panic!("{envelope:?} decoded to {other:?}"),
        }
    }
}

#[test]
fn a_newer_schema_version_is_refused_not_guessed() {
    let mut envelope = wrap::<Order>("order-1", 2, accepted());
    envelope.event_version = 2;
    assert_eq!(envelope.decode(), Err(DecodeError::FutureVersion { event_type: "OrderAccepted".into(), found: 2, supported: 1 }));
}

#[test]
fn an_older_schema_version_is_read_through_the_upcast() {
    // Version 1 is current everywhere, so the upcast of version 0 keeps the
    // payload as it is; the point is the path a future upcast will take.
    for (mut envelope, event) in every_event() {
        envelope.event_version = 0;
        assert_eq!(envelope.decode(), Ok(event), "{}", envelope.event_type);
    }
}

#[test]
fn an_envelope_written_by_hand_decodes() {
    let envelope = from_json(json!({
        "eventId": "Order-order-9-2", "eventType": "OrderRejected", "eventVersion": 1,
        "aggregateType": "Order", "aggregateId": "order-9", "version": 2,
        "correlationId": "order-9", "causationId": "reject-1", "time": "2026-01-01T12:00:00Z",
        "data": { "customerId": "customer-1", "storeId": "store-1", "reason": "sold out" }
    }));
    assert_eq!(envelope.decode(), Ok(Event::Order(rejected("sold out"))));
    assert!(matches!(envelope.decode(), Ok(Event::Order(e @ OrderEvent::OrderRejected { .. })) if e.status() == OrderStatus::Rejected));
}

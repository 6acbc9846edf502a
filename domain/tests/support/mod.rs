//! A tiny given/when/then harness and the fixtures the scenarios share.
//!
//! ```ignore
//! given::<Order>(order_at(OrderStatus::Accepted))
//!     .when(OrderCommand::Cancel { customer_id: customer() })
//!     .then([cancelled(CancelReason::Customer)]);
//! ```
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use domain::catalog::{MenuItem, StoreCommand, StoreEvent};
use domain::delivery::{DeliveryCommand, DeliveryDetails, DeliveryEvent};
use domain::kitchen::KitchenCommand;
use domain::ordering::{ApprovedPayment, CancelReason, DeliveryProgress, OrderCommand, OrderEvent, OrderLine, OrderStatus, PlaceOrder};
use domain::payment::{PaymentEvent, RefundReason};
use domain::projection::Projection;
use domain::{
    Aggregate, CustomerId, DomainError, Envelope, Event, MenuItemId, Metadata, Money, OrderId, OwnerId, Region, RiderId, StoreId, Versioned,
};
use std::fmt::Debug;
use std::mem::discriminant;

// ---------------------------------------------------------------- harness

pub struct Given<A: Aggregate> {
    pub history: Versioned<A>,
}

/// The aggregate rebuilt from `events`, as the event store would load it.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let events: Vec<A::Event> = events.into_iter().collect();
    Given { history: Versioned::replay(&events) }
}

impl<A: Aggregate> Given<A>
where
    A::Command: Debug,
{
    pub fn when(self, command: A::Command) -> When<A> {
        let outcome = self.history.state.decide(&command);
        When { history: self.history, command, outcome }
    }
}

pub struct When<A: Aggregate> {
    history: Versioned<A>,
    command: A::Command,
    outcome: Result<Vec<A::Event>, DomainError>,
}

impl<A: Aggregate> When<A>
where
    A::Command: Debug,
{
    /// Asserts the decision is exactly `expected`; returns the state with
    /// those events applied, for assertions on it.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) -> A {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        match self.outcome {
            Ok(events) if events == expected => {
                let mut state = self.history.state;
                events.iter().for_each(|event| state.apply(event));
                state
            }
            other => panic!("given {:?}\nwhen {:?}\nexpected events {expected:?}\nbut got {other:?}", self.history.state, self.command),
        }
    }

    /// Asserts the command is accepted and changes nothing (idempotent repeat).
    #[track_caller]
    pub fn then_nothing(self) {
        self.then([]);
    }

    /// Asserts a refusal of the kind `kind`, e.g. `DomainError::Conflict`.
    #[track_caller]
    pub fn then_err(self, kind: fn(String) -> DomainError) -> DomainError {
        match self.outcome {
            Err(error) if discriminant(&error) == discriminant(&kind(String::new())) => error,
            other => panic!("given {:?}\nwhen {:?}\nexpected {:?}\nbut got {other:?}", self.history.state, self.command, kind("..".into())),
        }
    }

    /// As `then_err`, and the message must mention `words`.
    #[track_caller]
    pub fn then_err_mentioning(self, kind: fn(String) -> DomainError, words: &str) -> DomainError {
        let error = self.then_err(kind);
        assert!(error.to_string().contains(words), "expected the refusal to mention {words:?}, got {error:?}");
        error
    }
}

/// An event stream with the store's append condition: events go in only at
/// the version the caller decided on.
#[derive(Debug)]
pub struct Stream<A: Aggregate> {
    pub events: Vec<A::Event>,
}

impl<A: Aggregate> Stream<A> {
    pub fn new(events: impl IntoIterator<Item = A::Event>) -> Self {
        Self { events: events.into_iter().collect() }
    }

    pub fn load(&self) -> Versioned<A> {
        Versioned::replay(&self.events)
    }

    /// Appends after `expected_version`, or refuses if someone else appended first.
    pub fn append(&mut self, expected_version: u64, events: Vec<A::Event>) -> Result<(), u64> {
        let current = self.events.len() as u64;
        if current != expected_version {
            return Err(current);
        }
        self.events.extend(events);
        Ok(())
    }
}

// ---------------------------------------------------------------- ids

pub fn store_id() -> StoreId {
    "store-1".into()
}
pub fn owner() -> OwnerId {
    "owner-1".into()
}
pub fn other_owner() -> OwnerId {
    "owner-2".into()
}
pub fn region() -> Region {
    "gangnam".into()
}
pub fn order_id() -> OrderId {
    "order-1".into()
}
pub fn customer() -> CustomerId {
    "customer-1".into()
}
pub fn other_customer() -> CustomerId {
    "customer-2".into()
}
pub fn rider() -> RiderId {
    "rider-1".into()
}
pub fn other_rider() -> RiderId {
    "rider-2".into()
}

// ---------------------------------------------------------------- catalog

pub fn item(id: &str, name: &str, cents: u64) -> MenuItem {
    MenuItem { id: MenuItemId::from(id), name: name.into(), price: Money(cents) }
}

/// bibimbap 12.00, kimchi-stew 9.50, tteokbokki 6.00.
pub fn menu() -> Vec<MenuItem> {
    vec![item("bibimbap", "Bibimbap", 1200), item("kimchi-stew", "Kimchi stew", 950), item("tteokbokki", "Tteokbokki", 600)]
}

pub fn register_store() -> StoreCommand {
    StoreCommand::Register { store_id: store_id(), owner: owner(), name: "Seoul Kitchen".into(), region: region(), menu: menu() }
}

pub fn store_registered() -> StoreEvent {
    StoreEvent::StoreRegistered { store_id: store_id(), owner: owner(), name: "Seoul Kitchen".into(), region: region(), menu: menu() }
}

pub fn menu_changed(menu: Vec<MenuItem>) -> StoreEvent {
    StoreEvent::MenuChanged { store_id: store_id(), region: region(), menu }
}

pub fn store_closed() -> StoreEvent {
    StoreEvent::StoreClosed { store_id: store_id(), region: region() }
}

pub fn store_opened() -> StoreEvent {
    StoreEvent::StoreOpened { store_id: store_id(), region: region() }
}

// ---------------------------------------------------------------- ordering

pub fn line(menu_id: &str, name: &str, cents: u64, quantity: u32) -> OrderLine {
    OrderLine { menu_id: menu_id.into(), name: name.into(), unit_price: Money(cents), quantity }
}

/// Two bibimbap and one kimchi stew: 33.50.
pub fn lines() -> Vec<OrderLine> {
    vec![line("bibimbap", "Bibimbap", 1200, 2), line("kimchi-stew", "Kimchi stew", 950, 1)]
}

pub const TOTAL: Money = Money(3350);
pub const ADDRESS: &str = "12 Teheran-ro, Gangnam-gu";

pub fn place_order() -> PlaceOrder {
    PlaceOrder {
        customer_id: customer(),
        store_id: store_id(),
        lines: lines(),
        region: region(),
        address: ADDRESS.into(),
        payment: ApprovedPayment { charge_id: "charge-1".into(), amount: TOTAL },
    }
}

pub fn order_placed() -> OrderEvent {
    OrderEvent::OrderPlaced {
        customer_id: customer(),
        store_id: store_id(),
        lines: lines(),
        region: region(),
        address: ADDRESS.into(),
        total: TOTAL,
        charge_id: "charge-1".into(),
    }
}

pub fn accepted() -> OrderEvent {
    OrderEvent::OrderAccepted { customer_id: customer(), store_id: store_id() }
}
pub fn rejected(reason: &str) -> OrderEvent {
    OrderEvent::OrderRejected { customer_id: customer(), store_id: store_id(), reason: reason.into() }
}
pub fn cooking_started() -> OrderEvent {
    OrderEvent::CookingStarted { customer_id: customer(), store_id: store_id(), region: region(), address: ADDRESS.into() }
}
pub fn cooking_finished() -> OrderEvent {
    OrderEvent::CookingFinished { customer_id: customer(), store_id: store_id(), region: region(), address: ADDRESS.into() }
}
pub fn picked_up(rider_id: RiderId) -> OrderEvent {
    OrderEvent::OrderPickedUp { customer_id: customer(), store_id: store_id(), rider_id }
}
pub fn delivered(rider_id: RiderId) -> OrderEvent {
    OrderEvent::OrderDelivered { customer_id: customer(), store_id: store_id(), rider_id }
}
pub fn cancelled(reason: CancelReason) -> OrderEvent {
    OrderEvent::OrderCancelled { customer_id: customer(), store_id: store_id(), reason }
}

pub const ALL_STATUSES: [OrderStatus; 8] = [
    OrderStatus::Placed,
    OrderStatus::Accepted,
    OrderStatus::Rejected,
    OrderStatus::Cooking,
    OrderStatus::Cooked,
    OrderStatus::PickedUp,
    OrderStatus::Delivered,
    OrderStatus::Cancelled,
];

/// The shortest history that leaves the order in `status` (a cancellation
/// is the customer's, from `Placed`).
pub fn order_at(status: OrderStatus) -> Vec<OrderEvent> {
    use OrderStatus as S;
    let mut events = vec![order_placed()];
    match status {
        S::Placed => {}
        S::Rejected => events.push(rejected("sold out")),
        S::Cancelled => events.push(cancelled(CancelReason::Customer)),
        S::Accepted | S::Cooking | S::Cooked | S::PickedUp | S::Delivered => {
            let path = [accepted(), cooking_started(), cooking_finished(), picked_up(rider()), delivered(rider())];
            let steps = [S::Accepted, S::Cooking, S::Cooked, S::PickedUp, S::Delivered];
            let n = steps.iter().position(|s| *s == status).unwrap() + 1;
            events.extend(path.into_iter().take(n));
        }
    }
    events
}

pub fn kitchen(command: KitchenCommand) -> OrderCommand {
    OrderCommand::Kitchen { store_id: store_id(), command }
}

pub fn progress(progress: DeliveryProgress) -> OrderCommand {
    OrderCommand::Delivery(progress)
}

// ---------------------------------------------------------------- payment

pub fn payment_approved() -> PaymentEvent {
    PaymentEvent::PaymentApproved { customer_id: customer(), charge_id: "charge-1".into(), amount: TOTAL }
}

pub fn payment_refunded(reason: RefundReason) -> PaymentEvent {
    PaymentEvent::PaymentRefunded { customer_id: customer(), charge_id: "charge-1".into(), amount: TOTAL, reason }
}

// ---------------------------------------------------------------- delivery

pub fn details() -> DeliveryDetails {
    DeliveryDetails { customer_id: customer(), store_id: store_id(), region: region(), address: ADDRESS.into() }
}

pub fn open_delivery() -> DeliveryCommand {
    DeliveryCommand::Open(details())
}
pub fn mark_food_ready() -> DeliveryCommand {
    DeliveryCommand::MarkFoodReady(details())
}
pub fn delivery_opened() -> DeliveryEvent {
    DeliveryEvent::DeliveryOpened { details: details() }
}
pub fn food_ready() -> DeliveryEvent {
    DeliveryEvent::FoodReady { details: details() }
}
pub fn delivery_picked(rider_id: RiderId) -> DeliveryEvent {
    DeliveryEvent::DeliveryPicked { details: details(), rider_id }
}
pub fn delivery_completed(rider_id: RiderId) -> DeliveryEvent {
    DeliveryEvent::DeliveryCompleted { details: details(), rider_id }
}
pub fn accident_reported(rider_id: RiderId, description: &str) -> DeliveryEvent {
    DeliveryEvent::AccidentReported { details: details(), rider_id, description: description.into() }
}

// ---------------------------------------------------------------- envelopes

/// A fixed instant plus `minutes`: tests never read the clock.
pub fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + minutes * 60, 0).expect("a valid instant")
}

/// Metadata of something the order caused, `minutes` into the scenario.
pub fn meta(causation_id: &str, minutes: i64) -> Metadata {
    Metadata { correlation_id: order_id().0, causation_id: causation_id.into(), time: at(minutes) }
}

/// One aggregate's stream as stored: versions 1, 2, ... one minute apart,
/// each caused by a command named after its version.
pub fn envelopes<A: Aggregate>(aggregate_id: &str, events: &[A::Event]) -> Vec<Envelope> {
    events
        .iter()
        .zip(1u64..)
        .map(|(event, version)| {
            let meta =
                Metadata { correlation_id: aggregate_id.into(), causation_id: format!("command-{version}"), time: at(version as i64) };
            Envelope::wrap::<A>(aggregate_id, version, event, &meta)
        })
        .collect()
}

pub fn decode(envelope: &Envelope) -> Event {
    envelope.decode().unwrap_or_else(|e| panic!("{} does not decode: {e}", envelope.event_id))
}

/// Folds envelopes into one view document, in the order given, checking each
/// lands on the same document.
pub fn fold<P: Projection>(envelopes: &[Envelope]) -> P::View {
    let mut key = None;
    envelopes.iter().fold(P::View::default(), |view, envelope| {
        let event = decode(envelope);
        let located = P::locate(envelope, &event).unwrap_or_else(|| panic!("{} ignores {}", P::NAME, envelope.event_id));
        assert_eq!(key.get_or_insert_with(|| located.clone()), &located, "one view document per aggregate");
        P::apply(view, envelope, &event)
    })
}

/// The same envelopes, reversed, with every one delivered twice.
pub fn reversed_and_duplicated(envelopes: &[Envelope]) -> Vec<Envelope> {
    envelopes.iter().rev().flat_map(|e| [e.clone(), e.clone()]).collect()
}

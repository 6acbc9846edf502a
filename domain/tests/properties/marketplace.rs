//! A small marketplace run by the real domain: one store, one order with its
//! payment and delivery, and an event bus that hands events to the policies
//! late, out of order and more than once, as the real one may.
//!
//! Everything goes through `Versioned::execute`. Refused user commands are
//! fine (they change nothing); what must never happen is written down as an
//! anomaly, which the properties require to stay empty: a refused command
//! that changed the state, a version gap, an event that does not decode, a
//! policy command an aggregate refuses (that would lose a fact between two
//! contexts), a notification that differs on redelivery.

use crate::generators::{CustomerRole, OwnerRole, RiderRole, Step, StoreRole, total_of};
use chrono::DateTime;
use domain::catalog::{MenuItem, Store, StoreCommand};
use domain::delivery::{Delivery, DeliveryCommand, DeliveryState, OpenedDelivery};
use domain::kitchen::KitchenCommand;
use domain::notification::Notification;
use domain::ordering::{ApprovedPayment, Order, OrderCommand, OrderLine, OrderStatus, PlaceOrder};
use domain::payment::{Payment, PaymentCommand};
use domain::policy::{self, Issued};
use domain::{Aggregate, CustomerId, DomainError, Envelope, Event, Metadata, Money, OrderId, OwnerId, Region, RiderId, StoreId, Versioned};
use proptest::sample::Index;
use std::collections::BTreeMap;
use std::fmt::Debug;

/// The people and places around one order.
#[derive(Debug, Clone)]
pub struct Cast {
    pub order_id: OrderId,
    pub charge_id: String,
    pub store_id: StoreId,
    pub other_store_id: StoreId,
    pub owner: OwnerId,
    pub stranger: OwnerId,
    pub region: Region,
    pub customer: CustomerId,
    pub other_customer: CustomerId,
    pub riders: [RiderId; 2],
}

impl Cast {
    /// The `n`th order of a marketplace, at its own store, in `region`.
    pub fn new(n: usize, region: &str, customer: &str, other_customer: &str) -> Cast {
        Cast {
            order_id: OrderId(format!("order-{n}")),
            charge_id: format!("charge-{n}"),
            store_id: StoreId(format!("store-{n}")),
            other_store_id: StoreId(format!("store-{n}-next-door")),
            owner: OwnerId(format!("owner-{n}")),
            stranger: OwnerId("stranger".into()),
            region: Region::from(region),
            customer: CustomerId::from(customer),
            other_customer: CustomerId::from(other_customer),
            riders: [RiderId::from("rita"), RiderId::from("ravi")],
        }
    }

    fn customer(&self, role: CustomerRole) -> &CustomerId {
        match role {
            CustomerRole::Orderer => &self.customer,
            CustomerRole::Other => &self.other_customer,
        }
    }
    fn store(&self, role: StoreRole) -> &StoreId {
        match role {
            StoreRole::OrdersStore => &self.store_id,
            StoreRole::OtherStore => &self.other_store_id,
        }
    }
    fn owner(&self, role: OwnerRole) -> &OwnerId {
        match role {
            OwnerRole::Owner => &self.owner,
            OwnerRole::Stranger => &self.stranger,
        }
    }
    fn rider(&self, role: RiderRole) -> &RiderId {
        match role {
            RiderRole::First => &self.riders[0],
            RiderRole::Second => &self.riders[1],
        }
    }
}

/// One aggregate's stream: its live state and every event it ever committed.
#[derive(Debug, Clone)]
pub struct Stream<A: Aggregate> {
    pub id: String,
    pub current: Versioned<A>,
    pub history: Vec<A::Event>,
}

impl<A: Aggregate> Stream<A> {
    fn new(id: &str) -> Self {
        Stream { id: id.to_owned(), current: Versioned::default(), history: Vec::new() }
    }

    /// Executes like a command handler: decide and apply, then append each
    /// event at its version and publish its envelope.
    fn execute(
        &mut self,
        command: &A::Command,
        journal: &mut Journal,
        correlation_id: &str,
        causation_id: &str,
    ) -> Result<(), DomainError> {
        let before = self.current.clone();
        match self.current.execute(command) {
            Err(refusal) => {
                if self.current != before {
                    journal.anomaly(format!("{} {}: the refused command changed the state", A::TYPE, self.id));
                }
                Err(refusal)
            }
            Ok(events) => {
                for (version, event) in events {
                    let next = self.history.len() as u64 + 1;
                    if version != next {
                        journal.anomaly(format!("{} {}: event stored at version {version}, expected {next}", A::TYPE, self.id));
                    }
                    let meta = journal.metadata(correlation_id, causation_id);
                    journal.publish(Envelope::wrap::<A>(&self.id, version, &event, &meta));
                    self.history.push(event);
                }
                Ok(())
            }
        }
    }
}

/// 2026-11-22T11:00:00Z: the clock starts there and ticks a second per event.
const OPENING_TIME: i64 = 1_795_345_200;

/// The event log and the bus in front of the policies.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    /// Every envelope in the order it was committed.
    pub log: Vec<Envelope>,
    /// Published, not yet handed to the policies.
    pub waiting: Vec<Envelope>,
    /// Handed to the policies at least once.
    pub delivered: Vec<Envelope>,
    pub anomalies: Vec<String>,
    ticks: i64,
    commands: u64,
}

impl Journal {
    fn anomaly(&mut self, what: String) {
        self.anomalies.push(what);
    }

    fn metadata(&mut self, correlation_id: &str, causation_id: &str) -> Metadata {
        self.ticks += 1;
        Metadata {
            correlation_id: correlation_id.to_owned(),
            causation_id: causation_id.to_owned(),
            time: DateTime::from_timestamp(OPENING_TIME + self.ticks, 0).expect("a time in range"),
        }
    }

    fn next_command_id(&mut self) -> String {
        self.commands += 1;
        format!("command-{}", self.commands)
    }

    fn publish(&mut self, envelope: Envelope) {
        self.log.push(envelope.clone());
        self.waiting.push(envelope);
    }
}

/// One store, one order, its payment and its delivery.
#[derive(Debug, Clone)]
pub struct Marketplace {
    pub cast: Cast,
    pub store: Stream<Store>,
    pub order: Stream<Order>,
    pub payment: Stream<Payment>,
    pub delivery: Stream<Delivery>,
    pub journal: Journal,
    /// Every notification sent, by id.
    pub notifications: BTreeMap<String, Notification>,
}

/// Bound on policy rounds while settling: the policies must come to rest.
const MAX_SETTLING_ROUNDS: usize = 1_000;

impl Marketplace {
    /// A marketplace whose store is registered, open, with `menu`.
    pub fn open(cast: Cast, menu: Vec<MenuItem>) -> Marketplace {
        let order_id = cast.order_id.0.clone();
        let mut marketplace = Marketplace {
            store: Stream::new(cast.store_id.as_str()),
            order: Stream::new(&order_id),
            payment: Stream::new(&order_id),
            delivery: Stream::new(&order_id),
            journal: Journal::default(),
            notifications: BTreeMap::new(),
            cast,
        };
        let register = StoreCommand::Register {
            store_id: marketplace.cast.store_id.clone(),
            owner: marketplace.cast.owner.clone(),
            name: "Golden Wok".into(),
            region: marketplace.cast.region.clone(),
            menu,
        };
        if let Err(refusal) = marketplace.store_command(&register) {
            marketplace.journal.anomaly(format!("the store could not register with a valid menu: {refusal}"));
        }
        marketplace
    }

    /// Opens a marketplace and lets every step happen, then lets the bus
    /// deliver everything still waiting.
    pub fn run(cast: Cast, menu: Vec<MenuItem>, steps: &[Step]) -> Marketplace {
        let mut marketplace = Marketplace::open(cast, menu);
        for step in steps {
            marketplace.perform(step);
        }
        marketplace.settle();
        marketplace
    }

    pub fn perform(&mut self, step: &Step) {
        match step {
            Step::PlaceOrder { customer, dishes, address } => {
                let Some(profile) = &self.store.current.state.profile else { return };
                let wanted: Vec<_> =
                    dishes.iter().map(|(dish, quantity)| (profile.menu[dish.index(profile.menu.len())].id.clone(), *quantity)).collect();
                let Ok((lines, total)) = self.store.current.state.quote(&self.cast.region, &wanted) else { return };
                let customer = self.cast.customer(*customer).clone();
                self.place(customer, lines, self.cast.region.clone(), address.clone(), total);
            }
            Step::PlaceHandmadeOrder { customer, lines, region_left_blank, address, paid } => {
                let customer = self.cast.customer(*customer).clone();
                let region = if *region_left_blank { Region::from("  ") } else { self.cast.region.clone() };
                let paid = paid.or_else(|| total_of(lines)).unwrap_or(Money(1));
                self.place(customer, lines.clone(), region, address.clone(), paid);
            }
            Step::CancelOrder { customer } => {
                let customer_id = self.cast.customer(*customer).clone();
                let placed_it = self.order.current.state.placed.as_ref().is_some_and(|o| o.customer_id == customer_id);
                let outcome = self.order_command(&OrderCommand::Cancel { customer_id });
                self.only_the_rightful(placed_it, step, outcome);
            }
            Step::Kitchen { store, command } => {
                let store_id = self.cast.store(*store).clone();
                let outcome = self.order_command(&OrderCommand::Kitchen { store_id, command: command.clone() });
                self.only_the_rightful(*store == StoreRole::OrdersStore, step, outcome);
            }
            Step::OpenStore { owner } => {
                let outcome = self.store_command(&StoreCommand::Open { owner: self.cast.owner(*owner).clone() });
                self.only_the_rightful(*owner == OwnerRole::Owner, step, outcome);
            }
            Step::CloseStore { owner } => {
                let outcome = self.store_command(&StoreCommand::Close { owner: self.cast.owner(*owner).clone() });
                self.only_the_rightful(*owner == OwnerRole::Owner, step, outcome);
            }
            Step::ChangeMenu { owner, menu } => {
                let owner_id = self.cast.owner(*owner).clone();
                let outcome = self.store_command(&StoreCommand::ChangeMenu { owner: owner_id, menu: menu.clone() });
                self.only_the_rightful(*owner == OwnerRole::Owner, step, outcome);
            }
            Step::PickDelivery { rider } => self.delivery_command(&DeliveryCommand::Pick { rider_id: self.cast.rider(*rider).clone() }),
            Step::CompleteDelivery { rider } => {
                self.delivery_command(&DeliveryCommand::Complete { rider_id: self.cast.rider(*rider).clone() })
            }
            Step::ReportAccident { rider, description } => self.delivery_command(&DeliveryCommand::ReportAccident {
                rider_id: self.cast.rider(*rider).clone(),
                description: description.clone(),
            }),
            Step::DeliverEvent { which, again_later } => {
                if !self.journal.waiting.is_empty() {
                    self.deliver_waiting(which.index(self.journal.waiting.len()), *again_later);
                }
            }
            Step::RedeliverEvent { which } => {
                if self.journal.delivered.is_empty() {
                    return;
                }
                let envelope = self.journal.delivered[which.index(self.journal.delivered.len())].clone();
                self.react(&envelope);
            }
            Step::BusinessAsUsual { dish, rider, mishap } => self.business_as_usual(*dish, *rider, *mishap),
        }
    }

    fn business_as_usual(&mut self, dish: Index, rider: RiderRole, mishap: bool) {
        let kitchen = |command| Step::Kitchen { store: StoreRole::OrdersStore, command };
        let usual = match self.order.current.state.placed.as_ref().map(|order| order.status) {
            None => Step::PlaceOrder { customer: CustomerRole::Orderer, dishes: vec![(dish, 1)], address: "12 Harbour Street".into() },
            Some(OrderStatus::Placed) => kitchen(KitchenCommand::Accept),
            Some(OrderStatus::Accepted) => kitchen(KitchenCommand::StartCooking),
            Some(OrderStatus::Cooking) => kitchen(KitchenCommand::FinishCooking),
            // The kitchen is done: a rider takes ready food and delivers it
            // (or has an accident); otherwise the bus catches up.
            Some(_) => match self.delivery.current.state.opened.as_ref() {
                Some(delivery) if delivery.food_ready && delivery.state == DeliveryState::Open => Step::PickDelivery { rider },
                Some(OpenedDelivery { state: DeliveryState::PickedUp(picker), .. }) => {
                    let rider_id = picker.clone();
                    return self.delivery_command(&if mishap {
                        DeliveryCommand::ReportAccident { rider_id, description: "fell off the bike".into() }
                    } else {
                        DeliveryCommand::Complete { rider_id }
                    });
                }
                _ => return self.settle(),
            },
        };
        self.perform(&usual);
    }

    /// The bus hands the `at`th waiting event to the policies, and keeps it
    /// waiting when it is to be delivered again later.
    fn deliver_waiting(&mut self, at: usize, again_later: bool) {
        let envelope = if again_later { self.journal.waiting[at].clone() } else { self.journal.waiting.remove(at) };
        self.journal.delivered.push(envelope.clone());
        self.react(&envelope);
    }

    /// The bus delivers everything still waiting, oldest first, until the
    /// policies have nothing more to say.
    pub fn settle(&mut self) {
        for _ in 0..MAX_SETTLING_ROUNDS {
            if self.journal.waiting.is_empty() {
                return;
            }
            self.deliver_waiting(0, false);
        }
        self.journal.anomaly(format!("the policies did not come to rest after {MAX_SETTLING_ROUNDS} deliveries"));
    }

    /// A copy of this marketplace once every waiting event has been delivered.
    pub fn settled(&self) -> Marketplace {
        let mut settled = self.clone();
        settled.settle();
        settled
    }

    /// The API's way to place an order: the order first, then its charge (the
    /// harness does it in this order so a refused order leaves no charge).
    fn place(&mut self, customer_id: CustomerId, lines: Vec<OrderLine>, region: Region, address: String, paid: Money) {
        let charge_id = self.cast.charge_id.clone();
        let place = PlaceOrder {
            customer_id: customer_id.clone(),
            store_id: self.cast.store_id.clone(),
            lines,
            region,
            address,
            payment: ApprovedPayment { charge_id: charge_id.clone(), amount: paid },
        };
        if self.order_command(&OrderCommand::Place(place)).is_ok() {
            let approve = PaymentCommand::Approve { customer_id, charge_id, amount: paid };
            let causation = self.journal.next_command_id();
            let order_id = self.cast.order_id.0.clone();
            if let Err(refusal) = self.payment.execute(&approve, &mut self.journal, &order_id, &causation) {
                self.journal.anomaly(format!("the charge of a placed order was refused: {refusal}"));
            }
        }
    }

    fn order_command(&mut self, command: &OrderCommand) -> Result<(), DomainError> {
        let causation = self.journal.next_command_id();
        let order_id = self.cast.order_id.0.clone();
        self.order.execute(command, &mut self.journal, &order_id, &causation)
    }

    fn store_command(&mut self, command: &StoreCommand) -> Result<(), DomainError> {
        let causation = self.journal.next_command_id();
        let store_id = self.cast.store_id.0.clone();
        self.store.execute(command, &mut self.journal, &store_id, &causation)
    }

    /// Another customer, another store's kitchen or a stranger to the store
    /// may try anything, and must be refused every time.
    fn only_the_rightful(&mut self, rightful: bool, step: &Step, outcome: Result<(), DomainError>) {
        if !rightful && outcome.is_ok() {
            self.journal.anomaly(format!("{step:?} was accepted from someone with no right to it"));
        }
    }

    fn delivery_command(&mut self, command: &DeliveryCommand) {
        let causation = self.journal.next_command_id();
        let order_id = self.cast.order_id.0.clone();
        let _ = self.delivery.execute(command, &mut self.journal, &order_id, &causation);
    }

    /// What the subscribers do with one delivered event: every policy runs,
    /// and the customer is told.
    fn react(&mut self, envelope: &Envelope) {
        let event = match envelope.decode() {
            Ok(event) => event,
            Err(error) => return self.journal.anomaly(format!("{} does not decode: {error}", envelope.event_id)),
        };
        if let Some(issued) = policy::refund_payment(envelope, &event) {
            obey(&mut self.payment, &mut self.journal, issued);
        }
        if let Some(issued) = policy::dispatch_delivery(envelope, &event) {
            obey(&mut self.delivery, &mut self.journal, issued);
        }
        if let Some(issued) = policy::track_delivery(envelope, &event) {
            obey(&mut self.order, &mut self.journal, issued);
        }
        if let Some(notification) = policy::notify_customer(envelope, &event) {
            if let Event::Order(order_event) = &event {
                let announces = (&notification.id, &notification.customer_id, notification.status, notification.version);
                let expected = (&envelope.event_id, order_event.customer_id(), order_event.status(), envelope.version);
                if announces != expected {
                    self.journal.anomaly(format!("{} is announced as {announces:?}", envelope.event_id));
                }
            }
            match self.notifications.get(&notification.id) {
                Some(sent) if sent != &notification => self
                    .journal
                    .anomaly(format!("redelivered {} makes a different notification: {sent:?} then {notification:?}", envelope.event_id)),
                Some(_) => {}
                None => {
                    self.notifications.insert(notification.id.clone(), notification);
                }
            }
        }
    }
}

/// A policy's command is carried out on the aggregate it names. It must be
/// accepted: refusing it would drop a fact one context told another.
fn obey<A: Aggregate>(stream: &mut Stream<A>, journal: &mut Journal, issued: Issued<A::Command>)
where
    A::Command: Debug,
{
    if issued.aggregate_id != stream.id {
        return journal.anomaly(format!("{} addresses {} {}, not {}", issued.command_id, A::TYPE, issued.aggregate_id, stream.id));
    }
    if let Err(refusal) = stream.execute(&issued.command, journal, &issued.aggregate_id, &issued.command_id) {
        journal.anomaly(format!("{} refused {} {:?}: {refusal}", A::TYPE, issued.command_id, issued.command));
    }
}

//! How fast the pure domain decides and folds.
//!
//! - `order_lifecycle`: every decision of one delivered order, each event
//!   applied and wrapped in its envelope: payment approved, order placed,
//!   accepted, cooking started and finished, delivery opened, food ready,
//!   picked, completed, and the order picked up and delivered (11 events).
//! - `order_status_rebuild_100k`: the customers' order-status views rebuilt
//!   from 100,000 envelopes: 12,500 delivered orders x 8 deliveries each (the
//!   order's 6 events, and 2 of them delivered again, as an at-least-once bus
//!   does). Once decoding each envelope, once from pre-decoded events.
//!
//! Results and the machine they ran on: BENCHMARKS.md at the workspace root.

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use domain::catalog::{MenuItem, Store, StoreCommand};
use domain::delivery::{Delivery, DeliveryCommand, DeliveryDetails};
use domain::kitchen::KitchenCommand;
use domain::ordering::{ApprovedPayment, DeliveryProgress, Order, OrderCommand, OrderStatus, PlaceOrder};
use domain::payment::{Payment, PaymentCommand};
use domain::projection::order_status::{OrderStatusProjection, OrderStatusView};
use domain::projection::{Projection, ViewKey};
use domain::{Aggregate, CustomerId, Envelope, Event, MenuItemId, Metadata, Money, OwnerId, Region, RiderId, StoreId, Versioned};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

const ORDERS: usize = 12_500;
const DELIVERIES_PER_ORDER: usize = 8;
const ENVELOPES: usize = ORDERS * DELIVERIES_PER_ORDER;
const LIFECYCLE_EVENTS: u64 = 11;

/// Everything one order's life needs, decided up front so that only the
/// domain's work is measured.
struct OrderLife {
    order_id: String,
    meta: Metadata,
    approve: PaymentCommand,
    place: OrderCommand,
    accept: OrderCommand,
    start_cooking: OrderCommand,
    finish_cooking: OrderCommand,
    open_delivery: DeliveryCommand,
    food_ready: DeliveryCommand,
    pick: DeliveryCommand,
    complete: DeliveryCommand,
    picked_up: OrderCommand,
    delivered: OrderCommand,
}

impl OrderLife {
    fn new(n: usize, store: &Store) -> OrderLife {
        let customer_id = CustomerId(format!("customer-{}", n % 2_500));
        let store_id = StoreId::from("store-1");
        let region = Region::from("north");
        let address = "12 Harbour Street".to_owned();
        let rider_id = RiderId(format!("rider-{}", n % 40));
        let (lines, total) = store
            .quote(&region, &[(MenuItemId::from("noodles"), 2), (MenuItemId::from("dumplings"), 1)])
            .expect("the menu has both dishes");
        let charge_id = format!("charge-{n}");
        let details = DeliveryDetails {
            customer_id: customer_id.clone(),
            store_id: store_id.clone(),
            region: region.clone(),
            address: address.clone(),
        };
        let kitchen = |command| OrderCommand::Kitchen { store_id: store_id.clone(), command };
        OrderLife {
            order_id: format!("order-{n}"),
            meta: Metadata { correlation_id: format!("order-{n}"), causation_id: format!("command-{n}"), time: opening_time() },
            approve: PaymentCommand::Approve { customer_id: customer_id.clone(), charge_id: charge_id.clone(), amount: total },
            place: OrderCommand::Place(PlaceOrder {
                customer_id,
                store_id: store_id.clone(),
                lines,
                region,
                address,
                payment: ApprovedPayment { charge_id, amount: total },
            }),
            accept: kitchen(KitchenCommand::Accept),
            start_cooking: kitchen(KitchenCommand::StartCooking),
            finish_cooking: kitchen(KitchenCommand::FinishCooking),
            open_delivery: DeliveryCommand::Open(details.clone()),
            food_ready: DeliveryCommand::MarkFoodReady(details),
            pick: DeliveryCommand::Pick { rider_id: rider_id.clone() },
            complete: DeliveryCommand::Complete { rider_id: rider_id.clone() },
            picked_up: OrderCommand::Delivery(DeliveryProgress::PickedUp { rider_id: rider_id.clone() }),
            delivered: OrderCommand::Delivery(DeliveryProgress::Delivered { rider_id }),
        }
    }

    /// Decides, applies and wraps the whole life; returns the envelopes in
    /// the order they were committed.
    fn live(&self) -> Vec<Envelope> {
        let mut order = Versioned::<Order>::default();
        let mut payment = Versioned::<Payment>::default();
        let mut delivery = Versioned::<Delivery>::default();
        let mut envelopes = Vec::with_capacity(LIFECYCLE_EVENTS as usize);
        let mut commit = Commit { aggregate_id: &self.order_id, meta: &self.meta, envelopes: &mut envelopes };
        commit.execute(&mut payment, &self.approve);
        commit.execute(&mut order, &self.place);
        commit.execute(&mut order, &self.accept);
        commit.execute(&mut order, &self.start_cooking);
        commit.execute(&mut delivery, &self.open_delivery);
        commit.execute(&mut order, &self.finish_cooking);
        commit.execute(&mut delivery, &self.food_ready);
        commit.execute(&mut delivery, &self.pick);
        commit.execute(&mut order, &self.picked_up);
        commit.execute(&mut delivery, &self.complete);
        commit.execute(&mut order, &self.delivered);
        envelopes
    }
}

struct Commit<'a> {
    aggregate_id: &'a str,
    meta: &'a Metadata,
    envelopes: &'a mut Vec<Envelope>,
}

impl Commit<'_> {
    fn execute<A: Aggregate>(&mut self, aggregate: &mut Versioned<A>, command: &A::Command) {
        let events = aggregate.execute(command).expect("the usual life is never refused");
        for (version, event) in events {
            self.envelopes.push(Envelope::wrap::<A>(self.aggregate_id, version, &event, self.meta));
        }
    }
}

fn opening_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_345_200, 0).expect("2026-11-22T11:00:00Z")
}

fn store() -> Store {
    let menu = vec![
        MenuItem { id: MenuItemId::from("noodles"), name: "Dan dan noodles".into(), price: Money(1_150) },
        MenuItem { id: MenuItemId::from("dumplings"), name: "Pork dumplings".into(), price: Money(850) },
    ];
    let mut store = Versioned::<Store>::default();
    store
        .execute(&StoreCommand::Register {
            store_id: StoreId::from("store-1"),
            owner: OwnerId::from("olga"),
            name: "Golden Wok".into(),
            region: Region::from("north"),
            menu,
        })
        .expect("a valid registration");
    store.state
}

/// What the order-status projector receives: the Order envelopes of 12,500
/// delivered orders, interleaved as concurrent orders are (every order's
/// first event, then every order's second, ...), then the redeliveries of
/// each order's cooking-started and delivered events.
fn order_feed() -> Vec<Envelope> {
    let store = store();
    let per_order: Vec<Vec<Envelope>> =
        (0..ORDERS).map(|n| OrderLife::new(n, &store).live().into_iter().filter(|e| e.aggregate_type == Order::TYPE).collect()).collect();
    let mut feed = Vec::with_capacity(ENVELOPES);
    for step in 0..6 {
        feed.extend(per_order.iter().map(|events| events[step].clone()));
    }
    for redelivered in [2, 5] {
        feed.extend(per_order.iter().map(|events| events[redelivered].clone()));
    }
    assert_eq!(feed.len(), ENVELOPES);
    feed
}

fn fold_into(views: &mut BTreeMap<ViewKey, OrderStatusView>, envelope: &Envelope, event: &Event) {
    if let Some(key) = OrderStatusProjection::locate(envelope, event) {
        let view = views.entry(key).or_default();
        *view = OrderStatusProjection::apply(std::mem::take(view), envelope, event);
    }
}

fn rebuild_decoding(feed: &[Envelope]) -> BTreeMap<ViewKey, OrderStatusView> {
    let mut views = BTreeMap::new();
    for envelope in feed {
        let event = envelope.decode().expect("every stored event decodes");
        fold_into(&mut views, envelope, &event);
    }
    views
}

fn rebuild_pre_decoded(feed: &[(Envelope, Event)]) -> BTreeMap<ViewKey, OrderStatusView> {
    let mut views = BTreeMap::new();
    for (envelope, event) in feed {
        fold_into(&mut views, envelope, event);
    }
    views
}

fn order_lifecycle(c: &mut Criterion) {
    let life = OrderLife::new(1, &store());
    assert_eq!(life.live().len() as u64, LIFECYCLE_EVENTS);
    let mut group = c.benchmark_group("order_lifecycle");
    group.throughput(Throughput::Elements(LIFECYCLE_EVENTS));
    group.bench_function("decide_apply_wrap", |b| b.iter(|| black_box(black_box(&life).live())));
    group.finish();
}

fn order_status_rebuild_100k(c: &mut Criterion) {
    let feed = order_feed();
    let views = rebuild_decoding(&feed);
    assert_eq!(views.len(), ORDERS);
    assert!(views.values().all(|view| view.status == Some(OrderStatus::Delivered) && view.timeline.len() == 6));
    let decoded: Vec<(Envelope, Event)> = feed.iter().map(|envelope| (envelope.clone(), envelope.decode().expect("decodes"))).collect();
    assert_eq!(rebuild_pre_decoded(&decoded), views);

    let mut group = c.benchmark_group("order_status_rebuild_100k");
    group.throughput(Throughput::Elements(ENVELOPES as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(15));
    group.bench_function("decode_and_fold", |b| b.iter(|| black_box(rebuild_decoding(black_box(&feed)))));
    group.bench_function("fold_pre_decoded", |b| b.iter(|| black_box(rebuild_pre_decoded(black_box(&decoded)))));
    group.finish();
}

criterion_group!(benches, order_lifecycle, order_status_rebuild_100k);
criterion_main!(benches);

//! Projections: each read model on a concrete stream, and the same view when
//! the stream arrives reversed with every event delivered twice.

mod support;

use domain::catalog::Store;
use domain::delivery::{Delivery, DeliveryState};
use domain::ordering::{ApprovedPayment, CancelReason, Order, OrderCommand, OrderEvent, OrderLine, OrderStatus, PlaceOrder};
use domain::projection::catalog::CatalogProjection;
use domain::projection::delivery_board::DeliveryBoardProjection;
use domain::projection::order_status::{OrderStatusProjection, OrderSummary, TimelineEntry};
use domain::projection::popular_menus::{OrderContribution, OrderedItem, PopularItem, PopularMenusProjection, rank};
use domain::projection::store_queue::StoreQueueProjection;
use domain::projection::{Latest, Projection, ViewKey};
use domain::{DomainError, Envelope, Money};
use support::*;

fn order_envelopes(events: &[OrderEvent]) -> Vec<Envelope> {
    envelopes::<Order>(&order_id().0, events)
}

fn key_of<P: Projection>(envelope: &Envelope) -> Option<ViewKey> {
    P::locate(envelope, &decode(envelope))
}

fn summary() -> OrderSummary {
    OrderSummary { lines: lines(), total: TOTAL, region: region(), address: ADDRESS.into(), placed_at: at(1) }
}

// ---------------------------------------------------------------- order status

#[test]
fn the_order_status_is_the_latest_change_of_a_timeline_in_version_order() {
    let stream = order_envelopes(&order_at(OrderStatus::Delivered));
    let view = fold::<OrderStatusProjection>(&stream);
    use OrderStatus as S;
    let statuses = [S::Placed, S::Accepted, S::Cooking, S::Cooked, S::PickedUp, S::Delivered];
    let timeline: Vec<_> =
        (1..).zip(statuses).map(|(version, status)| TimelineEntry { version, status, time: at(version as i64), note: None }).collect();
    assert_eq!(view.timeline, timeline);
    assert_eq!(view.status, Some(OrderStatus::Delivered));
    assert_eq!((view.order_id, view.customer_id, view.store_id), (order_id(), customer(), store_id()));
    assert_eq!(view.summary, Some(summary()));
    assert_eq!(view.rider_id, Some(rider()));
}

#[test]
fn the_order_status_is_filed_under_its_customer() {
    let stream = order_envelopes(&order_at(OrderStatus::Accepted));
    let key = key_of::<OrderStatusProjection>(&stream[1]);
    assert_eq!(key, Some(ViewKey { key: "order-1".into(), partition: "customer-1".into() }));
    let deliveries = envelopes::<Delivery>(&order_id().0, &[delivery_opened()]);
    assert_eq!(key_of::<OrderStatusProjection>(&deliveries[0]), None);
}

#[test]
fn a_rejection_and_a_cancellation_leave_a_note_on_the_timeline() {
    let view = fold::<OrderStatusProjection>(&order_envelopes(&[order_placed(), rejected("out of rice")]));
    assert_eq!(view.status, Some(OrderStatus::Rejected));
    assert_eq!(view.timeline[1].note.as_deref(), Some("out of rice"));
    let view = fold::<OrderStatusProjection>(&order_envelopes(&[order_placed(), cancelled(CancelReason::Customer)]));
    assert_eq!(view.timeline[1].note.as_deref(), Some("cancelled by the customer"));
}

#[test]
fn the_order_status_is_the_same_whatever_order_events_arrive_in() {
    let stream = order_envelopes(&order_at(OrderStatus::Delivered));
    let shuffled = reversed_and_duplicated(&stream);
    assert_eq!(fold::<OrderStatusProjection>(&shuffled), fold::<OrderStatusProjection>(&stream));
    assert_eq!(fold::<OrderStatusProjection>(&shuffled).timeline.len(), 6);
}

// ---------------------------------------------------------------- store queue

#[test]
fn the_store_queue_keeps_an_order_active_until_it_leaves_the_kitchen() {
    for status in ALL_STATUSES {
        let view = fold::<StoreQueueProjection>(&order_envelopes(&order_at(status)));
        assert_eq!(view.status.value, Some(status));
        let active = matches!(status, OrderStatus::Placed | OrderStatus::Accepted | OrderStatus::Cooking | OrderStatus::Cooked);
        assert_eq!(view.is_active(), active, "{status:?}");
        assert_eq!(view.summary, Some(summary()));
    }
    assert!(!domain::projection::store_queue::QueuedOrder::default().is_active(), "nothing seen, nothing to do");
}

#[test]
fn the_store_queue_is_filed_under_the_store() {
    let stream = order_envelopes(&order_at(OrderStatus::Placed));
    assert_eq!(key_of::<StoreQueueProjection>(&stream[0]), Some(ViewKey { key: "order-1".into(), partition: "store-1".into() }));
}

#[test]
fn the_store_queue_is_the_same_whatever_order_events_arrive_in() {
    let stream = order_envelopes(&order_at(OrderStatus::Cooked));
    let view = fold::<StoreQueueProjection>(&reversed_and_duplicated(&stream));
    assert_eq!(view, fold::<StoreQueueProjection>(&stream));
    assert_eq!(view.status, Latest { version: 4, value: Some(OrderStatus::Cooked) });
    assert_eq!(view.order_id, order_id());
}

// ---------------------------------------------------------------- delivery board

fn delivery_envelopes() -> Vec<Envelope> {
    envelopes::<Delivery>(&order_id().0, &[delivery_opened(), food_ready(), delivery_picked(rider()), delivery_completed(rider())])
}

#[test]
fn an_opened_delivery_is_on_offer_until_a_rider_picks_it() {
    let stream = delivery_envelopes();
    let opened = fold::<DeliveryBoardProjection>(&stream[..1]);
    assert!(opened.is_open() && !opened.food_ready);
    assert_eq!((opened.order_id.clone(), opened.details.clone()), (order_id(), Some(details())));
    let ready = fold::<DeliveryBoardProjection>(&stream[..2]);
    assert!(ready.is_open() && ready.food_ready);
    let picked = fold::<DeliveryBoardProjection>(&stream[..3]);
    assert!(!picked.is_open() && picked.food_ready);
    assert_eq!(picked.state.value, Some(DeliveryState::PickedUp(rider())));
    let done = fold::<DeliveryBoardProjection>(&stream);
    assert_eq!(done.state, Latest { version: 4, value: Some(DeliveryState::Delivered(rider())) });
    assert!(!domain::projection::delivery_board::BoardEntry::default().is_open());
}

#[test]
fn the_board_is_filed_under_the_region() {
    let key = key_of::<DeliveryBoardProjection>(&delivery_envelopes()[2]);
    assert_eq!(key, Some(ViewKey { key: "order-1".into(), partition: "gangnam".into() }));
}

#[test]
fn the_board_is_the_same_whatever_order_events_arrive_in() {
    let stream = delivery_envelopes();
    for prefix in 1..=stream.len() {
        let stream = &stream[..prefix];
        assert_eq!(fold::<DeliveryBoardProjection>(&reversed_and_duplicated(stream)), fold::<DeliveryBoardProjection>(stream));
    }
}

// ---------------------------------------------------------------- popular menus

fn placed_with(lines: Vec<OrderLine>) -> OrderEvent {
    let total = Money(lines.iter().map(|l| l.amount().unwrap().0).sum());
    OrderEvent::OrderPlaced {
        customer_id: customer(),
        store_id: store_id(),
        lines,
        region: region(),
        address: ADDRESS.into(),
        total,
        charge_id: "charge".into(),
    }
}

fn contribution(order: &str, lines: Vec<OrderLine>) -> OrderContribution {
    fold::<PopularMenusProjection>(&envelopes::<Order>(order, &[placed_with(lines)]))
}

fn bibimbap(n: u32) -> OrderLine {
    line("bibimbap", "Bibimbap", 1200, n)
}
fn stew(n: u32) -> OrderLine {
    line("kimchi-stew", "Kimchi stew", 950, n)
}
fn tteokbokki(n: u32) -> OrderLine {
    line("tteokbokki", "Tteokbokki", 600, n)
}

fn contributions() -> Vec<OrderContribution> {
    vec![
        contribution("order-1", vec![bibimbap(2), stew(1)]),
        contribution("order-2", vec![bibimbap(1), tteokbokki(3)]),
        contribution("order-3", vec![tteokbokki(1), stew(2)]),
        contribution("order-4", vec![bibimbap(1)]),
        contribution("order-5", vec![line("z-mandu", "Mandu", 700, 1), line("a-tofu", "Tofu", 700, 1)]),
    ]
}

fn popular(menu_id: &str, name: &str, orders: u64, quantity: u64) -> PopularItem {
    PopularItem { menu_id: menu_id.into(), name: name.into(), orders, quantity }
}

#[test]
fn each_order_contributes_its_items_to_its_store() {
    let stream = envelopes::<Order>("order-1", &[placed_with(vec![bibimbap(2), stew(1)]), accepted()]);
    assert_eq!(key_of::<PopularMenusProjection>(&stream[0]), Some(ViewKey { key: "order-1".into(), partition: "store-1".into() }));
    assert_eq!(key_of::<PopularMenusProjection>(&stream[1]), None, "only the placement counts");
    let expected = OrderContribution {
        store_id: store_id(),
        items: vec![
            OrderedItem { menu_id: "bibimbap".into(), name: "Bibimbap".into(), quantity: 2 },
            OrderedItem { menu_id: "kimchi-stew".into(), name: "Kimchi stew".into(), quantity: 1 },
        ],
    };
    assert_eq!(fold::<PopularMenusProjection>(&stream[..1]), expected);
    assert_eq!(fold::<PopularMenusProjection>(&reversed_and_duplicated(&stream[..1])), expected, "a duplicate counts once");
}

#[test]
fn rank_puts_the_most_ordered_items_first_then_more_units_then_by_name() {
    assert_eq!(
        rank(&contributions()),
        vec![
            popular("bibimbap", "Bibimbap", 3, 4),
            popular("tteokbokki", "Tteokbokki", 2, 4),
            popular("kimchi-stew", "Kimchi stew", 2, 3),
            popular("z-mandu", "Mandu", 1, 1),
            popular("a-tofu", "Tofu", 1, 1),
        ]
    );
}

#[test]
fn rank_does_not_depend_on_the_order_documents_are_read_in() {
    let mut reversed = contributions();
    reversed.reverse();
    assert_eq!(rank(&reversed), rank(&contributions()));
    assert_eq!(rank(&[]), vec![]);
}

#[test]

fn an_order_listing_an_item_on_two_lines_counts_as_one_order() {
    let payment = ApprovedPayment { charge_id: "c".into(), amount: Money(2400) };
    let place = PlaceOrder { lines: vec![bibimbap(1), bibimbap(1)], payment, ..place_order() };
    // Placing refuses it outright ...
    given::<Order>([]).when(OrderCommand::Place(place)).then_err_mentioning(DomainError::Invalid, "two lines");
    // ... and ranking would still count such an order once.
    let ranked = rank(&[contribution("order-1", vec![bibimbap(1), bibimbap(1)])]);
    assert_eq!(ranked, vec![popular("bibimbap", "Bibimbap", 1, 2)], "one order, two units");
}

// ---------------------------------------------------------------- catalog

fn store_envelopes() -> Vec<Envelope> {
    let new_menu = vec![item("bibimbap", "Bibimbap", 1400)];
    envelopes::<Store>(&store_id().0, &[store_registered(), menu_changed(new_menu), store_closed()])
}

#[test]
fn the_catalog_lists_a_store_with_its_latest_menu_and_opening() {
    let view = fold::<CatalogProjection>(&store_envelopes());
    assert!(view.is_listed());
    assert_eq!((view.store_id.clone(), view.region.clone()), (store_id(), region()));
    assert_eq!((view.owner.clone(), view.name.as_deref()), (Some(owner()), Some("Seoul Kitchen")));
    assert_eq!(view.menu, Latest { version: 2, value: vec![item("bibimbap", "Bibimbap", 1400)] });
    assert_eq!(view.open, Latest { version: 3, value: false });

    let reopened = [store_envelopes(), vec![Envelope::wrap::<Store>("store-1", 4, &store_opened(), &meta("open", 4))]].concat();
    assert_eq!(fold::<CatalogProjection>(&reopened).open, Latest { version: 4, value: true });
}

#[test]
fn the_catalog_is_filed_under_the_region() {
    let key = key_of::<CatalogProjection>(&store_envelopes()[2]);
    assert_eq!(key, Some(ViewKey { key: "store-1".into(), partition: "gangnam".into() }));
    let orders = order_envelopes(&[order_placed()]);
    assert_eq!(key_of::<CatalogProjection>(&orders[0]), None);
}

#[test]
fn a_store_is_listed_only_once_its_registration_is_seen() {
    let stream = store_envelopes();
    let early = fold::<CatalogProjection>(&stream[1..]);
    assert!(!early.is_listed());
    assert_eq!(early.menu.version, 2);
    let late = fold::<CatalogProjection>(&[stream[1..].to_vec(), stream[..1].to_vec()].concat());
    assert!(late.is_listed());
    assert!(!late.open.value, "a late registration does not reopen a closed store");
    assert_eq!(late.menu.value, vec![item("bibimbap", "Bibimbap", 1400)], "nor restore the old menu");
}

#[test]
fn the_catalog_is_the_same_whatever_order_events_arrive_in() {
    let stream = store_envelopes();
    assert_eq!(fold::<CatalogProjection>(&reversed_and_duplicated(&stream)), fold::<CatalogProjection>(&stream));
}

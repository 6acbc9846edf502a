//! Properties of the food-delivery domain, checked on generated cases.
//!
//! 1. Around one order, any sequence of commands from every actor, with the
//!    bus delivering events to the policies late, out of order and twice,
//!    never breaks an invariant of the business, at every step and once the
//!    policies have settled.
//! 2. A snapshot (the `Versioned` state after k events, through JSON) plus
//!    the remaining events is exactly the full replay, for every aggregate.
//! 3. Every projection converges: folding a marketplace's envelopes in commit
//!    order, or shuffled with duplicates, gives the same views; the views show
//!    what the aggregates hold; and each view survives a JSON round trip.

#[path = "properties/generators.rs"]
mod generators;
#[path = "properties/marketplace.rs"]
mod marketplace;

use domain::catalog::{MenuItem, Store};
use domain::delivery::{Delivery, DeliveryEvent, DeliveryState};
use domain::ordering::{CancelReason, Order, OrderEvent, OrderStatus};
use domain::payment::{Payment, PaymentEvent, RefundReason};
use domain::projection::catalog::CatalogProjection;
use domain::projection::delivery_board::DeliveryBoardProjection;
use domain::projection::order_status::OrderStatusProjection;
use domain::projection::popular_menus::{OrderedItem, PopularMenusProjection};
use domain::projection::store_queue::StoreQueueProjection;
use domain::projection::{Projection, ViewKey};
use domain::{Aggregate, Envelope, RiderId, Versioned};
use generators::{Step, step, valid_menu};
use marketplace::{Cast, Marketplace, Stream};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// `cases` cases, drawn with XorShift: ChaCha, proptest's default, is most
/// of the run time of an unoptimized test build (proptest forks a generator
/// for every alternative of a `prop_oneof!`), and these are no cryptography.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, rng_algorithm: RngAlgorithm::XorShift, ..ProptestConfig::default() }
}

// ================================================================ 1. invariants around one order

/// A menu and up to 40 steps around one order.
fn one_order_story() -> impl Strategy<Value = (Vec<MenuItem>, Vec<Step>)> {
    (valid_menu(), prop::collection::vec(step(), 0..=40))
}

fn one_order_cast() -> Cast {
    Cast::new(1, "north", "ada", "bo")
}

proptest! {
    #![proptest_config(config(768))]

    #[test]
    fn no_sequence_of_commands_breaks_an_invariant((menu, steps) in one_order_story()) {
        let mut marketplace = Marketplace::open(one_order_cast(), menu);
        holds_at_every_step(&marketplace)?;
        for (at, step) in steps.iter().enumerate() {
            marketplace.perform(step);
            holds_at_every_step(&marketplace)
                .map_err(|failure| TestCaseError::fail(format!("after step {at} ({step:?}): {failure}")))?;
            holds_once_policies_settle(&marketplace.settled())
                .map_err(|failure| TestCaseError::fail(format!("settling after step {at} ({step:?}): {failure}")))?;
        }
    }
}

/// What is true at every moment, whatever the bus has delivered so far.
fn holds_at_every_step(marketplace: &Marketplace) -> Result<(), TestCaseError> {
    prop_assert!(marketplace.journal.anomalies.is_empty(), "anomalies: {:#?}", marketplace.journal.anomalies);
    stream_is_gap_free_and_replays(&marketplace.store)?;
    stream_is_gap_free_and_replays(&marketplace.order)?;
    stream_is_gap_free_and_replays(&marketplace.payment)?;
    stream_is_gap_free_and_replays(&marketplace.delivery)?;
    stored_versions_are_one_to_n(&marketplace.journal.log)?;

    let order = &marketplace.order.history;
    let payment = &marketplace.payment.history;
    let delivery = &marketplace.delivery.history;

    // The order's status is the status of its last event.
    match (&marketplace.order.current.state.placed, order.last()) {
        (None, None) => {}
        (Some(placed), Some(last)) => prop_assert_eq!(placed.status, last.status()),
        (placed, last) => prop_assert!(false, "order state {placed:?} after last event {last:?}"),
    }
    lifecycle_is_a_path(order)?;

    // One charge, refunded at most once, and never for cooked food unless
    // the rider had an accident.
    let approvals = payment.iter().filter(|e| matches!(e, PaymentEvent::PaymentApproved { .. })).count();
    prop_assert!(approvals <= 1, "{approvals} approvals: {payment:?}");
    let refunds: Vec<RefundReason> = payment
        .iter()
        .filter_map(|e| match e {
            PaymentEvent::PaymentRefunded { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect();
    prop_assert!(refunds.len() <= 1, "refunded {} times: {payment:?}", refunds.len());
    let cancelled_by = cancel_reason(order);
    if let Some(refund) = refunds.first() {
        prop_assert!(
            !reached(order, OrderStatus::Cooked) || cancelled_by == Some(CancelReason::RiderAccident),
            "refunded ({refund:?}) an order that was cooked: {order:?}"
        );
        prop_assert_eq!(Some(*refund), refund_owed(order), "refund reason against order {:?}", order);
    }

    // Once cooking has started the customer can no longer cancel.
    if cancelled_by == Some(CancelReason::Customer) {
        prop_assert!(!reached(order, OrderStatus::Cooking), "cancelled by the customer after cooking started: {order:?}");
    }

    // One rider takes the delivery, and only that rider finishes it.
    let pickers: Vec<&RiderId> = delivery
        .iter()
        .filter_map(|e| match e {
            DeliveryEvent::DeliveryPicked { rider_id, .. } => Some(rider_id),
            _ => None,
        })
        .collect();
    prop_assert!(pickers.len() <= 1, "picked by {pickers:?}");
    for event in delivery {
        if let DeliveryEvent::DeliveryCompleted { rider_id, .. } | DeliveryEvent::AccidentReported { rider_id, .. } = event {
            prop_assert_eq!(Some(rider_id), pickers.first().copied(), "finished by someone else: {:?}", delivery);
        }
    }
    let order_riders: Vec<&RiderId> = order
        .iter()
        .filter_map(|e| match e {
            OrderEvent::OrderPickedUp { rider_id, .. } | OrderEvent::OrderDelivered { rider_id, .. } => Some(rider_id),
            _ => None,
        })
        .collect();
    for rider in &order_riders {
        prop_assert_eq!(Some(*rider), pickers.first().copied(), "the order names a rider the delivery does not");
    }

    // The order is paid exactly what its lines cost.
    if let Some(placed) = &marketplace.order.current.state.placed {
        prop_assert_eq!(Some(placed.total), generators::total_of(&placed.lines));
        let Some(charge) = &marketplace.payment.current.state.charge else {
            return Err(TestCaseError::fail("a placed order without a charge"));
        };
        prop_assert_eq!(charge.amount, placed.total);
        prop_assert_eq!(&charge.charge_id, &placed.charge_id);
        prop_assert_eq!(&charge.customer_id, &placed.customer_id);
    }
    Ok(())
}

/// What is true once every published event has reached the policies.
fn holds_once_policies_settle(settled: &Marketplace) -> Result<(), TestCaseError> {
    prop_assert!(settled.journal.anomalies.is_empty(), "anomalies: {:#?}", settled.journal.anomalies);
    prop_assert!(settled.journal.waiting.is_empty());
    holds_at_every_step(settled)?;

    let order = &settled.order.history;
    let status = settled.order.current.state.placed.as_ref().map(|placed| placed.status);
    let refunded = settled.payment.current.state.charge.as_ref().and_then(|charge| charge.refunded);

    // A refund exists exactly when the order was rejected or cancelled.
    prop_assert_eq!(refunded, refund_owed(order), "refund of an order that is {:?}", status);

    // The delivery mirrors the order's kitchen and rider progress.
    let delivery = settled.delivery.current.state.opened.as_ref();
    prop_assert_eq!(delivery.is_some(), reached(order, OrderStatus::Cooking), "delivery {:?} for order {:?}", delivery, order);
    let Some(delivery) = delivery else { return Ok(()) };
    prop_assert_eq!(delivery.food_ready, reached(order, OrderStatus::Cooked), "food ready against {:?}", order);
    let placed = settled.order.current.state.placed.as_ref().expect("a delivery exists only for a placed order");
    let order_rider = placed.rider_id.as_ref();
    let consistent = match (&delivery.state, placed.status) {
        (DeliveryState::Open, OrderStatus::Cooking | OrderStatus::Cooked) => order_rider.is_none(),
        (DeliveryState::PickedUp(rider), OrderStatus::PickedUp) | (DeliveryState::Delivered(rider), OrderStatus::Delivered) => {
            order_rider == Some(rider)
        }
        (DeliveryState::Failed(rider), OrderStatus::Cancelled) => {
            order_rider == Some(rider) && cancel_reason(order) == Some(CancelReason::RiderAccident)
        }
        _ => false,
    };
    prop_assert!(consistent, "delivery {:?} but order {:?} with rider {:?}", delivery.state, placed.status, order_rider);
    Ok(())
}

/// Versions are 1..n without gaps, and the live state is the replay.
fn stream_is_gap_free_and_replays<A: Aggregate>(stream: &Stream<A>) -> Result<(), TestCaseError> {
    prop_assert_eq!(stream.current.version, stream.history.len() as u64, "{} {}", A::TYPE, stream.id);
    prop_assert_eq!(&Versioned::<A>::replay(&stream.history), &stream.current, "{} {} replay", A::TYPE, stream.id);
    Ok(())
}

/// Every envelope of a stream carries the next version and its own id.
fn stored_versions_are_one_to_n(log: &[Envelope]) -> Result<(), TestCaseError> {
    let mut last: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for envelope in log {
        let version = last.entry((&envelope.aggregate_type, &envelope.aggregate_id)).or_default();
        prop_assert_eq!(envelope.version, *version + 1, "{} stored out of turn", envelope.event_id);
        *version += 1;
        let id = domain::envelope::event_id(&envelope.aggregate_type, &envelope.aggregate_id, envelope.version);
        prop_assert_eq!(&envelope.event_id, &id);
    }
    Ok(())
}

/// The order's events follow the lifecycle: placed; then accepted, rejected
/// or cancelled by the customer; cooking; cooked; picked up; delivered or
/// cancelled by a rider accident. Nothing follows an ending.
fn lifecycle_is_a_path(history: &[OrderEvent]) -> Result<(), TestCaseError> {
    use OrderStatus as S;
    let mut previous: Option<OrderStatus> = None;
    for event in history {
        let may_follow = matches!(
            (previous, event),
            (None, OrderEvent::OrderPlaced { .. })
                | (Some(S::Placed), OrderEvent::OrderAccepted { .. } | OrderEvent::OrderRejected { .. })
                | (Some(S::Placed | S::Accepted), OrderEvent::OrderCancelled { reason: CancelReason::Customer, .. })
                | (Some(S::Accepted), OrderEvent::CookingStarted { .. })
                | (Some(S::Cooking), OrderEvent::CookingFinished { .. })
                | (Some(S::Cooked), OrderEvent::OrderPickedUp { .. })
                | (Some(S::PickedUp), OrderEvent::OrderDelivered { .. })
                | (Some(S::PickedUp), OrderEvent::OrderCancelled { reason: CancelReason::RiderAccident, .. })
        );
        prop_assert!(may_follow, "{event:?} may not follow {previous:?}; history {history:?}");
        previous = Some(event.status());
    }
    Ok(())
}

fn reached(history: &[OrderEvent], status: OrderStatus) -> bool {
    history.iter().any(|event| event.status() == status)
}

fn cancel_reason(history: &[OrderEvent]) -> Option<CancelReason> {
    history.iter().find_map(|event| match event {
        OrderEvent::OrderCancelled { reason, .. } => Some(*reason),
        _ => None,
    })
}

/// The refund the order's ending calls for, if any.
fn refund_owed(history: &[OrderEvent]) -> Option<RefundReason> {
    history.iter().find_map(|event| match event {
        OrderEvent::OrderRejected { .. } => Some(RefundReason::StoreRejected),
        OrderEvent::OrderCancelled { reason: CancelReason::Customer, .. } => Some(RefundReason::CustomerCancelled),
        OrderEvent::OrderCancelled { reason: CancelReason::RiderAccident, .. } => Some(RefundReason::RiderAccident),
        _ => None,
    })
}

/// The generator is no use if it never gets anywhere: among a few hundred
/// stories, every ending of an order must occur.
#[test]
fn stories_reach_every_ending() {
    let mut runner = TestRunner::new_with_rng(config(400), TestRng::deterministic_rng(RngAlgorithm::XorShift));
    let mut endings: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..400 {
        let (menu, steps) = one_order_story().new_tree(&mut runner).expect("a story").current();
        let settled = Marketplace::run(one_order_cast(), menu, &steps);
        let ending = match (settled.order.current.state.placed.as_ref().map(|o| o.status), cancel_reason(&settled.order.history)) {
            (None, _) => "never placed".to_owned(),
            (Some(OrderStatus::Cancelled), Some(reason)) => format!("cancelled ({reason:?})"),
            (Some(status), _) => format!("{status:?}"),
        };
        *endings.entry(ending).or_default() += 1;
    }
    for ending in ["Delivered", "Rejected", "cancelled (Customer)", "cancelled (RiderAccident)", "PickedUp", "Cooked"] {
        assert!(endings.get(ending).copied().unwrap_or(0) >= 4, "rarely or never {ending}: {endings:?}");
    }
}

// ================================================================ 2. snapshot + tail == replay

/// Runs commands through `decide` from an empty aggregate: the live state
/// and the events it committed.
fn decided<A: Aggregate>(commands: &[A::Command]) -> (Versioned<A>, Vec<A::Event>) {
    let mut live = Versioned::<A>::default();
    let mut history = Vec::new();
    for command in commands {
        if let Ok(events) = live.execute(command) {
            history.extend(events.into_iter().map(|(_, event)| event));
        }
    }
    (live, history)
}

fn snapshot_then_tail_is_full_replay<A: Aggregate>(commands: &[A::Command], split: Index) -> Result<(), TestCaseError> {
    let (live, history) = decided::<A>(commands);
    let full = Versioned::<A>::replay(&history);
    prop_assert_eq!(&full, &live, "replaying {} events differs from deciding them", history.len());

    let k = split.index(history.len() + 1);
    let (head, tail) = history.split_at(k);
    let snapshot = Versioned::<A>::replay(head);
    prop_assert_eq!(snapshot.version, k as u64);
    let json = serde_json::to_string(&snapshot).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut restored: Versioned<A> = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
    prop_assert_eq!(&restored, &snapshot, "JSON {}", json);
    restored.apply_all(tail);
    prop_assert_eq!(&restored, &full, "snapshot after {} of {} events", k, history.len());
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn store_snapshot_then_tail_is_full_replay(
        commands in prop::collection::vec(generators::store_command(), 0..30),
        split in any::<Index>(),
    ) {
        snapshot_then_tail_is_full_replay::<Store>(&commands, split)?;
    }

    #[test]
    fn order_snapshot_then_tail_is_full_replay(
        commands in prop::collection::vec(generators::order_command(), 0..30),
        split in any::<Index>(),
    ) {
        snapshot_then_tail_is_full_replay::<Order>(&commands, split)?;
    }

    #[test]
    fn payment_snapshot_then_tail_is_full_replay(
        commands in prop::collection::vec(generators::payment_command(), 0..12),
        split in any::<Index>(),
    ) {
        snapshot_then_tail_is_full_replay::<Payment>(&commands, split)?;
    }

    #[test]
    fn delivery_snapshot_then_tail_is_full_replay(
        commands in prop::collection::vec(generators::delivery_command(), 0..20),
        split in any::<Index>(),
    ) {
        snapshot_then_tail_is_full_replay::<Delivery>(&commands, split)?;
    }

    /// Stories around a whole order make longer, realistic histories for
    /// every aggregate at once.
    #[test]
    fn snapshots_of_a_whole_story_then_tail_are_full_replay(
        (menu, steps) in one_order_story(),
        split in any::<Index>(),
    ) {
        let marketplace = Marketplace::run(one_order_cast(), menu, &steps);
        snapshot_of_history_then_tail::<Store>(&marketplace.store.history, split)?;
        snapshot_of_history_then_tail::<Order>(&marketplace.order.history, split)?;
        snapshot_of_history_then_tail::<Payment>(&marketplace.payment.history, split)?;
        snapshot_of_history_then_tail::<Delivery>(&marketplace.delivery.history, split)?;
    }
}

fn snapshot_of_history_then_tail<A: Aggregate>(history: &[A::Event], split: Index) -> Result<(), TestCaseError> {
    let k = split.index(history.len() + 1);
    let json = serde_json::to_string(&Versioned::<A>::replay(&history[..k])).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut restored: Versioned<A> = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
    restored.apply_all(&history[k..]);
    prop_assert_eq!(restored, Versioned::<A>::replay(history), "{} snapshot after {} events", A::TYPE, k);
    Ok(())
}

// ================================================================ 3. projections converge

/// One order's story in a marketplace of several: its region, its customer
/// (from a small pool, so partitions are shared), its menu and its steps.
#[derive(Debug, Clone)]
struct OrderStory {
    region: usize,
    customer: usize,
    menu: Vec<MenuItem>,
    steps: Vec<Step>,
}

const REGIONS: [&str; 2] = ["north", "south"];
const CUSTOMERS: [&str; 3] = ["ada", "bo", "cy"];

fn order_story() -> impl Strategy<Value = OrderStory> {
    (0..REGIONS.len(), 0..CUSTOMERS.len(), valid_menu(), prop::collection::vec(step(), 0..=24))
        .prop_map(|(region, customer, menu, steps)| OrderStory { region, customer, menu, steps })
}

/// Plays each story in its own store, to the end.
fn play(stories: &[OrderStory]) -> Vec<Marketplace> {
    stories
        .iter()
        .enumerate()
        .map(|(n, story)| {
            let customer = CUSTOMERS[story.customer];
            let other = CUSTOMERS[(story.customer + 1) % CUSTOMERS.len()];
            let cast = Cast::new(n + 1, REGIONS[story.region], customer, other);
            Marketplace::run(cast, story.menu.clone(), &story.steps)
        })
        .collect()
}

/// Every envelope of the marketplaces, in commit order.
fn commit_log(marketplaces: &[Marketplace]) -> Vec<&Envelope> {
    marketplaces.iter().flat_map(|m| &m.journal.log).collect()
}

/// The marketplaces played from a case's stories. Carried along with the
/// stories so each case is played once; shown in a failure as its stories.
#[derive(Clone)]
struct Played(Arc<Vec<Marketplace>>);

impl fmt::Debug for Played {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let published: usize = self.0.iter().map(|m| m.journal.log.len()).sum();
        write!(f, "<{} marketplaces played from the stories, {published} envelopes>", self.0.len())
    }
}

/// Stories, their marketplaces, and a delivery schedule: every envelope at
/// least once, some twice or more, all in a random order (indices into the
/// commit log).
fn stories_and_schedule() -> impl Strategy<Value = (Vec<OrderStory>, Played, Vec<usize>)> {
    prop::collection::vec(order_story(), 1..=3).prop_flat_map(|stories| {
        let played = Played(Arc::new(play(&stories)));
        let published = commit_log(&played.0).len();
        let schedule = prop::collection::vec(any::<Index>(), 0..=published / 2 + 1).prop_flat_map(move |again| {
            let mut schedule: Vec<usize> = (0..published).collect();
            schedule.extend(again.iter().map(|index| index.index(published)));
            Just(schedule).prop_shuffle()
        });
        (Just(stories), Just(played), schedule)
    })
}

/// Folds envelopes into view documents, as the projector does.
fn fold<'a, P: Projection>(envelopes: impl IntoIterator<Item = &'a Envelope>) -> Result<BTreeMap<ViewKey, P::View>, TestCaseError> {
    let mut views: BTreeMap<ViewKey, P::View> = BTreeMap::new();
    for envelope in envelopes {
        let event = envelope.decode().map_err(|e| TestCaseError::fail(format!("{}: {e}", envelope.event_id)))?;
        if let Some(key) = P::locate(envelope, &event) {
            let view = views.remove(&key).unwrap_or_default();
            views.insert(key, P::apply(view, envelope, &event));
        }
    }
    Ok(views)
}

/// In commit order or shuffled with duplicates, the same views; each
/// survives JSON. Returns the views.
fn converges<P: Projection>(marketplaces: &[Marketplace], schedule: &[usize]) -> Result<BTreeMap<ViewKey, P::View>, TestCaseError> {
    for marketplace in marketplaces {
        prop_assert!(marketplace.journal.anomalies.is_empty(), "{:#?}", marketplace.journal.anomalies);
    }
    let log = commit_log(marketplaces);
    let in_commit_order = fold::<P>(log.iter().copied())?;
    let as_delivered = fold::<P>(schedule.iter().map(|&at| log[at]))?;
    prop_assert_eq!(&in_commit_order, &as_delivered, "{} differs when delivered out of order", P::NAME);
    for view in in_commit_order.values() {
        let json = serde_json::to_string(view).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: P::View = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        prop_assert_eq!(&back, view, "{} JSON {}", P::NAME, json);
    }
    Ok(in_commit_order)
}

fn key(key: &str, partition: &str) -> ViewKey {
    ViewKey { key: key.to_owned(), partition: partition.to_owned() }
}

proptest! {
    // 5 projections x 2,000 cases = 10,000 cases.
    #![proptest_config(config(2_000))]

    #[test]
    fn order_status_converges((_stories, Played(marketplaces), schedule) in stories_and_schedule()) {
        let views = converges::<OrderStatusProjection>(&marketplaces, &schedule)?;
        let placed: Vec<_> = marketplaces.iter().filter(|m| m.order.current.state.placed.is_some()).collect();
        prop_assert_eq!(views.len(), placed.len());
        for m in placed {
            let order = m.order.current.state.placed.as_ref().unwrap();
            let view = &views[&key(&m.order.id, order.customer_id.as_str())];
            prop_assert_eq!(view.status, Some(order.status));
            prop_assert_eq!(&view.rider_id, &order.rider_id);
            prop_assert_eq!(&view.store_id, &order.store_id);
            let timeline: Vec<(u64, OrderStatus)> = view.timeline.iter().map(|entry| (entry.version, entry.status)).collect();
            let history: Vec<(u64, OrderStatus)> = (1..).zip(m.order.history.iter().map(OrderEvent::status)).collect();
            prop_assert_eq!(timeline, history);
            let summary = view.summary.as_ref().expect("a summary once placed");
            prop_assert_eq!((&summary.lines, summary.total), (&order.lines, order.total));
            let charge = m.payment.current.state.charge.as_ref().expect("a placed order is paid");
            let refund = view.refund.as_ref().map(|refund| (refund.amount, refund.reason));
            prop_assert_eq!(refund, charge.refunded.map(|reason| (charge.amount, reason)));
        }
    }

    #[test]
    fn store_queue_converges((_stories, Played(marketplaces), schedule) in stories_and_schedule()) {
        let views = converges::<StoreQueueProjection>(&marketplaces, &schedule)?;
        let placed: Vec<_> = marketplaces.iter().filter(|m| m.order.current.state.placed.is_some()).collect();
        prop_assert_eq!(views.len(), placed.len());
        for m in placed {
            let order = m.order.current.state.placed.as_ref().unwrap();
            let queued = &views[&key(&m.order.id, order.store_id.as_str())];
            prop_assert_eq!(queued.status.value, Some(order.status));
            prop_assert_eq!(queued.status.version, m.order.current.version);
            prop_assert_eq!(queued.is_active(), order.status.is_active());
            prop_assert_eq!(&queued.customer_id, &order.customer_id);
            prop_assert_eq!(queued.summary.as_ref().map(|s| &s.lines), Some(&order.lines));
        }
    }

    #[test]
    fn delivery_board_converges((_stories, Played(marketplaces), schedule) in stories_and_schedule()) {
        let views = converges::<DeliveryBoardProjection>(&marketplaces, &schedule)?;
        let opened: Vec<_> = marketplaces.iter().filter(|m| m.delivery.current.state.opened.is_some()).collect();
        prop_assert_eq!(views.len(), opened.len());
        for m in opened {
            let delivery = m.delivery.current.state.opened.as_ref().unwrap();
            let entry = &views[&key(&m.delivery.id, delivery.details.region.as_str())];
            prop_assert_eq!(entry.details.as_ref(), Some(&delivery.details));
            prop_assert_eq!(entry.food_ready, delivery.food_ready);
            prop_assert_eq!(entry.state.value.as_ref(), Some(&delivery.state));
            prop_assert_eq!(entry.is_open(), delivery.state == DeliveryState::Open);
        }
    }

    #[test]
    fn popular_menus_converges((_stories, Played(marketplaces), schedule) in stories_and_schedule()) {
        let views = converges::<PopularMenusProjection>(&marketplaces, &schedule)?;
        let placed: Vec<_> = marketplaces.iter().filter(|m| m.order.current.state.placed.is_some()).collect();
        prop_assert_eq!(views.len(), placed.len());
        for m in placed {
            let order = m.order.current.state.placed.as_ref().unwrap();
            let contribution = &views[&key(&m.order.id, order.store_id.as_str())];
            let ordered: Vec<OrderedItem> = order
                .lines
                .iter()
                .map(|line| OrderedItem { menu_id: line.menu_id.clone(), name: line.name.clone(), quantity: line.quantity })
                .collect();
            prop_assert_eq!(&contribution.items, &ordered);
        }
    }

    #[test]
    fn catalog_converges((_stories, Played(marketplaces), schedule) in stories_and_schedule()) {
        let views = converges::<CatalogProjection>(&marketplaces, &schedule)?;
        prop_assert_eq!(views.len(), marketplaces.len());
        for m in marketplaces.iter() {
            let profile = m.store.current.state.profile.as_ref().expect("every story's store is registered");
            let listing = &views[&key(profile.id.as_str(), profile.region.as_str())];
            prop_assert!(listing.is_listed());
            prop_assert_eq!(listing.name.as_ref(), Some(&profile.name));
            prop_assert_eq!(listing.owner.as_ref(), Some(&profile.owner));
            prop_assert_eq!(listing.open.value, profile.open);
            prop_assert_eq!(&listing.menu.value, &profile.menu);
        }
    }
}

//! Ordering: placing an order, the customer's cancellation, and the delivery
//! progress the tracking policy records on the order.

mod support;

use domain::kitchen::KitchenCommand;
use domain::ordering::{CancelReason, DeliveryProgress, Order, OrderCommand, OrderEvent, OrderStatus, PlaceOrder};
use domain::{DomainError, Money};
use support::*;

fn place_with(change: impl FnOnce(&mut PlaceOrder)) -> OrderCommand {
    let mut place = place_order();
    change(&mut place);
    OrderCommand::Place(place)
}

fn cancel_by_customer() -> OrderCommand {
    OrderCommand::Cancel { customer_id: customer() }
}

// ---------------------------------------------------------------- place

#[test]
fn placing_an_order_records_its_lines_total_and_charge() {
    let order = given::<Order>([]).when(OrderCommand::Place(place_order())).then([order_placed()]);
    let placed = order.placed.expect("placed");
    assert_eq!(placed.status, OrderStatus::Placed);
    assert_eq!(placed.total, Money(3350));
    assert_eq!(placed.charge_id, "charge-1");
    assert_eq!(placed.rider_id, None);
}

#[test]
fn the_address_is_recorded_trimmed() {
    given::<Order>([]).when(place_with(|p| p.address = format!("  {ADDRESS}\n"))).then([order_placed()]);
}

#[test]
fn an_order_needs_at_least_one_item() {
    given::<Order>([]).when(place_with(|p| p.lines.clear())).then_err_mentioning(DomainError::Invalid, "at least one item");
}

#[test]
fn each_quantity_is_between_1_and_100() {
    for quantity in [0, 101] {
        given::<Order>([]).when(place_with(|p| p.lines[0].quantity = quantity)).then_err(DomainError::Invalid);
    }
}

#[test]
fn each_line_has_a_price_and_a_bounded_name() {
    given::<Order>([])
        .when(place_with(|p| p.lines[1].unit_price = Money::ZERO))
        .then_err_mentioning(DomainError::Invalid, "kimchi-stew has no price");
    given::<Order>([]).when(place_with(|p| p.lines[0].name = "x".repeat(121))).then_err_mentioning(DomainError::Invalid, "too long a name");
}

#[test]
fn a_price_beyond_any_menu_is_refused_so_totals_never_overflow() {
    given::<Order>([])
        .when(place_with(|p| p.lines = vec![line("gold", "Gold leaf", u64::MAX / 2, 3)]))
        .then_err_mentioning(DomainError::Invalid, "costs more than");
}

#[test]
fn an_order_needs_a_delivery_address_of_at_most_500_characters() {
    given::<Order>([]).when(place_with(|p| p.address = "  ".into())).then_err_mentioning(DomainError::Invalid, "address");
    given::<Order>([]).when(place_with(|p| p.address = "a".repeat(501))).then_err(DomainError::Invalid);
}

#[test]
fn an_order_needs_a_region() {
    given::<Order>([]).when(place_with(|p| p.region = "".into())).then_err_mentioning(DomainError::Invalid, "region");
}

#[test]
fn the_payment_must_equal_the_total() {
    for amount in [3349, 3351] {
        given::<Order>([])
            .when(place_with(|p| p.payment.amount = Money(amount)))
            .then_err_mentioning(DomainError::Invalid, "does not match the order total of 33.50");
    }
}

#[test]
fn an_order_is_placed_only_once() {
    given::<Order>(order_at(OrderStatus::Placed))
        .when(OrderCommand::Place(place_order()))
        .then_err_mentioning(DomainError::Conflict, "already placed");
}

#[test]
fn commands_on_an_unplaced_order_find_nothing() {
    for command in [cancel_by_customer(), kitchen(KitchenCommand::Accept), progress(DeliveryProgress::PickedUp { rider_id: rider() })] {
        given::<Order>([]).when(command).then_err(DomainError::NotFound);
    }
}

// ---------------------------------------------------------------- cancel

#[test]
fn the_customer_cancels_until_cooking_starts() {
    for status in [OrderStatus::Placed, OrderStatus::Accepted] {
        let order = given::<Order>(order_at(status)).when(cancel_by_customer()).then([cancelled(CancelReason::Customer)]);
        assert_eq!(order.placed.unwrap().status, OrderStatus::Cancelled);
    }
}

#[test]
fn once_cooking_has_started_the_order_can_no_longer_be_cancelled() {
    for status in [OrderStatus::Cooking, OrderStatus::Cooked, OrderStatus::PickedUp, OrderStatus::Delivered] {
        given::<Order>(order_at(status)).when(cancel_by_customer()).then_err_mentioning(DomainError::Conflict, "cooking has started");
    }
}

#[test]
fn a_rejected_or_cancelled_order_cannot_be_cancelled() {
    given::<Order>(order_at(OrderStatus::Rejected))
        .when(cancel_by_customer())
        .then_err_mentioning(DomainError::Conflict, "already rejected");
    given::<Order>(order_at(OrderStatus::Cancelled))
        .when(cancel_by_customer())
        .then_err_mentioning(DomainError::Conflict, "already cancelled");
}

#[test]
fn only_the_customer_who_placed_the_order_may_cancel_it() {
    for status in [OrderStatus::Placed, OrderStatus::Cooking] {
        given::<Order>(order_at(status)).when(OrderCommand::Cancel { customer_id: other_customer() }).then_err(DomainError::Forbidden);
    }
}

// ---------------------------------------------------------------- delivery progress

fn picked() -> OrderCommand {
    progress(DeliveryProgress::PickedUp { rider_id: rider() })
}
fn completed() -> OrderCommand {
    progress(DeliveryProgress::Delivered { rider_id: rider() })
}
fn accident() -> OrderCommand {
    progress(DeliveryProgress::Accident { rider_id: rider() })
}

#[test]
fn a_pick_up_of_cooked_food_is_recorded_with_its_rider() {
    let order = given::<Order>(order_at(OrderStatus::Cooked)).when(picked()).then([picked_up(rider())]);
    let placed = order.placed.unwrap();
    assert_eq!(placed.status, OrderStatus::PickedUp);
    assert_eq!(placed.rider_id, Some(rider()));
}

#[test]
fn a_delivery_of_picked_up_food_completes_the_order() {
    let order = given::<Order>(order_at(OrderStatus::PickedUp)).when(completed()).then([delivered(rider())]);
    assert_eq!(order.placed.unwrap().status, OrderStatus::Delivered);
}

#[test]
fn an_accident_cancels_the_order_for_the_rider_accident() {
    let order = given::<Order>(order_at(OrderStatus::PickedUp)).when(accident()).then([cancelled(CancelReason::RiderAccident)]);
    assert_eq!(order.placed.unwrap().status, OrderStatus::Cancelled);
}

#[test]
fn a_completion_arriving_before_the_pick_up_records_the_pick_up_first() {
    let order = given::<Order>(order_at(OrderStatus::Cooked)).when(completed()).then([picked_up(rider()), delivered(rider())]);
    assert_eq!(order.placed.unwrap().rider_id, Some(rider()));
}

#[test]
fn an_accident_arriving_before_the_pick_up_records_the_pick_up_first() {
    given::<Order>(order_at(OrderStatus::Cooked)).when(accident()).then([picked_up(rider()), cancelled(CancelReason::RiderAccident)]);
}

#[test]
fn repeated_progress_reports_change_nothing() {
    given::<Order>(order_at(OrderStatus::PickedUp)).when(picked()).then_nothing();
    given::<Order>(order_at(OrderStatus::Delivered)).when(picked()).then_nothing();
    given::<Order>(order_at(OrderStatus::Delivered)).when(completed()).then_nothing();
    let after_accident = [order_at(OrderStatus::PickedUp), vec![cancelled(CancelReason::RiderAccident)]].concat();
    given::<Order>(after_accident.clone()).when(accident()).then_nothing();
    given::<Order>(after_accident).when(picked()).then_nothing();
}

#[test]
fn progress_is_refused_before_the_food_is_cooked() {
    for status in [OrderStatus::Placed, OrderStatus::Accepted, OrderStatus::Cooking, OrderStatus::Rejected] {
        for command in [picked(), completed(), accident()] {
            given::<Order>(order_at(status))
                .when(command)
                .then_err_mentioning(DomainError::Conflict, "delivery progress cannot be recorded");
        }
    }
}

#[test]
fn a_cancelled_order_is_not_delivered_and_a_delivered_one_has_no_accident() {
    let after_accident = [order_at(OrderStatus::PickedUp), vec![cancelled(CancelReason::RiderAccident)]].concat();
    given::<Order>(after_accident).when(completed()).then_err(DomainError::Conflict);
    given::<Order>(order_at(OrderStatus::Delivered)).when(accident()).then_err(DomainError::Conflict);
}

#[test]
fn every_order_event_knows_the_status_it_leads_to() {
    for status in ALL_STATUSES {
        let events = order_at(status);
        let last: &OrderEvent = events.last().unwrap();
        assert_eq!(last.status(), status);
        assert_eq!(given::<Order>(events.clone()).history.state.placed.unwrap().status, status);
    }
}

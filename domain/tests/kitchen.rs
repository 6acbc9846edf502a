//! Kitchen: the store accepts or rejects an order, then cooks it; and the
//! race between the kitchen and the customer's cancellation.

mod support;

use domain::kitchen::KitchenCommand;
use domain::ordering::{CancelReason, Order, OrderCommand, OrderStatus};
use domain::{Aggregate, DomainError, StoreId};
use support::*;

fn reject(reason: &str) -> KitchenCommand {
    KitchenCommand::Reject { reason: reason.into() }
}

/// Every status but `allowed` refuses `command` with a conflict.
fn refused_outside(allowed: OrderStatus, command: KitchenCommand) {
    for status in ALL_STATUSES.into_iter().filter(|s| *s != allowed) {
        given::<Order>(order_at(status)).when(kitchen(command.clone())).then_err_mentioning(DomainError::Conflict, "it must be");
    }
}

#[test]
fn the_store_accepts_a_placed_order() {
    let order = given::<Order>(order_at(OrderStatus::Placed)).when(kitchen(KitchenCommand::Accept)).then([accepted()]);
    assert_eq!(order.placed.unwrap().status, OrderStatus::Accepted);
}

#[test]
fn the_store_rejects_a_placed_order_with_a_reason() {
    let order = given::<Order>(order_at(OrderStatus::Placed)).when(kitchen(reject("  out of rice "))).then([rejected("out of rice")]);
    assert_eq!(order.placed.unwrap().status, OrderStatus::Rejected);
}

#[test]
fn a_rejection_needs_a_reason_for_the_customer() {
    for reason in ["", " \t "] {
        given::<Order>(order_at(OrderStatus::Placed))
            .when(kitchen(reject(reason)))
            .then_err_mentioning(DomainError::Invalid, "needs a reason");
    }
    given::<Order>(order_at(OrderStatus::Placed)).when(kitchen(reject(&"r".repeat(501)))).then_err(DomainError::Invalid);
}

#[test]
fn only_a_placed_order_is_accepted_or_rejected() {
    refused_outside(OrderStatus::Placed, KitchenCommand::Accept);
    refused_outside(OrderStatus::Placed, reject("closing early"));
}

#[test]
fn cooking_starts_on_an_accepted_order_and_names_where_the_food_goes() {
    let order = given::<Order>(order_at(OrderStatus::Accepted)).when(kitchen(KitchenCommand::StartCooking)).then([cooking_started()]);
    assert_eq!(order.placed.unwrap().status, OrderStatus::Cooking);
}

#[test]
fn only_an_accepted_order_starts_cooking() {
    refused_outside(OrderStatus::Accepted, KitchenCommand::StartCooking);
}

#[test]
fn cooking_finishes_on_an_order_that_is_cooking() {
    let order = given::<Order>(order_at(OrderStatus::Cooking)).when(kitchen(KitchenCommand::FinishCooking)).then([cooking_finished()]);
    assert_eq!(order.placed.unwrap().status, OrderStatus::Cooked);
}

#[test]
fn only_an_order_that_is_cooking_finishes_cooking() {
    refused_outside(OrderStatus::Cooking, KitchenCommand::FinishCooking);
}

#[test]
fn another_store_does_not_find_the_order() {
    let commands = [KitchenCommand::Accept, reject("no"), KitchenCommand::StartCooking, KitchenCommand::FinishCooking];
    for command in commands {
        given::<Order>(order_at(OrderStatus::Placed))
            .when(OrderCommand::Kitchen { store_id: StoreId::from("store-2"), command })
            .then_err(DomainError::NotFound);
    }
}

// ---------------------------------------------------------------- the race

fn cancel() -> OrderCommand {
    OrderCommand::Cancel { customer_id: customer() }
}

#[test]
fn from_accepted_cancel_and_start_cooking_are_both_valid_but_each_excludes_the_other() {
    let accepted = order_at(OrderStatus::Accepted);
    given::<Order>(accepted.clone()).when(cancel()).then([cancelled(CancelReason::Customer)]);
    given::<Order>(accepted.clone()).when(kitchen(KitchenCommand::StartCooking)).then([cooking_started()]);

    let after_cancel = [accepted.clone(), vec![cancelled(CancelReason::Customer)]].concat();
    given::<Order>(after_cancel).when(kitchen(KitchenCommand::StartCooking)).then_err(DomainError::Conflict);
    let after_cooking = [accepted, vec![cooking_started()]].concat();
    given::<Order>(after_cooking).when(cancel()).then_err(DomainError::Conflict);
}

#[test]
fn from_placed_cancel_and_reject_exclude_each_other() {
    let after_cancel = [order_at(OrderStatus::Placed), vec![cancelled(CancelReason::Customer)]].concat();
    given::<Order>(after_cancel).when(kitchen(reject("sold out"))).then_err(DomainError::Conflict);
    given::<Order>(order_at(OrderStatus::Rejected)).when(cancel()).then_err(DomainError::Conflict);
}

/// Both commands are decided on the same version; the store appends only at
/// the expected version, so the second append fails, and the loser, decided
/// again on the reloaded order, is refused. Exactly one outcome is stored.
fn race(first: OrderCommand, second: OrderCommand) -> (Stream<Order>, DomainError) {
    let mut stream = Stream::<Order>::new(order_at(OrderStatus::Accepted));
    let (mut winner, mut loser) = (stream.load(), stream.load());
    assert_eq!(winner.version, loser.version);
    let decided_on = winner.version;

    let won = winner.execute(&first).expect("the first command is valid");
    let lost = loser.execute(&second).expect("on the same version the second is valid too");
    let events = |decided: Vec<(u64, _)>| decided.into_iter().map(|(_, e)| e).collect();

    stream.append(decided_on, events(won)).expect("the first append wins");
    let current = stream.append(decided_on, events(lost)).expect_err("the second append loses");
    assert_eq!(current, decided_on + 1);

    let refusal = stream.load().state.decide(&second).expect_err("retried on the reloaded order, it is refused");
    (stream, refusal)
}

#[test]
fn when_cancel_and_start_cooking_race_the_cancellation_can_win() {
    let (stream, refusal) = race(cancel(), kitchen(KitchenCommand::StartCooking));
    assert!(matches!(refusal, DomainError::Conflict(_)), "{refusal:?}");
    assert_eq!(stream.events, [order_at(OrderStatus::Accepted), vec![cancelled(CancelReason::Customer)]].concat());
    assert_eq!(stream.load().state.placed.unwrap().status, OrderStatus::Cancelled);
}

#[test]
fn when_cancel_and_start_cooking_race_the_kitchen_can_win() {
    let (stream, refusal) = race(kitchen(KitchenCommand::StartCooking), cancel());
    assert!(matches!(&refusal, DomainError::Conflict(m) if m.contains("cooking has started")), "{refusal:?}");
    assert_eq!(stream.events, order_at(OrderStatus::Cooking));
    assert_eq!(stream.load().state.placed.unwrap().status, OrderStatus::Cooking);
}

//! Delivery: opened from the order's cooking, picked by one rider once the
//! food is ready, then completed or ended by an accident.

mod support;

use domain::DomainError;
use domain::delivery::{Delivery, DeliveryCommand, DeliveryState};
use domain::ids::RiderId;
use support::*;

fn pick(rider_id: RiderId) -> DeliveryCommand {
    DeliveryCommand::Pick { rider_id }
}
fn complete(rider_id: RiderId) -> DeliveryCommand {
    DeliveryCommand::Complete { rider_id }
}
fn report_accident(rider_id: RiderId, description: &str) -> DeliveryCommand {
    DeliveryCommand::ReportAccident { rider_id, description: description.into() }
}

fn ready() -> Vec<domain::delivery::DeliveryEvent> {
    vec![delivery_opened(), food_ready()]
}
fn picked_by_rider() -> Vec<domain::delivery::DeliveryEvent> {
    vec![delivery_opened(), food_ready(), delivery_picked(rider())]
}

// ---------------------------------------------------------------- open, food ready

#[test]
fn cooking_started_opens_the_delivery_with_food_not_yet_ready() {
    let delivery = given::<Delivery>([]).when(open_delivery()).then([delivery_opened()]);
    let opened = delivery.opened.expect("opened");
    assert_eq!(opened.details, details());
    assert!(!opened.food_ready);
    assert_eq!(opened.state, DeliveryState::Open);
}

#[test]
fn food_ready_arriving_first_opens_the_delivery_too() {
    let delivery = given::<Delivery>([]).when(mark_food_ready()).then([delivery_opened(), food_ready()]);
    assert!(delivery.opened.unwrap().food_ready);
}

#[test]
fn food_ready_on_an_open_delivery_marks_it_ready() {
    given::<Delivery>([delivery_opened()]).when(mark_food_ready()).then([food_ready()]);
}

#[test]
fn opening_and_marking_ready_again_change_nothing() {
    given::<Delivery>([delivery_opened()]).when(open_delivery()).then_nothing();
    given::<Delivery>(ready()).when(open_delivery()).then_nothing();
    given::<Delivery>(ready()).when(mark_food_ready()).then_nothing();
    given::<Delivery>(picked_by_rider()).when(open_delivery()).then_nothing();
    given::<Delivery>(picked_by_rider()).when(mark_food_ready()).then_nothing();
}

// ---------------------------------------------------------------- pick

#[test]
fn a_rider_picks_ready_food() {
    let delivery = given::<Delivery>(ready()).when(pick(rider())).then([delivery_picked(rider())]);
    assert_eq!(delivery.opened.unwrap().state, DeliveryState::PickedUp(rider()));
}

#[test]
fn food_still_cooking_cannot_be_picked() {
    given::<Delivery>([delivery_opened()]).when(pick(rider())).then_err_mentioning(DomainError::Conflict, "still cooking");
}

#[test]
fn only_one_rider_gets_the_delivery() {
    given::<Delivery>(picked_by_rider()).when(pick(other_rider())).then_err_mentioning(DomainError::Conflict, "another rider");
    given::<Delivery>(picked_by_rider()).when(pick(rider())).then_err_mentioning(DomainError::Conflict, "already picked up");
}

#[test]
fn a_finished_delivery_cannot_be_picked() {
    let completed = [picked_by_rider(), vec![delivery_completed(rider())]].concat();
    given::<Delivery>(completed).when(pick(other_rider())).then_err(DomainError::Conflict);
}

#[test]
fn rider_commands_on_an_unopened_delivery_find_nothing() {
    for command in [pick(rider()), complete(rider()), report_accident(rider(), "slipped")] {
        given::<Delivery>([]).when(command).then_err(DomainError::NotFound);
    }
}

// ---------------------------------------------------------------- complete

#[test]
fn the_rider_who_picked_completes_the_delivery() {
    let delivery = given::<Delivery>(picked_by_rider()).when(complete(rider())).then([delivery_completed(rider())]);
    assert_eq!(delivery.opened.unwrap().state, DeliveryState::Delivered(rider()));
}

#[test]
fn another_rider_may_not_complete_it() {
    given::<Delivery>(picked_by_rider()).when(complete(other_rider())).then_err_mentioning(DomainError::Forbidden, "another rider");
}

#[test]
fn a_delivery_is_not_completed_before_it_is_picked() {
    for history in [vec![delivery_opened()], ready()] {
        given::<Delivery>(history).when(complete(rider())).then_err_mentioning(DomainError::Conflict, "not been picked up");
    }
}

#[test]
fn a_finished_delivery_is_not_completed_again() {
    let completed = [picked_by_rider(), vec![delivery_completed(rider())]].concat();
    given::<Delivery>(completed).when(complete(rider())).then_err_mentioning(DomainError::Conflict, "already finished");
    let failed = [picked_by_rider(), vec![accident_reported(rider(), "flat tyre")]].concat();
    given::<Delivery>(failed).when(complete(rider())).then_err(DomainError::Conflict);
}

// ---------------------------------------------------------------- accident

#[test]
fn the_rider_who_picked_reports_an_accident() {
    let delivery = given::<Delivery>(picked_by_rider())
        .when(report_accident(rider(), "  flat tyre on the bridge "))
        .then([accident_reported(rider(), "flat tyre on the bridge")]);
    assert_eq!(delivery.opened.unwrap().state, DeliveryState::Failed(rider()));
}

#[test]
fn another_rider_may_not_report_an_accident() {
    given::<Delivery>(picked_by_rider()).when(report_accident(other_rider(), "flat tyre")).then_err(DomainError::Forbidden);
}

#[test]
fn an_accident_needs_a_description_of_at_most_2000_characters() {
    given::<Delivery>(picked_by_rider())
        .when(report_accident(rider(), "   "))
        .then_err_mentioning(DomainError::Invalid, "describe what happened");
    given::<Delivery>(picked_by_rider()).when(report_accident(rider(), &"a".repeat(2001))).then_err(DomainError::Invalid);
}

#[test]
fn an_accident_is_not_reported_before_the_pick_or_after_the_end() {
    given::<Delivery>(ready()).when(report_accident(rider(), "fell")).then_err(DomainError::Conflict);
    let completed = [picked_by_rider(), vec![delivery_completed(rider())]].concat();
    given::<Delivery>(completed).when(report_accident(rider(), "fell")).then_err(DomainError::Conflict);
    let failed = [picked_by_rider(), vec![accident_reported(rider(), "flat tyre")]].concat();
    given::<Delivery>(failed).when(report_accident(rider(), "again")).then_err(DomainError::Conflict);
}

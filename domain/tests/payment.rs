//! Payment: one approved charge per order, refunded at most once.

mod support;

use domain::payment::{Payment, PaymentCommand, RefundReason};
use domain::{DomainError, Money, Versioned};
use support::*;

fn approve() -> PaymentCommand {
    PaymentCommand::Approve { customer_id: customer(), charge_id: "charge-1".into(), amount: TOTAL }
}

fn refund(reason: RefundReason) -> PaymentCommand {
    PaymentCommand::Refund { reason }
}

#[test]
fn a_charge_is_approved() {
    let payment = given::<Payment>([]).when(approve()).then([payment_approved()]);
    let charge = payment.charge.expect("approved");
    assert_eq!(charge.amount, TOTAL);
    assert_eq!(charge.refunded, None);
}

#[test]
fn a_charge_is_for_more_than_nothing() {
    given::<Payment>([])
        .when(PaymentCommand::Approve { customer_id: customer(), charge_id: "charge-1".into(), amount: Money::ZERO })
        .then_err(DomainError::Invalid);
}

#[test]
fn an_order_is_paid_only_once() {
    given::<Payment>([payment_approved()]).when(approve()).then_err_mentioning(DomainError::Conflict, "already paid");
}

#[test]
fn a_refund_returns_the_whole_charge_with_its_reason() {
    let payment = given::<Payment>([payment_approved()])
        .when(refund(RefundReason::StoreRejected))
        .then([payment_refunded(RefundReason::StoreRejected)]);
    assert_eq!(payment.charge.unwrap().refunded, Some(RefundReason::StoreRejected));
}

#[test]
fn a_second_refund_changes_nothing() {
    given::<Payment>([payment_approved(), payment_refunded(RefundReason::CustomerCancelled)])
        .when(refund(RefundReason::CustomerCancelled))
        .then_nothing();
    let payment = given::<Payment>([payment_approved(), payment_refunded(RefundReason::CustomerCancelled)]);
    assert_eq!(payment.history.state.charge.clone().unwrap().refunded, Some(RefundReason::CustomerCancelled));
    payment.when(refund(RefundReason::RiderAccident)).then_nothing();
}

#[test]
fn however_often_it_is_requested_the_money_is_refunded_exactly_once() {
    let mut payment = Versioned::<Payment>::replay(&[payment_approved()]);
    let stored: Vec<_> = (0..3).flat_map(|_| payment.execute(&refund(RefundReason::RiderAccident)).unwrap()).collect();
    assert_eq!(stored, vec![(2, payment_refunded(RefundReason::RiderAccident))]);
    assert_eq!(payment.version, 2);
}

#[test]
fn there_is_nothing_to_refund_without_a_payment() {
    given::<Payment>([]).when(refund(RefundReason::StoreRejected)).then_err(DomainError::NotFound);
}

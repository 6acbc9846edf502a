//! Payment: one charge per order, approved before the order exists, refunded
//! at most once when the order is rejected or cancelled.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::error::DomainError;
use crate::ids::CustomerId;
use crate::money::Money;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefundReason {
    CustomerCancelled,
    StoreRejected,
    RiderAccident,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Charge {
    pub customer_id: CustomerId,
    pub charge_id: String,
    pub amount: Money,
    pub refunded: Option<RefundReason>,
}

/// The payment aggregate, identified by its order's id. `None` until approved.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Payment {
    pub charge: Option<Charge>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PaymentCommand {
    Approve { customer_id: CustomerId, charge_id: String, amount: Money },
    Refund { reason: RefundReason },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "eventType", content = "data")]
pub enum PaymentEvent {
    #[serde(rename_all = "camelCase")]
    PaymentApproved { customer_id: CustomerId, charge_id: String, amount: Money },
    #[serde(rename_all = "camelCase")]
    PaymentRefunded { customer_id: CustomerId, charge_id: String, amount: Money, reason: RefundReason },
}

impl DomainEvent for PaymentEvent {}

impl Aggregate for Payment {
    const TYPE: &'static str = "Payment";
    type Command = PaymentCommand;
    type Event = PaymentEvent;

    fn decide(&self, command: &PaymentCommand) -> Result<Vec<PaymentEvent>, DomainError> {
        match (command, &self.charge) {
            (PaymentCommand::Approve { customer_id, charge_id, amount }, None) => {
                if *amount == Money::ZERO {
                    return Err(DomainError::invalid("a payment must be for more than nothing"));
                }
                Ok(vec![PaymentEvent::PaymentApproved { customer_id: customer_id.clone(), charge_id: charge_id.clone(), amount: *amount }])
            }
            (PaymentCommand::Approve { .. }, Some(_)) => Err(DomainError::conflict("the order is already paid")),
            (PaymentCommand::Refund { .. }, None) => Err(DomainError::not_found("no payment for this order")),
            // A refund is requested by a policy that may see its event twice:
            // the second request finds the money already returned.
            (PaymentCommand::Refund { .. }, Some(Charge { refunded: Some(_), .. })) => Ok(vec![]),
            (PaymentCommand::Refund { reason }, Some(charge)) => Ok(vec![PaymentEvent::PaymentRefunded {
                customer_id: charge.customer_id.clone(),
                charge_id: charge.charge_id.clone(),
                amount: charge.amount,
                reason: *reason,
            }]),
        }
    }

    fn apply(&mut self, event: &PaymentEvent) {
        match event {
            PaymentEvent::PaymentApproved { customer_id, charge_id, amount } => {
                self.charge =
                    Some(Charge { customer_id: customer_id.clone(), charge_id: charge_id.clone(), amount: *amount, refunded: None });
            }
            PaymentEvent::PaymentRefunded { reason, .. } => {
                if let Some(charge) = self.charge.as_mut() {
                    charge.refunded = Some(*reason);
                }
            }
        }
    }
}

//! Kitchen: the store's side of an order. The owner accepts or rejects it,
//! then reports cooking started and finished.
//!
//! Why the kitchen decides on the order's own stream: "a customer may cancel
//! until cooking starts" is one invariant over two facts, the cancellation and
//! the start of cooking. Kept in one aggregate, the event store's optimistic
//! concurrency (append at the expected version) is the lock: when both
//! commands race, both read version N, one appends N+1, the other fails its
//! condition, reloads, finds the order cooking (or cancelled) and is refused
//! with a conflict. Exactly one outcome, decided synchronously, and the loser
//! learns it from the HTTP answer. Split into an order and a kitchen ticket,
//! the same rule would need a saga with a pending "cancellation requested"
//! state (a semantic lock) and the customer would learn the outcome only later.

use crate::error::{DomainError, ensure};
use crate::ordering::{OrderEvent, OrderStatus, PlacedOrder, status_word};

pub const MAX_REASON_LEN: usize = 500;

#[derive(Debug, Clone, PartialEq)]
pub enum KitchenCommand {
    Accept,
    Reject { reason: String },
    StartCooking,
    FinishCooking,
}

pub(crate) fn decide(order: &PlacedOrder, command: &KitchenCommand) -> Result<Vec<OrderEvent>, DomainError> {
    let (customer_id, store_id) = (order.customer_id.clone(), order.store_id.clone());
    let (required, event) = match command {
        KitchenCommand::Accept => (OrderStatus::Placed, OrderEvent::OrderAccepted { customer_id, store_id }),
        KitchenCommand::Reject { reason } => {
            let reason = reason.trim();
            ensure(!reason.is_empty(), || "a rejection needs a reason for the customer".into())?;
            ensure(reason.chars().count() <= MAX_REASON_LEN, || format!("reason must be at most {MAX_REASON_LEN} characters"))?;
            (OrderStatus::Placed, OrderEvent::OrderRejected { customer_id, store_id, reason: reason.to_owned() })
        }
        KitchenCommand::StartCooking => (
            OrderStatus::Accepted,
            OrderEvent::CookingStarted { customer_id, store_id, region: order.region.clone(), address: order.address.clone() },
        ),
        KitchenCommand::FinishCooking => (
            OrderStatus::Cooking,
            OrderEvent::CookingFinished { customer_id, store_id, region: order.region.clone(), address: order.address.clone() },
        ),
    };
    if order.status != required {
        return Err(DomainError::conflict(format!(
            "cannot {} an order that is {} (it must be {})",
            verb(command),
            status_word(order.status),
            status_word(required)
        )));
    }
    Ok(vec![event])
}

fn verb(command: &KitchenCommand) -> &'static str {
    match command {
        KitchenCommand::Accept => "accept",
        KitchenCommand::Reject { .. } => "reject",
        KitchenCommand::StartCooking => "start cooking",
        KitchenCommand::FinishCooking => "finish cooking",
    }
}

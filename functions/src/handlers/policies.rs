//! The policy Lambdas: each turns one kind of event into its consequence.
//! Delivery is at least once and in any order; every consequence is
//! idempotent, so a repeated event changes nothing more.

use crate::command::{CommandError, execute, load, stream_write};
use crate::deps::Deps;
use crate::ports::StoreError;
use crate::registry::{BusEvent, HandlerError, decode};
use chrono::Utc;
use domain::delivery::Delivery;
use domain::ordering::Order;
use domain::payment::Payment;
use domain::policy::{self, Issued};
use domain::{Envelope, Metadata};

fn metadata<C>(cause: &Envelope, issued: &Issued<C>) -> Metadata {
    Metadata { correlation_id: cause.correlation_id.clone(), causation_id: issued.command_id.clone(), time: Utc::now() }
}

/// Rejected or cancelled: return the customer's money, exactly once.
pub async fn refund_payment(deps: &Deps, event: &BusEvent) -> Result<(), HandlerError> {
    let (envelope, event) = decode(event)?;
    let Some(issued) = policy::refund_payment(envelope, &event) else { return Ok(()) };
    let meta = metadata(envelope, &issued);
    for _ in 0..=deps.settings.conflict_retries {
        let mut payment = load::<Payment>(deps.events.as_ref(), &issued.aggregate_id).await.map_err(CommandError::from)?;
        let expected = payment.version;
        let decided = payment.execute(&issued.command).map_err(CommandError::from)?;
        let (Some(charge), false) = (&payment.state.charge, decided.is_empty()) else {
            tracing::info!(order_id = issued.aggregate_id, "already refunded");
            return Ok(());
        };
        // The processor refunds a charge once however often asked, so a
        // retry after a lost race or a crash here never pays back twice.
        deps.payments.refund(&charge.charge_id, charge.amount).await?;
        let write = stream_write(&issued.aggregate_id, expected, &payment, &decided, &meta, deps.settings.snapshot_every);
        match deps.events.append(vec![write]).await {
            Ok(()) => {
                tracing::info!(order_id = issued.aggregate_id, amount = %charge.amount, "payment refunded");
                return Ok(());
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(error) => return Err(CommandError::from(error).into()),
        }
    }
    Err(CommandError::Contended(format!("{} {}", <Payment as domain::Aggregate>::TYPE, issued.aggregate_id)).into())
}

/// Cooking started or finished: open the delivery, mark the food ready.
pub async fn dispatch_delivery(deps: &Deps, event: &BusEvent) -> Result<(), HandlerError> {
    let (envelope, event) = decode(event)?;
    let Some(issued) = policy::dispatch_delivery(envelope, &event) else { return Ok(()) };
    let meta = metadata(envelope, &issued);
    execute::<Delivery>(deps, &issued.aggregate_id, &meta, |_| Ok(issued.command.clone())).await?;
    Ok(())
}

/// The rider's progress becomes the order's status.
pub async fn track_delivery(deps: &Deps, event: &BusEvent) -> Result<(), HandlerError> {
    let (envelope, event) = decode(event)?;
    let Some(issued) = policy::track_delivery(envelope, &event) else { return Ok(()) };
    let meta = metadata(envelope, &issued);
    execute::<Order>(deps, &issued.aggregate_id, &meta, |_| Ok(issued.command.clone())).await?;
    Ok(())
}

/// Every status change messages the customer once.
pub async fn notify_customer(deps: &Deps, event: &BusEvent) -> Result<(), HandlerError> {
    let (envelope, event) = decode(event)?;
    let Some(notification) = policy::notify_customer(envelope, &event) else { return Ok(()) };
    let sent = deps.notifier.notify(&notification).await?;
    tracing::info!(customer_id = %notification.customer_id, event_type = notification.event_type, ?sent, "customer notified");
    Ok(())
}

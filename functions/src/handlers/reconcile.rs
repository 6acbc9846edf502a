//! The sweep that closes the gap between a charge and its order. place-order
//! charges first and stores the order second; a process that dies in between
//! (a crash, a Lambda timeout, a processor answering after we gave up) leaves
//! a charge with no order and never runs its compensating refund. Every few
//! minutes this lists the processor's recent charges and refunds each one
//! whose order was never stored.

use crate::command::{CommandError, load};
use crate::deps::Deps;
use crate::ports::ChargeRecord;
use crate::registry::{HandlerError, ScheduleEvent};
use chrono::{DateTime, Utc};
use domain::ordering::Order;

/// On a schedule: refunds every charge older than the grace period, within
/// the window, that is not refunded and has no order. Idempotent: the
/// processor lists a refunded charge as refunded and refunds a charge once.
pub async fn reconcile_payments(deps: &Deps, _schedule: &ScheduleEvent) -> Result<(), HandlerError> {
    let settings = &deps.settings.reconcile;
    let now = Utc::now();
    let ago = |age| {
        let age = chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
        now.checked_sub_signed(age).unwrap_or(DateTime::<Utc>::MIN_UTC)
    };
    let charges = deps.payments.charges_between(ago(settings.window), ago(settings.grace)).await?;
    let mut refunded = 0;
    let mut first_failure = None;
    for charge in charges.iter().filter(|charge| !charge.refunded) {
        match refund_if_orderless(deps, charge).await {
            Ok(true) => refunded += 1,
            Ok(false) => {}
            // One charge failing must not stop the others; the run fails at
            // the end so the next one (and the error alarm) picks it up.
            Err(error) => {
                tracing::error!(order_id = charge.order_id.0, charge_id = charge.charge_id, %error, "cannot reconcile a charge");
                first_failure.get_or_insert(error);
            }
        }
    }
    tracing::info!(listed = charges.len(), refunded, "payments reconciled");
    first_failure.map_or(Ok(()), Err)
}

/// The order and its payment are stored in one atomic write, so an order
/// stream that is still empty means the charge paid for nothing.
async fn refund_if_orderless(deps: &Deps, charge: &ChargeRecord) -> Result<bool, HandlerError> {
    let order = load::<Order>(deps.events.as_ref(), &charge.order_id.0).await.map_err(CommandError::from)?;
    if order.version > 0 {
        return Ok(false);
    }
    deps.payments.refund(&charge.charge_id, charge.amount).await?;
    tracing::warn!(order_id = charge.order_id.0, charge_id = charge.charge_id, amount = %charge.amount, "charge without an order refunded");
    Ok(true)
}

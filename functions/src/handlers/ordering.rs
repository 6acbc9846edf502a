//! Customers place orders (paying synchronously) and may cancel them until
//! cooking starts.

use crate::command::{execute, load, stream_write};
use crate::deps::Deps;
use crate::http::{self, Problem, Request, Response, Role};
use crate::ports::{ChargeRequest, StoreError};
use domain::catalog::Store;
use domain::ordering::{ApprovedPayment, Order, OrderCommand, OrderStatus, PlaceOrder};
use domain::payment::{Payment, PaymentCommand};
use domain::{Aggregate, CustomerId, MenuItemId, Money, OrderId, Region, StoreId, Versioned};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ItemInput {
    menu_id: String,
    quantity: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PlaceOrderInput {
    store_id: String,
    items: Vec<ItemInput>,
    region: String,
    address: String,
    /// The card processor's token; the order never sees card data.
    payment_token: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderAnswer {
    order_id: OrderId,
    status: OrderStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<Money>,
}

/// `POST /orders`: prices the items at today's menu, charges the customer,
/// then stores the payment and the order in one atomic write. A charge whose
/// order could not be stored is refunded before answering.
pub async fn place_order(deps: &Deps, request: Request) -> Result<Response, Problem> {
    let caller = http::caller(&request)?;
    caller.require(Role::Customer)?;
    let input: PlaceOrderInput = http::body(&request)?;
    if input.payment_token.trim().is_empty() {
        return Err(Problem::bad_request("paymentToken is required"));
    }
    if input.store_id.len() > http::MAX_ID_LEN {
        return Err(Problem::not_found("no store has so long an id"));
    }
    let store = load::<Store>(deps.events.as_ref(), &input.store_id).await?;
    if store.state.profile.is_none() {
        return Err(Problem::not_found(format!("store {} not found", input.store_id)));
    }
    let items: Vec<(MenuItemId, u32)> = input.items.iter().map(|item| (MenuItemId(item.menu_id.clone()), item.quantity)).collect();
    let region = Region(input.region.trim().to_owned());
    let (lines, total) = store.state.quote(&region, &items)?;

    // Under an Idempotency-Key a re-run after a crash names the same order, so
    // the processor (keyed by order id) hands back the same charge.
    let order_id = crate::idempotency::derived_id("order").unwrap_or_else(|| http::new_id("order"));
    let meta = http::metadata(&request, &order_id);
    let customer_id = CustomerId(caller.id);
    let place = |charge_id: String| {
        OrderCommand::Place(PlaceOrder {
            customer_id: customer_id.clone(),
            store_id: StoreId(input.store_id.clone()),
            lines: lines.clone(),
            region: region.clone(),
            address: input.address.clone(),
            payment: ApprovedPayment { charge_id, amount: total },
        })
    };
    // Decide before charging: an order the domain would refuse is never paid for.
    Order::default().decide(&place(String::new()))?;

    let charge = ChargeRequest {
        order_id: OrderId(order_id.clone()),
        customer_id: customer_id.clone(),
        token: input.payment_token.clone(),
        amount: total,
    };
    let receipt = deps.payments.charge(&charge).await?;

    let mut order = Versioned::<Order>::default();
    let mut payment = Versioned::<Payment>::default();
    let stored = async {
        let order_events = order.execute(&place(receipt.charge_id.clone()))?;
        let payment_events = payment.execute(&PaymentCommand::Approve {
            customer_id: customer_id.clone(),
            charge_id: receipt.charge_id.clone(),
            amount: total,
        })?;
        let every = deps.settings.snapshot_every;
        let writes = vec![
            stream_write(&order_id, 0, &payment, &payment_events, &meta, every),
            stream_write(&order_id, 0, &order, &order_events, &meta, every),
        ];
        match deps.events.append(writes).await {
            Err(StoreError::Conflict(_)) => Err(Problem::new(409, "order id taken")),
            appended => appended.map_err(Problem::from),
        }
    };
    if let Err(problem) = stored.await {
        // A re-run of a request whose order was stored: answer as the first
        // run did. Unreadable, it is not refunded: it may pay for that order.
        if problem.status == 409 {
            let stored = load::<Order>(deps.events.as_ref(), &order_id).await?.state.placed;
            if let Some(placed) = stored.filter(|placed| placed.charge_id == receipt.charge_id) {
                let answer = OrderAnswer { order_id: OrderId(order_id.clone()), status: OrderStatus::Placed, total: Some(placed.total) };
                return Ok(http::created(&format!("/orders/{order_id}"), &answer));
            }
        }
        compensate(deps, &receipt.charge_id, total).await;
        return Err(match problem.status {
            // A fresh order id cannot conflict; if it did, say so plainly.
            409 => Problem::from(StoreError::Unavailable("order id collision".into())),
            _ => problem,
        });
    }
    tracing::info!(order_id, %total, "order placed");
    Ok(http::created(
        &format!("/orders/{order_id}"),
        &OrderAnswer { order_id: OrderId(order_id.clone()), status: OrderStatus::Placed, total: Some(total) },
    ))
}

/// Returns a charge whose order was never stored, so no customer pays for
/// nothing. If the refund fails too, the log line is the trail to follow up.
async fn compensate(deps: &Deps, charge_id: &str, amount: Money) {
    match deps.payments.refund(charge_id, amount).await {
        Ok(()) => {
            tracing::warn!(charge_id, "order not stored; charge refunded");
            crate::idempotency::retire_derived_ids();
        }
        Err(error) => tracing::error!(charge_id, %error, "order not stored and the refund failed: reconcile-payments will refund it"),
    }
}

/// `POST /orders/{orderId}/cancel`
pub async fn cancel_order(deps: &Deps, request: Request) -> Result<Response, Problem> {
    let caller = http::caller(&request)?;
    caller.require(Role::Customer)?;
    let order_id = http::path(&request, "orderId")?;
    let meta = http::metadata(&request, order_id);
    let command = OrderCommand::Cancel { customer_id: CustomerId(caller.id) };
    let executed = execute::<Order>(deps, order_id, &meta, |_| Ok(command.clone())).await?;
    Ok(http::json(200, &order_answer(order_id, &executed.state.state)))
}

pub(crate) fn order_answer(order_id: &str, order: &Order) -> impl Serialize {
    OrderAnswer {
        order_id: OrderId(order_id.to_owned()),
        status: order.placed.as_ref().map_or(OrderStatus::Placed, |placed| placed.status),
        total: None,
    }
}

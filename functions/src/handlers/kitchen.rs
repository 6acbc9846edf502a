//! The store owner works the order: accept or reject, start and finish cooking.

use super::ordering::order_answer;
use super::owned_store;
use crate::command::execute;
use crate::deps::Deps;
use crate::http::{self, Problem, Request, Response, Role};
use domain::StoreId;
use domain::kitchen::KitchenCommand;
use domain::ordering::{Order, OrderCommand};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectInput {
    reason: String,
}

/// `POST /stores/{storeId}/orders/{orderId}/accept`
pub async fn accept_order(deps: &Deps, request: Request) -> Result<Response, Problem> {
    work_order(deps, &request, KitchenCommand::Accept).await
}

/// `POST /stores/{storeId}/orders/{orderId}/reject`
pub async fn reject_order(deps: &Deps, request: Request) -> Result<Response, Problem> {
    // Who is asking comes before what they sent: 401/403 before 400.
    http::caller(&request)?.require(Role::Owner)?;
    let input: RejectInput = http::body(&request)?;
    work_order(deps, &request, KitchenCommand::Reject { reason: input.reason }).await
}

/// `POST /stores/{storeId}/orders/{orderId}/start-cooking`
pub async fn start_cooking(deps: &Deps, request: Request) -> Result<Response, Problem> {
    work_order(deps, &request, KitchenCommand::StartCooking).await
}

/// `POST /stores/{storeId}/orders/{orderId}/finish-cooking`
pub async fn finish_cooking(deps: &Deps, request: Request) -> Result<Response, Problem> {
    work_order(deps, &request, KitchenCommand::FinishCooking).await
}

async fn work_order(deps: &Deps, request: &Request, command: KitchenCommand) -> Result<Response, Problem> {
    let caller = http::caller(request)?;
    let store_id = http::path(request, "storeId")?;
    let order_id = http::path(request, "orderId")?;
    owned_store(deps, &caller, store_id).await?;
    let meta = http::metadata(request, order_id);
    let command = OrderCommand::Kitchen { store_id: StoreId(store_id.to_owned()), command };
    let executed = execute::<Order>(deps, order_id, &meta, |_| Ok(command.clone())).await?;
    Ok(http::json(200, &order_answer(order_id, &executed.state.state)))
}

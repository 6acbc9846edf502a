//! Riders pick up deliveries and finish them: delivered, or an accident.

use crate::command::execute;
use crate::deps::Deps;
use crate::http::{self, Problem, Request, Response, Role};
use domain::delivery::{Delivery, DeliveryCommand, DeliveryState};
use domain::{OrderId, RiderId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccidentInput {
    description: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryAnswer {
    order_id: OrderId,
    #[serde(flatten)]
    state: Option<DeliveryState>,
}

/// `POST /deliveries/{orderId}/pick`
pub async fn pick_delivery(deps: &Deps, request: Request) -> Result<Response, Problem> {
    ride(deps, &request, |rider_id| DeliveryCommand::Pick { rider_id }).await
}

/// `POST /deliveries/{orderId}/complete`
pub async fn complete_delivery(deps: &Deps, request: Request) -> Result<Response, Problem> {
    ride(deps, &request, |rider_id| DeliveryCommand::Complete { rider_id }).await
}

/// `POST /deliveries/{orderId}/accident`
pub async fn report_accident(deps: &Deps, request: Request) -> Result<Response, Problem> {
    // Who is asking comes before what they sent: 401/403 before 400.
    http::caller(&request)?.require(Role::Rider)?;
    let input: AccidentInput = http::body(&request)?;
    ride(deps, &request, |rider_id| DeliveryCommand::ReportAccident { rider_id, description: input.description.clone() }).await
}

async fn ride(deps: &Deps, request: &Request, command: impl Fn(RiderId) -> DeliveryCommand) -> Result<Response, Problem> {
    let caller = http::caller(request)?;
    caller.require(Role::Rider)?;
    let order_id = http::path(request, "orderId")?;
    let meta = http::metadata(request, order_id);
    let command = command(RiderId(caller.id));
    let executed = execute::<Delivery>(deps, order_id, &meta, |_| Ok(command.clone())).await?;
    let state = executed.state.state.opened.map(|delivery| delivery.state);
    Ok(http::json(200, &DeliveryAnswer { order_id: OrderId(order_id.to_owned()), state }))
}

//! Every Lambda by name: the `FUNCTION` variable each function of
//! template.yaml sets. The local runner and the Lambda bootstrap both look
//! functions up here.

use crate::command::CommandError;
use crate::deps::Deps;
use crate::handlers::{catalog, delivery, kitchen, operations, ordering, policies, projections, publisher, queries, reconcile};
use crate::http::{Problem, Request, Response};
use crate::ports::{NotifyError, PaymentError, ViewError};
use aws_lambda_events::event::dynamodb::Event as StreamBatch;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use domain::{DecodeError, Envelope, Event};
use serde_json::Value;
use thiserror::Error;

pub use ports::BoxFuture;
pub type HttpHandler = for<'a> fn(&'a Deps, Request) -> BoxFuture<'a, Result<Response, Problem>>;
pub type EventHandler = for<'a> fn(&'a Deps, &'a BusEvent) -> BoxFuture<'a, Result<(), HandlerError>>;
pub type ScheduledHandler = for<'a> fn(&'a Deps, &'a ScheduleEvent) -> BoxFuture<'a, Result<(), HandlerError>>;

/// The EventBridge event a rule hands its target: its detail is the
/// envelope of one of our events, read as the event arrives (by the Lambda
/// runtime, or by the local bus once for all of an event's targets).
pub type BusEvent = EventBridgeEvent<Envelope>;

/// What an EventBridge schedule sends: its detail is empty.
pub type ScheduleEvent = EventBridgeEvent<Value>;
pub type StreamHandler = for<'a> fn(&'a Deps, StreamBatch) -> BoxFuture<'a, Result<DynamoDbEventResponse, HandlerError>>;
pub type InvokeHandler = for<'a> fn(&'a Deps, Value) -> BoxFuture<'a, Result<Value, HandlerError>>;

#[derive(Clone, Copy)]
pub enum Handler {
    /// Behind an API Gateway HTTP API route.
    Http(HttpHandler),
    /// The target of an EventBridge rule.
    Event(EventHandler),
    /// Fed by the event table's DynamoDB stream.
    Stream(StreamHandler),
    /// Invoked by hand (`aws lambda invoke`) with a JSON payload; answers
    /// with a JSON report. No route, rule or stream feeds it.
    Invoke(InvokeHandler),
    /// Run by an EventBridge schedule (`Type: Schedule`), whose event
    /// carries no envelope.
    Scheduled(ScheduledHandler),
}

/// Why an event handler failed. Returning it makes Lambda retry the event and,
/// once retries are spent, park it in the dead-letter queue: never dropped.
#[derive(Debug, Error)]
pub enum HandlerError {
    #[error("the event is not a food-delivery envelope: {0}")]
    BadEvent(String),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    View(#[from] ViewError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    /// A hand-invoked function's payload is not what it takes.
    #[error("bad payload: {0}")]
    BadPayload(String),
    #[error(transparent)]
    Rebuild(#[from] crate::rebuild::RebuildError),
    #[error("redrive failed: {0}")]
    Redrive(String),
}

/// The envelope an EventBridge event carries as its detail, and its event.
pub fn decode(event: &BusEvent) -> Result<(&Envelope, Event), HandlerError> {
    let envelope = &event.detail;
    crate::logging::correlate(&envelope.correlation_id);
    Ok((envelope, envelope.decode()?))
}

macro_rules! boxed {
    ($kind:ident, $function:path, $input:ty, $output:ty) => {{
        fn call<'a>(deps: &'a Deps, input: $input) -> BoxFuture<'a, $output> {
            Box::pin($function(deps, input))
        }
        Handler::$kind(call)
    }};
}
macro_rules! http {
    ($function:path) => {
        boxed!(Http, $function, Request, Result<Response, Problem>)
    };
}
macro_rules! invoke {
    ($function:path) => {
        boxed!(Invoke, $function, Value, Result<Value, HandlerError>)
    };
}
macro_rules! event {
    ($function:path) => {
        event!(Event, BusEvent, $function)
    };
    ($kind:ident, $input:ty, $function:path) => {{
        fn call<'a>(deps: &'a Deps, event: &'a $input) -> BoxFuture<'a, Result<(), HandlerError>> {
            Box::pin($function(deps, event))
        }
        Handler::$kind(call)
    }};
}

/// The name of every function, as `FUNCTION` gives it in `template.yaml`.
pub const FUNCTIONS: &[&str] = &[
    "register-store",
    "change-menu",
    "open-store",
    "close-store",
    "place-order",
    "cancel-order",
    "accept-order",
    "reject-order",
    "start-cooking",
    "finish-cooking",
    "pick-delivery",
    "complete-delivery",
    "report-accident",
    "queries",
    "publish-events",
    "refund-payment",
    "dispatch-delivery",
    "track-delivery",
    "notify-customer",
    "project-order-status",
    "project-store-queue",
    "project-delivery-board",
    "project-popular-menus",
    "project-catalog",
    "rebuild-views",
    "redrive-dead-letters",
    "reconcile-payments",
];

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "register-store" => http!(catalog::register_store),
        "change-menu" => http!(catalog::change_menu),
        "open-store" => http!(catalog::open_store),
        "close-store" => http!(catalog::close_store),
        "place-order" => http!(ordering::place_order),
        "cancel-order" => http!(ordering::cancel_order),
        "accept-order" => http!(kitchen::accept_order),
        "reject-order" => http!(kitchen::reject_order),
        "start-cooking" => http!(kitchen::start_cooking),
        "finish-cooking" => http!(kitchen::finish_cooking),
        "pick-delivery" => http!(delivery::pick_delivery),
        "complete-delivery" => http!(delivery::complete_delivery),
        "report-accident" => http!(delivery::report_accident),
        "queries" => http!(queries::queries),
        "publish-events" => boxed!(Stream, publisher::publish_events, StreamBatch, Result<DynamoDbEventResponse, HandlerError>),
        "refund-payment" => event!(policies::refund_payment),
        "dispatch-delivery" => event!(policies::dispatch_delivery),
        "track-delivery" => event!(policies::track_delivery),
        "notify-customer" => event!(policies::notify_customer),
        "project-order-status" => event!(projections::project_order_status),
        "project-store-queue" => event!(projections::project_store_queue),
        "project-delivery-board" => event!(projections::project_delivery_board),
        "project-popular-menus" => event!(projections::project_popular_menus),
        "project-catalog" => event!(projections::project_catalog),
        "rebuild-views" => invoke!(operations::rebuild_views),
        "redrive-dead-letters" => invoke!(operations::redrive_dead_letters),
        "reconcile-payments" => event!(Scheduled, ScheduleEvent, reconcile::reconcile_payments),
        _ => return None,
    })
}

/// Runs an HTTP function as an invocation whose lines carry its name and,
/// once known, the correlation id (`logging::invocation`); errors become
/// problem responses. A command sent with an Idempotency-Key runs once per
/// key (see `idempotency`).
pub async fn invoke_http(function: &str, handler: HttpHandler, deps: &Deps, request: Request) -> Response {
    let run = |request| async move { crate::http::respond(handler(deps, request).await) };
    crate::logging::invocation(function, crate::idempotency::guard(deps, request, run)).await
}

/// Runs an event function (a rule's target or a schedule's) as an
/// invocation whose lines carry its name and, once decoded, the correlation id.
pub async fn invoke_event<E>(
    function: &str,
    handler: for<'a> fn(&'a Deps, &'a E) -> BoxFuture<'a, Result<(), HandlerError>>,
    deps: &Deps,
    event: &E,
) -> Result<(), HandlerError> {
    logged_invocation(function, "event handling failed; it will be retried", handler(deps, event)).await
}

pub async fn invoke_stream(
    function: &str,
    handler: StreamHandler,
    deps: &Deps,
    batch: StreamBatch,
) -> Result<DynamoDbEventResponse, HandlerError> {
    crate::logging::invocation(function, handler(deps, batch)).await
}

/// Runs a hand-invoked function; a failure is logged with its name.
pub async fn invoke_operation(function: &str, handler: InvokeHandler, deps: &Deps, payload: Value) -> Result<Value, HandlerError> {
    logged_invocation(function, "the operation failed", handler(deps, payload)).await
}

/// Runs `work` as an invocation of `function`, and logs its failure, if it
/// fails, as an error of that invocation with `failed` for the message.
async fn logged_invocation<T>(
    function: &str,
    failed: &str,
    work: impl Future<Output = Result<T, HandlerError>>,
) -> Result<T, HandlerError> {
    crate::logging::invocation(function, async {
        let outcome = work.await;
        if let Err(error) = &outcome {
            tracing::error!(%error, "{failed}");
        }
        outcome
    })
    .await
}

//! The read side: every GET route, answered from the read models. One Lambda
//! serves them all, dispatching on API Gateway's route key.

use super::catalog::MenuEntry;
use super::owned_store;
use crate::deps::Deps;
use crate::http::{self, Caller, Problem, Request, Response, Role};
use crate::ports::{ViewDoc, ViewError, ViewStore};
use chrono::{DateTime, Utc};
use domain::catalog::MAX_REGION_LEN;
use domain::ids::{CustomerId, OrderId, Region, RiderId, StoreId};
use domain::money::Money;
use domain::ordering::{OrderLine, OrderStatus};
use domain::projection::Projection;
use domain::projection::catalog::{CatalogProjection, StoreListing};
use domain::projection::delivery_board::{BoardEntry, DeliveryBoardProjection};
use domain::projection::order_status::{OrderStatusProjection, OrderStatusView, Refund, TimelineEntry};
use domain::projection::popular_menus::{self, OrderContribution, PopularMenusProjection};
use domain::projection::store_queue::{QueuedOrder, StoreQueueProjection};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub async fn queries(deps: &Deps, request: Request) -> Result<Response, Problem> {
    let caller = http::caller(&request)?;
    let route = request.route_key.clone().or_else(|| request.request_context.route_key.clone()).unwrap_or_default();
    let body = match route.as_str() {
        "GET /stores" => stores_in_region(deps, &request).await?,
        "GET /stores/{storeId}" => store(deps, http::path(&request, "storeId")?).await?,
        "GET /orders" => my_orders(deps, &caller).await?,
        "GET /orders/{orderId}" => {
            let order = order(deps, &caller, http::path(&request, "orderId")?).await?;
            return Ok(http::json(200, &OrderDetail::of(&order)));
        }
        "GET /stores/{storeId}/orders" => store_queue(deps, &caller, &request).await?,
        "GET /deliveries" => open_deliveries(deps, &caller, &request).await?,
        "GET /stores/{storeId}/popular-menus" => popular_menus(deps, http::path(&request, "storeId")?).await?,
        other => return Err(Problem::not_found(format!("no query route {other}"))),
    };
    Ok(http::json(200, &body))
}

async fn get<V: DeserializeOwned>(views: &dyn ViewStore, view: &str, key: &str) -> Result<Option<V>, ViewError> {
    views.get(view, key).await?.map(|doc| parse(&doc)).transpose()
}

async fn all<V: DeserializeOwned>(views: &dyn ViewStore, view: &str, partition: &str) -> Result<Vec<V>, ViewError> {
    views.query(view, partition).await?.iter().map(parse).collect()
}

fn parse<V: DeserializeOwned>(doc: &ViewDoc) -> Result<V, ViewError> {
    doc.decode().map_err(|e| ViewError::Corrupt(e.to_string()))
}

fn required<'a>(request: &'a Request, name: &str) -> Result<&'a str, Problem> {
    let value = http::query(request, name).ok_or_else(|| Problem::bad_request(format!("query parameter {name} is required")))?;
    // Only `region` is required; no store registers a longer one.
    if value.chars().count() > MAX_REGION_LEN {
        return Err(Problem::bad_request(format!("query parameter {name} must be at most {MAX_REGION_LEN} characters")));
    }
    Ok(value)
}

fn listing(store: &StoreListing) -> Value {
    json!({
        "storeId": store.store_id,
        "name": store.name,
        "region": store.region,
        "open": store.open.value,
        "menu": store.menu.value.iter().map(MenuEntry::from).collect::<Vec<_>>(),
    })
}

async fn stores_in_region(deps: &Deps, request: &Request) -> Result<Value, Problem> {
    let region = required(request, "region")?;
    let stores: Vec<StoreListing> = all(deps.views.as_ref(), CatalogProjection::NAME, region).await?;
    let listed: Vec<Value> = stores.iter().filter(|store| store.is_listed()).map(listing).collect();
    Ok(json!({ "region": region, "stores": listed }))
}

async fn store(deps: &Deps, store_id: &str) -> Result<Value, Problem> {
    let store: Option<StoreListing> = get(deps.views.as_ref(), CatalogProjection::NAME, store_id).await?;
    store
        .filter(StoreListing::is_listed)
        .map(|store| listing(&store))
        .ok_or_else(|| Problem::not_found(format!("store {store_id} not found")))
}

fn order_summary(order: &OrderStatusView) -> Value {
    json!({
        "orderId": order.order_id,
        "storeId": order.store_id,
        "status": order.status,
        "total": order.summary.as_ref().map(|s| s.total),
        "placedAt": order.summary.as_ref().map(|s| s.placed_at),
    })
}

async fn my_orders(deps: &Deps, caller: &Caller) -> Result<Value, Problem> {
    caller.require(Role::Customer)?;
    let mut orders: Vec<OrderStatusView> = all(deps.views.as_ref(), OrderStatusProjection::NAME, &caller.id).await?;
    orders.sort_by(|a, b| b.summary.as_ref().map(|s| s.placed_at).cmp(&a.summary.as_ref().map(|s| s.placed_at)));
    Ok(json!({ "orders": orders.iter().map(order_summary).collect::<Vec<_>>() }))
}

/// Its customer may read an order, and so may the owner of its store.
async fn order(deps: &Deps, caller: &Caller, order_id: &str) -> Result<OrderStatusView, Problem> {
    let order: OrderStatusView = get(deps.views.as_ref(), OrderStatusProjection::NAME, order_id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("order {order_id} not found")))?;
    let allowed = match caller.role {
        Role::Customer => order.customer_id.0 == caller.id,
        Role::Owner => owned_store(deps, caller, &order.store_id.0).await.is_ok(),
        Role::Rider => false,
    };
    if !allowed {
        return Err(Problem::forbidden("this order is not yours to see"));
    }
    Ok(order)
}

/// One order as `GET /orders/{orderId}` answers it. Written straight from
/// the view, not through a `Value`: it is the route customers poll.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderDetail<'a> {
    order_id: &'a OrderId,
    customer_id: &'a CustomerId,
    store_id: &'a StoreId,
    status: Option<OrderStatus>,
    lines: Option<&'a [OrderLine]>,
    total: Option<Money>,
    region: Option<&'a Region>,
    address: Option<&'a str>,
    #[serde(serialize_with = "domain::time::serialize_optional")]
    placed_at: Option<DateTime<Utc>>,
    rider_id: Option<&'a RiderId>,
    timeline: &'a [TimelineEntry],
    refund: Option<&'a Refund>,
}

impl<'a> OrderDetail<'a> {
    fn of(order: &'a OrderStatusView) -> OrderDetail<'a> {
        let summary = order.summary.as_ref();
        OrderDetail {
            order_id: &order.order_id,
            customer_id: &order.customer_id,
            store_id: &order.store_id,
            status: order.status,
            lines: summary.map(|s| s.lines.as_slice()),
            total: summary.map(|s| s.total),
            region: summary.map(|s| &s.region),
            address: summary.map(|s| s.address.as_str()),
            placed_at: summary.map(|s| s.placed_at),
            rider_id: order.rider_id.as_ref(),
            timeline: &order.timeline,
            refund: order.refund.as_ref(),
        }
    }
}

/// The kitchen's queue: active orders, oldest first; `?status=all` for every order.
async fn store_queue(deps: &Deps, caller: &Caller, request: &Request) -> Result<Value, Problem> {
    let store_id = http::path(request, "storeId")?;
    owned_store(deps, caller, store_id).await?;
    let everything = http::query(request, "status") == Some("all");
    let mut orders: Vec<QueuedOrder> = all(deps.views.as_ref(), StoreQueueProjection::NAME, store_id).await?;
    orders.retain(|order| everything || order.is_active());
    orders.sort_by_key(|order| order.summary.as_ref().map(|s| s.placed_at));
    let orders: Vec<Value> = orders
        .iter()
        .map(|order| {
            json!({
                "orderId": order.order_id,
                "customerId": order.customer_id,
                "status": order.status.value,
                "lines": order.summary.as_ref().map(|s| &s.lines),
                "total": order.summary.as_ref().map(|s| s.total),
                "address": order.summary.as_ref().map(|s| &s.address),
                "placedAt": order.summary.as_ref().map(|s| s.placed_at),
            })
        })
        .collect();
    Ok(json!({ "storeId": store_id, "orders": orders }))
}

async fn open_deliveries(deps: &Deps, caller: &Caller, request: &Request) -> Result<Value, Problem> {
    caller.require(Role::Rider)?;
    let region = required(request, "region")?;
    let entries: Vec<BoardEntry> = all(deps.views.as_ref(), DeliveryBoardProjection::NAME, region).await?;
    let open: Vec<Value> = entries
        .iter()
        .filter(|entry| entry.is_open())
        .filter_map(|entry| {
            let details = entry.details.as_ref()?;
            Some(json!({
                "orderId": entry.order_id,
                "storeId": details.store_id,
                "address": details.address,
                "foodReady": entry.food_ready,
            }))
        })
        .collect();
    Ok(json!({ "region": region, "deliveries": open }))
}

async fn popular_menus(deps: &Deps, store_id: &str) -> Result<Value, Problem> {
    let contributions: Vec<OrderContribution> = all(deps.views.as_ref(), PopularMenusProjection::NAME, store_id).await?;
    Ok(json!({ "storeId": store_id, "items": popular_menus::rank(&contributions) }))
}

//! The projection Lambdas: fold each event into its read model.

use crate::deps::Deps;
use crate::ports::{ViewDoc, ViewError};
use crate::registry::{BusEvent, HandlerError, decode};
use domain::projection::Projection;
use domain::projection::catalog::CatalogProjection;
use domain::projection::delivery_board::DeliveryBoardProjection;
use domain::projection::order_status::OrderStatusProjection;
use domain::projection::popular_menus::PopularMenusProjection;
use domain::projection::store_queue::StoreQueueProjection;
use domain::{Envelope, Event};

pub async fn project_order_status(deps: &Deps, event: &BusEvent) -> Result<(), HandlerError> {
    project::<OrderStatusProjection>(deps, event).await
}
pub async fn project_store_queue(deps: &Deps, event: &BusEvent) -> Result<(), HandlerError> {
    project::<StoreQueueProjection>(deps, event).await
}
pub async fn project_delivery_board(deps: &Deps, event: &BusEvent) -> Result<(), HandlerError> {
    project::<DeliveryBoardProjection>(deps, event).await
}
pub async fn project_popular_menus(deps: &Deps, event: &BusEvent) -> Result<(), HandlerError> {
    project::<PopularMenusProjection>(deps, event).await
}
pub async fn project_catalog(deps: &Deps, event: &BusEvent) -> Result<(), HandlerError> {
    project::<CatalogProjection>(deps, event).await
}

async fn project<P: Projection>(deps: &Deps, event: &BusEvent) -> Result<(), HandlerError> {
    let (envelope, event) = decode(event)?;
    apply::<P>(deps, envelope, &event).await
}

/// Read, fold, write back guarded by the revision read; on a concurrent
/// write, read again. An event that changes nothing writes nothing.
pub async fn apply<P: Projection>(deps: &Deps, envelope: &Envelope, event: &Event) -> Result<(), HandlerError> {
    let Some(key) = P::locate(envelope, event) else { return Ok(()) };
    for _ in 0..=deps.settings.conflict_retries {
        let stored = deps.views.get(P::NAME, &key.key).await?;
        let (revision, view) = match stored {
            Some(doc) => (doc.revision, doc.decode().map_err(|e| ViewError::Corrupt(e.to_string()))?),
            None => (0, P::View::default()),
        };
        let next = P::apply(view.clone(), envelope, event);
        if revision > 0 && next == view {
            return Ok(());
        }
        let body = serde_json::to_string(&next).map_err(|e| ViewError::Corrupt(e.to_string()))?;
        let doc = ViewDoc { key: key.key.clone(), partition: key.partition.clone(), revision: revision + 1, body };
        match deps.views.put(P::NAME, &doc, revision).await {
            Ok(()) => return Ok(()),
            Err(ViewError::Conflict(_)) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ViewError::Conflict(format!("{}/{} kept changing", P::NAME, key.key)).into())
}

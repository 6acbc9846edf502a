//! Rebuilding read models from the event store: every stored event is folded
//! through a view's projection from scratch, and each document the fold makes
//! replaces the stored one (a put at the stored revision, so a live update
//! that races it makes it read again and retry). A document that is already
//! right is left alone.
//!
//! What it cannot do, and how to cover it:
//! - Events stored while it runs may be projected live onto a document before
//!   the rebuild overwrites it with a fold that misses them. The report's
//!   `startedAt` says from when to replay (EventBridge archive or
//!   `POST /local/replay`): projections take repeats, so that is safe.
//! - A document no event leads to any more (a stray key) is not deleted: the
//!   view store has no way to list a whole view.
//! - The fold of a view is held in memory: about a kilobyte per document.

use crate::deps::Deps;
use crate::ports::{StoreError, ViewDoc, ViewError, ViewStore};
use chrono::{DateTime, Utc};
use domain::projection::Projection;
use domain::projection::catalog::CatalogProjection;
use domain::projection::delivery_board::DeliveryBoardProjection;
use domain::projection::order_status::OrderStatusProjection;
use domain::projection::popular_menus::PopularMenusProjection;
use domain::projection::store_queue::StoreQueueProjection;
use domain::{DecodeError, Envelope, Event};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use thiserror::Error;
use tokio::task::JoinSet;

/// Every view, by the name it is stored under.
pub const VIEWS: &[&str] = &[
    OrderStatusProjection::NAME,
    StoreQueueProjection::NAME,
    DeliveryBoardProjection::NAME,
    PopularMenusProjection::NAME,
    CatalogProjection::NAME,
];

/// Events read from the store per page.
const PAGE: usize = 500;
/// Documents written at once: a rebuild on DynamoDB is bound by round trips.
const WRITERS: usize = 16;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Replay from here to cover events stored during the rebuild.
    pub started_at: DateTime<Utc>,
    /// Events read from the store.
    pub events: u64,
    pub views: Vec<Rebuilt>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rebuilt {
    pub view: String,
    /// Documents the events make.
    pub documents: usize,
    /// Of those, the ones that were missing or differed, now written.
    pub rewritten: usize,
}

#[derive(Debug, Error)]
pub enum RebuildError {
    #[error("there is no view {0:?}; the views are {VIEWS:?}")]
    UnknownView(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored event {event_id} does not decode: {error}")]
    Decode { event_id: String, error: DecodeError },
    #[error(transparent)]
    View(#[from] ViewError),
}

/// Rebuilds the named views (every view when `views` is empty) in one pass
/// over the store.
pub async fn rebuild(deps: &Deps, views: &[String]) -> Result<Report, RebuildError> {
    let mut names: Vec<&str> = if views.is_empty() { VIEWS.to_vec() } else { views.iter().map(String::as_str).collect() };
    let mut named = std::collections::HashSet::new();
    names.retain(|name| named.insert(*name));
    let mut folds = names.iter().map(|name| fold_of(name)).collect::<Result<Vec<_>, _>>()?;
    let started_at = Utc::now();
    let (mut events, mut after) = (0, None);
    loop {
        let page = deps.events.read_all(after.as_deref(), PAGE).await?;
        for envelope in &page.events {
            let event = envelope.decode().map_err(|error| RebuildError::Decode { event_id: envelope.event_id.clone(), error })?;
            for fold in &mut folds {
                fold.add(envelope, &event);
            }
        }
        events += page.events.len() as u64;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut rebuilt = Vec::new();
    for fold in &folds {
        let documents = fold.documents()?;
        let count = documents.len();
        let rewritten = write(&deps.views, fold.name(), documents, deps.settings.conflict_retries).await?;
        tracing::info!(view = fold.name(), documents = count, rewritten, "view rebuilt");
        rebuilt.push(Rebuilt { view: fold.name().to_owned(), documents: count, rewritten });
    }
    Ok(Report { started_at, events, views: rebuilt })
}

/// One view's documents as the events make them: (key, partition, body).
trait Fold: Send + Sync {
    fn name(&self) -> &'static str;
    fn add(&mut self, envelope: &Envelope, event: &Event);
    fn documents(&self) -> Result<Vec<(String, String, String)>, ViewError>;
}

/// By key: the partition of the last event that located it, and the view.
struct Folded<P: Projection>(BTreeMap<String, (String, P::View)>);

impl<P: Projection> Fold for Folded<P>
where
    P::View: Send + Sync,
{
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn add(&mut self, envelope: &Envelope, event: &Event) {
        let Some(key) = P::locate(envelope, event) else { return };
        let (partition, view) = self.0.entry(key.key).or_default();
        *partition = key.partition;
        *view = P::apply(std::mem::take(view), envelope, event);
    }

    fn documents(&self) -> Result<Vec<(String, String, String)>, ViewError> {
        self.0
            .iter()
            .map(|(key, (partition, view))| {
                let body = serde_json::to_string(view).map_err(|e| ViewError::Corrupt(format!("{}/{key}: {e}", P::NAME)))?;
                Ok((key.clone(), partition.clone(), body))
            })
            .collect()
    }
}

fn fold_of(name: &str) -> Result<Box<dyn Fold>, RebuildError> {
    Ok(match name {
        OrderStatusProjection::NAME => Box::new(Folded::<OrderStatusProjection>(BTreeMap::new())),
        StoreQueueProjection::NAME => Box::new(Folded::<StoreQueueProjection>(BTreeMap::new())),
        DeliveryBoardProjection::NAME => Box::new(Folded::<DeliveryBoardProjection>(BTreeMap::new())),
        PopularMenusProjection::NAME => Box::new(Folded::<PopularMenusProjection>(BTreeMap::new())),
        CatalogProjection::NAME => Box::new(Folded::<CatalogProjection>(BTreeMap::new())),
        other => return Err(RebuildError::UnknownView(other.to_owned())),
    })
}

/// Writes every document, `WRITERS` at a time; returns how many it rewrote.
async fn write(
    views: &Arc<dyn ViewStore>,
    view: &'static str,
    documents: Vec<(String, String, String)>,
    retries: u32,
) -> Result<usize, ViewError> {
    let (mut writers, mut rewritten) = (JoinSet::new(), 0);
    for (key, partition, body) in documents {
        if writers.len() == WRITERS {
            rewritten += finished(writers.join_next().await)?;
        }
        let views = views.clone();
        writers.spawn(async move { overwrite(views.as_ref(), view, ViewDoc { key, partition, revision: 0, body }, retries).await });
    }
    while let Some(done) = writers.join_next().await {
        rewritten += finished(Some(done))?;
    }
    Ok(rewritten)
}

fn finished(done: Option<Result<Result<bool, ViewError>, tokio::task::JoinError>>) -> Result<usize, ViewError> {
    match done {
        None => Ok(0),
        Some(Ok(written)) => written.map(usize::from),
        Some(Err(error)) => Err(ViewError::Unavailable(format!("a rebuild writer stopped: {error}"))),
    }
}

/// Replaces the stored document with `doc` unless it already says the same;
/// true if it wrote. The stored body is compared as JSON, so one that no
/// longer decodes as the view is replaced like any other wrong one, and one
/// formatted differently is not.
async fn overwrite(views: &dyn ViewStore, view: &str, mut doc: ViewDoc, retries: u32) -> Result<bool, ViewError> {
    for _ in 0..=retries {
        let revision = match views.get(view, &doc.key).await? {
            Some(stored) if stored.partition == doc.partition && same_json(&stored.body, &doc.body) => return Ok(false),
            Some(stored) => stored.revision,
            None => 0,
        };
        doc.revision = revision + 1;
        match views.put(view, &doc, revision).await {
            Ok(()) => return Ok(true),
            Err(ViewError::Conflict(_)) => continue, // a live update raced: read again
            Err(error) => return Err(error),
        }
    }
    Err(ViewError::Conflict(format!("{view}/{} kept changing during the rebuild", doc.key)))
}

/// Whether two bodies are the same JSON: the same text, or the same values.
fn same_json(a: &str, b: &str) -> bool {
    let value = |body: &str| serde_json::from_str::<Value>(body);
    a == b || matches!((value(a), value(b)), (Ok(a), Ok(b)) if a == b)
}

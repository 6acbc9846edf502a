//! The customer-facing catalog: stores by region with their current menu.

use super::{Latest, Projection, ViewKey};
use crate::catalog::{MenuItem, StoreEvent};
use crate::envelope::{Envelope, Event};
use crate::ids::{OwnerId, Region, StoreId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreListing {
    pub store_id: StoreId,
    pub region: Region,
    /// Set by the registration; `None` until it arrives.
    pub owner: Option<OwnerId>,
    pub name: Option<String>,
    pub open: Latest<bool>,
    pub menu: Latest<Vec<MenuItem>>,
}

impl StoreListing {
    /// Shown to customers only once the registration has been seen.
    pub fn is_listed(&self) -> bool {
        self.name.is_some()
    }
}

pub struct CatalogProjection;

impl Projection for CatalogProjection {
    const NAME: &'static str = "catalog";
    type View = StoreListing;

    fn locate(envelope: &Envelope, event: &Event) -> Option<ViewKey> {
        let Event::Store(event) = event else { return None };
        let region = match event {
            StoreEvent::StoreRegistered { region, .. }
            | StoreEvent::MenuChanged { region, .. }
            | StoreEvent::StoreOpened { region, .. }
            | StoreEvent::StoreClosed { region, .. } => region,
        };
        Some(ViewKey { key: envelope.aggregate_id.clone(), partition: region.0.clone() })
    }

    fn apply(mut view: StoreListing, envelope: &Envelope, event: &Event) -> StoreListing {
        let Event::Store(event) = event else { return view };
        let version = envelope.version;
        match event {
            StoreEvent::StoreRegistered { store_id, owner, name, region, menu } => {
                view.store_id = store_id.clone();
                view.region = region.clone();
                view.owner = Some(owner.clone());
                view.name = Some(name.clone());
                view.open.set(version, true);
                view.menu.set(version, menu.clone());
            }
            StoreEvent::MenuChanged { store_id, region, menu } => {
                (view.store_id, view.region) = (store_id.clone(), region.clone());
                view.menu.set(version, menu.clone());
            }
            StoreEvent::StoreOpened { store_id, region } => {
                (view.store_id, view.region) = (store_id.clone(), region.clone());
                view.open.set(version, true);
            }
            StoreEvent::StoreClosed { store_id, region } => {
                (view.store_id, view.region) = (store_id.clone(), region.clone());
                view.open.set(version, false);
            }
        }
        view
    }
}

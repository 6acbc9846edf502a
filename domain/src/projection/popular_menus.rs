//! Popular menus: how often each menu item of a store is ordered. Each order
//! contributes one document, so a duplicate event rewrites the same document
//! instead of counting twice; `rank` sums a store's documents when read.

use super::{Projection, ViewKey};
use crate::envelope::{Envelope, Event};
use crate::ids::{MenuItemId, StoreId};
use crate::ordering::OrderEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderedItem {
    pub menu_id: MenuItemId,
    pub name: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderContribution {
    pub store_id: StoreId,
    pub items: Vec<OrderedItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PopularItem {
    pub menu_id: MenuItemId,
    pub name: String,
    /// Number of orders that included the item.
    pub orders: u64,
    /// Units ordered over all those orders.
    pub quantity: u64,
}

pub struct PopularMenusProjection;

impl Projection for PopularMenusProjection {
    const NAME: &'static str = "popular-menus";
    type View = OrderContribution;

    fn locate(envelope: &Envelope, event: &Event) -> Option<ViewKey> {
        match event {
            Event::Order(OrderEvent::OrderPlaced { store_id, .. }) => {
                Some(ViewKey { key: envelope.aggregate_id.clone(), partition: store_id.0.clone() })
            }
            _ => None,
        }
    }

    fn apply(view: OrderContribution, _envelope: &Envelope, event: &Event) -> OrderContribution {
        let Event::Order(OrderEvent::OrderPlaced { store_id, lines, .. }) = event else { return view };
        OrderContribution {
            store_id: store_id.clone(),
            items: lines
                .iter()
                .map(|line| OrderedItem { menu_id: line.menu_id.clone(), name: line.name.clone(), quantity: line.quantity })
                .collect(),
        }
    }
}

/// The store's items, most ordered first (ties: more units, then by name).
pub fn rank<'a>(contributions: impl IntoIterator<Item = &'a OrderContribution>) -> Vec<PopularItem> {
    let mut totals: BTreeMap<&MenuItemId, PopularItem> = BTreeMap::new();
    for contribution in contributions {
        // One order counts once per item, even if it somehow lists it twice.
        let mut counted = std::collections::HashSet::new();
        for item in contribution.items.iter() {
            let first_in_order = counted.insert(&item.menu_id);
            let total = totals.entry(&item.menu_id).or_insert_with(|| PopularItem {
                menu_id: item.menu_id.clone(),
                name: item.name.clone(),
                orders: 0,
                quantity: 0,
            });
            total.orders += u64::from(first_in_order);
            total.quantity += u64::from(item.quantity);
        }
    }
    let mut ranked: Vec<PopularItem> = totals.into_values().collect();
    ranked.sort_by(|a, b| b.orders.cmp(&a.orders).then(b.quantity.cmp(&a.quantity)).then(a.name.cmp(&b.name)));
    ranked
}

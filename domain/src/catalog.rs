//! Catalog: stores, their menus, and the price of an order at the moment it
//! is placed.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::error::{DomainError, ensure};
use crate::ids::{MenuItemId, OwnerId, Region, StoreId};
use crate::money::Money;
use crate::ordering::OrderLine;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

pub const MAX_MENU_ITEMS: usize = 200;
pub const MAX_NAME_LEN: usize = 120;
/// Regions key the catalog and the delivery board, so they stay short.
pub const MAX_REGION_LEN: usize = 120;
/// Ten thousand in major units: no dish costs more, and no sum overflows.
pub const MAX_PRICE: Money = Money(1_000_000);
pub const MAX_QUANTITY: u32 = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MenuItem {
    pub id: MenuItemId,
    pub name: String,
    pub price: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreProfile {
    pub id: StoreId,
    pub owner: OwnerId,
    pub name: String,
    pub region: Region,
    pub open: bool,
    pub menu: Vec<MenuItem>,
}

/// The store aggregate. `None` until registered.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Store {
    pub profile: Option<StoreProfile>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StoreCommand {
    Register { store_id: StoreId, owner: OwnerId, name: String, region: Region, menu: Vec<MenuItem> },
    ChangeMenu { owner: OwnerId, menu: Vec<MenuItem> },
    Open { owner: OwnerId },
    Close { owner: OwnerId },
}

/// Every catalog event names its store and region, so a read model can file
/// it without having seen the registration first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "eventType", content = "data")]
pub enum StoreEvent {
    #[serde(rename_all = "camelCase")]
    StoreRegistered { store_id: StoreId, owner: OwnerId, name: String, region: Region, menu: Vec<MenuItem> },
    #[serde(rename_all = "camelCase")]
    MenuChanged { store_id: StoreId, region: Region, menu: Vec<MenuItem> },
    #[serde(rename_all = "camelCase")]
    StoreOpened { store_id: StoreId, region: Region },
    #[serde(rename_all = "camelCase")]
    StoreClosed { store_id: StoreId, region: Region },
}

impl DomainEvent for StoreEvent {}

impl Aggregate for Store {
    const TYPE: &'static str = "Store";
    type Command = StoreCommand;
    type Event = StoreEvent;

    fn decide(&self, command: &StoreCommand) -> Result<Vec<StoreEvent>, DomainError> {
        match (command, &self.profile) {
            (StoreCommand::Register { store_id, owner, name, region, menu }, None) => {
                validate_name("store name", name)?;
                ensure(!region.0.trim().is_empty(), || "region must not be empty".into())?;
                ensure(region.0.chars().count() <= MAX_REGION_LEN, || format!("region must be at most {MAX_REGION_LEN} characters"))?;
                validate_menu(menu)?;
                Ok(vec![StoreEvent::StoreRegistered {
                    store_id: store_id.clone(),
                    owner: owner.clone(),
                    name: name.trim().to_owned(),
                    region: region.clone(),
                    menu: menu.clone(),
                }])
            }
            (StoreCommand::Register { store_id, .. }, Some(_)) => {
                Err(DomainError::conflict(format!("store {store_id} is already registered")))
            }
            (_, None) => Err(DomainError::not_found("store not found")),
            (StoreCommand::ChangeMenu { owner, menu }, Some(profile)) => {
                profile.ensure_owner(owner)?;
                validate_menu(menu)?;
                let (store_id, region) = profile.identity();
                Ok(vec![StoreEvent::MenuChanged { store_id, region, menu: menu.clone() }])
            }
            (StoreCommand::Open { owner }, Some(profile)) => {
                profile.ensure_owner(owner)?;
                let (store_id, region) = profile.identity();
                Ok(if profile.open { vec![] } else { vec![StoreEvent::StoreOpened { store_id, region }] })
            }
            (StoreCommand::Close { owner }, Some(profile)) => {
                profile.ensure_owner(owner)?;
                let (store_id, region) = profile.identity();
                Ok(if profile.open { vec![StoreEvent::StoreClosed { store_id, region }] } else { vec![] })
            }
        }
    }

    fn apply(&mut self, event: &StoreEvent) {
        match (event, &mut self.profile) {
            (StoreEvent::StoreRegistered { store_id, owner, name, region, menu }, _) => {
                self.profile = Some(StoreProfile {
                    id: store_id.clone(),
                    owner: owner.clone(),
                    name: name.clone(),
                    region: region.clone(),
                    open: true,
                    menu: menu.clone(),
                });
            }
            (StoreEvent::MenuChanged { menu, .. }, Some(profile)) => profile.menu = menu.clone(),
            (StoreEvent::StoreOpened { .. }, Some(profile)) => profile.open = true,
            (StoreEvent::StoreClosed { .. }, Some(profile)) => profile.open = false,
            // Events only ever follow a registration; nothing to fold otherwise.
            (_, None) => {}
        }
    }
}

impl Store {
    /// Prices the requested items at today's menu: the lines an order for
    /// `region` would be placed with, and their total. Repeated items are
    /// merged, so one line per menu item.
    pub fn quote(&self, region: &Region, items: &[(MenuItemId, u32)]) -> Result<(Vec<OrderLine>, Money), DomainError> {
        let profile = self.profile.as_ref().ok_or_else(|| DomainError::not_found("store not found"))?;
        if !profile.open {
            return Err(DomainError::conflict(format!("{} is closed and takes no orders", profile.name)));
        }
        ensure(&profile.region == region, || format!("{} does not deliver to region {region}", profile.name))?;
        ensure(!items.is_empty(), || "an order needs at least one item".into())?;
        let mut quantities: BTreeMap<&MenuItemId, u32> = BTreeMap::new();
        for (menu_id, quantity) in items {
            ensure((1..=MAX_QUANTITY).contains(quantity), || format!("quantity of {menu_id} must be between 1 and {MAX_QUANTITY}"))?;
            let merged = quantities.entry(menu_id).or_default();
            *merged += quantity;
            ensure(*merged <= MAX_QUANTITY, || format!("quantity of {menu_id} must be at most {MAX_QUANTITY}"))?;
        }
        let mut lines = Vec::with_capacity(quantities.len());
        let mut total = Money::ZERO;
        for (menu_id, quantity) in quantities {
            let item = profile
                .menu
                .iter()
                .find(|item| &item.id == menu_id)
                .ok_or_else(|| DomainError::invalid(format!("{} has no menu item {menu_id}", profile.name)))?;
            let line = OrderLine { menu_id: item.id.clone(), name: item.name.clone(), unit_price: item.price, quantity };
            total = line
                .amount()
                .and_then(|amount| total.checked_add(amount))
                .ok_or_else(|| DomainError::invalid("order total is too large"))?;
            lines.push(line);
        }
        Ok((lines, total))
    }
}

impl StoreProfile {
    fn identity(&self) -> (StoreId, Region) {
        (self.id.clone(), self.region.clone())
    }

    fn ensure_owner(&self, owner: &OwnerId) -> Result<(), DomainError> {
        if &self.owner == owner { Ok(()) } else { Err(DomainError::forbidden(format!("only the owner of {} may do that", self.name))) }
    }
}

fn validate_name(what: &str, name: &str) -> Result<(), DomainError> {
    let name = name.trim();
    ensure(!name.is_empty(), || format!("{what} must not be empty"))?;
    ensure(name.chars().count() <= MAX_NAME_LEN, || format!("{what} must be at most {MAX_NAME_LEN} characters"))
}

fn validate_menu(menu: &[MenuItem]) -> Result<(), DomainError> {
    ensure(!menu.is_empty(), || "a menu needs at least one item".into())?;
    ensure(menu.len() <= MAX_MENU_ITEMS, || format!("a menu has at most {MAX_MENU_ITEMS} items"))?;
    let mut ids = HashSet::new();
    for item in menu {
        ensure(!item.id.0.is_empty(), || "every menu item needs an id".into())?;
        ensure(ids.insert(&item.id), || format!("menu item id {} appears twice", item.id))?;
        validate_name("menu item name", &item.name)?;
        ensure(item.price > Money::ZERO && item.price <= MAX_PRICE, || {
            format!("price of {} must be between 0.01 and {MAX_PRICE}", item.name)
        })?;
    }
    Ok(())
}

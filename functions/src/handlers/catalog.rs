//! Store owners register stores and keep their menus and hours.

use super::owned_store;
use crate::command::execute;
use crate::deps::Deps;
use crate::http::{self, Problem, Request, Response, Role};
use domain::catalog::{MenuItem, Store, StoreCommand};
use domain::{MenuItemId, Money, OwnerId, Region, StoreId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MenuEntryInput {
    /// Keeps an existing item's id on a menu change; new items get one.
    menu_id: Option<String>,
    name: String,
    /// In cents.
    price: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RegisterStoreInput {
    name: String,
    region: String,
    menu: Vec<MenuEntryInput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ChangeMenuInput {
    menu: Vec<MenuEntryInput>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MenuEntry {
    pub menu_id: MenuItemId,
    pub name: String,
    pub price: Money,
}

impl From<&MenuItem> for MenuEntry {
    fn from(item: &MenuItem) -> Self {
        MenuEntry { menu_id: item.id.clone(), name: item.name.clone(), price: item.price }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StoreAnswer {
    store_id: StoreId,
    name: String,
    region: Region,
    open: bool,
    menu: Vec<MenuEntry>,
}

/// Gives every entry an id: the one it names, or the next free `m<n>`.
fn assign_menu_ids(entries: &[MenuEntryInput], current: &[MenuItem]) -> Vec<MenuItem> {
    let numbered = |id: &str| id.strip_prefix('m').and_then(|n| n.parse::<u64>().ok());
    let mut next = current
        .iter()
        .map(|item| item.id.0.as_str())
        .chain(entries.iter().filter_map(|entry| entry.menu_id.as_deref()))
        .filter_map(numbered)
        .max()
        .unwrap_or(0);
    entries
        .iter()
        .map(|entry| {
            let id = entry.menu_id.clone().unwrap_or_else(|| {
                next += 1;
                format!("m{next}")
            });
            MenuItem { id: MenuItemId(id), name: entry.name.trim().to_owned(), price: Money(entry.price) }
        })
        .collect()
}

fn answer(store: &Store) -> Result<StoreAnswer, Problem> {
    let profile = store.profile.as_ref().ok_or_else(|| Problem::not_found("store not found"))?;
    Ok(StoreAnswer {
        store_id: profile.id.clone(),
        name: profile.name.clone(),
        region: profile.region.clone(),
        open: profile.open,
        menu: profile.menu.iter().map(MenuEntry::from).collect(),
    })
}

/// `POST /stores`
pub async fn register_store(deps: &Deps, request: Request) -> Result<Response, Problem> {
    let caller = http::caller(&request)?;
    caller.require(Role::Owner)?;
    let input: RegisterStoreInput = http::body(&request)?;
    let store_id = http::new_id("store");
    let meta = http::metadata(&request, &store_id);
    let menu = assign_menu_ids(&input.menu, &[]);
    let command = StoreCommand::Register {
        store_id: StoreId(store_id.clone()),
        owner: OwnerId(caller.id),
        name: input.name,
        region: Region(input.region.trim().to_owned()),
        menu,
    };
    let executed = execute::<Store>(deps, &store_id, &meta, |_| Ok(command.clone())).await?;
    Ok(http::created(&format!("/stores/{store_id}"), &answer(&executed.state.state)?))
}

/// `PUT /stores/{storeId}/menu`
pub async fn change_menu(deps: &Deps, request: Request) -> Result<Response, Problem> {
    let caller = http::caller(&request)?;
    let store_id = http::path(&request, "storeId")?;
    owned_store(deps, &caller, store_id).await?;
    let input: ChangeMenuInput = http::body(&request)?;
    let meta = http::metadata(&request, store_id);
    let executed = execute::<Store>(deps, store_id, &meta, |store| {
        let current = store.profile.as_ref().map(|profile| profile.menu.as_slice()).unwrap_or_default();
        Ok(StoreCommand::ChangeMenu { owner: OwnerId(caller.id.clone()), menu: assign_menu_ids(&input.menu, current) })
    })
    .await?;
    Ok(http::json(200, &answer(&executed.state.state)?))
}

/// `POST /stores/{storeId}/open`
pub async fn open_store(deps: &Deps, request: Request) -> Result<Response, Problem> {
    set_open(deps, request, true).await
}

/// `POST /stores/{storeId}/close`
pub async fn close_store(deps: &Deps, request: Request) -> Result<Response, Problem> {
    set_open(deps, request, false).await
}

async fn set_open(deps: &Deps, request: Request, open: bool) -> Result<Response, Problem> {
    let caller = http::caller(&request)?;
    let store_id = http::path(&request, "storeId")?;
    owned_store(deps, &caller, store_id).await?;
    let meta = http::metadata(&request, store_id);
    let owner = OwnerId(caller.id);
    let command = if open { StoreCommand::Open { owner } } else { StoreCommand::Close { owner } };
    let executed = execute::<Store>(deps, store_id, &meta, |_| Ok(command.clone())).await?;
    Ok(http::json(200, &answer(&executed.state.state)?))
}

//! One module per bounded context; one public function per Lambda.

pub mod catalog;
pub mod delivery;
pub mod kitchen;
pub mod operations;
pub mod ordering;
pub mod policies;
pub mod projections;
pub mod publisher;
pub mod queries;
pub mod reconcile;

use crate::command::load;
use crate::deps::Deps;
use crate::http::{Caller, Problem, Role};
use domain::catalog::{Store, StoreProfile};

/// Loads the store and checks that the caller owns it. Read from the event
/// store, not a view, so a store registered a moment ago is already known.
pub(crate) async fn owned_store(deps: &Deps, caller: &Caller, store_id: &str) -> Result<StoreProfile, Problem> {
    caller.require(Role::Owner)?;
    let store = load::<Store>(deps.events.as_ref(), store_id).await?;
    let profile = store.state.profile.ok_or_else(|| Problem::not_found(format!("store {store_id} not found")))?;
    if profile.owner.0 != caller.id {
        return Err(Problem::forbidden("this store belongs to another owner"));
    }
    Ok(profile)
}

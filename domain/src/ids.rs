//! Identifiers of the ubiquitous language. Distinct types so a store id can
//! never be passed where an order id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }
    };
}

identifier!(/// A store on the platform.
    StoreId);
identifier!(/// An item on a store's menu, unique within that store.
    MenuItemId);
identifier!(/// An order; also the correlation id of everything the order causes.
    OrderId);
identifier!(/// The customer who orders and pays.
    CustomerId);
identifier!(/// The owner who runs a store and its kitchen.
    OwnerId);
identifier!(/// A rider who picks up and delivers food.
    RiderId);
identifier!(/// A delivery region: stores are browsed and deliveries offered by region.
    Region);

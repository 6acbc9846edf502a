//! Ordering: the order's life from placement to delivery or cancellation.
//!
//! The order is the one consistency boundary for its status. The kitchen's
//! decisions (see `kitchen`) and the customer's cancellation are decided on
//! this same stream, so optimistic concurrency lets exactly one of two racing
//! commands win. Progress made by the delivery context arrives as commands
//! from a policy and is idempotent, because events may be delivered twice.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::catalog::{MAX_NAME_LEN, MAX_PRICE, MAX_QUANTITY};
use crate::error::{DomainError, ensure};
use crate::ids::{CustomerId, MenuItemId, Region, RiderId, StoreId};
use crate::kitchen::{self, KitchenCommand};
use crate::money::Money;
use serde::{Deserialize, Serialize};

pub const MAX_ADDRESS_LEN: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub menu_id: MenuItemId,
    pub name: String,
    /// The price when the order was placed; later menu changes don't touch it.
    pub unit_price: Money,
    pub quantity: u32,
}

impl OrderLine {
    pub fn amount(&self) -> Option<Money> {
        self.unit_price.checked_mul(self.quantity)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrderStatus {
    Placed,
    Accepted,
    Rejected,
    Cooking,
    Cooked,
    PickedUp,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    /// Still in the store's queue: the kitchen has something to do or hand over.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Placed | Self::Accepted | Self::Cooking | Self::Cooked)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CancelReason {
    Customer,
    RiderAccident,
}

/// The approved charge an order is placed with: no order without one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovedPayment {
    pub charge_id: String,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacedOrder {
    pub customer_id: CustomerId,
    pub store_id: StoreId,
    pub lines: Vec<OrderLine>,
    pub region: Region,
    pub address: String,
    pub total: Money,
    pub charge_id: String,
    pub status: OrderStatus,
    pub rider_id: Option<RiderId>,
}

/// The order aggregate. `None` until placed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Order {
    pub placed: Option<PlacedOrder>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlaceOrder {
    pub customer_id: CustomerId,
    pub store_id: StoreId,
    pub lines: Vec<OrderLine>,
    pub region: Region,
    pub address: String,
    pub payment: ApprovedPayment,
}

/// What the delivery context reports back about the order's food.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryProgress {
    PickedUp { rider_id: RiderId },
    Delivered { rider_id: RiderId },
    Accident { rider_id: RiderId },
}

#[derive(Debug, Clone, PartialEq)]
pub enum OrderCommand {
    Place(PlaceOrder),
    Cancel { customer_id: CustomerId },
    Kitchen { store_id: StoreId, command: KitchenCommand },
    Delivery(DeliveryProgress),
}

/// Every order event names its customer and store, so notifications and the
/// store's queue never need a lookup and can be filed in any order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "eventType", content = "data")]
pub enum OrderEvent {
    #[serde(rename_all = "camelCase")]
    OrderPlaced {
        customer_id: CustomerId,
        store_id: StoreId,
        lines: Vec<OrderLine>,
        region: Region,
        address: String,
        total: Money,
        charge_id: String,
    },
    #[serde(rename_all = "camelCase")]
    OrderAccepted { customer_id: CustomerId, store_id: StoreId },
    #[serde(rename_all = "camelCase")]
    OrderRejected { customer_id: CustomerId, store_id: StoreId, reason: String },
    /// Carries where the food goes, so the delivery can open from it alone.
    #[serde(rename_all = "camelCase")]
    CookingStarted { customer_id: CustomerId, store_id: StoreId, region: Region, address: String },
    #[serde(rename_all = "camelCase")]
    CookingFinished { customer_id: CustomerId, store_id: StoreId, region: Region, address: String },
    #[serde(rename_all = "camelCase")]
    OrderPickedUp { customer_id: CustomerId, store_id: StoreId, rider_id: RiderId },
    #[serde(rename_all = "camelCase")]
    OrderDelivered { customer_id: CustomerId, store_id: StoreId, rider_id: RiderId },
    #[serde(rename_all = "camelCase")]
    OrderCancelled { customer_id: CustomerId, store_id: StoreId, reason: CancelReason },
}

impl DomainEvent for OrderEvent {}

impl OrderEvent {
    /// The status the order is in once this event has happened.
    pub fn status(&self) -> OrderStatus {
        match self {
            Self::OrderPlaced { .. } => OrderStatus::Placed,
            Self::OrderAccepted { .. } => OrderStatus::Accepted,
            Self::OrderRejected { .. } => OrderStatus::Rejected,
            Self::CookingStarted { .. } => OrderStatus::Cooking,
            Self::CookingFinished { .. } => OrderStatus::Cooked,
            Self::OrderPickedUp { .. } => OrderStatus::PickedUp,
            Self::OrderDelivered { .. } => OrderStatus::Delivered,
            Self::OrderCancelled { .. } => OrderStatus::Cancelled,
        }
    }

    pub fn customer_id(&self) -> &CustomerId {
        match self {
            Self::OrderPlaced { customer_id, .. }
            | Self::OrderAccepted { customer_id, .. }
            | Self::OrderRejected { customer_id, .. }
            | Self::CookingStarted { customer_id, .. }
            | Self::CookingFinished { customer_id, .. }
            | Self::OrderPickedUp { customer_id, .. }
            | Self::OrderDelivered { customer_id, .. }
            | Self::OrderCancelled { customer_id, .. } => customer_id,
        }
    }

    pub fn store_id(&self) -> &StoreId {
        match self {
            Self::OrderPlaced { store_id, .. }
            | Self::OrderAccepted { store_id, .. }
            | Self::OrderRejected { store_id, .. }
            | Self::CookingStarted { store_id, .. }
            | Self::CookingFinished { store_id, .. }
            | Self::OrderPickedUp { store_id, .. }
            | Self::OrderDelivered { store_id, .. }
            | Self::OrderCancelled { store_id, .. } => store_id,
        }
    }
}

impl Aggregate for Order {
    const TYPE: &'static str = "Order";
    type Command = OrderCommand;
    type Event = OrderEvent;

    fn decide(&self, command: &OrderCommand) -> Result<Vec<OrderEvent>, DomainError> {
        let Some(order) = &self.placed else {
            return match command {
                OrderCommand::Place(place) => place_order(place),
                _ => Err(DomainError::not_found("order not found")),
            };
        };
        match command {
            OrderCommand::Place(_) => Err(DomainError::conflict("order is already placed")),
            OrderCommand::Cancel { customer_id } => cancel(order, customer_id),
            OrderCommand::Kitchen { store_id, command } => {
                if &order.store_id != store_id {
                    return Err(DomainError::not_found("order not found in this store"));
                }
                kitchen::decide(order, command)
            }
            OrderCommand::Delivery(progress) => record_delivery_progress(order, progress),
        }
    }

    fn apply(&mut self, event: &OrderEvent) {
        if let OrderEvent::OrderPlaced { customer_id, store_id, lines, region, address, total, charge_id } = event {
            self.placed = Some(PlacedOrder {
                customer_id: customer_id.clone(),
                store_id: store_id.clone(),
                lines: lines.clone(),
                region: region.clone(),
                address: address.clone(),
                total: *total,
                charge_id: charge_id.clone(),
                status: OrderStatus::Placed,
                rider_id: None,
            });
            return;
        }
        let Some(order) = self.placed.as_mut() else { return };
        order.status = event.status();
        if let OrderEvent::OrderPickedUp { rider_id, .. } = event {
            order.rider_id = Some(rider_id.clone());
        }
    }
}

fn place_order(place: &PlaceOrder) -> Result<Vec<OrderEvent>, DomainError> {
    ensure(!place.lines.is_empty(), || "an order needs at least one item".into())?;
    let mut seen = std::collections::HashSet::new();
    let mut total = Money::ZERO;
    for line in &place.lines {
        ensure(!line.menu_id.0.trim().is_empty(), || "every line needs a menu item id".into())?;
        ensure(seen.insert(&line.menu_id), || format!("{} appears on two lines: one line per menu item", line.menu_id))?;
        ensure(line.unit_price <= MAX_PRICE, || format!("{} costs more than {MAX_PRICE}", line.menu_id))?;
        ensure((1..=MAX_QUANTITY).contains(&line.quantity), || {
            format!("quantity of {} must be between 1 and {MAX_QUANTITY}", line.menu_id)
        })?;
        ensure(line.unit_price > Money::ZERO, || format!("{} has no price", line.menu_id))?;
        ensure(line.name.chars().count() <= MAX_NAME_LEN, || format!("{} has too long a name", line.menu_id))?;
        total =
            line.amount().and_then(|amount| total.checked_add(amount)).ok_or_else(|| DomainError::invalid("order total is too large"))?;
    }
    let address = place.address.trim();
    ensure(!address.is_empty(), || "a delivery address is required".into())?;
    ensure(address.chars().count() <= MAX_ADDRESS_LEN, || format!("address must be at most {MAX_ADDRESS_LEN} characters"))?;
    ensure(!place.region.0.trim().is_empty(), || "region must not be empty".into())?;
    ensure(place.payment.amount == total, || format!("payment of {} does not match the order total of {total}", place.payment.amount))?;
    Ok(vec![OrderEvent::OrderPlaced {
        customer_id: place.customer_id.clone(),
        store_id: place.store_id.clone(),
        lines: place.lines.clone(),
        region: place.region.clone(),
        address: address.to_owned(),
        total,
        charge_id: place.payment.charge_id.clone(),
    }])
}

fn cancel(order: &PlacedOrder, customer_id: &CustomerId) -> Result<Vec<OrderEvent>, DomainError> {
    if &order.customer_id != customer_id {
        return Err(DomainError::forbidden("only the customer who placed the order may cancel it"));
    }
    match order.status {
        OrderStatus::Placed | OrderStatus::Accepted => Ok(vec![OrderEvent::OrderCancelled {
            customer_id: order.customer_id.clone(),
            store_id: order.store_id.clone(),
            reason: CancelReason::Customer,
        }]),
        OrderStatus::Cooking | OrderStatus::Cooked | OrderStatus::PickedUp | OrderStatus::Delivered => {
            Err(DomainError::conflict("cooking has started: the order can no longer be cancelled"))
        }
        OrderStatus::Rejected | OrderStatus::Cancelled => {
            Err(DomainError::conflict(format!("the order is already {}", status_word(order.status))))
        }
    }
}

/// Records what the delivery context did. A report may arrive twice or before
/// an earlier one (policies run asynchronously), so facts already recorded are
/// no-ops and a completion or accident implies the pick-up it followed.
fn record_delivery_progress(order: &PlacedOrder, progress: &DeliveryProgress) -> Result<Vec<OrderEvent>, DomainError> {
    use OrderStatus as S;
    let (customer_id, store_id) = (order.customer_id.clone(), order.store_id.clone());
    let picked_up = |rider_id: &RiderId| OrderEvent::OrderPickedUp {
        customer_id: customer_id.clone(),
        store_id: store_id.clone(),
        rider_id: rider_id.clone(),
    };
    let out_of_turn = || DomainError::conflict(format!("delivery progress cannot be recorded on a {} order", status_word(order.status)));
    match (progress, order.status) {
        (DeliveryProgress::PickedUp { rider_id }, S::Cooked) => Ok(vec![picked_up(rider_id)]),
        (DeliveryProgress::PickedUp { .. }, S::PickedUp | S::Delivered | S::Cancelled) => Ok(vec![]),
        (DeliveryProgress::Delivered { rider_id }, S::Cooked | S::PickedUp) => {
            let mut events = if order.status == S::Cooked { vec![picked_up(rider_id)] } else { vec![] };
            events.push(OrderEvent::OrderDelivered { customer_id, store_id, rider_id: rider_id.clone() });
            Ok(events)
        }
        (DeliveryProgress::Delivered { .. }, S::Delivered) => Ok(vec![]),
        (DeliveryProgress::Accident { rider_id }, S::Cooked | S::PickedUp) => {
            let mut events = if order.status == S::Cooked { vec![picked_up(rider_id)] } else { vec![] };
            events.push(OrderEvent::OrderCancelled { customer_id, store_id, reason: CancelReason::RiderAccident });
            Ok(events)
        }
        (DeliveryProgress::Accident { .. }, S::Cancelled) => Ok(vec![]),
        _ => Err(out_of_turn()),
    }
}

pub fn status_word(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Placed => "placed",
        OrderStatus::Accepted => "accepted",
        OrderStatus::Rejected => "rejected",
        OrderStatus::Cooking => "cooking",
        OrderStatus::Cooked => "cooked",
        OrderStatus::PickedUp => "picked up",
        OrderStatus::Delivered => "delivered",
        OrderStatus::Cancelled => "cancelled",
    }
}

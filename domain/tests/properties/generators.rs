//! What the properties draw from: names and texts (mostly plausible, now and
//! then blank, too long or full of odd characters), menus, money, and the
//! actions of every actor around one order.

use domain::catalog::{MAX_NAME_LEN, MAX_PRICE, MAX_QUANTITY, MenuItem, StoreCommand};
use domain::delivery::{DeliveryCommand, DeliveryDetails};
use domain::kitchen::KitchenCommand;
use domain::ordering::{ApprovedPayment, DeliveryProgress, OrderCommand, OrderLine, PlaceOrder};
use domain::payment::{PaymentCommand, RefundReason};
use domain::{CustomerId, MenuItemId, Money, OwnerId, Region, RiderId, StoreId};
use proptest::prelude::*;
use proptest::sample::Index;

// ---------------------------------------------------------------- texts

/// Strings matching `regex`, compiled once (a `&str` strategy would compile
/// it again for every value drawn, which dominates a debug run).
fn matching(regex: &str) -> BoxedStrategy<String> {
    proptest::string::string_regex(regex).expect("a valid pattern").boxed()
}

/// A name that every validation accepts.
pub fn valid_name() -> impl Strategy<Value = String> {
    matching("[A-Za-z][A-Za-z '-]{0,15}")
}

/// Any text a user might send: mostly plausible, sometimes blank, sometimes
/// just over a length limit, sometimes any characters at all (quotes,
/// control characters, emoji) to put JSON and trimming to the test.
pub fn text() -> impl Strategy<Value = String> {
    let just_too_long = format!("[a-z]{{{},{}}}", MAX_NAME_LEN - 1, MAX_NAME_LEN + 2);
    prop_oneof![
        12 => valid_name().boxed(),
        3 => matching("(?s).{0,16}"),
        1 => matching("[ \t\n]{0,3}"),
        1 => matching(&just_too_long),
    ]
}

// ---------------------------------------------------------------- money and menus

/// A menu price as an owner would set it.
pub fn fair_price() -> impl Strategy<Value = Money> {
    prop_oneof![8 => 1..=5_000u64, 1 => 1..=MAX_PRICE.0].prop_map(Money)
}

/// Any price at all, including nothing and more than the catalog allows.
pub fn any_price() -> impl Strategy<Value = Money> {
    prop_oneof![
        6 => fair_price().boxed(),
        1 => Just(Money::ZERO).boxed(),
        1 => (MAX_PRICE.0..=MAX_PRICE.0 + 1).prop_map(Money).boxed(),
        1 => any::<u64>().prop_map(Money).boxed(),
    ]
}

pub fn quantity() -> impl Strategy<Value = u32> {
    prop_oneof![12 => 1..=5u32, 1 => 1..=MAX_QUANTITY, 1 => 0..=MAX_QUANTITY + 20]
}

pub fn dish_id(n: usize) -> MenuItemId {
    MenuItemId(format!("dish-{n}"))
}

/// A menu registration accepts: one to six dishes, distinct ids.
pub fn valid_menu() -> impl Strategy<Value = Vec<MenuItem>> {
    prop::collection::vec((valid_name(), fair_price()), 1..=6)
        .prop_map(|dishes| dishes.into_iter().enumerate().map(|(n, (name, price))| MenuItem { id: dish_id(n), name, price }).collect())
}

/// Any menu an owner might submit, most of them valid.
pub fn any_menu() -> impl Strategy<Value = Vec<MenuItem>> {
    let sloppy_dish =
        (matching("dish-[0-3]|"), text(), any_price()).prop_map(|(id, name, price)| MenuItem { id: MenuItemId(id), name, price });
    prop_oneof![
        5 => valid_menu().boxed(),
        1 => prop::collection::vec(sloppy_dish, 0..=4).boxed(),
    ]
}

/// A line put together by hand rather than quoted from a menu.
pub fn handmade_line() -> impl Strategy<Value = OrderLine> {
    (0..4usize, text(), any_price(), quantity()).prop_map(|(dish, name, unit_price, quantity)| OrderLine {
        menu_id: dish_id(dish),
        name,
        unit_price,
        quantity,
    })
}

/// What the lines cost, when that fits in the money type.
pub fn total_of(lines: &[OrderLine]) -> Option<Money> {
    lines.iter().try_fold(Money::ZERO, |total, line| line.amount().and_then(|amount| total.checked_add(amount)))
}

// ---------------------------------------------------------------- who acts

/// The customer who places the order, or somebody else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerRole {
    Orderer,
    Other,
}

/// The order's store, or another store's kitchen addressing the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreRole {
    OrdersStore,
    OtherStore,
}

/// The store's owner, or a stranger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerRole {
    Owner,
    Stranger,
}

/// One of the two riders of the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiderRole {
    First,
    Second,
}

fn customer_role() -> impl Strategy<Value = CustomerRole> {
    prop_oneof![5 => Just(CustomerRole::Orderer), 1 => Just(CustomerRole::Other)]
}

fn store_role() -> impl Strategy<Value = StoreRole> {
    prop_oneof![8 => Just(StoreRole::OrdersStore), 1 => Just(StoreRole::OtherStore)]
}

fn owner_role() -> impl Strategy<Value = OwnerRole> {
    prop_oneof![4 => Just(OwnerRole::Owner), 1 => Just(OwnerRole::Stranger)]
}

fn rider_role() -> impl Strategy<Value = RiderRole> {
    prop_oneof![Just(RiderRole::First), Just(RiderRole::Second)]
}

// ---------------------------------------------------------------- the steps around one order

/// One thing that happens around an order: an actor's command, or the event
/// bus delivering an event (late, out of order, or again) to the policies.
#[derive(Debug, Clone)]
pub enum Step {
    /// A customer orders dishes off today's menu (priced by the store's
    /// quote) and pays.
    PlaceOrder {
        customer: CustomerRole,
        dishes: Vec<(Index, u32)>,
        address: String,
    },
    /// An order put together by hand: any lines, region and amount paid,
    /// straight to `decide` (`None` pays exactly the lines' total).
    PlaceHandmadeOrder {
        customer: CustomerRole,
        lines: Vec<OrderLine>,
        region_left_blank: bool,
        address: String,
        paid: Option<Money>,
    },
    CancelOrder {
        customer: CustomerRole,
    },
    Kitchen {
        store: StoreRole,
        command: KitchenCommand,
    },
    OpenStore {
        owner: OwnerRole,
    },
    CloseStore {
        owner: OwnerRole,
    },
    ChangeMenu {
        owner: OwnerRole,
        menu: Vec<MenuItem>,
    },
    PickDelivery {
        rider: RiderRole,
    },
    CompleteDelivery {
        rider: RiderRole,
    },
    ReportAccident {
        rider: RiderRole,
        description: String,
    },
    /// The bus hands one waiting event (any of them, not the oldest) to the
    /// policies; `again_later` leaves it waiting, to be delivered twice.
    DeliverEvent {
        which: Index,
        again_later: bool,
    },
    /// The bus hands an already delivered event to the policies once more.
    RedeliverEvent {
        which: Index,
    },
    /// Whoever's turn it is in the usual lifecycle does the usual thing: the
    /// customer orders a dish, the kitchen accepts, starts and finishes
    /// cooking, the bus catches up, a rider picks the food up and delivers it
    /// or, when `mishap`, reports an accident on the way. It keeps stories moving toward an ending;
    /// the other steps bring the surprises.
    BusinessAsUsual {
        dish: Index,
        rider: RiderRole,
        mishap: bool,
    },
}

fn kitchen_command() -> impl Strategy<Value = KitchenCommand> {
    prop_oneof![
        4 => Just(KitchenCommand::Accept),
        2 => text().prop_map(|reason| KitchenCommand::Reject { reason }),
        4 => Just(KitchenCommand::StartCooking),
        4 => Just(KitchenCommand::FinishCooking),
    ]
}

pub fn step() -> impl Strategy<Value = Step> {
    let address = prop_oneof![9 => Just("12 Harbour Street".to_owned()), 1 => text()];
    prop_oneof![
        18 => (any::<Index>(), rider_role(), prop::bool::weighted(0.15))
            .prop_map(|(dish, rider, mishap)| Step::BusinessAsUsual { dish, rider, mishap }),
        3 => (customer_role(), prop::collection::vec((any::<Index>(), quantity()), 1..=4), address.clone())
            .prop_map(|(customer, dishes, address)| Step::PlaceOrder { customer, dishes, address }),
        1 => (
            customer_role(),
            prop::collection::vec(handmade_line(), 0..=3),
            prop::bool::weighted(0.2),
            address,
            prop::option::weighted(0.3, any_price()),
        )
            .prop_map(|(customer, lines, region_left_blank, address, paid)| Step::PlaceHandmadeOrder {
                customer,
                lines,
                region_left_blank,
                address,
                paid,
            }),
        2 => customer_role().prop_map(|customer| Step::CancelOrder { customer }),
        8 => (store_role(), kitchen_command()).prop_map(|(store, command)| Step::Kitchen { store, command }),
        1 => owner_role().prop_map(|owner| Step::OpenStore { owner }),
        1 => owner_role().prop_map(|owner| Step::CloseStore { owner }),
        1 => (owner_role(), any_menu()).prop_map(|(owner, menu)| Step::ChangeMenu { owner, menu }),
        4 => rider_role().prop_map(|rider| Step::PickDelivery { rider }),
        3 => rider_role().prop_map(|rider| Step::CompleteDelivery { rider }),
        3 => (rider_role(), text()).prop_map(|(rider, description)| Step::ReportAccident { rider, description }),
        6 => (any::<Index>(), prop::bool::weighted(0.2))
            .prop_map(|(which, again_later)| Step::DeliverEvent { which, again_later }),
        2 => any::<Index>().prop_map(|which| Step::RedeliverEvent { which }),
    ]
}

// ---------------------------------------------------------------- raw commands, one aggregate at a time

/// Two of everything, so a command names the right party or the wrong one.
fn one_of_two<T: Clone + std::fmt::Debug + 'static>(first: T, second: T) -> impl Strategy<Value = T> {
    prop_oneof![4 => Just(first), 1 => Just(second)]
}

pub fn store_command() -> impl Strategy<Value = StoreCommand> {
    let owner = || one_of_two(OwnerId::from("olga"), OwnerId::from("oscar"));
    prop_oneof![
        1 => (one_of_two(StoreId::from("store-1"), StoreId::from("store-2")), owner(), text(), one_of_two(Region::from("north"), Region::from(" ")), any_menu())
            .prop_map(|(store_id, owner, name, region, menu)| StoreCommand::Register { store_id, owner, name, region, menu }),
        3 => (owner(), any_menu()).prop_map(|(owner, menu)| StoreCommand::ChangeMenu { owner, menu }),
        2 => owner().prop_map(|owner| StoreCommand::Open { owner }),
        2 => owner().prop_map(|owner| StoreCommand::Close { owner }),
    ]
}

pub fn order_command() -> impl Strategy<Value = OrderCommand> {
    let customer = || one_of_two(CustomerId::from("ada"), CustomerId::from("bo"));
    let store = || one_of_two(StoreId::from("store-1"), StoreId::from("store-2"));
    let rider = || one_of_two(RiderId::from("rita"), RiderId::from("ravi"));
    let place = (
        customer(),
        store(),
        prop::collection::vec(handmade_line(), 0..=3),
        one_of_two(Region::from("north"), Region::from("")),
        text(),
        matching("charge-[0-9]{1,3}"),
        prop::option::weighted(0.2, any_price()),
    )
        .prop_map(|(customer_id, store_id, lines, region, address, charge_id, paid)| {
            let amount = paid.or_else(|| total_of(&lines)).unwrap_or(Money(1));
            OrderCommand::Place(PlaceOrder {
                customer_id,
                store_id,
                lines,
                region,
                address,
                payment: ApprovedPayment { charge_id, amount },
            })
        });
    let progress = prop_oneof![
        rider().prop_map(|rider_id| DeliveryProgress::PickedUp { rider_id }),
        rider().prop_map(|rider_id| DeliveryProgress::Delivered { rider_id }),
        rider().prop_map(|rider_id| DeliveryProgress::Accident { rider_id }),
    ];
    prop_oneof![
        2 => place,
        1 => customer().prop_map(|customer_id| OrderCommand::Cancel { customer_id }),
        6 => (store(), kitchen_command()).prop_map(|(store_id, command)| OrderCommand::Kitchen { store_id, command }),
        2 => progress.prop_map(OrderCommand::Delivery),
    ]
}

pub fn payment_command() -> impl Strategy<Value = PaymentCommand> {
    let reason = prop_oneof![Just(RefundReason::CustomerCancelled), Just(RefundReason::StoreRejected), Just(RefundReason::RiderAccident),];
    prop_oneof![
        (one_of_two(CustomerId::from("ada"), CustomerId::from("bo")), text(), any_price())
            .prop_map(|(customer_id, charge_id, amount)| PaymentCommand::Approve { customer_id, charge_id, amount }),
        reason.prop_map(|reason| PaymentCommand::Refund { reason }),
    ]
}

pub fn delivery_command() -> impl Strategy<Value = DeliveryCommand> {
    let details = || {
        (one_of_two(CustomerId::from("ada"), CustomerId::from("bo")), text(), text(), text()).prop_map(
            |(customer_id, store, region, address)| DeliveryDetails {
                customer_id,
                store_id: StoreId(store),
                region: Region(region),
                address,
            },
        )
    };
    let rider = || one_of_two(RiderId::from("rita"), RiderId::from("ravi"));
    prop_oneof![
        1 => details().prop_map(DeliveryCommand::Open),
        1 => details().prop_map(DeliveryCommand::MarkFoodReady),
        2 => rider().prop_map(|rider_id| DeliveryCommand::Pick { rider_id }),
        2 => rider().prop_map(|rider_id| DeliveryCommand::Complete { rider_id }),
        1 => (rider(), text()).prop_map(|(rider_id, description)| DeliveryCommand::ReportAccident { rider_id, description }),
    ]
}

//! Catalog: registering a store, keeping its menu, opening and closing, and
//! quoting an order at today's prices.

mod support;

use domain::catalog::{MAX_MENU_ITEMS, MAX_PRICE, MenuItem, Store, StoreCommand, StoreEvent};
use domain::{DomainError, MenuItemId, Money, Region};
use support::*;

fn register_with(change: impl FnOnce(&mut String, &mut Region, &mut Vec<MenuItem>)) -> StoreCommand {
    let (mut name, mut region, mut menu) = ("Seoul Kitchen".to_owned(), region(), menu());
    change(&mut name, &mut region, &mut menu);
    StoreCommand::Register { store_id: store_id(), owner: owner(), name, region, menu }
}

fn many_items(n: usize) -> Vec<MenuItem> {
    (0..n).map(|i| item(&format!("item-{i}"), &format!("Dish {i}"), 500)).collect()
}

// ---------------------------------------------------------------- register

#[test]
fn registering_a_store_records_it_open_with_its_menu() {
    let store = given::<Store>([]).when(register_store()).then([store_registered()]);
    let profile = store.profile.expect("registered");
    assert!(profile.open, "a new store takes orders");
    assert_eq!(profile.menu, menu());
    assert_eq!(profile.owner, owner());
}

#[test]
fn the_store_name_is_recorded_trimmed() {
    given::<Store>([]).when(register_with(|name, _, _| *name = "  Seoul Kitchen \n".into())).then([store_registered()]);
}

#[test]
fn a_store_needs_a_name() {
    given::<Store>([])
        .when(register_with(|name, _, _| *name = "   ".into()))
        .then_err_mentioning(DomainError::Invalid, "store name must not be empty");
}

#[test]
fn a_store_name_is_at_most_120_characters() {
    given::<Store>([]).when(register_with(|name, _, _| *name = "가".repeat(121))).then_err(DomainError::Invalid);
    given::<Store>([]).when(register_with(|name, _, _| *name = "가".repeat(120))).then([StoreEvent::StoreRegistered {
        store_id: store_id(),
        owner: owner(),
        name: "가".repeat(120),
        region: region(),
        menu: menu(),
    }]);
}

#[test]
fn a_store_needs_a_region() {
    given::<Store>([]).when(register_with(|_, region, _| *region = " ".into())).then_err_mentioning(DomainError::Invalid, "region");
}

#[test]
fn a_menu_needs_at_least_one_item() {
    given::<Store>([]).when(register_with(|_, _, menu| menu.clear())).then_err_mentioning(DomainError::Invalid, "at least one item");
}

#[test]
fn a_menu_has_at_most_200_items() {
    given::<Store>([])
        .when(register_with(|_, _, menu| *menu = many_items(MAX_MENU_ITEMS + 1)))
        .then_err_mentioning(DomainError::Invalid, "at most 200");
    let store =
        given::<Store>([]).when(register_with(|_, _, menu| *menu = many_items(MAX_MENU_ITEMS))).then([StoreEvent::StoreRegistered {
            store_id: store_id(),
            owner: owner(),
            name: "Seoul Kitchen".into(),
            region: region(),
            menu: many_items(MAX_MENU_ITEMS),
        }]);
    assert_eq!(store.profile.unwrap().menu.len(), 200);
}

#[test]
fn menu_item_ids_are_unique_within_the_store() {
    given::<Store>([])
        .when(register_with(|_, _, menu| menu.push(item("bibimbap", "Dolsot bibimbap", 1500))))
        .then_err_mentioning(DomainError::Invalid, "bibimbap appears twice");
}

#[test]
fn every_menu_item_needs_an_id_and_a_name() {
    given::<Store>([])
        .when(register_with(|_, _, menu| menu.push(item("", "Mandu", 700))))
        .then_err_mentioning(DomainError::Invalid, "needs an id");
    given::<Store>([])
        .when(register_with(|_, _, menu| menu.push(item("mandu", "  ", 700))))
        .then_err_mentioning(DomainError::Invalid, "menu item name");
}

#[test]
fn a_price_is_more_than_nothing() {
    given::<Store>([])
        .when(register_with(|_, _, menu| menu[0].price = Money::ZERO))
        .then_err_mentioning(DomainError::Invalid, "price of Bibimbap");
}

#[test]
fn a_price_is_at_most_ten_thousand() {
    given::<Store>([]).when(register_with(|_, _, menu| menu[0].price = Money(MAX_PRICE.0 + 1))).then_err(DomainError::Invalid);
    let store = given::<Store>([]).when(register_with(|_, _, menu| *menu = vec![item("banquet", "Royal banquet", MAX_PRICE.0)])).then([
        StoreEvent::StoreRegistered {
            store_id: store_id(),
            owner: owner(),
            name: "Seoul Kitchen".into(),
            region: region(),
            menu: vec![item("banquet", "Royal banquet", 1_000_000)],
        },
    ]);
    assert_eq!(store.profile.unwrap().menu[0].price, MAX_PRICE);
}

#[test]
fn a_store_is_registered_only_once() {
    given::<Store>([store_registered()]).when(register_store()).then_err_mentioning(DomainError::Conflict, "already registered");
}

// ---------------------------------------------------------------- menu, open, close

#[test]
fn the_owner_changes_the_menu() {
    let new_menu = vec![item("japchae", "Japchae", 1100)];
    let store = given::<Store>([store_registered()])
        .when(StoreCommand::ChangeMenu { owner: owner(), menu: new_menu.clone() })
        .then([menu_changed(new_menu.clone())]);
    assert_eq!(store.profile.unwrap().menu, new_menu);
}

#[test]
fn another_owner_may_not_change_the_menu() {
    given::<Store>([store_registered()])
        .when(StoreCommand::ChangeMenu { owner: other_owner(), menu: menu() })
        .then_err_mentioning(DomainError::Forbidden, "only the owner of Seoul Kitchen");
}

#[test]
fn a_changed_menu_is_validated_like_a_new_one() {
    given::<Store>([store_registered()]).when(StoreCommand::ChangeMenu { owner: owner(), menu: vec![] }).then_err(DomainError::Invalid);
    given::<Store>([store_registered()])
        .when(StoreCommand::ChangeMenu { owner: owner(), menu: vec![item("a", "A", 100), item("a", "B", 100)] })
        .then_err(DomainError::Invalid);
}

#[test]
fn commands_on_an_unregistered_store_find_nothing() {
    for command in [
        StoreCommand::ChangeMenu { owner: owner(), menu: menu() },
        StoreCommand::Open { owner: owner() },
        StoreCommand::Close { owner: owner() },
    ] {
        given::<Store>([]).when(command).then_err(DomainError::NotFound);
    }
}

#[test]
fn the_owner_closes_and_reopens_the_store() {
    let store = given::<Store>([store_registered()]).when(StoreCommand::Close { owner: owner() }).then([store_closed()]);
    assert!(!store.profile.unwrap().open);
    let store = given::<Store>([store_registered(), store_closed()]).when(StoreCommand::Open { owner: owner() }).then([store_opened()]);
    assert!(store.profile.unwrap().open);
}

#[test]
fn opening_an_open_store_or_closing_a_closed_one_changes_nothing() {
    given::<Store>([store_registered()]).when(StoreCommand::Open { owner: owner() }).then_nothing();
    given::<Store>([store_registered(), store_closed()]).when(StoreCommand::Close { owner: owner() }).then_nothing();
}

#[test]
fn another_owner_may_not_open_or_close_the_store() {
    given::<Store>([store_registered()]).when(StoreCommand::Close { owner: other_owner() }).then_err(DomainError::Forbidden);
    given::<Store>([store_registered(), store_closed()]).when(StoreCommand::Open { owner: other_owner() }).then_err(DomainError::Forbidden);
}

// ---------------------------------------------------------------- quote

fn items(list: &[(&str, u32)]) -> Vec<(MenuItemId, u32)> {
    list.iter().map(|(id, quantity)| (MenuItemId::from(*id), *quantity)).collect()
}

fn registered() -> Store {
    given::<Store>([store_registered()]).history.state
}

#[test]
fn a_quote_prices_each_item_at_the_menu_price() {
    let (lines, total) = registered().quote(&region(), &items(&[("bibimbap", 2), ("kimchi-stew", 1)])).unwrap();
    assert_eq!(lines, support::lines());
    assert_eq!(total, Money(2 * 1200 + 950));
}

#[test]
fn a_quote_merges_repeated_items_into_one_line() {
    let (lines, total) = registered().quote(&region(), &items(&[("tteokbokki", 1), ("bibimbap", 1), ("tteokbokki", 2)])).unwrap();
    assert_eq!(lines, vec![line("bibimbap", "Bibimbap", 1200, 1), line("tteokbokki", "Tteokbokki", 600, 3)]);
    assert_eq!(total, Money(1200 + 3 * 600));
}

#[test]
fn a_quote_uses_the_prices_of_the_menu_at_ordering_time() {
    let store = given::<Store>([store_registered(), menu_changed(vec![item("bibimbap", "Bibimbap", 1400)])]).history.state;
    let (lines, total) = store.quote(&region(), &items(&[("bibimbap", 2)])).unwrap();
    assert_eq!(lines, vec![line("bibimbap", "Bibimbap", 1400, 2)]);
    assert_eq!(total, Money(2800));
    let refused = store.quote(&region(), &items(&[("kimchi-stew", 1)])).unwrap_err();
    assert!(matches!(refused, DomainError::Invalid(_)), "kimchi stew left the menu: {refused:?}");
}

#[test]
fn a_closed_store_takes_no_orders() {
    let store = given::<Store>([store_registered(), store_closed()]).history.state;
    let refused = store.quote(&region(), &items(&[("bibimbap", 1)])).unwrap_err();
    assert!(matches!(&refused, DomainError::Conflict(m) if m.contains("closed")), "{refused:?}");
}

#[test]
fn a_store_delivers_only_to_its_region() {
    let refused = registered().quote(&"mapo".into(), &items(&[("bibimbap", 1)])).unwrap_err();
    assert!(matches!(&refused, DomainError::Invalid(m) if m.contains("region mapo")), "{refused:?}");
}

#[test]
fn a_quote_refuses_an_item_not_on_the_menu() {
    let refused = registered().quote(&region(), &items(&[("bibimbap", 1), ("pizza", 1)])).unwrap_err();
    assert!(matches!(&refused, DomainError::Invalid(m) if m.contains("no menu item pizza")), "{refused:?}");
}

#[test]
fn a_quote_needs_items() {
    let refused = registered().quote(&region(), &[]).unwrap_err();
    assert!(matches!(refused, DomainError::Invalid(_)), "{refused:?}");
}

#[test]
fn quantities_are_between_1_and_100() {
    for quantity in [0, 101] {
        let refused = registered().quote(&region(), &items(&[("bibimbap", quantity)])).unwrap_err();
        assert!(matches!(refused, DomainError::Invalid(_)), "quantity {quantity}: {refused:?}");
    }
    let (lines, total) = registered().quote(&region(), &items(&[("bibimbap", 100)])).unwrap();
    assert_eq!(lines[0].quantity, 100);
    assert_eq!(total, Money(120_000));
}

#[test]
fn merged_quantities_are_at_most_100_too() {
    let refused = registered().quote(&region(), &items(&[("bibimbap", 60), ("bibimbap", 41)])).unwrap_err();
    assert!(matches!(refused, DomainError::Invalid(_)), "{refused:?}");
}

#[test]
fn an_unregistered_store_quotes_nothing() {
    let refused = Store::default().quote(&region(), &items(&[("bibimbap", 1)])).unwrap_err();
    assert!(matches!(refused, DomainError::NotFound(_)), "{refused:?}");
}

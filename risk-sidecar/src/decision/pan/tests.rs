use super::*;
use proptest::prelude::*;
use serde_json::json;

#[test]
fn known_test_cards_are_recognised_in_any_layout() {
    for pan in [
        "4111111111111111",
        "4111 1111 1111 1111",
        "5555-5555-5555-4444",
        "378282246310005",
    ] {
        assert!(looks_like_pan(pan), "{pan}");
    }
}

#[test]
fn ordinary_values_are_not_pans() {
    for s in [
        "4111111111111112",
        "411111111111",
        "ord_4111111111111111",
        "",
        "12345678901234567890",
        "tok_abc",
    ] {
        assert!(!looks_like_pan(s), "{s}");
    }
}

#[test]
fn path_names_the_nested_field() {
    let body = json!({"metadata": {"note": "4242 4242 4242 4242"}, "items": [{"sku": "a"}]});
    assert_eq!(find_pan(&body).as_deref(), Some("metadata.note"));
    let body = json!({"items": [{"sku": "a"}, {"sku": 4242424242424242u64}]});
    assert_eq!(find_pan(&body).as_deref(), Some("items[1].sku"));
    assert_eq!(find_pan(&json!({"amount": {"value_minor": 10000000000000u64}})), None);
}

proptest! {
    #[test]
    fn a_luhn_valid_number_is_always_found(prefix in proptest::collection::vec(0u8..10, 12..=18)) {
        // Complete any digit string to a Luhn-valid one by choosing the check digit.
        let check = (0u8..10).find(|c| {
            let mut d = prefix.clone();
            d.push(*c);
            luhn(&d)
        }).expect("one check digit fits");
        let pan: String = prefix.iter().chain(std::iter::once(&check)).map(|d| (b'0' + d) as char).collect();
        prop_assert!(looks_like_pan(&pan));
        let body = json!({"customer": {"id": "c1"}, "payment": {"card_fingerprint": pan}});
        let found = find_pan(&body);
        prop_assert_eq!(found.as_deref(), Some("payment.card_fingerprint"));
    }
}

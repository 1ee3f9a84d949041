use super::*;
use proptest::prelude::*;
use serde_json::{Value, json};

/// The screen's finding for a body (the walk over every key and value lives there).
fn find_pan(body: &Value) -> Option<Option<String>> {
    crate::decision::screen::screen(&body.to_string())
        .expect("valid JSON")
        .pan
}

const PAN: &str = "4242424242424242";

#[test]
fn known_test_cards_are_recognised_in_any_layout() {
    for pan in [
        "4111111111111111",
        "4111 1111 1111 1111",
        "5555-5555-5555-4444",
        "378282246310005",
        "4242.4242.4242.4242",
        "4242/4242/4242/4242",
        "4242_4242_4242_4242",
        "4242\u{a0}4242\u{a0}4242\u{a0}4242",
        "4242\u{202f}4242\u{2009}4242\u{3000}4242",
        "4242 - 4242 - 4242 - 4242",
        "\u{ff14}\u{ff12}\u{ff14}\u{ff12}\u{ff14}\u{ff12}\u{ff14}\u{ff12}\u{ff14}\u{ff12}\u{ff14}\u{ff12}\u{ff14}\u{ff12}\u{ff14}\u{ff12}",
        "\u{664}\u{662}\u{664}\u{662}\u{664}\u{662}\u{664}\u{662}\u{664}\u{662}\u{664}\u{662}\u{664}\u{662}\u{664}\u{662}",
        "card 4242424242424242",
        "x4242424242424242",
        "4242424242424242/",
        "ord_4111111111111111",
        "4242 4242 4242 4242 99",
        "call 0049 4242 4242 4242 4242",
        &format!("{} {PAN}", "a".repeat(100)),
    ] {
        assert!(contains_pan(pan), "{pan:?}");
    }
}

#[test]
fn ordinary_values_are_not_pans() {
    for s in [
        "4111111111111112",
        "411111111111",
        "",
        "12345678901234567890",
        "tok_abc",
        "2026-12-01T19:30:00.123456Z",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36",
        "ord_01jd3k6q9v7x2b4n8m5r0t1w2y:pay_1",
        "4242    4242 4242 4242",
        "42424242424242420000",
    ] {
        assert!(!contains_pan(s), "{s:?}");
    }
}

#[test]
fn path_names_the_field_and_never_a_key() {
    let body = json!({"metadata": {"note": "4242 4242 4242 4242"}, "items": [{"sku": "a"}]});
    assert_eq!(find_pan(&body), Some(Some("metadata.note".into())));
    let body = json!({"items": [{"sku": "a"}, {"sku": 4242424242424242u64}]});
    assert_eq!(find_pan(&body), Some(Some("items[1].sku".into())));
    let body = json!({"metadata": {PAN: "x"}});
    assert_eq!(find_pan(&body), Some(Some("metadata".into())), "a key: its object");
    assert_eq!(find_pan(&json!({PAN: 1})), Some(None), "a key of the body");
    assert_eq!(find_pan(&json!({"amount": {"value_minor": 10000000000000u64}})), None);
}

#[test]
fn numbers_in_every_form_are_scanned() {
    for body in [
        json!({"a": 4242424242424242u64}),
        json!({"a": -4242424242424242i64}),
        json!({"a": 4242424242424242.0}),
        json!({"a": -4242424242424242.0}),
        json!({"a": 4242424242424.242}),
    ] {
        assert!(find_pan(&body).is_some(), "{body}");
    }
    assert_eq!(find_pan(&json!({"a": 4242424242424241.5})), None, "fails Luhn");
    assert_eq!(find_pan(&json!({"a": 12.5, "b": -3})), None);
}

#[test]
fn typed_timestamps_are_not_card_numbers() {
    let long_fraction = "2026-12-01T19:30:00.4242424242424242Z";
    assert_eq!(find_pan(&json!({"occurred_at": long_fraction})), None);
    assert_eq!(
        find_pan(&json!({"customer": {"account_created_at": long_fraction}})),
        None
    );
    assert!(
        find_pan(&json!({"metadata": {"note": long_fraction}})).is_some(),
        "the same text elsewhere"
    );
    assert!(
        find_pan(&json!({"occurred_at": PAN})).is_some(),
        "not a timestamp: scanned"
    );
}

/// The digits of a Luhn-valid number of `len` digits from a seed.
fn luhn_number(prefix: &[u8]) -> Vec<u8> {
    let check = (0u8..10)
        .find(|c| {
            let mut d = prefix.to_vec();
            d.push(*c);
            luhn(&d)
        })
        .expect("one check digit fits");
    let mut d = prefix.to_vec();
    d.push(check);
    d
}

/// Writes digits in one of the layouts card numbers travel in.
fn layout(digits: &[u8], style: u8) -> String {
    let zero: u32 = match style % 4 {
        0 => 0x30,
        1 => 0xff10,
        2 => 0x660,
        _ => 0x1d7ce,
    };
    let sep = ["", " ", "-", ".", "/", "_", "\u{a0}", "\u{2009}"][usize::from(style / 4 % 8)];
    let mut out = String::new();
    for (i, d) in digits.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push_str(sep);
        }
        out.push(char::from_u32(zero + u32::from(*d)).expect("digit"));
    }
    out
}

proptest! {
    #[test]
    fn a_luhn_valid_number_is_found_in_any_layout_and_surroundings(
        prefix in proptest::collection::vec(0u8..10, 12..=18),
        style in 0u8..32,
        before in "[a-z ]{0,8}",
        after in "[a-z ]{0,8}",
    ) {
        let pan = layout(&luhn_number(&prefix), style);
        let text = format!("{before}{pan}{after}");
        prop_assert!(contains_pan(&text), "{:?}", text);
        let body = json!({"customer": {"id": "c1"}, "metadata": {"k": text}});
        prop_assert_eq!(find_pan(&body), Some(Some("metadata.k".to_owned())));
    }

    #[test]
    fn the_ascii_prefilter_never_hides_what_the_full_scan_finds(
        s in "[0-9 ./_\\-\t\x0b:a-z]{13,40}",
        pan_at in 0usize..20,
        prefix in proptest::collection::vec(0u8..10, 12..=18),
    ) {
        let pan = layout(&luhn_number(&prefix), 4);
        let at = pan_at.min(s.len());
        let text = format!("{}{pan}{}", &s[..at], &s[at..]);
        for t in [&s, &text] {
            prop_assert!(!scan(t) || ascii_run_of_13_digits(t.as_bytes()), "{:?}", t);
        }
    }

    #[test]
    fn the_scanner_never_panics(s in "\\PC{0,80}") {
        let _ = contains_pan(&s);
    }
}

#[test]
fn a_float_is_read_exactly() {
    // Without serde_json's float_roundtrip, this reads as 4242424242424241.5 and hides.
    let text = r#"{"a": 4242424242424242.0}"#;
    let v: Value = serde_json::from_str(text).expect("json");
    assert_eq!(v["a"].as_f64(), Some(4242424242424242.0));
    assert!(crate::decision::screen::screen(text).expect("json").pan.is_some());
}

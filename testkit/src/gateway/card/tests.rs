use super::*;

fn card(number: &str, month: u8, year: u16, cvc: &str) -> CardInput {
    CardInput {
        number: number.into(),
        exp_month: month,
        exp_year: year,
        cvc: cvc.into(),
    }
}

#[test]
fn valid_numbers_keep_only_what_may_be_shown() {
    let number = CardNumber::parse("4242 4242-4242 4242").expect("valid");
    assert_eq!((number.bin(), number.last4()), ("424242", "4242"));
}

#[test]
fn invalid_cards_are_refused_with_a_reason() {
    for (input, why) in [
        (card("4242424242424241", 12, 2099, "123"), "Luhn"),
        (card("42424242", 12, 2099, "123"), "too short"),
        (card("4242x24242424242", 12, 2099, "123"), "letters"),
        (card("4242424242424242", 13, 2099, "123"), "month"),
        (card("4242424242424242", 1, 2020, "123"), "expired"),
        (card("4242424242424242", 12, 2099, "12"), "cvc"),
    ] {
        assert!(input.validate().is_err(), "{why}");
    }
    assert!(
        card("4242424242424242", 12, 99, "1234").validate().is_ok(),
        "two-digit year"
    );
}

#[test]
fn debug_never_shows_the_number() {
    assert_eq!(
        format!("{:?}", card("4242424242424242", 1, 2099, "123")),
        "CardInput { .. }"
    );
}

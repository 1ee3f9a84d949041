use super::*;

#[test]
fn body_errors_name_our_fields_but_never_quote_a_value() {
    assert_eq!(
        body_problem(
            "JSON body",
            "Json deserialize error: missing field `password` at line 1 column 30"
        ),
        "invalid JSON body: missing field `password`"
    );
    let quoted = body_problem(
        "JSON body",
        "invalid type: integer `4242424242424242`, expected a string",
    );
    assert!(!quoted.contains("4242"), "{quoted}");
}

#[test]
fn money_is_shown_in_major_units() {
    assert_eq!(money(0, "EUR"), "0.00 EUR");
    assert_eq!(money(123456, "EUR"), "1234.56 EUR");
    assert_eq!(money(-5, "EUR"), "-0.05 EUR");
}

use super::*;

const PAN: &str = "4242424242424242";

fn found(body: &str) -> Findings {
    screen(body).expect("valid JSON")
}

#[test]
fn only_an_object_is_a_body() {
    assert!(found(r#"{"a": 1}"#).object);
    for body in ["[1]", r#""x""#, "null", "12", "[{}]"] {
        assert!(!found(body).object, "{body}");
    }
    for body in ["", "{", r#"{"a": 1} x"#, r#"{"a": tru}"#, "[1"] {
        assert!(screen(body).is_err(), "{body:?}");
    }
}

#[test]
fn nesting_beyond_serde_json_limit_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(screen(&deep).is_err());
}

#[test]
fn a_card_number_is_found_in_unknown_fields_escaped_strings_and_keys() {
    let pan_at = |body: &str| found(body).pan;
    assert_eq!(
        pan_at(&format!(r#"{{"x": {{"y": ["a", "{PAN}"]}}}}"#)),
        Some(Some("x.y[1]".into()))
    );
    // \u0034 is "4": an escape does not hide a digit.
    let escaped = format!(r#"{{"note": "\u0034{}"}}"#, &PAN[1..]);
    assert_eq!(pan_at(&escaped), Some(Some("note".into())));
    assert_eq!(pan_at(&format!(r#"{{"m": {{"{PAN}": 1}}}}"#)), Some(Some("m".into())));
    assert_eq!(pan_at(&format!(r#"{{"{PAN}": 1}}"#)), Some(None));
    assert_eq!(
        pan_at(r#"{"amount": {"value_minor": 999999999999}, "n": -12, "f": 1.5}"#),
        None
    );
}

#[test]
fn the_first_finding_in_document_order_is_reported() {
    let body = format!(r#"{{"b": "{PAN}", "a": "{PAN}"}}"#);
    assert_eq!(found(&body).pan, Some(Some("b".into())));
    // A repeated key is scanned each time: the card number in the first is not lost.
    let body = format!(r#"{{"note": "{PAN}", "note": "fine"}}"#);
    assert_eq!(found(&body).pan, Some(Some("note".into())));
}

#[test]
fn a_nul_is_found_in_values_and_keys_with_its_path() {
    assert_eq!(found(r#"{"c": {"id": "a\u0000b"}}"#).nul.as_deref(), Some("c.id"));
    assert_eq!(
        found(r#"{"items": [{"sku": "x\u0000"}]}"#).nul.as_deref(),
        Some("items[0].sku")
    );
    assert_eq!(found(r#"{"m": {"ke\u0000y": "v"}}"#).nul.as_deref(), Some("m.ke"));
    assert_eq!(found(r#"{"\u0000k": 1}"#).nul.as_deref(), Some(""));
    assert_eq!(
        found(r#"{"m": {"k": "v"}, "items": [[1, "z"]]}"#),
        Findings {
            object: true,
            ..Findings::default()
        }
    );
}

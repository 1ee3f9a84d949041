use super::*;
use serde_json::{Value, json};

const NOW: i64 = 1_764_000_000_000;

fn valid() -> Value {
    json!({
        "transaction_id": "ord_1042:pay_1",
        "amount": {"value_minor": 4599, "currency": "EUR"},
        "customer": {"id": "cus_1", "email": "Ann@Example.COM"},
        "payment": {"card_fingerprint": "fp_abc", "bin": "411111", "last4": "1111", "card_country": "DE"},
        "device": {"ip": "2001:db8:1:2:3:4:5:6", "id": "dev_1"},
        "items": [{"sku": "a", "quantity": 2, "unit_price_minor": 1000}, {"sku": "a", "quantity": 1, "unit_price_minor": 1}]
    })
}

fn parse(v: &Value) -> Result<DecisionInput, InputError> {
    DecisionInput::parse(v.to_string().as_bytes(), NOW)
}

fn field_of(v: Value) -> Option<String> {
    match parse(&v) {
        Err(InputError::Invalid { field, .. }) => field,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn a_valid_request_parses_into_domain_values() {
    let input = parse(&valid()).expect("valid");
    assert_eq!(input.occurred_at_ms, NOW, "occurred_at defaults to now");
    assert_eq!(input.email_domain.as_deref(), Some("example.com"));
    assert_eq!(input.ip_key.as_deref(), Some("2001:db8:1:2::/64"));
    assert_eq!((input.item_count, input.distinct_skus), (3, 1));
    assert_eq!(input.method, PaymentMethod::Card);
}

#[test]
fn each_rule_names_its_field() {
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("transaction_id", Box::new(|v| v["transaction_id"] = json!("has space"))),
        ("transaction_id", Box::new(|v| v["transaction_id"] = json!(""))),
        (
            "transaction_id",
            Box::new(|v| v["transaction_id"] = json!("x".repeat(129))),
        ),
        ("transaction_id", Box::new(|v| v["transaction_id"] = json!(12))),
        (
            "transaction_id",
            Box::new(|v| {
                v.as_object_mut().expect("object").remove("transaction_id");
            }),
        ),
        ("occurred_at", Box::new(|v| v["occurred_at"] = json!("yesterday"))),
        (
            "occurred_at",
            Box::new(|v| v["occurred_at"] = json!("2099-01-01T00:00:00Z")),
        ),
        (
            "amount.value_minor",
            Box::new(|v| v["amount"]["value_minor"] = json!(-1)),
        ),
        (
            "amount.value_minor",
            Box::new(|v| v["amount"]["value_minor"] = json!(10_000_000_000_001i64)),
        ),
        (
            "amount.value_minor",
            Box::new(|v| v["amount"]["value_minor"] = json!(1.5)),
        ),
        (
            "amount.value_minor",
            Box::new(|v| {
                v["amount"].as_object_mut().expect("object").remove("value_minor");
            }),
        ),
        ("amount.currency", Box::new(|v| v["amount"]["currency"] = json!("eur"))),
        (
            "amount",
            Box::new(|v| {
                v.as_object_mut().expect("object").remove("amount");
            }),
        ),
        ("customer.id", Box::new(|v| v["customer"]["id"] = json!(""))),
        ("customer.email", Box::new(|v| v["customer"]["email"] = json!("a@b@c"))),
        ("customer.email", Box::new(|v| v["customer"]["email"] = json!("nobody"))),
        (
            "customer.account_created_at",
            Box::new(|v| v["customer"]["account_created_at"] = json!("2024-13-01")),
        ),
        ("payment.method", Box::new(|v| v["payment"]["method"] = json!("crypto"))),
        (
            "payment.card_fingerprint",
            Box::new(|v| {
                v["payment"].as_object_mut().expect("object").remove("card_fingerprint");
            }),
        ),
        ("payment.bin", Box::new(|v| v["payment"]["bin"] = json!("41111"))),
        ("payment.last4", Box::new(|v| v["payment"]["last4"] = json!("11a1"))),
        (
            "payment.card_country",
            Box::new(|v| v["payment"]["card_country"] = json!("DEU")),
        ),
        ("device.ip", Box::new(|v| v["device"]["ip"] = json!("300.1.1.1"))),
        ("device.id", Box::new(|v| v["device"]["id"] = json!(""))),
        (
            "device.user_agent",
            Box::new(|v| v["device"]["user_agent"] = json!("u".repeat(513))),
        ),
        (
            "shipping.country",
            Box::new(|v| v["shipping"] = json!({"country": "de"})),
        ),
        ("billing.country", Box::new(|v| v["billing"] = json!({"country": "D"}))),
        (
            "items",
            Box::new(|v| v["items"] = json!(vec![json!({"sku": "a", "quantity": 1, "unit_price_minor": 1}); 101])),
        ),
        ("items[1].quantity", Box::new(|v| v["items"][1]["quantity"] = json!(-2))),
        ("items[0].sku", Box::new(|v| v["items"][0]["sku"] = json!(""))),
        (
            "metadata",
            Box::new(|v| {
                v["metadata"] = json!(
                    (0..21)
                        .map(|i| (format!("k{i}"), json!("v")))
                        .collect::<serde_json::Map<_, _>>()
                )
            }),
        ),
        ("metadata.k", Box::new(|v| v["metadata"] = json!({"k": 1}))),
    ];
    for (expected, mutate) in cases {
        let mut body = valid();
        mutate(&mut body);
        assert_eq!(field_of(body.clone()).as_deref(), Some(expected), "body: {body}");
    }
}

#[test]
fn bodies_that_are_not_objects_are_invalid_json() {
    for body in ["", "{", "[1]", "\"x\"", "null"] {
        assert!(
            matches!(
                DecisionInput::parse(body.as_bytes(), NOW),
                Err(InputError::InvalidJson(_))
            ),
            "{body}"
        );
    }
}

#[test]
fn optional_parts_may_be_absent_and_unknown_fields_are_ignored() {
    let body = json!({
        "transaction_id": "t1", "amount": {"value_minor": 0, "currency": "KRW"},
        "customer": {"id": "c"}, "payment": {"method": "bank_transfer"}, "surprise": {"deep": [1, 2]}
    });
    let input = parse(&body).expect("valid");
    assert_eq!(input.card_fingerprint, None);
    assert_eq!(input.device_id, None);
}

#[test]
fn a_card_number_is_refused_before_anything_echoes_it() {
    let mut body = valid();
    body["payment"]["card_fingerprint"] = json!("4111111111111111");
    let err = parse(&body).expect_err("pan");
    assert_eq!(
        err,
        InputError::Pan {
            field: Some("payment.card_fingerprint".into())
        }
    );
    assert!(
        !format!("{err} {err:?}").contains("4111"),
        "the error must not carry the number"
    );
}

#[test]
fn a_nul_character_anywhere_is_refused_with_its_field() {
    let mut v = valid();
    v["customer"]["id"] = "cus\u{0}1".into();
    assert_eq!(field_of(v).as_deref(), Some("customer.id"));
    let mut v = valid();
    v["metadata"] = json!({"note": "a\u{0}b"});
    assert_eq!(field_of(v).as_deref(), Some("metadata.note"));
}

#[test]
fn a_field_given_twice_is_refused_not_read_as_the_last() {
    let body = valid().to_string();
    let twice = body.replacen(
        "\"transaction_id\":",
        "\"transaction_id\":\"first\",\"transaction_id\":",
        1,
    );
    assert_ne!(twice, body);
    match DecisionInput::parse(twice.as_bytes(), 0) {
        Err(InputError::Invalid { field, message }) => {
            assert_eq!(field.as_deref(), Some("transaction_id"));
            assert_eq!(message, "is given more than once");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn a_body_that_is_not_utf8_is_invalid_json_with_its_position() {
    let body = b"{\"transaction_id\":\n \"t\xff1\"}";
    assert_eq!(
        DecisionInput::parse(body, NOW),
        Err(InputError::InvalidJson(
            "body is not valid JSON (line 2, column 4)".to_owned()
        ))
    );
}

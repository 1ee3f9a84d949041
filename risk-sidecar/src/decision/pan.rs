//! Spotting a full card number (PAN) anywhere in a request body, so it can be
//! refused before anything else reads, logs or stores it.

use serde_json::Value;

/// The dotted path of the first value that looks like a full card number:
/// 13–19 digits (spaces and dashes between them allowed) passing the Luhn check.
/// Numbers count as well as strings; object keys are not values and are not checked.
pub fn find_pan(value: &Value) -> Option<String> {
    let mut path = String::new();
    walk(value, &mut path).then_some(path)
}

fn walk(value: &Value, path: &mut String) -> bool {
    match value {
        Value::String(s) => looks_like_pan(s),
        Value::Number(n) => n.as_u64().is_some_and(|v| looks_like_pan(&v.to_string())),
        Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = walk(item, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        Value::Object(map) => map.iter().any(|(key, item)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            let found = walk(item, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        Value::Null | Value::Bool(_) => false,
    }
}

pub fn looks_like_pan(s: &str) -> bool {
    // Cheap rejections first: this runs on every string of every request.
    if s.len() < 13 || s.len() > 19 * 2 {
        return false;
    }
    let mut digits = [0u8; 19];
    let mut n = 0;
    for b in s.bytes() {
        match b {
            b'0'..=b'9' => {
                if n == 19 {
                    return false;
                }
                digits[n] = b - b'0';
                n += 1;
            }
            b' ' | b'-' => {}
            _ => return false,
        }
    }
    n >= 13 && luhn(&digits[..n])
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
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
}

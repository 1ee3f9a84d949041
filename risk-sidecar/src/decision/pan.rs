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
mod tests;

//! The card-number scanner on any text and any JSON: never a panic; what it finds in a
//! string it also finds in that string inside a body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use risk_sidecar::decision::pan::{contains_pan, find_pan};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let found = contains_pan(text);
        let body = serde_json::json!({"metadata": {"k": text}});
        assert_eq!(found, find_pan(&body).is_some(), "{text:?}");
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            let _ = find_pan(&value);
        }
    }
});

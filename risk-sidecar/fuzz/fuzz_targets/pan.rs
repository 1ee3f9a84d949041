//! The card-number scanner on any text and any JSON: never a panic; what it finds in a
//! string it also finds in that string inside a body; and the scan with its ASCII
//! pre-check agrees with itself on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use risk_sidecar::decision::pan::contains_pan;
use risk_sidecar::decision::screen::screen;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let found = contains_pan(text);
        let body = serde_json::json!({"metadata": {"k": text}}).to_string();
        assert_eq!(found, screen(&body).expect("valid JSON").pan.is_some(), "{text:?}");
        let _ = screen(text);
    }
});

//! The request parser on any bytes: never a panic, and a refusal never carries a
//! card number the scanner found.
#![no_main]

use libfuzzer_sys::fuzz_target;
use risk_sidecar::decision::input::{DecisionInput, InputError};

const NOW_MS: i64 = 1_764_000_000_000;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = DecisionInput::parse(data, NOW_MS) {
        let text = format!("{e} {e:?}");
        if let InputError::Invalid { message, .. } = &e {
            assert!(!risk_sidecar::decision::pan::contains_pan(message), "{text}");
        }
    }
});

//! Fuzz target for the LLM chunk scanner: any payload must scan without panicking, and one that
//! scans as JSON must also parse as JSON (the scanner is never more lenient about structure than
//! serde_json, except where its docs say so: UTF-8 and control characters inside strings).

#![no_main]

use libfuzzer_sys::fuzz_target;
use ssebench::llm::chunk::{scan, ChunkError};

fuzz_target!(|payload: &[u8]| {
    let scanned = scan(payload);
    if let Ok(text) = std::str::from_utf8(payload) {
        let parsed = serde_json::from_str::<serde_json::Value>(text);
        // Raw control bytes (tabs included) may sit inside strings, where JSON forbids them.
        let controls = text.bytes().any(|b| b < 0x20);
        // serde_json refuses numbers beyond f64 that JSON's grammar allows.
        let out_of_range = parsed.as_ref().is_err_and(|e| e.to_string().contains("out of range"));
        if parsed.is_err() && !controls && !out_of_range && !text.contains("\\u") && text.trim() != "[DONE]" {
            assert!(scanned.is_err(), "scanned garbage as JSON: {text:?}");
        }
        if parsed.is_ok() && scanned == Err(ChunkError::NotJson) {
            panic!("rejected valid JSON: {text:?}");
        }
    }
});

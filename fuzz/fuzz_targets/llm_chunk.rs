//! Fuzz target for the LLM chunk scanner: any payload must scan without panicking, and one that
//! scans as JSON must also parse as JSON (the scanner is never more lenient about structure than
//! serde_json, except where its docs say so: UTF-8 and control characters inside strings). The capturing
//! scan must agree with the plain one, keep exactly the content bytes it counted (up to its limit), and leave the
//! buffer as it was on an error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ssebench::llm::chunk::{scan, scan_capturing, Capture, ChunkError};

fuzz_target!(|payload: &[u8]| {
    let scanned = scan(payload);
    let mut text = b"kept".to_vec();
    let limit = 4 + payload.len() % 64;
    let captured = scan_capturing(payload, Some(Capture { text: &mut text, limit }));
    assert_eq!(captured, scanned, "capturing changed the scan");
    match scanned {
        Ok(info) => assert_eq!(text.len(), (4 + info.content_bytes as usize).min(limit.max(4))),
        Err(_) => assert_eq!(text, b"kept"),
    }
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

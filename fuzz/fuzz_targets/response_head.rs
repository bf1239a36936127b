//! Fuzz target for `http1::response::parse_head`: never panics, agrees with itself on every prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssebench::http1::response::{HeadError, MAX_HEAD_BYTES, parse_head};

fuzz_target!(|data: &[u8]| {
    let whole = parse_head(data);
    match whole {
        Ok(None) => assert!(data.len() < MAX_HEAD_BYTES, "incomplete at the bound"),
        Err(HeadError::TooLarge) => assert!(data.len() >= MAX_HEAD_BYTES),
        Err(_) => {}
        Ok(Some(head)) => {
            assert!(head.head_len <= data.len() && head.head_len <= MAX_HEAD_BYTES);
            // The bytes after the head play no part.
            assert_eq!(parse_head(&data[..head.head_len]), whole);
            // A head that parses whole must look incomplete at every shorter prefix: otherwise
            // the result would depend on how TCP split the bytes. (Stricter than "None or an
            // error": an error at a prefix of a valid head would fail a good response.)
            for end in 0..head.head_len {
                let prefix = parse_head(&data[..end]);
                assert_eq!(prefix, Ok(None), "prefix {end} of {}", head.head_len);
            }
        }
    }
});

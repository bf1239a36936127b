//! Fuzz target for `http1::coding::Decoder`: never panics, hands on bounded non-empty slices, and
//! reaches the same verdict however the input is split; compressed data it made itself comes back
//! whole.
//!
//! Input layout: first byte = coding (mod 3: gzip, deflate, br) and mode (bit 7: compress the rest
//! with flate2 first, gzip or zlib, so the decoder sees valid data), second byte = cut point (taken
//! modulo the body length + 1), then the body.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use ssebench::http1::coding::{Coding, CodingError, Decoder, OUT_BYTES};

fn decode<'a>(coding: Coding, pieces: impl IntoIterator<Item = &'a [u8]>) -> (Vec<u8>, Result<(), CodingError>) {
    let mut decoder = Decoder::new(coding).expect("a decoded coding");
    let mut decoded = Vec::new();
    let mut on_data = |data: &[u8]| {
        assert!(!data.is_empty() && data.len() <= OUT_BYTES);
        decoded.extend_from_slice(data);
    };
    for piece in pieces {
        if let Err(error) = decoder.decode(piece, &mut on_data) {
            return (decoded, Err(error));
        }
    }
    (decoded, decoder.finish())
}

fuzz_target!(|data: &[u8]| {
    let [mode, cut, rest @ ..] = data else { return };
    let coding = Coding::DECODED[usize::from(mode & 0x7f) % 3];
    let compress_first = mode & 0x80 != 0 && coding != Coding::Br;
    let body = if compress_first {
        let level = flate2::Compression::fast();
        match coding {
            Coding::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
                encoder.write_all(rest).unwrap();
                encoder.finish().unwrap()
            }
            _ => {
                let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), level);
                encoder.write_all(rest).unwrap();
                encoder.finish().unwrap()
            }
        }
    } else {
        rest.to_vec()
    };
    let cut = usize::from(*cut) % (body.len() + 1);
    let whole = decode(coding, [&body[..]]);
    let split = decode(coding, [&body[..cut], &body[cut..]]);
    let bytewise = decode(coding, body.chunks(1));
    assert_eq!(whole.1, split.1, "verdict, cut at {cut}");
    assert_eq!(whole.1, bytewise.1, "verdict, byte by byte");
    if whole.1.is_ok() {
        assert_eq!(whole.0, split.0);
        assert_eq!(whole.0, bytewise.0);
    }
    if compress_first {
        assert_eq!(whole, (rest.to_vec(), Ok(())), "round trip");
    }
});

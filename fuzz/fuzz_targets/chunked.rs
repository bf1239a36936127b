//! Fuzz target for `http1::chunked::ChunkedDecoder`: the same payload and result however the
//! input is split, and the decode contract holds on every call.
//!
//! Input layout: first byte = number of cut points (mod 8), then two bytes per cut point (little
//! endian, taken modulo the body length + 1), then the chunked body itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssebench::http1::chunked::{ChunkedDecoder, ChunkedError};

/// Payload, then Ok(total consumed) or the error, then is_done.
type Outcome = (Vec<u8>, Result<usize, ChunkedError>, bool);

fn decode<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut decoder = ChunkedDecoder::new();
    let mut payload = Vec::new();
    let mut total = 0;
    for piece in pieces {
        let mut pos = 0;
        // A call consumes at least one byte unless done, so piece.len() + 1 calls suffice.
        for _ in 0..=piece.len() {
            if pos == piece.len() || decoder.is_done() {
                break;
            }
            match decoder.decode(&piece[pos..]) {
                Ok((consumed, data)) => {
                    assert!(consumed <= piece.len() - pos);
                    assert!(consumed > 0 || decoder.is_done(), "no progress");
                    assert!(data.start <= data.end && data.end == consumed);
                    payload.extend_from_slice(&piece[pos..][data]);
                    pos += consumed;
                    total += consumed;
                }
                Err(error) => return (payload, Err(error), decoder.is_done()),
            }
        }
        assert!(pos == piece.len() || decoder.is_done());
    }
    (payload, Ok(total), decoder.is_done())
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut_count, rest)) = data.split_first() else {
        return;
    };
    let cut_count = usize::from(cut_count % 8);
    if rest.len() < 2 * cut_count {
        return;
    }
    let (cut_bytes, body) = rest.split_at(2 * cut_count);
    let mut cuts: Vec<usize> = cut_bytes
        .chunks_exact(2)
        .map(|pair| usize::from(u16::from_le_bytes([pair[0], pair[1]])) % (body.len() + 1))
        .collect();
    cuts.extend([0, body.len()]);
    cuts.sort_unstable();

    let whole = decode([body]);
    if let (_, Ok(consumed), done) = &whole {
        // Only a finished body may leave bytes behind.
        assert!(*consumed == body.len() || *done);
    }
    let split = decode(cuts.windows(2).map(|w| &body[w[0]..w[1]]));
    assert_eq!(whole, split, "cuts {cuts:?}");
    let bytewise = decode(body.chunks(1));
    assert_eq!(whole, bytewise, "byte by byte");
});

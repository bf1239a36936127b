//! Throughput of the SSE parser on LLM-token-like streams.
//!
//! Each iteration parses about 64 KiB of `id: N\ndata: {...}\n\n` events whose
//! data payloads are 50, 100 or 200 bytes, shaped like OpenAI streaming
//! chunks. Three feeding modes show what the socket's read sizes cost: the
//! whole buffer at once, one byte per `feed` (the worst case: every line is
//! assembled in the partial-line buffer), and random read sizes from a fixed
//! seed, precomputed so no RNG runs in the timed loop. Throughput is reported
//! both as bytes and as events, so ns/event can be read off directly.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ssebench::sse::Parser;

/// Bytes of stream parsed per iteration (rounded up to whole events).
const STREAM_BYTES: usize = 64 * 1024;
const PAYLOAD_BYTES: [usize; 3] = [50, 100, 200];
/// Random read sizes are drawn from 1..=this: from tiny reads up to about
/// one MTU-sized TCP segment.
const READ_BYTES_MAX: u64 = 1500;
const SPLIT_SEED: u64 = 0x5EED_55E0_BE4C_0001;
/// Far above any event here: the bench measures parsing, not the bound.
const MAX_EVENT_SIZE: usize = 64 * 1024;

/// A `data` payload: a chat-completion chunk padded with content so that it
/// is exactly `payload_bytes` long. The chunk's own ID is left out: it would
/// not fit in 50 bytes, and the event's `id:` field carries one anyway.
fn payload(payload_bytes: usize) -> String {
    let head = r#"{"choices":[{"delta":{"content":""#;
    let tail = r#""}}]}"#;
    let content_bytes = payload_bytes - head.len() - tail.len();
    let content = "tok ".repeat(content_bytes / 4 + 1);
    let payload = format!("{head}{}{tail}", &content[..content_bytes]);
    assert_eq!(payload.len(), payload_bytes);
    payload
}

/// A stream of at least `STREAM_BYTES` and the number of events in it.
fn token_stream(payload_bytes: usize) -> (Vec<u8>, u64) {
    let mut stream = Vec::with_capacity(STREAM_BYTES + 512);
    let mut events = 0;
    while stream.len() < STREAM_BYTES {
        let event = format!("id: {events}\ndata: {}\n\n", payload(payload_bytes));
        stream.extend_from_slice(event.as_bytes());
        events += 1;
    }
    (stream, events)
}

/// The stream cut into pieces of random length, from a fixed seed.
fn random_pieces(stream: &[u8]) -> Vec<&[u8]> {
    // xorshift64: deterministic and dependency-free; quality is irrelevant here.
    let mut state = SPLIT_SEED;
    let mut pieces = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (1 + state % READ_BYTES_MAX) as usize;
        let (piece, tail) = rest.split_at(len.min(rest.len()));
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// Parses one whole stream fed as `pieces`; returns (events, data bytes) so
/// the work cannot be optimised away.
fn parse(parser: &mut Parser, pieces: &[&[u8]]) -> (u64, usize) {
    parser.reset();
    let (mut events, mut data_bytes) = (0u64, 0usize);
    for piece in pieces {
        parser
            .feed(piece, |event| {
                events += 1;
                data_bytes += event.data.len();
            })
            .expect("bench events fit the bound");
    }
    assert!(!parser.finish());
    (events, data_bytes)
}

fn bench_sse_parser(c: &mut Criterion) {
    for payload_bytes in PAYLOAD_BYTES {
        let (stream, events) = token_stream(payload_bytes);
        let modes: [(&str, Vec<&[u8]>); 3] = [
            ("whole", vec![&stream[..]]),
            ("bytewise", stream.chunks(1).collect()),
            ("random_splits", random_pieces(&stream)),
        ];
        let mut group = c.benchmark_group(format!("sse_parser/{payload_bytes}B"));
        group.throughput(Throughput::ElementsAndBytes { elements: events, bytes: stream.len() as u64 });
        let mut parser = Parser::new(MAX_EVENT_SIZE);
        for (mode, pieces) in &modes {
            // Every mode must see the same events, or the figures compare nothing.
            assert_eq!(parse(&mut parser, pieces).0, events, "{mode}");
            group.bench_function(*mode, |b| b.iter(|| black_box(parse(&mut parser, black_box(pieces)))));
        }
        group.finish();
    }
}

criterion_group!(benches, bench_sse_parser);
criterion_main!(benches);

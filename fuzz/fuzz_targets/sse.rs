//! Fuzz target for the SSE parser: it must never panic, and feeding a stream
//! in pieces must give the events of feeding it in one piece.
//!
//! Input layout: byte 0 says how many cut points follow (0..=7); each cut
//! byte scales to an offset in the stream; the rest is the stream. A small
//! bound makes `EventTooLarge` reachable; splitting may only make it come
//! sooner (a split line is buffered and counted, a whole one need not be).

#![no_main]

use libfuzzer_sys::fuzz_target;
use ssebench::sse::{Parser, SseError};

/// Small, so that the bound is hit often.
const MAX_EVENT_SIZE: usize = 48;
/// Large enough that no stream the fuzzer makes can hit it.
const MAX_EVENT_SIZE_UNBOUNDED: usize = 1 << 24;
const CUTS_MAX: usize = 7;

/// An event copied out of the parser: (type, data, last event ID).
type Owned = (Vec<u8>, Vec<u8>, Vec<u8>);

/// What feeding a whole stream left behind.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<Owned>,
    result: Result<(), SseError>,
    retry_ms: Option<u64>,
    last_event_id: Vec<u8>,
    discarded: bool,
}

fn run(parser: &mut Parser, pieces: &[&[u8]]) -> Outcome {
    let mut events = Vec::new();
    let mut result = Ok(());
    for piece in pieces {
        result = parser.feed(piece, |event| {
            events.push((
                event.event_type.to_vec(),
                event.data.to_vec(),
                event.last_event_id.to_vec(),
            ))
        });
        if result.is_err() {
            break;
        }
    }
    let (retry_ms, last_event_id) = (parser.retry_ms(), parser.last_event_id().to_vec());
    let discarded = parser.finish();
    assert!(!parser.is_mid_event());
    Outcome {
        events,
        result,
        retry_ms,
        last_event_id,
        discarded,
    }
}

fn split<'a>(stream: &'a [u8], cut_bytes: &[u8]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cut_bytes
        .iter()
        .map(|&byte| usize::from(byte) * (stream.len() + 1) / 256)
        .collect();
    cuts.sort_unstable();
    let mut pieces = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        pieces.push(&stream[start..cut]);
        start = cut;
    }
    pieces.push(&stream[start..]);
    pieces
}

fuzz_target!(|input: &[u8]| {
    let Some((&count, rest)) = input.split_first() else {
        return;
    };
    let count = (usize::from(count) % (CUTS_MAX + 1)).min(rest.len());
    let (cut_bytes, stream) = rest.split_at(count);
    let pieces = split(stream, cut_bytes);

    // Without a reachable bound, splitting changes nothing at all.
    let whole = run(&mut Parser::new(MAX_EVENT_SIZE_UNBOUNDED), &[stream]);
    let split_up = run(&mut Parser::new(MAX_EVENT_SIZE_UNBOUNDED), &pieces);
    assert_eq!(whole.result, Ok(()));
    assert_eq!(split_up, whole);
    let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(
        run(&mut Parser::new(MAX_EVENT_SIZE_UNBOUNDED), &bytewise),
        whole
    );

    // With a small bound, splitting may only fail sooner.
    let mut parser = Parser::new(MAX_EVENT_SIZE);
    let whole_bounded = run(&mut parser, &[stream]);
    let split_bounded = run(&mut Parser::new(MAX_EVENT_SIZE), &pieces);
    assert!(whole_bounded.events.starts_with(&split_bounded.events));
    if whole_bounded.result.is_err() {
        assert!(split_bounded.result.is_err());
    } else {
        assert_eq!(whole_bounded.events, whole.events);
    }
    if split_bounded.result.is_ok() {
        assert_eq!(split_bounded, whole_bounded);
    }

    // A reset parser, however it was left, parses like a new one.
    parser.reset();
    assert_eq!(run(&mut parser, &pieces), split_bounded);
});

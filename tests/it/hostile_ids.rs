//! Servers that stretch the rules a browser lives by: event ids that are not numbers (Redis stream ids, ids with
//! NUL), `usage` numbers that cannot be token counts, and `204 No Content`, which tells a client to stop
//! reconnecting. Each test scripts its own server and asserts what a browser (or the README) promises.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;

use crate::util::{Request, SSE_HEAD, SSE_HEAD_CLOSE, failures, llm, run_args, scripted_server, sse_server};

/// Keeps a connection open until the client closes it (the end of the run).
fn hold(conn: &mut TcpStream) {
    let _ = conn.read(&mut [0u8; 1]);
}

/// Every `Last-Event-ID` the server saw, in order (None: a request without one).
fn resume_points(seen: &Receiver<Request>) -> Vec<Option<String>> {
    seen.try_iter().map(|r| r.header("last-event-id").map(str::to_string)).collect()
}

const FEED_EVENTS: usize = 20;
const EVENTS_PER_CONNECTION: usize = 4;

/// The id of event `i` of the feed, as a Redis stream names its entries.
fn redis_id(i: usize) -> String {
    format!("1700000000000-{i}")
}

/// A feed of 20 events with Redis-stream ids, served 4 at a time: each connection resumes after the
/// `Last-Event-ID` it received (from the start without one), sends 4 events, then the next event's `id:` line and
/// half its data, and drops the connection mid-event. Past the last event it holds the connection open.
fn redis_feed() -> (std::net::SocketAddr, Receiver<Request>) {
    scripted_server(|conn, request| {
        let start = match request.header("last-event-id") {
            None => 0,
            Some(id) => (0..FEED_EVENTS).position(|i| redis_id(i) == id).map_or(0, |i| i + 1),
        };
        let _ = conn.write_all(SSE_HEAD);
        if start == FEED_EVENTS {
            return hold(conn);
        }
        let end = (start + EVENTS_PER_CONNECTION).min(FEED_EVENTS);
        let mut body = String::from("retry: 10\n\n");
        for i in start..end {
            body += &format!("id: {}\ndata: event {i}\n\n", redis_id(i));
        }
        if end < FEED_EVENTS {
            // The next event's id arrives, but the event never completes: a browser's last event ID is still
            // the one of the last event dispatched.
            body += &format!("id: {}\ndata: half of event {end}", redis_id(end));
        }
        let _ = conn.write_all(body.as_bytes());
    })
}

/// With `--reconnect`, each reconnect carries the last dispatched event's id, whatever its form, so the feed
/// resumes where it was cut: every event arrives exactly once.
#[test]
fn reconnects_send_the_last_event_id_string_of_non_numeric_ids() {
    let (addr, seen) = redis_feed();
    let url = format!("http://{addr}/feed");
    let report = run_args(&[&url, "-c", "1", "-d", "1500ms", "--reconnect", "--retry-default", "3s"]);
    let expected: Vec<Option<String>> =
        std::iter::once(None).chain((1..=5).map(|k| Some(redis_id(k * EVENTS_PER_CONNECTION - 1)))).collect();
    assert_eq!(resume_points(&seen), expected);
    let f = &report.figures;
    assert_eq!(f.events.received, FEED_EVENTS as u64, "{:?}", f.streams);
    assert_eq!((f.events.lost, f.events.duplicates), (0, 0));
    assert_eq!(failures(&report, "premature_eof"), 4, "four connections were cut mid-event");
}

/// `--verify-seq` checks numeric ids only, and says how many ids it could not read as numbers.
#[test]
fn verify_seq_counts_ids_that_are_not_numbers() {
    let (addr, _) = sse_server(b"id: 1700000000000-0\ndata: a\n\nid: 1700000000000-1\ndata: b\n\nid: x\ndata: c\n\n");
    let report = run_args(&[&format!("http://{addr}/"), "-c", "1", "-n", "1", "--verify-seq"]);
    let e = &report.figures.events;
    assert_eq!((e.received, e.ids_not_numeric, e.lost, e.duplicates), (3, 3, 0, 0));
}

/// An `id` with NUL is ignored (the event keeps the last id), so a sequence check must not read it as a repeat
/// of the id before and then the next id as a gap: the event arrived, with an id that is not a number.
#[test]
fn an_id_with_nul_is_neither_lost_nor_duplicated() {
    let (addr, _) = sse_server(b"id: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\x00\ndata: c\n\nid: 4\ndata: d\n\n");
    let report = run_args(&[&format!("http://{addr}/"), "-c", "1", "-n", "1", "--verify-seq"]);
    let e = &report.figures.events;
    assert_eq!((e.received, e.lost, e.duplicates, e.ids_not_numeric), (4, 0, 0, 1));
}

/// The browser's rules across reconnects: an event without `id:` keeps the last id (from the stream before, too),
/// a block with an `id:` and no data still sets it, and an empty `id:` clears it, after which no `Last-Event-ID` is
/// sent.
#[test]
fn the_last_event_id_follows_the_browser_rules_across_reconnects() {
    let connections = AtomicUsize::new(0);
    let (addr, seen) = scripted_server(move |conn, _| {
        let script: &[u8] = match connections.fetch_add(1, Ordering::Relaxed) {
            0 => b"id: a-1\ndata: 1\n\n",
            1 => b"data: 2, without an id\n\nid: a-2\n\n",
            2 => b"id:\ndata: 3, the id cleared\n\n",
            _ => b"",
        };
        let _ = conn.write_all(SSE_HEAD);
        let _ = conn.write_all(script);
        if script.is_empty() {
            hold(conn);
        }
    });
    let report =
        run_args(&[&format!("http://{addr}/"), "-c", "1", "-d", "1s", "--reconnect", "--retry-default", "10ms"]);
    let expected = [None, Some("a-1".to_string()), Some("a-2".to_string()), None];
    assert_eq!(resume_points(&seen), expected);
    assert_eq!(report.figures.events.received, 3);
}

/// `completion_tokens` values that are no token count: too big for any answer (at or past 2^32), negative,
/// fractional, or a string. Each stream gets one of them, in turn.
const BAD_COMPLETION_TOKENS: [&str; 6] = ["1e30", "-1", "5.0", "\"5\"", "10000000000000000000", "4294967296"];

/// With `--openai`, a `usage` whose numbers are not token counts is read as no usage: the stream's output tokens
/// are its content chunks, counted and marked estimated, not 0 (or 10^19), and the report says how many streams
/// had such a usage.
#[test]
fn an_unreadable_usage_is_no_usage_and_counted() {
    let connections = AtomicUsize::new(0);
    let (addr, _) = scripted_server(move |conn, _| {
        let bad = BAD_COMPLETION_TOKENS[connections.fetch_add(1, Ordering::Relaxed) % BAD_COMPLETION_TOKENS.len()];
        let chunk = |content: &str| format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{content}\"}}}}]}}\n\n");
        let body = format!(
            "{}{}{}data: {{\"choices\":[{{\"delta\":{{}},\"finish_reason\":\"stop\"}}],\
             \"usage\":{{\"prompt_tokens\":4,\"completion_tokens\":{bad}}}}}\n\ndata: [DONE]\n\n",
            chunk("one"),
            chunk(" two"),
            chunk(" three")
        );
        let _ = conn.write_all(SSE_HEAD_CLOSE);
        let _ = conn.write_all(body.as_bytes());
    });
    let streams = BAD_COMPLETION_TOKENS.len().to_string();
    let report = run_args(&[&format!("http://{addr}/v1"), "--openai", "chat", "-c", "1", "-n", &streams]);
    assert_eq!(report.figures.streams.completed, 6, "{:?}", report.figures.streams.failures);
    let l = llm(&report);
    assert_eq!((l.output_chunks, l.output_tokens, l.output_tokens_estimated), (18, 18, true), "3 chunks a stream");
    assert_eq!((l.streams_with_usage, l.streams_estimated, l.usage_unreadable), (0, 6, 6));
    // The whole usage is set aside: its prompt_tokens are no more to be trusted than its completion_tokens.
    assert_eq!(l.input_tokens, 0);
    assert!(l.output_tokens_per_s > 0.0 && l.output_tokens_per_s_per_stream.min > 0);
}

/// A server that answers every request with `204 No Content`.
fn no_content_server() -> (std::net::SocketAddr, Receiver<Request>) {
    scripted_server(|conn, _| {
        let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
    })
}

/// 204 No Content is no event stream: it fails the stream (an EventSource fails on any status but 200).
#[test]
fn no_content_fails_the_stream() {
    let (addr, _) = no_content_server();
    let report = run_args(&[&format!("http://{addr}/"), "-c", "3", "-n", "6"]);
    let s = &report.figures.streams;
    assert_eq!((s.started, s.completed, s.failed, failures(&report, "http_204")), (6, 0, 6, 6), "{:?}", s.failures);
    assert_eq!(s.users_stopped_by_204, 0, "without --reconnect, users are not browsers");
}

/// 204 No Content tells a browser to stop reconnecting: with `--reconnect`, each user asks once and stops.
#[test]
fn no_content_stops_a_reconnecting_user() {
    let (addr, seen) = no_content_server();
    let args = [&format!("http://{addr}/")[..], "-c", "3", "-d", "1500ms", "--reconnect", "--retry-default", "10ms"];
    let report = run_args(&args);
    assert_eq!(seen.try_iter().count(), 3, "one request per user");
    let s = &report.figures.streams;
    assert_eq!((s.started, s.failed, failures(&report, "http_204"), s.reconnects), (3, 3, 3, 0));
    assert_eq!(s.users_stopped_by_204, 3);
}

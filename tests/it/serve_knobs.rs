//! `serve`'s knobs for testing proxies, read off the wire by a plain client: `--x-accel-buffering` in every stream's
//! head (generated and `--openai`), and `--pause-every` pauses with `--heartbeat` comments inside them. Gaps are
//! checked as lower bounds where a pause is, and with a wide upper bound where none is; the schedule's exact
//! arithmetic is unit-tested (`server::schedule`).

use std::time::Duration;

use crate::util::{RawReads, get_request, run_args, serve_args};

const LIMIT: Duration = Duration::from_secs(10);

#[test]
fn x_accel_buffering_header_follows_the_flag() {
    for (flag, expected) in
        [(None, Some("no")), (Some("no"), Some("no")), (Some("yes"), Some("yes")), (Some("omit"), None)]
    {
        let mut args = vec!["--events", "1"];
        args.extend(flag.map(|f| ["--x-accel-buffering", f]).iter().flatten());
        let server = serve_args(&args);
        let head = RawReads::of(server.addr, &get_request(""), LIMIT).head();
        let value = head.lines().find_map(|l| l.strip_prefix("X-Accel-Buffering: ")).map(str::to_string);
        assert_eq!(value.as_deref(), expected, "{flag:?}: {head}");
        assert_eq!(head.to_ascii_lowercase().matches("x-accel-buffering").count(), expected.iter().count(), "{head}");
        server.stop();
    }
    // The --openai answer has the same head.
    let server = serve_args(&["--openai", "--x-accel-buffering", "yes"]);
    let body = r#"{"model": "m", "stream": true, "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}"#;
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let head = RawReads::of(server.addr, request.as_bytes(), LIMIT).head();
    assert!(head.contains("\r\nX-Accel-Buffering: yes\r\n") && head.contains("text/event-stream"), "{head}");
    server.stop();
}

/// The gaps between consecutive events, in order, by when each arrived whole.
fn gaps(reads: &RawReads) -> Vec<Duration> {
    let arrivals = reads.arrivals(b"id: ");
    arrivals.windows(2).map(|pair| pair[1] - pair[0]).collect()
}

#[test]
fn pauses_come_after_every_nth_event_and_nowhere_else() {
    let server = serve_args(&["--events", "10", "--interval", "10ms", "--pause-every", "3", "--pause", "300ms"]);
    let reads = RawReads::of(server.addr, &get_request(""), LIMIT);
    let text = String::from_utf8_lossy(&reads.bytes()).into_owned();
    let ids: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("id: ")).collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"], "{}", reads.summary());
    assert!(text.ends_with("0\r\n\r\n"), "the stream ends at once after event 10, pause or not");
    assert!(!text.contains(": heartbeat"), "no heartbeats unless asked");
    for (i, gap) in gaps(&reads).into_iter().enumerate() {
        let after_event = i + 1;
        if after_event % 3 == 0 {
            assert!(gap >= Duration::from_millis(250), "gap after event {after_event}: {gap:?}");
        } else {
            assert!(gap < Duration::from_millis(200), "gap after event {after_event}: {gap:?}");
        }
    }
    server.stop();
}

#[test]
fn heartbeats_fill_pauses_and_only_pauses() {
    let args =
        ["--events", "10", "--interval", "10ms", "--pause-every", "3", "--pause", "300ms", "--heartbeat", "100ms"];
    let server = serve_args(&args);
    let reads = RawReads::of(server.addr, &get_request(""), LIMIT);
    let events = reads.positions(b"id: ");
    let beats = reads.positions(b": heartbeat\n\n");
    assert_eq!(events.len(), 10, "{}", reads.summary());
    // Each heartbeat's place in the stream: how many events came before it. Only the pauses after events 3, 6 and 9
    // hold any (two each on schedule: 100 and 200 ms into 300).
    let mut per_pause = [0usize; 11];
    for beat in &beats {
        per_pause[events.iter().filter(|&&event| event < *beat).count()] += 1;
    }
    for (before, count) in per_pause.iter().enumerate() {
        match before {
            3 | 6 | 9 => assert!(*count >= 1, "no heartbeat after event {before}: {per_pause:?}"),
            _ => assert_eq!(*count, 0, "heartbeats after event {before}: {per_pause:?}"),
        }
    }
    // Heartbeats are comments: a client counts every event and nothing else, with no failure.
    let url = format!("http://{}/events", server.addr);
    let report = run_args(&[&url, "-c", "1", "-n", "1"]);
    assert_eq!(report.figures.events.received, 10);
    assert_eq!((report.figures.streams.completed, report.figures.streams.failed), (1, 0));
    server.stop();
}

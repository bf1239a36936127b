//! Redirects end to end: scripted servers answer 301, 302, 303, 307 and 308, and the requests they and the servers
//! the Locations name receive are checked, with exact counts (`streams.redirects`, each failure class).

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::util::{
    Request, SSE_HEAD, failures, https_url, llm, model_server, pki, read_request, run_args, run_n, scripted_server,
    sse_server, tls_server,
};

/// Two events, then the server closes: a stream that completes.
const EVENTS: &[u8] = b"id: 5\ndata: a\n\ndata: b\n\n";

/// Answers with a redirect to `location`, no body. `Connection: close` because the scripted servers close after
/// each answer anyway: every hop connects anew, with no stale connection to retry.
fn redirect(conn: &mut TcpStream, status: u16, location: &str) {
    let head =
        format!("HTTP/1.1 {status} Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = conn.write_all(head.as_bytes());
}

fn events(conn: &mut TcpStream) {
    let _ = conn.write_all(SSE_HEAD);
    let _ = conn.write_all(EVENTS);
}

fn seen(requests: &Receiver<Request>) -> Vec<Request> {
    requests.try_iter().collect()
}

fn paths(requests: &[Request]) -> Vec<&str> {
    requests.iter().map(Request::path).collect()
}

/// A server that redirects `/events` with `status` to `location` and streams events on any other path.
fn redirecting(status: u16, location: &'static str) -> (SocketAddr, Receiver<Request>) {
    scripted_server(move |conn, request| match request.path() {
        "/events" => redirect(conn, status, location),
        _ => events(conn),
    })
}

/// The hop is timed with the stream: `headers` and `first_event` run from the first request, so they include the
/// 50 ms the redirect took; each stream gives one sample, not one per hop.
#[test]
fn a_302_to_another_path_is_followed_and_timed_from_the_first_request() {
    let (addr, requests) = scripted_server(|conn, request| match request.path() {
        "/events" => {
            std::thread::sleep(Duration::from_millis(50));
            redirect(conn, 302, "/sse");
        }
        _ => events(conn),
    });
    let report = run_n(addr, 1, 4);
    let s = &report.figures.streams;
    assert_eq!((s.completed, s.failed, s.redirects), (4, 0, 4), "{:?}", s.failures);
    assert_eq!(report.figures.events.received, 8);
    assert_eq!(paths(&seen(&requests)), ["/events", "/sse"].repeat(4), "every stream starts at its own URL");
    let l = &report.figures.latency_us;
    assert_eq!((l.headers.count, l.first_event.count, l.connect.count), (4, 4, 8));
    assert!(l.headers.min >= 50_000, "headers min {} us excludes the redirect", l.headers.min);
    assert!(l.first_event.min >= 50_000, "first event min {} us excludes the redirect", l.first_event.min);
}

#[test]
fn a_301_to_another_server_is_followed_there() {
    let (b, b_requests) = sse_server(EVENTS);
    let (a, a_requests) = scripted_server(move |conn, _| redirect(conn, 301, &format!("http://{b}/b?x=1")));
    let report = run_n(a, 2, 6);
    let s = &report.figures.streams;
    assert_eq!((s.completed, s.failed, s.redirects), (6, 0, 6), "{:?}", s.failures);
    assert_eq!(report.figures.events.received, 12);
    assert_eq!(seen(&a_requests).len(), 6);
    let at_b = seen(&b_requests);
    assert_eq!(paths(&at_b), ["/b?x=1"; 6]);
    let host = b.to_string();
    assert!(at_b.iter().all(|r| r.header("host") == Some(host.as_str())), "{:?}", at_b[0].head);
}

/// 303 after a POST: the next request is a GET without the body or the headers that described it.
#[test]
fn a_303_after_a_post_is_a_get_without_a_body() {
    let (addr, requests) = redirecting(303, "/next");
    let url = format!("http://{addr}/events");
    let report =
        run_args(&[&url, "-n", "1", "-m", "POST", "--body", "{\"x\":1}", "-H", "Content-Type: application/json"]);
    assert_eq!((report.figures.streams.completed, report.figures.streams.redirects), (1, 1));
    let requests = seen(&requests);
    assert_eq!(paths(&requests), ["/events", "/next"]);
    assert!(requests[0].head.starts_with("POST /events ") && requests[0].body == "{\"x\":1}", "{requests:?}");
    let next = &requests[1];
    assert!(next.head.starts_with("GET /next HTTP/1.1\r\n"), "{}", next.head);
    assert_eq!((next.header("content-length"), next.header("content-type"), next.body.as_str()), (None, None, ""));
}

/// 307 and 308 keep the method and the body.
#[test]
fn a_307_or_308_after_a_post_keeps_method_and_body() {
    for status in [307, 308] {
        let (addr, requests) = redirecting(status, "/next");
        let url = format!("http://{addr}/events");
        let report =
            run_args(&[&url, "-n", "1", "-m", "POST", "--body", "{\"x\":1}", "-H", "Content-Type: application/json"]);
        assert_eq!((report.figures.streams.completed, report.figures.streams.redirects), (1, 1), "{status}");
        let requests = seen(&requests);
        let next = &requests[1];
        assert!(next.head.starts_with("POST /next HTTP/1.1\r\n"), "{status}: {}", next.head);
        assert_eq!(next.body, "{\"x\":1}", "{status}");
        assert_eq!(next.header("content-type"), Some("application/json"), "{status}");
    }
}

/// `--openai` POSTs its prompt: a 307 to the model server keeps it, so the tokens are counted exactly there.
#[test]
fn an_openai_request_redirected_by_307_keeps_its_prompt() {
    let server = model_server(10_000.0, 1, 0);
    let model_url = format!("http://{}/v1/chat/completions", server.addr);
    let (a, a_requests) = scripted_server(move |conn, _| redirect(conn, 307, &model_url));
    let url = format!("http://{a}/v1");
    let report = run_args(&[&url, "--openai", "chat", "--prompt-tokens", "20", "--max-tokens", "5", "-n", "2"]);
    let s = &report.figures.streams;
    assert_eq!((s.completed, s.failed, s.redirects), (2, 0, 2), "{:?}", s.failures);
    assert_eq!((llm(&report).input_tokens, llm(&report).output_tokens), (40, 10));
    assert!(seen(&a_requests).iter().all(|r| r.head.starts_with("POST /v1/chat/completions ")));
    server.stop();
}

/// Credentials stay on their origin: a same-origin hop keeps them, the hop to another port drops them (and only
/// them).
#[test]
fn credentials_are_dropped_at_another_origin_only() {
    let (b, b_requests) = sse_server(EVENTS);
    let (a, a_requests) = scripted_server(move |conn, request| match request.path() {
        "/events" => redirect(conn, 302, "/same"),
        _ => redirect(conn, 302, &format!("http://{b}/other")),
    });
    let url = format!("http://{a}/events");
    let secrets = ["Authorization: Bearer s3cret", "Cookie: c=1", "Proxy-Authorization: Basic eA=="];
    let mut args = vec![url.as_str(), "-n", "1", "-H", "X-Keep: 1"];
    for secret in &secrets {
        args.extend(["-H", secret]);
    }
    let report = run_args(&args);
    assert_eq!((report.figures.streams.completed, report.figures.streams.redirects), (1, 2));
    let at_a = seen(&a_requests);
    assert_eq!(paths(&at_a), ["/events", "/same"]);
    for request in &at_a {
        assert_eq!(request.header("authorization"), Some("Bearer s3cret"), "{}", request.head);
        assert_eq!(request.header("cookie"), Some("c=1"));
    }
    let at_b = seen(&b_requests);
    assert_eq!(paths(&at_b), ["/other"]);
    for name in ["authorization", "cookie", "proxy-authorization"] {
        assert_eq!(at_b[0].header(name), None, "{name} crossed: {}", at_b[0].head);
    }
    assert_eq!(at_b[0].header("x-keep"), Some("1"));
}

/// A -> B -> A -> ...: 20 hops are followed (21 requests), then `too_many_redirects`.
#[test]
fn a_loop_is_too_many_redirects_after_20_hops() {
    let b_addr: Arc<OnceLock<SocketAddr>> = Arc::new(OnceLock::new());
    let to_b = b_addr.clone();
    let (a, a_requests) =
        scripted_server(move |conn, _| redirect(conn, 302, &format!("http://{}/b", to_b.get().unwrap())));
    let (b, b_requests) = scripted_server(move |conn, _| redirect(conn, 302, &format!("http://{a}/a")));
    b_addr.set(b).unwrap();
    let report = run_n(a, 1, 1);
    let s = &report.figures.streams;
    assert_eq!((s.failed, failures(&report, "too_many_redirects"), s.redirects), (1, 1, 20), "{:?}", s.failures);
    assert_eq!((seen(&a_requests).len(), seen(&b_requests).len()), (11, 10));
}

/// `--max-redirects 0` follows none: the redirect is an `http_302`, as it was before redirects were followed.
#[test]
fn max_redirects_0_leaves_a_302_an_http_302() {
    let (b, b_requests) = sse_server(EVENTS);
    let (a, _) = scripted_server(move |conn, _| redirect(conn, 302, &format!("http://{b}/")));
    let url = format!("http://{a}/events");
    let report = run_args(&[&url, "-n", "2", "--max-redirects", "0"]);
    let s = &report.figures.streams;
    assert_eq!((s.failed, failures(&report, "http_302"), s.redirects), (2, 2, 0), "{:?}", s.failures);
    assert!(seen(&b_requests).is_empty());
}

/// `/events` -> `/1` -> `/2` -> `/3`: three hops pass `--max-redirects 3`, not `--max-redirects 2`.
#[test]
fn a_chain_longer_than_max_redirects_is_too_many_redirects() {
    for (max, completed, requested) in
        [("2", 0, vec!["/events", "/1", "/2"]), ("3", 1, vec!["/events", "/1", "/2", "/3"])]
    {
        let (addr, requests) = scripted_server(|conn, request| match request.path() {
            "/events" => redirect(conn, 307, "/1"),
            "/1" => redirect(conn, 308, "/2"),
            "/2" => redirect(conn, 302, "/3"),
            _ => events(conn),
        });
        let url = format!("http://{addr}/events");
        let report = run_args(&[&url, "-n", "1", "--max-redirects", max]);
        let s = &report.figures.streams;
        assert_eq!(s.completed, completed, "--max-redirects {max}: {:?}", s.failures);
        assert_eq!(failures(&report, "too_many_redirects"), 1 - completed, "--max-redirects {max}");
        assert_eq!(s.redirects, requested.len() as u64 - 1, "--max-redirects {max}");
        assert_eq!(paths(&seen(&requests)), requested, "--max-redirects {max}");
    }
}

/// Relative Locations resolve against the URL that answered them.
#[test]
fn relative_locations_resolve_against_the_current_url() {
    for (location, want) in [
        ("next?x=1", "/a/b/next?x=1"),
        ("../up", "/a/up"),
        ("?q=2", "/a/b/events?q=2"),
        ("/x y", "/x%20y"),
        ("//{addr}/abs", "/abs"),
    ] {
        let location_of = move |addr: SocketAddr| location.replace("{addr}", &addr.to_string());
        let start = Arc::new(OnceLock::new());
        let own = start.clone();
        let (addr, requests) = scripted_server(move |conn, request| match request.path() {
            "/a/b/events" => redirect(conn, 302, &location_of(*own.get().unwrap())),
            _ => events(conn),
        });
        start.set(addr).unwrap();
        let url = format!("http://{addr}/a/b/events");
        let report = run_args(&[&url, "-n", "1"]);
        let s = &report.figures.streams;
        assert_eq!((s.completed, s.redirects), (1, 1), "{location}: {:?}", s.failures);
        assert_eq!(paths(&seen(&requests)), ["/a/b/events", want], "{location}");
    }
}

/// A Location that is not an http(s) URL, or cannot be followed, is `bad_redirect`; one without a Location stays an
/// `http_3xx`.
#[test]
fn a_location_that_cannot_be_followed_is_bad_redirect() {
    for (location, class) in [
        ("ftp://files.example/x", "bad_redirect"),
        ("mailto:ops@example.com", "bad_redirect"),
        ("http://user:pw@127.0.0.1:1/", "bad_redirect"),
        ("http://127.0.0.1:99999/", "bad_redirect"),
        // https:// in a run with no https:// target has no TLS config to connect with.
        ("https://127.0.0.1:1/", "bad_redirect"),
        ("/a\r\nLocation: /b", "bad_redirect"),
    ] {
        let (addr, requests) = redirecting(302, location);
        let url = format!("http://{addr}/events");
        let report = run_args(&[&url, "-n", "1"]);
        let s = &report.figures.streams;
        assert_eq!((s.failed, failures(&report, class), s.redirects), (1, 1, 0), "{location:?}: {:?}", s.failures);
        assert_eq!(seen(&requests).len(), 1, "{location:?}");
    }
    let (addr, _) = scripted_server(|conn, _| {
        let _ = conn.write_all(b"HTTP/1.1 307 Temporary Redirect\r\nContent-Length: 0\r\n\r\n");
    });
    let report = run_n(addr, 1, 1);
    assert_eq!(failures(&report, "http_307"), 1, "{:?}", report.figures.streams.failures);
}

/// A redirect to the same authority whose answer was read whole goes on over the same connection, as a browser's
/// does: one connect for both hops.
#[test]
fn a_same_authority_hop_reuses_the_connection() {
    let (next_tx, next_rx) = channel();
    let (addr, _) = scripted_server(move |conn, _| {
        let _ = conn.write_all(b"HTTP/1.1 302 Found\r\nLocation: /sse\r\nContent-Length: 5\r\n\r\nmoved");
        let next = read_request(conn);
        let _ = next_tx.send(next.as_ref().map(|r| r.path().to_string()));
        if next.is_some() {
            events(conn);
        }
    });
    let report = run_n(addr, 1, 1);
    let s = &report.figures.streams;
    assert_eq!((s.completed, s.redirects), (1, 1), "{:?}", s.failures);
    assert_eq!(next_rx.recv().unwrap().as_deref(), Some("/sse"), "the second request came on the same connection");
    assert_eq!(report.figures.latency_us.connect.count, 1);
}

/// `--reconnect` starts each stream from the original URL again, and the hop keeps its `Last-Event-ID`.
#[test]
fn a_reconnect_starts_from_the_original_url_with_its_last_event_id() {
    let (addr, requests) = redirecting(302, "/sse");
    let url = format!("http://{addr}/events");
    let report = run_args(&[&url, "-c", "1", "-n", "3", "--reconnect", "--retry-default", "1ms"]);
    assert_eq!((report.figures.streams.completed, report.figures.streams.redirects), (3, 3));
    let requests = seen(&requests);
    assert_eq!(paths(&requests), ["/events", "/sse"].repeat(3));
    let ids: Vec<Option<&str>> = requests.iter().map(|r| r.header("last-event-id")).collect();
    assert_eq!(ids, [None, None, Some("5"), Some("5"), Some("5"), Some("5")]);
}

/// An `https://` Location in a run with TLS (an `https://` target): the hop resolves the name, handshakes with the
/// run's TLS config (`--cacert`) and streams there.
#[test]
fn an_https_location_is_followed_with_the_runs_tls() {
    let pki = pki();
    let tls = tls_server("localhost", &["--events", "3", "--interval", "1ms"]);
    let tls_url = https_url(&tls);
    let location = format!("https://localhost:{}/hop", tls.addr.port());
    let (a, a_requests) = scripted_server(move |conn, _| redirect(conn, 302, &location));
    let plain_url = format!("http://{a}/events");
    let ca = pki.path("ca.pem");
    // User 0 starts at the plain server and is sent to the TLS one; user 1 starts there.
    let report = run_args(&[&plain_url, &tls_url, "--cacert", &ca, "-c", "2", "-n", "8"]);
    let s = &report.figures.streams;
    assert_eq!((s.completed, s.failed), (8, 0), "{:?}", s.failures);
    let redirected = seen(&a_requests).len() as u64;
    assert!(redirected >= 1, "user 0 ran a stream");
    assert_eq!(s.redirects, redirected);
    assert_eq!(report.figures.events.received, 8 * 3);
    tls.stop();
}

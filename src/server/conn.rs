//! One accepted connection of the built-in server: read a request, answer with an event stream (or the replay bytes), repeat while kept alive.

use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
#[cfg(test)]
use monoio::net::TcpStream;

use super::ServeCore;
use super::event::{self, HEARTBEAT, LAST_CHUNK};
use super::openai;

/// A bodiless answer with `status`, after which the server closes the connection.
macro_rules! refusal {
    ($status:literal) => {
        concat!("HTTP/1.1 ", $status, "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes()
    };
}

/// Largest request head the server accepts; larger gets 431 and a close.
const MAX_REQUEST_HEAD_BYTES: usize = 16 * 1024;
const MAX_REQUEST_HEADERS: usize = 64;
/// Largest request body the server reads (and skips); larger gets 413 and a close.
const MAX_REQUEST_BODY_BYTES: usize = 16 * 1024 * 1024;
const INITIAL_READ_BYTES: usize = 1024;

/// A connection the server can read requests from and write answers to: a TCP stream, or a TLS session on one.
pub trait Wire: AsyncReadRent + AsyncWriteRent {}

impl<S: AsyncReadRent + AsyncWriteRent> Wire for S {}

/// What the request asked for that changes the answer.
struct Request {
    /// u32s, as the head and body limits allow: the request lives in every connection's future.
    head_len: u32,
    body_len: u32,
    /// A numeric `Last-Event-ID` (0 when none): the stream resumes with the event after it.
    resume_after: u64,
    route: Route,
}

impl Request {
    /// Where the request's body ends in the input.
    fn end(&self) -> usize {
        self.head_len as usize + self.body_len as usize
    }
}

/// What a request names besides "a stream". Only `--openai` tells these apart: the generated streams answer every
/// method and path alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Anything that is not one of the GETs below: a stream, or with `--openai` a completion request.
    Stream,
    /// `GET /health`: vLLM answers 200 with no body; GuideLLM and orchestrators probe it before a run.
    Health,
    /// `GET /v1/models`: the served model's name, which clients read before they send requests.
    Models,
    /// `GET` of a completion path, which only takes POSTs.
    GetCompletion,
    /// Any other `GET`.
    OtherGet,
}

impl Route {
    fn of(method: &str, path: &str) -> Route {
        if method != "GET" {
            return Route::Stream;
        }
        match path.split_once('?').map_or(path, |(path, _query)| path) {
            "/health" => Route::Health,
            "/v1/models" => Route::Models,
            "/v1/chat/completions" | "/v1/completions" => Route::GetCompletion,
            _ => Route::OtherGet,
        }
    }
}

enum ReadOutcome {
    Request(Request),
    /// The client closed or the socket failed: nothing to answer.
    Gone,
    /// A request the server cannot serve: answer this and close.
    Refuse(&'static [u8]),
}

pub async fn serve<S: Wire>(mut stream: S, core: Rc<ServeCore>) {
    // Sized by the first `read_more`.
    let mut input = Vec::new();
    let mut out = Vec::new();
    loop {
        let request = match read_request(&mut stream, &mut input).await {
            ReadOutcome::Request(request) => request,
            ReadOutcome::Gone => return,
            ReadOutcome::Refuse(answer) => {
                let _ = stream.write_all(answer).await;
                return;
            }
        };
        let resume_after = request.resume_after;
        if let Some(shape) = &core.cfg.openai {
            // Boxed: the model's answer has its own state, kept out of plain SSE connections.
            out = match Box::pin(answer_completion(&mut stream, &core, shape, &mut input, request, out)).await {
                Some(out) => out,
                None => return,
            };
            continue;
        }
        if !skip_body(&mut stream, &mut input, request.end()).await {
            return;
        }
        if input.is_empty() {
            // Nothing pipelined: a stream can last hours, so do not hold the read buffer meanwhile.
            input = Vec::new();
        }
        if let Some(bytes) = &core.cfg.replay {
            // Boxed: its pause timer would otherwise sit in every connection's future.
            Box::pin(replay(&mut stream, &core, bytes)).await;
            return;
        }
        out = match stream_events(&mut stream, &core, out, resume_after).await {
            Some(out) => out,
            None => return,
        };
    }
}

/// Reads until `input` starts with a complete request head.
async fn read_request<S: Wire>(stream: &mut S, input: &mut Vec<u8>) -> ReadOutcome {
    loop {
        if let Some(outcome) = parse_request(input) {
            return outcome;
        }
        if !read_more(stream, input).await {
            return ReadOutcome::Gone;
        }
    }
}

/// Parses the request head at the start of `input`; None: incomplete. Synchronous on purpose:
/// httparse's header array (2 KiB) must not live across an await, or every connection's task
/// would carry it for as long as it streams.
fn parse_request(input: &[u8]) -> Option<ReadOutcome> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(input) {
        Ok(httparse::Status::Complete(head_len)) => {
            let mut body_len: Option<usize> = None;
            let mut resume_after = 0;
            for header in request.headers.iter() {
                if header.name.eq_ignore_ascii_case("transfer-encoding") {
                    return Some(ReadOutcome::Refuse(refusal!("501 Not Implemented")));
                }
                if header.name.eq_ignore_ascii_case("last-event-id") {
                    resume_after =
                        std::str::from_utf8(header.value).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0);
                }
                if header.name.eq_ignore_ascii_case("content-length") {
                    match std::str::from_utf8(header.value).ok().and_then(|v| v.trim().parse().ok()) {
                        // Repeated Content-Length headers must agree (RFC 9112 6.3).
                        Some(n) if body_len.is_none_or(|seen| seen == n) => body_len = Some(n),
                        Some(_) => return Some(ReadOutcome::Refuse(BAD_REQUEST)),
                        None => return Some(ReadOutcome::Refuse(BAD_REQUEST)),
                    }
                }
            }
            let body_len = body_len.unwrap_or(0);
            if body_len > MAX_REQUEST_BODY_BYTES {
                return Some(ReadOutcome::Refuse(refusal!("413 Content Too Large")));
            }
            let route = Route::of(request.method.unwrap_or(""), request.path.unwrap_or(""));
            // Both fit: the head is at most one read past MAX_REQUEST_HEAD_BYTES, the body was checked above.
            Some(ReadOutcome::Request(Request {
                head_len: head_len as u32,
                body_len: body_len as u32,
                resume_after,
                route,
            }))
        }
        Ok(httparse::Status::Partial) if input.len() >= MAX_REQUEST_HEAD_BYTES => {
            Some(ReadOutcome::Refuse(refusal!("431 Request Header Fields Too Large")))
        }
        Ok(httparse::Status::Partial) => None,
        Err(_) => Some(ReadOutcome::Refuse(BAD_REQUEST)),
    }
}

const BAD_REQUEST: &[u8] = refusal!("400 Bad Request");

/// Appends what one read returns to `input`; false on EOF or error.
async fn read_more<S: Wire>(stream: &mut S, input: &mut Vec<u8>) -> bool {
    if input.len() == input.capacity() {
        input.reserve(input.capacity().max(INITIAL_READ_BYTES));
    }
    let len = input.len();
    let cap = input.capacity();
    let buf = std::mem::take(input).slice_mut(len..cap);
    let (result, buf) = stream.read(buf).await;
    *input = buf.into_inner();
    matches!(result, Ok(n) if n > 0)
}

/// Drops the request head and body from `input`, reading the rest of the body if needed;
/// pipelined bytes after it stay.
async fn skip_body<S: Wire>(stream: &mut S, input: &mut Vec<u8>, request_end: usize) -> bool {
    let mut to_drop = request_end;
    while input.len() < to_drop {
        to_drop -= input.len();
        input.clear();
        if !read_more(stream, input).await {
            return false;
        }
    }
    input.drain(..to_drop);
    true
}

/// `serve --openai`: answers a GET (health, the model list, or an error) as vLLM's server does. False if the
/// connection is done: the answer was an error (which closes it) or the peer went away.
async fn answer_model_get<S: Wire>(stream: &mut S, model_name: &str, input: &mut Vec<u8>, request: &Request) -> bool {
    let route = request.route;
    if !skip_body(stream, input, request.end()).await {
        return false;
    }
    let fixed: &'static [u8] = match route {
        Route::Models => {
            let (result, _) = stream.write_all(openai::models_answer(model_name)).await;
            return result.is_ok();
        }
        Route::Health => b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        Route::GetCompletion => {
            b"HTTP/1.1 405 Method Not Allowed\r\nAllow: POST\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        }
        Route::OtherGet | Route::Stream => refusal!("404 Not Found"),
    };
    let (result, _) = stream.write_all(fixed).await;
    route == Route::Health && result.is_ok()
}

/// `serve --openai`: reads the request body, then streams the simulated model's answer (or answers 400 and
/// closes); a GET gets [`answer_model_get`]'s answer. Returns the buffer for reuse, or None if the connection is
/// done.
async fn answer_completion<S: Wire>(
    stream: &mut S,
    core: &ServeCore,
    shape: &openai::ModelShape,
    input: &mut Vec<u8>,
    request: Request,
    out: Vec<u8>,
) -> Option<Vec<u8>> {
    if request.route != Route::Stream {
        return answer_model_get(stream, &core.cfg.model_name, input, &request).await.then_some(out);
    }
    let body_end = request.end();
    while input.len() < body_end {
        if !read_more(stream, input).await {
            return None;
        }
    }
    let completion = openai::parse_request(&input[request.head_len as usize..body_end], shape, &core.cfg.model_name);
    input.drain(..body_end);
    let completion = match completion {
        Ok(completion) => completion,
        Err(_) => {
            let _ = stream.write_all(BAD_REQUEST).await;
            return None;
        }
    };
    let (result, _) = stream.write_all(core.cfg.head).await;
    result.ok()?;
    let mut out = out;
    let id = core.next_rng();
    let started = Instant::now();
    for (after, piece) in openai::Answer::new(&completion, shape, core.cfg.first_delay) {
        wait_until(core, started + after).await?;
        openai::encode(&mut out, &completion, id, piece);
        let (result, buf) = stream.write_all(out).await;
        out = buf;
        result.ok()?;
    }
    let (result, _) = stream.write_all(LAST_CHUNK).await;
    result.ok()?;
    Some(out)
}

/// Sends the generated stream, events `resume_after + 1` onwards, with `--pause-every`'s pauses (and their
/// heartbeats) between them. Returns the event buffer for reuse, or None if the connection is done (closed by the
/// peer, by `--disconnect-after`, or by a stop).
async fn stream_events<S: Wire>(stream: &mut S, core: &ServeCore, out: Vec<u8>, resume_after: u64) -> Option<Vec<u8>> {
    let cfg = &core.cfg;
    let (result, _) = stream.write_all(cfg.head).await;
    result.ok()?;
    let mut out = out;
    let mut rng = core.next_rng();
    let first_at = Instant::now() + cfg.first_delay;
    let mut last_at = first_at;
    let mut sent = 0u64;
    loop {
        let seq = resume_after.saturating_add(1).saturating_add(sent);
        if cfg.events != 0 && seq > cfg.events {
            break;
        }
        if cfg.disconnect_after.is_some_and(|n| sent >= n) {
            // Cut the stream mid-way, without its last chunk, as a proxy or a crash would.
            return None;
        }
        // A pause is due before this event: only its heartbeats, if any, break the silence. None follows the last
        // event of a finite stream, whose end goes out at once.
        let mut beat = 1;
        while let Some(offset) = cfg.schedule.heartbeat_offset(sent, beat) {
            wait_until(core, first_at + offset).await?;
            let (result, _) = stream.write_all(HEARTBEAT).await;
            result.ok()?;
            beat += 1;
        }
        let scheduled = first_at + cfg.schedule.event_offset(sent);
        // Jitter moves each send around its slot but never before the previous one.
        let at = jittered(scheduled, cfg.jitter, &mut rng).max(last_at);
        wait_until(core, at).await?;
        last_at = at;
        event::encode_event(&mut out, seq, unix_micros(), cfg.size_bytes);
        let (result, buf) = stream.write_all(out).await;
        out = buf;
        result.ok()?;
        sent += 1;
    }
    let (result, _) = stream.write_all(LAST_CHUNK).await;
    result.ok()?;
    Some(out)
}

/// Waits for `at` on the core's timer (not at all if it has passed); None if the server is stopping by then.
async fn wait_until(core: &ServeCore, at: Instant) -> Option<()> {
    if at > Instant::now() {
        core.timers.sleep_until(at).await;
    }
    (!core.stopping.get()).then_some(())
}

/// Writes the replay bytes in pieces with pauses, so clients see split reads, then closes.
async fn replay<S: Wire>(stream: &mut S, core: &ServeCore, bytes: &Rc<[u8]>) {
    let piece = core.cfg.replay_write_bytes.max(1);
    for (i, start) in (0..bytes.len()).step_by(piece).enumerate() {
        if i > 0 && !core.cfg.replay_pause.is_zero() {
            monoio::time::sleep(core.cfg.replay_pause).await;
        }
        let end = (start + piece).min(bytes.len());
        let (result, _) = stream.write_all(ReplaySlice { bytes: bytes.clone(), start, end }).await;
        if result.is_err() {
            return;
        }
    }
}

/// A shared window of the replay bytes handed to the kernel without copying.
struct ReplaySlice {
    bytes: Rc<[u8]>,
    start: usize,
    end: usize,
}

// SAFETY: the pointer stays valid while `bytes` (an owned Rc) lives, and `bytes_init` is in bounds.
unsafe impl monoio::buf::IoBuf for ReplaySlice {
    fn read_ptr(&self) -> *const u8 {
        self.bytes[self.start..].as_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.end - self.start
    }
}

fn jittered(at: Instant, jitter: Duration, rng: &mut u64) -> Instant {
    if jitter.is_zero() {
        return at;
    }
    let span_ns = jitter.as_nanos() as u64 * 2 + 1;
    let offset_ns = crate::rng::next(rng) % span_ns;
    (at + Duration::from_nanos(offset_ns)).checked_sub(jitter).unwrap_or(at)
}

fn unix_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every open stream on the server is one of these futures: keep it small.
    #[test]
    fn request_bodies_are_bounded_and_lengths_must_agree() {
        let refused = |input: &[u8]| match parse_request(input) {
            Some(ReadOutcome::Refuse(answer)) => std::str::from_utf8(answer).unwrap()[9..12].to_string(),
            Some(ReadOutcome::Request(r)) => format!("ok {}", r.body_len),
            _ => "other".into(),
        };
        assert_eq!(refused(b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n"), "413");
        assert_eq!(refused(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"), "400");
        assert_eq!(refused(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"), "400");
        assert_eq!(refused(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"), "ok 3");
        let resume = |input: &[u8]| match parse_request(input) {
            Some(ReadOutcome::Request(r)) => r.resume_after,
            _ => panic!("not a request"),
        };
        assert_eq!(resume(b"GET / HTTP/1.1\r\nLast-Event-ID:  41 \r\n\r\n"), 41);
        assert_eq!(resume(b"GET / HTTP/1.1\r\nLast-Event-ID: abc\r\n\r\n"), 0);
    }

    #[test]
    fn gets_are_routed_by_path_and_everything_else_is_a_stream() {
        let route = |input: &str| match parse_request(input.as_bytes()) {
            Some(ReadOutcome::Request(r)) => r.route,
            _ => panic!("not a request: {input}"),
        };
        assert_eq!(route("GET /health HTTP/1.1\r\n\r\n"), Route::Health);
        assert_eq!(route("GET /v1/models?x=1 HTTP/1.1\r\n\r\n"), Route::Models);
        assert_eq!(route("GET /v1/chat/completions HTTP/1.1\r\n\r\n"), Route::GetCompletion);
        assert_eq!(route("GET /v1/completions HTTP/1.1\r\n\r\n"), Route::GetCompletion);
        assert_eq!(route("GET /healthz HTTP/1.1\r\n\r\n"), Route::OtherGet);
        assert_eq!(route("POST /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), Route::Stream);
        assert_eq!(route("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), Route::Stream);
    }

    #[test]
    fn connection_future_stays_small() {
        let core = Rc::new(super::super::ServeCore::for_tests());
        crate::runtime::block_on(crate::runtime::Driver::Epoll, async move {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let stream = TcpStream::connect_addr(listener.local_addr().unwrap()).await.unwrap();
            let size = std::mem::size_of_val(&serve(stream, core));
            eprintln!("server connection future: {size} bytes");
            // 632 B before Last-Event-ID resume (+24 B), 672 B with --heartbeat's loop (+16 B), 696 B with
            // --openai's GET routes (+24 B: the compiler lays the future out larger with the route field, though the
            // request itself stayed 24 B by keeping its lengths in u32s); the budget catches kilobyte
            // regressions such as a header array held across an await.
            assert!(size <= 696, "server connection future is {size} bytes");
        })
        .unwrap();
    }
}

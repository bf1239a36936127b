//! HTTP/1.1 request encoding: the request bytes are built once per run and written as-is for every stream,
//! or, for templated requests, rebuilt per stream by `template` through the same head writer.

/// What goes into a request. Header names and values were checked by `config` (no CR, LF or NUL).
pub struct RequestSpec<'a> {
    pub method: &'a str,
    /// Origin-form request target: path plus query, starting with `/`.
    pub path: &'a str,
    /// Value of the `Host` header (`host[:port]`).
    pub host: &'a str,
    /// User headers, in order. One whose name matches a default header replaces it.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Headers every request carries unless the user sets the same name.
/// `Accept` and `Cache-Control` are what a browser's EventSource sends.
const DEFAULT_HEADERS: [(&str, &str); 3] = [
    ("Accept", "text/event-stream"),
    ("Cache-Control", "no-cache"),
    ("User-Agent", concat!("ssebench/", env!("CARGO_PKG_VERSION"))),
];

/// `--compressed`: the codings a browser offers, and the ones `http1::coding` decodes.
pub const ACCEPT_ENCODING: (&str, &str) = ("Accept-Encoding", "gzip, deflate, br");

/// Encodes the whole request (head and body) into one buffer: [`encode_head`] and the body, as they go out, and what
/// a static template must render (its tests hold it to that).
#[cfg(test)]
pub fn encode(spec: &RequestSpec<'_>) -> Vec<u8> {
    let mut out = encode_head(spec);
    out.extend_from_slice(spec.body);
    out
}

/// Encodes the head alone, its Content-Length saying `spec.body`'s: the body goes out from where it is, shared.
pub fn encode_head(spec: &RequestSpec<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_head(
        &mut out,
        spec.method,
        spec.host,
        spec.headers,
        |out| out.extend_from_slice(spec.path.as_bytes()),
        |_, value, out| out.extend_from_slice(value.as_bytes()),
        spec.body.len(),
    );
    out
}

/// Appends a whole request to `out`: the one place that decides which headers a request carries, shared by
/// [`encode`] and per-user templates so both produce the same bytes. `write_path` writes the request target;
/// `write_value(i, value, out)` writes the value of user header `i`. Allocates nothing beyond `out`'s growth.
pub(crate) fn write_request<V>(
    out: &mut Vec<u8>,
    method: &str,
    host: &str,
    headers: &[(String, V)],
    write_path: impl FnOnce(&mut Vec<u8>),
    write_value: impl FnMut(usize, &V, &mut Vec<u8>),
    body: &[u8],
) {
    write_head(out, method, host, headers, write_path, write_value, body.len());
    out.extend_from_slice(body);
}

/// Appends a request's head to `out`, for a body of `body_len` bytes: [`write_request`] without the body.
pub(crate) fn write_head<V>(
    out: &mut Vec<u8>,
    method: &str,
    host: &str,
    headers: &[(String, V)],
    write_path: impl FnOnce(&mut Vec<u8>),
    mut write_value: impl FnMut(usize, &V, &mut Vec<u8>),
    body_len: usize,
) {
    let user_has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    write_path(out);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !user_has("Host") {
        push_line(out, &["Host: ", host]);
    }
    for (name, value) in DEFAULT_HEADERS {
        if !user_has(name) {
            push_line(out, &[name, ": ", value]);
        }
    }
    for (i, (name, value)) in headers.iter().enumerate() {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        write_value(i, value, out);
        out.extend_from_slice(b"\r\n");
    }
    // A body needs its length; so does a method that usually has one, even when empty,
    // because some servers answer 411 to a bodiless POST.
    let wants_length = body_len > 0 || matches!(method, "POST" | "PUT" | "PATCH");
    if wants_length && !user_has("Content-Length") {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(decimal(body_len as u64, &mut [0; 20]));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes `n` in decimal into the end of `buf` and returns the digits: no allocation (formatting
/// machinery would make a `String`), for every number written into request, body or event bytes.
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

fn push_line(out: &mut Vec<u8>, parts: &[&str]) {
    for part in parts {
        out.extend_from_slice(part.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_str(method: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
        let headers: Vec<(String, String)> = headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        let spec = RequestSpec { method, path: "/sse?x=1", host: "example:8080", headers: &headers, body };
        String::from_utf8(encode(&spec)).unwrap()
    }

    /// The head alone, then the body held apart: the same bytes as `write_request` (templates) makes in one buffer.
    #[test]
    fn head_then_body_is_the_whole_request() {
        for (method, body) in [("GET", &b""[..]), ("POST", b""), ("POST", b"{\"x\":1}"), ("PUT", &[7u8; 70_000][..])] {
            let headers = vec![("X-A".to_string(), "1".to_string())];
            let spec = RequestSpec { method, path: "/p", host: "h:1", headers: &headers, body };
            let mut whole = Vec::new();
            let path = |out: &mut Vec<u8>| out.extend_from_slice(b"/p");
            write_request(
                &mut whole,
                method,
                "h:1",
                &headers,
                path,
                |_, v, out| out.extend_from_slice(v.as_bytes()),
                body,
            );
            assert!(encode_head(&spec).ends_with(b"\r\n\r\n"), "{method}");
            assert_eq!(encode(&spec), whole, "{method}");
        }
    }

    #[test]
    fn get_has_defaults_and_no_length() {
        let req = encode_str("GET", &[], b"");
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            req,
            format!(
                "GET /sse?x=1 HTTP/1.1\r\nHost: example:8080\r\nAccept: text/event-stream\r\n\
                 Cache-Control: no-cache\r\nUser-Agent: ssebench/{version}\r\n\r\n"
            )
        );
    }

    #[test]
    fn user_headers_replace_defaults_case_insensitively() {
        let req = encode_str("GET", &[("accept", "*/*"), ("X-Token", "a b")], b"");
        assert!(!req.contains("Accept: text/event-stream"));
        assert!(req.contains("\r\naccept: */*\r\n"));
        assert!(req.contains("\r\nX-Token: a b\r\n"));
    }

    #[test]
    fn body_gets_content_length_and_follows_the_head() {
        let req = encode_str("POST", &[("Content-Type", "application/json")], b"{\"a\":1}");
        assert!(req.contains("\r\nContent-Length: 7\r\n"));
        assert!(req.ends_with("\r\n\r\n{\"a\":1}"));
        let empty_post = encode_str("POST", &[], b"");
        assert!(empty_post.contains("\r\nContent-Length: 0\r\n"));
    }

    #[test]
    fn decimal_edges() {
        for n in [0, 1, 9, 10, 12345, u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }

    #[test]
    fn encoded_head_parses_as_a_request() {
        let req = encode_str("POST", &[("X-A", "1")], b"xyz");
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut parsed = httparse::Request::new(&mut headers);
        let status = parsed.parse(req.as_bytes()).unwrap();
        assert_eq!(status, httparse::Status::Complete(req.len() - 3));
        assert_eq!(parsed.method, Some("POST"));
        assert_eq!(parsed.path, Some("/sse?x=1"));
    }
}

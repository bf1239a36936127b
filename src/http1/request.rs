//! HTTP/1.1 request encoding: the request bytes are built once per run and written as-is for every stream.

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

/// Encodes the whole request (head and body) into one buffer.
pub fn encode(spec: &RequestSpec<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + spec.body.len());
    let user_has = |name: &str| spec.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    push_line(&mut out, &[spec.method, " ", spec.path, " HTTP/1.1"]);
    if !user_has("Host") {
        push_line(&mut out, &["Host: ", spec.host]);
    }
    for (name, value) in DEFAULT_HEADERS {
        if !user_has(name) {
            push_line(&mut out, &[name, ": ", value]);
        }
    }
    for (name, value) in spec.headers {
        push_line(&mut out, &[name, ": ", value]);
    }
    // A body needs its length; so does a method that usually has one, even when empty,
    // because some servers answer 411 to a bodiless POST.
    let wants_length = !spec.body.is_empty() || matches!(spec.method, "POST" | "PUT" | "PATCH");
    if wants_length && !user_has("Content-Length") {
        push_line(&mut out, &["Content-Length: ", &spec.body.len().to_string()]);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(spec.body);
    out
}

/// Writes `n` in decimal into the end of `buf` and returns the digits: no allocation, for the
/// server's events and the client's `Last-Event-ID`.
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

//! Redirects as a browser's EventSource follows them (the Fetch standard's "HTTP-redirect fetch"), sans IO: which
//! statuses redirect, the `Location` of a response head, that Location resolved against the stream's current URL,
//! and the next hop's request (method, body, headers) rewritten from the one the stream first sent.
//!
//! Nothing here runs per event: a redirect is once per hop, and allocating there is fine (the URL's strings, the
//! rewritten request's buffer, which the caller keeps and reuses).
//!
//! Decisions, after Fetch (<https://fetch.spec.whatwg.org/#http-redirect-fetch>):
//! - 301, 302, 303, 307 and 308 redirect; a redirect without `Location` is an ordinary non-2xx answer.
//! - 303 turns any method but GET and HEAD into GET, and 301 and 302 turn POST into GET; the body goes, and with it
//!   the headers that describe it (`Content-Length`, `Content-Type`, `Content-Encoding`, `Content-Language`,
//!   `Content-Location`, `Transfer-Encoding`). 307 and 308 keep method and body. Once a GET, always a GET.
//! - A hop to another origin (scheme, host, port) drops `Authorization`, `Proxy-Authorization` and `Cookie`, and they
//!   stay dropped for the rest of the stream, even back on the first origin: Fetch deletes them from the request.
//! - `Host` is the new URL's authority on a hop to another authority; within the stream's first authority the
//!   request's own `Host` stays (a `-H Host:` the user set is kept).
//! - A Location is resolved as RFC 3986 section 5.2 says (`/path`, `path`, `../path`, `//host/path`, `?q`, `#f`, an
//!   empty one), with WHATWG's leniency where it is cheap: leading and trailing spaces and controls trimmed, tabs
//!   dropped, bytes a request line cannot carry (spaces, controls, non-ASCII, `"<>` and friends) percent-encoded,
//!   the fragment dropped, the host lowercased, a default port omitted from `Host`.
//! - [`BadLocation`] (counted as `bad_redirect`): a scheme other than http and https (`ftp:`, `mailto:`), an
//!   absolute URL without `//` after its scheme, user info (`user@host`), an empty or non-ASCII (IDN) host, a bad
//!   port, or several `Location` fields.

use std::net::Ipv6Addr;

/// Hops a stream follows by default before `too_many_redirects`: Fetch's limit.
pub const DEFAULT_MAX_REDIRECTS: u16 = 20;

/// The statuses that redirect (with a `Location`).
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Why a redirect cannot be followed: counted as the stream's `bad_redirect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadLocation {
    /// A scheme other than `http` and `https`.
    Scheme,
    /// Not a URL this client can request (see the module notes).
    Syntax,
}

/// An `http://` or `https://` URL the client can request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Url {
    pub tls: bool,
    /// Lowercase; an IPv6 address without its brackets, in its canonical text.
    pub host: String,
    pub port: u16,
    /// Origin-form request target: path and query, starting with `/`; no fragment.
    pub path: String,
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL.
    pub fn parse(url: &[u8]) -> Result<Url, BadLocation> {
        let url = clean(url);
        let (tls, rest) = http_scheme(&url).ok_or(BadLocation::Scheme)?;
        absolute(tls, rest)
    }

    /// `location` resolved against this URL (RFC 3986 section 5.2).
    pub fn resolve(&self, location: &[u8]) -> Result<Url, BadLocation> {
        let location = clean(location);
        let reference = match location.iter().position(|&b| b == b'#') {
            Some(hash) => &location[..hash],
            None => &location[..],
        };
        if let Some((tls, rest)) = http_scheme(reference) {
            return absolute(tls, rest);
        }
        if has_scheme(reference) {
            return Err(BadLocation::Scheme);
        }
        if let Some(rest) = reference.strip_prefix(b"//") {
            return authority_and_path(self.tls, rest);
        }
        let (base_path, base_query) = split_query(&self.path);
        let (path, query) = split_query_bytes(reference);
        let query = match (path.is_empty(), query) {
            // Empty, or only a fragment: the same path and query.
            (true, None) => base_query.map(str::to_string),
            (_, query) => query.map(|q| encode(q, QUERY_SET)),
        };
        let path = match path {
            [] => base_path.to_string(),
            [b'/', ..] => remove_dot_segments(&encode(path, PATH_SET)),
            _ => {
                let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
                remove_dot_segments(&format!("{dir}{}", encode(path, PATH_SET)))
            }
        };
        Ok(Url { path: join_query(path, query.as_deref()), ..self.clone() })
    }

    /// Same scheme, host and port.
    pub fn same_origin(&self, other: &Url) -> bool {
        self.tls == other.tls && self.same_authority(other)
    }

    /// Same host and port: the same address, whatever the scheme.
    pub fn same_authority(&self, other: &Url) -> bool {
        self.host == other.host && self.port == other.port
    }

    /// The `Host` header's value: the host (an IPv6 one in brackets), and the port unless it is the scheme's default.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == default_port(self.tls) { host } else { format!("{host}:{}", self.port) }
    }
}

/// Where a hop goes, next to the URL it leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Same scheme, host and port: the connection may carry the next request.
    SameOrigin,
    /// Same host and port, another scheme: the same address, resolved already.
    SameAuthority,
    /// Another host or port.
    Elsewhere,
}

/// Where one stream stands after its redirects so far. With the request the stream first sent, it gives the
/// request of its current hop ([`Hops::write_request`]); the caller keeps it per user and reuses its strings.
#[derive(Debug, Clone, Default)]
pub struct Hops {
    /// The stream's own URL, where its first request went.
    pub start: Url,
    /// Where the current hop goes.
    pub url: Url,
    /// A 303 (or a 301 or 302 after a POST) made it a GET without a body.
    pub to_get: bool,
    /// A hop crossed to another origin: the request's credentials are gone.
    pub crossed_origin: bool,
}

/// Headers that describe a body: gone with it (Fetch's request-body-header names, and the framing ones).
const BODY_HEADERS: [&str; 6] =
    ["content-length", "content-type", "content-encoding", "content-language", "content-location", "transfer-encoding"];
/// Headers that carry credentials: dropped at a hop to another origin.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

impl Hops {
    /// A stream that starts at `url`, not redirected yet.
    pub fn start(&mut self, url: Url) {
        self.url = url.clone();
        self.start = url;
        self.to_get = false;
        self.crossed_origin = false;
    }

    /// Follows a `status` redirect to `location`, for a stream whose requests use `method` (until a redirect
    /// turns it into a GET). Returns where the next hop goes, next to the current URL.
    pub fn follow(&mut self, status: u16, method: &str, location: &[u8]) -> Result<Destination, BadLocation> {
        debug_assert!(is_redirect(status), "{status} is not a redirect");
        let next = self.url.resolve(location)?;
        let method = if self.to_get { "GET" } else { method };
        let to_get = match status {
            301 | 302 => method == "POST",
            303 => method != "GET" && method != "HEAD",
            _ => false,
        };
        self.to_get |= to_get;
        let destination = match (self.url.same_origin(&next), self.url.same_authority(&next)) {
            (true, _) => Destination::SameOrigin,
            (false, true) => Destination::SameAuthority,
            (false, false) => Destination::Elsewhere,
        };
        self.crossed_origin |= destination != Destination::SameOrigin;
        self.url = next;
        Ok(destination)
    }

    /// Writes the current hop's request into `out` (cleared first), from `original`: the request the stream first
    /// sent, or its head when its body is held apart. Its header lines keep their order and bytes, less those the
    /// hops dropped. `original` is a request this client encoded, so it parses; if it did not, it is sent as it is.
    /// Returns whether the hop keeps the body: a body held apart goes after `out` then.
    pub fn write_request(&self, original: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        // A line per header at most: allocated per hop, never per event.
        let lines = memchr::memchr_iter(b'\n', original).count();
        let mut headers = vec![httparse::EMPTY_HEADER; lines];
        let mut request = httparse::Request::new(&mut headers);
        let (Ok(httparse::Status::Complete(head_len)), Some(method)) = (request.parse(original), request.method) else {
            out.extend_from_slice(original);
            return true;
        };
        let method = if self.to_get { "GET" } else { method };
        let keep_host = self.start.same_authority(&self.url);
        for part in [method, " ", &self.url.path, " HTTP/1.1\r\n"] {
            out.extend_from_slice(part.as_bytes());
        }
        if !keep_host {
            for part in ["Host: ", &self.url.authority(), "\r\n"] {
                out.extend_from_slice(part.as_bytes());
            }
        }
        for header in request.headers.iter() {
            let name = header.name;
            let is = |names: &[&str]| names.iter().any(|n| name.eq_ignore_ascii_case(n));
            let dropped = (!keep_host && name.eq_ignore_ascii_case("host"))
                || (self.to_get && is(&BODY_HEADERS))
                || (self.crossed_origin && is(&CREDENTIAL_HEADERS));
            if !dropped {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(header.value);
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b"\r\n");
        if !self.to_get {
            out.extend_from_slice(&original[head_len..]);
        }
        !self.to_get
    }
}

fn default_port(tls: bool) -> u16 {
    if tls { 443 } else { 80 }
}

/// WHATWG's input clean-up: leading and trailing C0 controls and spaces trimmed, tabs and line breaks removed.
fn clean(input: &[u8]) -> Vec<u8> {
    let start = input.iter().position(|&b| b > b' ').unwrap_or(input.len());
    let end = input.iter().rposition(|&b| b > b' ').map_or(start, |i| i + 1);
    input[start..end].iter().copied().filter(|b| !matches!(b, b'\t' | b'\n' | b'\r')).collect()
}

/// A URL that starts `http:` or `https:` (any case): whether it is TLS, and what follows the colon.
fn http_scheme(url: &[u8]) -> Option<(bool, &[u8])> {
    let colon = url.iter().position(|&b| b == b':')?;
    let tls = match &url[..colon] {
        s if s.eq_ignore_ascii_case(b"http") => false,
        s if s.eq_ignore_ascii_case(b"https") => true,
        _ => return None,
    };
    Some((tls, &url[colon + 1..]))
}

/// RFC 3986 scheme: a letter, then letters, digits, `+`, `-`, `.`, then `:`, before any `/`, `?` or `#`.
fn has_scheme(reference: &[u8]) -> bool {
    let Some(colon) = reference.iter().position(|&b| matches!(b, b':' | b'/' | b'?' | b'#')) else { return false };
    let scheme = &reference[..colon];
    reference[colon] == b':'
        && scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// `rest`: what follows `http:` or `https:`. It must go on with `//` (`http:path` is refused, see the module notes).
fn absolute(tls: bool, rest: &[u8]) -> Result<Url, BadLocation> {
    authority_and_path(tls, rest.strip_prefix(b"//").ok_or(BadLocation::Syntax)?)
}

/// `rest`: what follows `scheme://` or a scheme-relative `//`. Parses authority, path and query.
fn authority_and_path(tls: bool, rest: &[u8]) -> Result<Url, BadLocation> {
    let end = rest.iter().position(|&b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let tail = match tail.iter().position(|&b| b == b'#') {
        Some(hash) => &tail[..hash],
        None => tail,
    };
    let (host, port) = host_port(authority, tls)?;
    let (path, query) = split_query_bytes(tail);
    let path = if path.is_empty() { "/".to_string() } else { remove_dot_segments(&encode(path, PATH_SET)) };
    Ok(Url { tls, host, port, path: join_query(path, query.map(|q| encode(q, QUERY_SET)).as_deref()) })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; an empty port is the default one.
fn host_port(authority: &[u8], tls: bool) -> Result<(String, u16), BadLocation> {
    if !authority.is_ascii() || authority.contains(&b'@') {
        return Err(BadLocation::Syntax);
    }
    let authority = std::str::from_utf8(authority).map_err(|_| BadLocation::Syntax)?;
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, port) = rest.split_once(']').ok_or(BadLocation::Syntax)?;
        let v6: Ipv6Addr = v6.parse().map_err(|_| BadLocation::Syntax)?;
        (v6.to_string(), port.strip_prefix(':').or(port.is_empty().then_some("")).ok_or(BadLocation::Syntax)?)
    } else {
        let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
        // WHATWG's forbidden host code points, and `%`: a percent-encoded (or international) host is not resolved.
        let forbidden = |c: char| c.is_ascii_control() || " #%/:<>?@[\\]^|".contains(c);
        if host.is_empty() || host.contains(forbidden) {
            return Err(BadLocation::Syntax);
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        "" => default_port(tls),
        digits if digits.bytes().all(|b| b.is_ascii_digit()) => digits.parse().map_err(|_| BadLocation::Syntax)?,
        _ => return Err(BadLocation::Syntax),
    };
    Ok((host, port))
}

/// Bytes a path must not carry as they are (WHATWG's path percent-encode set, and `\`).
const PATH_SET: &[u8] = b" \"<>`{}\\";
/// Bytes a query must not carry as they are (WHATWG's special-query percent-encode set).
const QUERY_SET: &[u8] = b" \"<>'";

/// `bytes` with controls, non-ASCII bytes and those of `set` percent-encoded; an existing `%` is kept.
fn encode(bytes: &[u8], set: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if !(0x20..0x7f).contains(&b) || set.contains(&b) {
            out.extend(['%', char::from(HEX[usize::from(b >> 4)]), char::from(HEX[usize::from(b & 15)])]);
        } else {
            out.push(char::from(b));
        }
    }
    out
}

fn split_query(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

fn split_query_bytes(reference: &[u8]) -> (&[u8], Option<&[u8]>) {
    match reference.iter().position(|&b| b == b'?') {
        Some(q) => (&reference[..q], Some(&reference[q + 1..])),
        None => (reference, None),
    }
}

fn join_query(path: String, query: Option<&str>) -> String {
    match query {
        Some(query) => format!("{path}?{query}"),
        None => path,
    }
}

/// RFC 3986 section 5.2.4 for a path that starts with `/`: `.` and `..` segments (and their `%2e` spellings)
/// removed; one that ends the path leaves a trailing `/`; `..` never climbs above the root.
fn remove_dot_segments(path: &str) -> String {
    debug_assert!(path.starts_with('/'), "{path}");
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    let spelled = |segment: &str, spellings: &[&str]| spellings.iter().any(|s| segment.eq_ignore_ascii_case(s));
    for (i, &segment) in segments.iter().enumerate() {
        if spelled(segment, &["..", ".%2e", "%2e.", "%2e%2e"]) {
            out.pop();
        } else if !spelled(segment, &[".", "%2e"]) {
            out.push(segment);
            continue;
        }
        if i == last {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    /// `(scheme://authority, path)` of a URL, as a table row reads it.
    fn show(u: &Url) -> String {
        format!("{}://{}{}", if u.tls { "https" } else { "http" }, u.authority(), u.path)
    }

    #[test]
    fn redirect_statuses() {
        let redirects: Vec<u16> = (100..600).filter(|&s| is_redirect(s)).collect();
        assert_eq!(redirects, [301, 302, 303, 307, 308]);
    }

    #[test]
    fn absolute_urls() {
        for (text, want) in [
            ("http://a.example/x?y=1#frag", "http://a.example/x?y=1"),
            ("HTTPS://A.Example:443", "https://a.example/"),
            ("http://a.example:80/", "http://a.example/"),
            ("http://a.example:8080", "http://a.example:8080/"),
            ("http://a.example:/p", "http://a.example/p"),
            ("https://[::1]:8443/v1", "https://[::1]:8443/v1"),
            ("http://[0:0::1]/", "http://[::1]/"),
            ("http://127.0.0.1:9?q", "http://127.0.0.1:9/?q"),
            ("  http://h/a b\t\n  ", "http://h/a%20b"),
            ("http://h/a/./b/../c", "http://h/a/c"),
        ] {
            assert_eq!(show(&url(text)), want, "{text}");
        }
        let u = url("https://[::1]:8443/v1");
        assert_eq!((u.host.as_str(), u.port, u.tls), ("::1", 8443, true));
    }

    /// Every reference resolved against one base, as RFC 3986 section 5.4's examples do.
    #[test]
    fn references_resolve_against_the_current_url() {
        let base = url("http://a.example:8080/b/c/d;p?q");
        for (location, want) in [
            // Absolute and scheme-relative.
            ("https://other.example/x", Ok("https://other.example/x")),
            ("HTTP://Other.Example:81", Ok("http://other.example:81/")),
            ("//other.example/x?y", Ok("http://other.example/x?y")),
            ("//other.example", Ok("http://other.example/")),
            // Absolute path, relative path, dot segments.
            ("/g", Ok("http://a.example:8080/g")),
            ("g", Ok("http://a.example:8080/b/c/g")),
            ("./g", Ok("http://a.example:8080/b/c/g")),
            ("g/", Ok("http://a.example:8080/b/c/g/")),
            ("../g", Ok("http://a.example:8080/b/g")),
            ("../..", Ok("http://a.example:8080/")),
            ("../../../../g", Ok("http://a.example:8080/g")),
            (".", Ok("http://a.example:8080/b/c/")),
            ("..", Ok("http://a.example:8080/b/")),
            ("g;x=1/../y", Ok("http://a.example:8080/b/c/y")),
            ("%2E%2e/g", Ok("http://a.example:8080/b/g")),
            ("g..", Ok("http://a.example:8080/b/c/g..")),
            // Query and fragment.
            ("?y", Ok("http://a.example:8080/b/c/d;p?y")),
            ("g?y", Ok("http://a.example:8080/b/c/g?y")),
            ("#s", Ok("http://a.example:8080/b/c/d;p?q")),
            ("g#s", Ok("http://a.example:8080/b/c/g")),
            ("", Ok("http://a.example:8080/b/c/d;p?q")),
            ("  /g  ", Ok("http://a.example:8080/g")),
            // What a request line cannot carry is percent-encoded.
            ("/a b/\u{e9}?q r", Ok("http://a.example:8080/a%20b/%C3%A9?q%20r")),
            ("/\"<x>\"?'", Ok("http://a.example:8080/%22%3Cx%3E%22?%27")),
            ("/100%", Ok("http://a.example:8080/100%")),
            // Refused: other schemes, user info, bad hosts and ports.
            ("ftp://files.example/x", Err(BadLocation::Scheme)),
            ("mailto:a@b", Err(BadLocation::Scheme)),
            ("javascript:alert(1)", Err(BadLocation::Scheme)),
            ("localhost:8080/x", Err(BadLocation::Scheme)),
            ("http:/g", Err(BadLocation::Syntax)),
            ("http://user:pw@h/", Err(BadLocation::Syntax)),
            ("http:///x", Err(BadLocation::Syntax)),
            ("http://h:99999/", Err(BadLocation::Syntax)),
            ("http://h:8x/", Err(BadLocation::Syntax)),
            ("http://h%41/", Err(BadLocation::Syntax)),
            ("http://b\u{fc}cher.example/", Err(BadLocation::Syntax)),
            ("http://[::1/", Err(BadLocation::Syntax)),
            ("http://[x]/", Err(BadLocation::Syntax)),
            ("http://[::1]x/", Err(BadLocation::Syntax)),
        ] {
            let got = base.resolve(location.as_bytes()).map(|u| show(&u));
            assert_eq!(got, want.map(str::to_string), "{location:?}");
        }
    }

    #[test]
    fn origins() {
        let a = url("http://a.example/x");
        assert!(a.same_origin(&url("http://A.EXAMPLE:80/y?z")));
        assert!(!a.same_origin(&url("https://a.example/x")), "scheme");
        assert!(!a.same_origin(&url("http://a.example:81/x")), "port");
        assert!(!a.same_origin(&url("http://b.example/x")), "host");
        assert!(a.same_authority(&url("https://a.example:80/")));
    }

    const POST: &[u8] = b"POST /start HTTP/1.1\r\nHost: a.example:8080\r\nAccept: text/event-stream\r\n\
        Authorization: Bearer k\r\nCookie: c=1\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}";

    /// Follows `hops` (status, location) from `http://a.example:8080/start` with method `method`, and writes the
    /// request of the last hop from `original`.
    fn after(method: &str, hops: &[(u16, &str)], original: &[u8]) -> (String, Destination) {
        let mut state = Hops::default();
        state.start(url("http://a.example:8080/start"));
        let mut last = Destination::SameOrigin;
        for &(status, location) in hops {
            last = state.follow(status, method, location.as_bytes()).unwrap();
        }
        let mut out = Vec::new();
        state.write_request(original, &mut out);
        (String::from_utf8(out).unwrap(), last)
    }

    #[test]
    fn methods_and_bodies_follow_fetch() {
        let get = "GET /next HTTP/1.1\r\nHost: a.example:8080\r\nAccept: text/event-stream\r\n\
            Authorization: Bearer k\r\nCookie: c=1\r\n\r\n";
        let kept = "POST /next HTTP/1.1\r\nHost: a.example:8080\r\nAccept: text/event-stream\r\n\
            Authorization: Bearer k\r\nCookie: c=1\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
        for (status, want) in [(301, get), (302, get), (303, get), (307, kept), (308, kept)] {
            assert_eq!(
                after("POST", &[(status, "/next")], POST),
                (want.to_string(), Destination::SameOrigin),
                "{status}"
            );
        }
        // Once a GET, a later 307 keeps the GET.
        assert_eq!(after("POST", &[(303, "/x"), (307, "/next")], POST).0, get);
        // 303 keeps GET and HEAD; 301 and 302 change only POST.
        let put = String::from_utf8_lossy(POST).replacen("POST", "PUT", 1);
        assert!(after("PUT", &[(302, "/next")], put.as_bytes()).0.starts_with("PUT /next"));
        assert!(after("PUT", &[(303, "/next")], put.as_bytes()).0.starts_with("GET /next"));
        let head = "HEAD /start HTTP/1.1\r\nHost: a.example:8080\r\n\r\n";
        assert_eq!(after("HEAD", &[(303, "/next")], head.as_bytes()).0, head.replace("/start", "/next"));
    }

    #[test]
    fn credentials_go_at_another_origin_and_stay_gone() {
        let (request, destination) = after("GET", &[(307, "https://b.example/next")], POST);
        assert_eq!(destination, Destination::Elsewhere);
        assert_eq!(
            request,
            "POST /next HTTP/1.1\r\nHost: b.example\r\nAccept: text/event-stream\r\n\
             Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
        );
        // Back on the first origin: its own Host again, the credentials still gone.
        let (request, destination) =
            after("GET", &[(307, "http://b.example/x"), (307, "http://a.example:8080/next")], POST);
        assert_eq!(destination, Destination::Elsewhere);
        assert!(request.starts_with("POST /next HTTP/1.1\r\nHost: a.example:8080\r\nAccept"), "{request}");
        assert!(!request.contains("Authorization") && !request.contains("Cookie"), "{request}");
        // Same host, another port: another origin; another scheme on the same host and port too.
        assert!(!after("GET", &[(307, "//a.example:8081/")], POST).0.contains("Authorization"));
        let (request, destination) = after("GET", &[(307, "https://a.example:8080/next")], POST);
        assert_eq!(destination, Destination::SameAuthority);
        assert!(!request.contains("Authorization") && request.contains("Host: a.example:8080"), "{request}");
        // A user's own Host stays within the first authority, and goes at another.
        let own_host = b"GET /start HTTP/1.1\r\nHost: virtual.example\r\nX-A: 1\r\n\r\n";
        assert_eq!(
            after("GET", &[(302, "/next")], own_host).0,
            "GET /next HTTP/1.1\r\nHost: virtual.example\r\nX-A: 1\r\n\r\n"
        );
        assert_eq!(
            after("GET", &[(302, "http://[::1]:9/n")], own_host).0,
            "GET /n HTTP/1.1\r\nHost: [::1]:9\r\nX-A: 1\r\n\r\n"
        );
    }

    proptest::proptest! {
        /// Whatever a server puts in Location, a hop that is followed sends a request line that parses: a path
        /// from `/` with nothing a request target cannot carry, and a host a Host header can.
        #[test]
        fn any_location_gives_a_sendable_request(location in proptest::collection::vec(
            // Any byte, or one that means something in a URL, so that the bytes make URLs often.
            proptest::prop_oneof![proptest::num::u8::ANY, proptest::sample::select(b"/.?#:%@[]\\ \tah1".to_vec())],
            0..40,
        )) {
            let mut state = Hops::default();
            state.start(url("http://a.example/b/c?d"));
            if state.follow(307, "GET", &location).is_ok() {
                let path = &state.url.path;
                proptest::prop_assert!(path.starts_with('/'), "{path}");
                proptest::prop_assert!(path.bytes().all(|b| b.is_ascii_graphic()), "{path}");
                let mut out = Vec::new();
                state.write_request(b"GET /b/c?d HTTP/1.1\r\nHost: a.example\r\n\r\n", &mut out);
                let mut headers = [httparse::EMPTY_HEADER; 4];
                let mut request = httparse::Request::new(&mut headers);
                proptest::prop_assert_eq!(request.parse(&out), Ok(httparse::Status::Complete(out.len())));
                proptest::prop_assert_eq!(request.path, Some(path.as_str()));
            }
        }
    }

    #[test]
    fn an_unparsable_original_is_sent_as_it_is() {
        assert_eq!(after("GET", &[(302, "/next")], b"not a request").0, "not a request");
    }
}

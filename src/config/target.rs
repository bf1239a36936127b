//! Where the streams go: `http://` and `https://` URLs parsed into a `Target`, its host resolved once at start-up.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::config::{ConfigError, err};

/// Where the streams go: a parsed `http://` or `https://` URL, resolved once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    /// `Host` header value: the URL's authority (host and, if given, port).
    pub host_header: String,
    /// Origin-form request target (path and query).
    pub path: String,
    /// `https://`: the URL's host as TLS names it (checked once, here), sent as SNI and checked against the
    /// certificate; `None` for `http://`.
    pub tls_name: Option<rustls::pki_types::ServerName<'static>>,
}

/// The parts of a URL a target is built from.
#[derive(Clone)]
struct UrlParts {
    host: String,
    port: u16,
    host_header: String,
    path: String,
    tls_name: Option<rustls::pki_types::ServerName<'static>>,
}

impl Target {
    /// The URL as the report names it.
    pub fn url(&self) -> String {
        self.url_with_path(&self.path)
    }

    /// The URL with `path` for the target's own (with `--openai`, the API's path): same scheme, same authority.
    pub fn url_with_path(&self, path: &str) -> String {
        let scheme = if self.tls_name.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.host_header)
    }

    /// Parses an `http://` or `https://` URL and resolves its host (once, at start-up).
    pub fn parse(url: &str) -> Result<Target, ConfigError> {
        let parts = Self::split(url)?;
        let addr = (parts.host.as_str(), parts.port)
            .to_socket_addrs()
            .map_err(|e| ConfigError(format!("{url}: cannot resolve '{}': {e}", parts.host)))?
            .next()
            .ok_or_else(|| ConfigError(format!("{url}: '{}' resolves to no address", parts.host)))?;
        Ok(Target::at(addr, parts))
    }

    /// The URL's Host and path sent to each of `addrs` (`--target-addrs`): its host need not resolve.
    pub fn with_addrs(url: &str, addrs: &[SocketAddr]) -> Result<Vec<Target>, ConfigError> {
        let parts = Self::split(url)?;
        Ok(addrs.iter().map(|&addr| Target::at(addr, parts.clone())).collect())
    }

    fn at(addr: SocketAddr, parts: UrlParts) -> Target {
        Target { addr, host_header: parts.host_header, path: parts.path, tls_name: parts.tls_name }
    }

    /// The parts of an `http://` or `https://` URL.
    fn split(url: &str) -> Result<UrlParts, ConfigError> {
        let (rest, tls) = if let Some(rest) = strip_prefix_ignore_case(url, "http://") {
            (rest, false)
        } else if let Some(rest) = strip_prefix_ignore_case(url, "https://") {
            (rest, true)
        } else {
            return err(format!("{url}: the URL must start with http:// or https://"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let path = match path.find('#') {
            Some(i) => path[..i].to_string(),
            None => path,
        };
        if authority.is_empty() || authority.contains('@') {
            return err(format!("{url}: expected http[s]://host[:port]/path (no user info)"));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = split_host_port(authority, default_port)
            .ok_or_else(|| ConfigError(format!("{url}: bad host or port in '{authority}'")))?;
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return err(format!("{url}: the path has spaces or control characters; percent-encode them"));
        }
        // A host TLS cannot name would fail every connection: say so now.
        let tls_name = match tls {
            false => None,
            true => Some(
                rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|_| ConfigError(format!("{url}: '{host}' is not a valid TLS server name")))?,
            ),
        };
        Ok(UrlParts { host: host.to_string(), port, host_header: authority.to_string(), path, tls_name })
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(authority: &str, default_port: u16) -> Option<(&str, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        return match &rest[end + 1..] {
            "" => Some((host, default_port)),
            port => Some((host, port.strip_prefix(':')?.parse().ok()?)),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => Some((host, port.parse().ok()?)),
        Some(_) => None,
        None => Some((authority, default_port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:8080/events?a=1#frag").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t.host_header, "127.0.0.1:8080");
        assert_eq!(t.path, "/events?a=1");
        let t = Target::parse("HTTP://127.0.0.1").unwrap();
        assert_eq!((t.addr.port(), t.path.as_str()), (80, "/"));
        let t = Target::parse("http://[::1]:9000?x").unwrap();
        assert_eq!(t.addr, "[::1]:9000".parse().unwrap());
        let tls_name = |t: &Target| t.tls_name.as_ref().map(|n| n.to_str().into_owned());
        assert_eq!((t.path.as_str(), tls_name(&t).as_deref()), ("/?x", None));
        let t = Target::parse("HTTPS://localhost/v1").unwrap();
        assert_eq!((t.addr.port(), tls_name(&t).as_deref()), (443, Some("localhost")));
        assert_eq!(t.url(), "https://localhost/v1");
        let t = Target::parse("https://[::1]:8443/").unwrap();
        assert_eq!((t.addr.port(), tls_name(&t).as_deref(), t.host_header.as_str()), (8443, Some("::1"), "[::1]:8443"));
        for bad in ["ftp://x/", "127.0.0.1:80", "http://", "http://h:notaport/", "http://u@h/", "https://"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}

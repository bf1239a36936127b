//! Redirects on one core, worker side: where each redirected stream's current hop goes (its address, the TLS name
//! it checks, the request it sends) and the host names redirects resolved. The rules themselves are `redirect`'s,
//! sans IO; this file adds the one IO a hop needs, a name lookup.
//!
//! Nothing here is in a user's future: the state sits in the core, one slot per user, allocated at the user's first
//! redirect and reused by its later ones. A stream that never redirects costs a lookup in an empty (or `None`) slot
//! at its connect and at its request, nothing per event.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use rustls::pki_types::ServerName;

use crate::config::RunConfig;
use crate::recorder::Failure;
use crate::redirect::{Destination, Hops, Url};

/// Host names resolved for redirects, kept per core for the run (as the targets' are); the oldest goes past this.
const RESOLVED_MAX: usize = 64;

/// One stream among all of its slot's: a hop belongs to the stream that followed it, so the slot's next stream (or,
/// in the open model, the next arrival) starts from its target again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamId {
    /// The user's index on this core.
    pub(crate) local: usize,
    /// Its `{{vu}}` (in the open model, the arrival's number) and stream number.
    pub(crate) vu: u64,
    pub(crate) seq: u32,
}

/// Where a redirected stream's current hop goes.
#[derive(Debug, Default)]
struct Hop {
    /// `(vu, seq)` of the stream it belongs to.
    stream: Option<(u64, u32)>,
    hops: Hops,
    addr: Option<SocketAddr>,
    /// `https://`: the name TLS checks; `None` for `http://`.
    tls_name: Option<ServerName<'static>>,
    /// The hop's request, rewritten from the stream's own for each write (a buffer reused from hop to hop).
    request: Vec<u8>,
}

impl Hop {
    /// Whether this is stream `id`'s hop (rather than one an earlier stream of the user left).
    fn is(&self, id: StreamId) -> bool {
        self.stream == Some((id.vu, id.seq))
    }
}

/// The core's redirect state.
#[derive(Debug, Default)]
pub(crate) struct Redirects {
    /// By the user's index on this core; grown on a first redirect only.
    users: Vec<Option<Box<Hop>>>,
    /// `(host, port, address)` of names redirects resolved.
    resolved: Vec<(String, u16, SocketAddr)>,
}

impl Redirects {
    /// The stream's current hop, if it has followed a redirect.
    fn hop(&self, id: StreamId) -> Option<&Hop> {
        self.users.get(id.local)?.as_deref().filter(|hop| hop.is(id))
    }

    /// Where the stream connects, if a redirect sent it elsewhere than its target.
    pub(crate) fn addr(&self, id: StreamId) -> Option<SocketAddr> {
        self.hop(id)?.addr
    }

    /// The TLS name the stream's connection checks, if a redirect set it (`Some(None)`: an `http://` hop).
    pub(crate) fn tls_name(&self, id: StreamId) -> Option<&Option<ServerName<'static>>> {
        self.hop(id).map(|hop| &hop.tls_name)
    }

    /// The request the stream sends now, as its two parts: the one its target gets (`head`, and a `body` held apart)
    /// itself, or its head rewritten for the hop, with the body if the hop keeps it.
    pub(crate) fn request<'a>(&'a mut self, id: StreamId, head: &'a [u8], body: &'a [u8]) -> [&'a [u8]; 2] {
        let hop = self.users.get_mut(id.local).and_then(|hop| hop.as_deref_mut());
        match hop.filter(|hop| hop.is(id)) {
            Some(hop) => {
                let keeps_body = hop.hops.write_request(head, &mut hop.request);
                [&hop.request, if keeps_body { body } else { &[] }]
            }
            None => [head, body],
        }
    }

    /// Follows a `status` redirect to `location` for stream `id`, whose target is `cfg.targets[target]`: resolves the
    /// Location against the current URL, and a new host's name (DNS, once per name and core), and picks the TLS name
    /// for an `https://` hop. Where the hop goes, or why it cannot: `bad_redirect`, or `connect_error` for a name
    /// that does not resolve.
    pub(crate) fn follow(
        &mut self,
        id: StreamId,
        cfg: &RunConfig,
        target: usize,
        status: u16,
        location: &[u8],
    ) -> Result<Destination, Failure> {
        if self.users.len() <= id.local {
            self.users.resize_with(id.local + 1, || None);
        }
        let hop = self.users[id.local].get_or_insert_with(Box::default);
        if !hop.is(id) {
            // The stream's first redirect: it starts from its target.
            let url = Url::parse(cfg.target_url(target).as_bytes()).map_err(|_| Failure::BadRedirect)?;
            hop.hops.start(url);
            hop.stream = Some((id.vu, id.seq));
            hop.addr = Some(cfg.targets[target].addr);
            hop.tls_name = cfg.targets[target].tls_name.clone();
        }
        let destination = hop.hops.follow(status, &cfg.method, location).map_err(|_| Failure::BadRedirect)?;
        let url = &hop.hops.url;
        if destination == Destination::Elsewhere {
            hop.addr = Some(resolve(&mut self.resolved, &url.host, url.port)?);
        }
        hop.tls_name = match (url.tls, &cfg.tls) {
            (false, _) => None,
            // No https:// target, so no TLS config: building one here (system roots, per core) is not worth it
            // for a case a run can avoid by naming the https:// URL itself.
            (true, None) => return Err(Failure::BadRedirect),
            (true, Some(_)) => Some(ServerName::try_from(url.host.clone()).map_err(|_| Failure::BadRedirect)?),
        };
        Ok(destination)
    }
}

/// `host:port`'s address: an IP address as it is; a name from the core's cache, or the system resolver. The lookup
/// blocks this core's thread, once per name and core for the run, like the targets' at start-up.
fn resolve(cache: &mut Vec<(String, u16, SocketAddr)>, host: &str, port: u16) -> Result<SocketAddr, Failure> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    if let Some(&(_, _, addr)) = cache.iter().find(|(h, p, _)| h == host && *p == port) {
        return Ok(addr);
    }
    let addr = (host, port).to_socket_addrs().ok().and_then(|mut addrs| addrs.next()).ok_or(Failure::ConnectOther)?;
    if cache.len() == RESOLVED_MAX {
        cache.remove(0);
    }
    cache.push((host.to_string(), port, addr));
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Target;

    fn cfg() -> RunConfig {
        RunConfig::new(vec![Target::parse("http://127.0.0.1:8080/events").unwrap()])
    }

    const ID: StreamId = StreamId { local: 2, vu: 5, seq: 7 };

    #[test]
    fn a_hop_belongs_to_the_stream_that_followed_it() {
        let mut redirects = Redirects::default();
        assert_eq!(
            (redirects.addr(ID), redirects.request(ID, b"GET / HTTP/1.1\r\n\r\n", b"")),
            (None, [&b"GET / HTTP/1.1\r\n\r\n"[..], &b""[..]])
        );
        let destination = redirects.follow(ID, &cfg(), 0, 302, b"http://127.0.0.2:9/next").unwrap();
        assert_eq!(destination, Destination::Elsewhere);
        assert_eq!(redirects.addr(ID), Some("127.0.0.2:9".parse().unwrap()));
        assert_eq!(redirects.tls_name(ID), Some(&None));
        let request = redirects.request(ID, b"GET /events HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", b"");
        assert_eq!(request, [&b"GET /next HTTP/1.1\r\nHost: 127.0.0.2:9\r\n\r\n"[..], &b""[..]]);
        // The slot's next stream, or another arrival in it, starts from its target.
        for other in [StreamId { seq: 8, ..ID }, StreamId { vu: 6, ..ID }] {
            assert_eq!(redirects.addr(other), None);
        }
        // Back to the target's authority: its address, with no lookup.
        assert_eq!(redirects.follow(ID, &cfg(), 0, 302, b"//127.0.0.1:8080/x"), Ok(Destination::Elsewhere));
        assert_eq!(redirects.addr(ID), Some("127.0.0.1:8080".parse().unwrap()));
    }

    #[test]
    fn hops_that_cannot_be_followed() {
        let mut redirects = Redirects::default();
        assert_eq!(redirects.follow(ID, &cfg(), 0, 302, b"ftp://x/"), Err(Failure::BadRedirect));
        // No https:// target: no TLS config to connect with.
        assert_eq!(redirects.follow(ID, &cfg(), 0, 302, b"https://127.0.0.1/"), Err(Failure::BadRedirect));
        let name = "no-such-host.invalid";
        let to = format!("http://{name}/");
        assert_eq!(redirects.follow(ID, &cfg(), 0, 302, to.as_bytes()), Err(Failure::ConnectOther));
    }

    #[test]
    fn names_resolve_once_per_core() {
        let mut cache = Vec::new();
        let addr = resolve(&mut cache, "localhost", 80).unwrap();
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_eq!(cache.len(), 1);
        assert_eq!(resolve(&mut cache, "localhost", 80), Ok(addr));
        assert_eq!(resolve(&mut cache, "::1", 81), Ok("[::1]:81".parse().unwrap()));
        assert_eq!(cache.len(), 1, "an address is not a name");
    }
}

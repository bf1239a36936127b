//! Raw socket calls made by hand: non-blocking recv into a per-core buffer, send, SO_REUSEPORT listeners, and errno classification.
//!
//! The worker waits for readiness through monoio and then reads with `recv(MSG_DONTWAIT)`, so an
//! idle stream pins no read buffer of its own (see ARCHITECTURE.md).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::recorder::Failure;

/// `recv(2)` without blocking. `Ok(0)` is end of stream; `WouldBlock` means wait for readiness.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration of the call.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// `send(2)` without blocking and without SIGPIPE.
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the duration of the call.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// Starts a non-blocking TCP connect with TCP_NODELAY set, from `bind` if given. Returns the
/// socket and whether the handshake is still in progress (then wait for writability and check
/// [`socket_error`]).
///
/// With a source address, IP_BIND_ADDRESS_NO_PORT defers the port choice to `connect`, so a
/// port is unique per (source, destination) pair rather than per source: each source address
/// gets a full port range towards every target.
///
/// Done by hand rather than as an io_uring connect op: the op runs inside the next batch
/// submission, so during a connect storm every connect's clock would include the whole batch.
pub fn start_connect(addr: SocketAddr, bind: Option<IpAddr>) -> io::Result<(std::net::TcpStream, bool)> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    let fd = new_socket(domain, libc::SOCK_NONBLOCK)?;
    // Requests are written whole; Nagle would only delay them.
    set_int_option(&fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)?;
    if let Some(source) = bind {
        set_int_option(&fd, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, 1)?;
        let (storage, len) = sockaddr(SocketAddr::new(source, 0));
        // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
        if unsafe { libc::bind(fd.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    let rc = unsafe { libc::connect(fd.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len) };
    let in_progress = if rc == 0 {
        false
    } else {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(err);
        }
        true
    };
    Ok((std::net::TcpStream::from(fd), in_progress))
}

/// Shuts a socket down both ways: whatever waits on it wakes (EOF, or an error for a connect
/// under way) and the peer sees the stream end. Errors are ignored: the socket may be gone.
pub fn shutdown(fd: RawFd) {
    // SAFETY: shutdown(2) on a descriptor number; the callers keep it registered only while open.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}

/// The pending error of a socket (SO_ERROR): how a non-blocking connect ended.
pub fn socket_error(fd: RawFd) -> Option<io::Error> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and sized for SO_ERROR's c_int.
    let rc = unsafe {
        libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, (&mut value as *mut libc::c_int).cast(), &mut len)
    };
    match (rc, value) {
        (rc, _) if rc < 0 => Some(io::Error::last_os_error()),
        (_, 0) => None,
        (_, code) => Some(io::Error::from_raw_os_error(code)),
    }
}

fn new_socket(domain: libc::c_int, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the descriptor is owned by `OwnedFd` right away.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | flags, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_int_option(fd: &OwnedFd, level: libc::c_int, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: the option value points to a live c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// A listening socket with SO_REUSEPORT, so every core can bind the same address and the
/// kernel spreads incoming connections over them.
pub fn reuseport_listener(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    let fd = new_socket(domain, 0)?;
    for option in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
        set_int_option(&fd, libc::SOL_SOCKET, option, 1)?;
    }
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    if unsafe { libc::bind(fd.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: listen(2) on a bound socket we own.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let listener = std::net::TcpListener::from(fd);
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: v6.ip().octets() },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The process's resident memory, from /proc/self/status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryKib {
    /// VmRSS: resident now.
    pub rss_kib: u64,
}

/// Reads VmRSS from /proc/self/status into a stack buffer: the engine samples it during the
/// run, and the run's steady state allocates nothing (tests/alloc.rs counts).
pub fn memory_kib() -> Option<MemoryKib> {
    use std::io::Read;
    let mut buf = [0u8; 4096];
    let mut file = std::fs::File::open("/proc/self/status").ok()?;
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(_) => return None,
        }
    }
    let status = &buf[..len];
    let at = memchr::memmem::find(status, b"VmRSS:")? + b"VmRSS:".len();
    let digits = status[at..].iter().skip_while(|b| b.is_ascii_whitespace()).take_while(|b| b.is_ascii_digit());
    let rss_kib = digits.fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(MemoryKib { rss_kib })
}

/// Classifies an error from `connect`.
pub fn connect_failure(err: &io::Error) -> Failure {
    match err.raw_os_error() {
        Some(libc::ECONNREFUSED) => Failure::ConnectRefused,
        Some(libc::ETIMEDOUT) => Failure::ConnectTimeout,
        // EADDRNOTAVAIL: no free local port for this destination; EADDRINUSE: the same, on bind.
        Some(libc::EADDRNOTAVAIL) | Some(libc::EADDRINUSE) => Failure::PortsExhausted,
        _ => Failure::ConnectOther,
    }
}

/// Classifies an error on an established connection.
pub fn io_failure(err: &io::Error) -> Failure {
    match err.raw_os_error() {
        Some(libc::ECONNRESET) | Some(libc::EPIPE) | Some(libc::ECONNABORTED) => Failure::Reset,
        _ => Failure::Io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let e = |code| io::Error::from_raw_os_error(code);
        assert_eq!(connect_failure(&e(libc::ECONNREFUSED)), Failure::ConnectRefused);
        assert_eq!(connect_failure(&e(libc::EADDRNOTAVAIL)), Failure::PortsExhausted);
        assert_eq!(connect_failure(&e(libc::ENETUNREACH)), Failure::ConnectOther);
        assert_eq!(io_failure(&e(libc::ECONNRESET)), Failure::Reset);
        assert_eq!(io_failure(&e(libc::EIO)), Failure::Io);
    }

    #[test]
    fn resident_memory_is_read() {
        let rss = memory_kib().unwrap().rss_kib;
        assert!((1_000..10_000_000).contains(&rss), "{rss} KiB");
    }
}

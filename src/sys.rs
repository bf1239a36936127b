//! Socket calls: non-blocking connect and SO_REUSEPORT listeners (through socket2), recv into a per-core buffer and
//! send (by hand: the per-event path), /proc memory, and errno classification.
//!
//! The worker waits for readiness through monoio and then reads with `recv(MSG_DONTWAIT)`, so an
//! idle stream pins no read buffer of its own (see ARCHITECTURE.md).

use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use socket2::{Domain, SockRef, Socket, Type};

use crate::recorder::Failure;

/// `recv(2)` without blocking. `Ok(0)` is end of stream; `WouldBlock` means wait for readiness.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration of the call.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// Whether an idle connection has received anything: a byte (an answer nobody asked for), an EOF or an error. One
/// `recv(MSG_PEEK | MSG_DONTWAIT)` of a byte, which leaves the byte where it is; `EAGAIN` says nothing came.
pub fn received_while_idle(fd: RawFd) -> bool {
    let mut byte = 0u8;
    loop {
        // SAFETY: `byte` is valid for a write of one byte for the duration of the call.
        let n = unsafe { libc::recv(fd, (&raw mut byte).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
        if n >= 0 {
            return true;
        }
        match io::Error::last_os_error().kind() {
            io::ErrorKind::WouldBlock => return false,
            io::ErrorKind::Interrupted => {}
            _ => return true,
        }
    }
}

/// `send(2)` without blocking and without SIGPIPE.
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the duration of the call.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// `send` of several buffers in one call (`sendmsg` with an iovec each), so a request's head and its shared body
/// go out together without being copied into one buffer.
pub fn send_vectored(fd: RawFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: msghdr is plain data; the zeroed fields mean no address, no control data, no flags.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is ABI-compatible with iovec on Unix, and sendmsg only reads through the pointer.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    // SAFETY: `msg` points at `bufs`, which outlive the call; each slice is valid for reads.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
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
    // socket2 adds SOCK_CLOEXEC: socket(2) with NONBLOCK and CLOEXEC in one call, as before.
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), None)?;
    // Requests are written whole; Nagle would only delay them.
    socket.set_nodelay(true)?;
    if let Some(source) = bind {
        set_bind_address_no_port(&socket)?;
        socket.bind(&SocketAddr::new(source, 0).into())?;
    }
    let in_progress = match socket.connect(&addr.into()) {
        Ok(()) => false,
        Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => true,
        Err(err) => return Err(err),
    };
    Ok((socket.into(), in_progress))
}

/// IP_BIND_ADDRESS_NO_PORT (Linux 4.2), which socket2 0.5 has no setter for.
fn set_bind_address_no_port(socket: &Socket) -> io::Result<()> {
    let value: libc::c_int = 1;
    // SAFETY: the option value points to a live c_int of the given size for the duration of the call, and the
    // descriptor is owned by `socket`.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Runs `f` on the socket behind descriptor number `fd`, which the caller holds open across the call (the worker
/// keeps a number in a slot only while its connection owns it; see ARCHITECTURE.md). A negative number fails
/// with EBADF, as the system call would.
fn with_socket<R>(fd: RawFd, f: impl FnOnce(&SockRef<'_>) -> io::Result<R>) -> io::Result<R> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: `fd` is not -1 and stays open for as long as the borrow lives (this call), as the callers
    // guarantee; the borrow never closes it.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    f(&SockRef::from(&fd))
}

/// Shuts a socket down both ways: whatever waits on it wakes (EOF, or an error for a connect
/// under way) and the peer sees the stream end. Errors are ignored: the socket may be gone.
pub fn shutdown(fd: RawFd) {
    let _ = with_socket(fd, |socket| socket.shutdown(Shutdown::Both));
}

/// The pending error of a socket (SO_ERROR): how a non-blocking connect ended.
pub fn socket_error(fd: RawFd) -> Option<io::Error> {
    with_socket(fd, |socket| socket.take_error()).unwrap_or_else(Some)
}

/// A listening socket with SO_REUSEPORT, so every core can bind the same address and the
/// kernel spreads incoming connections over them.
pub fn reuseport_listener(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// The process's resident memory, from /proc/self/status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryKib {
    /// VmRSS: resident now.
    pub rss_kib: u64,
    /// VmHWM: the most resident since the process started, or since [`reset_peak`].
    pub hwm_kib: u64,
}

/// The host's name, from /proc/sys/kernel/hostname (uname's nodename), or empty. Once per run.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|name| name.trim().to_string()).unwrap_or_default()
}

/// Reads VmRSS and VmHWM from /proc/self/status into a stack buffer: the engine samples it during the
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
    let field = |name: &[u8]| -> Option<u64> {
        let at = memchr::memmem::find(status, name)? + name.len();
        let digits = status[at..].iter().skip_while(|b| b.is_ascii_whitespace()).take_while(|b| b.is_ascii_digit());
        Some(digits.fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
    };
    Some(MemoryKib { rss_kib: field(b"VmRSS:")?, hwm_kib: field(b"VmHWM:")? })
}

/// Resets the kernel's high-water mark of resident memory (VmHWM) to what is resident now, by writing `5` to
/// /proc/self/clear_refs (Linux 4.0 and later). False where that is not permitted: then only sampling can tell
/// the peak.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

/// CPU time the calling thread has used, user and system, in microseconds: what it spent not parked.
pub fn thread_cpu_us() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
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

    fn wait_connected(stream: &std::net::TcpStream, in_progress: bool) {
        if in_progress {
            let mut poll = libc::pollfd { fd: stream.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
            // SAFETY: one live pollfd.
            assert_eq!(unsafe { libc::poll(&mut poll, 1, 5_000) }, 1);
        }
        assert!(socket_error(stream.as_raw_fd()).is_none());
    }

    #[test]
    fn connect_listen_and_shutdown_over_loopback() {
        use std::io::Read;
        let listener = reuseport_listener("127.0.0.1:0".parse().unwrap(), 8).unwrap();
        let addr = listener.local_addr().unwrap();
        // SO_REUSEPORT: a second listener on the same port is allowed.
        let twin = reuseport_listener(addr, 8).unwrap();
        assert!(matches!(listener.accept(), Err(e) if e.kind() == io::ErrorKind::WouldBlock), "non-blocking");
        drop(twin);
        for bind in [None, Some("127.0.0.1".parse().unwrap())] {
            let (stream, in_progress) = start_connect(addr, bind).unwrap();
            wait_connected(&stream, in_progress);
            assert!(stream.nodelay().unwrap());
            let source = stream.local_addr().unwrap();
            assert_ne!(source.port(), 0);
            let (mut peer, _) = listener.accept().unwrap();
            assert_eq!(send(stream.as_raw_fd(), b"hi").unwrap(), 2);
            let mut got = [0u8; 2];
            peer.set_nonblocking(false).unwrap();
            peer.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"hi");
            assert!(matches!(recv(stream.as_raw_fd(), &mut got), Err(e) if e.kind() == io::ErrorKind::WouldBlock));
            shutdown(stream.as_raw_fd());
            assert_eq!(peer.read(&mut got).unwrap(), 0, "the peer sees the end");
        }
    }

    #[test]
    fn refused_connect_and_bad_descriptors() {
        let port = {
            let listener = reuseport_listener("127.0.0.1:0".parse().unwrap(), 1).unwrap();
            listener.local_addr().unwrap().port()
        };
        match start_connect(SocketAddr::from(([127, 0, 0, 1], port)), None) {
            Err(e) => assert_eq!(connect_failure(&e), Failure::ConnectRefused),
            Ok((stream, _)) => {
                let mut poll = libc::pollfd { fd: stream.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
                // SAFETY: one live pollfd.
                assert_eq!(unsafe { libc::poll(&mut poll, 1, 5_000) }, 1);
                let err = socket_error(stream.as_raw_fd()).expect("refused");
                assert_eq!(connect_failure(&err), Failure::ConnectRefused);
            }
        }
        assert_eq!(socket_error(-1).and_then(|e| e.raw_os_error()), Some(libc::EBADF));
        shutdown(-1);
    }

    #[test]
    fn resident_memory_is_read() {
        let rss = memory_kib().unwrap().rss_kib;
        assert!((1_000..10_000_000).contains(&rss), "{rss} KiB");
    }

    /// The kernel's peak sees a spike that is gone before anyone samples: what `--json`'s `memory.rss_peak_kib` uses.
    #[test]
    fn the_kernel_peak_catches_a_spike_sampling_would_miss() {
        assert!(reset_peak(), "/proc/self/clear_refs is writable by the process's owner");
        let before = memory_kib().unwrap();
        let spike = vec![1u8; 64 << 20];
        std::hint::black_box(&spike);
        drop(spike);
        let after = memory_kib().unwrap();
        assert!(after.hwm_kib >= before.rss_kib + 60 * 1024, "{before:?} -> {after:?}");
        assert!(after.rss_kib < after.hwm_kib - 32 * 1024, "the spike is gone from VmRSS: {after:?}");
        assert!(reset_peak());
        assert!(memory_kib().unwrap().hwm_kib < after.hwm_kib - 32 * 1024, "the reset lowers the peak");
    }
}

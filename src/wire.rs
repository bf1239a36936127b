//! A client connection's bytes, plain or TLS: the non-blocking read, write and handshake steps over a raw
//! descriptor that the worker's stream attempts and scenario steps share, so neither branches on the protocol.

use std::io;
use std::os::fd::RawFd;

use rustls::ClientConnection;

use crate::recorder::Failure;
use crate::sys;
use crate::tls::{as_user, failure};

/// What the socket must become before a step can go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Read,
    Write,
}

/// What a non-blocking handshake, flush or write came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Done,
    Wait(Want),
    Failed(Failure),
}

/// What one read gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Bytes (plaintext, over TLS), copied to the front of the caller's buffer.
    Data(usize),
    /// The connection ended (over TLS with or without `close_notify`: HTTP's framing judges whether the stream
    /// was whole).
    Eof,
    /// Nothing more until the socket is readable again.
    Wait,
    Failed(Failure),
}

/// A non-blocking socket as rustls's `read_tls`/`write_tls` want it. `drained` is set when a read returned less
/// than asked: the socket had no more, and another `recv` would only say `EAGAIN`.
struct FdIo {
    fd: RawFd,
    drained: bool,
}

impl io::Read for FdIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = sys::recv(self.fd, buf)?;
        self.drained = n < buf.len();
        Ok(n)
    }
}

impl io::Write for FdIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::send(self.fd, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads into `out`: plain bytes from the socket, or over TLS what rustls holds already, else records from the
/// socket. `drained` carries over between calls of one wake-up: once a `recv` came back short the socket is
/// empty, and another would only say `EAGAIN`. Over TLS the caller must not wait for readability while
/// [`has_plaintext`] is true: those bytes are no longer in the socket. `user` names whose session a TLS 1.3
/// ticket arriving now is kept for.
pub fn read(
    fd: RawFd,
    tls: Option<&mut ClientConnection>,
    out: &mut [u8],
    drained: &mut bool,
    user: Option<u64>,
) -> Read {
    let Some(tls) = tls else {
        if *drained {
            return Read::Wait;
        }
        loop {
            return match sys::recv(fd, out) {
                Ok(0) => Read::Eof,
                Ok(n) => {
                    *drained = n < out.len();
                    Read::Data(n)
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => Read::Wait,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => Read::Failed(sys::io_failure(&err)),
            };
        }
    };
    let mut io = FdIo { fd, drained: false };
    loop {
        match io::Read::read(&mut tls.reader(), out) {
            Ok(0) => return Read::Eof,
            Ok(n) => return Read::Data(n),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Read::Eof,
            Err(_) => return Read::Failed(Failure::TlsError),
        }
        if *drained {
            return Read::Wait;
        }
        match tls.read_tls(&mut io) {
            // EOF: rustls notes it, and the reader above says so once the plaintext is drained.
            Ok(0) => {}
            Ok(_) => {
                *drained = io.drained;
                let processed = as_user(user, || tls.process_new_packets());
                // A key update or an alert may be queued: send it if the socket takes it now.
                let sent = flush(fd, tls);
                if let Err(err) = processed {
                    return Read::Failed(failure(&err));
                }
                if let Step::Failed(failure) = sent {
                    return Read::Failed(failure);
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Read::Wait,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Read::Failed(sys::io_failure(&err)),
        }
    }
}

/// Writes `parts` (one after the other, as one byte string) from `*written` on, as far as the socket allows: plain, in
/// one `sendmsg` per try, or handed to rustls and sent as records. `written` counts the bytes taken (plaintext, over
/// TLS), so a call after a wait carries on where this one stopped. Parts let a request's head and its body, shared
/// by every core, go out without being copied together.
pub fn write(fd: RawFd, tls: Option<&mut ClientConnection>, parts: [&[u8]; 2], written: &mut usize) -> Step {
    let total = parts[0].len() + parts[1].len();
    // What is left of each part after the first `written` bytes.
    let rest = |written: usize| {
        let first = &parts[0][written.min(parts[0].len())..];
        let second = &parts[1][written.saturating_sub(parts[0].len())..];
        [first, second]
    };
    let Some(tls) = tls else {
        while *written < total {
            let [first, second] = rest(*written);
            let slices = [io::IoSlice::new(first), io::IoSlice::new(second)];
            let sent = if second.is_empty() { sys::send(fd, first) } else { sys::send_vectored(fd, &slices) };
            match sent {
                Ok(n) => *written += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Step::Wait(Want::Write),
                Err(err) => return Step::Failed(sys::io_failure(&err)),
            }
        }
        return Step::Done;
    };
    loop {
        match flush(fd, tls) {
            Step::Done => {}
            other => return other,
        }
        if *written >= total {
            return Step::Done;
        }
        let [first, second] = rest(*written);
        let next = if first.is_empty() { second } else { first };
        // Takes what fits under rustls's buffer limit; the flush above makes room for the rest.
        match io::Write::write(&mut tls.writer(), next) {
            Ok(0) if !tls.wants_write() => return Step::Failed(Failure::TlsError),
            Ok(n) => *written += n,
            Err(_) => return Step::Failed(Failure::TlsError),
        }
    }
}

/// Drives the TLS handshake as far as the socket allows, on behalf of `user` (whose session it may resume and
/// keep).
pub fn handshake(fd: RawFd, tls: &mut ClientConnection, user: Option<u64>) -> Step {
    let mut io = FdIo { fd, drained: false };
    loop {
        match flush(fd, tls) {
            Step::Done => {}
            other => return other,
        }
        if !tls.is_handshaking() {
            return Step::Done;
        }
        match tls.read_tls(&mut io) {
            // The server hung up mid-handshake: not a TLS server, or one that gave up on us without an alert.
            Ok(0) => return Step::Failed(Failure::TlsError),
            Ok(_) => {
                if let Err(err) = as_user(user, || tls.process_new_packets()) {
                    // rustls queued an alert saying why; the peer may as well learn it.
                    let _ = flush(fd, tls);
                    return Step::Failed(failure(&err));
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Step::Wait(Want::Read),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Step::Failed(sys::io_failure(&err)),
        }
    }
}

/// Sends what rustls has queued (handshake messages, records, alerts).
fn flush(fd: RawFd, tls: &mut ClientConnection) -> Step {
    let mut io = FdIo { fd, drained: false };
    while tls.wants_write() {
        match tls.write_tls(&mut io) {
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Step::Wait(Want::Write),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Step::Failed(sys::io_failure(&err)),
        }
    }
    Step::Done
}

/// Decrypted bytes wait inside rustls: the socket may be empty, but the stream is not.
pub fn has_plaintext(tls: &ClientConnection) -> bool {
    !tls.wants_read()
}

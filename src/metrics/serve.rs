//! `--metrics-addr`'s endpoint: a std listener on a thread of its own answering `GET /metrics` with the text the
//! engine last published (an `Arc<String>` swapped under a mutex, once per interval), 404 to anything else. It blocks
//! in `accept` (no idle wake-ups) and is stopped by a flag and a connection to itself. One scrape at a time: a
//! Prometheus server or two scraping every second or so is all it is for.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The most of a request read: a scrape's head is a few hundred bytes; the rest is not looked at.
const REQUEST_MAX_BYTES: usize = 8 * 1024;

/// How long a client may take to send its request or take the answer: a stuck one holds the only thread.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the server thread and the publisher share.
#[derive(Debug, Default)]
struct Shared {
    text: Mutex<Arc<String>>,
    stopping: AtomicBool,
}

/// A running endpoint; dropping it stops it.
#[derive(Debug)]
pub struct MetricsServer {
    /// Where it listens (the port the system chose, for `:0`).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and starts answering; `text` is served until the first `publish`.
    pub fn start(addr: SocketAddr, text: String) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared { text: Mutex::new(Arc::new(text)), stopping: AtomicBool::new(false) });
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("ssebench-metrics".into())
            .spawn(move || accept_loop(&listener, &serving))?;
        Ok(MetricsServer { addr, shared, thread: Some(thread) })
    }

    /// Makes `text` what the next scrapes get. A scrape under way keeps the text it began with.
    pub fn publish(&self, text: String) {
        *self.shared.text.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(text);
    }

    /// Stops answering and joins the thread (a scrape under way finishes first).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else { return };
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wakes the blocking accept, which then sees the flag. A wildcard address is reached on loopback.
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        if TcpStream::connect_timeout(&SocketAddr::new(ip, self.addr.port()), CLIENT_TIMEOUT).is_ok() {
            let _ = thread.join();
        }
        // Otherwise the thread stays blocked in accept until the process ends; nothing waits on it.
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Shared) {
    for conn in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        // A failed accept (a client gone, descriptors short for a moment) drops that client only.
        if let Ok(conn) = conn {
            let _ = answer(conn, shared);
        }
    }
}

/// Reads one request head and answers it, then closes the connection.
fn answer(mut conn: TcpStream, shared: &Shared) -> io::Result<()> {
    conn.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    conn.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut head = [0u8; REQUEST_MAX_BYTES];
    let mut len = 0;
    while len < head.len() && !head[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut head[len..])? {
            0 => break,
            n => len += n,
        }
    }
    let line = head[..len].split(|&b| b == b'\n').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let text = shared.text.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (status, content_type, body) = match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", text.as_str()),
        _ => ("404 Not Found", "text/plain; charset=utf-8", "not found: ssebench serves /metrics\n"),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    if method != b"HEAD" {
        conn.write_all(body.as_bytes())?;
    }
    conn.flush()?;
    let _ = conn.shutdown(Shutdown::Write);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, request: &str) -> String {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn it_serves_the_latest_text_and_stops() {
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), "a 1\n".into()).unwrap();
        let addr = server.addr;
        let first = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");
        assert!(first.contains("Content-Type: text/plain; version=0.0.4"), "{first}");
        assert!(first.ends_with("\r\n\r\na 1\n"), "{first}");
        server.publish("a 2\n".into());
        assert!(get(addr, "GET /metrics?x=1 HTTP/1.1\r\n\r\n").ends_with("\r\n\r\na 2\n"));
        assert!(get(addr, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        assert!(get(addr, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        server.stop();
        assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
    }

    #[test]
    fn a_port_in_use_is_an_error() {
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), String::new()).unwrap();
        assert!(MetricsServer::start(server.addr, String::new()).is_err());
    }
}

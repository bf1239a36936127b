//! The floor of each way of reading many sockets: one thread holds N endless streams from `ssebench serve` (one
//! 100-byte event per second each) and reads them by one strategy, doing nothing with the bytes but count the events
//! (`\n\n`); it prints the CPU (user and system, from getrusage) per million events over a steady window. What a
//! strategy costs here is what no generator built on it can go below, so it decides how ssebench's cores read.
//!
//!   cargo bench --bench io_floor                                  # 1,000 and 10,000 streams, every strategy
//!   IO_FLOOR_STREAMS="10000" IO_FLOOR_MODES="epoll uring-recv" IO_FLOOR_WINDOW_S=20 cargo bench --bench io_floor
//!
//! Strategies:
//! - `epoll`: edge-triggered epoll, each socket registered once; a readiness, then one `recv` (again while full).
//! - `uring-poll`: an io_uring one-shot `POLL_ADD` per wait, then `recv`: what monoio 0.2's `readable()` does.
//! - `uring-multipoll`: one multishot `POLL_ADD` per socket for its life, then `recv` per readiness.
//! - `uring-recv`: one multishot `RECV` per socket with a ring of provided buffers: no `recv` call at all; a
//!   buffer is taken only when data arrives and goes back once counted.

#[allow(dead_code)] // the process-level benches' helpers; this one takes only `env_or`
mod support;

use std::io::Write;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use io_uring::{IoUring, cqueue, opcode, types};
use support::env_or;

const SETTLE: Duration = Duration::from_secs(3);
const RECV_BYTES: usize = 64 * 1024;
/// Provided buffers for `uring-recv`: enough for a burst of one core's share of events between two harvests.
const RING_BUFFERS: u16 = 1024;
const RING_BUFFER_BYTES: usize = 2048;
const BUFFER_GROUP: u16 = 7;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("io_floor: skipped under cargo test; run `cargo bench --bench io_floor` (takes minutes)");
        return;
    }
    let streams: Vec<usize> =
        env_or("IO_FLOOR_STREAMS", "1000 10000").split_whitespace().map(|s| s.parse().expect("a count")).collect();
    let modes = env_or("IO_FLOOR_MODES", "epoll uring-poll uring-multipoll uring-recv");
    let window = Duration::from_secs(env_or("IO_FLOOR_WINDOW_S", "10").parse().expect("seconds"));
    let port = env_or("IO_FLOOR_PORT", "18610");
    let addr = format!("127.0.0.1:{port}");
    raise_descriptor_limit();
    let mut server = Command::new(env!("CARGO_BIN_EXE_ssebench"))
        .args(["serve", "--addr", &addr, "--events", "0", "--interval", "1s", "--size", "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    std::thread::sleep(Duration::from_millis(500));
    println!(
        "\n{:<16} {:>8} {:>10} {:>8} {:>8} {:>14}",
        "strategy", "streams", "events", "user s", "sys s", "CPU s/1M ev"
    );
    for &n in &streams {
        for mode in modes.split_whitespace() {
            let sockets = open(&addr, n);
            let read: fn(&[TcpStream], Instant) -> u64 = match mode {
                "epoll" => read_epoll,
                "uring-poll" => |s, until| read_uring_poll(s, until, false),
                "uring-multipoll" => |s, until| read_uring_poll(s, until, true),
                "uring-recv" => read_uring_recv,
                other => panic!("io_floor: unknown strategy {other}"),
            };
            // The settle reads and drops what piled up while connecting; then the window is measured alone.
            read(&sockets, Instant::now() + SETTLE);
            let before = cpu();
            let events = read(&sockets, Instant::now() + window);
            let (user, sys) = cpu();
            let (user, sys) = (user - before.0, sys - before.1);
            let per_million = (user + sys).as_secs_f64() / events.max(1) as f64 * 1e6;
            println!(
                "{mode:<16} {n:>8} {events:>10} {:>8.2} {:>8.2} {per_million:>14.2}",
                user.as_secs_f64(),
                sys.as_secs_f64()
            );
            drop(sockets);
            std::thread::sleep(Duration::from_secs(2));
        }
    }
    let _ = server.kill();
    let _ = server.wait();
}

fn raise_descriptor_limit() {
    // SAFETY: plain getrlimit/setrlimit on this process with a live struct.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
}

/// `n` streams: connected, asked for the stream, non-blocking.
fn open(addr: &str, n: usize) -> Vec<TcpStream> {
    let request = b"GET / HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n";
    (0..n)
        .map(|_| {
            let mut socket = TcpStream::connect(addr).expect("connect");
            socket.write_all(request).expect("request");
            socket.set_nonblocking(true).expect("non-blocking");
            socket
        })
        .collect()
}

/// User and system CPU of this process so far.
fn cpu() -> (Duration, Duration) {
    // SAFETY: rusage is plain data, filled for this process.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

fn count_events(bytes: &[u8]) -> u64 {
    memchr::memmem::find_iter(bytes, b"\n\n").count() as u64
}

/// One `recv`; the bytes it took (0 for none now, or the stream's end).
fn recv(fd: i32, buf: &mut [u8]) -> usize {
    // SAFETY: a live buffer of its length.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    n.max(0) as usize
}

/// Reads what the socket has, again while a read fills the buffer; the events it held.
fn drain(fd: i32, buf: &mut [u8]) -> u64 {
    let mut events = 0;
    loop {
        let n = recv(fd, buf);
        events += count_events(&buf[..n]);
        if n < buf.len() {
            return events;
        }
    }
}

fn read_epoll(sockets: &[TcpStream], until: Instant) -> u64 {
    let mut buf = vec![0u8; RECV_BYTES];
    // SAFETY: epoll on descriptors this function's caller keeps open; the event array outlives each call.
    unsafe {
        let epoll = libc::epoll_create1(libc::EPOLL_CLOEXEC);
        for (index, socket) in sockets.iter().enumerate() {
            let mut event = libc::epoll_event { events: (libc::EPOLLIN | libc::EPOLLET) as u32, u64: index as u64 };
            libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, socket.as_raw_fd(), &mut event);
        }
        let mut ready = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
        let mut events = 0;
        while Instant::now() < until {
            let n = libc::epoll_wait(epoll, ready.as_mut_ptr(), ready.len() as i32, 100);
            for event in &ready[..n.max(0) as usize] {
                events += drain(sockets[event.u64 as usize].as_raw_fd(), &mut buf);
            }
        }
        libc::close(epoll);
        events
    }
}

fn ring() -> IoUring {
    IoUring::builder().setup_cqsize(32 * 1024).build(4096).expect("an io_uring")
}

/// Pushes `entry`, submitting first when the submission queue is full.
fn push(ring: &mut IoUring, entry: &io_uring::squeue::Entry) {
    // SAFETY: every entry here points at nothing but a descriptor kept open by the caller.
    while unsafe { ring.submission().push(entry) }.is_err() {
        ring.submit().expect("submit");
    }
}

/// Submits what is queued, waits up to 100 ms for a completion, and takes every completion there is into
/// `completed` as (user data, result, flags).
fn harvest(ring: &mut IoUring, completed: &mut Vec<(usize, i32, u32)>) {
    let timeout = types::Timespec::new().nsec(100_000_000);
    let _ = ring.submitter().submit_with_args(1, &types::SubmitArgs::new().timespec(&timeout));
    completed.clear();
    completed.extend(ring.completion().map(|cqe| (cqe.user_data() as usize, cqe.result(), cqe.flags())));
}

fn read_uring_poll(sockets: &[TcpStream], until: Instant, multi: bool) -> u64 {
    let mut buf = vec![0u8; RECV_BYTES];
    let mut ring = ring();
    let poll = |index: usize| {
        opcode::PollAdd::new(types::Fd(sockets[index].as_raw_fd()), libc::POLLIN as u32)
            .multi(multi)
            .build()
            .user_data(index as u64)
    };
    for index in 0..sockets.len() {
        push(&mut ring, &poll(index));
    }
    let mut events = 0;
    let mut completed = Vec::with_capacity(32 * 1024);
    while Instant::now() < until {
        harvest(&mut ring, &mut completed);
        for &(index, _, flags) in &completed {
            events += drain(sockets[index].as_raw_fd(), &mut buf);
            if !multi || !cqueue::more(flags) {
                push(&mut ring, &poll(index));
            }
        }
    }
    events
}

fn read_uring_recv(sockets: &[TcpStream], until: Instant) -> u64 {
    let mut ring = ring();
    let mut buffers = vec![0u8; RING_BUFFERS as usize * RING_BUFFER_BYTES];
    // The ring of buffer descriptors, page-aligned as the kernel asks.
    let layout = std::alloc::Layout::from_size_align(RING_BUFFERS as usize * 16, 4096).expect("layout");
    // SAFETY: a zeroed, aligned allocation kept until the ring is unregistered below.
    let entries = unsafe { std::alloc::alloc_zeroed(layout) } as *mut types::BufRingEntry;
    let mask = RING_BUFFERS - 1;
    let give = |id: u16, tail: u16, buffers: &mut [u8]| {
        // SAFETY: slot (tail & mask) is within the ring; the buffer is within `buffers`, which outlives the ring.
        unsafe {
            let entry = &mut *entries.add((tail & mask) as usize);
            entry.set_addr(buffers.as_mut_ptr().add(id as usize * RING_BUFFER_BYTES) as u64);
            entry.set_len(RING_BUFFER_BYTES as u32);
            entry.set_bid(id);
        }
    };
    let mut tail: u16 = 0;
    for id in 0..RING_BUFFERS {
        give(id, tail, &mut buffers);
        tail = tail.wrapping_add(1);
    }
    // SAFETY: the tail is published after the entries are written; the ring memory lives until unregistered.
    unsafe {
        let tail_ptr = types::BufRingEntry::tail(entries) as *const std::sync::atomic::AtomicU16;
        (*tail_ptr).store(tail, std::sync::atomic::Ordering::Release);
        ring.submitter().register_buf_ring(entries as u64, RING_BUFFERS, BUFFER_GROUP).expect("a provided-buffer ring");
    }
    let recv = |index: usize| {
        opcode::RecvMulti::new(types::Fd(sockets[index].as_raw_fd()), BUFFER_GROUP).build().user_data(index as u64)
    };
    for index in 0..sockets.len() {
        push(&mut ring, &recv(index));
    }
    let mut events = 0;
    let mut completed = Vec::with_capacity(32 * 1024);
    while Instant::now() < until {
        harvest(&mut ring, &mut completed);
        for &(index, result, flags) in &completed {
            if let Some(id) = cqueue::buffer_select(flags) {
                let start = id as usize * RING_BUFFER_BYTES;
                events += count_events(&buffers[start..start + result.max(0) as usize]);
                give(id, tail, &mut buffers);
                tail = tail.wrapping_add(1);
            }
            // Out of buffers (-ENOBUFS) or otherwise ended: armed again; the bytes wait in the socket meanwhile.
            if !cqueue::more(flags) && result != 0 {
                push(&mut ring, &recv(index));
            }
        }
        // SAFETY: as above; the buffers given back are published together.
        unsafe {
            let tail_ptr = types::BufRingEntry::tail(entries) as *const std::sync::atomic::AtomicU16;
            (*tail_ptr).store(tail, std::sync::atomic::Ordering::Release);
        }
    }
    // Every recv is cancelled with the ring; the ring memory goes after it.
    drop(ring);
    // SAFETY: allocated above with this layout; the kernel's ring is gone.
    unsafe { std::alloc::dealloc(entries as *mut u8, layout) };
    events
}

//! One core's share of a run: its virtual users, their sockets, and its recorder. The only client code that awaits IO.

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use crate::config::RunConfig;
use crate::plan::Shard;
use crate::recorder::{Failure, Recorder, StreamEnd};
use crate::stream::{Progress, StreamMachine, micros_between};
use crate::sys;

/// Bytes one `recv` may return; one buffer per core, shared by all its streams.
const SCRATCH_BYTES: usize = 64 * 1024;
/// Reads per readiness wake-up, so one fast stream cannot starve the others on its core.
const READS_PER_WAKE: usize = 16;
/// How often each core samples its open-stream count for the cross-core peak.
pub const SAMPLE_PERIOD: Duration = Duration::from_millis(100);

/// What every worker shares read-only.
pub struct RunShared {
    pub cfg: RunConfig,
    /// The request, encoded once.
    pub request: Vec<u8>,
    /// The common start: connect-rate offsets and samples count from it.
    pub start: Instant,
    pub deadline: Option<Instant>,
}

/// The per-core mutable state. One `RefCell` borrow per read; never held across an await.
struct Core {
    rec: Recorder,
    scratch: Box<[u8]>,
    /// Streams this core may still start; `None` is unlimited.
    streams_left: Option<u64>,
    finished: bool,
}

impl Core {
    fn take_stream_slot(&mut self) -> bool {
        match &mut self.streams_left {
            None => true,
            Some(0) => false,
            Some(left) => {
                *left -= 1;
                true
            }
        }
    }
}

/// Runs a shard to its end (quota used up or deadline passed) and returns its recorder.
pub async fn run(shard: Shard, shared: Arc<RunShared>) -> Recorder {
    let core = Rc::new(RefCell::new(Core {
        rec: Recorder::new(),
        scratch: vec![0; SCRATCH_BYTES].into_boxed_slice(),
        streams_left: shard.streams_quota,
        finished: false,
    }));
    monoio::spawn(sample_active(core.clone(), shared.clone()));
    let mut users = Vec::with_capacity(shard.virtual_users);
    for local in 0..shard.virtual_users {
        let first_start = shard.first_start_offsets.get(local).copied().unwrap_or_default();
        users.push(monoio::spawn(virtual_user(core.clone(), shared.clone(), first_start)));
    }
    for user in users {
        user.await;
    }
    let mut core = core.borrow_mut();
    core.finished = true;
    let tick = shared.start.elapsed().as_nanos() / SAMPLE_PERIOD.as_nanos();
    core.rec.sample_active(tick as usize);
    std::mem::take(&mut core.rec)
}

async fn sample_active(core: Rc<RefCell<Core>>, shared: Arc<RunShared>) {
    let mut tick = 0usize;
    loop {
        tick += 1;
        monoio::time::sleep_until((shared.start + SAMPLE_PERIOD * tick as u32).into()).await;
        let mut core = core.borrow_mut();
        if core.finished {
            return;
        }
        // A late wake-up records under the tick it belongs to, keeping cores aligned.
        let now_tick = shared.start.elapsed().as_nanos() / SAMPLE_PERIOD.as_nanos();
        tick = tick.max(now_tick as usize);
        core.rec.sample_active(tick);
    }
}

/// A closed-model virtual user: one stream at a time, the next as soon as the last ends.
async fn virtual_user(core: Rc<RefCell<Core>>, shared: Arc<RunShared>, first_start: Duration) {
    if !first_start.is_zero() {
        let start_at = shared.start + first_start;
        if shared.deadline.is_some_and(|d| start_at >= d) {
            return;
        }
        monoio::time::sleep_until(start_at.into()).await;
    }
    let mut machine = StreamMachine::new(shared.cfg.max_event_size_bytes);
    let mut conn: Option<TcpStream> = None;
    loop {
        if shared.deadline.is_some_and(|d| Instant::now() >= d) || !core.borrow_mut().take_stream_slot() {
            return;
        }
        let opened_at = Instant::now();
        core.borrow_mut().rec.stream_opened();
        let attempt = one_stream(&core, &shared, &mut conn, &mut machine);
        let end = match shared.deadline {
            Some(deadline) => {
                monoio::time::timeout_at(deadline.into(), attempt).await.unwrap_or(StreamEnd::Interrupted)
            }
            None => attempt.await,
        };
        // The stream's clock starts at its request, or at the connect if no request was sent.
        let from = machine.request_start().max(opened_at);
        let stream_us = micros_between(from, Instant::now());
        core.borrow_mut().rec.stream_closed(end, stream_us, machine.events());
        if end == StreamEnd::Interrupted {
            return;
        }
    }
}

/// Runs one stream on `conn` (reused if the last response allowed it) and leaves the connection
/// there if it may carry the next request.
async fn one_stream(
    core: &RefCell<Core>,
    shared: &RunShared,
    conn: &mut Option<TcpStream>,
    machine: &mut StreamMachine,
) -> StreamEnd {
    if let Some(stream) = conn.take() {
        match exchange(core, shared, stream, conn, machine).await {
            // A kept-alive connection the server had already closed (its idle timeout raced our
            // request) is not a failure of this stream: retry once on a fresh connection, as
            // browsers and HTTP libraries do.
            Exchange::StaleConnection(_) => {}
            Exchange::Ended(end) => return end,
        }
    }
    let stream = match connect(core, &shared.cfg).await {
        Ok(stream) => stream,
        Err(failure) => return StreamEnd::Failed(failure),
    };
    match exchange(core, shared, stream, conn, machine).await {
        Exchange::Ended(end) | Exchange::StaleConnection(end) => end,
    }
}

enum Exchange {
    Ended(StreamEnd),
    /// Failed before a single response byte arrived.
    StaleConnection(StreamEnd),
}

/// Writes the request on `stream` and reads the response to its end.
async fn exchange(
    core: &RefCell<Core>,
    shared: &RunShared,
    stream: TcpStream,
    conn: &mut Option<TcpStream>,
    machine: &mut StreamMachine,
) -> Exchange {
    let fd = stream.as_raw_fd();
    let mut got_bytes = false;
    let ended = |end: StreamEnd, got_bytes: bool| {
        if got_bytes { Exchange::Ended(end) } else { Exchange::StaleConnection(end) }
    };
    machine.begin(Instant::now());
    if let Err(failure) = write_all(&stream, &shared.request).await {
        return ended(StreamEnd::Failed(failure), false);
    }
    loop {
        if let Err(err) = stream.readable(false).await {
            return ended(StreamEnd::Failed(sys::io_failure(&err)), got_bytes);
        }
        let mut core = core.borrow_mut();
        let Core { rec, scratch, .. } = &mut *core;
        for _ in 0..READS_PER_WAKE {
            let n = match sys::recv(fd, scratch) {
                Ok(0) => return ended(machine.on_eof(), got_bytes),
                Ok(n) => n,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return ended(StreamEnd::Failed(sys::io_failure(&err)), got_bytes),
            };
            got_bytes = true;
            match machine.on_bytes(Instant::now(), &scratch[..n], rec) {
                Progress::Done { end, reusable } => {
                    if reusable {
                        *conn = Some(stream);
                    }
                    return Exchange::Ended(end);
                }
                // A short read drained the socket: skip the recv that would say EAGAIN.
                Progress::NeedMore if n < scratch.len() => break,
                Progress::NeedMore => {}
            }
        }
    }
}

async fn connect(core: &RefCell<Core>, cfg: &RunConfig) -> Result<TcpStream, Failure> {
    let started = Instant::now();
    let (socket, in_progress) = sys::start_connect(cfg.target.addr).map_err(|e| sys::connect_failure(&e))?;
    let stream = TcpStream::from_std(socket).map_err(|e| sys::connect_failure(&e))?;
    if in_progress {
        match monoio::time::timeout(cfg.connect_timeout, stream.writable(false)).await {
            Err(_) => return Err(Failure::ConnectTimeout),
            Ok(Err(err)) => return Err(sys::connect_failure(&err)),
            Ok(Ok(())) => {}
        }
        if let Some(err) = sys::socket_error(stream.as_raw_fd()) {
            return Err(sys::connect_failure(&err));
        }
    }
    core.borrow_mut().rec.histograms.connect_us.saturating_record(micros_between(started, Instant::now()));
    Ok(stream)
}

async fn write_all(stream: &TcpStream, bytes: &[u8]) -> Result<(), Failure> {
    let mut written = 0;
    while written < bytes.len() {
        match sys::send(stream.as_raw_fd(), &bytes[written..]) {
            Ok(n) => written += n,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                stream.writable(false).await.map_err(|e| sys::io_failure(&e))?;
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(sys::io_failure(&err)),
        }
    }
    Ok(())
}

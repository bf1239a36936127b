//! The built-in target server: one pinned monoio runtime per core, each accepting on its own SO_REUSEPORT listener.

mod config;
mod conn;
pub(crate) mod event;
pub mod openai;
mod schedule;
mod timer;
mod tls;

pub use self::config::{AccelBuffering, DEFAULT_MODEL_NAME, Pauses, ServeConfig};

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::runtime::{self, Driver};
use crate::sys;

/// Listen backlog per core (the kernel caps it at net.core.somaxconn).
const BACKLOG: i32 = 4096;
/// How often each core looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);
/// Pause after an accept error (e.g. EMFILE) so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// The server's per-core state, read by its connections.
pub(crate) struct ServeCore {
    cfg: ServeConfigShared,
    /// Copied from the shared stop flag by the accept loop, so connections read a plain Cell.
    stopping: Cell<bool>,
    rng_state: Cell<u64>,
    /// Send times of every connection on this core.
    timers: timer::Timers,
}

impl ServeCore {
    #[cfg(test)]
    fn for_tests() -> ServeCore {
        ServeCore {
            cfg: ServeConfigShared {
                events: 1,
                schedule: schedule::Schedule { interval: Duration::ZERO, pauses: None },
                head: event::stream_head(AccelBuffering::No),
                size_bytes: 1,
                first_delay: Duration::ZERO,
                jitter: Duration::ZERO,
                replay: None,
                replay_write_bytes: 1,
                replay_pause: Duration::ZERO,
                disconnect_after: None,
                openai: None,
                model_name: DEFAULT_MODEL_NAME.into(),
                tls: None,
            },
            stopping: Cell::new(false),
            rng_state: Cell::new(1),
            timers: timer::Timers::default(),
        }
    }

    fn next_rng(&self) -> u64 {
        let mut state = self.rng_state.get();
        let seed = crate::rng::next(&mut state);
        self.rng_state.set(state);
        seed | 1
    }
}

/// The configuration as the connections use it: replay bytes shared without copies per connection.
pub(crate) struct ServeConfigShared {
    events: u64,
    /// `--interval` and `--pause-every`: when each event and heartbeat is due.
    schedule: schedule::Schedule,
    /// The response head for `--x-accel-buffering`, chosen once.
    head: &'static [u8],
    size_bytes: usize,
    first_delay: Duration,
    jitter: Duration,
    replay: Option<Rc<[u8]>>,
    replay_write_bytes: usize,
    replay_pause: Duration,
    disconnect_after: Option<u64>,
    /// `--openai`: answer as a model server instead of generating events.
    openai: Option<openai::ModelShape>,
    /// `--model-name`: the model `--openai` serves.
    model_name: String,
    /// `--tls-cert`: every connection is HTTPS.
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// A running server. Dropping it leaves the server running; `stop` ends it.
pub struct ServerHandle {
    /// The first listen address (its port resolved if it was 0).
    pub addr: SocketAddr,
    /// Every listen address, in the order given.
    pub addrs: Vec<SocketAddr>,
    pub driver: Driver,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<std::io::Result<()>>>,
}

impl ServerHandle {
    /// Closes the listeners and every open stream, and waits for the threads.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
    }

    /// Serves until the process ends.
    pub fn wait(self) -> Result<(), String> {
        for thread in self.threads {
            thread.join().map_err(|_| "a server thread panicked".to_string())?.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Binds one listener per core on each of `cfg.addrs` (port 0 picks one port for all cores) and
/// starts serving.
/// `first_core` shifts the pinning so an in-process generator can keep other cores.
pub fn start(cfg: &ServeConfig, first_core: usize) -> Result<ServerHandle, String> {
    let driver = runtime::resolve(cfg.driver)?;
    let pin = runtime::pin_for_serving(cfg.pin);
    let threads = cfg.threads.max(1);
    // Every accepted stream is a descriptor: take all the soft limit may be raised to.
    crate::limits::raise_nofile().map_err(|e| format!("cannot raise RLIMIT_NOFILE: {e}"))?;
    // listeners[thread][address]: every thread listens on every address.
    let mut listeners: Vec<Vec<std::net::TcpListener>> = (0..threads).map(|_| Vec::new()).collect();
    let mut addrs = Vec::with_capacity(cfg.addrs.len());
    for &wanted in &cfg.addrs {
        let listen = |addr: SocketAddr| {
            sys::reuseport_listener(addr, BACKLOG).map_err(|e| format!("cannot listen on {addr}: {e}"))
        };
        let first = listen(wanted)?;
        // Port 0 picks a port once; the other threads join it.
        let addr = first.local_addr().map_err(|e| e.to_string())?;
        listeners[0].push(first);
        for thread in listeners.iter_mut().skip(1) {
            thread.push(listen(addr)?);
        }
        addrs.push(addr);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::with_capacity(threads);
    for (index, listeners) in listeners.into_iter().enumerate() {
        let cfg = cfg.clone();
        let stop = stop.clone();
        let name = format!("ssebench-serve-{index}");
        let handle = runtime::spawn_core(name, pin.then_some(first_core + index), driver, move || {
            serve_core(listeners, cfg, stop, index)
        })
        .map_err(|e| format!("cannot start a server thread: {e}"))?;
        handles.push(handle);
    }
    Ok(ServerHandle { addr: addrs[0], addrs, driver, stop, threads: handles })
}

/// One server core: an accept task per listener, and this loop watching the stop flag.
async fn serve_core(listeners: Vec<std::net::TcpListener>, cfg: ServeConfig, stop: Arc<AtomicBool>, index: usize) {
    let shared = ServeConfigShared {
        events: cfg.events,
        schedule: schedule::Schedule { interval: cfg.interval, pauses: cfg.pauses },
        head: event::stream_head(cfg.accel_buffering),
        size_bytes: cfg.size_bytes,
        first_delay: cfg.first_delay,
        jitter: cfg.jitter,
        replay: cfg.replay.map(Rc::from),
        replay_write_bytes: cfg.replay_write_bytes,
        replay_pause: cfg.replay_pause,
        disconnect_after: cfg.disconnect_after,
        openai: cfg.openai,
        model_name: cfg.model_name,
        tls: cfg.tls,
    };
    let core = Rc::new(ServeCore {
        cfg: shared,
        stopping: Cell::new(false),
        rng_state: Cell::new(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1)),
        timers: timer::Timers::default(),
    });
    let driver = core.clone();
    monoio::spawn(async move { driver.timers.drive().await });
    for listener in listeners {
        match monoio::net::TcpListener::from_std(listener) {
            Ok(listener) => {
                monoio::spawn(accept_loop(listener, core.clone()));
            }
            Err(err) => eprintln!("ssebench serve: core {index} cannot use a listener: {err}"),
        }
    }
    // Returning drops the runtime with every accept loop and connection on it.
    while !stop.load(Ordering::Relaxed) {
        monoio::time::sleep(STOP_POLL).await;
    }
    core.stopping.set(true);
}

async fn accept_loop(listener: monoio::net::TcpListener, core: Rc<ServeCore>) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let _ = stream.set_nodelay(true);
                match &core.cfg.tls {
                    None => monoio::spawn(conn::serve(stream, core.clone())),
                    Some(config) => {
                        let (config, core) = (config.clone(), core.clone());
                        monoio::spawn(async move {
                            // A client that fails its handshake (an untrusted certificate, say) just goes.
                            if let Some(stream) = tls::TlsStream::accept(stream, &config).await {
                                conn::serve(stream, core).await;
                            }
                        })
                    }
                };
            }
            // Out of descriptors (EMFILE) or a connection that died in the queue: pause, go on.
            Err(_) => monoio::time::sleep(ACCEPT_ERROR_PAUSE).await,
        }
    }
}

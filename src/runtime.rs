//! Per-core runtimes: picks the monoio driver (io_uring, else epoll) and whether to pin, and runs one thread per core.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

use crate::config::{DriverChoice, PinChoice};

/// Submission queue entries per runtime. In-flight operations are not bounded by it; it only
/// sets how many can be queued between two `io_uring_enter` calls.
const URING_ENTRIES: u32 = 1024;

/// The driver that actually runs, as named in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    IoUring,
    Epoll,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::IoUring => "io_uring",
            Driver::Epoll => "epoll",
        }
    }
}

/// Resolves `--driver`. `Auto` probes io_uring (it may be disabled by `kernel.io_uring_disabled`,
/// a container's seccomp profile, or an old kernel) and falls back to epoll.
pub fn resolve(choice: DriverChoice) -> Result<Driver, String> {
    // The probe checks the opcodes; building a ring also checks RLIMIT_MEMLOCK and the ring size.
    let uring = || {
        monoio::utils::detect_uring()
            && RuntimeBuilder::<IoUringDriver>::new().with_entries(URING_ENTRIES).build().is_ok()
    };
    match choice {
        DriverChoice::Auto if uring() => Ok(Driver::IoUring),
        DriverChoice::Auto | DriverChoice::Epoll => Ok(Driver::Epoll),
        DriverChoice::IoUring if uring() => Ok(Driver::IoUring),
        DriverChoice::IoUring => Err("--driver io_uring: io_uring is not usable here (disabled by \
             kernel.io_uring_disabled, blocked by seccomp, or the kernel is too old); use --driver epoll"
            .to_string()),
    }
}

/// Resolves `--driver` for `run`, which reads streams: `Auto` is epoll, on every scale measured the cheaper way for
/// a core to read many sockets, cheaper even than io_uring's multishot receive into provided buffers (ARCHITECTURE.md,
/// "CPU per event"). io_uring runs when asked for.
pub fn resolve_for_streams(choice: DriverChoice) -> Result<Driver, String> {
    match choice {
        DriverChoice::Auto => Ok(Driver::Epoll),
        chosen => resolve(chosen),
    }
}

/// Runs `fut` to completion on a fresh single-threaded runtime of the given driver.
pub fn block_on<F: Future>(driver: Driver, fut: F) -> io::Result<F::Output> {
    Ok(match driver {
        Driver::IoUring => {
            RuntimeBuilder::<IoUringDriver>::new().with_entries(URING_ENTRIES).enable_timer().build()?.block_on(fut)
        }
        Driver::Epoll => RuntimeBuilder::<LegacyDriver>::new().enable_timer().build()?.block_on(fut),
    })
}

/// Resolves `--pin` for `run`: `Auto` pins each worker to its core unless every target is a loopback address.
/// A loopback target is a server on this machine's cores, and pinned workers then contend with it on fixed cores:
/// a worker woken while the server's thread runs on its core waits for it, even with the other core idle, where
/// an unpinned one is moved by the scheduler (ARCHITECTURE.md, "CPU per event": pinned workers cost about a
/// quarter more CPU per event at 10,000 loopback streams on 2 cores). A remote target leaves the cores to the
/// generator, which then keeps each core's sockets, runtime and caches together.
pub fn pin_for_streams(choice: PinChoice, targets: impl IntoIterator<Item = SocketAddr>) -> bool {
    match choice {
        PinChoice::Always => true,
        PinChoice::Never => false,
        PinChoice::Auto => !targets.into_iter().all(|addr| addr.ip().is_loopback()),
    }
}

/// Resolves `--pin` for `serve`: `Auto` pins, as the server always did; it was not measured unpinned.
pub fn pin_for_serving(choice: PinChoice) -> bool {
    choice != PinChoice::Never
}

/// Starts a thread that runs `make()`'s future on its own runtime, pinned to core `core_slot` (modulo the cores
/// this process may use) when one is given. The future is built on the thread, so it need not be `Send`.
pub fn spawn_core<T, F, M>(
    name: String,
    core_slot: Option<usize>,
    driver: Driver,
    make: M,
) -> io::Result<JoinHandle<io::Result<T>>>
where
    T: Send + 'static,
    F: Future<Output = T>,
    M: FnOnce() -> F + Send + 'static,
{
    std::thread::Builder::new().name(name).spawn(move || {
        if let Some(slot) = core_slot
            && let Some(cores) = core_affinity::get_core_ids().filter(|c| !c.is_empty())
        {
            // Pinning can fail in restricted containers; the run is still valid, only noisier.
            let _ = core_affinity::set_for_current(cores[slot % cores.len()]);
        }
        block_on(driver, make())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs<'a>(list: &'a [&str]) -> impl Iterator<Item = SocketAddr> + Clone + 'a {
        list.iter().map(|a| a.parse().unwrap())
    }

    #[test]
    fn auto_pins_unless_every_target_is_on_loopback() {
        let loopback = addrs(&["127.0.0.1:80", "127.0.0.2:80", "[::1]:80"]);
        let mixed = addrs(&["127.0.0.1:80", "10.0.0.5:80"]);
        let remote = addrs(&["192.0.2.7:443"]);
        assert!(!pin_for_streams(PinChoice::Auto, loopback.clone()));
        assert!(pin_for_streams(PinChoice::Auto, mixed));
        assert!(pin_for_streams(PinChoice::Auto, remote.clone()));
        assert!(pin_for_streams(PinChoice::Always, loopback));
        assert!(!pin_for_streams(PinChoice::Never, remote));
    }
}

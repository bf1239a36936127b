//! Ctrl-C: the first SIGINT asks the run to stop (and report); a second one exits at once.

use std::os::fd::{IntoRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Set by the first SIGINT. Read by each core's sweeper when it wakes, never per event.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The two ends of a socket pair: the handler writes a byte to `WAKE_WRITE`, which makes `WAKE_READ` readable for
/// good (nobody reads it). Each core's sweeper waits on it beside its timer, so Ctrl-C is seen at once without a
/// sweeper waking every few milliseconds to look. -1 until `install`.
static WAKE_READ: AtomicI32 = AtomicI32::new(-1);
static WAKE_WRITE: AtomicI32 = AtomicI32::new(-1);

/// The exit status of a process ended by a second SIGINT (128 + SIGINT), as shells report it.
const SECOND_INTERRUPT_EXIT: i32 = 130;

extern "C" fn on_sigint(_signal: libc::c_int) {
    // Only async-signal-safe work here: an atomic swap and _exit.
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(SECOND_INTERRUPT_EXIT) };
    }
    let fd = WAKE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write is async-signal-safe; the byte outlives the call. A full or failed write changes nothing:
        // the flag is set, and one byte already there keeps the other end readable.
        unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
}

/// Installs the SIGINT handler. Call once, from the command that runs a load test.
pub fn install() -> std::io::Result<()> {
    let (read, write) = std::os::unix::net::UnixStream::pair()?;
    read.set_nonblocking(true)?;
    write.set_nonblocking(true)?;
    // Kept open for the process's life: the handler may run at any time.
    WAKE_READ.store(read.into_raw_fd(), Ordering::SeqCst);
    WAKE_WRITE.store(write.into_raw_fd(), Ordering::SeqCst);
    // SAFETY: a zeroed sigaction with a valid handler and an empty mask is a valid argument.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// True once the first SIGINT arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// A descriptor of its own (the caller closes it) that turns readable at the first SIGINT and stays so; None before
/// `install` (tests, and commands that run no load).
pub fn wake_fd() -> Option<RawFd> {
    let fd = WAKE_READ.load(Ordering::SeqCst);
    // SAFETY: a close-on-exec dup of a descriptor this module keeps open for the process's life.
    let copy = if fd >= 0 { unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) } } else { -1 };
    (copy >= 0).then_some(copy)
}

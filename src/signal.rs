//! Ctrl-C: the first SIGINT asks the run to stop (and report); a second one exits at once.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first SIGINT. Read by each core's sweeper every few milliseconds, never per event.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The exit status of a process ended by a second SIGINT (128 + SIGINT), as shells report it.
const SECOND_INTERRUPT_EXIT: i32 = 130;

extern "C" fn on_sigint(_signal: libc::c_int) {
    // Only async-signal-safe work here: an atomic swap and _exit.
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(SECOND_INTERRUPT_EXIT) };
    }
}

/// Installs the SIGINT handler. Call once, from the command that runs a load test.
pub fn install() -> std::io::Result<()> {
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

//! Process limits a run needs: RLIMIT_NOFILE raised to its hard limit and checked before anything connects, and the cores it may use.

use std::io;

/// Descriptors the process needs besides its streams: stdio, the JSON file, /proc reads, and
/// slack for whatever the embedding process (a test, the demo's server) already holds.
const BASE_DESCRIPTORS: u64 = 32;
/// Per runtime thread: the io_uring or epoll descriptor, its eventfd, and the timer.
const DESCRIPTORS_PER_THREAD: u64 = 4;

/// The soft and hard RLIMIT_NOFILE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nofile {
    pub soft: u64,
    pub hard: u64,
}

/// The number of cores this process may run on.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Reads RLIMIT_NOFILE.
pub fn nofile() -> io::Result<Nofile> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the live struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Nofile { soft: limit.rlim_cur, hard: limit.rlim_max })
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (an unprivileged process may) and returns the
/// limits as they now stand.
pub fn raise_nofile() -> io::Result<Nofile> {
    let now = nofile()?;
    if now.soft < now.hard {
        let limit = libc::rlimit { rlim_cur: now.hard, rlim_max: now.hard };
        // SAFETY: setrlimit reads the live struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    nofile()
}

/// Descriptors open in this process now (an in-process server or test harness counts too).
pub fn open_descriptors() -> u64 {
    std::fs::read_dir("/proc/self/fd").map(|dir| dir.count() as u64).unwrap_or(0)
}

/// Descriptors a run of `streams` concurrent streams on `threads` threads needs on top of those
/// already open.
pub fn descriptors_needed(streams: u64, threads: u64) -> u64 {
    streams + threads * DESCRIPTORS_PER_THREAD + BASE_DESCRIPTORS
}

/// Raises the soft limit and refuses, with the numbers and the way out, a run that cannot fit.
pub fn ensure_descriptors(streams: u64, threads: u64) -> Result<Nofile, String> {
    let limit = raise_nofile().map_err(|e| format!("cannot read or raise RLIMIT_NOFILE: {e}"))?;
    let already_open = open_descriptors();
    let needed = descriptors_needed(streams, threads) + already_open;
    if needed <= limit.soft {
        return Ok(limit);
    }
    Err(refusal(streams, needed, limit))
}

fn refusal(streams: u64, needed: u64, limit: Nofile) -> String {
    format!(
        "{streams} concurrent streams need about {needed} file descriptors (one per stream plus {} for the \
         process), but this process may open only {} (RLIMIT_NOFILE soft {}, hard {}; ssebench already \
         raised the soft limit to the hard one).\n\
         Raise the hard limit (as root): `ulimit -Hn {suggest}` in the shell that starts ssebench, \
         `* hard nofile {suggest}` in /etc/security/limits.conf, or `LimitNOFILE={suggest}` in a systemd unit; \
         fs.nr_open caps it. See tuning/README.md, or split the load over several processes (`-c` each).",
        needed - streams,
        limit.soft,
        limit.soft,
        limit.hard,
        suggest = needed.next_power_of_two().max(1 << 20),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_keeps_the_hard_limit() {
        let before = nofile().unwrap();
        let after = raise_nofile().unwrap();
        assert_eq!(after.hard, before.hard);
        assert_eq!(after.soft, after.hard);
    }

    #[test]
    fn refusal_names_the_numbers_and_the_way_out() {
        let message = refusal(50_000, 50_072, Nofile { soft: 20_000, hard: 20_000 });
        for part in ["50000 concurrent streams", "50072 file descriptors", "soft 20000, hard 20000", "tuning/README.md"]
        {
            assert!(message.contains(part), "{part}: {message}");
        }
    }

    #[test]
    fn too_many_streams_are_refused_before_anything_opens() {
        let hard = nofile().unwrap().hard;
        if hard == libc::RLIM_INFINITY {
            return; // nothing to exceed on this host
        }
        assert!(ensure_descriptors(hard, 2).is_err());
        assert!(ensure_descriptors(10, 2).is_ok());
    }
}

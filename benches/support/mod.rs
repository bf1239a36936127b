//! What the process-level benches (`scale`, `soak`) share: their knobs from the environment, a process's resident
//! memory, and waiting for a child with its CPU time.

use std::io::Read;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

/// The environment variable `name`, or `default` when it is unset.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits for the child and returns its exit code and user+system CPU time (from wait4's rusage).
fn wait_with_cpu(child: &mut Child) -> (i32, Duration) {
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: waiting on our own child's pid with live out-pointers.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert!(rc == pid, "wait4 failed: {}", std::io::Error::last_os_error());
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    (code, tv(usage.ru_utime) + tv(usage.ru_stime))
}

/// Waits for the generator, stops the server, and returns the generator's `--json` report (the file removed) and its
/// CPU time; panics with its stderr if it failed.
pub fn finish(generator: &mut Child, server: &mut Child, json: &Path) -> (serde_json::Value, Duration) {
    let (status, cpu) = wait_with_cpu(generator);
    let _ = server.kill();
    let _ = server.wait();
    let mut stderr = String::new();
    if let Some(mut e) = generator.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(status == 0, "generator exited {status}: {stderr}");
    let report = serde_json::from_slice(&std::fs::read(json).expect("JSON report")).expect("JSON");
    let _ = std::fs::remove_file(json);
    (report, cpu)
}

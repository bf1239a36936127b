//! The generator's own memory: one copy of a large request body. (That the report's peak is the kernel's high-water
//! mark is checked with the rest of the JSON report, in `integration::binary_writes_json_report_and_uses_exit_codes`.)

use std::process::Stdio;

use crate::util::{sse_server, ssebench, temp_dir};

/// Runs the binary with `args` to its end and returns its exit code and the most memory it ever had resident
/// (wait4's ru_maxrss, KiB): start-up copies included, which the report's own figure leaves out.
#[expect(clippy::zombie_processes, reason = "reaped by wait4, for its rusage")]
fn max_rss_kib(args: &[&str]) -> (i32, u64) {
    let child = ssebench().args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child, with live out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    (libc::WEXITSTATUS(status), usage.ru_maxrss as u64)
}

/// A 16 MiB `--body` is resident once (the file as read), whatever the cores and targets: it is shared, not copied
/// into the config the workers hold, each target's encoded request and each core's buffer (3.5 copies before).
#[test]
fn a_large_body_is_held_once() {
    let (addr, requests) = sse_server(b"data: ok\n\n");
    let dir = temp_dir("large-body");
    let (small, large) = (dir.join("small"), dir.join("large"));
    std::fs::write(&small, b"x").unwrap();
    std::fs::write(&large, vec![b'x'; 16 << 20]).unwrap();
    let url = format!("http://{addr}/");
    let run = |file: &std::path::Path| {
        let body = format!("@{}", file.display());
        let second_target = format!("http://{addr}/again");
        max_rss_kib(&["run", &url, &second_target, "-m", "POST", "--body", &body, "-c", "2", "-n", "4", "-t", "2"])
    };
    let (code, small_kib) = run(&small);
    assert_eq!(code, 0);
    let (code, large_kib) = run(&large);
    assert_eq!(code, 0);
    let bodies: Vec<usize> = requests.try_iter().map(|r| r.body.len()).collect();
    assert_eq!(bodies, [1, 1, 1, 1, 16 << 20, 16 << 20, 16 << 20, 16 << 20], "every request carried its whole body");
    let extra_kib = large_kib.saturating_sub(small_kib);
    eprintln!("max RSS: {small_kib} KiB with a 1-byte body, {large_kib} KiB with 16 MiB (+{extra_kib} KiB)");
    assert!(extra_kib < 24 * 1024, "16 MiB body cost {extra_kib} KiB more: more than one copy");
    std::fs::remove_dir_all(&dir).ok();
}

//! `ssebench doctor`: reads the host's limits and says, item by item, whether they hold a target number of streams.

use std::fmt::Write;

use crate::config::DriverChoice;
use crate::limits;
use crate::runtime;

/// Kernel memory of one mostly idle TCP socket (socket, buffers in use, TCP state), for sizing tcp_mem.
const KERNEL_BYTES_PER_SOCKET: u64 = 3 * 1024;
/// tcp_mem counts pages.
const PAGE_BYTES: u64 = 4096;
/// A listen backlog below this drops SYNs during a connect storm.
const SOMAXCONN_WANTED: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    /// Shown for information; nothing to compare.
    Info,
}

/// One line of the doctor's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: &'static str,
    pub current: String,
    pub needed: String,
    pub status: Status,
    /// What to do about a warning, or what the value means.
    pub note: String,
}

fn item(name: &'static str, current: String, needed: String, ok: bool, note: &str) -> Item {
    Item { name, current, needed, status: if ok { Status::Ok } else { Status::Warn }, note: note.to_string() }
}

fn read_sys(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn numbers(text: &str) -> Vec<u64> {
    text.split_whitespace().filter_map(|w| w.parse().ok()).collect()
}

/// Inspects the host for `streams` concurrent streams of one generator process.
pub fn inspect(streams: u64) -> Vec<Item> {
    let threads = limits::available_cores() as u64;
    let fds_needed = limits::descriptors_needed(streams, threads);
    let mut items = Vec::new();
    match limits::nofile() {
        Ok(nofile) => {
            items.push(item(
                "RLIMIT_NOFILE soft",
                nofile.soft.to_string(),
                fds_needed.to_string(),
                nofile.soft >= fds_needed || nofile.hard >= fds_needed,
                "ssebench raises the soft limit to the hard one at start",
            ));
            items.push(item(
                "RLIMIT_NOFILE hard",
                nofile.hard.to_string(),
                fds_needed.to_string(),
                nofile.hard >= fds_needed,
                "tuning/limits.conf or tuning/ssebench.service.d/limits.conf (LimitNOFILE)",
            ));
        }
        Err(e) => items.push(item("RLIMIT_NOFILE", format!("unreadable: {e}"), fds_needed.to_string(), false, "")),
    }
    push_sys(&mut items, "fs.nr_open", "/proc/sys/fs/nr_open", |v| {
        (fds_needed.to_string(), first(v) >= fds_needed, "caps the hard RLIMIT_NOFILE; tuning/sysctl.conf")
    });
    // The server on the same host holds as many descriptors again.
    let system_fds = 2 * streams + 1024;
    push_sys(&mut items, "fs.file-max", "/proc/sys/fs/file-max", |v| {
        (system_fds.to_string(), first(v) >= system_fds, "system-wide; counts a local server's sockets too")
    });
    push_sys(&mut items, "net.ipv4.ip_local_port_range", "/proc/sys/net/ipv4/ip_local_port_range", |v| {
        let range = numbers(v);
        let ports = match range.as_slice() {
            [low, high] if high >= low => high - low + 1,
            _ => 0,
        };
        let addresses = streams.div_ceil(ports.max(1));
        (
            format!("{streams} ports per source address, or --bind over {addresses} addresses"),
            ports >= streams,
            "ports per (source address, target address:port); spread with --bind or more targets",
        )
    });
    push_sys(&mut items, "net.ipv4.tcp_tw_reuse", "/proc/sys/net/ipv4/tcp_tw_reuse", |v| {
        ("1 (or 2 for loopback only)".to_string(), first(v) != 0, "lets new connections reuse ports in TIME_WAIT")
    });
    push_sys(&mut items, "net.core.somaxconn", "/proc/sys/net/core/somaxconn", |v| {
        (
            format!(">= {SOMAXCONN_WANTED}"),
            first(v) >= SOMAXCONN_WANTED,
            "caps the server's listen backlog; a short one drops SYNs in a connect storm",
        )
    });
    let kernel_bytes = streams * KERNEL_BYTES_PER_SOCKET;
    let kernel_pages = kernel_bytes.div_ceil(PAGE_BYTES);
    push_sys(&mut items, "net.ipv4.tcp_mem", "/proc/sys/net/ipv4/tcp_mem", |v| {
        let max_pages = numbers(v).get(2).copied().unwrap_or(0);
        (
            format!("max >= {kernel_pages} pages ({} MiB at ~3 KB per idle socket)", kernel_bytes >> 20),
            max_pages >= kernel_pages,
            "pages (min pressure max) for all TCP buffers; past max, sockets stall",
        )
    });
    for (name, path) in
        [("net.ipv4.tcp_rmem", "/proc/sys/net/ipv4/tcp_rmem"), ("net.ipv4.tcp_wmem", "/proc/sys/net/ipv4/tcp_wmem")]
    {
        if let Some(value) = read_sys(path) {
            items.push(Item {
                name,
                current: value,
                needed: "-".into(),
                status: Status::Info,
                note: "bytes (min default max) per socket; buffers grow only while data waits".into(),
            });
        }
    }
    let conntrack = "/proc/sys/net/netfilter/nf_conntrack_max";
    if std::path::Path::new(conntrack).exists() {
        push_sys(&mut items, "net.netfilter.nf_conntrack_max", conntrack, |v| {
            (system_fds.to_string(), first(v) >= 2 * streams, "conntrack is loaded: every connection is tracked")
        });
    }
    items.push(io_uring_item());
    items.push(memlock_item(threads));
    items
}

fn first(value: &str) -> u64 {
    numbers(value).first().copied().unwrap_or(0)
}

fn push_sys(
    items: &mut Vec<Item>,
    name: &'static str,
    path: &str,
    judge: impl Fn(&str) -> (String, bool, &'static str),
) {
    match read_sys(path) {
        Some(value) => {
            let (needed, ok, note) = judge(&value);
            items.push(item(name, value, needed, ok, note));
        }
        None => items.push(Item {
            name,
            current: "not readable".into(),
            needed: "-".into(),
            status: Status::Info,
            note: format!("{path} is missing (container or another kernel)"),
        }),
    }
}

fn io_uring_item() -> Item {
    let disabled = read_sys("/proc/sys/kernel/io_uring_disabled");
    let works = runtime::resolve(DriverChoice::IoUring).is_ok();
    let current = format!(
        "io_uring_disabled={}, probe {}",
        disabled.as_deref().unwrap_or("absent"),
        if works { "ok" } else { "failed" }
    );
    let note = if works { "runs use io_uring" } else { "runs fall back to epoll (same engine, more syscalls)" };
    item("io_uring", current, "usable".into(), works, note)
}

fn memlock_item(threads: u64) -> Item {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the live struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } == 0;
    let show =
        |v: libc::rlim_t| if v == libc::RLIM_INFINITY { "unlimited".to_string() } else { format!("{} KiB", v >> 10) };
    // Kernels before 5.12 charge each ring (about 160 KiB at 4096 entries) to RLIMIT_MEMLOCK.
    let needed_bytes = threads * 2 * 160 * 1024;
    Item {
        name: "RLIMIT_MEMLOCK",
        current: if ok {
            format!("soft {}, hard {}", show(limit.rlim_cur), show(limit.rlim_max))
        } else {
            "unreadable".into()
        },
        needed: format!("{} KiB before kernel 5.12", needed_bytes >> 10),
        status: if ok && (limit.rlim_cur >= needed_bytes || kernel_at_least(5, 12)) {
            Status::Ok
        } else {
            Status::Warn
        },
        note: "io_uring rings (client and server) on older kernels".into(),
    }
}

fn kernel_at_least(major: u64, minor: u64) -> bool {
    let release = read_sys("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.split(['.', '-']).filter_map(|p| p.parse::<u64>().ok());
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// Renders the items as a table; the last line sums up.
pub fn render(streams: u64, items: &[Item]) -> String {
    let mut out = String::new();
    let _ =
        writeln!(out, "ssebench doctor: can this host hold {streams} concurrent streams in one generator process?\n");
    let _ = writeln!(out, "{:<32} {:<7} {:<36} needed / note", "item", "status", "current");
    for i in items {
        let status = match i.status {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Info => "info",
        };
        let _ = writeln!(out, "{:<32} {:<7} {:<36} {}", i.name, status, i.current, i.needed);
        if !i.note.is_empty() {
            let _ = writeln!(out, "{:<32} {:<7} {:<36} ({})", "", "", "", i.note);
        }
    }
    let warnings = items.iter().filter(|i| i.status == Status::Warn).count();
    let _ = writeln!(
        out,
        "\n{}",
        if warnings == 0 {
            "All OK.".to_string()
        } else {
            format!("{warnings} warning(s): see tuning/README.md for each setting.")
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_is_reported() {
        let items = inspect(500_000);
        let names: Vec<&str> = items.iter().map(|i| i.name).collect();
        for wanted in [
            "RLIMIT_NOFILE soft",
            "RLIMIT_NOFILE hard",
            "fs.nr_open",
            "fs.file-max",
            "net.ipv4.ip_local_port_range",
            "net.ipv4.tcp_tw_reuse",
            "net.core.somaxconn",
            "net.ipv4.tcp_mem",
            "io_uring",
            "RLIMIT_MEMLOCK",
        ] {
            assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
        }
        // Half a million streams cannot fit one source address's port range.
        let ports = items.iter().find(|i| i.name == "net.ipv4.ip_local_port_range").unwrap();
        assert!(ports.status != Status::Ok, "{ports:?}");
        let text = render(500_000, &items);
        assert!(text.contains("500000 concurrent streams"));
    }

    #[test]
    fn a_small_target_needs_little() {
        let items = inspect(10);
        let fds = items.iter().find(|i| i.name == "RLIMIT_NOFILE hard").unwrap();
        assert_eq!(fds.status, Status::Ok);
    }
}

//! The live view on stderr, as a user sees it from the binary: in a log (stderr a pipe) the first interval's line and
//! then one every 10 s, so a 2 s run shows exactly one; none with `--quiet`; on a terminal (a pseudo-terminal from
//! util-linux `script`) a line redrawn in place every interval. The line's text itself is unit-tested (`live`).

use std::process::{Output, Stdio};
use std::time::Duration;

use ssebench::server::{ServeConfig, ServerHandle};

use crate::util::{serve, serve_cfg, ssebench};

/// Endless streams, an event every 20 ms: every interval has events to show.
fn endless_server() -> ServerHandle {
    serve(ServeConfig { events: 0, interval: Duration::from_millis(20), ..serve_cfg() })
}

/// A 2 s run of 4 streams on one core, snapshotted every 250 ms, with `extra` flags; stdout and stderr are pipes.
fn run_piped(server: &ServerHandle, extra: &[&str]) -> Output {
    let url = format!("http://{}/", server.addr);
    let args = ["run", &url, "-c", "4", "-d", "2s", "-t", "1", "--report-interval", "250ms"];
    let output = ssebench().args(args).args(extra).stdin(Stdio::null()).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("streams"), "the report is still on stdout");
    output
}

#[test]
fn a_log_gets_the_first_intervals_line_and_then_one_per_10_s() {
    let server = endless_server();
    let output = run_piped(&server, &[]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line in 2 s: {stderr:?}");
    let line = lines[0];
    assert!(!line.contains('\r') && !line.contains('\x1b'), "no redraw in a log: {line:?}");
    // The first interval's (0.25 s), or on a loaded machine the first a core woke in time for.
    let (elapsed, rest) = line.strip_prefix('[').and_then(|l| l.split_once("s/2.0s] | open ")).expect(line);
    assert!(elapsed.parse::<f64>().is_ok_and(|s| s < 2.0), "{line}");
    let (open, _) = rest.split_once(" | new ").expect(line);
    assert!(open.parse::<u64>().is_ok_and(|n| n <= 4), "{line}");
    for part in [" ev/s | ", " MB/s | failed 0 | first event p50 ", " p99 "] {
        assert!(line.contains(part), "{part:?} in {line}");
    }
    server.stop();
}

#[test]
fn quiet_shows_no_live_view() {
    let server = endless_server();
    for flag in ["--quiet", "-q"] {
        let output = run_piped(&server, &[flag]);
        assert_eq!(String::from_utf8_lossy(&output.stderr), "", "{flag}");
    }
    server.stop();
}

#[test]
fn a_terminal_sees_the_line_redrawn_every_interval() {
    let server = endless_server();
    let command = format!(
        "{} run http://{}/ -c 4 -d 2s -t 1 --report-interval 250ms",
        env!("CARGO_BIN_EXE_ssebench"),
        server.addr
    );
    // `script` gives the child a pseudo-terminal for stdout and stderr alike, and copies what it wrote to ours.
    let output = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("util-linux script runs");
    let seen = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{seen}");
    let redraws = seen.matches("\r\x1b[2K[").count();
    assert!(redraws >= 3, "{redraws} redraws in {seen:?}");
    let last = seen.rsplit("\r\x1b[2K").next().unwrap();
    assert!(last.contains("s/2.0s] | open ") && last.contains('\n'), "the last line is left in view: {last:?}");
    server.stop();
}

#[test]
fn the_demo_shows_it_too() {
    let output = ssebench().args(["demo", "-d", "1s", "-c", "4"]).stdin(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("[1.0s/1.0s] | open ")).count(), 1, "{stderr}");
    // The built-in server stamps its events, and the demo reads the stamps: its report judges their delivery.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("send times from stamp") && stdout.contains("delivery lag"), "{stdout}");
}

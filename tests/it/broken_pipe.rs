//! A closed stdout (`ssebench run ... | head -1`) ends the output quietly: no panic (exit 101), the run's own exit
//! code, and what the run does after printing (the JSON file) still done. As in ripgrep.
//!
//! Each child's stdout is a pipe whose read end is closed before the child starts, so its first write meets EPIPE
//! every time, however fast the child gets there.

use ssebench::server::ServeConfig;
use std::process::{Output, Stdio};

use crate::util::{read_json, serve, serve_cfg, ssebench, temp_dir};

/// Runs the binary with `args`, its stdout a pipe nobody reads, and returns its exit status and stderr.
fn run_with_closed_stdout(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = ssebench().args(args).stdin(Stdio::null()).stdout(writer).stderr(Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(101), "exit 101: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    output
}

#[test]
fn run_report_to_a_closed_stdout_keeps_the_runs_exit_code() {
    let server = serve(ServeConfig { events: 3, size_bytes: 16, ..serve_cfg() });
    let url = format!("http://{}/", server.addr);
    let dir = temp_dir("broken-pipe");
    let json_path = dir.join("out.json");
    let json = json_path.to_str().unwrap();

    let ok = run_with_closed_stdout(&["run", &url, "-c", "2", "-n", "4", "-t", "1", "--json", json]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let report = read_json(&json_path);
    assert_eq!(report["streams"]["completed"], 4, "the JSON report is still written");

    let slo_failed =
        run_with_closed_stdout(&["run", &url, "-c", "2", "-n", "4", "-t", "1", "--slo", "success_rate<1%"]);
    assert_eq!(slo_failed.status.code(), Some(1), "{}", String::from_utf8_lossy(&slo_failed.stderr));

    std::fs::remove_dir_all(&dir).ok();
    server.stop();
}

#[test]
fn doctor_to_a_closed_stdout_ends_quietly() {
    let output = run_with_closed_stdout(&["doctor", "-c", "10"]);
    // 0, or 1 when this host has a setting that needs a look.
    assert!(matches!(output.status.code(), Some(0 | 1)), "{output:?}");
}

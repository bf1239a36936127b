//! `ssebench merge` and `ssebench report` as a user runs them: two saved runs against the built-in server merged
//! exactly (counts summed, percentiles those of one histogram holding both runs' samples), objectives judged over the
//! sum, reports of different targets refused, and a saved report printed again as its run printed it.

use std::path::Path;
use std::process::Output;

use ssebench::recorder::histogram;
use ssebench::report::{Report, Summary, histograms};

use crate::util::{read_json, serve, serve_cfg, ssebench, temp_dir};

fn read(path: &Path) -> Report {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run_to(url: &str, json: &Path) -> Output {
    let output = ssebench().args(["run", url, "-c", "4", "-n", "8", "-t", "1", "--json"]).arg(json).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output
}

fn merge(args: &[&Path], extra: &[&str]) -> Output {
    ssebench().arg("merge").args(args).args(extra).output().unwrap()
}

#[test]
fn two_runs_merge_into_their_sums_and_percentiles_of_every_sample() {
    let server = serve(serve_cfg());
    let dir = temp_dir("merge");
    let url = format!("http://{}/", server.addr);
    let (a_path, b_path, m_path) = (dir.join("a.json"), dir.join("b.json"), dir.join("m.json"));
    let a_run = run_to(&url, &a_path);
    run_to(&url, &b_path);
    let (a, b) = (read(&a_path), read(&b_path));

    // `report` prints a saved report exactly as its run did, memory included (it is in the file).
    let again = ssebench().args(["report"]).arg(&a_path).output().unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(String::from_utf8_lossy(&again.stdout), String::from_utf8_lossy(&a_run.stdout));

    let output = merge(&[&a_path, &b_path], &["--json", m_path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let m = read(&m_path);
    let (fa, fb, fm) = (&a.figures, &b.figures, &m.figures);
    assert_eq!(fm.streams.started, fa.streams.started + fb.streams.started);
    assert_eq!(fm.streams.completed, 16);
    assert_eq!(fm.streams.failed, fa.streams.failed + fb.streams.failed);
    assert_eq!(fm.events.received, fa.events.received + fb.events.received);
    assert_eq!(fm.events.received, 160);
    assert_eq!(fm.events.bytes, fa.events.bytes + fb.events.bytes);
    assert_eq!(m.duration_s, a.duration_s.max(b.duration_s));

    // One histogram holding both runs' samples, from the serialized histograms the runs saved.
    let mut both = histogram();
    for report in [&a, &b] {
        let serialized = &report.figures.histograms.as_ref().expect("the report carries its histograms")["first_event"];
        both.add(histograms::decode(serialized).unwrap()).unwrap();
    }
    let merged = fm.latency_us.first_event;
    assert_eq!(merged.count, 16);
    assert_eq!(
        (merged.p50, merged.p99, merged.max),
        (both.value_at_quantile(0.5), both.value_at_quantile(0.99), both.max())
    );
    assert_eq!(merged, Summary::of(&both));
    // The merged report carries the sum, so it merges again.
    assert_eq!(histograms::decode(&fm.histograms.as_ref().unwrap()["first_event"]).unwrap(), both);

    // The merged report prints again as the merge printed it.
    let again = ssebench().args(["report"]).arg(&m_path).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&again.stdout), String::from_utf8_lossy(&output.stdout));

    // An objective the merged figures fail: exit 1, the verdict in the report.
    let failing = merge(&[&a_path, &b_path], &["--slo", "first_event.max < 1us"]);
    assert_eq!(failing.status.code(), Some(1), "{}", String::from_utf8_lossy(&failing.stderr));
    assert!(String::from_utf8_lossy(&failing.stdout).contains("first_event.max < 1us"));

    // A report of another target is refused, naming the difference, unless --force.
    let other_path = dir.join("other.json");
    run_to(&format!("http://{}/other", server.addr), &other_path);
    let refused = merge(&[&a_path, &other_path], &[]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("different targets") && stderr.contains("--force"), "{stderr}");
    assert!(refused.stdout.is_empty());
    let forced = merge(&[&a_path, &other_path], &["--force"]);
    assert_eq!(forced.status.code(), Some(0), "{}", String::from_utf8_lossy(&forced.stderr));

    // Timelines (written by an ssebench that records intervals) are put on one wall clock and summed where they
    // overlap; the merge reads them from the JSON, whatever this build's `Report` knows.
    for (path, started_at, started) in [(&a_path, 5_000_000u64, 3), (&b_path, 6_000_000, 4)] {
        let mut json = read_json(path);
        json["started_at"] = serde_json::json!({"unix_us": started_at, "rfc3339": ""});
        json["timeline"] = serde_json::json!([{"t_s": 1.0, "stage": 0, "started": started, "events": 10},
                                              {"t_s": 2.0, "stage": 0, "started": started, "events": 10}]);
        std::fs::write(path, json.to_string()).unwrap();
    }
    assert_eq!(merge(&[&a_path, &b_path], &["--json", m_path.to_str().unwrap()]).status.code(), Some(0));
    let m = read_json(&m_path);
    assert_eq!(m["started_at"]["unix_us"], 5_000_000);
    let started: Vec<u64> = m["timeline"].as_array().unwrap().iter().map(|e| e["started"].as_u64().unwrap()).collect();
    assert_eq!(started, [3, 7, 4], "b's first interval is a's second");
    assert_eq!(m["streams"]["completed"], 16);

    // A file that is no report is a usage error.
    std::fs::write(dir.join("bad.json"), "{}").unwrap();
    assert_eq!(merge(&[&a_path, &dir.join("bad.json")], &[]).status.code(), Some(2));
    assert_eq!(ssebench().args(["report"]).arg(dir.join("missing.json")).output().unwrap().status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
    server.stop();
}

//! `run --shard K/N`: N processes' shares of one run, merged, are the one-process run: the same streams started and
//! completed, the same `{{vu}}` values reaching the server; and `merge` refuses a missing or doubled shard.

use ssebench::report::Report;
use ssebench::report::merge::merge;

use crate::util::{run_args, sse_server};

/// The `vu=` value of each request the server saw, sorted, each once (which users take a core's share of `-n` is a
/// race among them; that every user comes, with its own number, is not).
fn users_seen(requests: &std::sync::mpsc::Receiver<crate::util::Request>) -> Vec<u64> {
    let mut users: Vec<u64> = requests
        .try_iter()
        .map(|r| {
            let line = r.head.lines().next().unwrap().to_string();
            let at = line.find("vu=").unwrap() + 3;
            line[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
        })
        .collect();
    users.sort();
    users.dedup();
    users
}

#[test]
fn three_shards_merged_are_the_one_run() {
    let (addr, requests) = sse_server(b"data: a\n\ndata: b\n\n");
    let url = format!("http://{addr}/events?vu={{{{vu}}}}");
    let args = ["-c", "7", "-n", "20"];
    let whole = run_args(&[&[url.as_str()][..], &args].concat());
    let whole_users = users_seen(&requests);
    let shards: Vec<Report> =
        (0..3).map(|k| run_args(&[&[url.as_str()][..], &args, &["--shard", &format!("{k}/3")]].concat())).collect();
    let shard_users = users_seen(&requests);
    for (k, shard) in shards.iter().enumerate() {
        assert_eq!(shard.shard.map(|s| (s.index, s.count)), Some((k, 3)));
    }
    let merged = merge(&shards, &[], false).expect("the three shards merge");
    let (w, m) = (&whole.figures, &merged.figures);
    assert_eq!((w.streams.started, w.streams.completed, w.events.received), (20, 20, 40));
    assert_eq!((m.streams.started, m.streams.completed, m.events.received), (20, 20, 40));
    assert_eq!(shard_users, whole_users, "the same users, by the same numbers");
    assert_eq!(whole_users.iter().max(), Some(&6));
    assert_eq!(merged.shard, None, "the merge is the whole run");
    // One row per shard, so a bad node shows: its streams add up to the run's.
    let rows: Vec<(usize, u64)> = merged.parts.iter().map(|p| (p.shard.unwrap().index, p.started)).collect();
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(rows.iter().map(|r| r.1).sum::<u64>(), 20);

    let err = merge(&shards[..2], &[], false).unwrap_err().to_string();
    assert!(err.contains("shards missing: [2/3]"), "{err}");
    let doubled = [shards[0].clone(), shards[1].clone(), shards[1].clone()];
    let err = merge(&doubled, &[], false).unwrap_err().to_string();
    assert!(err.contains("missing: [2/3], given more than once: [1/3]"), "{err}");
    assert!(merge(&shards[..2], &[], true).is_ok(), "--force merges them anyway");
}

/// Three processes started at different moments with one `--start-at` (and `--shard auto`, as a Kubernetes Indexed
/// Job runs them): each waits for the barrier and starts its clock there; merged by `ssebench merge`, they are the
/// run. A process that comes after the barrier starts at once and says how late it was.
#[test]
fn shard_processes_start_together_at_the_barrier() {
    use crate::util::{read_json, ssebench, temp_dir};
    let (addr, _requests) = sse_server(b"data: a\n\n");
    let url = format!("http://{addr}/");
    let dir = temp_dir("shards-barrier");
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let barrier = format!("{:.3}", now_s + 3.0);
    let children: Vec<_> = (0..3)
        .map(|k| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            ssebench()
                .args(["run", &url, "-c", "3", "-n", "6", "-t", "1", "-q"])
                .args(["--shard", "auto", "--shards", "3", "--start-at", &barrier, "--json"])
                .arg(dir.join(format!("shard-{k}.json")))
                .env("JOB_COMPLETION_INDEX", k.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let barrier_us = (barrier.parse::<f64>().unwrap() * 1e6).round() as u64;
    for k in 0..3 {
        let report = read_json(&dir.join(format!("shard-{k}.json")));
        assert_eq!(report["shard"]["index"], k);
        assert_eq!(report["start_at"]["late_us"], 0, "shard {k} waited");
        let started = report["started_at"]["unix_us"].as_u64().unwrap();
        assert!(started >= barrier_us, "shard {k} started {} us before the barrier", barrier_us - started);
        assert!(started - barrier_us < 1_000_000, "shard {k} started {} us after it", started - barrier_us);
    }
    let merged = dir.join("merged.json");
    let files: Vec<_> = (0..3).map(|k| dir.join(format!("shard-{k}.json"))).collect();
    let out = ssebench().arg("merge").args(&files).arg("--json").arg(&merged).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let merged = read_json(&merged);
    assert_eq!((merged["streams"]["started"].as_u64(), merged["streams"]["completed"].as_u64()), (Some(6), Some(6)));
    let parts = merged["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    assert!(parts.iter().all(|p| p["start_late_us"] == 0), "{parts:?}");

    // After the barrier: at once, and late by the time since.
    let late = dir.join("late.json");
    let status = ssebench()
        .args(["run", &url, "-c", "1", "-n", "1", "-t", "1", "-q", "--start-at", "1764527400", "--json"])
        .arg(&late)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(read_json(&late)["start_at"]["late_us"].as_u64().unwrap() > 1_000_000);
}

/// The open model: three shards of an arrival schedule together schedule the arrivals the one process does (40/s,
/// due at 0, 25, ..., 1050 ms: 43 before the 1062 ms end, the nearest due 12 ms either side of it).
#[test]
fn three_shards_schedule_the_one_runs_arrivals() {
    let (addr, _requests) = sse_server(b"data: a\n\n");
    let url = format!("http://{addr}/");
    let args = ["--arrival-rate", "40", "--max-streams", "9", "-d", "1062ms"];
    let scheduled = |report: &Report| report.figures.streams.arrivals.as_ref().expect("the open model").scheduled;
    let whole = scheduled(&run_args(&[&[url.as_str()][..], &args].concat()));
    let shards: u64 = (0..3)
        .map(|k| scheduled(&run_args(&[&[url.as_str()][..], &args, &["--shard", &format!("{k}/3")]].concat())))
        .sum();
    assert_eq!((whole, shards), (43, 43));
}

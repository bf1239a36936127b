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

    let err = merge(&shards[..2], &[], false).unwrap_err().to_string();
    assert!(err.contains("shards missing: [2/3]"), "{err}");
    let doubled = [shards[0].clone(), shards[1].clone(), shards[1].clone()];
    let err = merge(&doubled, &[], false).unwrap_err().to_string();
    assert!(err.contains("missing: [2/3], given more than once: [1/3]"), "{err}");
    assert!(merge(&shards[..2], &[], true).is_ok(), "--force merges them anyway");
}

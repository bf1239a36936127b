//! Pure planning: a run's configuration split into per-core shards (virtual users, stream quotas, start times). No IO.

use std::time::Duration;

use crate::config::RunConfig;

/// One core's share of the run. Shards never talk to each other: every limit is split up front.
#[derive(Debug, Clone, PartialEq)]
pub struct Shard {
    pub core_index: usize,
    /// How many shards the run has.
    pub threads: usize,
    /// Virtual users this core runs (each holds at most one stream at a time).
    pub virtual_users: usize,
    /// Streams this core may start in all (`-n` split across cores); `None` is unlimited.
    pub streams_quota: Option<u64>,
    /// Delay before each local virtual user's first stream, in order; empty when there is no `--connect-rate`.
    pub first_start_offsets: Vec<Duration>,
}

/// Splits `total` into `parts` near-equal pieces, the larger ones first.
fn split_even(total: u64, parts: usize, index: usize) -> u64 {
    let parts = parts as u64;
    total / parts + u64::from((index as u64) < total % parts)
}

/// Splits the run over `threads` cores. Virtual users are interleaved across cores (global index
/// `local * threads + core`), so a `--connect-rate` ramp loads every core at once.
pub fn shards(cfg: &RunConfig) -> Vec<Shard> {
    let threads = cfg.threads.min(cfg.connections).max(1);
    (0..threads)
        .map(|core| {
            let virtual_users = split_even(cfg.connections as u64, threads, core) as usize;
            let streams_quota = cfg.streams_limit.map(|n| split_even(n, threads, core));
            let first_start_offsets = match cfg.connect_rate_per_s {
                None => Vec::new(),
                Some(rate) => (0..virtual_users)
                    .map(|local| Duration::from_secs_f64((local * threads + core) as f64 / rate))
                    .collect(),
            };
            Shard { core_index: core, threads, virtual_users, streams_quota, first_start_offsets }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Target;

    fn cfg(connections: usize, threads: usize, streams: Option<u64>, rate: Option<f64>) -> RunConfig {
        RunConfig {
            connections,
            duration: None,
            streams_limit: streams,
            connect_rate_per_s: rate,
            threads,
            ..RunConfig::new(vec![Target {
                addr: "127.0.0.1:1".parse().unwrap(),
                host_header: "h".into(),
                path: "/".into(),
            }])
        }
    }

    #[test]
    fn users_and_quotas_add_up() {
        for (c, t, n) in [(1000, 3, Some(7)), (5, 2, None), (1, 4, Some(1)), (10, 10, Some(100))] {
            let plan = shards(&cfg(c, t, n, None));
            assert_eq!(plan.iter().map(|s| s.virtual_users).sum::<usize>(), c);
            assert!(plan.len() <= c.min(t));
            assert!(plan.iter().all(|s| s.virtual_users > 0));
            if let Some(n) = n {
                assert_eq!(plan.iter().map(|s| s.streams_quota.unwrap()).sum::<u64>(), n);
            }
        }
    }

    #[test]
    fn connect_rate_interleaves_cores() {
        let plan = shards(&cfg(4, 2, None, Some(2.0)));
        let ms = |s: &Shard| s.first_start_offsets.iter().map(|d| d.as_millis()).collect::<Vec<_>>();
        assert_eq!(ms(&plan[0]), vec![0, 1000]);
        assert_eq!(ms(&plan[1]), vec![500, 1500]);
    }
}

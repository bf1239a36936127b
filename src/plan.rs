//! Pure planning: a run's configuration worked out once into a `Plan` (per-core shards with their users, stream quotas,
//! start times and arrival schedules; the stage windows; the run's length) that the engine and every worker read. No IO.

use std::time::Duration;

use crate::config::{RunConfig, Stage};

/// The run worked out once, before any worker starts: nothing below the engine derives these again.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// One per worker thread.
    pub shards: Vec<Shard>,
    /// `--stages`: each stage's place on the run's clock, the same for every core; empty without stages.
    pub windows: Vec<StageWindow>,
    /// From the start to the run's deadline: the last stage's end, or `-d`; `None` runs until `-n` streams are done.
    pub length: Option<Duration>,
    /// `--arrival-rate`: the open model, where a slot holds one arrival's stream rather than a virtual user.
    pub open_model: bool,
}

impl Plan {
    pub fn new(cfg: &RunConfig) -> Plan {
        let windows = stage_windows(&cfg.stages, cfg.connect_rate_per_s);
        let length = match windows.last() {
            Some(last) => Some(last.end),
            None => cfg.duration,
        };
        Plan { shards: shards(cfg), windows, length, open_model: cfg.arrivals.is_some() }
    }
}

/// One core's share of the run. Shards never talk to each other: every limit is split up front.
#[derive(Debug, Clone, PartialEq)]
pub struct Shard {
    /// This core among the process's (its thread, its channels).
    pub core_index: usize,
    /// How many cores the process has.
    pub threads: usize,
    /// This core among every core of the run, over all `--shard` processes, and how many there are: users,
    /// arrivals, quotas and ramps are numbered and split over these, so that N processes are one run.
    pub global_core: usize,
    pub global_threads: usize,
    /// Virtual users this core runs (each holds at most one stream at a time).
    pub virtual_users: usize,
    /// Streams this core may start in all (`-n` split across cores); `None` is unlimited.
    pub streams_quota: Option<u64>,
    /// Delay before each local virtual user's first stream, in order; empty when there is no
    /// `--connect-rate` (and with `--stages`, whose ramps are timed by `StageWindow::start_offset`).
    pub first_start_offsets: Vec<Duration>,
    /// `--stages`: how many of this core's users run in each stage (users `0..n` locally).
    pub stage_users: Vec<usize>,
    /// `--arrival-rate`: this core's share of the arrivals; `virtual_users` is then its share of
    /// `--max-streams`.
    pub arrivals: Option<ArrivalClock>,
}

/// Where a stage sits on the run's clock (offsets from the common start). Every core gets the
/// same windows, so per-stage figures from different cores cover the same time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageWindow {
    pub start: Duration,
    /// The ramp to `streams` at `--connect-rate` (zero when going down or unlimited) plus the hold.
    pub end: Duration,
    pub streams: usize,
    /// The previous stage's target (0 before the first): users from here up start in the ramp.
    pub from_streams: usize,
    /// `--connect-rate`: how fast the ramp adds users; `None` adds them at once.
    pub connect_rate_per_s: Option<f64>,
}

impl StageWindow {
    /// When, after the stage's start, run-wide user `global` (one of the users the stage adds)
    /// starts: users join at `--connect-rate` in index order, all at once without a rate.
    pub fn start_offset(&self, global: usize) -> Duration {
        match self.connect_rate_per_s {
            Some(rate) if global >= self.from_streams => {
                Duration::from_secs_f64((global - self.from_streams) as f64 / rate)
            }
            _ => Duration::ZERO,
        }
    }
}

/// Lays the stages end to end: each ramps from the last one's target at `connect_rate` (at once
/// without one, or when it goes down), then holds its target for its hold time.
fn stage_windows(stages: &[Stage], connect_rate: Option<f64>) -> Vec<StageWindow> {
    let mut windows = Vec::with_capacity(stages.len());
    let (mut at, mut from_streams) = (Duration::ZERO, 0);
    for stage in stages {
        let ramp = match connect_rate {
            Some(rate) if stage.streams > from_streams => {
                Duration::from_secs_f64((stage.streams - from_streams) as f64 / rate)
            }
            _ => Duration::ZERO,
        };
        let end = at + ramp + stage.hold;
        windows.push(StageWindow {
            start: at,
            end,
            streams: stage.streams,
            from_streams,
            connect_rate_per_s: connect_rate,
        });
        (at, from_streams) = (end, stage.streams);
    }
    windows
}

/// One core's arrival schedule: offsets from the start at which its streams are due. Cores
/// interleave even arrivals (run-wide arrival `k` is core `k % threads`'s); with Poisson arrivals
/// each core runs its own Poisson process at `rate / threads`, and their sum is one at `rate`.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrivalClock {
    rate_per_s: f64,
    threads: usize,
    core_index: usize,
    poisson: bool,
    /// Arrivals handed out so far.
    count: u64,
    /// Poisson: the last arrival's offset in seconds, and the generator's state.
    last_s: f64,
    rng: u64,
}

impl ArrivalClock {
    pub fn new(rate_per_s: f64, poisson: bool, threads: usize, core_index: usize, seed: u64) -> ArrivalClock {
        let rng = crate::rng::seed_state(seed, core_index as u64 + 1);
        ArrivalClock { rate_per_s, threads, core_index, poisson, count: 0, last_s: 0.0, rng }
    }

    /// This core's next arrival: its run-wide number (arrival `k` of this core is number
    /// `k * threads + core`) and its offset from the start.
    pub fn next_arrival(&mut self) -> (u64, Duration) {
        let k = self.count;
        self.count += 1;
        let number = k * self.threads as u64 + self.core_index as u64;
        if !self.poisson {
            return (number, Duration::from_secs_f64(number as f64 / self.rate_per_s));
        }
        // Exponential gaps with mean threads / rate: -ln(U) for U uniform in (0, 1].
        let uniform = ((crate::rng::next(&mut self.rng) >> 11) + 1) as f64 / (1u64 << 53) as f64;
        self.last_s += -uniform.ln() * self.threads as f64 / self.rate_per_s;
        (number, Duration::from_secs_f64(self.last_s))
    }
}

/// Splits `total` into `parts` near-equal pieces, the larger ones first.
fn split_even(total: u64, parts: usize, index: usize) -> u64 {
    let parts = parts as u64;
    total / parts + u64::from((index as u64) < total % parts)
}

/// Splits the run over its cores: with `--shard K/N`, over the `N x --threads` cores of all N processes (at most one
/// per user), of which this process runs those whose number is K modulo N. Virtual users are interleaved across
/// cores (global index `local * cores + core`), so a `--connect-rate` ramp loads every core at once; arrivals,
/// `-n` quotas and stage targets are split over the same cores by the same rules, so the N processes' shares add
/// up to exactly the whole run's.
fn shards(cfg: &RunConfig) -> Vec<Shard> {
    let (index, count) = cfg.shard.map_or((0, 1), |s| (s.index, s.count));
    let threads = (cfg.threads * count).min(cfg.connections).max(1);
    let mine: Vec<usize> = (0..threads).filter(|core| core % count == index).collect();
    let local_threads = mine.len();
    mine.into_iter()
        .enumerate()
        .map(|(local_core, core)| {
            let virtual_users = split_even(cfg.connections as u64, threads, core) as usize;
            let streams_quota = cfg.streams_limit.map(|n| split_even(n, threads, core));
            let ramped_at_start = cfg.stages.is_empty() && cfg.arrivals.is_none();
            let first_start_offsets = match cfg.connect_rate_per_s.filter(|_| ramped_at_start) {
                None => Vec::new(),
                Some(rate) => (0..virtual_users)
                    .map(|local| Duration::from_secs_f64((local * threads + core) as f64 / rate))
                    .collect(),
            };
            let stage_users = cfg.stages.iter().map(|s| split_even(s.streams as u64, threads, core) as usize).collect();
            let arrivals = cfg.arrivals.map(|a| ArrivalClock::new(a.rate_per_s, a.poisson, threads, core, cfg.seed));
            Shard {
                core_index: local_core,
                threads: local_threads,
                global_core: core,
                global_threads: threads,
                virtual_users,
                streams_quota,
                first_start_offsets,
                stage_users,
                arrivals,
            }
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
                tls_name: None,
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
    fn stages_ramp_at_the_connect_rate_and_hold() {
        let s = Duration::from_secs;
        let stages = [
            Stage { streams: 100, hold: s(10) },
            Stage { streams: 300, hold: s(10) },
            Stage { streams: 50, hold: s(5) },
        ];
        let windows = stage_windows(&stages, Some(100.0));
        let bounds: Vec<_> = windows.iter().map(|w| (w.start.as_secs(), w.end.as_secs(), w.from_streams)).collect();
        // 1 s to reach 100, 2 s from 100 to 300, no ramp going down.
        assert_eq!(bounds, vec![(0, 11, 0), (11, 23, 100), (23, 28, 300)]);
        assert_eq!(windows[1].start_offset(150), Duration::from_millis(500));
        assert_eq!(stage_windows(&stages, None)[1].start_offset(150), Duration::ZERO);
        assert_eq!(stage_windows(&stages, None)[1].start, s(10));

        let mut c = cfg(300, 2, None, Some(100.0));
        c.stages = stages.to_vec();
        let plan = shards(&c);
        assert_eq!(plan[0].stage_users, vec![50, 150, 25]);
        assert_eq!(plan[1].stage_users, vec![50, 150, 25]);
        assert!(plan[0].first_start_offsets.is_empty());
        // The plan's length is the last stage's end, whatever -d says.
        c.duration = Some(s(1));
        assert_eq!(Plan::new(&c).length, Some(s(28)));
    }

    #[test]
    fn the_run_length_is_the_duration_without_stages() {
        let mut c = cfg(10, 2, None, None);
        c.duration = Some(Duration::from_secs(7));
        let plan = Plan::new(&c);
        assert_eq!((plan.length, plan.windows.len(), plan.open_model), (Some(Duration::from_secs(7)), 0, false));
        c.duration = None;
        assert_eq!(Plan::new(&c).length, None);
    }

    #[test]
    fn even_arrivals_interleave_cores() {
        let mut clocks: Vec<_> = (0..2).map(|core| ArrivalClock::new(10.0, false, 2, core, 1)).collect();
        let ms = |c: &mut ArrivalClock| (0..3).map(|_| c.next_arrival().1.as_millis()).collect::<Vec<_>>();
        assert_eq!(ms(&mut clocks[0]), vec![0, 200, 400]);
        assert_eq!(ms(&mut clocks[1]), vec![100, 300, 500]);
        assert_eq!(clocks[1].next_arrival().0, 7);
    }

    #[test]
    fn poisson_arrivals_keep_their_rate() {
        // 1000/s over 2 cores: each core's 20,000 arrivals should span about 40 s.
        let mut clock = ArrivalClock::new(1000.0, true, 2, 1, 7);
        let mut last = Duration::ZERO;
        let mut gaps_under_mean = 0;
        for _ in 0..20_000 {
            let next = clock.next_arrival().1;
            assert!(next >= last);
            gaps_under_mean += usize::from((next - last).as_secs_f64() < 0.002);
            last = next;
        }
        let span_s = last.as_secs_f64();
        assert!((38.0..42.0).contains(&span_s), "{span_s}");
        // Exponential gaps: 1 - 1/e (63%) of them are shorter than the mean.
        assert!((12_200..13_100).contains(&gaps_under_mean), "{gaps_under_mean}");
        let first = || ArrivalClock::new(1000.0, true, 2, 1, 7).next_arrival();
        assert_eq!(first(), first());
    }

    /// `--shard K/N` for every N and K: the N processes' users, quotas, stage targets, ramp offsets and arrivals
    /// partition the one-process run's exactly.
    #[test]
    fn shards_of_a_run_add_up_to_the_run() {
        use crate::config::{Arrivals, ShardOf};
        for (users, threads, n) in [(10, 2, Some(7)), (1000, 3, Some(1001)), (9, 4, None), (64, 1, Some(5))] {
            // Ramped at --connect-rate alone (first start offsets), or with stages and arrivals.
            for (count, scheduled) in (1..=5usize).flat_map(|count| [(count, false), (count, true)]) {
                let mut c = cfg(users, threads, n, Some(50.0));
                if scheduled {
                    c.stages = vec![Stage { streams: users / 2, hold: Duration::ZERO }];
                    c.arrivals = Some(Arrivals { rate_per_s: 40.0, poisson: false, max_streams: users });
                }
                let whole = {
                    let mut one = c.clone();
                    one.threads = threads * count;
                    shards(&one)
                };
                let parts: Vec<Shard> = (0..count)
                    .flat_map(|index| {
                        c.shard = Some(ShardOf { index, count });
                        shards(&c)
                    })
                    .collect();
                let key = |s: &Shard| {
                    let offsets = s.first_start_offsets.clone();
                    (s.global_core, s.global_threads, s.virtual_users, s.streams_quota, s.stage_users.clone(), offsets)
                };
                let mut got: Vec<_> = parts.iter().map(key).collect();
                got.sort();
                let want: Vec<_> = whole.iter().map(key).collect();
                assert_eq!(got, want, "{users} users, {threads} threads, --shard K/{count}");
                if !scheduled {
                    assert!(parts.iter().any(|s| !s.first_start_offsets.is_empty()), "offsets compared");
                    continue;
                }
                let mut arrivals: Vec<(u64, Duration)> = parts
                    .iter()
                    .flat_map(|s| {
                        let mut clock = s.arrivals.clone().unwrap();
                        (0..5).map(move |_| clock.next_arrival())
                    })
                    .collect();
                arrivals.sort();
                let cores = whole.len() as u64;
                let want: Vec<(u64, Duration)> =
                    (0..5 * cores).map(|k| (k, Duration::from_secs_f64(k as f64 / 40.0))).collect();
                assert_eq!(arrivals, want, "every arrival once, at its time");
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

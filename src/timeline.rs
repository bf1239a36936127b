//! The run over time, sans IO: one core's figures for one `--report-interval` (`Interval`, taken as the difference
//! of its recorder from the last snapshot, so the hot path records nothing twice), and the engine's `Collector`,
//! which merges the cores' snapshots of each interval into one `Entry` and hands the emptied snapshots back.

use std::collections::VecDeque;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};

use crate::recorder::{Failure, HISTOGRAM_MAX, Recorder};

/// The latency histograms an interval keeps, in this order (their report names).
pub const LATENCIES: [&str; 4] = ["connect_us", "headers_us", "first_event_us", "gap_us"];
/// `--openai`: the token histograms an interval keeps.
pub const LLM_LATENCIES: [&str; 2] = ["ttft_us", "itl_us"];
/// `--send-time`: each event's delivery lag, per interval.
pub const DELIVERY_LATENCIES: [&str; 1] = ["delivery_lag_us"];
const HISTOGRAMS: usize = LATENCIES.len() + LLM_LATENCIES.len() + DELIVERY_LATENCIES.len();

/// Every interval histogram's name, in order.
pub fn latency_names() -> impl Iterator<Item = &'static &'static str> {
    LATENCIES.iter().chain(&LLM_LATENCIES).chain(&DELIVERY_LATENCIES)
}

/// Snapshots per core besides its baseline (allocated up front): one being filled, one travelling to the collector
/// and back. The collector turns one around within about 10 ms (`MIN_REPORT_INTERVAL`); a core that finds none back
/// at an interval's end folds that interval into the next rather than allocating.
pub const SNAPSHOTS_PER_CORE: usize = 2;

/// Two significant digits (1% value precision) for an interval's histograms, against the recorder's three: 30 KiB of
/// counts each instead of 224 KiB. Folding the recorder's histogram in maps each of its buckets to the coarser one
/// holding it, the same way every time, so (recorder now - baseline) is exact at this precision.
const INTERVAL_SIGFIG: u8 = 2;

fn interval_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX, INTERVAL_SIGFIG).expect("static histogram bounds are valid")
}

/// The counters an interval keeps (cumulative in a baseline, differences in a snapshot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
    pub interrupted: u64,
    pub reconnects: u64,
    pub events: u64,
    pub bytes: u64,
    pub output_tokens: u64,
    /// `--openai`: prompt tokens (`usage.prompt_tokens`, or the prompt's estimate where a stream had no usage).
    pub input_tokens: u64,
    pub failures: [u64; Failure::ALL.len()],
}

impl Counts {
    fn of(rec: &Recorder) -> Counts {
        let mut failures = [0; Failure::ALL.len()];
        for (n, failure) in failures.iter_mut().zip(Failure::ALL) {
            *n = rec.failures_of(failure);
        }
        Counts {
            started: rec.streams_started,
            completed: rec.streams_completed,
            failed: rec.streams_failed,
            interrupted: rec.streams_interrupted,
            reconnects: rec.reconnects,
            events: rec.events,
            bytes: rec.bytes,
            output_tokens: rec.llm.as_ref().map_or(0, |l| l.output_tokens),
            input_tokens: rec.llm.as_ref().map_or(0, |l| l.input_tokens),
            failures,
        }
    }

    /// `self += other`: what `add_since` adds from a zero base.
    fn add(&mut self, other: &Counts) {
        self.add_since(other, &Counts::default());
    }

    /// `self += now - base`; a recorder's counters only grow.
    fn add_since(&mut self, now: &Counts, base: &Counts) {
        let d = |n: u64, b: u64| n.saturating_sub(b);
        self.started += d(now.started, base.started);
        self.completed += d(now.completed, base.completed);
        self.failed += d(now.failed, base.failed);
        self.interrupted += d(now.interrupted, base.interrupted);
        self.reconnects += d(now.reconnects, base.reconnects);
        self.events += d(now.events, base.events);
        self.bytes += d(now.bytes, base.bytes);
        self.output_tokens = self.output_tokens.saturating_add(d(now.output_tokens, base.output_tokens));
        self.input_tokens = self.input_tokens.saturating_add(d(now.input_tokens, base.input_tokens));
        for ((mine, n), b) in self.failures.iter_mut().zip(now.failures).zip(base.failures) {
            *mine += d(n, b);
        }
    }
}

/// The histograms of `rec` an interval keeps, in `latency_names` order (`None` outside LLM mode, or without
/// `--send-time`).
fn histograms_of(rec: &Recorder) -> [Option<&Histogram<u64>>; HISTOGRAMS] {
    let h = &rec.histograms;
    let llm = rec.llm.as_deref();
    [
        Some(&h.connect_us),
        Some(&h.headers_us),
        Some(&h.first_event_us),
        Some(&h.gap_us),
        llm.map(|l| &l.ttft_us),
        llm.map(|l| &l.itl_us),
        rec.delivery.is_some().then_some(&h.delivery_lag_us),
    ]
}

/// One core's figures over one interval (or, as a baseline, its recorder's cumulative figures at the last snapshot).
/// Allocated up front and reused: `clear` and the arithmetic below never allocate (bounded histograms, never
/// resized): six histograms of two significant digits, about 180 KiB in all.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Which interval: its end is `(index + 1) * --report-interval` after the start, except the run's last.
    pub index: usize,
    /// The interval's end, µs since the run's start.
    pub end_us: u64,
    /// The `--stages` stage when the snapshot was taken (0 without stages).
    pub stage: usize,
    /// Streams open when the snapshot was taken.
    pub open_streams: u64,
    /// The core sent its last snapshot (it has finished).
    pub last: bool,
    /// The core that sent it.
    pub core: usize,
    /// The share of the interval the core spent busy (its thread's CPU time over the wall time), in millionths, and
    /// how late its interval timer fired: the generator's own load. Merged over cores: the busiest, the latest.
    pub busy_ppm: u32,
    pub loop_lag_us: u64,
    /// A core was saturated in the interval (`recorder::interval_saturated`, judged on its own share and timer).
    pub saturated: bool,
    pub counts: Counts,
    histograms: [Histogram<u64>; HISTOGRAMS],
}

impl Default for Interval {
    fn default() -> Self {
        Self::new()
    }
}

impl Interval {
    pub fn new() -> Interval {
        Interval {
            index: 0,
            end_us: 0,
            stage: 0,
            open_streams: 0,
            last: false,
            core: 0,
            busy_ppm: 0,
            loop_lag_us: 0,
            saturated: false,
            counts: Counts::default(),
            histograms: std::array::from_fn(|_| interval_histogram()),
        }
    }

    /// Every figure back to zero, keeping the memory.
    pub fn clear(&mut self) {
        self.counts = Counts::default();
        for h in self.histograms.iter_mut().filter(|h| !h.is_empty()) {
            h.reset();
        }
        (self.index, self.end_us, self.stage, self.open_streams, self.last) = (0, 0, 0, 0, false);
        (self.busy_ppm, self.loop_lag_us, self.saturated) = (0, 0, false);
    }

    /// Adds what `rec` recorded since `base` was taken, then makes `base` the recorder's figures now. A stage's
    /// recorder about to be set aside is folded in the same way, and `base` then cleared for the next, fresh one.
    pub fn add_since(&mut self, rec: &Recorder, base: &mut Interval) {
        let now = Counts::of(rec);
        self.counts.add_since(&now, &base.counts);
        base.counts = now;
        for ((mine, theirs), b) in self.histograms.iter_mut().zip(histograms_of(rec)).zip(&mut base.histograms) {
            if let Some(theirs) = theirs {
                mine.add(theirs).expect("histograms share their highest value");
                mine.subtract(&*b).expect("a recorder's histogram only grows past its baseline");
                if !b.is_empty() {
                    b.reset();
                }
                b.add(theirs).expect("histograms share their highest value");
            }
        }
    }

    /// The histograms, in `LATENCIES` then `LLM_LATENCIES` order (the LLM ones empty outside `--openai`).
    pub fn histograms(&self) -> &[Histogram<u64>; HISTOGRAMS] {
        &self.histograms
    }

    /// Adds a later interval's counters and histograms (a running total; its gauges and times stay).
    fn accumulate(&mut self, later: &Interval) {
        self.counts.add(&later.counts);
        self.busy_ppm = self.busy_ppm.max(later.busy_ppm);
        self.loop_lag_us = self.loop_lag_us.max(later.loop_lag_us);
        self.saturated |= later.saturated;
        for (mine, theirs) in self.histograms.iter_mut().zip(&later.histograms) {
            mine.add(theirs).expect("histograms share bounds");
        }
    }

    /// Folds another core's snapshot of the same interval in.
    pub fn merge(&mut self, other: &Interval) {
        self.accumulate(other);
        self.open_streams += other.open_streams;
        self.end_us = self.end_us.max(other.end_us);
        self.stage = self.stage.max(other.stage);
    }

    /// The summary the report keeps (no heap: a timeline is one of these per interval).
    pub fn entry(&self, llm: bool) -> Entry {
        Entry {
            end_us: self.end_us,
            stage: self.stage,
            open_streams: self.open_streams,
            counts: self.counts,
            latencies: std::array::from_fn(|i| Quantiles::of(&self.histograms[i])),
            llm,
            busy_ppm: self.busy_ppm,
            loop_lag_us: self.loop_lag_us,
            saturated: self.saturated,
        }
    }
}

/// Count, median, tail and maximum of one histogram over one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Quantiles {
    /// `None` for a histogram without samples.
    fn of(h: &Histogram<u64>) -> Option<Quantiles> {
        (!h.is_empty()).then(|| Quantiles {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        })
    }
}

/// `--hdr-log`: one interval's merged histograms over every core, kept serialized (HdrHistogram's V2 deflate
/// encoding, a few hundred bytes each) so that a long run does not hold 180 KiB of counts per interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalHistograms {
    /// The interval's start and end, µs since the run's start (the start is the previous interval's end, so an
    /// interval a core folded into the next one is covered too).
    pub start_us: u64,
    pub end_us: u64,
    /// Each non-empty histogram by its report name (`connect`, `headers`, `first_event`, `gap`, `ttft`, `itl`), in
    /// `LATENCIES` then `LLM_LATENCIES` order.
    pub histograms: Vec<(&'static str, Vec<u8>)>,
}

/// The report name of an interval histogram: its `LATENCIES` name without the unit, as in `latency_us` and
/// `histograms`.
fn report_name(latency: &'static str) -> &'static str {
    latency.strip_suffix("_us").unwrap_or(latency)
}

impl Interval {
    /// `--hdr-log`: the histograms as `IntervalHistograms` keeps them. Once per interval, on the engine's thread.
    fn serialized(&self, start_us: u64) -> IntervalHistograms {
        let mut serializer = V2DeflateSerializer::new();
        let names = latency_names();
        let histograms = names
            .zip(&self.histograms)
            .filter(|(_, h)| !h.is_empty())
            .map(|(name, h)| {
                let mut bytes = Vec::new();
                serializer.serialize(h, &mut bytes).expect("serializing into a Vec cannot fail");
                (report_name(name), bytes)
            })
            .collect();
        IntervalHistograms { start_us, end_us: self.end_us, histograms }
    }
}

/// One interval of the run, over every core.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    pub end_us: u64,
    pub stage: usize,
    pub open_streams: u64,
    pub counts: Counts,
    /// `LATENCIES` then `LLM_LATENCIES`, each `None` without samples in the interval.
    pub latencies: [Option<Quantiles>; HISTOGRAMS],
    /// An `--openai` run (the LLM figures apply).
    pub llm: bool,
    /// The busiest core's busy share, in millionths, and the latest interval timer among the cores.
    pub busy_ppm: u32,
    pub loop_lag_us: u64,
    /// Some core was saturated in the interval.
    pub saturated: bool,
}

impl Entry {
    pub fn latency(&self, name: &str) -> Option<Quantiles> {
        let i = latency_names().position(|n| *n == name)?;
        self.latencies[i]
    }
}

/// The engine's side: merges each interval's snapshots as cores send them, in any order, and emits an interval once
/// every core still running has sent it or a later one (each core sends its own in order, each index at most once). A core that finished early (its `-n`
/// quota spent) no longer holds the others' intervals back.
#[derive(Debug)]
pub struct Collector {
    /// The highest index each core has sent, and whether it has finished.
    sent: Vec<(Option<usize>, bool)>,
    /// Merged intervals not yet complete: `pending[i]` is interval `first + i`, its count of snapshots in `seen[i]`.
    pending: VecDeque<Interval>,
    first: usize,
    /// Emptied merge targets, reused.
    pool: Vec<Interval>,
    llm: bool,
    pub timeline: Vec<Entry>,
    /// Each core's busy shares of its intervals (millionths), added up, and how many: its mean load over the run.
    pub core_busy: Vec<(u64, u32)>,
    /// `--hdr-log`: each emitted interval's histograms (`None`: not kept).
    kept: Option<Vec<IntervalHistograms>>,
    /// `--metrics-addr`: every emitted interval's counters and histograms added up, from the start (`None`: not kept).
    /// One more `Interval`, added to once per interval: the cumulative figures Prometheus wants, with nothing per event.
    totals: Option<Box<Interval>>,
}

impl Collector {
    /// `expected_intervals`: the run's length over the interval (room reserved, so a run of known length emits without
    /// allocating).
    pub fn new(cores: usize, llm: bool, expected_intervals: usize) -> Collector {
        Collector {
            sent: vec![(None, false); cores],
            pending: VecDeque::with_capacity(SNAPSHOTS_PER_CORE),
            first: 0,
            pool: (0..SNAPSHOTS_PER_CORE).map(|_| Interval::new()).collect(),
            llm,
            timeline: Vec::with_capacity(expected_intervals + 2),
            core_busy: vec![(0, 0); cores],
            kept: None,
            totals: None,
        }
    }

    /// `--hdr-log`: also keep each emitted interval's histograms (`finish_with_histograms` hands them over).
    pub fn keeping_histograms(mut self) -> Collector {
        self.kept = Some(Vec::with_capacity(self.timeline.capacity()));
        self
    }

    /// `--metrics-addr`: also keep a running total of every emitted interval (`totals`).
    pub fn keeping_totals(mut self) -> Collector {
        self.totals = Some(Box::new(Interval::new()));
        self
    }

    /// `keeping_totals`: every emitted interval's figures added up (counters and histograms; the gauges are in the
    /// last timeline entry). `None` when not kept.
    pub fn totals(&self) -> Option<&Interval> {
        self.totals.as_deref()
    }

    /// Some core has sent its last snapshot: it has finished its streams.
    pub fn a_core_finished(&self) -> bool {
        self.sent.iter().any(|&(_, done)| done)
    }

    /// Takes in one core's snapshot and returns it, emptied, for the core to reuse.
    pub fn accept(&mut self, mut snapshot: Interval) -> Interval {
        let core = snapshot.core;
        // Cannot be below `first` (an interval is emitted only once every running core has passed it); were it, its
        // figures would still count, in the oldest interval not yet emitted.
        debug_assert!(snapshot.index >= self.first, "a core sends each interval once, in order");
        let at = snapshot.index.saturating_sub(self.first);
        while self.pending.len() <= at {
            let mut fresh = self.pool.pop().unwrap_or_default();
            fresh.clear();
            fresh.index = self.first + self.pending.len();
            self.pending.push_back(fresh);
        }
        self.pending[at].merge(&snapshot);
        self.sent[core] = (Some(snapshot.index), snapshot.last);
        // The last, partial interval is not timed for load (`Snapshots::finish`).
        if let Some(busy) = self.core_busy.get_mut(core).filter(|_| !snapshot.last) {
            (busy.0, busy.1) = (busy.0 + u64::from(snapshot.busy_ppm), busy.1 + 1);
        }
        snapshot.clear();
        self.emit(false);
        snapshot
    }

    /// Emits every interval no running core can add to any more (with `all`, every one: the run is over).
    fn emit(&mut self, all: bool) {
        // Interval i is complete once every running core has sent i or a later one (a core that sent nothing yet
        // holds every interval back).
        let mut running = self.sent.iter().filter(|(_, done)| !done).map(|(index, _)| *index);
        let complete_through = running.try_fold(usize::MAX, |through, index| index.map(|i| through.min(i)));
        while let Some(front) = self.pending.front() {
            if !all && complete_through.is_none_or(|through| front.index > through) {
                break;
            }
            let front = self.pending.pop_front().expect("a front");
            if let Some(totals) = &mut self.totals {
                totals.accumulate(&front);
            }
            // An index no core sent (each folded it into its next snapshot: no spare came back in time, or a core
            // woke late) has no figures and no end of its own: no entry. The next entry covers its time, and its
            // rates span both.
            if front.end_us != 0 {
                if let Some(kept) = &mut self.kept {
                    let start_us = self.timeline.last().map_or(0, |e| e.end_us);
                    kept.push(front.serialized(start_us));
                }
                self.timeline.push(front.entry(self.llm));
            }
            self.pool.push(front);
            self.first += 1;
        }
    }

    /// The run is over: emits what is left (the timeline and `totals` are then final; `finish` hands them over).
    pub fn close(&mut self) {
        self.emit(true);
    }

    /// The run is over: emits what is left.
    pub fn finish(self) -> Vec<Entry> {
        self.finish_with_histograms().0
    }

    /// The run is over: emits what is left, and hands over the timeline and the intervals' histograms (empty unless
    /// `keeping_histograms`).
    pub fn finish_with_histograms(mut self) -> (Vec<Entry>, Vec<IntervalHistograms>) {
        self.emit(true);
        (self.timeline, self.kept.unwrap_or_default())
    }

    /// Each core's mean busy share over its timed intervals, 0 to 1 (cores with none timed left out).
    pub fn cores_busy(&self) -> Vec<f64> {
        self.core_busy.iter().filter(|(_, n)| *n > 0).map(|&(sum, n)| sum as f64 / f64::from(n) / 1e6).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::StreamEnd;

    fn recorder_with(started: u64, events: u64, gap_us: u64) -> Recorder {
        let mut rec = Recorder::new();
        for _ in 0..started {
            rec.stream_opened();
        }
        rec.events = events;
        rec.histograms.gap_us.record(gap_us).unwrap();
        rec
    }

    #[test]
    fn an_interval_is_the_difference_from_the_last_snapshot() {
        let mut rec = recorder_with(3, 10, 100);
        let (mut base, mut first, mut second) = (Interval::new(), Interval::new(), Interval::new());
        first.add_since(&rec, &mut base);
        assert_eq!((first.counts.started, first.counts.events), (3, 10));
        rec.stream_opened();
        rec.stream_closed(StreamEnd::Failed(Failure::Reset), 5, 0);
        rec.events += 7;
        rec.histograms.gap_us.record(5_000).unwrap();
        second.add_since(&rec, &mut base);
        assert_eq!((second.counts.started, second.counts.events, second.counts.failed), (1, 7, 1));
        assert_eq!(second.counts.failures[Failure::Reset.index()], 1);
        let gap = second.entry(false).latency("gap_us").expect("one gap");
        assert_eq!((gap.count, gap.max / 100), (1, 50), "only the new sample");
        assert_eq!(second.entry(false).latency("connect_us"), None);
    }

    #[test]
    fn a_stage_swap_folds_the_old_recorder_in() {
        let old = recorder_with(4, 20, 10);
        let (mut base, mut interval) = (Interval::new(), Interval::new());
        interval.add_since(&recorder_with(1, 5, 10), &mut base);
        interval.clear();
        // The stage ends: the rest of the old recorder, then the fresh one from zero.
        interval.add_since(&old, &mut base);
        base.clear();
        interval.add_since(&recorder_with(2, 3, 10), &mut base);
        assert_eq!((interval.counts.started, interval.counts.events), (3 + 2, 15 + 3));
        assert_eq!(interval.entry(false).latency("gap_us").unwrap().count, 1);
    }

    /// Intervals taken from a recorder at coarser precision add up to the whole run taken at once, bucket by bucket.
    #[test]
    fn coarse_intervals_add_up_to_the_whole() {
        let mut rec = Recorder::new();
        let (mut base, mut whole_base) = (Interval::new(), Interval::new());
        let mut sum = Interval::new();
        let mut value = 1u64;
        for _ in 0..5 {
            for _ in 0..1_000 {
                value = value * 48_271 % 2_147_483_647;
                rec.histograms.first_event_us.record(1 + value % 5_000_000).unwrap();
            }
            let mut interval = Interval::new();
            interval.add_since(&rec, &mut base);
            assert_eq!(interval.entry(false).latency("first_event_us").unwrap().count, 1_000);
            sum.merge(&interval);
        }
        let mut whole = Interval::new();
        whole.add_since(&rec, &mut whole_base);
        assert_eq!(sum.entry(false), whole.entry(false));
    }

    fn snapshot(core: usize, index: usize, started: u64, last: bool) -> Interval {
        let mut s = Interval::new();
        (s.core, s.index, s.end_us, s.last, s.open_streams) = (core, index, (index as u64 + 1) * 1000, last, 1);
        s.counts.started = started;
        s
    }

    #[test]
    fn the_collector_merges_each_interval_over_the_cores() {
        let mut c = Collector::new(2, false, 3);
        c.accept(snapshot(0, 0, 1, false));
        c.accept(snapshot(0, 1, 2, false));
        assert!(c.timeline.is_empty(), "core 1 has sent nothing yet");
        let back = c.accept(snapshot(1, 0, 10, false));
        assert_eq!((back.counts.started, back.core), (0, 1), "handed back emptied");
        assert_eq!(c.timeline.len(), 1, "interval 0 is complete");
        assert_eq!((c.timeline[0].counts.started, c.timeline[0].open_streams), (11, 2));
        c.accept(snapshot(1, 1, 20, false));
        assert_eq!(c.timeline.len(), 2);
        // Core 0 finishes early; core 1 goes on alone.
        assert!(!c.a_core_finished());
        c.accept(snapshot(0, 2, 3, true));
        assert!(c.a_core_finished(), "core 0 sent its last");
        c.accept(snapshot(1, 3, 40, false));
        c.accept(snapshot(1, 4, 50, true));
        let timeline = c.finish();
        let started: Vec<u64> = timeline.iter().map(|e| e.counts.started).collect();
        assert_eq!(started, [11, 22, 3, 40, 50]);
        assert_eq!(timeline.iter().map(|e| e.end_us).collect::<Vec<_>>(), [1000, 2000, 3000, 4000, 5000]);
    }

    /// `--hdr-log`: the collector keeps each emitted interval's merged histograms, from the previous interval's end to
    /// its own, and only the non-empty ones, by report name.
    #[test]
    fn the_collector_keeps_the_merged_histograms_when_asked() {
        use hdrhistogram::serialization::Deserializer;
        let mut c = Collector::new(2, false, 2).keeping_histograms();
        let mut gaps = [snapshot(0, 0, 1, false), snapshot(1, 0, 1, false)];
        gaps[0].histograms[3].record(1_000).unwrap();
        gaps[1].histograms[3].record_n(2_000, 3).unwrap();
        for s in gaps {
            c.accept(s);
        }
        let mut connect = snapshot(0, 1, 1, true);
        connect.histograms[0].record(77).unwrap();
        c.accept(connect);
        c.accept(snapshot(1, 1, 1, true));
        let (timeline, kept) = c.finish_with_histograms();
        assert_eq!(timeline.len(), 2);
        let read =
            |bytes: &Vec<u8>| -> Histogram<u64> { Deserializer::new().deserialize(&mut bytes.as_slice()).unwrap() };
        assert_eq!((kept[0].start_us, kept[0].end_us, kept[1].start_us, kept[1].end_us), (0, 1000, 1000, 2000));
        assert_eq!(kept[0].histograms.iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["gap"]);
        let gap = read(&kept[0].histograms[0].1);
        assert_eq!((gap.len(), gap.count_at(2_000)), (4, 3));
        assert_eq!(kept[1].histograms.iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["connect"]);
        assert_eq!(read(&kept[1].histograms[0].1).len(), 1);
        // Without `keeping_histograms`, nothing is kept.
        assert!(Collector::new(1, false, 1).finish_with_histograms().1.is_empty());
    }

    /// An index no core sent makes no entry (an entry ending at 0 s would put the timeline out of order): its time and
    /// figures are in the next one.
    #[test]
    fn an_index_no_core_sent_makes_no_entry() {
        let mut c = Collector::new(1, false, 0);
        c.accept(snapshot(0, 0, 1, false));
        c.accept(snapshot(0, 2, 2, true));
        let entries = c.finish();
        let started: Vec<u64> = entries.iter().map(|e| e.counts.started).collect();
        assert_eq!(started, [1, 2]);
        assert!(entries.windows(2).all(|w| w[0].end_us < w[1].end_us), "{entries:?}");
    }

    #[test]
    fn a_skipped_index_is_an_interval_of_the_others() {
        let mut c = Collector::new(2, false, 0);
        c.accept(snapshot(0, 0, 1, false));
        c.accept(snapshot(1, 1, 2, false));
        c.accept(snapshot(0, 1, 3, true));
        c.accept(snapshot(1, 2, 4, true));
        let started: Vec<u64> = c.finish().iter().map(|e| e.counts.started).collect();
        assert_eq!(started, [1, 5, 4]);
    }
}

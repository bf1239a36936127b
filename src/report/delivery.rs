//! What happened to the events between the sender and ssebench: arrived as sent (`direct`), several sent apart
//! arriving in one read (`coalesced`), or held and released in bursts (`buffered`), judged from the per-read counts
//! and, with `--send-time`, from each event's lag behind its send time. A proxy that coalesces or buffers changes
//! every latency measured through it; this names it, with the figures that show it.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::report::Summary;

/// Fewer events than this say nothing about delivery: `unknown`.
const MIN_EVENTS: u64 = 20;
/// Below this share of events arriving with others, delivery is direct whatever else is seen.
const SHARED_DIRECT_BELOW: f64 = 0.25;
/// Events sent this close together and read together were sent together: the sender's own batching, not a hold.
const SPREAD_DIRECT_BELOW_US: u64 = 5_000;
/// Events sent this far apart yet read together (p99 of the reads that brought several) were held: buffered. The
/// spread, unlike the lag, does not depend on the two hosts' clocks agreeing.
pub const BUFFERED_FROM_US: u64 = 1_000_000;
/// Cuts within this span of stream ages are one cluster: a timeout fires at one age, give or take scheduling.
const CUT_WINDOW_US: u64 = 2_000_000;
/// A cluster is named when it holds at least this many cuts, and at least half of its kind.
const MIN_CUTS: u64 = 3;

/// The report's `delivery` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// `"direct"`, `"coalesced"`, `"buffered"`, or `"unknown"` (too few events, or no send times to judge by).
    pub verdict: String,
    /// Why, with the figures.
    pub evidence: String,
    /// `--send-time` as given; absent without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_time: Option<String>,
    /// Reads that brought at least one event, and events per such read.
    pub reads_with_events: u64,
    pub events_per_read: f64,
    /// Events that arrived in a read with at least one other.
    pub events_in_shared_reads: u64,
    /// `--send-time`: for each read that brought two timed events or more, how far apart they were sent.
    pub send_spread_in_read_us: Summary,
    /// `--send-time`: events with no readable send time.
    pub events_without_send_time: u64,
    /// `--send-time`: events whose send time was after their receipt (the sender's clock ahead of this host's),
    /// counted in the lag histogram as 0.
    pub negative_lag_events: u64,
    /// Streams that arrived compressed: a proxy compressing an event stream must hold bytes to compress them.
    pub compressed_streams: u64,
    /// Streams cut short at about one age: a timeout between the client and the server.
    #[serde(default)]
    pub cuts: Vec<Cut>,
    /// `--send-time`: reads whose events were sent 1 s or more apart, and events whose send time was a whole second.
    #[serde(default)]
    pub reads_held_1s: u64,
    #[serde(default)]
    pub events_timed_in_whole_seconds: u64,
}

/// Streams cut short at about the same age.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cut {
    /// The cuts' mean age, in seconds, and half the span of their ages.
    pub age_s: f64,
    pub spread_s: f64,
    pub count: u64,
    /// Cut after a second or more without an event (an idle timeout), rather than while events flowed (a limit on
    /// the stream's length).
    pub idle: bool,
}

impl Cut {
    /// The densest cluster of ages in `ages` (a histogram of cut streams' ages): the `CUT_WINDOW_US` span holding
    /// the most, named when it holds at least `MIN_CUTS` and at least half of them.
    pub fn cluster(ages: &Histogram<u64>, idle: bool) -> Option<Cut> {
        let total = ages.len();
        if total < MIN_CUTS {
            return None;
        }
        let values: Vec<(u64, u64)> = ages
            .iter_recorded()
            .map(|v| (ages.highest_equivalent(v.value_iterated_to()), v.count_at_value()))
            .collect();
        let (mut best, mut end, mut inside) = ((0, 0, 0), 0, 0);
        for start in 0..values.len() {
            while end < values.len() && values[end].0 <= values[start].0 + CUT_WINDOW_US {
                inside += values[end].1;
                end += 1;
            }
            if inside > best.0 {
                best = (inside, start, end);
            }
            inside -= values[start].1;
        }
        let (count, start, end) = best;
        if count < MIN_CUTS || count * 2 < total {
            return None;
        }
        let window = &values[start..end];
        let sum: u64 = window.iter().map(|(v, c)| v * c).sum();
        let span = window[window.len() - 1].0 - window[0].0;
        Some(Cut { age_s: sum as f64 / count as f64 / 1e6, spread_s: span as f64 / 2e6, count, idle })
    }
}

/// What the verdict is judged from.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub events: u64,
    pub reads_with_events: u64,
    pub events_in_shared_reads: u64,
    /// `None` without `--send-time`.
    pub send_time: Option<&'a str>,
    pub lag: &'a Summary,
    pub spread: &'a Summary,
    pub events_without_send_time: u64,
    pub negative_lag_events: u64,
    pub compressed_streams: u64,
    /// Ages of streams cut while idle, and while events flowed.
    pub cut_idle: &'a Histogram<u64>,
    pub cut_flowing: &'a Histogram<u64>,
    /// The generator was saturated: events may have piled up in its own socket buffers, so reads that bring several
    /// say nothing of the path.
    pub generator_saturated: bool,
    /// What can be seen without send times: the first event's wait behind the head, the first event's time and the
    /// streams' length.
    pub head_wait: &'a Summary,
    pub first_event: &'a Summary,
    pub stream: &'a Summary,
    /// Reads whose events were sent `BUFFERED_FROM_US` or more apart, and events timed in whole seconds.
    pub reads_held_1s: u64,
    pub events_timed_in_whole_seconds: u64,
}

impl Delivery {
    pub fn judge(seen: Seen<'_>) -> Delivery {
        let events_per_read =
            if seen.reads_with_events > 0 { seen.events as f64 / seen.reads_with_events as f64 } else { 0.0 };
        let (verdict, evidence) = verdict(&seen, events_per_read);
        Delivery {
            verdict: verdict.to_string(),
            evidence,
            send_time: seen.send_time.map(str::to_string),
            reads_with_events: seen.reads_with_events,
            events_per_read,
            events_in_shared_reads: seen.events_in_shared_reads,
            send_spread_in_read_us: *seen.spread,
            events_without_send_time: seen.events_without_send_time,
            negative_lag_events: seen.negative_lag_events,
            compressed_streams: seen.compressed_streams,
            cuts: cuts(seen.cut_idle, seen.cut_flowing),
            reads_held_1s: seen.reads_held_1s,
            events_timed_in_whole_seconds: seen.events_timed_in_whole_seconds,
        }
    }
}

/// The clusters of idle and flowing cuts; two at about one age are one cut, of the kind most of them were (a
/// stream's last gap may fall either side of the idle threshold).
fn cuts(idle: &Histogram<u64>, flowing: &Histogram<u64>) -> Vec<Cut> {
    match (Cut::cluster(idle, true), Cut::cluster(flowing, false)) {
        (Some(a), Some(b)) if (a.age_s - b.age_s).abs() * 1e6 <= CUT_WINDOW_US as f64 => {
            let count = a.count + b.count;
            let age_s = (a.age_s * a.count as f64 + b.age_s * b.count as f64) / count as f64;
            let low = (a.age_s - a.spread_s).min(b.age_s - b.spread_s);
            let high = (a.age_s + a.spread_s).max(b.age_s + b.spread_s);
            vec![Cut { age_s, spread_s: (high - low) / 2.0, count, idle: a.count >= b.count }]
        }
        (a, b) => a.into_iter().chain(b).collect(),
    }
}

fn ms(us: u64) -> String {
    crate::units::format_micros(us as f64, 1)
}

fn verdict(seen: &Seen<'_>, events_per_read: f64) -> (&'static str, String) {
    if seen.events < MIN_EVENTS {
        return ("unknown", format!("{} events: too few to judge", seen.events));
    }
    let shared = seen.events_in_shared_reads as f64 / seen.events as f64;
    let shared_pct = shared * 100.0;
    if seen.send_time.is_none() || seen.lag.count < MIN_EVENTS {
        let why = if seen.send_time.is_none() { "no --send-time" } else { "too few events carried a send time" };
        // What can be seen without them is said, but judged no further: a server may write in bursts itself.
        let held = seen.head_wait.count > 0
            && seen.head_wait.p50 < 1_000
            && seen.stream.p50 > 0
            && seen.first_event.p50 as f64 >= 0.8 * seen.stream.p50 as f64
            && events_per_read >= 10.0;
        let looks = if held {
            format!(
                "; it looks held: the head came with the first event, at {:.0}% of the stream's length",
                seen.first_event.p50 as f64 * 100.0 / seen.stream.p50 as f64
            )
        } else if events_per_read >= 5.0 && shared >= 0.5 {
            "; events arrive together, as a proxy that coalesces (or a server that writes in bursts) sends them".into()
        } else {
            String::new()
        };
        return (
            "unknown",
            format!(
                "{why}: {events_per_read:.1} events per read, {shared_pct:.0}% of events arrived with others{looks}; \
                 whether they were sent together cannot be told without send times"
            ),
        );
    }
    let (spread, lag) = (seen.spread, seen.lag);
    if seen.events_timed_in_whole_seconds >= lag.count {
        return (
            "unknown",
            format!(
                "every send time was a whole second (such as OpenAI's created): events sent within one second look \
                 sent together, so reads of several cannot be judged; lag p50 {}, p99 {}",
                ms(lag.p50),
                ms(lag.p99)
            ),
        );
    }
    if shared >= SHARED_DIRECT_BELOW && spread.count == 0 {
        return (
            "unknown",
            format!(
                "{shared_pct:.0}% of events arrived with others, but no read brought two with send times: whether \
                 they were sent together cannot be told"
            ),
        );
    }
    if shared < SHARED_DIRECT_BELOW || spread.p90 < SPREAD_DIRECT_BELOW_US {
        return (
            "direct",
            format!(
                "{events_per_read:.1} events per read; events read together were sent within {} of each other \
                 (p90); lag p50 {}, p99 {}",
                ms(spread.p90),
                ms(lag.p50),
                ms(lag.p99)
            ),
        );
    }
    if seen.generator_saturated {
        return (
            "unknown",
            format!(
                "{events_per_read:.1} events per read, sent up to {} apart (p90), but the generator was saturated: \
                 events may have piled up in its own socket buffers",
                ms(spread.p90)
            ),
        );
    }
    // Held: three reads or more, or half of those that brought several events, were sent a second apart or more;
    // one slow read (a retransmission) among many is not a hold.
    if seen.reads_held_1s >= 3 || (seen.reads_held_1s > 0 && seen.reads_held_1s * 2 >= spread.count) {
        return (
            "buffered",
            format!(
                "held up to {} (events sent that far apart arrived in one read), released in bursts of about \
                 {events_per_read:.0} events; lag p50 {}, p99 {}",
                ms(spread.max),
                ms(lag.p50),
                ms(lag.p99)
            ),
        );
    }
    (
        "coalesced",
        format!(
            "events sent up to {} apart (p90; max {}) arrive together, {events_per_read:.1} per read on average \
             ({shared_pct:.0}% of events shared a read); lag p50 {}, p99 {}",
            ms(spread.p90),
            ms(spread.max),
            ms(lag.p50),
            ms(lag.p99)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(count: u64, p50: u64, p90: u64, p99: u64, max: u64) -> Summary {
        Summary { count, min: 0, mean: p50 as f64, p50, p90, p99, max, ..Summary::default() }
    }

    fn no_cuts() -> &'static Histogram<u64> {
        static EMPTY: std::sync::OnceLock<Histogram<u64>> = std::sync::OnceLock::new();
        EMPTY.get_or_init(|| Histogram::new(2).unwrap())
    }

    fn seen<'a>(events: u64, reads: u64, shared: u64, lag: &'a Summary, spread: &'a Summary) -> Seen<'a> {
        Seen {
            events,
            reads_with_events: reads,
            events_in_shared_reads: shared,
            send_time: Some("stamp"),
            lag,
            spread,
            events_without_send_time: 0,
            negative_lag_events: 0,
            compressed_streams: 0,
            cut_idle: no_cuts(),
            cut_flowing: no_cuts(),
            generator_saturated: false,
            head_wait: &NOTHING,
            first_event: &NOTHING,
            stream: &NOTHING,
            reads_held_1s: u64::from(spread.max >= BUFFERED_FROM_US) * spread.count.min(1),
            events_timed_in_whole_seconds: 0,
        }
    }

    const NOTHING: Summary = Summary { count: 0, min: 0, mean: 0.0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };

    #[test]
    fn cuts_that_cluster_at_one_age_are_named_and_scattered_ones_are_not() {
        let mut ages = crate::recorder::histogram();
        for age_ms in [59_600, 60_000, 60_100, 60_400, 12_000] {
            ages.record(age_ms * 1_000).unwrap();
        }
        let cut = Cut::cluster(&ages, true).expect("four of five within 2 s");
        assert_eq!((cut.count, cut.idle), (4, true));
        assert!((cut.age_s - 60.0).abs() < 0.1 && cut.spread_s < 0.5, "{cut:?}");
        let mut scattered = crate::recorder::histogram();
        for age_s in [5, 15, 25, 35, 45, 55] {
            scattered.record(age_s * 1_000_000).unwrap();
        }
        assert_eq!(Cut::cluster(&scattered, false), None);
        let mut two = crate::recorder::histogram();
        two.record(2_000_000).unwrap();
        two.record(2_000_000).unwrap();
        assert_eq!(Cut::cluster(&two, true), None, "too few to call a cluster");
        // Cut at one age, some after a silence and some not: one cut, of the larger kind.
        let (mut idle, mut flowing) = (crate::recorder::histogram(), crate::recorder::histogram());
        for age_ms in [60_000, 60_100, 60_200] {
            idle.record(age_ms * 1_000).unwrap();
        }
        for age_ms in [59_900, 60_050, 60_150, 60_300] {
            flowing.record(age_ms * 1_000).unwrap();
        }
        let one = cuts(&idle, &flowing);
        assert_eq!(one.len(), 1, "{one:?}");
        assert_eq!((one[0].count, one[0].idle), (7, false));
    }

    #[test]
    fn one_event_per_read_is_direct() {
        let (lag, spread) = (summary(200, 300, 800, 2_000, 3_000), Summary::default());
        let d = Delivery::judge(seen(200, 200, 0, &lag, &spread));
        assert_eq!(d.verdict, "direct", "{}", d.evidence);
        assert_eq!(d.events_per_read, 1.0);
    }

    #[test]
    fn events_sent_together_and_read_together_are_still_direct() {
        let (lag, spread) = (summary(200, 300, 800, 2_000, 3_000), summary(100, 20, 100, 900, 1_000));
        assert_eq!(Delivery::judge(seen(200, 20, 200, &lag, &spread)).verdict, "direct");
    }

    #[test]
    fn a_20_event_burst_every_200_ms_is_coalesced() {
        // HAProxy without http-no-delay, measured: ~20 events per read, sent ~200 ms apart.
        let (lag, spread) =
            (summary(200, 100_000, 180_000, 200_000, 205_000), summary(10, 190_000, 195_000, 199_000, 200_000));
        let d = Delivery::judge(seen(200, 10, 200, &lag, &spread));
        assert_eq!(d.verdict, "coalesced", "{}", d.evidence);
        assert!(d.evidence.contains("20.0 per read"), "{}", d.evidence);
    }

    #[test]
    fn a_whole_stream_in_one_read_is_buffered() {
        // nginx gzip without X-Accel-Buffering: 2 s of events in one read at the end.
        let (lag, spread) = (
            summary(200, 1_000_000, 1_800_000, 2_000_000, 2_050_000),
            summary(1, 2_000_000, 2_000_000, 2_000_000, 2_000_000),
        );
        let d = Delivery::judge(seen(200, 1, 200, &lag, &spread));
        assert_eq!(d.verdict, "buffered", "{}", d.evidence);
        // One slow read among several coalesced ones (a retransmission) does not make it buffered.
        let spread = summary(10, 190_000, 195_000, 2_000_000, 2_000_000);
        let mut s = seen(200, 10, 200, &lag, &spread);
        s.reads_held_1s = 1;
        assert_eq!(Delivery::judge(s).verdict, "coalesced");
        s.reads_held_1s = 3;
        assert_eq!(Delivery::judge(s).verdict, "buffered");
        // Whole seconds tell nothing of events sent within one.
        let mut s = seen(200, 10, 200, &lag, &spread);
        s.events_timed_in_whole_seconds = 200;
        assert_eq!(Delivery::judge(s).verdict, "unknown");
    }

    #[test]
    fn reads_of_several_events_say_nothing_when_the_generator_was_saturated_or_few_carried_send_times() {
        let (lag, spread) =
            (summary(200, 100_000, 180_000, 200_000, 205_000), summary(10, 190_000, 195_000, 199_000, 200_000));
        let mut s = seen(200, 10, 200, &lag, &spread);
        s.generator_saturated = true;
        let d = Delivery::judge(s);
        assert_eq!(d.verdict, "unknown");
        assert!(d.evidence.contains("the generator was saturated"), "{}", d.evidence);
        let d = Delivery::judge(seen(200, 10, 200, &lag, &Summary::default()));
        assert_eq!(d.verdict, "unknown", "{}", d.evidence);
    }

    #[test]
    fn without_send_times_or_enough_events_it_says_unknown() {
        let (lag, spread) = (Summary::default(), Summary::default());
        let mut s = seen(200, 10, 200, &lag, &spread);
        s.send_time = None;
        let d = Delivery::judge(s);
        assert_eq!(d.verdict, "unknown");
        assert!(d.evidence.starts_with("no --send-time"), "{}", d.evidence);
        assert!(d.evidence.contains("events arrive together"), "{}", d.evidence);
        assert_eq!(Delivery::judge(seen(5, 5, 0, &lag, &spread)).verdict, "unknown");
        // The whole stream in one read at its end, head included: said to look held, still unknown.
        let (head_wait, first_event, stream) = (
            summary(1, 0, 0, 0, 0),
            summary(1, 1_990_000, 1_990_000, 1_990_000, 1_990_000),
            summary(1, 2_000_000, 2_000_000, 2_000_000, 2_000_000),
        );
        let mut s = seen(200, 1, 200, &lag, &spread);
        (s.send_time, s.head_wait, s.first_event, s.stream) = (None, &head_wait, &first_event, &stream);
        let d = Delivery::judge(s);
        assert_eq!(d.verdict, "unknown");
        assert!(d.evidence.contains("it looks held: the head came with the first event, at 100%"), "{}", d.evidence);
    }
}

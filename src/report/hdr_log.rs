//! `--hdr-log`: the run's interval histograms as a standard HdrHistogram interval log (the format of Java's
//! `HistogramLogWriter`, read by every HdrHistogram port's log reader), written with the `hdrhistogram` crate's
//! `IntervalLogWriter`. Rendered into memory once the run is over; `commands` writes the file.

use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use crate::report::timeline::rfc3339;
use crate::timeline::IntervalHistograms;

/// The interval max column is in milliseconds (values are µs): the same unit as Java's writer, whose default ratio
/// turns nanosecond histograms into milliseconds. The histograms themselves stay in µs.
pub const MAX_VALUE_DIVISOR: f64 = 1_000.0;

/// The legend line Java's writer puts after its headers (readers skip it).
const LEGEND: &str = "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";

/// The log of a run whose clock started `started_at_us` µs after the Unix epoch: headers (version, StartTime with
/// its date, BaseTime at the same instant, so interval timestamps are seconds since the run's start), the legend,
/// then one line per interval and histogram, tagged with its report name (`Tag=first_event,0.000,0.250,1.234,...`).
pub fn render(started_at_us: u64, intervals: &[IntervalHistograms]) -> Vec<u8> {
    let started_at_s = started_at_us as f64 / 1e6;
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    IntervalLogWriterBuilder::new()
        .add_comment(&format!("[Logged with ssebench {}]", env!("CARGO_PKG_VERSION")))
        .add_comment("[Histogram log format version 1.3]")
        .add_comment(&format!("[StartTime: {started_at_s:.3} (seconds since epoch), {}]", rfc3339(started_at_us)))
        .add_comment(&format!("[BaseTime: {started_at_s:.3} (seconds since epoch)]"))
        .begin_log_with(&mut out, &mut serializer)
        .expect("writing into a Vec cannot fail");
    out.extend_from_slice(LEGEND.as_bytes());
    // A second builder for the intervals: the first one's comments must come before the legend. It adds only the
    // `#[MaxValueDivisor: 1000.000]` comment.
    let mut log = IntervalLogWriterBuilder::new()
        .with_max_value_divisor(MAX_VALUE_DIVISOR)
        .begin_log_with(&mut out, &mut serializer)
        .expect("writing into a Vec cannot fail");
    let mut deserializer = Deserializer::new();
    for interval in intervals {
        let start = Duration::from_micros(interval.start_us);
        let length = Duration::from_micros(interval.end_us.saturating_sub(interval.start_us));
        for (name, bytes) in &interval.histograms {
            let h: Histogram<u64> =
                deserializer.deserialize(&mut bytes.as_slice()).expect("the collector serialized this histogram");
            let tag = Tag::new(name).expect("report names have no comma, space or line break");
            log.write_histogram(&h, start, length, Some(tag)).expect("writing into a Vec cannot fail");
        }
    }
    drop(log);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::Serializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    fn serialized(values: &[u64]) -> Vec<u8> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 2).unwrap();
        for &v in values {
            h.record(v).unwrap();
        }
        let mut bytes = Vec::new();
        V2DeflateSerializer::new().serialize(&h, &mut bytes).unwrap();
        bytes
    }

    /// The crate's own reader gets back every interval: start, length, tag, max and the histogram bucket for bucket.
    #[test]
    fn the_log_reads_back_with_the_crates_reader() {
        let intervals = [
            IntervalHistograms {
                start_us: 0,
                end_us: 250_000,
                histograms: vec![("first_event", serialized(&[1_500, 2_000])), ("gap", serialized(&[10_000]))],
            },
            IntervalHistograms { start_us: 250_000, end_us: 300_000, histograms: vec![("gap", serialized(&[12_345]))] },
        ];
        let started_at_us = 1_796_045_104_123_456;
        let log = render(started_at_us, &intervals);
        let text = String::from_utf8(log.clone()).unwrap();
        assert!(text.contains("#[StartTime: 1796045104.123 (seconds since epoch), 2026-11-30T13:25:04.123456Z]\n"));
        assert!(text.contains(&format!("\n{LEGEND}")), "{text}");
        let mut starts = Vec::new();
        let mut read = Vec::new();
        for entry in IntervalLogIterator::new(&log) {
            match entry.expect("every line parses") {
                LogEntry::StartTime(t) | LogEntry::BaseTime(t) => starts.push(t.as_millis()),
                LogEntry::Interval(i) => {
                    let bytes =
                        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, i.encoded_histogram())
                            .unwrap();
                    let h: Histogram<u64> = Deserializer::new().deserialize(&mut bytes.as_slice()).unwrap();
                    let tag = i.tag().unwrap().as_str().to_string();
                    read.push((tag, i.start_timestamp().as_millis(), i.duration().as_millis(), i.max(), h));
                }
            }
        }
        assert_eq!(starts, [1_796_045_104_123, 1_796_045_104_123]);
        let expected =
            [("first_event", 0, 250, &[1_500, 2_000][..]), ("gap", 0, 250, &[10_000]), ("gap", 250, 50, &[12_345])];
        assert_eq!(read.len(), expected.len());
        for ((tag, start_ms, length_ms, max, h), (want_tag, want_start, want_length, values)) in
            read.iter().zip(expected)
        {
            assert_eq!((tag.as_str(), *start_ms, *length_ms), (want_tag, want_start, want_length));
            let mut want = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 2).unwrap();
            for &v in values {
                want.record(v).unwrap();
            }
            assert_eq!(h, &want, "{tag} at {start_ms} ms");
            // The max column: the histogram's max in ms, to the log's three decimals.
            assert!((max - want.max() as f64 / MAX_VALUE_DIVISOR).abs() < 0.001, "{max}");
        }
    }

    #[test]
    fn a_run_without_intervals_is_headers_only() {
        let text = String::from_utf8(render(0, &[])).unwrap();
        assert!(text.ends_with(&format!("{LEGEND}#[MaxValueDivisor: 1000.000]\n")), "{text}");
        assert!(text.contains("#[StartTime: 0.000 (seconds since epoch), 1970-01-01T00:00:00.000000Z]"), "{text}");
    }
}

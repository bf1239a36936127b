//! A report's histograms in serialized form (`"histograms": {"<name>": "<base64>"}`): HdrHistogram's V2
//! deflate-compressed encoding, the format every HdrHistogram port reads, in standard base64. They are what makes
//! reports mergeable exactly: percentiles cannot be combined, histograms can (`report::merge`).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use crate::recorder::Recorder;

/// The name of each histogram of `rec` next to the histogram, in the report's names: `latency_us`'s keys,
/// `events_per_stream`, the LLM ones without their unit (`ttft`, `itl`, `tpot`, ..., `tokens_per_chunk` in
/// hundredths), `turn<N>.ttft`, `turn<N>.itl` and `step<N>.latency` (1-based).
pub fn named(rec: &Recorder) -> Vec<(String, &Histogram<u64>)> {
    let h = &rec.histograms;
    let mut all: Vec<(String, &Histogram<u64>)> = [
        ("connect", &h.connect_us),
        ("headers", &h.headers_us),
        ("first_event", &h.first_event_us),
        ("gap", &h.gap_us),
        ("stream", &h.stream_us),
        ("max_gap", &h.max_gap_us),
        ("premature_end", &h.premature_end_us),
        ("reconnect_delay", &h.reconnect_delay_us),
        ("start_lag", &h.start_lag_us),
        ("tls_handshake", &h.tls_handshake_us),
        ("head_wait", &h.head_wait_us),
        ("delivery_lag", &h.delivery_lag_us),
        ("read_spread", &h.read_spread_us),
        ("cut_idle", &h.cut_idle_us),
        ("cut_flowing", &h.cut_flowing_us),
        ("events_per_stream", &h.events_per_stream),
    ]
    .into_iter()
    .map(|(name, h)| (name.to_string(), h))
    .collect();
    if let Some(llm) = rec.llm.as_deref() {
        let flat = [
            ("ttft", &llm.ttft_us),
            ("first_reasoning", &llm.first_reasoning_us),
            ("itl", &llm.itl_us),
            ("tpot", &llm.tpot_us),
            ("generation", &llm.generation_us),
            ("output_tokens_per_s_per_stream", &llm.output_tokens_per_s),
            ("output_tokens_per_stream", &llm.output_tokens_per_stream),
            ("tokens_per_chunk", &llm.tokens_per_chunk_x100),
        ];
        all.extend(flat.into_iter().map(|(name, h)| (name.to_string(), h)));
        for (i, turn) in llm.turns.iter().enumerate() {
            all.push((format!("turn{}.ttft", i + 1), &turn.ttft_us));
            all.push((format!("turn{}.itl", i + 1), &turn.itl_us));
        }
        for (i, step) in llm.steps.iter().enumerate() {
            all.push((format!("step{}.latency", i + 1), &step.latency_us));
        }
    }
    all
}

/// Every non-empty histogram of `rec`, serialized by name (an empty one is left out: a missing name reads as empty).
pub fn encode_all(rec: &Recorder) -> BTreeMap<String, String> {
    named(rec).into_iter().filter(|(_, h)| !h.is_empty()).map(|(name, h)| (name, encode(h))).collect()
}

/// One histogram as base64 of its V2 deflate serialization.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut bytes).expect("serializing into a Vec cannot fail");
    STANDARD.encode(bytes)
}

/// The histogram `encode` wrote (or any V2 or V2 deflate serialization, base64-encoded).
pub fn decode(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = STANDARD.decode(text.trim()).map_err(|e| format!("not base64: {e}"))?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).map_err(|e| format!("not an HdrHistogram: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::histogram;

    #[test]
    fn a_histogram_comes_back_bucket_for_bucket() {
        let mut h = histogram();
        for v in [1, 2, 3, 999, 1_000, 12_345, 250_000, 60_000_000] {
            h.record(v).unwrap();
        }
        h.record_n(777, 1_000).unwrap();
        let back = decode(&encode(&h)).unwrap();
        assert_eq!(back, h);
        assert_eq!((back.len(), back.min(), back.max(), back.mean()), (h.len(), h.min(), h.max(), h.mean()));
        for q in [0.5, 0.9, 0.99, 0.999] {
            assert_eq!(back.value_at_quantile(q), h.value_at_quantile(q));
        }
        // The bounds travel too, so a decoded histogram adds to a fresh one.
        let mut sum = histogram();
        sum.add(&back).unwrap();
        assert_eq!(sum.len(), h.len());
    }

    #[test]
    fn an_empty_histogram_round_trips_and_garbage_is_refused() {
        assert!(decode(&encode(&histogram())).unwrap().is_empty());
        assert!(decode("not base64!").unwrap_err().starts_with("not base64"));
        assert!(decode(&STANDARD.encode(b"HISTFAAA")).unwrap_err().starts_with("not an HdrHistogram"));
    }

    #[test]
    fn a_recorder_serializes_its_non_empty_histograms_by_report_name() {
        let mut rec = Recorder::new();
        rec.histograms.first_event_us.record(1_500).unwrap();
        rec.histograms.events_per_stream.record(10).unwrap();
        let all = encode_all(&rec);
        assert_eq!(all.keys().collect::<Vec<_>>(), ["events_per_stream", "first_event"]);
        assert_eq!(decode(&all["first_event"]).unwrap(), rec.histograms.first_event_us);
    }
}

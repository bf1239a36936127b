//! The interval timelines of several saved reports, put on one wall clock and summed where they overlap. A report
//! carries a timeline (`timeline`: `{"t_s", "stage", "open_streams", counters..., "latency_us": {...}}` per
//! interval, `started_at.unix_us`: the run's start in Unix µs) only when its ssebench wrote one, so this reads them as JSON
//! values and never depends on their Rust type. No IO.
//!
//! Each entry sits at its run's `started_at` plus its `t_s`; the merged timeline starts at the earliest `started_at`
//! and counts in the first report's interval (the gap between its first two entries, 1 s with a single entry). An
//! entry joins the interval nearest its wall-clock time; entries of one interval add up: counters and open streams
//! summed, failures summed by class, a latency summary's count summed, min and max kept, mean weighted by count.
//! Its percentiles are kept only where one report had samples in that interval: interval entries carry no
//! histograms, and percentiles of different samples cannot be combined (the mean of two p99s is the p99 of nothing).

use serde_json::{Map, Value};

/// One report's timeline: when its run started (Unix µs) and its entries.
pub struct Timeline<'a> {
    pub started_at_us: u64,
    pub entries: &'a [Value],
}

/// The report's timeline, if it carries one.
pub fn of(report: &Value) -> Option<Timeline<'_>> {
    Some(Timeline {
        started_at_us: report.get("started_at")?.get("unix_us")?.as_u64()?,
        entries: report.get("timeline")?.as_array()?.as_slice(),
    })
}

/// The merged timeline and its `started_at` (Unix µs), or None when some report has none (a sum that misses a
/// machine would be wrong, not partial).
pub fn merge(reports: &[Value]) -> Option<(u64, Vec<Value>)> {
    let timelines: Vec<Timeline> = reports.iter().map(of).collect::<Option<_>>()?;
    let origin_us = timelines.iter().map(|t| t.started_at_us).min()?;
    let t_s = |e: &Value| e.get("t_s").and_then(Value::as_f64).unwrap_or(0.0);
    let first = timelines[0].entries;
    let interval_s = match first {
        [a, b, ..] if t_s(b) > t_s(a) => t_s(b) - t_s(a),
        _ => 1.0,
    };
    // (interval index, merged entry), in index order.
    let mut slots: Vec<(u64, Value)> = Vec::new();
    for timeline in &timelines {
        let offset_s = (timeline.started_at_us - origin_us) as f64 / 1e6;
        for entry in timeline.entries {
            let at_s = offset_s + t_s(entry);
            let index = (at_s / interval_s).round().max(0.0) as u64;
            match slots.binary_search_by_key(&index, |(i, _)| *i) {
                Ok(found) => add(&mut slots[found].1, entry),
                Err(at) => {
                    let mut own = entry.clone();
                    if let Some(t) = own.get_mut("t_s") {
                        *t = Value::from(index as f64 * interval_s);
                    }
                    slots.insert(at, (index, own));
                }
            }
        }
    }
    Some((origin_us, slots.into_iter().map(|(_, entry)| entry).collect()))
}

/// Adds `other` into `sum`, field by field: numbers summed (but `t_s` and `stage`, which say where the entry is,
/// and the generator's load, a worst case: the greater kept), latency summaries combined, other objects by key.
fn add(sum: &mut Value, other: &Value) {
    let (Value::Object(sum), Value::Object(other)) = (sum, other) else { return };
    for (key, theirs) in other {
        if key == "t_s" || key == "stage" {
            continue;
        }
        if key == "generator_busy" || key == "loop_lag_us" {
            let mine = sum.get(key).and_then(Value::as_f64).unwrap_or(0.0);
            if theirs.as_f64().unwrap_or(0.0) > mine {
                sum.insert(key.clone(), theirs.clone());
            }
            continue;
        }
        match sum.get_mut(key) {
            None => {
                sum.insert(key.clone(), theirs.clone());
            }
            Some(mine) if is_summary(mine) && is_summary(theirs) => add_summary(mine, theirs),
            Some(mine @ Value::Object(_)) => add(mine, theirs),
            Some(mine) => {
                if let Some(total) = add_numbers(mine, theirs) {
                    *mine = total;
                }
            }
        }
    }
}

fn add_numbers(a: &Value, b: &Value) -> Option<Value> {
    match (a.as_u64(), b.as_u64()) {
        (Some(x), Some(y)) => Some(Value::from(x + y)),
        _ => Some(Value::from(a.as_f64()? + b.as_f64()?)),
    }
}

fn is_summary(v: &Value) -> bool {
    v.get("count").is_some_and(Value::is_u64) && v.get("max").is_some()
}

/// Two latency summaries of one interval: exact for count, and for min, max and mean where both sides have them;
/// percentiles only from a side alone.
fn add_summary(mine: &mut Value, theirs: &Value) {
    let count = |v: &Value| v.get("count").and_then(Value::as_u64).unwrap_or(0);
    let (n_mine, n_theirs) = (count(mine), count(theirs));
    if n_theirs == 0 {
        return;
    }
    if n_mine == 0 {
        *mine = theirs.clone();
        return;
    }
    // Each figure only where both sides have it: ssebench's own interval entries carry no min or mean, and a zero
    // made up for a missing one would read as a measurement.
    let both = |k: &str| Some((mine.get(k)?.as_f64()?, theirs.get(k)?.as_f64()?));
    let mut merged = Map::new();
    merged.insert("count".into(), Value::from(n_mine + n_theirs));
    if let Some((a, b)) = both("min") {
        merged.insert("min".into(), Value::from(a.min(b) as u64));
    }
    if let Some((a, b)) = both("mean") {
        merged
            .insert("mean".into(), Value::from((a * n_mine as f64 + b * n_theirs as f64) / (n_mine + n_theirs) as f64));
    }
    if let Some((a, b)) = both("max") {
        merged.insert("max".into(), Value::from(a.max(b) as u64));
    }
    *mine = Value::Object(merged);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(t_s: f64, started: u64, first_event: Value) -> Value {
        json!({"t_s": t_s, "stage": 1, "open_streams": 2, "started": started, "failures": {"connect_refused": 1},
               "latency_us": {"first_event": first_event}})
    }

    fn summary(count: u64, min: u64, mean: f64, p50: u64, max: u64) -> Value {
        json!({"count": count, "min": min, "mean": mean, "p50": p50, "p90": p50, "p99": max, "p999": max, "max": max})
    }

    /// ssebench's own interval latencies (count, percentiles, max): the sum keeps count and max, and makes up no
    /// min or mean.
    #[test]
    fn interval_latencies_merge_without_a_made_up_min_or_mean() {
        let mut mine = json!({"count": 3, "p50": 10, "p90": 20, "p99": 30, "max": 40});
        add_summary(&mut mine, &json!({"count": 2, "p50": 5, "p90": 6, "p99": 7, "max": 50}));
        assert_eq!(mine, json!({"count": 5, "max": 50}));
    }

    #[test]
    fn timelines_align_by_wall_clock_and_sum_where_they_overlap() {
        // b started 1 s after a: b's t=1 s is a's t=2 s.
        let a = json!({"started_at": {"unix_us": 10_000_000u64}, "timeline": [
            entry(1.0, 3, summary(2, 100, 150.0, 100, 200)),
            entry(2.0, 5, summary(0, 0, 0.0, 0, 0)),
        ]});
        let b = json!({"started_at": {"unix_us": 11_000_000u64}, "timeline": [entry(1.0, 7, summary(2, 50, 350.0, 300, 400))]});
        let (started_at, timeline) = merge(&[a.clone(), b]).unwrap();
        assert_eq!(started_at, 10_000_000);
        assert_eq!(timeline.len(), 2);
        assert_eq!(timeline[0], a["timeline"][0]);
        let second = &timeline[1];
        assert_eq!((second["t_s"].as_f64(), second["started"].as_u64()), (Some(2.0), Some(12)));
        assert_eq!((second["open_streams"].as_u64(), second["stage"].as_u64()), (Some(4), Some(1)));
        assert_eq!(second["failures"]["connect_refused"], 2);
        // Only b had samples then: its summary stands, percentiles included.
        assert_eq!(second["latency_us"]["first_event"], summary(2, 50, 350.0, 300, 400));
    }

    #[test]
    fn overlapping_samples_keep_count_min_mean_max_and_no_percentile() {
        let a = json!({"started_at": {"unix_us": 0u64}, "timeline": [entry(1.0, 1, summary(1, 100, 100.0, 100, 100))]});
        let b = json!({"started_at": {"unix_us": 0u64}, "timeline": [entry(1.0, 1, summary(3, 200, 300.0, 300, 400))]});
        let (_, timeline) = merge(&[a, b]).unwrap();
        assert_eq!(
            timeline[0]["latency_us"]["first_event"],
            json!({"count": 4, "min": 100, "mean": 250.0, "max": 400})
        );
    }

    #[test]
    fn without_a_timeline_in_every_report_there_is_none() {
        let a = json!({"started_at": {"unix_us": 0u64}, "timeline": [entry(1.0, 1, summary(0, 0, 0.0, 0, 0))]});
        assert!(merge(&[a.clone(), json!({"target": "x"})]).is_none());
        assert!(merge(&[a]).is_some());
    }
}

//! Several saved reports made one, exactly: histograms added (`report::histograms`), counters summed, and every
//! percentile and rate worked out again from the sums. Percentiles are never averaged: the mean of two p99s is the
//! p99 of no set of samples. No IO: `commands` reads the files.
//!
//! The reports are taken as runs that loaded the same target at the same time (one per machine): durations overlap,
//! so rates are over the longest one, and peaks add up.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::recorder;
use crate::report::delivery::{self, Delivery, Seen};
use crate::report::generator::Generator;
use crate::report::histograms;
use crate::report::{
    Arrivals, Breakpoint, Compressed, Engine, Events, Figures, FinishReasons, Latencies, LlmReport, Part, Report,
    ScaledSummary, StageReport, StepReport, Streams, Summary, TlsHandshakes, TokensByEnd, TurnReport, rate,
    success_rate, verdict,
};
use crate::slo::Slo;

/// Why reports cannot be merged.
#[derive(Debug, Clone, PartialEq)]
pub enum MergeError {
    /// The reports measured different things (`--force` merges them anyway).
    Incompatible(String),
    /// A report cannot be merged at all: no histograms, or one that does not decode or add.
    Unmergeable(String),
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MergeError::Incompatible(why) => write!(f, "{why} (--force merges them anyway)"),
            MergeError::Unmergeable(why) => f.write_str(why),
        }
    }
}

/// What differs between `a` and `b` that makes their sum meaningless: target, method, `--openai`, stage count.
pub fn difference(a: &Report, b: &Report) -> Option<String> {
    if a.target != b.target {
        return Some(format!("different targets: {} and {}", a.target, b.target));
    }
    let method = |r: &Report| r.request.as_ref().map(|q| q.method.clone());
    if method(a) != method(b) {
        return Some(format!("different methods: {:?} and {:?}", method(a), method(b)));
    }
    let openai = |r: &Report| r.request.as_ref().is_some_and(|q| q.openai.is_some()) || r.figures.llm.is_some();
    if openai(a) != openai(b) {
        return Some("one report ran with --openai and another without".to_string());
    }
    if a.stages.len() != b.stages.len() {
        return Some(format!("different --stages: {} stages and {}", a.stages.len(), b.stages.len()));
    }
    None
}

/// What is wrong with a set of `--shard` reports: shards of different splits, or a shard missing or given twice.
/// `None` when no report is a shard, or every shard of one split is there once.
pub fn shard_problem(reports: &[Report]) -> Option<String> {
    let shards: Vec<_> = reports.iter().filter_map(|r| r.shard).collect();
    let count = shards.first()?.count;
    if let Some(bad) = shards.iter().find(|s| s.count == 0 || s.index >= s.count) {
        return Some(format!("a report says it is shard {}/{}, which no split has", bad.index, bad.count));
    }
    if shards.len() != reports.len() || shards.iter().any(|s| s.count != count) {
        return Some("the reports are not the shards of one split (some are not shards, or N differs)".into());
    }
    let mut seen = vec![0usize; count];
    for s in &shards {
        seen[s.index] += 1;
    }
    let listed = |want: fn(usize) -> bool| -> Vec<String> {
        seen.iter().enumerate().filter(|(_, n)| want(**n)).map(|(k, _)| format!("{k}/{count}")).collect()
    };
    let (missing, doubled) = (listed(|n| n == 0), listed(|n| n > 1));
    match (missing.is_empty(), doubled.is_empty()) {
        (true, true) => None,
        _ => Some(format!("shards missing: [{}], given more than once: [{}]", missing.join(", "), doubled.join(", "))),
    }
}

/// The objectives a merge judges: `given`, else every distinct one the reports recorded.
pub fn slos_of(reports: &[Report], given: &[Slo]) -> Result<Vec<Slo>, String> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let mut slos: Vec<Slo> = Vec::new();
    for verdict in reports.iter().flat_map(|r| &r.slos) {
        if !slos.iter().any(|s| s.text == verdict.slo) {
            slos.push(Slo::parse(&verdict.slo)?);
        }
    }
    Ok(slos)
}

/// The reports as one, `slos` judged over the whole and each stage. `force`: merge despite a `difference`.
pub fn merge(reports: &[Report], slos: &[Slo], force: bool) -> Result<Report, MergeError> {
    let first = reports.first().ok_or_else(|| MergeError::Unmergeable("no reports to merge".to_string()))?;
    if !force && let Some(why) = reports[1..].iter().find_map(|r| difference(first, r)) {
        return Err(MergeError::Incompatible(why));
    }
    if !force && let Some(why) = shard_problem(reports) {
        return Err(MergeError::Incompatible(why));
    }
    let duration_s = reports.iter().map(|r| r.duration_s).fold(0.0, f64::max);
    let figures = merge_figures(&reports.iter().map(|r| &r.figures).collect::<Vec<_>>(), duration_s)?;
    let stage_count = reports.iter().map(|r| r.stages.len()).max().unwrap_or(0);
    let mut stages = Vec::with_capacity(stage_count);
    for index in 0..stage_count {
        let each: Vec<&StageReport> = reports.iter().filter_map(|r| r.stages.get(index)).collect();
        stages.push(merge_stage(&each, duration_s, slos, reports.iter().all(|r| r.shard.is_some()))?);
    }
    let breakpoint = Breakpoint::first(&stages, !slos.is_empty());
    let mut drivers: Vec<&str> = reports.iter().map(|r| r.engine.driver.as_str()).collect();
    drivers.dedup();
    Ok(Report {
        // The shards merged are the whole run.
        shard: None,
        start_at: None,
        parts: reports.iter().map(Part::of).collect(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        target: first.target.clone(),
        // The caller that knows the `merge` command line sets it.
        command_line: None,
        request: first.request.clone(),
        engine: Engine { driver: drivers.join("+"), threads: reports.iter().map(|r| r.engine.threads).sum() },
        duration_s,
        stopped_by_signal: reports.iter().any(|r| r.stopped_by_signal),
        slos: slos.iter().map(|slo| verdict::judge(slo, &figures)).collect(),
        figures,
        // Each run's memory is its own host's: a sum would describe no process.
        memory: None,
        stages,
        breakpoint,
        // The earliest start; the hosts, each once, in order. The timeline is merged from the reports' own JSON,
        // beside this (`merge_timeline`), and only when every report has one.
        started_at: reports.iter().map(|r| r.started_at.clone()).min_by_key(|s| s.unix_us).unwrap_or_default(),
        host: hosts(reports),
        timeline: Vec::new(),
    })
}

/// Each report's host once, in order, joined by `+`.
fn hosts(reports: &[Report]) -> String {
    let mut hosts: Vec<&str> = Vec::new();
    for host in reports.iter().map(|r| r.host.as_str()).filter(|h| !h.is_empty()) {
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts.join("+")
}

/// `shards`: the reports are the shards of one run, each of whose stage targets is the whole run's (kept, not
/// summed).
fn merge_stage(each: &[&StageReport], run_s: f64, slos: &[Slo], shards: bool) -> Result<StageReport, MergeError> {
    let first = each[0];
    // A stage's rates are over its own window, cut short where its run was.
    let duration_s = each.iter().map(|s| (s.end_s.min(run_s) - s.start_s).max(0.0)).fold(0.0, f64::max);
    let figures = merge_figures(&each.iter().map(|s| &s.figures).collect::<Vec<_>>(), duration_s)?;
    Ok(StageReport {
        stage: first.stage,
        target_streams: if shards {
            each.iter().map(|s| s.target_streams).max().unwrap_or(0)
        } else {
            each.iter().map(|s| s.target_streams).sum()
        },
        start_s: each.iter().map(|s| s.start_s).fold(f64::INFINITY, f64::min),
        end_s: each.iter().map(|s| s.end_s).fold(0.0, f64::max),
        open_at_end: each.iter().map(|s| s.open_at_end).sum(),
        slos: slos.iter().map(|slo| verdict::judge(slo, &figures)).collect(),
        figures,
    })
}

/// The histograms of every `figures`, added by name.
fn add_histograms(all: &[&Figures]) -> Result<BTreeMap<String, Histogram<u64>>, MergeError> {
    let mut sums: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for figures in all {
        let serialized = figures.histograms.as_ref().ok_or_else(|| {
            MergeError::Unmergeable(
                "a report carries no histograms (written before reports kept them): its percentiles cannot be merged"
                    .to_string(),
            )
        })?;
        for (name, text) in serialized {
            let h = histograms::decode(text).map_err(|e| MergeError::Unmergeable(format!("histogram {name}: {e}")))?;
            match sums.get_mut(name) {
                Some(sum) => sum.add(&h).map_err(|e| MergeError::Unmergeable(format!("histogram {name}: {e:?}")))?,
                None => {
                    sums.insert(name.clone(), h);
                }
            }
        }
    }
    Ok(sums)
}

fn merge_figures(all: &[&Figures], duration_s: f64) -> Result<Figures, MergeError> {
    let sums = add_histograms(all)?;
    let empty = Histogram::new(1).expect("a histogram of one significant digit");
    let summary = |name: &str| Summary::of(sums.get(name).unwrap_or(&empty));
    let total = |f: &dyn Fn(&Figures) -> u64| all.iter().map(|x| f(x)).sum::<u64>();
    let per_s = |n: u64| rate(n, duration_s);
    let streams = merge_streams(all);
    let received = total(&|f| f.events.received);
    // Each report's summed stream lifetime, read back from its events over it.
    let stream_time_s: f64 = all
        .iter()
        .filter(|f| f.events.per_stream_per_second > 0.0)
        .map(|f| f.events.received as f64 / f.events.per_stream_per_second)
        .sum();
    let bytes = total(&|f| f.events.bytes);
    let events = Events {
        received,
        bytes,
        per_second: per_s(received),
        bytes_per_second: per_s(bytes),
        per_stream_per_second: rate(received, stream_time_s),
        stalls: total(&|f| f.events.stalls),
        lost: total(&|f| f.events.lost),
        duplicates: total(&|f| f.events.duplicates),
        ids_not_numeric: total(&|f| f.events.ids_not_numeric),
    };
    let latency_us = Latencies {
        connect: summary("connect"),
        headers: summary("headers"),
        first_event: summary("first_event"),
        gap: summary("gap"),
        stream: summary("stream"),
        max_gap: summary("max_gap"),
        premature_end: summary("premature_end"),
        reconnect_delay: summary("reconnect_delay"),
        start_lag: summary("start_lag"),
        tls_handshake: summary("tls_handshake"),
        head_wait: summary("head_wait"),
        delivery_lag: summary("delivery_lag"),
    };
    let generator = merged_generator(all);
    let delivery = Delivery::judge(Seen {
        events: received,
        reads_with_events: total(&|f| f.delivery.reads_with_events),
        events_in_shared_reads: total(&|f| f.delivery.events_in_shared_reads),
        send_time: all.iter().find_map(|f| f.delivery.send_time.as_deref()),
        lag: &latency_us.delivery_lag,
        spread: &summary("read_spread"),
        events_without_send_time: total(&|f| f.delivery.events_without_send_time),
        negative_lag_events: total(&|f| f.delivery.negative_lag_events),
        compressed_streams: total(&|f| f.delivery.compressed_streams),
        cut_idle: sums.get("cut_idle").unwrap_or(&empty),
        cut_flowing: sums.get("cut_flowing").unwrap_or(&empty),
        generator_saturated: generator.as_ref().is_some_and(|g| g.saturated),
        head_wait: &latency_us.head_wait,
        first_event: &latency_us.first_event,
        stream: &latency_us.stream,
        reads_held_1s: sums.get("read_spread").map_or(0, |h| h.count_between(delivery::BUFFERED_FROM_US, u64::MAX)),
        events_timed_in_whole_seconds: total(&|f| f.delivery.events_timed_in_whole_seconds),
    });
    let llms: Vec<&LlmReport> = all.iter().filter_map(|f| f.llm.as_ref()).collect();
    let llm = (!llms.is_empty()).then(|| merge_llm(&llms, &sums, duration_s));
    let tls: Vec<&TlsHandshakes> = all.iter().filter_map(|f| f.tls_handshakes.as_ref()).collect();
    let tls_handshakes = (!tls.is_empty()).then(|| TlsHandshakes {
        full: tls.iter().map(|t| t.full).sum(),
        resumed: tls.iter().map(|t| t.resumed).sum(),
    });
    Ok(Figures {
        streams,
        events,
        latency_us,
        events_per_stream: summary("events_per_stream"),
        llm,
        tls_handshakes,
        delivery,
        generator,
        histograms: Some(sums.iter().map(|(name, h)| (name.clone(), histograms::encode(h))).collect()),
    })
}

/// The generators of several runs: saturated if any was; the worst figures, and every run's saturated intervals.
/// Absent when no run measured it.
fn merged_generator(all: &[&Figures]) -> Option<Generator> {
    let mut measured = all.iter().filter_map(|f| f.generator.as_ref()).peekable();
    measured.peek()?;
    let mut merged = Generator::default();
    for g in measured {
        merged.saturated |= g.saturated;
        merged.busy_max = merged.busy_max.max(g.busy_max);
        merged.loop_lag_max_us = merged.loop_lag_max_us.max(g.loop_lag_max_us);
        merged.saturated_intervals_count += g.saturated_intervals_count;
        merged.contended_intervals += g.contended_intervals;
        merged.late_starts += g.late_starts;
        merged.saturated_intervals.extend_from_slice(&g.saturated_intervals);
        merged.cores_busy.extend_from_slice(&g.cores_busy);
    }
    merged.saturated_intervals.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    Some(merged)
}

fn merge_streams(all: &[&Figures]) -> Streams {
    let total = |f: &dyn Fn(&Streams) -> u64| all.iter().map(|x| f(&x.streams)).sum::<u64>();
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    for (name, count) in all.iter().flat_map(|f| &f.streams.failures) {
        *failures.entry(name.clone()).or_default() += count;
    }
    let (started, failed, open_at_start) = (total(&|s| s.started), total(&|s| s.failed), total(&|s| s.open_at_start));
    // As `Figures::of` works it out, over the summed counts.
    let seen = started + open_at_start;
    let success_rate = success_rate(seen, failed);
    let arrivals: Vec<&Arrivals> = all.iter().filter_map(|f| f.streams.arrivals.as_ref()).collect();
    Streams {
        started,
        completed: total(&|s| s.completed),
        failed,
        interrupted: total(&|s| s.interrupted),
        failures,
        // The runs ran side by side: their peaks add up (a bound: they need not have peaked at once).
        peak_concurrent: total(&|s| s.peak_concurrent),
        reconnects: total(&|s| s.reconnects),
        users_stopped_by_204: total(&|s| s.users_stopped_by_204),
        redirects: total(&|s| s.redirects),
        stale_keepalive: total(&|s| s.stale_keepalive),
        streams_log_dropped: total(&|s| s.streams_log_dropped),
        success_rate,
        open_at_start,
        arrivals: (!arrivals.is_empty()).then(|| Arrivals {
            scheduled: arrivals.iter().map(|a| a.scheduled).sum(),
            started: arrivals.iter().map(|a| a.started).sum(),
            dropped: arrivals.iter().map(|a| a.dropped).sum(),
            late: arrivals.iter().map(|a| a.late).sum(),
            late_threshold_us: arrivals[0].late_threshold_us,
        }),
        compressed: Compressed {
            gzip: total(&|s| s.compressed.gzip),
            deflate: total(&|s| s.compressed.deflate),
            br: total(&|s| s.compressed.br),
        },
    }
}

/// The parts' streams by how they ended, summed; the mean is the merged totals'.
fn merge_by_end<'a>(parts: impl Iterator<Item = &'a TokensByEnd>) -> TokensByEnd {
    let mut sum = recorder::TokensByEnd::default();
    for part in parts {
        sum.add(&part.counts());
    }
    TokensByEnd::of(&sum)
}

fn merge_llm(all: &[&LlmReport], sums: &BTreeMap<String, Histogram<u64>>, duration_s: f64) -> LlmReport {
    let empty = Histogram::new(1).unwrap();
    let hist = |name: &str| sums.get(name).unwrap_or(&empty);
    let total = |f: &dyn Fn(&LlmReport) -> u64| all.iter().map(|x| f(x)).sum::<u64>();
    let per_s = |n: u64| rate(n, duration_s);
    let (output_tokens, input_tokens) = (total(&|l| l.output_tokens), total(&|l| l.input_tokens));
    let turn_count = all.iter().map(|l| l.turns.len()).max().unwrap_or(0);
    let turns = (0..turn_count)
        .map(|i| {
            let each: Vec<&TurnReport> = all.iter().filter_map(|l| l.turns.get(i)).collect();
            let streams: u64 = each.iter().map(|t| t.streams).sum();
            // The streams a turn's means are over: its completed ones (every one in reports written before that).
            let weight = |t: &TurnReport| t.completed.unwrap_or(t.streams);
            let weights: u64 = each.iter().map(|t| weight(t)).sum();
            // A mean's total is mean x count; the merged mean is the totals over the streams (never a mean of means).
            let mean = |f: &dyn Fn(&TurnReport) -> f64| {
                let sum: f64 = each.iter().map(|t| (f(t) * weight(t) as f64).round()).sum();
                if weights == 0 { 0.0 } else { sum / weights as f64 }
            };
            TurnReport {
                turn: i + 1,
                streams,
                failed: each.iter().map(|t| t.failed).sum(),
                completed: each.iter().all(|t| t.completed.is_some()).then_some(weights),
                ttft_us: Summary::of(hist(&format!("turn{}.ttft", i + 1))),
                itl_us: Summary::of(hist(&format!("turn{}.itl", i + 1))),
                input_tokens_mean: mean(&|t| t.input_tokens_mean),
                output_tokens_mean: mean(&|t| t.output_tokens_mean),
            }
        })
        .collect();
    let step_count = all.iter().map(|l| l.steps.len()).max().unwrap_or(0);
    let steps = (0..step_count)
        .map(|i| {
            let each: Vec<&StepReport> = all.iter().filter_map(|l| l.steps.get(i)).collect();
            StepReport {
                name: each[0].name.clone(),
                ok: each.iter().map(|s| s.ok).sum(),
                failed: each.iter().map(|s| s.failed).sum(),
                latency_us: Summary::of(hist(&format!("step{}.latency", i + 1))),
            }
        })
        .collect();
    LlmReport {
        ttft_us: Summary::of(hist("ttft")),
        first_reasoning_us: Summary::of(hist("first_reasoning")),
        itl_us: Summary::of(hist("itl")),
        tpot_us: Summary::of(hist("tpot")),
        generation_us: Summary::of(hist("generation")),
        output_tokens_per_s_per_stream: Summary::of(hist("output_tokens_per_s_per_stream")),
        tokens_per_chunk: ScaledSummary::of_hundredths(hist("tokens_per_chunk")),
        output_tokens,
        // Only when every part counted them: a sum over some parts would pass for the whole run's.
        output_tokens_per_stream: all
            .iter()
            .all(|l| l.output_tokens_per_stream.is_some())
            .then(|| Summary::of(hist("output_tokens_per_stream"))),
        by_end: all
            .iter()
            .map(|l| l.by_end.as_ref())
            .collect::<Option<Vec<_>>>()
            .map(|parts| merge_by_end(parts.into_iter())),
        output_tokens_estimated: all.iter().any(|l| l.output_tokens_estimated),
        input_tokens,
        reasoning_tokens: total(&|l| l.reasoning_tokens),
        output_tokens_per_s: per_s(output_tokens),
        input_tokens_per_s: per_s(input_tokens),
        streams_with_usage: total(&|l| l.streams_with_usage),
        streams_estimated: total(&|l| l.streams_estimated),
        usage_unreadable: total(&|l| l.usage_unreadable),
        output_chunks: total(&|l| l.output_chunks),
        role_only_chunks: total(&|l| l.role_only_chunks),
        unparsed_chunks: total(&|l| l.unparsed_chunks),
        missing_done: total(&|l| l.missing_done),
        finish_reasons: FinishReasons {
            stop: total(&|l| l.finish_reasons.stop),
            length: total(&|l| l.finish_reasons.length),
            other: total(&|l| l.finish_reasons.other),
        },
        turns,
        steps,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outcome::RunOutcome;
    use crate::recorder::{Failure, Recorder, StreamEnd};

    /// A one-second run's report: `first_event_us` one completed stream each, then `failed` refused streams.
    fn report(target: &str, first_event_us: &[u64], failed: u64, slos: &[Slo]) -> Report {
        let mut rec = Recorder::new();
        for &us in first_event_us {
            rec.stream_opened();
            rec.histograms.first_event_us.record(us).unwrap();
            rec.stream_closed(StreamEnd::Completed, us + 1_000, 1);
            rec.events += 1;
        }
        for _ in 0..failed {
            rec.stream_opened();
            rec.stream_closed(StreamEnd::Failed(Failure::ConnectRefused), 1_000, 0);
        }
        let outcome = RunOutcome::of(rec, Vec::new(), Duration::from_secs(1));
        Report::new(target, &outcome, slos)
    }

    #[test]
    fn merged_percentiles_are_those_of_every_sample_never_an_average() {
        // p50s 10 ms and 100 ms alone; together the p50 is a sample of the slow run (6 of 10 samples), not 55 ms.
        let a = report("t", &[10_000; 4], 0, &[]);
        let b = report("t", &[100_000; 6], 1, &[]);
        let merged = merge(&[a, b], &[], false).unwrap();
        let mut all = crate::recorder::histogram();
        all.record_n(10_000, 4).unwrap();
        all.record_n(100_000, 6).unwrap();
        assert_eq!(merged.figures.latency_us.first_event, Summary::of(&all));
        let s = &merged.figures.streams;
        assert_eq!((s.started, s.completed, s.failed, s.failures["connect_refused"]), (11, 10, 1, 1));
        assert_eq!(s.success_rate, 10.0 / 11.0);
        assert_eq!(merged.figures.events.received, 10);
        assert_eq!(merged.figures.events.per_second, 10.0);
    }

    #[test]
    fn recorded_objectives_are_judged_over_the_merged_figures() {
        let slo = Slo::parse("first_event.p50 < 50ms").unwrap();
        let a = report("t", &[10_000; 4], 0, std::slice::from_ref(&slo));
        let b = report("t", &[100_000; 6], 0, std::slice::from_ref(&slo));
        assert!(a.slos_pass() && !b.slos_pass());
        let slos = slos_of(&[a.clone(), b.clone()], &[]).unwrap();
        assert_eq!(slos, vec![slo]);
        assert!(!merge(&[a, b], &slos, false).unwrap().slos_pass());
    }

    #[test]
    fn different_targets_are_refused_unless_forced() {
        let (a, b) = (report("http://a/", &[1], 0, &[]), report("http://b/", &[1], 0, &[]));
        let err = merge(&[a.clone(), b.clone()], &[], false).unwrap_err();
        assert_eq!(err.to_string(), "different targets: http://a/ and http://b/ (--force merges them anyway)");
        assert_eq!(merge(&[a, b], &[], true).unwrap().figures.streams.started, 2);
    }

    #[test]
    fn streams_by_end_add_up_and_the_mean_is_the_totals() {
        let a = TokensByEnd {
            completed_streams: 3,
            completed_output_tokens: 30,
            completed_output_tokens_mean: 10.0,
            cut_streams: 1,
            cut_output_tokens: 4,
            failed_streams: 0,
            failed_output_tokens: 0,
        };
        let b = TokensByEnd {
            completed_streams: 1,
            completed_output_tokens: 50,
            completed_output_tokens_mean: 50.0,
            failed_streams: 2,
            failed_output_tokens: 7,
            ..TokensByEnd::default()
        };
        let m = merge_by_end([a, b].iter());
        assert_eq!((m.completed_streams, m.completed_output_tokens, m.completed_output_tokens_mean), (4, 80, 20.0));
        assert_eq!((m.cut_streams, m.cut_output_tokens, m.failed_streams, m.failed_output_tokens), (1, 4, 2, 7));
        assert_eq!(merge_by_end([].iter()), TokensByEnd::default());
    }

    #[test]
    fn a_report_without_histograms_cannot_be_merged() {
        let mut a = report("t", &[1], 0, &[]);
        a.figures.histograms = None;
        assert!(matches!(merge(&[a.clone(), a], &[], false), Err(MergeError::Unmergeable(_))));
    }
}

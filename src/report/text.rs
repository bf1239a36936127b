//! The human summary printed on stdout.

use std::fmt::Write;

use super::verdict::{Unit, Verdict};
use super::{Figures, LlmReport, Report, Summary};

/// Renders the report as aligned text: the whole run, then each stage alone.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ssebench {}  {}  driver {}, {} thread{}, {:.2} s",
        r.version,
        r.target,
        r.engine.driver,
        r.engine.threads,
        if r.engine.threads == 1 { "" } else { "s" },
        r.duration_s
    );
    let host = if r.host.is_empty() { "an unnamed host" } else { &r.host };
    let _ = writeln!(out, "Started   {} on {host}", r.started_at.rfc3339);
    if let Some(shard) = r.shard {
        let _ =
            writeln!(out, "Shard     {}/{} of a run split over {} processes", shard.index, shard.count, shard.count);
    }
    if let Some(at) = &r.start_at {
        let late = if at.late_us == 0 {
            "waited for it".to_string()
        } else {
            format!("{} late", crate::units::format_micros(at.late_us as f64, 1))
        };
        let _ = writeln!(out, "StartAt   {}: {late}", at.rfc3339);
    }
    for p in &r.parts {
        let shard = p.shard.map_or(String::from("-"), |s| format!("{}/{}", s.index, s.count));
        let saturated = match p.saturated {
            Some(true) => "generator saturated",
            Some(false) => "generator kept up",
            None => "generator not measured",
        };
        let _ = writeln!(
            out,
            "Part      shard {shard} on {}: {} streams started, {} failed, peak {}, {} events; {saturated}",
            if p.host.is_empty() { "an unnamed host" } else { &p.host },
            p.started,
            p.failed,
            p.peak_concurrent,
            p.events
        );
    }
    if let Some(req) = &r.request {
        if let Some(openai) = &req.openai {
            let _ = writeln!(out, "OpenAI    {openai}");
        }
        if !req.headers.is_empty() {
            let _ = writeln!(out, "Request   {} with {}", req.method, req.headers.join("; "));
        }
        if let Some(tls) = &req.tls {
            let verify = match tls.verify {
                true => format!("certificates verified against {}", tls.roots),
                false => "certificate verification OFF (--insecure): any certificate was accepted".to_string(),
            };
            let _ = writeln!(
                out,
                "TLS       {verify}; session resumption {}{}",
                if tls.resume { "on" } else { "off" },
                if tls.client_cert { "; client certificate presented" } else { "" }
            );
        }
    }
    let _ = writeln!(out);
    if r.stopped_by_signal {
        let _ = writeln!(out, "Stopped   by Ctrl-C: the figures cover the run up to then");
    }
    figures(&mut out, &r.figures);
    if let Some(m) = &r.memory {
        let _ = writeln!(
            out,
            "Memory    {:.1} MB resident before connecting, {:.1} MB peak ({}): {} B per stream at {} streams",
            m.rss_before_kib as f64 / 1024.0,
            m.rss_peak_kib as f64 / 1024.0,
            if m.peak_source == "vmhwm" { "kernel high-water mark" } else { "sampled every 50 ms" },
            m.per_stream_bytes,
            r.figures.streams.peak_concurrent
        );
    }
    let _ = writeln!(out);
    latencies(&mut out, &r.figures);
    verdicts(&mut out, &r.slos);
    for stage in &r.stages {
        let _ = writeln!(
            out,
            "\n== Stage {}: {} streams, {:.1} s to {:.1} s; {} open at start, {} at end",
            stage.stage,
            stage.target_streams,
            stage.start_s,
            stage.end_s,
            stage.figures.streams.open_at_start,
            stage.open_at_end
        );
        figures(&mut out, &stage.figures);
        let _ = writeln!(out);
        latencies(&mut out, &stage.figures);
        verdicts(&mut out, &stage.slos);
    }
    if !r.stages.is_empty() {
        stage_table(&mut out, r);
    }
    let warnings = super::warnings::of(r);
    if !warnings.is_empty() {
        let _ = writeln!(out);
    }
    for warning in warnings {
        let _ = writeln!(out, "Warning   {warning}");
    }
    out
}

/// The streams, events and failures lines.
fn figures(out: &mut String, f: &Figures) {
    let s = &f.streams;
    let e = &f.events;
    let _ = writeln!(
        out,
        "Streams   {} started, {} completed, {} failed, {} still open when stopped; peak concurrent {}; {} reconnects; {} redirects; success {:.2}%",
        s.started,
        s.completed,
        s.failed,
        s.interrupted,
        s.peak_concurrent,
        s.reconnects,
        s.redirects,
        s.success_rate * 100.0
    );
    if s.users_stopped_by_204 > 0 {
        let _ = writeln!(
            out,
            "Stopped   {} users stopped reconnecting: the server answered 204 No Content",
            s.users_stopped_by_204
        );
    }
    if let Some(a) = &s.arrivals {
        let _ = writeln!(
            out,
            "Arrivals  {} scheduled, {} started, {} dropped (--max-streams open), {} late (> {})",
            a.scheduled,
            a.started,
            a.dropped,
            a.late,
            duration(a.late_threshold_us as f64)
        );
    }
    let _ = writeln!(
        out,
        "Events    {} received, {:.1}/s, {:.2}/s per stream; {:.2} MB received, {:.2} MB/s; {} stalls, {} lost, {} duplicated",
        e.received,
        e.per_second,
        e.per_stream_per_second,
        e.bytes as f64 / 1e6,
        e.bytes_per_second / 1e6,
        e.stalls,
        e.lost,
        e.duplicates
    );
    if e.ids_not_numeric > 0 {
        let _ = writeln!(
            out,
            "Ids       {} events had an id that is not a decimal number: --verify-seq could not check them",
            e.ids_not_numeric
        );
    }
    let c = &s.compressed;
    if c.total() > 0 {
        let _ = writeln!(
            out,
            "Encoding  {} streams arrived compressed: gzip {}, deflate {}, br {}",
            c.total(),
            c.gzip,
            c.deflate,
            c.br
        );
    }
    delivery(out, f);
    generator(out, f);
    if let Some(tls) = &f.tls_handshakes {
        let _ = writeln!(
            out,
            "TLS       {} handshakes: {} full, {} resumed",
            tls.full + tls.resumed,
            tls.full,
            tls.resumed
        );
    }
    if s.stale_keepalive > 0 {
        let _ = writeln!(
            out,
            "Stale     {} kept-alive connections had bytes or an EOF waiting before reuse: closed, not reused",
            s.stale_keepalive
        );
    }
    if s.streams_log_dropped > 0 {
        let _ = writeln!(
            out,
            "StreamLog {} ended streams left out of --streams-log (a core's buffer was full or the writer behind)",
            s.streams_log_dropped
        );
    }
    let failed: Vec<String> = s.failures.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(out, "Failures  {}", if failed.is_empty() { "none".to_string() } else { failed.join(", ") });
}

/// Whether the generator kept up; the intervals where it did not, at the run's level.
fn generator(out: &mut String, f: &Figures) {
    let Some(g) = &f.generator else { return };
    let cores: Vec<String> = g.cores_busy.iter().map(|b| format!("{:.0}%", b * 100.0)).collect();
    let cores = if cores.is_empty() { String::new() } else { format!("; each core over the run {}", cores.join(", ")) };
    let pct = g.busy_max * 100.0;
    let lag = crate::units::format_micros(g.loop_lag_max_us as f64, 1);
    if g.saturated {
        let _ = writeln!(
            out,
            "Generator saturated: latencies in these intervals include ssebench's own queueing (busiest core {pct:.0}% \
             busy, timers up to {lag} late{}{cores})",
            if g.late_starts > 0 { format!(", {} starts behind schedule", g.late_starts) } else { String::new() }
        );
    } else {
        let _ = writeln!(
            out,
            "Generator kept up: busiest core {pct:.0}% busy in an interval, timers at most {lag} late{cores}"
        );
    }
    if let Some(contention) = g.contention() {
        let _ = writeln!(out, "          {contention}");
    }
    if !g.saturated_intervals.is_empty() {
        let at: Vec<String> = g
            .saturated_intervals
            .iter()
            .take(10)
            .map(|i| {
                format!(
                    "{:.0}s ({:.0}%, {})",
                    i.t_s,
                    i.busy * 100.0,
                    crate::units::format_micros(i.loop_lag_us as f64, 1)
                )
            })
            .collect();
        let more = g.saturated_intervals.len().saturating_sub(10);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        let _ = writeln!(out, "          intervals ending at {}{more}", at.join(", "));
    }
}

/// The delivery verdict, when there is something to say: a judgement, send times asked for, or compression; and
/// streams cut at one age.
fn delivery(out: &mut String, f: &Figures) {
    let d = &f.delivery;
    // A report from before delivery was judged has no verdict at all: nothing to say.
    if d.verdict.is_empty() {
        return;
    }
    for cut in &d.cuts {
        let how = if cut.idle { "while idle (no event for a second or more)" } else { "while events flowed" };
        let _ = writeln!(
            out,
            "Cuts      {} streams cut at ~{:.1} s (±{:.1} s) {how}: an {} timeout between you and the server",
            cut.count,
            cut.age_s,
            cut.spread_s,
            if cut.idle { "idle" } else { "maximum-duration" }
        );
    }
    // Without send times, the line is worth printing when several events came per read (the evidence says so).
    if d.verdict == "unknown" && d.send_time.is_none() && d.compressed_streams == 0 && d.events_per_read < 5.0 {
        return;
    }
    let _ = writeln!(out, "Delivery  {}: {}", d.verdict, d.evidence);
    if let Some(source) = &d.send_time {
        let _ = writeln!(
            out,
            "          send times from {source}, read against this host's clock: from another host the lag includes \
             the two clocks' offset"
        );
    }
    if d.events_without_send_time > 0 {
        let _ = writeln!(
            out,
            "          {} events carried no readable send time (none, or no Unix time from 2000 on)",
            d.events_without_send_time
        );
    }
    if d.negative_lag_events > 0 {
        let _ = writeln!(
            out,
            "          {} events were received before their send time (the sender's clock is ahead): lag 0 recorded",
            d.negative_lag_events
        );
    }
    if d.compressed_streams > 0 {
        let _ = writeln!(
            out,
            "          {} event streams arrived compressed: whoever compresses them holds bytes to do it (a buffering risk)",
            d.compressed_streams
        );
    }
}

fn latencies(out: &mut String, f: &Figures) {
    let _ = writeln!(
        out,
        "{:<14}{:>9}{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}",
        "", "count", "min", "mean", "p50", "p90", "p99", "p99.9", "max"
    );
    let l = &f.latency_us;
    row(out, "connect", &l.connect, duration);
    if f.tls_handshakes.is_some() || l.tls_handshake.count > 0 {
        row(out, "tls handshake", &l.tls_handshake, duration);
    }
    for (name, h) in [
        ("headers", &l.headers),
        ("first event", &l.first_event),
        ("head wait", &l.head_wait),
        ("event gap", &l.gap),
        ("stream", &l.stream),
        ("max gap", &l.max_gap),
        ("ended early", &l.premature_end),
        ("reconnect wait", &l.reconnect_delay),
    ] {
        row(out, name, h, duration);
    }
    if f.streams.arrivals.is_some() {
        row(out, "start lag", &l.start_lag, duration);
    }
    if l.delivery_lag.count > 0 {
        row(out, "delivery lag", &l.delivery_lag, duration);
    }
    row(out, "events/stream", &f.events_per_stream, |v| format!("{v:.0}"));
    if let Some(llm) = &f.llm {
        llm_tables(out, llm);
    }
}

/// `--openai`: tokens, the token timings, and per turn and step of a `--scenario`.
fn llm_tables(out: &mut String, l: &LlmReport) {
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Tokens    {} output{} ({:.1}/s), {} input ({:.1}/s), {} reasoning; usage from {} streams, {} counted by chunks ({} with a usage that is no token count)",
        l.output_tokens,
        if l.output_tokens_estimated { " (ESTIMATED: completed streams without usage)" } else { "" },
        l.output_tokens_per_s,
        l.input_tokens,
        l.input_tokens_per_s,
        l.reasoning_tokens,
        l.streams_with_usage,
        l.streams_estimated,
        l.usage_unreadable
    );
    if let (Some(e), Some(per_stream)) = (&l.by_end, &l.output_tokens_per_stream) {
        let _ = writeln!(
            out,
            "Answers   {} completed with {:.1} output tokens each (p50 {}, max {}); apart from them: {} cut by the run's end with {} tokens, {} failed with {}",
            e.completed_streams,
            e.completed_output_tokens_mean,
            per_stream.p50,
            per_stream.max,
            e.cut_streams,
            e.cut_output_tokens,
            e.failed_streams,
            e.failed_output_tokens
        );
    }
    let _ = writeln!(
        out,
        "Chunks    {} with output, {} role-only, {} not JSON; {} streams without [DONE]; finish: {} stop, {} length, {} other",
        l.output_chunks,
        l.role_only_chunks,
        l.unparsed_chunks,
        l.missing_done,
        l.finish_reasons.stop,
        l.finish_reasons.length,
        l.finish_reasons.other
    );
    let _ = writeln!(
        out,
        "{:<14}{:>9}{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}",
        "", "count", "min", "mean", "p50", "p90", "p99", "p99.9", "max"
    );
    for (name, h) in [
        ("TTFT", &l.ttft_us),
        ("first reason", &l.first_reasoning_us),
        ("ITL", &l.itl_us),
        ("TPOT", &l.tpot_us),
        ("generation", &l.generation_us),
    ] {
        row(out, name, h, duration);
    }
    row(out, "out tok/s", &l.output_tokens_per_s_per_stream, |v| format!("{v:.0}"));
    if let Some(per_stream) = &l.output_tokens_per_stream {
        row(out, "out tokens", per_stream, |v| format!("{v:.0}"));
    }
    let t = &l.tokens_per_chunk;
    if t.count > 0 {
        let _ = writeln!(
            out,
            "{:<14}{:>9}{:>11.2}{:>11.2}{:>11.2}{:>11.2}{:>11.2}{:>11}{:>11.2}",
            "tokens/chunk", t.count, t.min, t.mean, t.p50, t.p90, t.p99, "", t.max
        );
    }
    if !l.steps.is_empty() {
        let _ = writeln!(out, "\n{:<14}{:>9}{:>9}{:>11}{:>11}{:>11}", "step", "ok", "failed", "p50", "p99", "max");
        for s in &l.steps {
            let _ = writeln!(
                out,
                "{:<14}{:>9}{:>9}{:>11}{:>11}{:>11}",
                s.name,
                s.ok,
                s.failed,
                duration(s.latency_us.p50 as f64),
                duration(s.latency_us.p99 as f64),
                duration(s.latency_us.max as f64)
            );
        }
    }
    if !l.turns.is_empty() {
        // The token means are over each turn's completed streams (every stream's, in reports before that).
        let _ = writeln!(
            out,
            "\n{:>5}{:>9}{:>9}{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}",
            "turn", "streams", "failed", "completed", "TTFT p50", "TTFT p99", "ITL p50", "in tok", "out tok"
        );
        for t in &l.turns {
            let _ = writeln!(
                out,
                "{:>5}{:>9}{:>9}{:>11}{:>11}{:>11}{:>11}{:>11.1}{:>11.1}",
                t.turn,
                t.streams,
                t.failed,
                t.completed.map_or("-".to_string(), |n| n.to_string()),
                duration(t.ttft_us.p50 as f64),
                duration(t.ttft_us.p99 as f64),
                duration(t.itl_us.p50 as f64),
                t.input_tokens_mean,
                t.output_tokens_mean
            );
        }
    }
}

fn verdicts(out: &mut String, slos: &[Verdict]) {
    if !slos.is_empty() {
        let _ = writeln!(out);
    }
    for v in slos {
        let _ = writeln!(out, "SLO  {}  {}  (measured {})", if v.pass { "pass" } else { "FAIL" }, v.slo, measured(v));
    }
}

/// One line per stage, then the breakpoint.
fn stage_table(out: &mut String, r: &Report) {
    let _ = writeln!(out, "\n== Stages");
    let _ = writeln!(
        out,
        "{:>5}{:>9}{:>8}{:>9}{:>9}{:>8}{:>10}{:>12}{:>12}{:>12}",
        "stage", "target", "peak", "started", "failed", "success", "events/s", "first p50", "first p99", "gap p99"
    );
    for stage in &r.stages {
        let (s, l) = (&stage.figures.streams, &stage.figures.latency_us);
        let _ = writeln!(
            out,
            "{:>5}{:>9}{:>8}{:>9}{:>9}{:>7.2}%{:>10.1}{:>12}{:>12}{:>12}",
            stage.stage,
            stage.target_streams,
            s.peak_concurrent,
            s.started,
            s.failed,
            s.success_rate * 100.0,
            stage.figures.events.per_second,
            duration(l.first_event.p50 as f64),
            duration(l.first_event.p99 as f64),
            duration(l.gap.p99 as f64)
        );
    }
    let _ = match &r.breakpoint {
        Some(b) => writeln!(out, "Breakpoint  stage {} ({} streams): {}", b.stage, b.target_streams, b.reason),
        None => writeln!(out, "Breakpoint  none: every stage held"),
    };
}

fn row(out: &mut String, name: &str, h: &Summary, fmt: impl Fn(f64) -> String) {
    if h.count == 0 {
        let _ = writeln!(out, "{name:<14}{:>9}{:>11}", 0, "-");
        return;
    }
    let _ = writeln!(
        out,
        "{name:<14}{:>9}{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}{:>11}",
        h.count,
        fmt(h.min as f64),
        fmt(h.mean),
        fmt(h.p50 as f64),
        fmt(h.p90 as f64),
        fmt(h.p99 as f64),
        fmt(h.p999 as f64),
        fmt(h.max as f64)
    );
}

/// A verdict's measured value in its unit.
fn measured(v: &Verdict) -> String {
    match v.unit {
        Unit::Fraction => format!("{:.3}%", v.measured * 100.0),
        Unit::Number => format!("{:.1}", v.measured),
        Unit::Microseconds => duration(v.measured),
    }
}

/// Microseconds as a short human duration.
fn duration(us: f64) -> String {
    crate::units::format_micros(us, 2)
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_pick_a_unit() {
        assert_eq!(duration(999.0), "999us");
        assert_eq!(duration(10_240.0), "10.24ms");
        assert_eq!(duration(2_500_000.0), "2.50s");
    }
}

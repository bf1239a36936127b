//! What the generator warns about in its own run: figures a reader should not trust as they stand (the generator fell
//! behind, dropped records, sampled its memory) or settings that change what was measured. Worked out from the
//! finished report, so a saved or merged report shows the same ones; the text report and `--html` both list them.

use super::Report;

/// The report's warnings, each one sentence, in a fixed order; empty when there is nothing to say.
pub fn of(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let s = &r.figures.streams;
    if r.stopped_by_signal {
        out.push(format!("Stopped by Ctrl-C after {:.1} s: the figures cover the run up to then.", r.duration_s));
    }
    if let Some(a) = &s.arrivals {
        if a.late > 0 {
            out.push(format!(
                "{} of {} arrivals started more than {} ms after their schedule: the generator fell behind the \
                 arrival rate (see the start lag).",
                a.late,
                a.started,
                a.late_threshold_us / 1000
            ));
        }
        if a.dropped > 0 {
            out.push(format!(
                "{} of {} scheduled arrivals found --max-streams streams open and never started.",
                a.dropped, a.scheduled
            ));
        }
    }
    if s.streams_log_dropped > 0 {
        out.push(format!(
            "{} ended streams are missing from --streams-log (its writer fell behind).",
            s.streams_log_dropped
        ));
    }
    if s.compressed.total() > 0 {
        out.push(format!(
            "{} streams arrived compressed (gzip {}, deflate {}, br {}): a server or proxy that compresses an event \
             stream may hold events back to fill its blocks.",
            s.compressed.total(),
            s.compressed.gzip,
            s.compressed.deflate,
            s.compressed.br
        ));
    }
    if let Some(llm) = r.figures.llm.as_ref().filter(|l| l.output_tokens_estimated) {
        // `streams_estimated` also holds streams cut before their usage chunk: say so, not "sent no usage".
        out.push(format!(
            "Completed streams sent no usage: {} streams' output tokens are their output chunks (estimated), those \
             of streams cut before their usage included.",
            llm.streams_estimated
        ));
    }
    if r.request.as_ref().and_then(|q| q.tls.as_ref()).is_some_and(|t| !t.verify) {
        out.push("Certificate verification was off (--insecure): any certificate was accepted.".to_string());
    }
    if r.memory.as_ref().is_some_and(|m| m.peak_source == "sampled") {
        out.push(
            "The memory peak was sampled every 50 ms (the kernel's high-water mark could not be reset): a shorter \
             spike is missed."
                .to_string(),
        );
    }
    out
}

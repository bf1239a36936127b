//! One LLM stream's token timeline, sans IO: each chunk's facts in (with the time its read returned), TTFT, ITL,
//! TPOT and token counts out to the core's [`LlmRecorder`].
//!
//! Definitions (the README states them for users):
//! - an *output chunk* carries answer text (`delta.content`, `text`) or reasoning text; a role-only chunk does not;
//! - TTFT is request to the first chunk with answer text; reasoning has its own first-token figure;
//! - ITL is every gap between two output chunks, one sample per gap, pooled over streams;
//! - output tokens are `usage.completion_tokens`, or where a stream sent no usage (or none that can be read: a count
//!   that is not a non-negative integer up to 2^32 - 1), its output chunks (estimated).

use std::time::Instant;

use crate::llm::chunk::{self, Capture, Finish, Usage};
use crate::recorder::LlmRecorder;
use crate::units::micros_between;

/// What a chunk means for the stream carrying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkVerdict {
    Continue,
    /// An error object inside the stream: the stream fails as `llm_error`.
    Error,
}

/// One stream's own token figures, as `Timeline::finish` counted them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTokens {
    /// Time to the first content token, µs; `None` if none came.
    pub ttft_us: Option<u64>,
    /// `usage.prompt_tokens`; `None` without a readable usage.
    pub input_tokens: Option<u64>,
    /// `usage.completion_tokens`, or the output chunks where there was no readable usage.
    pub output_tokens: u64,
    pub from_usage: bool,
}

/// Per-user timeline state, reused from stream to stream (allocated once, with its user).
#[derive(Debug)]
pub struct Timeline {
    request_start: Instant,
    first_output: Option<Instant>,
    /// Time to the first content token, µs (`--streams-log` reads it per stream).
    ttft_us: Option<u64>,
    last_output: Instant,
    answered: bool,
    reasoned: bool,
    output_chunks: u64,
    usage: Option<Usage>,
    finish: Option<Finish>,
    done: bool,
    /// `--scenario`: this stream's turn (index into the recorder's turns), or None.
    turn: Option<usize>,
    /// `--scenario`: the answer text, kept to send back as context; `capture_limit` 0 keeps none.
    pub answer: Vec<u8>,
    capture_limit: usize,
}

impl Timeline {
    /// `capture_limit`: bytes of answer text kept per stream (0: none, outside multi-turn journeys).
    pub fn new(capture_limit: usize) -> Timeline {
        Timeline::fresh(Instant::now(), None, Vec::with_capacity(capture_limit.min(4096)), capture_limit)
    }

    /// A timeline with nothing seen since `now`.
    fn fresh(now: Instant, turn: Option<usize>, answer: Vec<u8>, capture_limit: usize) -> Timeline {
        Timeline {
            request_start: now,
            first_output: None,
            ttft_us: None,
            last_output: now,
            answered: false,
            reasoned: false,
            output_chunks: 0,
            usage: None,
            finish: None,
            done: false,
            turn,
            answer,
            capture_limit,
        }
    }

    /// `--scenario`: the turn the next streams belong to (index 0 is turn 1); it stays until set again.
    pub fn set_turn(&mut self, turn: Option<usize>) {
        self.turn = turn;
    }

    /// A new stream's request starts at `now` (its scheduled start in the open model).
    pub fn begin(&mut self, now: Instant) {
        // The answer buffer keeps its capacity from stream to stream.
        let mut answer = std::mem::take(&mut self.answer);
        answer.clear();
        *self = Timeline::fresh(now, self.turn, answer, self.capture_limit);
    }

    /// One event's `data`, dispatched from a read that returned at `now`.
    pub fn on_data(&mut self, now: Instant, data: &[u8], rec: &mut LlmRecorder) -> ChunkVerdict {
        let capture = (self.capture_limit > 0).then_some(Capture { text: &mut self.answer, limit: self.capture_limit });
        let info = match chunk::scan_capturing(data, capture) {
            Ok(info) => info,
            Err(_) => {
                rec.unparsed_chunks += 1;
                return ChunkVerdict::Continue;
            }
        };
        if info.done {
            self.done = true;
            return ChunkVerdict::Continue;
        }
        if info.role_only {
            rec.role_chunks += 1;
        }
        let since_request = micros_between(self.request_start, now);
        if info.content_bytes > 0 && !self.answered {
            self.answered = true;
            self.ttft_us = Some(since_request);
            rec.ttft_us.saturating_record(since_request);
            if let Some(turn) = self.turn.and_then(|t| rec.turns.get_mut(t)) {
                turn.ttft_us.saturating_record(since_request);
            }
        }
        if info.reasoning_bytes > 0 && !self.reasoned {
            self.reasoned = true;
            rec.first_reasoning_us.saturating_record(since_request);
        }
        if info.content_bytes > 0 || info.reasoning_bytes > 0 {
            if self.first_output.is_some() {
                let gap_us = micros_between(self.last_output, now);
                rec.itl_us.saturating_record(gap_us);
                if let Some(turn) = self.turn.and_then(|t| rec.turns.get_mut(t)) {
                    turn.itl_us.saturating_record(gap_us);
                }
            } else {
                self.first_output = Some(now);
            }
            self.last_output = now;
            self.output_chunks += 1;
            rec.output_chunks += 1;
        }
        if info.finish.is_some() {
            self.finish = info.finish;
        }
        if info.usage.is_some() {
            self.usage = info.usage;
        }
        if info.error { ChunkVerdict::Error } else { ChunkVerdict::Continue }
    }

    /// The stream ended at `now`; `completed`: by its own framing, not cut or failed. Per-stream rates are taken
    /// from completed streams only: a cut stream's rate says when it was cut, not how fast the model ran.
    /// Returns the stream's own token figures (for `--streams-log`).
    pub fn finish(&mut self, now: Instant, completed: bool, failed: bool, rec: &mut LlmRecorder) -> StreamTokens {
        // A usage with a count that is no count (-1, 5.0, "5", 10^19) is set aside whole, as if the stream had
        // sent none: its other numbers come from the same broken accounting.
        let unreadable = self.usage.is_some_and(|u| u.is_unreadable());
        rec.usage_unreadable += u64::from(unreadable);
        let usage = self.usage.filter(|_| !unreadable);
        let (output_tokens, estimated) = match usage.and_then(|u| u.completion_tokens.count()) {
            Some(tokens) => (tokens, false),
            None => (self.output_chunks, true),
        };
        let input_tokens = usage.and_then(|u| u.prompt_tokens.count()).unwrap_or(0);
        let reasoning_tokens = usage.and_then(|u| u.reasoning_tokens.count()).unwrap_or(0);
        debug_assert!(estimated || output_tokens <= chunk::MAX_TOKENS);
        // Summed over a long run, even counts under 2^32 each could overflow: saturate.
        rec.output_tokens = rec.output_tokens.saturating_add(output_tokens);
        rec.input_tokens = rec.input_tokens.saturating_add(input_tokens);
        rec.reasoning_tokens = rec.reasoning_tokens.saturating_add(reasoning_tokens);
        if estimated {
            rec.estimated_streams += u64::from(self.output_chunks > 0);
        } else {
            rec.usage_streams += 1;
        }
        match self.finish {
            Some(Finish::Stop) => rec.finish_stop += 1,
            Some(Finish::Length) => rec.finish_length += 1,
            Some(_) => rec.finish_other += 1,
            None => {}
        }
        let ended = &mut rec.ended;
        let (streams, tokens) = match (completed, failed) {
            (true, _) => (&mut ended.completed_streams, &mut ended.completed_output_tokens),
            (false, true) => (&mut ended.failed_streams, &mut ended.failed_output_tokens),
            (false, false) => (&mut ended.cut_streams, &mut ended.cut_output_tokens),
        };
        *streams += 1;
        *tokens = tokens.saturating_add(output_tokens);
        if let Some(turn) = self.turn.and_then(|t| rec.turns.get_mut(t)) {
            turn.streams += 1;
            turn.failed += u64::from(failed);
            // A turn's mean tokens are its completed streams': a cut answer's count is no answer's length.
            if completed {
                turn.completed += 1;
                turn.input_tokens = turn.input_tokens.saturating_add(input_tokens);
                turn.output_tokens = turn.output_tokens.saturating_add(output_tokens);
            }
        }
        let tokens = StreamTokens {
            ttft_us: self.ttft_us,
            input_tokens: usage.and_then(|u| u.prompt_tokens.count()),
            output_tokens,
            from_usage: !estimated,
        };
        if !completed {
            return tokens;
        }
        rec.missing_done += u64::from(!self.done);
        rec.completed_without_usage += u64::from(estimated);
        rec.output_tokens_per_stream.saturating_record(output_tokens);
        if let Some(first) = self.first_output {
            let generation_us = micros_between(first, self.last_output);
            rec.generation_us.saturating_record(generation_us);
            if output_tokens >= 2 {
                rec.tpot_us.saturating_record(generation_us / (output_tokens - 1));
            }
            rec.tokens_per_chunk_x100.saturating_record(output_tokens.saturating_mul(100) / self.output_chunks);
            let stream_us = micros_between(self.request_start, now).max(1);
            rec.output_tokens_per_s.saturating_record(output_tokens.saturating_mul(1_000_000) / stream_us);
        }
        tokens
    }

    /// The stream sent `[DONE]`.
    #[cfg(test)]
    pub fn saw_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn chat(content: &str) -> String {
        format!(r#"{{"choices":[{{"index":0,"delta":{{"content":"{content}"}},"finish_reason":null}}]}}"#)
    }

    const ROLE: &str = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
    const FINISH: &str = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
    const USAGE: &str = r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":6}}"#;

    /// Feeds `(ms after the request, payload)` and finishes the stream at the last time.
    fn run(events: &[(u64, &str)], turn: Option<usize>) -> (LlmRecorder, Timeline) {
        let mut rec = LlmRecorder::new(2, 0);
        let mut timeline = Timeline::new(0);
        let t0 = Instant::now();
        timeline.set_turn(turn);
        timeline.begin(t0);
        for &(ms, data) in events {
            assert_eq!(
                timeline.on_data(t0 + Duration::from_millis(ms), data.as_bytes(), &mut rec),
                ChunkVerdict::Continue
            );
        }
        let end = t0 + Duration::from_millis(events.last().map_or(0, |e| e.0));
        timeline.finish(end, true, false, &mut rec);
        (rec, timeline)
    }

    #[test]
    fn ttft_counts_the_first_content_chunk_not_the_role_chunk() {
        let (a, b, c) = (chat("Hi"), chat(" there"), chat(" you"));
        let events = [
            (5, ROLE),
            (40, a.as_str()),
            (60, b.as_str()),
            (90, c.as_str()),
            (91, FINISH),
            (92, USAGE),
            (93, "[DONE]"),
        ];
        let (rec, timeline) = run(&events, Some(1));
        assert_eq!((rec.ttft_us.len(), rec.ttft_us.min()), (1, 40_000));
        assert_eq!(rec.role_chunks, 1);
        // Gaps 20 and 30 ms between the three output chunks; the finish, usage and [DONE] chunks are no tokens.
        assert_eq!((rec.itl_us.len(), rec.itl_us.min()), (2, 20_000));
        assert!(rec.itl_us.equivalent(rec.itl_us.max(), 30_000));
        assert_eq!((rec.output_tokens, rec.input_tokens, rec.usage_streams, rec.estimated_streams), (6, 7, 1, 0));
        // 50 ms of decode over 5 further tokens.
        assert!(rec.generation_us.equivalent(rec.generation_us.max(), 50_000));
        assert!(rec.tpot_us.equivalent(rec.tpot_us.max(), 10_000));
        assert_eq!(rec.tokens_per_chunk_x100.max(), 200);
        // 6 tokens over the 93 ms stream.
        assert_eq!(rec.output_tokens_per_s.max(), 64);
        assert_eq!((rec.finish_stop, rec.missing_done), (1, 0));
        assert!(timeline.saw_done());
        let turn = &rec.turns[1];
        assert_eq!((turn.streams, turn.ttft_us.min(), turn.itl_us.len(), turn.output_tokens), (1, 40_000, 2, 6));
    }

    /// Completed, cut and failed streams' tokens are kept apart; the per-stream histogram and a turn's means are the
    /// completed streams' alone, so a cut answer's few chunks do not read as a short answer.
    #[test]
    fn tokens_are_apart_by_how_the_stream_ended() {
        let mut rec = LlmRecorder::new(1, 0);
        let mut timeline = Timeline::new(0);
        timeline.set_turn(Some(0));
        let t0 = Instant::now();
        let token = chat("t");
        // (content chunks, usage sent, completed, failed)
        for (chunks, usage, completed, failed) in
            [(6, true, true, false), (6, true, true, false), (2, false, false, false), (3, false, false, true)]
        {
            timeline.begin(t0);
            for i in 0..chunks {
                timeline.on_data(t0 + Duration::from_millis(i + 1), token.as_bytes(), &mut rec);
            }
            if usage {
                timeline.on_data(t0 + Duration::from_millis(10), USAGE.as_bytes(), &mut rec);
            }
            timeline.finish(t0 + Duration::from_millis(11), completed, failed, &mut rec);
        }
        let e = rec.ended;
        assert_eq!((e.completed_streams, e.completed_output_tokens), (2, 12));
        assert_eq!((e.cut_streams, e.cut_output_tokens, e.failed_streams, e.failed_output_tokens), (1, 2, 1, 3));
        assert_eq!(rec.output_tokens, 17);
        let h = &rec.output_tokens_per_stream;
        assert_eq!((h.len(), h.min(), h.max()), (2, 6, 6));
        let turn = &rec.turns[0];
        assert_eq!((turn.streams, turn.failed, turn.completed), (4, 1, 2));
        assert_eq!((turn.output_tokens, turn.input_tokens), (12, 14));
        // Merged per core, the split adds up.
        let mut sum = rec.empty_like();
        sum.merge(&rec);
        sum.merge(&rec);
        assert_eq!(
            (sum.ended.completed_streams, sum.ended.cut_output_tokens, sum.output_tokens_per_stream.len()),
            (4, 4, 4)
        );
        assert_eq!(sum.turns[0].completed, 4);
    }

    #[test]
    fn without_usage_output_tokens_are_the_output_chunks_and_marked_estimated() {
        let (a, b) = (chat("a"), chat("b"));
        let (rec, _) = run(&[(1, ROLE), (2, a.as_str()), (3, b.as_str()), (4, FINISH)], None);
        assert_eq!((rec.output_tokens, rec.input_tokens, rec.usage_streams, rec.estimated_streams), (2, 0, 0, 1));
        assert_eq!(rec.completed_without_usage, 1);
        assert_eq!(rec.missing_done, 1);
    }

    #[test]
    fn reasoning_has_its_own_first_token_and_counts_in_itl() {
        let reasoning = r#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#;
        let answer = chat("yes");
        let (rec, _) = run(&[(10, reasoning), (20, reasoning), (50, answer.as_str())], None);
        assert_eq!(rec.first_reasoning_us.min(), 10_000);
        assert!(rec.ttft_us.equivalent(rec.ttft_us.min(), 50_000));
        assert_eq!((rec.itl_us.len(), rec.output_tokens), (2, 3));
    }

    /// A usage chunk whose `completion_tokens` is `value`.
    fn usage_with(value: &str) -> String {
        format!(r#"{{"choices":[],"usage":{{"prompt_tokens":7,"completion_tokens":{value}}}}}"#)
    }

    #[test]
    fn an_unreadable_usage_is_set_aside_and_the_chunks_counted() {
        let (a, b) = (chat("a"), chat("b"));
        for bad in ["1e30", "-1", "5.0", "\"5\"", "10000000000000000000", "4294967296", "true", "[5]"] {
            let usage = usage_with(bad);
            let (rec, _) = run(&[(1, a.as_str()), (2, b.as_str()), (3, usage.as_str())], Some(0));
            assert_eq!((rec.output_tokens, rec.input_tokens, rec.usage_unreadable), (2, 0, 1), "{bad}");
            assert_eq!((rec.usage_streams, rec.estimated_streams, rec.completed_without_usage), (0, 1, 1), "{bad}");
            assert_eq!((rec.turns[0].output_tokens, rec.turns[0].input_tokens), (2, 0), "{bad}");
            // 2 tokens over the 3 ms stream: the rate is read from the chunks, not 0 or 10^19 tokens.
            assert_eq!(rec.output_tokens_per_s.max(), 666, "{bad}");
        }
        // A bad reasoning count sets the whole usage aside too.
        let bad_reasoning =
            r#"{"choices":[],"usage":{"completion_tokens":9,"completion_tokens_details":{"reasoning_tokens":-4}}}"#;
        let (rec, _) = run(&[(1, a.as_str()), (2, bad_reasoning)], None);
        assert_eq!((rec.output_tokens, rec.reasoning_tokens, rec.usage_unreadable), (1, 0, 1));
    }

    #[test]
    fn the_largest_count_is_taken_and_the_last_usage_wins() {
        let a = chat("a");
        let (largest, bad) = (usage_with("4294967295"), usage_with("-1"));
        let (rec, _) = run(&[(1, a.as_str()), (2, largest.as_str())], Some(0));
        assert_eq!(
            (rec.output_tokens, rec.input_tokens, rec.usage_streams, rec.usage_unreadable),
            (u32::MAX.into(), 7, 1, 0)
        );
        // A good usage after a bad one stands; a bad one after a good one is what the stream said last.
        let (rec, _) = run(&[(1, a.as_str()), (2, bad.as_str()), (3, largest.as_str())], None);
        assert_eq!((rec.output_tokens, rec.usage_unreadable), (u32::MAX.into(), 0));
        let (rec, _) = run(&[(1, a.as_str()), (2, largest.as_str()), (3, bad.as_str())], None);
        assert_eq!((rec.output_tokens, rec.usage_unreadable, rec.estimated_streams), (1, 1, 1));
    }

    #[test]
    fn a_usage_without_completion_tokens_leaves_the_output_estimated() {
        let a = chat("a");
        let prompt_only = r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":null}}"#;
        let (rec, _) = run(&[(1, a.as_str()), (2, prompt_only)], None);
        assert_eq!((rec.output_tokens, rec.input_tokens), (1, 7));
        assert_eq!((rec.usage_streams, rec.estimated_streams, rec.usage_unreadable), (0, 1, 0));
    }

    #[test]
    fn usage_totals_saturate_instead_of_overflowing() {
        let mut rec = LlmRecorder::new(0, 0);
        rec.output_tokens = u64::MAX - 1;
        let mut timeline = Timeline::new(0);
        let now = Instant::now();
        timeline.begin(now);
        timeline.on_data(now, usage_with("6").as_bytes(), &mut rec);
        timeline.finish(now, true, false, &mut rec);
        assert_eq!(rec.output_tokens, u64::MAX);
    }

    #[test]
    fn errors_fail_and_bad_payloads_are_counted() {
        let mut rec = LlmRecorder::new(0, 0);
        let mut timeline = Timeline::new(0);
        let now = Instant::now();
        timeline.begin(now);
        assert_eq!(timeline.on_data(now, b"not json", &mut rec), ChunkVerdict::Continue);
        assert_eq!(rec.unparsed_chunks, 1);
        let error = br#"{"error":{"message":"overloaded","code":503}}"#;
        assert_eq!(timeline.on_data(now, error, &mut rec), ChunkVerdict::Error);
    }

    #[test]
    fn the_answer_is_captured_within_its_limit_and_reset_per_stream() {
        let mut rec = LlmRecorder::new(0, 0);
        let mut timeline = Timeline::new(8);
        let now = Instant::now();
        timeline.begin(now);
        for piece in ["Hello", " world"] {
            timeline.on_data(now, chat(piece).as_bytes(), &mut rec);
        }
        assert_eq!(timeline.answer, b"Hello wo");
        timeline.begin(now);
        assert!(timeline.answer.is_empty());
    }
}

//! `serve --openai`: a simulated model server for `/v1/chat/completions` and `/v1/completions` with `stream: true`.
//!
//! It behaves like vLLM or the OpenAI API on the wire: a role chunk at once (chat), then content
//! chunks of `--tokens-per-chunk` tokens at `--tokens-per-s`, the first after a prefill time that
//! grows with the prompt, then the chunk with `finish_reason`, the usage chunk when
//! `stream_options.include_usage` asks for it, and `data: [DONE]`. Its tokenizer is simple and
//! documented so tests can know exact counts: **one token per whitespace-separated word** of the
//! prompt (every message's text, for chat), and every generated token is one word (` tok`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::http1::request::decimal;

/// The simulated model's behaviour (`serve --openai ...`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelShape {
    pub tokens_per_s: f64,
    pub tokens_per_chunk: u32,
    /// Time to first token per prompt token, added to `--first-delay`.
    pub prefill_us_per_token: u64,
    /// How many tokens the model "wants" to write; `max_tokens` below it cuts the answer short
    /// (`finish_reason: length`), at or above it the answer ends by itself (`stop`).
    pub output_tokens: u64,
}

/// What one request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// `/v1/chat/completions` (a `messages` array) rather than `/v1/completions` (a `prompt`).
    pub chat: bool,
    /// The request's `model`, as a JSON string literal (quoted and escaped once, here).
    pub model_json: String,
    pub prompt_tokens: u64,
    /// Tokens this answer gets: the model's length capped by `max_tokens`.
    pub output_tokens: u64,
    /// `max_tokens` cut the answer short.
    pub truncated: bool,
    pub include_usage: bool,
}

/// Text of every generated token: one word, so a client counting words counts tokens.
const TOKEN_TEXT: &str = " tok";

/// Reads a request body; a request that names no model gets `default_model`. Errors name what is wrong (they
/// become a 400 answer).
pub fn parse_request(body: &[u8], shape: &ModelShape, default_model: &str) -> Result<Completion, &'static str> {
    let value: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON")?;
    let object = value.as_object().ok_or("the body is not a JSON object")?;
    if object.get("stream").and_then(Value::as_bool) != Some(true) {
        return Err("this server only streams: set \"stream\": true");
    }
    let (chat, prompt_tokens) = match (object.get("messages"), object.get("prompt")) {
        (Some(Value::Array(messages)), _) => (true, messages.iter().map(|m| words(m.get("content"))).sum()),
        (None, Some(prompt)) => (false, words(Some(prompt))),
        _ => return Err("expected \"messages\" (chat) or \"prompt\" (completions)"),
    };
    let max_tokens = ["max_completion_tokens", "max_tokens"].iter().find_map(|k| object.get(*k)?.as_u64());
    let output_tokens = max_tokens.map_or(shape.output_tokens, |max| max.min(shape.output_tokens));
    let include_usage =
        object.get("stream_options").and_then(|o| o.get("include_usage")).and_then(Value::as_bool).unwrap_or(false);
    Ok(Completion {
        chat,
        model_json: Value::from(object.get("model").and_then(Value::as_str).unwrap_or(default_model)).to_string(),
        prompt_tokens,
        output_tokens,
        truncated: max_tokens.is_some_and(|max| max < shape.output_tokens),
        include_usage,
    })
}

/// The whole HTTP answer to `GET /v1/models`: a list holding the one served model, in the shape of vLLM's
/// `ModelList` (`object`, `data[]` of cards with `id`, `object`, `created`, `owned_by`, `root`, `parent`,
/// `max_model_len`, `permission`), so clients that discover the model name read it as they would from vLLM.
pub fn models_answer(model_name: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "object": "list",
        "data": [{
            "id": model_name,
            "object": "model",
            "created": unix_seconds(),
            "owned_by": "ssebench",
            "root": model_name,
            "parent": null,
            "max_model_len": null,
            "permission": [],
        }],
    })
    .to_string();
    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
    [head.into_bytes(), body.into_bytes()].concat()
}

/// Whitespace-separated words in a prompt: a string, an array of strings, or chat content
/// parts (`[{"type": "text", "text": "..."}]`).
fn words(value: Option<&Value>) -> u64 {
    match value {
        Some(Value::String(text)) => text.split_whitespace().count() as u64,
        Some(Value::Array(items)) => items.iter().map(|item| words(item.get("text").or(Some(item)))).sum(),
        _ => 0,
    }
}

impl ModelShape {
    /// Time from the request to the first content token.
    pub fn prefill(&self, first_delay: Duration, prompt_tokens: u64) -> Duration {
        first_delay + Duration::from_micros(self.prefill_us_per_token.saturating_mul(prompt_tokens))
    }

    /// Time between two content chunks.
    pub fn chunk_interval(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.tokens_per_chunk) / self.tokens_per_s)
    }
}

/// What the next chunk of an answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// The chat role chunk (`"delta": {"role": "assistant", "content": ""}`).
    Role,
    /// `tokens` content tokens.
    Content {
        tokens: u64,
    },
    /// The empty chunk that carries `finish_reason`.
    Finish,
    Usage,
    Done,
}

/// An answer's pieces in order, each with when it is due (after the request), sans IO.
#[derive(Debug, Clone)]
pub struct Answer {
    chat: bool,
    include_usage: bool,
    output_tokens: u64,
    per_chunk: u64,
    first: Duration,
    interval: Duration,
    /// Content tokens handed out so far.
    written: u64,
    /// 0: role, 1: content, 2: finish, 3: usage, 4: done, 5: over.
    stage: u8,
}

impl Answer {
    pub fn new(completion: &Completion, shape: &ModelShape, first_delay: Duration) -> Answer {
        Answer {
            chat: completion.chat,
            include_usage: completion.include_usage,
            output_tokens: completion.output_tokens,
            per_chunk: u64::from(shape.tokens_per_chunk.max(1)),
            first: shape.prefill(first_delay, completion.prompt_tokens),
            interval: shape.chunk_interval(),
            written: 0,
            stage: if completion.chat { 0 } else { 1 },
        }
    }

    /// When the last content chunk is due (the first token's time when there are none).
    fn last_content(&self) -> Duration {
        let chunks = self.output_tokens.div_ceil(self.per_chunk);
        self.first + self.interval * chunks.saturating_sub(1).min(u64::from(u32::MAX)) as u32
    }
}

impl Iterator for Answer {
    type Item = (Duration, Piece);

    /// The next piece and its due time, or None when the answer is over.
    fn next(&mut self) -> Option<(Duration, Piece)> {
        loop {
            let stage = self.stage;
            self.stage += 1;
            return Some(match stage {
                0 if self.chat => (Duration::ZERO, Piece::Role),
                1 if self.written < self.output_tokens => {
                    let chunk = self.written / self.per_chunk;
                    let tokens = self.per_chunk.min(self.output_tokens - self.written);
                    self.written += tokens;
                    self.stage = 1;
                    (self.first + self.interval * chunk.min(u64::from(u32::MAX)) as u32, Piece::Content { tokens })
                }
                2 => (self.last_content(), Piece::Finish),
                3 if self.include_usage => (self.last_content(), Piece::Usage),
                4 => (self.last_content(), Piece::Done),
                0..=4 => continue,
                _ => return None,
            });
        }
    }
}

/// Appends one SSE event carrying `piece`, framed as an HTTP chunk, to `out` (cleared first).
/// `id` tells answers apart (`chatcmpl-ssebench-<id>`).
pub fn encode(out: &mut Vec<u8>, completion: &Completion, id: u64, piece: Piece) {
    out.clear();
    // The chunk size goes first; it is patched once the payload is written.
    out.extend_from_slice(b"00000000\r\n");
    let start = out.len();
    out.extend_from_slice(b"data: ");
    if piece == Piece::Done {
        out.extend_from_slice(b"[DONE]");
    } else {
        let (prefix, object) =
            if completion.chat { ("chatcmpl", "chat.completion.chunk") } else { ("cmpl", "text_completion") };
        let mut digits = [0u8; 20];
        push(out, &["{\"id\":\"", prefix, "-ssebench-"]);
        out.extend_from_slice(decimal(id, &mut digits));
        push(out, &["\",\"object\":\"", object, "\",\"created\":"]);
        out.extend_from_slice(decimal(unix_seconds(), &mut digits));
        push(out, &[",\"model\":", &completion.model_json]);
        out.extend_from_slice(b",\"choices\":");
        choices(out, completion, piece);
        out.push(b'}');
    }
    out.extend_from_slice(b"\n\n");
    let len = out.len() - start;
    for (i, digit) in out[..8].iter_mut().enumerate() {
        *digit = b"0123456789abcdef"[(len >> (28 - 4 * i)) & 0xf];
    }
    out.extend_from_slice(b"\r\n");
}

fn choices(out: &mut Vec<u8>, completion: &Completion, piece: Piece) {
    let finish = if completion.truncated { "\"length\"" } else { "\"stop\"" };
    match (piece, completion.chat) {
        (Piece::Usage, _) => {
            let mut digits = [0u8; 20];
            out.extend_from_slice(b"[],\"usage\":{\"prompt_tokens\":");
            out.extend_from_slice(decimal(completion.prompt_tokens, &mut digits));
            out.extend_from_slice(b",\"completion_tokens\":");
            out.extend_from_slice(decimal(completion.output_tokens, &mut digits));
            out.extend_from_slice(b",\"total_tokens\":");
            out.extend_from_slice(decimal(completion.prompt_tokens + completion.output_tokens, &mut digits));
            out.push(b'}');
        }
        (Piece::Role, _) => push(
            out,
            &[
                "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]",
            ],
        ),
        (Piece::Content { tokens }, chat) => {
            out.extend_from_slice(if chat {
                b"[{\"index\":0,\"delta\":{\"content\":\""
            } else {
                b"[{\"index\":0,\"text\":\""
            });
            for _ in 0..tokens {
                out.extend_from_slice(TOKEN_TEXT.as_bytes());
            }
            let close: &[u8] = if chat { b"\"},\"logprobs\":null" } else { b"\",\"logprobs\":null" };
            out.extend_from_slice(close);
            out.extend_from_slice(b",\"finish_reason\":null}]");
        }
        (Piece::Finish, true) => {
            push(out, &["[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":", finish, "}]"])
        }
        (Piece::Finish, false) => {
            push(out, &["[{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":", finish, "}]"])
        }
        (Piece::Done, _) => {}
    }
}

fn push(out: &mut Vec<u8>, parts: &[&str]) {
    for part in parts {
        out.extend_from_slice(part.as_bytes());
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: ModelShape =
        ModelShape { tokens_per_s: 100.0, tokens_per_chunk: 2, prefill_us_per_token: 10, output_tokens: 50 };

    #[test]
    fn requests_are_read_like_a_model_server() {
        let chat = br#"{"model":"m1","stream":true,"max_tokens":20,"stream_options":{"include_usage":true},
            "messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"one two three"}]}]}"#;
        let c = parse_request(chat, &SHAPE, "sim").unwrap();
        assert_eq!((c.chat, c.model_json.as_str(), c.prompt_tokens, c.output_tokens), (true, "\"m1\"", 5, 20));
        assert!(c.truncated && c.include_usage);
        let completions = br#"{"model":"m2","stream":true,"prompt":"a b c d","max_tokens":500}"#;
        let c = parse_request(completions, &SHAPE, "sim").unwrap();
        assert_eq!(
            (c.chat, c.prompt_tokens, c.output_tokens, c.truncated, c.include_usage),
            (false, 4, 50, false, false)
        );
        for bad in [&b"nope"[..], b"[]", br#"{"stream":true}"#, br#"{"prompt":"x"}"#] {
            assert!(parse_request(bad, &SHAPE, "sim").is_err(), "{}", String::from_utf8_lossy(bad));
        }
        // A request that names no model is answered as the served model's.
        let c = parse_request(br#"{"stream":true,"prompt":"a"}"#, &SHAPE, "served \"x\"").unwrap();
        assert_eq!(c.model_json, r#""served \"x\"""#);
    }

    #[test]
    fn the_model_list_names_the_served_model_as_vllm_does() {
        let answer = String::from_utf8(models_answer("my-model")).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("Content-Type: application/json"), "{head}");
        assert!(head.contains(&format!("Content-Length: {}", body.len())), "{head}");
        let list: Value = serde_json::from_str(body).unwrap();
        assert_eq!(list["object"], "list");
        let cards = list["data"].as_array().unwrap();
        assert_eq!(cards.len(), 1);
        assert_eq!((cards[0]["id"].as_str(), cards[0]["object"].as_str()), (Some("my-model"), Some("model")));
        assert!(cards[0]["created"].as_u64().unwrap() > 1_700_000_000);
    }

    /// Every piece is one HTTP chunk holding one SSE event whose data is valid JSON (or [DONE]).
    #[test]
    fn pieces_are_chunked_events_of_json() {
        let c =
            parse_request(br#"{"model":"q\"m","stream":true,"messages":[],"max_tokens":3}"#, &SHAPE, "sim").unwrap();
        let mut out = Vec::new();
        for piece in [Piece::Role, Piece::Content { tokens: 2 }, Piece::Finish, Piece::Usage, Piece::Done] {
            encode(&mut out, &c, 7, piece);
            let text = std::str::from_utf8(&out).unwrap();
            let (size, rest) = text.split_once("\r\n").unwrap();
            assert_eq!(size.len(), 8, "a fixed-width size, leading zeros allowed (RFC 9112 7.1)");
            assert_eq!(usize::from_str_radix(size, 16).unwrap(), rest.len() - 2, "{text}");
            let data = rest.strip_prefix("data: ").unwrap().strip_suffix("\n\n\r\n").unwrap();
            if piece == Piece::Done {
                assert_eq!(data, "[DONE]");
                continue;
            }
            let json: Value = serde_json::from_str(data).unwrap();
            assert_eq!(json["model"], "q\"m");
            match piece {
                Piece::Content { .. } => assert_eq!(json["choices"][0]["delta"]["content"], " tok tok"),
                Piece::Finish => assert_eq!(json["choices"][0]["finish_reason"], "length"),
                Piece::Usage => assert_eq!(json["usage"]["completion_tokens"], 3),
                _ => assert_eq!(json["choices"][0]["delta"]["role"], "assistant"),
            }
        }
    }

    #[test]
    fn answers_follow_the_model_shape() {
        let body = br#"{"stream":true,"messages":[{"role":"user","content":"a b c"}],"max_tokens":5,
            "stream_options":{"include_usage":true}}"#;
        let c = parse_request(body, &SHAPE, "sim").unwrap();
        let mut answer = Answer::new(&c, &SHAPE, Duration::from_millis(1));
        let ms = |d: Duration| d.as_micros() as u64;
        let got: Vec<(u64, Piece)> = std::iter::from_fn(|| answer.next()).map(|(at, p)| (ms(at), p)).collect();
        // Prefill 1 ms + 3 x 10 us; then a chunk of 2 tokens every 20 ms, the last one short.
        assert_eq!(
            got,
            vec![
                (0, Piece::Role),
                (1_030, Piece::Content { tokens: 2 }),
                (21_030, Piece::Content { tokens: 2 }),
                (41_030, Piece::Content { tokens: 1 }),
                (41_030, Piece::Finish),
                (41_030, Piece::Usage),
                (41_030, Piece::Done),
            ]
        );
        let c = parse_request(br#"{"stream":true,"prompt":"","max_tokens":0}"#, &SHAPE, "sim").unwrap();
        let pieces: Vec<Piece> = std::iter::from_fn({
            let mut a = Answer::new(&c, &SHAPE, Duration::ZERO);
            move || a.next()
        })
        .map(|(_, p)| p)
        .collect();
        assert_eq!(pieces, vec![Piece::Finish, Piece::Done]);
    }

    #[test]
    fn prefill_grows_with_the_prompt() {
        assert_eq!(SHAPE.prefill(Duration::from_millis(5), 1000), Duration::from_millis(15));
        assert_eq!(SHAPE.chunk_interval(), Duration::from_millis(20));
    }
}

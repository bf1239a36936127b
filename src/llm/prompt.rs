//! Request bodies for OpenAI-compatible streaming endpoints: the per-run JSON prefix, the prompt sources (a JSONL file,
//! a scenario's texts, or synthetic word prompts) and the per-request tail that closes each body.
//!
//! Everything here is sans-IO. Start-up functions parse and pre-serialize once (allocating freely, failing with
//! messages meant for the user); render functions only append to a caller's `Vec<u8>`, so a reused buffer does not
//! allocate once it has grown to the largest body.

use serde_json::{Map, Value};

use crate::http1::request::decimal;
use crate::rng;

/// Which OpenAI-compatible endpoint the bodies are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/v1/chat/completions`: the prompt is a `messages` array.
    Chat,
    /// `/v1/completions`: the prompt is a `prompt` string.
    Completions,
}

/// Fields the tail writes itself; letting `--extra-body` set them would produce duplicate keys, which servers resolve
/// inconsistently (first wins, last wins, or a 400).
const TAIL_FIELDS: [(&str, &str); 4] = [
    ("max_tokens", "put max_tokens in --max-tokens (or a prompt line's \"max_tokens\"), not in --extra-body"),
    ("max_completion_tokens", "put max_completion_tokens in --max-tokens (sent as max_tokens), not in --extra-body"),
    ("messages", "--extra-body must not set \"messages\": the prompt source writes them"),
    ("prompt", "--extra-body must not set \"prompt\": the prompt source writes it"),
];

/// The fixed start of every body: `{"model":<model>,"stream":true,"stream_options":{"include_usage":true},<extra>,`.
///
/// It ends with a comma because [`PromptSource::render_tail`] always follows and closes the object. A field of
/// `extra_body` named like a default (`model`, `stream`, `stream_options`) replaces that default in place, so the
/// body never carries a duplicate key.
pub fn body_prefix(model: &str, extra_body: Option<&str>) -> Result<String, String> {
    let mut extra = match extra_body {
        None => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(other) => return Err(format!("--extra-body must be a JSON object, got {}", json_kind(&other))),
            Err(e) => return Err(format!("--extra-body is not valid JSON: {e}")),
        },
    };
    for (name, message) in TAIL_FIELDS {
        if extra.contains_key(name) {
            return Err(message.to_string());
        }
    }

    let defaults = [
        ("model", Value::String(model.to_string())),
        ("stream", Value::Bool(true)),
        ("stream_options", serde_json::json!({ "include_usage": true })),
    ];
    let mut prefix = String::from("{");
    for (name, default) in defaults {
        let value = extra.remove(name).unwrap_or(default);
        push_field(&mut prefix, name, &value)?;
    }
    for (name, value) in &extra {
        push_field(&mut prefix, name, value)?;
    }
    Ok(prefix)
}

fn push_field(prefix: &mut String, name: &str, value: &Value) -> Result<(), String> {
    let name = serde_json::to_string(name).map_err(|e| format!("--extra-body field {name:?}: {e}"))?;
    let value = serde_json::to_string(value).map_err(|e| format!("--extra-body field {name}: {e}"))?;
    prefix.push_str(&name);
    prefix.push(':');
    prefix.push_str(&value);
    prefix.push(',');
    Ok(())
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Where prompts come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptSource {
    /// A fixed list of prompts (from a JSONL file or a scenario), pre-serialized for one [`Api`].
    Lines(PromptLines),
    /// Fresh prompts of `low..=high` words from [`WORDS`], drawn from the caller's rng.
    Synthetic { low: u64, high: u64 },
}

/// Prompts pre-serialized once at start-up, so rendering one is a single copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptLines {
    api: Api,
    lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    /// Chat: compact message objects joined by commas, no brackets. Completions: the escaped prompt, no quotes.
    json: Box<[u8]>,
    max_tokens: Option<u64>,
}

impl PromptSource {
    /// Parses a `--prompts FILE.jsonl` text: each non-blank line is `{"messages": [...]}` or `{"prompt": "..."}` with
    /// an optional non-negative integer `"max_tokens"`. Other fields are ignored, so datasets may carry ids or labels.
    pub fn from_jsonl(text: &str, api: Api) -> Result<PromptSource, String> {
        let mut lines = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            // A byte-order mark is invisible in editors, so a file saved with one must not fail on line 1.
            let raw = if index == 0 { raw.strip_prefix('\u{feff}').unwrap_or(raw) } else { raw };
            if raw.trim().is_empty() {
                continue;
            }
            let line = parse_line(raw, api).map_err(|e| format!("prompts file line {number}: {e}"))?;
            lines.push(line);
        }
        if lines.is_empty() {
            return Err("prompts file has no prompts (it is empty or every line is blank)".to_string());
        }
        Ok(PromptSource::Lines(PromptLines { api, lines }))
    }

    /// Prompts given as plain strings (a scenario's list); each becomes one user message (chat) or one prompt.
    pub fn from_texts(texts: &[String], api: Api) -> Result<PromptSource, String> {
        if texts.is_empty() {
            return Err("no prompts given: the prompt list is empty".to_string());
        }
        let lines = texts
            .iter()
            .map(|text| {
                let mut json = Vec::with_capacity(text.len() + 32);
                match api {
                    Api::Chat => push_message(&mut json, "user", text.as_bytes()),
                    Api::Completions => escape_json(text.as_bytes(), &mut json),
                }
                Line { json: json.into_boxed_slice(), max_tokens: None }
            })
            .collect();
        Ok(PromptSource::Lines(PromptLines { api, lines }))
    }

    /// `--prompt-tokens N` or `A..B`: synthetic prompts of `low..=high` words (see [`parse_token_range`]).
    pub fn synthetic(low: u64, high: u64) -> PromptSource {
        debug_assert!(1 <= low && low <= high, "synthetic prompt range {low}..{high}");
        PromptSource::Synthetic { low, high }
    }

    /// Number of distinct prompts, or `None` for synthetic prompts.
    pub fn lines(&self) -> Option<usize> {
        match self {
            PromptSource::Lines(set) => Some(set.lines.len()),
            PromptSource::Synthetic { .. } => None,
        }
    }

    fn line(&self, api: Api, pick: u64) -> Option<&Line> {
        match self {
            PromptSource::Lines(set) => {
                // Lines were serialized for one endpoint; rendering them for the other would give a wrong body.
                debug_assert_eq!(api, set.api, "prompt lines were built for {:?}", set.api);
                // `lines` is never empty: both constructors refuse that.
                Some(&set.lines[(pick % set.lines.len() as u64) as usize])
            }
            PromptSource::Synthetic { .. } => None,
        }
    }

    /// Appends prompt `pick`: for chat the message objects joined by commas (no brackets), for completions the
    /// escaped prompt text (no quotes). Lines use line `pick % lines`; synthetic prompts draw their word count and
    /// words from `rng`, a state owned by the caller and stepped with [`rng::next_xorshift64`]. The same `pick` and rng start give the same bytes.
    pub fn render_prompt(&self, api: Api, pick: u64, rng: &mut u64, out: &mut Vec<u8>) {
        match self {
            PromptSource::Lines(_) => {
                if let Some(line) = self.line(api, pick) {
                    out.extend_from_slice(&line.json);
                }
            }
            &PromptSource::Synthetic { low, high } => {
                if api == Api::Chat {
                    out.extend_from_slice(br#"{"role":"user","content":""#);
                }
                push_words(low, high, rng, out);
                if api == Api::Chat {
                    out.extend_from_slice(br#""}"#);
                }
            }
        }
    }

    /// Appends the rest of a body after [`body_prefix`], closing the object:
    /// chat `"messages":[<history>,<prompt>],"max_tokens":N}`, completions `"prompt":"<prompt>","max_tokens":N}`.
    ///
    /// `history` is raw message objects joined by commas (see [`push_message`]), always empty for completions. The
    /// line's own `max_tokens` wins over `default_max_tokens`; with neither, the field is left out so the server's
    /// default applies.
    pub fn render_tail(
        &self,
        api: Api,
        pick: u64,
        rng: &mut u64,
        history: &[u8],
        default_max_tokens: Option<u64>,
        out: &mut Vec<u8>,
    ) {
        match api {
            Api::Chat => {
                out.extend_from_slice(br#""messages":["#);
                if !history.is_empty() {
                    out.extend_from_slice(history);
                    out.push(b',');
                }
                self.render_prompt(api, pick, rng, out);
                out.push(b']');
            }
            Api::Completions => {
                debug_assert!(history.is_empty(), "completions requests carry no conversation history");
                out.extend_from_slice(br#""prompt":""#);
                self.render_prompt(api, pick, rng, out);
                out.push(b'"');
            }
        }
        let max_tokens = self.line(api, pick).and_then(|line| line.max_tokens).or(default_max_tokens);
        if let Some(n) = max_tokens {
            out.extend_from_slice(br#","max_tokens":"#);
            out.extend_from_slice(decimal(n, &mut [0; 20]));
        }
        out.push(b'}');
    }
}

fn parse_line(raw: &str, api: Api) -> Result<Line, String> {
    const EXPECTED: &str = r#"expected "messages" (an array) or "prompt" (a string)"#;
    let value: Value = serde_json::from_str(raw).map_err(|e| {
        // serde_json's message ends with its own "at line 1 column N", which would read as a file line number.
        let message = e.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_string();
        format!("not valid JSON at column {}: {message}", e.column())
    })?;
    let Value::Object(object) = value else {
        return Err(format!("{EXPECTED} in a JSON object, got {}", json_kind(&value)));
    };
    let max_tokens = match object.get("max_tokens") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_u64() {
            Some(n) => Some(n),
            None => return Err(format!("\"max_tokens\" must be a non-negative integer, got {value}")),
        },
    };
    let json = match (object.get("messages"), object.get("prompt"), api) {
        (Some(_), Some(_), _) => return Err(r#"has both "messages" and "prompt"; give one"#.to_string()),
        (None, None, _) => return Err(EXPECTED.to_string()),
        (Some(_), None, Api::Completions) => {
            return Err(r#"--openai completions needs a "prompt" string, not "messages""#.to_string());
        }
        (Some(messages), None, Api::Chat) => serialize_messages(messages)?,
        (None, Some(Value::String(prompt)), api) => {
            let mut json = Vec::with_capacity(prompt.len() + 32);
            match api {
                Api::Chat => push_message(&mut json, "user", prompt.as_bytes()),
                Api::Completions => escape_json(prompt.as_bytes(), &mut json),
            }
            json
        }
        (None, Some(other), _) => return Err(format!("\"prompt\" must be a string, got {}", json_kind(other))),
    };
    Ok(Line { json: json.into_boxed_slice(), max_tokens })
}

fn serialize_messages(messages: &Value) -> Result<Vec<u8>, String> {
    let Value::Array(items) = messages else {
        return Err(format!("\"messages\" must be a non-empty array of objects, got {}", json_kind(messages)));
    };
    if items.is_empty() {
        return Err("\"messages\" must be a non-empty array of objects, got an empty array".to_string());
    }
    let mut json = Vec::new();
    for (index, item) in items.iter().enumerate() {
        if !item.is_object() {
            return Err(format!("\"messages\"[{index}] must be an object, got {}", json_kind(item)));
        }
        if !json.is_empty() {
            json.push(b',');
        }
        serde_json::to_writer(&mut json, item).map_err(|e| format!("\"messages\"[{index}]: {e}"))?;
    }
    Ok(json)
}

/// Synthetic prompt vocabulary: very common short English words, each a single token in the GPT (cl100k/o200k) and
/// Llama tokenizers when preceded by a space. A real tokenizer therefore counts about one token per word (plus the
/// chat template's own tokens), and ssebench's built-in server counts exactly one token per whitespace-separated word,
/// so `--prompt-tokens N` means about N prompt tokens on a real server and exactly N on the built-in one.
pub const WORDS: [&str; 100] = [
    "the", "of", "and", "to", "in", "is", "it", "that", "for", "on", //
    "with", "as", "was", "he", "be", "at", "by", "this", "had", "not", //
    "are", "but", "from", "or", "have", "an", "they", "which", "one", "you", //
    "were", "her", "all", "she", "there", "would", "their", "we", "him", "been", //
    "has", "when", "who", "will", "more", "no", "if", "out", "so", "said", //
    "what", "up", "its", "about", "into", "than", "them", "can", "only", "other", //
    "new", "some", "could", "time", "these", "two", "may", "then", "do", "first", //
    "any", "my", "now", "such", "like", "our", "over", "man", "me", "even", //
    "most", "made", "after", "also", "did", "many", "before", "people", "back", "year", //
    "where", "much", "your", "way", "well", "down", "should", "because", "day", "just", //
];

fn push_words(low: u64, high: u64, rng: &mut u64, out: &mut Vec<u8>) {
    // Saturating, so a hand-built `Synthetic` with high < low or a full u64 span cannot panic: the span is never 0.
    let span = high.saturating_sub(low).saturating_add(1);
    let count = low.saturating_add(rng::next_xorshift64(rng) % span);
    for i in 0..count {
        if i > 0 {
            out.push(b' ');
        }
        let word = WORDS[(rng::next_xorshift64(rng) % WORDS.len() as u64) as usize];
        out.extend_from_slice(word.as_bytes());
    }
}

/// Appends `bytes` JSON-escaped, without quotes: `"`, `\` and control characters are escaped, each invalid UTF-8
/// sequence becomes `\ufffd` (as `String::from_utf8_lossy` would replace it), and everything else is copied as is.
pub fn escape_json(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid().as_bytes();
        // Bytes of multi-byte UTF-8 characters are all >= 0x80, so only ASCII bytes can need escaping.
        let mut run_start = 0;
        for (i, &b) in valid.iter().enumerate() {
            let short = match b {
                b'"' => b'"',
                b'\\' => b'\\',
                b'\n' => b'n',
                b'\r' => b'r',
                b'\t' => b't',
                0x08 => b'b',
                0x0c => b'f',
                0x00..=0x1f => 0,
                _ => continue,
            };
            out.extend_from_slice(&valid[run_start..i]);
            run_start = i + 1;
            if short != 0 {
                out.extend_from_slice(&[b'\\', short]);
            } else {
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]);
            }
        }
        out.extend_from_slice(&valid[run_start..]);
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(br"\ufffd");
        }
    }
}

/// Appends one chat message object to `history` (raw message objects joined by commas): a comma first if `history`
/// is non-empty, then `{"role":<role>,"content":"<escaped content>"}`.
pub fn push_message(history: &mut Vec<u8>, role: &str, content: &[u8]) {
    if !history.is_empty() {
        history.push(b',');
    }
    history.extend_from_slice(br#"{"role":""#);
    escape_json(role.as_bytes(), history);
    history.extend_from_slice(br#"","content":""#);
    escape_json(content, history);
    history.extend_from_slice(br#""}"#);
}

/// Parses `--prompt-tokens`: `512` or `128..4096` (inclusive; `128..=4096` also accepted) into `(low, high)`.
pub fn parse_token_range(s: &str) -> Result<(u64, u64), String> {
    let usage = || format!("--prompt-tokens {s:?}: expected a word count like 512 or a range like 128..4096");
    let number = |part: &str| part.trim().parse::<u64>().map_err(|_| usage());
    let (low, high) = match s.split_once("..") {
        Some((low, high)) => (number(low)?, number(high.strip_prefix('=').unwrap_or(high))?),
        None => {
            let n = number(s)?;
            (n, n)
        }
    };
    if low == 0 {
        return Err(format!("--prompt-tokens {s:?}: prompts need at least 1 token"));
    }
    if low > high {
        return Err(format!("--prompt-tokens {s:?}: the low end {low} is above the high end {high}"));
    }
    Ok((low, high))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn body(
        prefix: &str,
        source: &PromptSource,
        api: Api,
        pick: u64,
        seed: u64,
        history: &[u8],
        max: Option<u64>,
    ) -> Value {
        let mut out = prefix.as_bytes().to_vec();
        let mut rng = seed;
        source.render_tail(api, pick, &mut rng, history, max, &mut out);
        match serde_json::from_slice::<Value>(&out) {
            Ok(value @ Value::Object(_)) => value,
            other => panic!("body {:?} is not a JSON object: {other:?}", String::from_utf8_lossy(&out)),
        }
    }

    fn render(source: &PromptSource, api: Api, pick: u64, seed: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rng = seed;
        source.render_prompt(api, pick, &mut rng, &mut out);
        out
    }

    fn synthetic_text(source: &PromptSource, seed: u64) -> String {
        String::from_utf8(render(source, Api::Completions, 0, seed)).unwrap()
    }

    fn assert_defaults(body: &Value, model: &str) {
        assert_eq!(body["model"], model);
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
    }

    const JSONL: &str = r#"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi \"there\""}]}

{"prompt":"tell me a story\n","max_tokens":7}
{"prompt":"plain","id":"ignored"}
"#;

    #[test]
    fn prefix_defaults_and_escaped_model() {
        let prefix = body_prefix("llama \"3\"\n", None).unwrap();
        assert!(prefix.ends_with(','));
        assert_eq!(prefix, r#"{"model":"llama \"3\"\n","stream":true,"stream_options":{"include_usage":true},"#);
    }

    #[test]
    fn prefix_extra_fields_and_replaced_defaults() {
        let extra = r#"{"temperature":0.5,"model":"other","stream_options":{"include_usage":false},"seed":3}"#;
        let prefix = body_prefix("m", Some(extra)).unwrap();
        assert!(prefix.starts_with(r#"{"model":"other","stream":true,"stream_options":{"include_usage":false},"#));
        let source = PromptSource::synthetic(3, 3);
        let value = body(&prefix, &source, Api::Chat, 0, 1, b"", None);
        assert_eq!(value["model"], "other");
        assert_eq!(value["stream_options"]["include_usage"], false);
        assert_eq!(value["temperature"], 0.5);
        assert_eq!(value["seed"], 3);
        assert_eq!(prefix.matches("\"model\"").count(), 1);
    }

    #[test]
    fn prefix_errors() {
        let err = body_prefix("m", Some("{nope")).unwrap_err();
        assert!(err.contains("--extra-body") && err.contains("not valid JSON"), "{err}");
        let err = body_prefix("m", Some("[1]")).unwrap_err();
        assert!(err.contains("--extra-body") && err.contains("an array"), "{err}");
        let err = body_prefix("m", Some(r#"{"max_tokens":5}"#)).unwrap_err();
        assert!(err.contains("--max-tokens"), "{err}");
        let err = body_prefix("m", Some(r#"{"max_completion_tokens":5}"#)).unwrap_err();
        assert!(err.contains("--max-tokens"), "{err}");
        let err = body_prefix("m", Some(r#"{"messages":[]}"#)).unwrap_err();
        assert!(err.contains("messages"), "{err}");
        let err = body_prefix("m", Some(r#"{"prompt":"x"}"#)).unwrap_err();
        assert!(err.contains("prompt"), "{err}");
    }

    #[test]
    fn chat_bodies_from_lines() {
        let prefix = body_prefix("m", Some(r#"{"top_p":0.9}"#)).unwrap();
        let source = PromptSource::from_jsonl(JSONL, Api::Chat).unwrap();
        assert_eq!(source.lines(), Some(3));
        let mut history = Vec::new();
        push_message(&mut history, "user", b"earlier");
        push_message(&mut history, "assistant", b"reply");

        let v = body(&prefix, &source, Api::Chat, 0, 1, b"", None);
        assert_defaults(&v, "m");
        assert_eq!(v["top_p"], 0.9);
        assert_eq!(
            v["messages"],
            json!([{"role":"system","content":"be brief"},{"role":"user","content":"hi \"there\""}])
        );
        assert!(v.get("max_tokens").is_none());

        let v = body(&prefix, &source, Api::Chat, 0, 1, &history, Some(50));
        assert_eq!(v["messages"].as_array().unwrap().len(), 4);
        assert_eq!(v["messages"][1], json!({"role":"assistant","content":"reply"}));
        assert_eq!(v["max_tokens"], 50);

        // A prompt line in chat mode becomes one user message; its own max_tokens beats the default.
        let v = body(&prefix, &source, Api::Chat, 1, 1, &history, Some(50));
        assert_eq!(v["messages"].as_array().unwrap().len(), 3);
        assert_eq!(v["messages"][2], json!({"role":"user","content":"tell me a story\n"}));
        assert_eq!(v["max_tokens"], 7);
        let v = body(&prefix, &source, Api::Chat, 1, 1, b"", None);
        assert_eq!(v["max_tokens"], 7);

        // pick wraps around the lines.
        let v = body(&prefix, &source, Api::Chat, 5, 1, b"", Some(9));
        assert_eq!(v["messages"], json!([{"role":"user","content":"plain"}]));
        assert_eq!(v["max_tokens"], 9);
    }

    #[test]
    fn completions_bodies_from_lines() {
        let prefix = body_prefix("m", None).unwrap();
        let text = "{\"prompt\":\"a\\tb\",\"max_tokens\":0}\n{\"prompt\":\"c\"}\n";
        let source = PromptSource::from_jsonl(text, Api::Completions).unwrap();
        let v = body(&prefix, &source, Api::Completions, 0, 1, b"", Some(3));
        assert_defaults(&v, "m");
        assert_eq!(v["prompt"], "a\tb");
        assert_eq!(v["max_tokens"], 0);
        let v = body(&prefix, &source, Api::Completions, 1, 1, b"", None);
        assert_eq!(v["prompt"], "c");
        assert!(v.get("max_tokens").is_none());
        assert!(v.get("messages").is_none());
    }

    #[test]
    fn bodies_from_texts() {
        let prefix = body_prefix("m", None).unwrap();
        let texts = vec!["first \"one\"".to_string(), "second\u{1}".to_string()];
        let chat = PromptSource::from_texts(&texts, Api::Chat).unwrap();
        assert_eq!(chat.lines(), Some(2));
        let mut history = Vec::new();
        push_message(&mut history, "user", b"q");
        let v = body(&prefix, &chat, Api::Chat, 1, 1, &history, Some(4));
        assert_eq!(v["messages"], json!([{"role":"user","content":"q"},{"role":"user","content":"second\u{1}"}]));
        assert_eq!(v["max_tokens"], 4);
        let completions = PromptSource::from_texts(&texts, Api::Completions).unwrap();
        let v = body(&prefix, &completions, Api::Completions, 0, 1, b"", None);
        assert_eq!(v["prompt"], "first \"one\"");
        assert!(PromptSource::from_texts(&[], Api::Chat).unwrap_err().contains("empty"));
    }

    #[test]
    fn synthetic_bodies() {
        let prefix = body_prefix("m", None).unwrap();
        let source = PromptSource::synthetic(5, 5);
        assert_eq!(source.lines(), None);
        let mut history = Vec::new();
        push_message(&mut history, "user", b"q");
        push_message(&mut history, "assistant", b"a");
        for (hist, max) in [(&b""[..], None), (&history[..], Some(12))] {
            let v = body(&prefix, &source, Api::Chat, 0, 42, hist, max);
            assert_defaults(&v, "m");
            let messages = v["messages"].as_array().unwrap();
            assert_eq!(messages.len(), if hist.is_empty() { 1 } else { 3 });
            let last = messages.last().unwrap();
            assert_eq!(last["role"], "user");
            assert_eq!(last["content"].as_str().unwrap().split_whitespace().count(), 5);
            assert_eq!(v.get("max_tokens").and_then(Value::as_u64), max);
        }
        let v = body(&prefix, &source, Api::Completions, 0, 42, b"", Some(1));
        assert_eq!(v["prompt"].as_str().unwrap().split_whitespace().count(), 5);
        assert_eq!(v["max_tokens"], 1);
    }

    #[test]
    fn determinism() {
        let source = PromptSource::synthetic(10, 200);
        for api in [Api::Chat, Api::Completions] {
            assert_eq!(render(&source, api, 3, 99), render(&source, api, 3, 99));
            let mut a = Vec::new();
            let mut b = Vec::new();
            let (mut ra, mut rb) = (7, 7);
            source.render_tail(api, 3, &mut ra, b"", Some(5), &mut a);
            source.render_tail(api, 3, &mut rb, b"", Some(5), &mut b);
            assert_eq!(a, b);
            assert_eq!(ra, rb);
        }
        assert_ne!(synthetic_text(&source, 1), synthetic_text(&source, 2));
        let fixed = PromptSource::synthetic(50, 50);
        assert_ne!(synthetic_text(&fixed, 1), synthetic_text(&fixed, 2));
    }

    #[test]
    fn synthetic_prompts_are_pinned_to_the_seed() {
        // The exact words a seed draws: prompt token counts of a `--seed` run depend on them.
        assert_eq!(synthetic_text(&PromptSource::synthetic(3, 8), 1), "is can no she on but");
    }

    #[test]
    fn synthetic_words_are_clean() {
        let mut seen = std::collections::HashSet::new();
        for word in WORDS {
            assert!(!word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase()), "{word:?}");
            assert!(seen.insert(word), "duplicate word {word:?}");
        }
        let text = synthetic_text(&PromptSource::synthetic(1, 300), 12345);
        assert!(!text.starts_with(' ') && !text.ends_with(' ') && !text.contains("  "));
    }

    #[test]
    fn render_reuses_capacity() {
        let prefix = body_prefix("m", None).unwrap();
        let lines = PromptSource::from_jsonl(JSONL, Api::Chat).unwrap();
        let synthetic = PromptSource::synthetic(20, 60);
        let mut history = Vec::new();
        push_message(&mut history, "user", b"earlier");
        for (source, api, hist) in [
            (&lines, Api::Chat, &history[..]),
            (&synthetic, Api::Chat, &history[..]),
            (&synthetic, Api::Completions, &b""[..]),
        ] {
            let mut out = Vec::with_capacity(4096);
            let mut rng = 0x9e37_79b9_7f4a_7c15;
            out.extend_from_slice(prefix.as_bytes());
            source.render_tail(api, 0, &mut rng, hist, Some(8), &mut out);
            let (ptr, cap) = (out.as_ptr(), out.capacity());
            for pick in 1..=1000 {
                out.clear();
                out.extend_from_slice(prefix.as_bytes());
                source.render_tail(api, pick, &mut rng, hist, Some(8), &mut out);
                assert_eq!((out.as_ptr(), out.capacity()), (ptr, cap));
            }
        }
    }

    #[test]
    fn jsonl_errors() {
        let err = PromptSource::from_jsonl("{\"prompt\":\"a\"}\n\n{bad json\n", Api::Chat).unwrap_err();
        assert!(err.starts_with("prompts file line 3: not valid JSON"), "{err}");
        assert!(!err.contains("at line 1"), "{err}");
        let err =
            PromptSource::from_jsonl(r#"{"messages":[{"role":"user","content":"x"}]}"#, Api::Completions).unwrap_err();
        assert_eq!(err, r#"prompts file line 1: --openai completions needs a "prompt" string, not "messages""#);
        let err = PromptSource::from_jsonl("\n  \n{\"text\":\"x\"}", Api::Chat).unwrap_err();
        assert_eq!(err, r#"prompts file line 3: expected "messages" (an array) or "prompt" (a string)"#);
        let err = PromptSource::from_jsonl(r#"{"prompt":"x","max_tokens":-1}"#, Api::Chat).unwrap_err();
        assert!(err.starts_with("prompts file line 1:") && err.contains("non-negative integer"), "{err}");
        let err = PromptSource::from_jsonl(r#"{"prompt":"x","max_tokens":1.5}"#, Api::Chat).unwrap_err();
        assert!(err.contains("non-negative integer"), "{err}");
        let err = PromptSource::from_jsonl(r#"{"prompt":["a","b"]}"#, Api::Completions).unwrap_err();
        assert!(err.contains("\"prompt\" must be a string"), "{err}");
        let err = PromptSource::from_jsonl(r#"{"messages":[]}"#, Api::Chat).unwrap_err();
        assert!(err.contains("non-empty array"), "{err}");
        let err = PromptSource::from_jsonl(r#"{"messages":["hi"]}"#, Api::Chat).unwrap_err();
        assert!(err.contains("must be an object"), "{err}");
        let err = PromptSource::from_jsonl(r#"{"messages":[{}],"prompt":"x"}"#, Api::Chat).unwrap_err();
        assert!(err.contains("both"), "{err}");
        let err = PromptSource::from_jsonl("[1]", Api::Chat).unwrap_err();
        assert!(err.starts_with("prompts file line 1:") && err.contains("an array"), "{err}");
        for empty in ["", "\n\n  \n"] {
            let err = PromptSource::from_jsonl(empty, Api::Chat).unwrap_err();
            assert!(err.contains("no prompts"), "{err}");
        }
    }

    #[test]
    fn jsonl_blank_lines_crlf_and_bom_are_fine() {
        let text = "\u{feff}{\"prompt\":\"a\"}\r\n\r\n   \r\n{\"prompt\":\"b\",\"max_tokens\":null}\r\n";
        let source = PromptSource::from_jsonl(text, Api::Completions).unwrap();
        assert_eq!(source.lines(), Some(2));
        assert_eq!(render(&source, Api::Completions, 1, 1), b"b");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "prompt lines were built for Chat")]
    fn lines_refuse_the_other_api() {
        let source = PromptSource::from_texts(&["x".to_string()], Api::Chat).unwrap();
        render(&source, Api::Completions, 0, 1);
    }

    #[test]
    fn escape_short_forms_and_controls() {
        let mut out = Vec::new();
        escape_json(b"a\"b\\c\n\r\t\x08\x0c\x00\x1f\x7f\xc3\xa9", &mut out);
        assert_eq!(out, b"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0000\\u001f\x7f\xc3\xa9");
    }

    #[test]
    fn escape_invalid_utf8() {
        let mut out = Vec::new();
        escape_json(b"ok\xffthen\xe2\x82", &mut out);
        assert_eq!(out, b"ok\\ufffdthen\\ufffd");
        let parsed: String = serde_json::from_slice(&[b"\"", &out[..], b"\""].concat()).unwrap();
        assert_eq!(parsed, "ok\u{fffd}then\u{fffd}");
    }

    #[test]
    fn push_message_builds_an_array() {
        let mut history = Vec::new();
        push_message(&mut history, "system", b"rules");
        push_message(&mut history, "user", b"line\n\"quoted\"");
        push_message(&mut history, "assistant", b"bad \xff byte");
        let parsed: Value = serde_json::from_slice(&[b"[", &history[..], b"]"].concat()).unwrap();
        assert_eq!(
            parsed,
            json!([
                {"role":"system","content":"rules"},
                {"role":"user","content":"line\n\"quoted\""},
                {"role":"assistant","content":"bad \u{fffd} byte"},
            ])
        );
    }

    #[test]
    fn token_ranges() {
        assert_eq!(parse_token_range("512"), Ok((512, 512)));
        assert_eq!(parse_token_range("128..4096"), Ok((128, 4096)));
        assert_eq!(parse_token_range("128..=4096"), Ok((128, 4096)));
        assert_eq!(parse_token_range("7..7"), Ok((7, 7)));
        assert!(parse_token_range("0").unwrap_err().contains("at least 1"));
        assert!(parse_token_range("0..5").unwrap_err().contains("at least 1"));
        assert!(parse_token_range("10..5").unwrap_err().contains("above"));
        for bad in ["", "abc", "-3", "1..", "..5", "1...5", "1.5"] {
            assert!(parse_token_range(bad).unwrap_err().contains("expected"), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn escape_round_trips(s in any::<String>()) {
            let mut out = vec![b'"'];
            escape_json(s.as_bytes(), &mut out);
            out.push(b'"');
            let parsed: String = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(parsed, s);
        }

        #[test]
        fn escape_round_trips_ascii_controls(s in "[\\x00-\\x7f]{0,64}") {
            let mut out = vec![b'"'];
            escape_json(s.as_bytes(), &mut out);
            out.push(b'"');
            prop_assert!(out.iter().all(|&b| b >= 0x20), "raw control byte in {:?}", out);
            let parsed: String = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(parsed, s);
        }

        #[test]
        fn escape_matches_lossy_decoding(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut out = vec![b'"'];
            escape_json(&bytes, &mut out);
            out.push(b'"');
            let parsed: String = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(parsed, String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn synthetic_word_count_in_range(low in 1u64..300, extra in 0u64..300, seed in 1u64..) {
            let high = low + extra;
            let count = synthetic_text(&PromptSource::synthetic(low, high), seed).split_whitespace().count() as u64;
            prop_assert!((low..=high).contains(&count), "{} not in {}..={}", count, low, high);
            let exact = synthetic_text(&PromptSource::synthetic(low, low), seed).split_whitespace().count() as u64;
            prop_assert_eq!(exact, low);
        }

        #[test]
        fn parse_token_range_accepts_valid(low in 1u64..100_000, extra in 0u64..100_000) {
            let high = low + extra;
            prop_assert_eq!(parse_token_range(&format!("{low}..{high}")), Ok((low, high)));
            prop_assert_eq!(parse_token_range(&low.to_string()), Ok((low, low)));
        }
    }
}

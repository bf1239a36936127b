//! LLM chunk scanning against byte-exact streams in the formats OpenAI, vLLM, llama.cpp and OpenRouter send
//! (`tests/fixtures/llm/`): exact totals per stream, and agreement with a serde_json model per event. That the scan
//! allocates nothing is checked in `tests/alloc.rs`, which has the counting allocator.

use serde_json::Value;
use ssebench::llm::chunk::{ChunkInfo, Finish, Tokens, Usage, scan};

use crate::util::{fixture_names, payloads, split_events};

/// What a whole stream adds up to.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    events: u32,
    content_chunks: u32,
    content_bytes: u32,
    content_chars: u32,
    reasoning_chunks: u32,
    reasoning_bytes: u32,
    role_only: u32,
    errors: u32,
    finish: Option<Finish>,
    usage: Option<Usage>,
    done: bool,
}

impl Totals {
    fn add(&mut self, info: &ChunkInfo) {
        assert!(!self.done, "event after [DONE]");
        self.events += 1;
        self.content_chunks += u32::from(info.content_bytes > 0);
        self.content_bytes += info.content_bytes;
        self.content_chars += info.content_chars;
        self.reasoning_chunks += u32::from(info.reasoning_bytes > 0);
        self.reasoning_bytes += info.reasoning_bytes;
        self.role_only += u32::from(info.role_only);
        self.errors += u32::from(info.error);
        self.finish = info.finish.or(self.finish);
        self.usage = info.usage.or(self.usage);
        self.done = info.done;
    }
}

fn usage(prompt_tokens: u32, completion_tokens: u32, reasoning_tokens: Option<u32>) -> Option<Usage> {
    Some(Usage {
        prompt_tokens: Tokens::Count(prompt_tokens),
        completion_tokens: Tokens::Count(completion_tokens),
        reasoning_tokens: reasoning_tokens.map_or(Tokens::Absent, Tokens::Count),
    })
}

fn expected(name: &str) -> Totals {
    let base = Totals { done: true, ..Totals::default() };
    match name {
        "openai_chat.sse" => Totals {
            events: 13,
            content_chunks: 9,
            content_bytes: 34,
            content_chars: 34,
            role_only: 1,
            finish: Some(Finish::Stop),
            usage: usage(23, 9, Some(0)),
            ..base
        },
        "vllm_chat_reasoning.sse" => Totals {
            events: 25,
            content_chunks: 8,
            content_bytes: 15,
            content_chars: 15,
            reasoning_chunks: 13,
            reasoning_bytes: 37,
            role_only: 1,
            finish: Some(Finish::Stop),
            usage: usage(14, 23, None),
            ..base
        },
        "vllm_completions_multitoken.sse" => Totals {
            events: 13,
            content_chunks: 11,
            content_bytes: 192,
            content_chars: 192,
            finish: Some(Finish::Length),
            usage: usage(6, 48, None),
            ..base
        },
        // Content: "Bonjour ! Voici un café crème ☕\n日本語 \"quoted\" 😀 🎉." with é and 🎉 sent as \u escapes.
        "llamacpp_chat.sse" => Totals {
            events: 16,
            content_chunks: 13,
            content_bytes: 65,
            content_chars: 49,
            role_only: 1,
            finish: Some(Finish::Stop),
            usage: usage(27, 16, None),
            ..base
        },
        "inline_error.sse" => {
            Totals { events: 6, content_chunks: 2, content_bytes: 9, content_chars: 9, role_only: 1, errors: 2, ..base }
        }
        // Only "Let me save that." counts; logprobs.content[] and the tool arguments do not.
        "openai_tools_logprobs.sse" => Totals {
            events: 19,
            content_chunks: 5,
            content_bytes: 17,
            content_chars: 17,
            role_only: 1,
            finish: Some(Finish::ToolCalls),
            usage: usage(82, 27, Some(0)),
            ..base
        },
        // Role rides on every delta, so no chunk is role-only; reasoning_details[].text does not count.
        "openrouter_reasoning.sse" => Totals {
            events: 17,
            content_chunks: 5,
            content_bytes: 16,
            content_chars: 16,
            reasoning_chunks: 9,
            reasoning_bytes: 29,
            finish: Some(Finish::Stop),
            usage: usage(11, 24, Some(18)),
            ..base
        },
        other => panic!("fixture {other} has no expected totals"),
    }
}

#[test]
fn fixture_totals() {
    let names = fixture_names();
    assert_eq!(names.len(), 7, "{names:?}");
    for name in names {
        let mut totals = Totals::default();
        for payload in payloads(&name) {
            let info = scan(&payload).unwrap_or_else(|e| panic!("{name}: {e}: {}", String::from_utf8_lossy(&payload)));
            totals.add(&info);
        }
        assert_eq!(totals, expected(&name), "{name}");
    }
}

#[test]
fn fixtures_agree_with_reference_model() {
    for name in fixture_names() {
        for payload in payloads(&name) {
            let text = String::from_utf8_lossy(&payload);
            assert_eq!(scan(&payload), Ok(reference(&payload)), "{name}: {text}");
        }
    }
}

#[test]
fn naive_split_handles_multiline_and_crlf() {
    let body = b": comment\r\n\r\nevent: x\r\ndata: a\r\ndata:b\r\n\r\ndata: tail-without-blank-line";
    assert_eq!(split_events(body), vec![b"a\nb".to_vec()]);
}

/// The same rules as `scan`, written against `serde_json::Value` (no duplicate keys in the fixtures, so
/// last-wins maps are equivalent).
fn reference(payload: &[u8]) -> ChunkInfo {
    if payload.trim_ascii() == b"[DONE]" {
        return ChunkInfo { done: true, ..ChunkInfo::default() };
    }
    let root: Value = serde_json::from_slice(payload).expect("fixture payload is JSON");
    let mut info = ChunkInfo::default();
    let mut role = false;
    for choice in root["choices"].as_array().into_iter().flatten() {
        let delta = &choice["delta"];
        for text in [&delta["content"], &choice["text"]].into_iter().filter_map(Value::as_str) {
            info.content_bytes += text.len() as u32;
            info.content_chars += text.chars().count() as u32;
        }
        let reasoning = |key: &str| delta[key].as_str().map_or(0, str::len) as u32;
        info.reasoning_bytes += reasoning("reasoning_content").max(reasoning("reasoning"));
        role |= delta["role"].is_string();
        if let Some(reason) = choice["finish_reason"].as_str() {
            info.finish = Some(match reason {
                "stop" => Finish::Stop,
                "length" => Finish::Length,
                "tool_calls" | "function_call" => Finish::ToolCalls,
                "content_filter" => Finish::ContentFilter,
                _ => Finish::Other,
            });
        }
    }
    if let Some(usage) = root["usage"].as_object() {
        let tokens = |v: Option<&Value>| match v {
            None | Some(Value::Null) => Tokens::Absent,
            Some(v) => v.as_u64().and_then(|n| u32::try_from(n).ok()).map_or(Tokens::Unreadable, Tokens::Count),
        };
        let details = usage.get("completion_tokens_details").filter(|d| d.is_object());
        info.usage = Some(Usage {
            prompt_tokens: tokens(usage.get("prompt_tokens")),
            completion_tokens: tokens(usage.get("completion_tokens")),
            reasoning_tokens: tokens(details.and_then(|d| d.get("reasoning_tokens"))),
        });
    }
    info.error = !matches!(root["error"], Value::Null | Value::Bool(false)) || root["object"] == "error";
    info.role_only = role
        && info.content_bytes == 0
        && info.reasoning_bytes == 0
        && info.finish.is_none()
        && info.usage.is_none()
        && !info.error;
    info
}

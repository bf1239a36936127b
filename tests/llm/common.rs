//! Fixture loading for the LLM tests: raw SSE bodies under `tests/fixtures/llm/`, split into `data` payloads.

use std::path::PathBuf;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm")
}

/// Names of every `*.sse` fixture, sorted.
pub fn fixture_names() -> Vec<String> {
    let entries = std::fs::read_dir(fixture_dir()).expect("fixture dir");
    let mut names: Vec<String> = entries
        .map(|e| e.expect("dir entry").file_name().into_string().expect("utf-8 name"))
        .filter(|n| n.ends_with(".sse"))
        .collect();
    names.sort();
    names
}

/// The `data` payloads of one fixture, in order.
pub fn payloads(name: &str) -> Vec<Vec<u8>> {
    let body = std::fs::read(fixture_dir().join(name)).expect("fixture file");
    split_events(&body)
}

/// A deliberately naive SSE split, enough for the fixtures: `data:` lines (one optional space after the colon)
/// accumulate, joined by `\n`; a blank line dispatches; comments and other fields are ignored; an unterminated
/// last event is dropped, as the SSE spec says.
pub fn split_events(body: &[u8]) -> Vec<Vec<u8>> {
    let mut events = Vec::new();
    let mut data: Option<Vec<u8>> = None;
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            events.extend(data.take());
        } else if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            match &mut data {
                Some(buf) => {
                    buf.push(b'\n');
                    buf.extend_from_slice(value);
                }
                None => data = Some(value.to_vec()),
            }
        }
    }
    events
}

//! Benchmark for the LLM chunk scanner: ns per `data:` payload of a typical OpenAI-compatible chat stream, the cost
//! `--openai` adds to every event.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ssebench::llm::chunk::scan;

/// A vLLM-style content chunk (~230 bytes): id, object, created, model, one choice with a one-token delta.
const CONTENT_CHUNK: &[u8] = br#"{"id":"chatcmpl-8f2a9c1e4b7d4e0c9a3f","object":"chat.completion.chunk","created":1732380000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"content":" the"},"logprobs":null,"finish_reason":null}]}"#;

/// The final usage chunk.
const USAGE_CHUNK: &[u8] = br#"{"id":"chatcmpl-8f2a9c1e4b7d4e0c9a3f","object":"chat.completion.chunk","created":1732380000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[],"usage":{"prompt_tokens":512,"total_tokens":768,"completion_tokens":256}}"#;

fn scan_chunks(c: &mut Criterion) {
    let mut group = c.benchmark_group("llm_chunk");
    for (name, payload) in [("content", CONTENT_CHUNK), ("usage", USAGE_CHUNK)] {
        group.throughput(Throughput::Bytes(payload.len() as u64));
        group.bench_function(name, |b| b.iter(|| scan(black_box(payload))));
    }
    group.finish();
}

criterion_group!(benches, scan_chunks);
criterion_main!(benches);

//! The integration tests, one binary: the built-in server on 127.0.0.1:0 and the generator in one process (or the
//! `ssebench` binary, where what a user sees is the point), with exact counts. Latencies are checked as lower bounds
//! (a schedule the server keeps) and orderings, never as bands: the machine may be loaded, and the exact timing
//! rules are unit-tested. The only upper bounds on time are how soon a run ends after its deadline, a timeout or
//! Ctrl-C, with wide margins: that is the behaviour those tests are about.
//!
//! Every test keeps both sides far under the 20,000-descriptor limit of one process. Only the allocation counts
//! live apart (`tests/alloc.rs`): a counting global allocator is per binary.

mod broken_pipe;
mod delivery;
mod deploy;
mod hdr_log;
mod hostile_codec;
mod hostile_ids;
mod hostile_io;
mod html;
mod integration;
mod layers;
mod live;
mod llm_chunks;
mod llm_run;
mod memory;
mod merge;
mod prometheus;
mod proxies;
mod redirects;
mod serve_knobs;
mod shards;
mod streams_log;
mod timeline;
mod tls;
mod util;

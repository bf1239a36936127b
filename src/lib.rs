//! ssebench: a load generator for Server-Sent Events.
//!
//! One pinned monoio runtime per core owns its sockets (`worker`, `runtime`); each stream's bytes go
//! through sans-IO parsers (`http1`, `sse`) driven by `stream`; per-core `recorder`s merge into a
//! `report` after the threads join. `server` is the built-in target. Data flows one way:
//! `cli` -> `config` -> `plan` -> `engine` -> `worker` -> `stream` -> `recorder` -> `report`.
//! See ARCHITECTURE.md for the code map and the invariants.
//!
//! Public: what the binary, the integration tests, the benches and the fuzz targets use. The rest is
//! `pub(crate)`, so a layer can only be reached through the modules that own it.

pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod http1;
pub mod limits;
pub mod live;
pub mod llm;
pub mod metrics;
pub mod outcome;
pub mod recorder;
pub mod report;
pub mod send_time;
pub mod server;
pub mod slo;
pub mod sse;
pub mod template;
pub mod timeline;
pub mod tls;
pub mod units;

pub(crate) mod doctor;
pub(crate) mod plan;
pub(crate) mod redirect;
pub(crate) mod requests;
pub(crate) mod rng;
pub(crate) mod runtime;
pub(crate) mod signal;
pub(crate) mod stream;
pub(crate) mod streams_log;
pub(crate) mod sys;
pub(crate) mod tls_records;
pub(crate) mod wire;
pub(crate) mod worker;

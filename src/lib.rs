//! ssebench: a load generator for Server-Sent Events.
//!
//! One pinned monoio runtime per core owns its sockets (`worker`, `runtime`); each stream's bytes go
//! through sans-IO parsers (`http1`, `sse`) driven by `stream`; per-core `recorder`s merge into a
//! `report` after the threads join. `server` is the built-in target. Data flows one way:
//! `cli` -> `config` -> `plan` -> `engine` -> `worker` -> `stream` -> `recorder` -> `report`.
//! See ARCHITECTURE.md for the code map and the invariants.

pub mod cli;
pub mod commands;
pub mod config;
pub mod doctor;
pub mod engine;
pub mod http1;
pub mod limits;
pub mod llm;
pub mod outcome;
pub mod plan;
pub mod recorder;
pub mod report;
pub mod requests;
pub mod rng;
pub mod runtime;
pub mod server;
pub mod signal;
pub mod slo;
pub mod sse;
pub mod stream;
pub mod sys;
pub mod template;
pub mod tls;
pub mod units;
pub mod wire;
pub mod worker;

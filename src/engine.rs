//! Runs a load test: plan the shards, start one pinned runtime per core, join them, merge their recorders.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::RunConfig;
use crate::http1::request::{self, RequestSpec};
use crate::plan;
use crate::recorder::Recorder;
use crate::runtime::{self, Driver};
use crate::worker::{self, RunShared};

/// Everything a report needs from a finished run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub recorder: Recorder,
    pub driver: Driver,
    pub threads: usize,
    pub elapsed: Duration,
}

/// Why a run could not start or finish. Start-up and shutdown only, so strings are fine.
#[derive(Debug)]
pub struct EngineError(pub String);

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EngineError {}

/// Runs the load test described by `cfg` and blocks until it is over. `first_core` shifts the
/// pinning, so an in-process server (the demo) can keep other cores.
pub fn run(cfg: &RunConfig, first_core: usize) -> Result<RunOutcome, EngineError> {
    cfg.validate().map_err(|e| EngineError(e.0))?;
    let driver = runtime::resolve(cfg.driver).map_err(EngineError)?;
    let shards = plan::shards(cfg);
    let request = request::encode(&RequestSpec {
        method: &cfg.method,
        path: &cfg.target.path,
        host: &cfg.target.host_header,
        headers: &cfg.headers,
        body: &cfg.body,
    });
    let start = Instant::now();
    let shared = Arc::new(RunShared { cfg: cfg.clone(), request, start, deadline: cfg.duration.map(|d| start + d) });
    let threads = shards.len();
    let mut handles = Vec::with_capacity(threads);
    for shard in shards {
        let shared = shared.clone();
        let name = format!("ssebench-worker-{}", shard.core_index);
        let slot = first_core + shard.core_index;
        let handle = runtime::spawn_pinned(name, slot, driver, move || worker::run(shard, shared))
            .map_err(|e| EngineError(format!("cannot start a worker thread: {e}")))?;
        handles.push(handle);
    }
    let mut merged = Recorder::new();
    for handle in handles {
        let recorder = handle
            .join()
            .map_err(|_| EngineError("a worker thread panicked".into()))?
            .map_err(|e| EngineError(format!("cannot start a {} runtime: {e}", driver.name())))?;
        merged.merge(&recorder);
    }
    Ok(RunOutcome { recorder: merged, driver, threads, elapsed: start.elapsed() })
}

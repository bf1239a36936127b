//! Each target's request and each scenario step's, built once per run from the checked config: encoded
//! bytes where nothing varies, else a template rendered per stream. A bad template stops the run here,
//! before anything connects.

use std::sync::Arc;

use crate::config::{ConfigError, RunConfig};
use crate::http1::request::{self, RequestSpec};
use crate::llm::prompt;
use crate::template::{LlmBody, RequestTemplate, TargetRequest};

/// What the workers send: built once, shared read-only by every core.
#[derive(Debug)]
pub struct Requests {
    /// Virtual user `g` sends `targets[g % targets.len()]`.
    pub targets: Vec<TargetRequest>,
    /// `--scenario`: each target's HTTP step requests, in step order (empty without a scenario).
    pub steps: Vec<Vec<RequestTemplate>>,
}

/// Builds every request of the run. `env` looks up `{{env NAME}}`.
pub fn build(cfg: &RunConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Requests, ConfigError> {
    Ok(Requests { targets: target_requests(cfg, env)?, steps: step_requests(cfg, env)? })
}

/// `--scenario`: each target's HTTP step requests, in step order (empty without a scenario).
fn step_requests(
    cfg: &RunConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Vec<RequestTemplate>>, ConfigError> {
    let Some(scenario) = cfg.llm.as_ref().and_then(|l| l.scenario.as_ref()) else { return Ok(Vec::new()) };
    let variables = scenario.variables();
    let own_targets = &cfg.llm.as_ref().expect("a scenario is LLM mode").step_targets;
    let users = cfg.connections as u64;
    let mut per_target = Vec::with_capacity(cfg.targets.len());
    for target in &cfg.targets {
        let mut steps = Vec::with_capacity(scenario.http.len());
        for (step, own) in scenario.http.iter().zip(own_targets) {
            let (host, path) = match own {
                Some(own) => (&own.host_header, &own.path),
                None => (&target.host_header, &step.path),
            };
            // Each step has its own headers: the run's -H headers go to the conversation only.
            let spec =
                RequestSpec { method: &step.method, path, host, headers: &step.headers, body: step.body.as_bytes() };
            let template =
                RequestTemplate::new(&spec, cfg.data.clone(), cfg.data_mode, users, cfg.seed, env, &variables, None)
                    .map_err(|e| ConfigError(format!("scenario step \"{}\": {e}", step.name)))?;
            steps.push(template);
        }
        per_target.push(steps);
    }
    Ok(per_target)
}

/// The headers of every stream's request: `-H` (and `--openai`'s), then with `--compressed` an
/// `Accept-Encoding` unless one was given.
pub fn stream_headers(cfg: &RunConfig) -> Vec<(String, String)> {
    let mut headers = cfg.headers.clone();
    let (name, value) = request::ACCEPT_ENCODING;
    if cfg.compressed && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
        headers.push((name.to_string(), value.to_string()));
    }
    headers
}

/// Each target's request: encoded once, or a template where it has placeholders. `env`
/// looks up `{{env NAME}}`.
fn target_requests(cfg: &RunConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<TargetRequest>, ConfigError> {
    let users = cfg.connections as u64;
    let mut requests = Vec::with_capacity(cfg.targets.len());
    let (llm_prefix, variables) = match &cfg.llm {
        Some(llm) => {
            (Some(prompt::body_prefix(&llm.model, llm.extra_body.as_deref()).map_err(ConfigError)?), llm.variables())
        }
        None => (None, Vec::new()),
    };
    let headers = stream_headers(cfg);
    for target in &cfg.targets {
        let path = match &cfg.llm {
            Some(llm) => llm.path_for(&target.path),
            None => target.path.clone(),
        };
        let body = llm_prefix.as_ref().map_or(&cfg.body[..], |p| p.as_bytes());
        let spec = RequestSpec { method: &cfg.method, path: &path, host: &target.host_header, headers: &headers, body };
        // A body without placeholders is never parsed into a template (a copy per target): it is held apart, the
        // run's one copy, and written after each head.
        let body_apart = cfg.llm.is_none() && memchr::memmem::find(body, b"{{").is_none();
        let llm_body = cfg.llm.as_ref().map(|llm| LlmBody {
            api: llm.api,
            prompts: llm.prompts.clone(),
            max_tokens: llm.scenario.as_ref().and_then(|s| s.conversation.max_tokens).or(llm.max_tokens),
        });
        let parsed = RequestSpec { body: if body_apart { &[] } else { body }, ..spec };
        let template =
            RequestTemplate::new(&parsed, cfg.data.clone(), cfg.data_mode, users, cfg.seed, env, &variables, llm_body)
                .map_err(ConfigError)?;
        requests.push(match (template.is_static(), body_apart) {
            (true, true) => TargetRequest::Encoded { head: request::encode_head(&spec), body: cfg.body.clone() },
            (true, false) => {
                TargetRequest::Encoded { head: request::encode_head(&spec), body: Arc::new(body.to_vec()) }
            }
            (false, true) => TargetRequest::Template(Box::new(template.with_body_apart(cfg.body.clone()))),
            (false, false) => TargetRequest::Template(Box::new(template)),
        });
    }
    if cfg.data.is_some() && requests.iter().all(|r| matches!(r, TargetRequest::Encoded { .. })) {
        return Err(ConfigError("--data is given but no header, path or body uses a {{field}} from it".into()));
    }
    Ok(requests)
}

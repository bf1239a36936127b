//! The layering ARCHITECTURE.md promises, checked from the source: the sans-IO and reporting modules
//! never reach monoio, the runtime, the engine or the worker, directly or through anything they import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that must stay pure: fed bytes and timestamps, or finished figures; no IO runtime.
const PURE: &[&str] = &[
    "http1",
    "sse",
    "llm::chunk",
    "llm::timeline",
    "metrics",
    "plan",
    "recorder",
    "redirect",
    "report",
    "slo",
    "streams_log",
    "send_time",
    "timeline",
    "tls_records",
];
/// Modules a pure one may not reach: the IO layer.
const IO_LAYER: &[&str] = &["worker", "engine", "runtime"];

/// The crate's modules: path (`llm::chunk`) to source text with its `#[cfg(test)]` tail removed.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel: PathBuf = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = match text.find("#[cfg(test)]\nmod tests") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            out.insert(parts.join("::"), code);
        }
    }
    out
}

/// Every `crate::...` path a module names, with `use crate::{a, b::c}` groups expanded one level.
fn crate_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                paths.push(item.trim().split("::{").next().unwrap().to_string());
            }
            continue;
        }
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
        paths.push(rest[..end].trim_end_matches(':').to_string());
    }
    paths
}

/// The module that owns `path`: its longest prefix that is a module.
fn owner<'m>(path: &str, modules: &'m BTreeMap<String, String>) -> Option<&'m str> {
    let segments: Vec<&str> = path.split("::").collect();
    (1..=segments.len()).rev().find_map(|n| modules.get_key_value(&segments[..n].join("::")).map(|(k, _)| k.as_str()))
}

/// `module` and everything it imports, transitively (a folder module includes its files).
fn reach(module: &str, modules: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> =
        modules.keys().filter(|k| *k == module || k.starts_with(&format!("{module}::"))).cloned().collect();
    while let Some(m) = todo.pop() {
        if !seen.insert(m.clone()) {
            continue;
        }
        for path in crate_paths(&modules[&m]) {
            if let Some(o) = owner(&path, modules) {
                todo.push(o.to_string());
            }
        }
    }
    seen
}

fn uses_monoio(code: &str) -> bool {
    code.contains("use monoio") || code.contains("monoio::")
}

fn src() -> BTreeMap<String, String> {
    modules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

#[test]
fn pure_layers_never_reach_monoio_or_the_worker() {
    let modules = src();
    for pure in PURE {
        assert!(modules.keys().any(|k| k == pure), "{pure} is not a module any more: update this test");
        let reached = reach(pure, &modules);
        let io: Vec<&String> =
            reached.iter().filter(|m| IO_LAYER.iter().any(|io| m.split("::").next() == Some(io))).collect();
        assert!(io.is_empty(), "{pure} reaches the IO layer through its imports: {io:?} (all: {reached:?})");
        let monoio: Vec<&String> = reached.iter().filter(|m| uses_monoio(&modules[*m])).collect();
        assert!(monoio.is_empty(), "{pure} reaches monoio through {monoio:?} (all: {reached:?})");
    }
}

/// The check can fail: the worker does reach monoio, and a pure module's closure is not empty.
#[test]
fn the_layering_check_sees_what_it_should() {
    let modules = src();
    let worker = reach("worker", &modules);
    assert!(worker.iter().any(|m| uses_monoio(&modules[m])), "{worker:?}");
    assert!(reach("report", &modules).contains("recorder"));
    assert_eq!(crate_paths("use crate::{a::B, c};\nlet x = crate::d::e::f();"), ["a::B", "c", "d::e::f"]);
}

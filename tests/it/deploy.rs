//! `deploy/kubernetes/`: the Job that `run.sh` fills is a valid batch/v1 Job (kubernetes-validate, with the API
//! schemas it bundles: no cluster), and its container, run here as a kubelet would run it (the container's env
//! with `$(VAR)` expanded, its command and args), runs its shard of the run and prints the report into its log,
//! from which the shards merge into the one run.
//!
//! The interpreter is `$SSEBENCH_PYTHON` (`.ci/run` sets it to its venv), else `target/ci-venv/bin/python`; it
//! must import `kubernetes_validate` (whose PyYAML also parses the manifest here). Without it the tests fail,
//! saying how to set it up: they never pass unchecked.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use serde_json::Value;

use crate::util::{read_json, serve, serve_cfg, ssebench, temp_dir};

/// The oldest Kubernetes the manifest is checked against: Indexed Jobs and the safe sysctls are older.
const KUBERNETES_VERSION: &str = "1.30.0";

/// The Python interpreter with kubernetes-validate, or a failure that says how to get one.
fn python() -> PathBuf {
    crate::util::python("kubernetes_validate, yaml", "kubernetes-validate")
}

/// `run.sh --dry-run` with these arguments: the filled manifest, written to `dir/job.yaml`.
fn dry_run(dir: &Path, args: &[&str]) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/run.sh");
    let out = Command::new("bash").arg(script).arg("--dry-run").args(args).output().unwrap();
    assert!(out.status.success(), "run.sh --dry-run: {}", String::from_utf8_lossy(&out.stderr));
    let path = dir.join("job.yaml");
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

fn validate(python: &Path, manifest: &Path) -> Output {
    Command::new(python)
        .args(["-m", "kubernetes_validate", "--strict", "-k", KUBERNETES_VERSION])
        .arg(manifest)
        .output()
        .unwrap()
}

/// The manifest as JSON, parsed by a real YAML parser (PyYAML) rather than by reading lines.
fn parse(python: &Path, manifest: &Path) -> Value {
    let load = "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)";
    let out = Command::new(python).args(["-c", load]).arg(manifest).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Kubernetes' expansion of a container's command, args and env values: `$(NAME)` of a variable defined before
/// becomes its value, `$$` becomes `$`, anything else stays as written.
fn expand(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let reference = tail.strip_prefix("$(").and_then(|t| Some(&t[..t.find(')')?]));
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some((name, value)) = reference.and_then(|name| Some((name, vars.get(name)?))) {
            out.push_str(value);
            rest = &tail[name.len() + 3..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The container's environment as the kubelet makes it for completion index `index`, its `/results` mount moved
/// to `results`: each value expanded over the ones before it, the annotation's value for the downward-API one.
fn container_env(container: &Value, index: usize, results: &Path) -> HashMap<String, String> {
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    let mut vars = HashMap::new();
    for var in container["env"].as_array().unwrap() {
        let name = var["name"].as_str().unwrap().to_string();
        let value = match var["value"].as_str() {
            Some(value) => expand(value, &vars).replacen(mount, results.to_str().unwrap(), 1),
            None => {
                let field = var["valueFrom"]["fieldRef"]["fieldPath"].as_str().unwrap();
                assert_eq!(field, "metadata.annotations['batch.kubernetes.io/job-completion-index']");
                index.to_string()
            }
        };
        vars.insert(name, value);
    }
    vars
}

/// The report a shard's log carries between its marker lines (gzip, then base64, as job.yaml prints it).
fn report_in_log(log: &str) -> Vec<u8> {
    let begin = "--- ssebench shard json.gz.base64 begin ---\n";
    let start = log.find(begin).unwrap_or_else(|| panic!("no report in the log:\n{log}")) + begin.len();
    let end = start + log[start..].find("--- ssebench shard json.gz.base64 end ---").expect("an end marker");
    let encoded: String = log[start..end].split_whitespace().collect();
    let gzipped = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&gzipped[..]).read_to_end(&mut json).unwrap();
    json
}

#[test]
fn the_filled_job_is_a_valid_indexed_job() {
    let python = python();
    let dir = temp_dir("deploy-validate");
    let url = "http://sse.example:8080/events?user={{vu}}&k=$(NOT_A_VAR)";
    let flags = ["-c", "80000", "-d", "5m", "-H", "Authorization: Bearer \"t\""];
    let manifest =
        dry_run(&dir, &[&["--name", "ssebench-ci", "4", "registry.example/ssebench:1", url], &flags[..]].concat());
    let out = validate(&python, &manifest);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    let job = parse(&python, &manifest);
    let spec = &job["spec"];
    assert_eq!((spec["completionMode"].as_str(), spec["completions"].as_u64()), (Some("Indexed"), Some(4)));
    assert_eq!((spec["parallelism"].as_u64(), spec["backoffLimit"].as_u64()), (Some(4), Some(0)));
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["sysctls"][0]["value"], "1024 65535");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["resources"]["requests"], container["resources"]["limits"], "the Guaranteed class");
    let args: Vec<&str> = container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    // The user's values reach ssebench as typed once Kubernetes has expanded the args.
    let vars = HashMap::from([("NOT_A_VAR".to_string(), "expanded".to_string())]);
    assert_eq!(expand(args[1], &vars), url);
    assert_eq!(args[2..8].iter().map(|a| expand(a, &vars)).collect::<Vec<_>>(), flags);

    // The check is strict and offline: a misspelt field fails it.
    let misspelt = dir.join("misspelt.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&misspelt, text.replace("completionMode:", "completionsMode:")).unwrap();
    let out = validate(&python, &misspelt);
    assert!(!out.status.success(), "kubernetes-validate --strict accepted an unknown field");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two pods' containers, run as the kubelet would run them, against `serve`: each runs its shard and prints its
/// report into its log, and the two reports cut out of the logs merge into the whole run.
#[test]
fn the_jobs_containers_run_their_shards_and_merge() {
    let python = python();
    let dir = temp_dir("deploy-run");
    let server = serve(serve_cfg());
    let url = format!("http://{}/", server.addr);
    let args = ["--name", "ssebench-ci", "--cpus", "1", "--start-delay", "1", "2", "ssebench:ci", &url];
    let manifest = dry_run(&dir, &[&args[..], &["-c", "4", "-n", "8", "-q"]].concat());
    let job = parse(&python, &manifest);
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    // The image's ssebench is on PATH; here, the one under test.
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_ssebench")).parent().unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin_dir.to_path_buf()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();

    let pods: Vec<_> = (0..2)
        .map(|index| {
            let results = dir.join(format!("results-{index}"));
            std::fs::create_dir_all(&results).unwrap();
            let env = container_env(container, index, &results);
            let argv: Vec<String> = ["command", "args"]
                .iter()
                .flat_map(|key| container[*key].as_array().unwrap())
                .map(|a| expand(a.as_str().unwrap(), &env))
                .collect();
            let child = Command::new(&argv[0])
                .args(&argv[1..])
                .env_clear()
                .envs(&env)
                .env("PATH", &path)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (child, env)
        })
        .collect();

    let mut shard_files = Vec::new();
    for (index, (child, env)) in pods.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "shard {index}: {log}{}", String::from_utf8_lossy(&out.stderr));
        let written = PathBuf::from(&env["RESULT_FILE"]);
        let report = read_json(&written);
        assert_eq!(
            (report["shard"]["index"].as_u64(), report["shard"]["count"].as_u64()),
            (Some(index as u64), Some(2))
        );
        assert_eq!(report_in_log(&log), std::fs::read(&written).unwrap(), "the log carries the file, byte for byte");
        let from_log = dir.join(format!("shard-{index}.json"));
        std::fs::write(&from_log, report_in_log(&log)).unwrap();
        shard_files.push(from_log);
    }
    let merged = dir.join("merged.json");
    let out = ssebench().arg("merge").args(&shard_files).arg("--json").arg(&merged).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let merged = read_json(&merged);
    assert_eq!((merged["streams"]["started"].as_u64(), merged["streams"]["completed"].as_u64()), (Some(8), Some(8)));
    let _ = std::fs::remove_dir_all(&dir);
}

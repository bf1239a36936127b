//! LLM mode end to end: `run --openai` against `serve --openai` (and small scripted servers), with exact token
//! counts and timings checked against the simulated model's shape.
//!
//! Runs are configured through the command line parser, as a user would, and run in this process.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use ssebench::cli;

use crate::util::{
    Request, SSE_HEAD_CLOSE, llm, model_server, read_head, read_request, run_args, scripted_server, serve_args,
    ssebench, temp_dir, write_scenario,
};

/// 100 tokens/s, one token per chunk, 1 ms prefill per prompt word: 20-word prompts get their first token after
/// 20 ms, then one every 10 ms; usage counts tokens exactly.
#[test]
fn usage_gives_exact_token_counts_and_ttft_waits_for_the_first_content_chunk() {
    let server = model_server(100.0, 1, 1_000);
    let url = format!("http://{}/", server.addr);
    let args = ["--openai", "chat", "--prompt-tokens", "20", "--max-tokens", "10", "-c", "2", "-n", "6"];
    let report = run_args(&[&[url.as_str()][..], &args].concat());
    let (f, l) = (&report.figures, llm(&report));
    assert_eq!((f.streams.completed, f.streams.failed), (6, 0), "{:?}", f.streams.failures);
    assert_eq!((l.output_tokens, l.input_tokens, l.streams_with_usage, l.output_tokens_estimated), (60, 120, 6, false));
    assert_eq!((l.finish_reasons.length, l.missing_done, l.unparsed_chunks, l.role_only_chunks), (6, 0, 0, 6));
    // The role chunk is the first event; the first token comes only after the prefill. In every stream the first
    // event comes no later than the first token, so each quantile of the one is at most the other's.
    let first = &f.latency_us.first_event;
    assert_eq!((first.count, l.ttft_us.count), (6, 6));
    assert!(l.ttft_us.min >= 20_000, "TTFT min {} < the 20 ms prefill", l.ttft_us.min);
    assert!(first.p50 <= l.ttft_us.p50 && first.max <= l.ttft_us.max, "first event {first:?}, TTFT {:?}", l.ttft_us);
    // 9 gaps per stream between 10 content chunks, each due 10 ms after the last.
    assert_eq!(l.itl_us.count, 6 * 9);
    assert!(l.itl_us.p50 >= 9_000, "ITL p50 {}", l.itl_us.p50);
    assert!(l.tpot_us.p50 >= 9_000, "TPOT p50 {}", l.tpot_us.p50);
    // One token per chunk: a stream's TPOT is the mean of its 9 ITLs, so it lies within their range.
    assert_eq!(l.tpot_us.count, 6);
    assert!(l.itl_us.min <= l.tpot_us.min && l.tpot_us.max <= l.itl_us.max, "ITL {:?}, TPOT {:?}", l.itl_us, l.tpot_us);
    assert!(l.itl_us.p50 <= l.itl_us.max && l.tpot_us.p50 <= l.tpot_us.max);
    assert_eq!((l.tokens_per_chunk.count, l.tokens_per_chunk.p50), (6, 1.0));
    server.stop();
}

/// `serve --openai` answers the GETs clients make before a run as vLLM does, on the same kept-alive connection as
/// the completion after them: `/health` 200 with no body, `/v1/models` the `--model-name` (which a request naming no
/// model is answered as); other GETs are refused with 404, and 405 on a completion path.
#[test]
fn health_and_model_list_answer_as_vllm_does() {
    use std::io::Read;
    let server = serve_args(&["--openai", "--model-name", "my-llm", "--tokens-per-s", "1000"]);
    let mut conn = std::net::TcpStream::connect(server.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    conn.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let health = read_request(&mut conn).expect("a /health answer");
    assert!(health.head.starts_with("HTTP/1.1 200 OK\r\n"), "{}", health.head);
    assert_eq!(health.body, "");
    conn.write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let models = read_request(&mut conn).expect("a /v1/models answer on the same connection");
    assert!(models.head.starts_with("HTTP/1.1 200 OK\r\n"), "{}", models.head);
    assert!(models.head.to_ascii_lowercase().contains("content-type: application/json"), "{}", models.head);
    let list: serde_json::Value = serde_json::from_str(&models.body).unwrap();
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["my-llm"]);
    assert_eq!(list["data"][0]["object"], "model");
    // The completion after them, on the same connection, names the served model.
    let body = r#"{"stream":true,"prompt":"a b","max_tokens":2}"#;
    let post = format!("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    conn.write_all(post.as_bytes()).unwrap();
    let head = read_head(&mut conn).expect("a completion answer");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let stream = read_to_last_chunk(&mut conn);
    assert!(stream.contains(r#""model":"my-llm""#) && stream.contains("data: [DONE]"), "{stream}");
    for (request, status) in [
        ("GET /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n", "405"),
        ("GET /v1/engines HTTP/1.1\r\nHost: x\r\n\r\n", "404"),
    ] {
        let mut conn = std::net::TcpStream::connect(server.addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        conn.write_all(request.as_bytes()).unwrap();
        let answer = read_request(&mut conn).expect("an answer");
        assert_eq!(&answer.head[9..12], status, "{request}: {}", answer.head);
        // Refusals close the connection: end of file (or a reset), never a read that times out.
        match conn.read(&mut [0u8; 64]) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("{request}: the connection stayed open: {other:?}"),
        }
    }
    server.stop();
}

/// A chunked body read up to its last chunk, which the connection (kept alive) is not closed after.
fn read_to_last_chunk(conn: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut body = Vec::new();
    let mut piece = [0u8; 4096];
    while !body.ends_with(b"0\r\n\r\n") {
        let n = conn.read(&mut piece).unwrap();
        assert!(n > 0, "closed before the last chunk: {}", String::from_utf8_lossy(&body));
        body.extend_from_slice(&piece[..n]);
    }
    String::from_utf8(body).unwrap()
}

/// The GETs and a completion sent in one write, as a pipelining client would: three answers, in order.
#[test]
fn pipelined_gets_and_a_completion_are_answered_in_order() {
    let server = serve_args(&["--openai", "--tokens-per-s", "1000"]);
    let mut conn = std::net::TcpStream::connect(server.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = r#"{"stream":true,"prompt":"a","max_tokens":1}"#;
    let requests = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n\
         POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(requests.as_bytes()).unwrap();
    let health = read_request(&mut conn).expect("a /health answer");
    assert!(health.head.starts_with("HTTP/1.1 200 OK\r\n") && health.body.is_empty(), "{}", health.head);
    let models = read_request(&mut conn).expect("a /v1/models answer");
    assert!(models.body.contains(r#""id":"ssebench-sim""#), "{}", models.body);
    let head = read_head(&mut conn).expect("the completion's head");
    assert!(head.contains("text/event-stream"), "{head}");
    assert!(read_to_last_chunk(&mut conn).contains("data: [DONE]"));
    server.stop();
}

/// A stream cut by the end of `-d` counts the chunks it got so far; the per-stream token figures are the completed
/// streams' alone (the issue: 20 streams at concurrency 1 read as 62.5 tokens each where every completed one had 64).
/// 64 tokens at 100/s take 640 ms: in 1 s one stream completes and the next is cut about 360 ms into its answer. The
/// counts are asserted as bounds, so a stalled machine that completes none or cuts none still passes what it shows.
#[test]
fn completed_streams_tokens_are_reported_apart_from_cut_ones() {
    let server = model_server(100.0, 1, 0);
    let url = format!("http://{}/v1", server.addr);
    let report = run_args(&[&url, "--openai", "chat", "--prompt-tokens", "4", "-c", "1", "-d", "1s"]);
    let l = llm(&report);
    let e = l.by_end.expect("a run's report splits its tokens");
    assert!(e.completed_streams >= 1 && e.cut_streams <= 1 && e.failed_streams == 0, "{e:?}");
    assert_eq!(e.completed_output_tokens, 64 * e.completed_streams, "{e:?}");
    assert_eq!(e.completed_output_tokens_mean, 64.0, "{e:?}");
    // A cut stream counted its chunks so far: fewer than an answer.
    assert!(e.cut_output_tokens < 64 * e.cut_streams.max(1), "{e:?}");
    assert_eq!(l.output_tokens, e.completed_output_tokens + e.cut_output_tokens);
    let per_stream = l.output_tokens_per_stream.expect("a run's report has the per-stream tokens");
    assert_eq!((per_stream.count, per_stream.min, per_stream.max), (e.completed_streams, 64, 64), "{per_stream:?}");
    // The text report prints the split and the per-stream row.
    let text = ssebench::report::render_text(&report);
    assert!(text.contains("completed with 64.0 output tokens each"), "{text}");
    assert!(text.lines().any(|line| line.starts_with("out tokens")), "{text}");
    server.stop();
}

/// A server that sends no usage chunk: output tokens are the content chunks counted, and the report says so.
#[test]
fn without_usage_output_tokens_are_estimated_from_chunks() {
    let server = model_server(500.0, 2, 0);
    let url = format!("http://{}/v1", server.addr);
    let no_usage = r#"{"stream_options":{"include_usage":false}}"#;
    let args = ["--openai", "chat", "--max-tokens", "10", "--extra-body", no_usage, "-c", "2", "-n", "4"];
    let report = run_args(&[&[url.as_str()][..], &args].concat());
    let l = llm(&report);
    assert_eq!(report.figures.streams.completed, 4, "{:?}", report.figures.streams.failures);
    // 10 tokens in chunks of 2: 5 content chunks per stream, counted as 5 tokens.
    assert_eq!((l.output_tokens, l.output_chunks, l.input_tokens), (20, 20, 0));
    assert_eq!((l.streams_with_usage, l.streams_estimated, l.output_tokens_estimated), (0, 4, true));
    server.stop();
}

/// `--prompts` lines go out in turn (like `--data-mode request`), each with its own max_tokens.
#[test]
fn prompt_file_lines_reach_the_server_with_their_max_tokens() {
    let server = model_server(1_000.0, 1, 0);
    let dir = temp_dir("prompts");
    let prompts = dir.join("prompts.jsonl");
    std::fs::write(
        &prompts,
        "{\"prompt\": \"a b c\", \"max_tokens\": 3}\n\n{\"prompt\": \"a b c d e f\", \"max_tokens\": 5}\n",
    )
    .unwrap();
    let url = format!("http://{}/", server.addr);
    let report =
        run_args(&[&url, "--openai", "completions", "--prompts", prompts.to_str().unwrap(), "-c", "1", "-n", "4"]);
    let l = llm(&report);
    assert_eq!(report.figures.streams.completed, 4, "{:?}", report.figures.streams.failures);
    assert_eq!((l.input_tokens, l.output_tokens, l.finish_reasons.length), (3 + 6 + 3 + 6, 3 + 5 + 3 + 5, 4));
    std::fs::remove_dir_all(&dir).ok();
    server.stop();
}

/// A scripted server: `POST .../login` answers `{"access_token": "tok-<user>"}` (user from the JSON body); any other
/// request gets `stream` (a whole SSE response body) and the connection closes. Every request comes back on the
/// receiver.
fn scripted_llm_server(stream: &'static str) -> (SocketAddr, Receiver<Request>) {
    scripted_server(move |conn, request| {
        if request.head.starts_with("POST /login") {
            let json: serde_json::Value = serde_json::from_str(&request.body).unwrap();
            let answer = format!(r#"{{"access_token":"tok-{}"}}"#, json["user"].as_str().unwrap());
            let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{answer}", answer.len());
            return;
        }
        let _ = conn.write_all(SSE_HEAD_CLOSE);
        let _ = conn.write_all(stream.as_bytes());
    })
}

const ANSWER_HI: &str = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n\
    data: {\"choices\":[{\"delta\":{\"content\":\"hi \\\"there\\\"\"}}]}\n\n\
    data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}\n\n\
    data: [DONE]\n\n";

/// An error object inside a 200 stream fails the stream as its own class.
#[test]
fn an_error_inside_the_stream_is_an_llm_error() {
    let stream = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n\
                  data: {\"error\":{\"message\":\"overloaded\",\"code\":503}}\n\ndata: [DONE]\n\n";
    let (addr, _seen) = scripted_llm_server(stream);
    let report = run_args(&[&format!("http://{addr}/"), "--openai", "chat", "-c", "1", "-n", "3"]);
    let streams = &report.figures.streams;
    assert_eq!((streams.failed, streams.failures["llm_error"]), (3, 3), "{:?}", streams.failures);
}

/// The login step's token goes into every turn's header, and each turn sends the conversation so far: the
/// system message, earlier user messages and the answers received.
#[test]
fn a_journey_logs_in_and_sends_the_growing_conversation() {
    let (addr, seen) = scripted_llm_server(ANSWER_HI);
    let scenario = write_scenario(
        "login",
        r#"
[[http]]
name = "login"
method = "POST"
path = "/login"
body = '{"user": "u{{vu}}"}'
extract = { token = "$.access_token" }

[conversation]
turns = 2
system = "Be brief."
messages = ["first question", "second question"]
headers = { Authorization = "Bearer {{token}}" }
"#,
    );
    let report = run_args(&[
        &format!("http://{addr}/v1"),
        "--openai",
        "chat",
        "--scenario",
        scenario.to_str().unwrap(),
        "-c",
        "1",
        "-n",
        "2",
    ]);
    assert_eq!(report.figures.streams.completed, 2, "{:?}", report.figures.streams.failures);
    let l = llm(&report);
    assert_eq!((l.steps[0].name.as_str(), l.steps[0].ok, l.steps[0].failed), ("login", 1, 0));
    let (logins, requests): (Vec<Request>, Vec<Request>) =
        seen.try_iter().partition(|r| r.head.starts_with("POST /login "));
    assert_eq!((logins.len(), requests.len()), (1, 2), "one login, then a request per turn");
    for Request { head, .. } in &requests {
        assert!(head.starts_with("POST /v1/chat/completions "), "{head}");
        assert!(head.contains("\r\nAuthorization: Bearer tok-u0\r\n"), "{head}");
    }
    let messages = |body: &str| -> Vec<(String, String)> {
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            (json["stream"].as_bool(), json["stream_options"]["include_usage"].as_bool()),
            (Some(true), Some(true))
        );
        let list = json["messages"].as_array().unwrap();
        list.iter().map(|m| (m["role"].as_str().unwrap().into(), m["content"].as_str().unwrap().into())).collect()
    };
    let pair = |role: &str, content: &str| (role.to_string(), content.to_string());
    assert_eq!(messages(&requests[0].body), vec![pair("system", "Be brief."), pair("user", "first question")]);
    assert_eq!(
        messages(&requests[1].body),
        vec![
            pair("system", "Be brief."),
            pair("user", "first question"),
            pair("assistant", "hi \"there\""),
            pair("user", "second question"),
        ]
    );
    let turns = &l.turns;
    assert_eq!((turns[0].streams, turns[1].streams), (1, 1));
}

/// With the prompt growing turn by turn, the simulated model's prefill (2 ms per prompt word) makes TTFT rise
/// with the turn number; usage shows the growing input exactly.
#[test]
fn ttft_rises_with_the_turn_number() {
    let server = model_server(1_000.0, 1, 2_000);
    let scenario = write_scenario(
        "turns",
        r#"
[conversation]
turns = 3
system = "one two three"
messages = ["a b c d e f g h i j"]
max_tokens = 10
"#,
    );
    let url = format!("http://{}/", server.addr);
    let report = run_args(&[&url, "--openai", "chat", "--scenario", scenario.to_str().unwrap(), "-c", "2", "-n", "6"]);
    assert_eq!(report.figures.streams.completed, 6, "{:?}", report.figures.streams.failures);
    let turns = &llm(&report).turns;
    // Turn 1: system 3 + user 10 words; each later turn adds the 10-token answer and 10 more words.
    let inputs: Vec<f64> = turns.iter().map(|t| t.input_tokens_mean).collect();
    assert_eq!(inputs, vec![13.0, 33.0, 53.0]);
    let ttft: Vec<u64> = turns.iter().map(|t| t.ttft_us.p50).collect();
    // 2 ms per word: 26, 66 and 106 ms of prefill, each at least that and each more than the turn before.
    for (turn, (&got, want)) in ttft.iter().zip([26_000, 66_000, 106_000]).enumerate() {
        assert!(got >= want, "turn {} TTFT p50 {got} us, prefill {want} us", turn + 1);
    }
    assert!(ttft[0] < ttft[1] && ttft[1] < ttft[2], "TTFT p50 per turn {ttft:?}");
    server.stop();
}

/// The key goes out in `Authorization` but never into the report, the JSON file or any message.
#[test]
fn the_api_key_is_sent_but_never_shown() {
    let (addr, seen) = scripted_llm_server(ANSWER_HI);
    let dir = temp_dir("api-key");
    let json_path = dir.join("out.json");
    let output = ssebench()
        .args(["run", &format!("http://{addr}/"), "--openai", "chat", "-c", "1", "-n", "1", "--json"])
        .arg(&json_path)
        .env("OPENAI_API_KEY", "sk-test-0123456789")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let head = seen.recv_timeout(Duration::from_secs(5)).unwrap().head;
    assert!(head.contains("\r\nAuthorization: Bearer sk-test-0123456789\r\n"), "{head}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = std::fs::read_to_string(&json_path).unwrap();
    for shown in [&stdout[..], &String::from_utf8_lossy(&output.stderr)[..], &json[..]] {
        assert!(!shown.contains("sk-test"), "the key leaked: {shown}");
    }
    assert!(stdout.contains("Authorization: Bearer [redacted]"), "{stdout}");
    assert!(json.contains("Authorization: Bearer [redacted]"), "{json}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn demo_openai_shows_the_llm_report() {
    let output = ssebench().args(["demo", "--openai", "-d", "1500ms", "-c", "20"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in ["OpenAI    chat", "Tokens    ", "TTFT", "ITL", "TPOT", "tokens/chunk"] {
        assert!(stdout.contains(line), "no {line:?} in {stdout}");
    }
}

/// Flags that cannot work exit 2 and name the problem.
#[test]
fn bad_llm_flags_exit_2_naming_the_flag() {
    for (args, names) in [
        (&["--openai", "chat", "--body", "x"][..], "--body"),
        (&["--openai", "chat", "--extra-body", "[1]"][..], "--extra-body"),
        (&["--openai", "chat", "--extra-body", r#"{"max_tokens":3}"#][..], "max_tokens"),
        (&["--openai", "chat", "--prompt-tokens", "0"][..], "prompt-tokens"),
        (&["--openai", "chat", "--prompts", "/nonexistent/p.jsonl"][..], "--prompts"),
        (&["--model", "m"][..], "--openai"),
    ] {
        let output = ssebench().args(["run", "http://127.0.0.1:9/"]).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(names), "{args:?}: {stderr}");
    }
}

/// A login that yields no token fails its journey: counted per step, and as a failed stream (`step_failed`), so
/// the success rate shows it; the run still ends after -n.
#[test]
fn a_failed_step_is_counted_and_the_journey_starts_over() {
    let (addr, seen) = scripted_llm_server(ANSWER_HI);
    let scenario = write_scenario(
        "nologin",
        r#"
[[http]]
name = "login"
path = "/not-a-login"
extract = { token = "$.access_token" }

[conversation]
turns = 2
messages = ["hello"]
"#,
    );
    let report = run_args(&[
        &format!("http://{addr}/"),
        "--openai",
        "chat",
        "--scenario",
        scenario.to_str().unwrap(),
        "-c",
        "1",
        "-n",
        "3",
    ]);
    let streams = &report.figures.streams;
    assert_eq!(
        (streams.failed, streams.failures["step_failed"], streams.completed),
        (3, 3, 0),
        "{:?}",
        streams.failures
    );
    let step = &llm(&report).steps[0];
    assert_eq!((step.ok, step.failed), (0, 3));
    // The step's own request went out three times; no conversation request ever did.
    assert_eq!(seen.try_iter().filter(|r| r.head.contains("/v1/chat/completions")).count(), 0);
}

/// Token objectives judge the LLM figures; on a run without --openai they are refused.
#[test]
fn token_slos_judge_the_llm_figures() {
    let server = model_server(100.0, 1, 0);
    let url = format!("http://{}/", server.addr);
    let args =
        ["--openai", "chat", "--max-tokens", "5", "-c", "1", "-n", "2", "--slo", "itl.p50<1ms", "--slo", "ttft.p99<5s"];
    let report = run_args(&[&[url.as_str()][..], &args].concat());
    let verdicts: Vec<(&str, bool)> = report.slos.iter().map(|v| (v.slo.as_str(), v.pass)).collect();
    assert_eq!(verdicts, vec![("itl.p50<1ms", false), ("ttft.p99<5s", true)]);
    let argv = ["ssebench", "run", &url, "--slo", "ttft.p99<1s"];
    let err = cli::parse_from(argv).map(|_| ()).unwrap_err();
    assert!(err.message().contains("needs --openai"), "{err}");
    server.stop();
}

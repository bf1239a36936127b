//! `--html` as a user opens it: a 20 s staged run and an LLM run rendered in a real headless Chromium (the
//! distribution's package, which `.ci/run` installs) with every request it would make sent to a proxy this test holds,
//! which must see none; every chart drew, the figures on the page are the JSON's, and `report --html` and
//! `merge --html` embed the very JSON they read or write. Screenshots are kept under `target/html-report/` to look at.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::util::{read_json, serve_args, ssebench, temp_dir, write_scenario};

/// Where the screenshots stay after the test, for a person to look at.
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/html-report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn chromium() -> &'static str {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return name;
        }
    }
    panic!("no chromium on PATH: run `bash .ci/run`, which installs the distribution's chromium package");
}

/// Hosts Chromium reaches for by itself, whatever the page (found by opening an empty page through the trap: its
/// network time, sign-in and search preconnects, which no flag of Chromium 147/148 turns off). Anything else is the
/// page's.
const CHROMIUM_OWN_HOSTS: [&str; 3] = ["clients2.google.com", "accounts.google.com", "www.google.com"];

/// A proxy that answers nothing and writes down what was asked of it: Chromium is pointed at it for every URL,
/// loopback included, so any request the page makes (a CDN script, a font, an image) shows up here.
struct Trap {
    addr: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Trap {
    fn new() -> Trap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut request = [0u8; 512];
                let n = (&conn).read(&mut request).unwrap_or(0);
                let line = String::from_utf8_lossy(&request[..n]).lines().next().unwrap_or("").to_string();
                seen.lock().unwrap().push(line);
            }
        });
        Trap { addr, requests }
    }

    /// The hosts of the requests the page made (those Chromium makes by itself left out).
    fn page_hosts(&self) -> Vec<String> {
        let requests = self.requests.lock().unwrap();
        // `CONNECT host:443 HTTP/1.1` or `GET http://host/path HTTP/1.1`.
        let host = |line: &String| {
            let target = line.split(' ').nth(1).unwrap_or("");
            let target = target.split_once("://").map_or(target, |(_, rest)| rest);
            target.split(['/', ':']).next().unwrap_or("").to_string()
        };
        // A connection that closed without a request line (Chromium preconnects to its proxy, and may drop the
        // connection unused) asked for nothing.
        let asked = requests.iter().filter(|line| !line.is_empty());
        asked.map(host).filter(|h| !CHROMIUM_OWN_HOSTS.contains(&h.as_str())).collect()
    }
}

/// Opens `page` in headless Chromium with the network trapped: returns the DOM after the page's scripts ran and the
/// hosts the page reached for; with `shot`, saves a screenshot under that name first.
fn open_trapped(page: &Path, shot: Option<&str>) -> (String, Vec<String>) {
    let chromium = chromium();
    let trap = Trap::new();
    let profile = temp_dir(&format!("chromium-{}", shot.unwrap_or("control")));
    let chromium_with = |extra: &[String]| {
        let mut cmd = Command::new(chromium);
        cmd.args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-sync",
            "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,Translate,MediaRouter",
            "--hide-scrollbars",
            "--window-size=1400,4600",
        ]);
        cmd.arg(format!("--user-data-dir={}", profile.display()));
        cmd.arg(format!("--proxy-server=http://{}", trap.addr));
        // Loopback too: by default Chromium bypasses the proxy for it.
        cmd.arg("--proxy-bypass-list=<-loopback>");
        cmd.args(extra);
        cmd.arg(format!("file://{}", page.display()));
        cmd.output().unwrap()
    };
    if let Some(shot) = shot {
        let png = screenshot_dir().join(format!("{shot}.png"));
        let _ = std::fs::remove_file(&png);
        let out = chromium_with(&[format!("--screenshot={}", png.display())]);
        assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
        assert!(std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0) > 10_000, "no screenshot at {}", png.display());
    }
    let dump = chromium_with(&["--dump-dom".to_string()]);
    assert!(dump.status.success(), "chromium: {}", String::from_utf8_lossy(&dump.stderr));
    (String::from_utf8(dump.stdout).unwrap(), trap.page_hosts())
}

/// `open_trapped`, for a page that must reach for nothing.
fn open_in_chromium(page: &Path, shot: &str) -> String {
    let (dom, hosts) = open_trapped(page, Some(shot));
    assert!(hosts.is_empty(), "the page reached for the network: {hosts:?}");
    dom
}

/// The page's embedded data (`<script id="ssebench-data">`), parsed.
fn embedded_data(page: &str) -> Value {
    let start = page.find("<script id=\"ssebench-data\" type=\"application/json\">").expect("the data element");
    let body = &page[start..];
    let body = &body[body.find('>').unwrap() + 1..body.find("</script>").unwrap()];
    serde_json::from_str(body).expect("the embedded data is JSON")
}

/// Nothing on the page that a browser would fetch: no external element, and no URL where one would be loaded.
fn assert_self_contained(page: &str) {
    for tag in ["<link", "<img", "<iframe", "<object", "<embed", "<audio", "<video", "<source"] {
        assert!(!page.contains(tag), "the page has a {tag} element");
    }
    for at in ["src=", "href=", "url(", "@import", "srcset=", "action=", "fetch(", "XMLHttpRequest", "import("] {
        for (i, _) in page.match_indices(at) {
            let value = page[i + at.len()..].trim_start_matches(['"', '\'', ' ']);
            assert!(
                !(value.starts_with("http:") || value.starts_with("https:") || value.starts_with("//")),
                "a fetchable reference: {}",
                &page[i..(i + 80).min(page.len())]
            );
        }
    }
}

/// Every chart named drew (uPlot made its canvas and drew at least one point), and the page drew as many as it made.
fn assert_charts_drew(dom: &str, names: &[&str]) {
    for name in names {
        let at = dom.find(&format!("data-chart=\"{name}\"")).unwrap_or_else(|| panic!("no chart {name}"));
        let tag_end = at + dom[at..].find('>').unwrap();
        let drawn = dom[at..tag_end].split("data-drawn=\"").nth(1).and_then(|v| v.split('"').next());
        let points: usize = drawn.and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("chart {name} never drew"));
        assert!(points > 0, "chart {name} drew no point");
    }
    let made = dom.matches("data-chart=\"").count();
    let canvases = dom.matches("<canvas").count();
    assert!(canvases >= names.len(), "{canvases} canvases for {} charts", names.len());
    assert!(dom.contains(&format!("data-charts=\"{made}\"")), "the page counts {made} charts");
}

/// The text of the page element marked `data-figure="path"`.
fn figure<'a>(dom: &'a str, path: &str) -> &'a str {
    let at = dom.find(&format!("data-figure=\"{path}\"")).unwrap_or_else(|| panic!("no figure {path}"));
    let text = &dom[at + dom[at..].find('>').unwrap() + 1..];
    &text[..text.find('<').unwrap()]
}

/// A count as the page writes it (`14,335`).
fn count(dom: &str, path: &str) -> u64 {
    figure(dom, path).replace(',', "").parse().unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A latency as the page writes it (`812 µs`, `1.26 ms`, `2.5 s`), in µs, and how close to exact it is.
fn micros(dom: &str, path: &str) -> (f64, f64) {
    let text = figure(dom, path);
    let (number, unit) = text.split_once(' ').unwrap_or_else(|| panic!("{path}: {text}"));
    let n: f64 = number.parse().unwrap();
    match unit {
        "µs" => (n, 0.5),
        "ms" => (n * 1e3, n * 1e3 * 0.005),
        "s" => (n * 1e6, n * 1e6 * 0.005),
        other => panic!("{path}: unit {other}"),
    }
}

fn assert_latency(dom: &str, path: &str, json_us: u64) {
    let (shown, within) = micros(dom, path);
    assert!((shown - json_us as f64).abs() <= within, "{path}: page {shown} µs, JSON {json_us} µs");
}

fn run_with_html(args: &[&str], dir: &Path) -> (Value, String) {
    let (json_path, html_path) = (dir.join("run.json"), dir.join("run.html"));
    let out = ssebench()
        .arg("run")
        .args(args)
        .args(["-t", "1", "-q", "--json"])
        .arg(&json_path)
        .arg("--html")
        .arg(&html_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let json = read_json(&json_path);
    (json, std::fs::read_to_string(&html_path).unwrap())
}

#[test]
fn a_staged_run_draws_every_chart_offline_with_the_json_figures() {
    let server = serve_args(&["--interval", "100ms", "--size", "100"]);
    let dir = temp_dir("html-staged");
    let url = format!("http://{}/", server.addr);
    let (json, page) = run_with_html(
        &[
            &url,
            "--stages",
            "20:5s,60:5s,40:5s,10:5s",
            "--stream-duration",
            "2s",
            "--slo",
            "first_event.p99<5s",
            "-H",
            "Authorization: Bearer sk-not-in-the-page",
        ],
        &dir,
    );
    assert_self_contained(&page);
    assert!(!page.contains("sk-not-in-the-page"), "a secret reached the page");
    // The trap's positive control: a page with the kind of reference a report must not have is caught.
    let control = dir.join("control.html");
    let cdn =
        "<script src=\"https://cdn.jsdelivr.net/npm/uplot\"></script><img src=\"http://fonts.example.test/a.png\">";
    std::fs::write(&control, format!("<!DOCTYPE html><html><body>{cdn}</body></html>")).unwrap();
    let (_, caught) = open_trapped(&control, None);
    assert!(caught.iter().any(|h| h == "cdn.jsdelivr.net"), "the trap missed a CDN script: {caught:?}");
    assert_eq!(embedded_data(&page)["report"], json, "the page's report is the JSON's");
    let dom = open_in_chromium(&dir.join("run.html"), "staged");
    assert_charts_drew(
        &dom,
        &[
            "open_streams",
            "starts_failures",
            "throughput",
            "first_event",
            "gap",
            "reconnects",
            "dist_first_event",
            "dist_gap",
            "dist_stream",
            "dist_events_per_stream",
        ],
    );
    assert_eq!(count(&dom, "events.received"), json["events"]["received"].as_u64().unwrap());
    assert_eq!(count(&dom, "streams.started"), json["streams"]["started"].as_u64().unwrap());
    assert_eq!(count(&dom, "streams.failed"), json["streams"]["failed"].as_u64().unwrap());
    for stage in 1..=4 {
        let path = format!("stages.{stage}.streams.started");
        assert_eq!(count(&dom, &path), json["stages"][stage - 1]["streams"]["started"].as_u64().unwrap(), "{path}");
    }
    let p50 = json["latency_us"]["first_event"]["p50"].as_u64().unwrap();
    assert_latency(&dom, "latency_us.first_event.p50", p50);
    assert!(dom.contains("first_event.p99&lt;5s") || dom.contains("first_event.p99<5s"), "the SLO is shown");
    assert!(dom.contains("Bearer [redacted]"), "the command line is shown, redacted");
}

#[test]
fn an_llm_run_draws_its_token_charts_with_the_json_figures() {
    // Journeys of three turns whose prompts grow (the server's prefill time with them), so TTFT rises by turn.
    let server =
        serve_args(&["--openai", "--tokens-per-s", "200", "--output-tokens", "40", "--prefill-us-per-token", "300"]);
    let dir = temp_dir("html-llm");
    let turns = "[conversation]\nturns = 3\nsystem = \"one two three\"\nmessages = [\"a b c d e f g h i j\"]\nmax_tokens = 40\n";
    let scenario = write_scenario("html-llm", turns);
    let url = format!("http://{}/", server.addr);
    let args = [&url, "--openai", "chat", "--scenario", scenario.to_str().unwrap(), "-c", "8", "-d", "6s"];
    let (json, page) = run_with_html(&args, &dir);
    assert_self_contained(&page);
    let dom = open_in_chromium(&dir.join("run.html"), "llm");
    assert_charts_drew(
        &dom,
        &[
            "open_streams",
            "starts_failures",
            "throughput",
            "ttft",
            "itl",
            "output_tokens",
            "dist_first_event",
            "dist_gap",
            "dist_tokens_per_chunk",
            "ttft_by_turn",
        ],
    );
    assert_eq!(json["llm"]["turns"].as_array().map(Vec::len), Some(3), "three turns");
    let llm = &json["llm"];
    assert!(llm["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(count(&dom, "llm.output_tokens"), llm["output_tokens"].as_u64().unwrap());
    // The completed streams' tokens, apart from cut ones, as the JSON has them.
    let per_stream = &llm["output_tokens_per_stream"];
    assert!(per_stream["count"].as_u64().unwrap() > 0, "{per_stream}");
    assert_eq!(count(&dom, "llm.output_tokens_per_stream.max"), per_stream["max"].as_u64().unwrap());
    assert_latency(&dom, "llm.ttft_us.p50", llm["ttft_us"]["p50"].as_u64().unwrap());
}

/// `report --html` draws the file it read, and `merge --html` the JSON it wrote, so page and JSON never disagree.
#[test]
fn report_and_merge_pages_embed_the_json_they_read_and_write() {
    let server = serve_args(&["--events", "5", "--interval", "1ms"]);
    let dir = temp_dir("html-merge");
    let url = format!("http://{}/", server.addr);
    let mut paths = Vec::new();
    for name in ["a", "b"] {
        let path = dir.join(format!("{name}.json"));
        let out = ssebench().args(["run", &url, "-c", "4", "-n", "20", "-t", "1", "-q", "--json"]).arg(&path).output();
        assert!(out.unwrap().status.success());
        paths.push(path);
    }
    let again = dir.join("a.html");
    let out = ssebench().arg("report").arg(&paths[0]).arg("--html").arg(&again).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let page = std::fs::read_to_string(&again).unwrap();
    assert_self_contained(&page);
    assert_eq!(embedded_data(&page)["report"], read_json(&paths[0]));

    let (merged, merged_html) = (dir.join("m.json"), dir.join("m.html"));
    let out = ssebench()
        .arg("merge")
        .args(&paths)
        .arg("--json")
        .arg(&merged)
        .arg("--html")
        .arg(&merged_html)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let data = embedded_data(&std::fs::read_to_string(&merged_html).unwrap());
    assert_eq!(data["report"], read_json(&merged));
    assert_eq!(data["report"]["events"]["received"].as_u64(), Some(2 * 20 * 5));
    assert!(data["report"]["command_line"].as_str().unwrap().starts_with("ssebench merge "));
    assert_eq!(data["distributions"]["first_event"].as_array().map(Vec::len), Some(81));

    // Not a report: a clear error, and no page.
    let junk = dir.join("junk.json");
    std::fs::write(&junk, "{\"hello\": 1}").unwrap();
    let out = ssebench().arg("report").arg(&junk).arg("--html").arg(dir.join("junk.html")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an ssebench JSON report"));
    assert!(!dir.join("junk.html").exists());
}

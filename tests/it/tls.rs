//! HTTPS end to end: `serve --tls-cert` and `run https://` with the throw-away certificates of `util::pki` (rcgen),
//! through the command-line parser, so every flag is tested as a user types it.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use crate::util::{
    LOOPBACK, failures, https_url, llm, pki, read_json, run_args, serve_args, ssebench, tls_server, write_scenario,
};

#[test]
fn a_run_with_the_test_ca_verifies_and_counts_every_event() {
    let server = tls_server("localhost", &["--events", "7", "--interval", "1ms"]);
    let ca = pki().path("ca.pem");
    let report =
        run_args(&[&https_url(&server), "--cacert", &ca, "-c", "4", "-n", "40", "--slo", "tls_handshake.max<30s"]);
    let streams = &report.figures.streams;
    assert!(report.slos[0].pass && report.slos[0].measured > 0.0, "{:?}", report.slos);
    assert_eq!((streams.completed, streams.failed), (40, 0), "{:?}", streams.failures);
    assert_eq!(report.figures.events.received, 280);
    let handshakes = report.figures.tls_handshakes.as_ref().expect("handshakes are counted");
    // Streams reuse their kept-alive connection: one handshake per user.
    assert_eq!(handshakes.full + handshakes.resumed, 4);
    assert_eq!(report.figures.latency_us.tls_handshake.count, 4);
    assert!(report.figures.latency_us.tls_handshake.min > 0);
    let tls = report.request.as_ref().and_then(|r| r.tls.as_ref()).expect("the report has the TLS settings");
    assert!(tls.verify && tls.resume && !tls.client_cert);
    assert!(tls.roots.contains("ca.pem"), "{}", tls.roots);
    server.stop();
}

#[test]
fn without_the_ca_the_certificate_is_not_trusted() {
    let server = tls_server("localhost", &[]);
    let report = run_args(&[&https_url(&server), "-c", "2", "-n", "6"]);
    assert_eq!(report.figures.streams.failed, 6);
    assert_eq!(failures(&report, "tls_untrusted"), 6);
    assert_eq!(report.figures.latency_us.tls_handshake.count, 0);
    server.stop();
}

#[test]
fn a_certificate_for_another_name_is_a_name_mismatch() {
    let server = tls_server("elsewhere", &[]);
    let ca = pki().path("ca.pem");
    let report = run_args(&[&https_url(&server), "--cacert", &ca, "-c", "2", "-n", "6"]);
    assert_eq!(report.figures.streams.failed, 6);
    assert_eq!(failures(&report, "tls_name_mismatch"), 6);
    server.stop();
}

/// Through the binary, so the printed report is what a user sees.
#[test]
fn insecure_accepts_any_certificate_and_the_report_says_so() {
    let server = tls_server("elsewhere", &["--events", "3", "--interval", "1ms"]);
    let json = pki().dir.join("insecure.json");
    let output = ssebench()
        .args(["run", &https_url(&server), "--insecure", "-c", "2", "-n", "10", "-t", "1", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("10 completed, 0 failed"), "{stdout}");
    assert!(stdout.contains("TLS       certificate verification OFF (--insecure)"), "{stdout}");
    assert!(stdout.contains("tls handshake"), "{stdout}");
    let report = read_json(&json);
    assert_eq!(report["request"]["tls"]["verify"], false);
    assert_eq!(report["events"]["received"], 30);
    server.stop();
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let pki = pki();
    let client_ca = pki.path("client-ca.pem");
    let server = tls_server("localhost", &["--tls-client-ca", &client_ca, "--events", "5", "--interval", "1ms"]);
    let (ca, cert, key) = (pki.path("ca.pem"), pki.path("client.pem"), pki.path("client.key"));
    let report =
        run_args(&[&https_url(&server), "--cacert", &ca, "--cert", &cert, "--key", &key, "-c", "2", "-n", "8"]);
    assert_eq!((report.figures.streams.completed, report.figures.events.received), (8, 40));
    assert!(report.request.as_ref().and_then(|r| r.tls.as_ref()).is_some_and(|t| t.client_cert));
    // Without it the server refuses with an alert (in TLS 1.3, after the client's side of the handshake is done).
    let report = run_args(&[&https_url(&server), "--cacert", &ca, "-c", "2", "-n", "4"]);
    assert_eq!((report.figures.streams.failed, failures(&report, "tls_alert")), (4, 4));
    server.stop();
}

/// Each stream ends after 30 ms (`--stream-duration`), so each next one is a new connection: with resumption on,
/// each user's first handshake is full and the rest resume; off, all are full.
#[test]
fn tls_resume_on_resumes_every_reconnect_and_off_resumes_none() {
    let server = tls_server("localhost", &["--events", "0", "--interval", "5ms"]);
    let ca = pki().path("ca.pem");
    let go = |resume: &str| {
        let report = run_args(&[
            &https_url(&server),
            "--cacert",
            &ca,
            "-c",
            "2",
            "-d",
            "1s",
            "--stream-duration",
            "30ms",
            "--tls-resume",
            resume,
        ]);
        let handshakes = report.figures.tls_handshakes.clone().expect("handshakes are counted");
        let p50_us = report.figures.latency_us.tls_handshake.p50;
        eprintln!("--tls-resume {resume}: {handshakes:?}, handshake p50 {p50_us} us");
        assert_eq!(report.figures.streams.failed, 0);
        assert!(handshakes.full + handshakes.resumed >= 10, "{handshakes:?}");
        handshakes
    };
    let on = go("on");
    assert_eq!(on.full, 2, "one full handshake per user: {on:?}");
    let off = go("off");
    assert_eq!(off.resumed, 0);
    server.stop();
}

/// A server that accepts the connection and never answers the ClientHello.
#[test]
fn a_silent_server_is_a_handshake_timeout() {
    let listener = TcpListener::bind(LOOPBACK).unwrap();
    let url = format!("https://localhost:{}/", listener.local_addr().unwrap().port());
    let held = std::thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(3);
        while std::time::Instant::now() < until {
            if let Ok((socket, _)) = listener.accept() {
                held.push(socket);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let report = run_args(&[&url, "-k", "-c", "2", "-n", "2", "--connect-timeout", "200ms"]);
    assert_eq!(failures(&report, "tls_handshake_timeout"), 2);
    held.join().unwrap();
}

#[test]
fn llm_mode_runs_over_https() {
    let server = tls_server("localhost", &["--openai", "--tokens-per-s", "1000", "--output-tokens", "12"]);
    let ca = pki().path("ca.pem");
    let url = https_url(&server);
    let report = run_args(&[&url, "--cacert", &ca, "--openai", "chat", "--prompt-tokens", "9", "-c", "2", "-n", "6"]);
    let llm = llm(&report);
    assert_eq!(report.figures.streams.completed, 6);
    assert_eq!((llm.output_tokens, llm.input_tokens), (72, 54));
    server.stop();
}

#[test]
fn bad_tls_flags_exit_2_naming_the_flag() {
    let stderr_of = |args: &[&str]| {
        let output = ssebench().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(stderr_of(&["run", "http://127.0.0.1:1/", "--insecure"]).contains("--insecure applies to https://"));
    assert!(stderr_of(&["run", "https://127.0.0.1:1/", "--cacert", "/nonexistent.pem"]).contains("--cacert"));
    let not_pem = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let not_pem = not_pem.to_string_lossy();
    assert!(stderr_of(&["run", "https://127.0.0.1:1/", "--cacert", &not_pem]).contains("no PEM certificate"));
    assert!(stderr_of(&["run", "https://127.0.0.1:1/", "--cert", &not_pem]).contains("--key"));
    assert!(stderr_of(&["serve", "--tls-cert", &not_pem, "--tls-key", &not_pem]).contains("--tls-cert"));
}

/// A `--scenario` HTTP step to an `https://` URL of its own runs its exchange over TLS before each journey.
#[test]
fn a_scenario_step_goes_over_https() {
    let model = tls_server("localhost", &["--openai", "--tokens-per-s", "1000", "--output-tokens", "3"]);
    let login = tls_server("localhost", &["--events", "2", "--interval", "1ms"]);
    let step_url = format!("https://localhost:{}/login", login.addr.port());
    let toml =
        format!("[[http]]\nname = \"login\"\npath = \"{step_url}\"\n\n[conversation]\nturns = 2\nprompt_tokens = 4\n");
    let scenario = write_scenario("https-step", &toml);
    let ca = pki().path("ca.pem");
    let scenario = scenario.to_string_lossy();
    let url = https_url(&model);
    let report = run_args(&[&url, "--cacert", &ca, "--openai", "chat", "--scenario", &scenario, "-c", "2", "-n", "6"]);
    let llm = llm(&report);
    assert_eq!((report.figures.streams.completed, report.figures.streams.failed), (6, 0));
    // Six streams in journeys of two turns, each journey after one login: three or more logins (a user whose
    // share of -n is odd starts one more journey).
    assert!(llm.steps[0].ok >= 3 && llm.steps[0].failed == 0, "{:?}", llm.steps[0]);
    model.stop();
    login.stop();
}

/// `https://` to a plain-HTTP server: the server answers the ClientHello with an HTTP 400, which is no TLS record.
#[test]
fn a_plain_http_server_on_the_port_is_a_tls_error() {
    let server = serve_args(&[]);
    let report = run_args(&[&https_url(&server), "-k", "-c", "2", "-n", "4"]);
    assert_eq!((report.figures.streams.failed, failures(&report, "tls_error")), (4, 4));
    server.stop();
}

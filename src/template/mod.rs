//! Per-user request templating: `{{...}}` placeholders in the path, header values and body, and the allocation-free
//! per-stream render of the request bytes. The data file they draw fields from is `template::data`.

mod data;

use std::sync::Arc;

use memchr::memmem;

use crate::http1::request::{self, RequestSpec, decimal};
use crate::llm::prompt::{self, Api, PromptSource};
use crate::rng;

pub use self::data::{DataMode, DataSet};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(Vec<u8>),
    Vu,
    Seq,
    Uuid,
    RandInt(i64, i64),
    /// Index into the data file's fields.
    Field(usize),
}

/// What a render substitutes for `{{vu}}`, `{{seq}}` and `{{field}}`.
#[derive(Debug, Clone, Copy)]
pub struct Vars<'a> {
    pub vu: u64,
    pub seq: u64,
    pub row: Option<&'a [String]>,
    /// `--scenario`: values its HTTP steps extracted; their names follow the data file's fields.
    pub extracted: &'a [Vec<u8>],
}

/// A parsed template: literal bytes and placeholders, rendered many times.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
    /// No `{{...}}` at all, so a render gives back the source text.
    literal: bool,
}

impl Template {
    /// Parses `text`. `fields` are the data file's fields (`None`: no data file); `env` looks up `{{env NAME}}`,
    /// which is read here, once, and becomes literal text.
    pub fn parse(
        text: &[u8],
        fields: Option<&[String]>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = Vec::new();
        let mut rest = text;
        let literal = memmem::find(text, b"{{").is_none();
        while let Some(open) = memmem::find(rest, b"{{") {
            lit.extend_from_slice(&rest[..open]);
            let after = &rest[open + 2..];
            let Some(close) = memmem::find(after, b"}}") else {
                return Err(format!("unterminated \"{{{{\" in template at \"{}\"", excerpt(&rest[open..])));
            };
            let quoted = excerpt(&rest[open..open + close + 4]);
            match placeholder(&after[..close], fields, env) {
                Err(e) => return Err(format!("template placeholder \"{quoted}\": {e}")),
                Ok(Part::Lit(bytes)) => lit.extend(bytes),
                Ok(part) => {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(part);
                }
            }
            rest = &after[close + 2..];
        }
        lit.extend_from_slice(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template { parts, literal })
    }

    /// True when the text has no placeholder, so it renders as itself. An `{{env NAME}}` counts as a
    /// placeholder: the rendering differs from the source text even though it never varies.
    pub fn is_literal(&self) -> bool {
        self.literal
    }

    /// Appends the rendering to `out`. `rng` (non-zero) feeds `{{uuid}}` and `{{rand_int}}`. Allocates only if
    /// `out` must grow.
    pub fn render(&self, vars: &Vars<'_>, rng: &mut u64, out: &mut Vec<u8>) {
        let mut digits = [0u8; 20];
        for part in &self.parts {
            match *part {
                Part::Lit(ref bytes) => out.extend_from_slice(bytes),
                Part::Vu => out.extend_from_slice(decimal(vars.vu, &mut digits)),
                Part::Seq => out.extend_from_slice(decimal(vars.seq, &mut digits)),
                Part::Uuid => push_uuid(rng, out),
                Part::RandInt(low, high) => {
                    let n = rand_int(rng, low, high);
                    if n < 0 {
                        out.push(b'-');
                    }
                    out.extend_from_slice(decimal(n.unsigned_abs(), &mut digits));
                }
                // Parse checked the field against the data file, so a missing row is a caller bug: write nothing.
                // A value not extracted yet (its step has not run) renders empty.
                Part::Field(i) => {
                    let row = vars.row.unwrap_or(&[]);
                    match row.get(i) {
                        Some(value) => out.extend_from_slice(value.as_bytes()),
                        None => out.extend_from_slice(vars.extracted.get(i - row.len()).map_or(&[][..], |v| &v[..])),
                    }
                }
            }
        }
    }
}

/// Parses what is between `{{` and `}}`.
fn placeholder(inner: &[u8], fields: Option<&[String]>, env: &dyn Fn(&str) -> Option<String>) -> Result<Part, String> {
    if !inner.is_ascii() {
        return Err("a placeholder must be ASCII".into());
    }
    let inner = std::str::from_utf8(inner).map_err(|e| e.to_string())?;
    let words: Vec<&str> = inner.split_ascii_whitespace().collect();
    let Some((&name, args)) = words.split_first() else { return Err("empty placeholder".into()) };
    let int = |s: &str| s.parse::<i64>().map_err(|_| format!("rand_int bound \"{s}\" is not a 64-bit integer"));
    match (name, args) {
        ("vu", []) => Ok(Part::Vu),
        ("seq", []) => Ok(Part::Seq),
        ("uuid", []) => Ok(Part::Uuid),
        ("rand_int", &[low, high]) => match (int(low)?, int(high)?) {
            (low, high) if low > high => Err(format!("rand_int needs A <= B, got {low} > {high}")),
            (low, high) => Ok(Part::RandInt(low, high)),
        },
        ("env", &[var]) => match env(var) {
            None => Err(format!("environment variable {var} is not set")),
            Some(v) if v.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) => {
                Err(format!("environment variable {var} contains CR, LF or NUL"))
            }
            Some(v) => Ok(Part::Lit(v.into_bytes())),
        },
        ("vu" | "seq" | "uuid", _) => Err(format!("{name} takes no arguments")),
        ("rand_int", _) => Err("rand_int takes two arguments: {{rand_int A B}}".into()),
        ("env", _) => Err("env takes one argument: {{env NAME}}".into()),
        (_, [_, ..]) => Err(format!("unknown function \"{name}\" (functions: uuid, rand_int A B, env NAME)")),
        (_, []) => match fields {
            None => Err(format!("field \"{name}\" needs a data file, and none is given (available fields: none)")),
            Some(fields) => fields.iter().position(|f| f == name).map(Part::Field).ok_or_else(|| {
                format!("the data file has no field \"{name}\" (available fields: {})", fields.join(", "))
            }),
        },
    }
}

/// The start of `bytes` for an error message: a long body should not flood the terminal.
fn excerpt(bytes: &[u8]) -> String {
    const MAX_BYTES: usize = 60;
    let cut = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_BYTES)]).into_owned();
    if bytes.len() > MAX_BYTES { cut + "..." } else { cut }
}

fn push_uuid(rng: &mut u64, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&rng::next(rng).to_le_bytes());
    bytes[8..].copy_from_slice(&rng::next(rng).to_le_bytes());
    bytes[6] = bytes[6] & 0x0f | 0x40; // version 4
    bytes[8] = bytes[8] & 0x3f | 0x80; // RFC 4122 variant
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push(b'-');
        }
        out.extend_from_slice(&[HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 15)]]);
    }
}

/// Uniform in `low..=high` (Lemire's multiply-and-reject, so no modulo bias even for huge ranges).
fn rand_int(rng: &mut u64, low: i64, high: i64) -> i64 {
    let span = high.wrapping_sub(low) as u64 as u128 + 1;
    let reject_below = ((1u128 << 64) - span) % span;
    loop {
        let product = u128::from(rng::next(rng)) * span;
        if product as u64 as u128 >= reject_below {
            return low.wrapping_add((product >> 64) as u64 as i64);
        }
    }
}

/// What a target's streams send: the same bytes every time, encoded once, or a template
/// rendered for each stream.
#[derive(Debug, Clone)]
pub enum TargetRequest {
    /// The head, encoded once per target, and the body, one copy shared by every target and core (a 16 MiB
    /// `--body` is resident once): written one after the other.
    Encoded {
        head: Vec<u8>,
        body: Arc<Vec<u8>>,
    },
    Template(Box<RequestTemplate>),
}

/// A request whose path, header values and body are templates, rendered per user and stream.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    method: String,
    host: String,
    path: Template,
    headers: Vec<(String, Template)>,
    /// With `llm`, the body's fixed fields (an unclosed JSON object that the prompt completes).
    body: Template,
    /// A body without placeholders, held apart: the run's one shared copy, written after the rendered head
    /// (`body` is then empty).
    body_apart: Option<Arc<Vec<u8>>>,
    llm: Option<LlmBody>,
    data: Option<Arc<DataSet>>,
    mode: DataMode,
    users: u64,
    seed: u64,
}

/// `--openai`: the body ends with a prompt, drawn for each stream.
#[derive(Debug, Clone)]
pub struct LlmBody {
    pub api: Api,
    pub prompts: Arc<PromptSource>,
    pub max_tokens: Option<u64>,
}

/// What a `--scenario` journey adds to a render: its turn, the conversation so far (chat message objects joined by
/// commas) and the values its HTTP steps extracted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Journey<'a> {
    /// Index 0 is turn 1; it picks the turn's user message. `None` outside journeys.
    pub turn: Option<u64>,
    pub history: &'a [u8],
    pub extracted: &'a [Vec<u8>],
}

/// The rng slot of a stream's prompt: apart from the path's, the body's and each header's.
const PROMPT_RNG_SLOT: u64 = u64::MAX;

impl RequestTemplate {
    /// Parses the templates in `spec`'s path, header values and body. `users` is the run's total virtual users
    /// (for [`DataMode::Request`]); `seed` varies the random placeholders between runs.
    /// `extracted`: names of the values a `--scenario`'s HTTP steps extract, usable like data fields. `llm`: the body
    /// is an OpenAI-compatible one whose prompt follows `spec.body`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        spec: &RequestSpec<'_>,
        data: Option<Arc<DataSet>>,
        mode: DataMode,
        users: u64,
        seed: u64,
        env: &dyn Fn(&str) -> Option<String>,
        extracted: &[String],
        llm: Option<LlmBody>,
    ) -> Result<RequestTemplate, String> {
        let mut names: Option<Vec<String>> = data.as_ref().map(|d| d.fields().to_vec());
        if !extracted.is_empty() {
            names.get_or_insert_with(Vec::new).extend(extracted.iter().cloned());
        }
        let fields = names.as_deref();
        let parse = |what: &str, text: &[u8]| Template::parse(text, fields, env).map_err(|e| format!("{what}: {e}"));
        let path = parse("path", spec.path.as_bytes())?;
        let headers = spec
            .headers
            .iter()
            .map(|(name, value)| Ok((name.clone(), parse(&format!("header {name}"), value.as_bytes())?)))
            .collect::<Result<Vec<_>, String>>()?;
        let body = parse("body", spec.body)?;
        let (method, host) = (spec.method.to_string(), spec.host.to_string());
        Ok(RequestTemplate { method, host, path, headers, body, body_apart: None, llm, data, mode, users, seed })
    }

    /// Sends `body` after every rendered head instead of a body of its own: for a template made with an empty body
    /// because the real one has no placeholder, so that it stays the run's one copy (a large `--body`).
    pub fn with_body_apart(mut self, body: Arc<Vec<u8>>) -> RequestTemplate {
        debug_assert!(self.body.is_literal() && self.llm.is_none(), "only a literal, non-LLM body is held apart");
        self.body_apart = Some(body);
        self
    }

    /// The body written after each rendered head: the one held apart, else none (the render holds it).
    pub fn body_apart(&self) -> &[u8] {
        self.body_apart.as_deref().map_or(&[], |b| &b[..])
    }

    /// True when nothing has a placeholder (`{{env}}` included), so [`request::encode`] of the same spec gives
    /// the same bytes and the caller can encode once.
    pub fn is_static(&self) -> bool {
        self.llm.is_none()
            && self.path.is_literal()
            && self.body.is_literal()
            && self.headers.iter().all(|(_, t)| t.is_literal())
    }

    /// Writes user `vu`'s stream `seq` request (head and body) into `out`, replacing its contents; `body_buf` is
    /// scratch for the body. The same `(vu, seq)` always gives the same bytes. Allocates only if a buffer grows.
    pub fn render(&self, vu: u64, seq: u64, journey: &Journey<'_>, body_buf: &mut Vec<u8>, out: &mut Vec<u8>) {
        let row = self.data.as_ref().map(|d| d.row(self.mode.row_index(vu, seq, self.users, d.rows())));
        let vars = Vars { vu, seq, row, extracted: journey.extracted };
        // One random stream per template (slot), so the closures below need no shared mutable state.
        let state = |slot: usize| rng::stream_state(self.seed, vu, seq, slot as u64);
        body_buf.clear();
        self.body.render(&vars, &mut state(0), body_buf);
        if let Some(llm) = &self.llm {
            let mut rng = rng::stream_state(self.seed, vu, seq, PROMPT_RNG_SLOT);
            let pick = self.prompt_pick(vu, seq, journey);
            llm.prompts.render_tail(llm.api, pick, &mut rng, journey.history, llm.max_tokens, body_buf);
        }
        out.clear();
        let write_path = |out: &mut Vec<u8>| self.path.render(&vars, &mut state(1), out);
        let write_value = |i, value: &Template, out: &mut Vec<u8>| value.render(&vars, &mut state(2 + i), out);
        match &self.body_apart {
            Some(body) => {
                request::write_head(out, &self.method, &self.host, &self.headers, write_path, write_value, body.len())
            }
            None => {
                request::write_request(out, &self.method, &self.host, &self.headers, write_path, write_value, body_buf)
            }
        }
    }
}

impl RequestTemplate {
    /// Which prompt a stream sends: its journey's turn, or like `--data-mode request`, the next one for each request.
    fn prompt_pick(&self, vu: u64, seq: u64, journey: &Journey<'_>) -> u64 {
        journey.turn.unwrap_or_else(|| seq.wrapping_mul(self.users).wrapping_add(vu))
    }

    /// After a journey's turn: appends the user message that user `vu`'s stream `seq` sent (rendered again, byte for
    /// byte) and the assistant's `answer` to `history`.
    pub fn append_turn(&self, vu: u64, seq: u64, journey: &Journey<'_>, answer: &[u8], history: &mut Vec<u8>) {
        let Some(llm) = &self.llm else { return };
        let mut rng = rng::stream_state(self.seed, vu, seq, PROMPT_RNG_SLOT);
        if !history.is_empty() {
            history.push(b',');
        }
        llm.prompts.render_prompt(llm.api, self.prompt_pick(vu, seq, journey), &mut rng, history);
        prompt::push_message(history, "assistant", answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn test_env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "BAD" => Some("a\r\nb".into()),
            _ => None,
        }
    }

    fn fields() -> Vec<String> {
        vec!["token".into(), "user".into()]
    }

    fn render(t: &Template, vars: &Vars<'_>, mut rng: u64) -> Vec<u8> {
        let mut out = Vec::new();
        t.render(vars, &mut rng, &mut out);
        out
    }

    /// Parses `text` with fields `token, user` and checks its render for vu 7, seq 3, row `t0, u0`.
    fn check(text: &[u8], expected: &[u8]) {
        let fields = fields();
        let t = Template::parse(text, Some(&fields), &test_env).unwrap_or_else(|e| panic!("{e}"));
        let row = ["t0".to_string(), "u0".to_string()];
        let out = render(&t, &Vars { vu: 7, seq: 3, row: Some(&row), extracted: &[] }, 1);
        assert_eq!(out, expected, "template {:?}", String::from_utf8_lossy(text));
    }

    #[test]
    fn renders_placeholders() {
        for (text, expected) in [
            ("/u/{{vu}}/s/{{seq}}", "/u/7/s/3"),
            ("{{ vu }}-{{\tseq  }}", "7-3"),
            ("Bearer {{token}} {{ user }}", "Bearer t0 u0"),
            ("{{env TOKEN}}!", "s3cret!"),
            ("{{rand_int 5 5}}|{{rand_int  -2   -2}}", "5|-2"),
            ("{ a }} b { {", "{ a }} b { {"),
            ("{\"a\":{\"b\":{{vu}}}}", "{\"a\":{\"b\":7}}"),
            ("", ""),
        ] {
            check(text.as_bytes(), expected.as_bytes());
        }
        check(b"\xff\xfe{{vu}}\x80}}", b"\xff\xfe7\x80}}");
    }

    #[test]
    fn literal_means_no_placeholder_at_all() {
        for (text, literal) in [("plain", true), ("{{env TOKEN}}", false), ("{{vu}}", false), ("{{token}}", false)] {
            let t = Template::parse(text.as_bytes(), Some(&fields()), &test_env).unwrap();
            assert_eq!(t.is_literal(), literal, "{text}");
        }
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let fields = fields();
        for (text, with_fields, needle) in [
            ("a {{vu", true, "\"{{vu\""),
            ("{{}}", true, "empty"),
            ("{{  }}", true, "empty"),
            ("{{nope}}", true, "\"nope\" (available fields: token, user)"),
            ("{{token}}", false, "\"token\" needs a data file"),
            ("{{frob 1}}", true, "\"frob\""),
            ("{{vu 1}}", true, "vu takes no arguments"),
            ("{{rand_int 1}}", true, "rand_int takes two"),
            ("{{rand_int 5 1}}", true, "5 > 1"),
            ("{{rand_int x 1}}", true, "\"x\""),
            ("{{rand_int 1 99999999999999999999}}", true, "\"99999999999999999999\""),
            ("{{env}}", true, "env takes one"),
            ("{{env A B}}", true, "env takes one"),
            ("{{env MISSING}}", true, "MISSING is not set"),
            ("{{env BAD}}", true, "BAD contains CR"),
            ("{{t\u{f6}k}}", true, "ASCII"),
        ] {
            match Template::parse(text.as_bytes(), with_fields.then_some(&fields[..]), &test_env) {
                Ok(_) => panic!("{text:?} parsed"),
                Err(e) => assert!(e.contains(needle) && e.contains(&text[text.find("{{").unwrap()..]), "{text:?}: {e}"),
            }
        }
    }

    #[test]
    fn uuids_are_version_4() {
        let t = Template::parse(b"{{uuid}}", None, &test_env).unwrap();
        let mut seen = std::collections::HashSet::new();
        for seed in 1..500 {
            let uuid = String::from_utf8(render(&t, &Vars { vu: 0, seq: 0, row: None, extracted: &[] }, seed)).unwrap();
            let b = uuid.as_bytes();
            assert_eq!(b.len(), 36, "{uuid}");
            for (i, &c) in b.iter().enumerate() {
                let ok = if matches!(i, 8 | 13 | 18 | 23) { c == b'-' } else { matches!(c, b'0'..=b'9' | b'a'..=b'f') };
                assert!(ok, "{uuid}");
            }
            assert_eq!(b[14], b'4', "{uuid}");
            assert!(matches!(b[19], b'8' | b'9' | b'a' | b'b'), "{uuid}");
            assert!(seen.insert(uuid));
        }
    }

    #[test]
    fn rand_int_covers_small_and_extreme_ranges() {
        let t = Template::parse(b"{{rand_int -1 1}}", None, &test_env).unwrap();
        let seen: std::collections::HashSet<Vec<u8>> =
            (1..200).map(|seed| render(&t, &Vars { vu: 0, seq: 0, row: None, extracted: &[] }, seed)).collect();
        assert_eq!(seen.len(), 3);
        let full = format!("{{{{rand_int {} {}}}}}", i64::MIN, i64::MAX);
        let t = Template::parse(full.as_bytes(), None, &test_env).unwrap();
        let out = render(&t, &Vars { vu: 0, seq: 0, row: None, extracted: &[] }, 42);
        assert!(std::str::from_utf8(&out).unwrap().parse::<i64>().is_ok());
        assert_eq!(rand_int(&mut 9, i64::MIN, i64::MIN), i64::MIN);
    }

    proptest! {
        #[test]
        fn rand_int_stays_in_range(a in any::<i64>(), b in prop_oneof![any::<i64>(), -3i64..3], seed in 1u64..) {
            let (low, high) = (a.min(b), a.max(b));
            let t = Template::parse(format!("{{{{rand_int {low} {high}}}}}").as_bytes(), None, &test_env).unwrap();
            let out = render(&t, &Vars { vu: 0, seq: 0, row: None, extracted: &[] }, seed);
            let n: i64 = std::str::from_utf8(&out).unwrap().parse().unwrap();
            prop_assert!(low <= n && n <= high, "{} not in {}..={}", n, low, high);
        }
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_field() {
        let csv = DataSet::parse_csv("\u{feff}token,user\r\nAAA,ann\r\n").unwrap();
        assert_eq!(csv.fields(), ["token", "user"]);
        let jsonl = DataSet::parse_jsonl("\u{feff}{\"token\":\"AAA\"}\n").unwrap();
        assert_eq!(jsonl.fields(), ["token"]);
        for data in [csv, jsonl] {
            let (_, t) = spec_template("GET", "/", &[("Authorization", "Bearer {{token}}")], b"", Some(Arc::new(data)));
            assert!(String::from_utf8(render_request(&t, 0, 0)).unwrap().contains("Bearer AAA\r\n"));
        }
        // Only at the very start: elsewhere it is data.
        assert_eq!(DataSet::parse_csv("a\n\u{feff}x\n").unwrap().row(0), ["\u{feff}x"]);
    }

    fn spec_template(
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        data: Option<Arc<DataSet>>,
    ) -> (Vec<u8>, RequestTemplate) {
        let headers: Vec<(String, String)> = headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        let spec = RequestSpec { method, path, host: "h:80", headers: &headers, body };
        let template = RequestTemplate::new(&spec, data, DataMode::Vu, 4, 99, &test_env, &[], None)
            .unwrap_or_else(|e| panic!("{e}"));
        (request::encode(&spec), template)
    }

    fn render_request(t: &RequestTemplate, vu: u64, seq: u64) -> Vec<u8> {
        let (mut body, mut out) = (Vec::new(), vec![b'x'; 3]);
        t.render(vu, seq, &Journey::default(), &mut body, &mut out);
        out
    }

    #[test]
    fn static_templates_match_encode() {
        for (method, path, headers, body) in [
            ("GET", "/sse", &[][..], &b""[..]),
            ("POST", "/sse?x=1", &[("Content-Type", "application/json")][..], &b"{\"a\":{\"b\":1}}"[..]),
            ("POST", "/", &[("host", "other"), ("Content-Length", "0"), ("accept", "*/*")][..], &b""[..]),
            ("PUT", "/", &[("X-A", "}}{")][..], &b"\xff"[..]),
        ] {
            let (encoded, template) = spec_template(method, path, headers, body, None);
            assert!(template.is_static(), "{path}");
            let rendered = render_request(&template, 3, 5);
            assert_eq!(String::from_utf8_lossy(&rendered), String::from_utf8_lossy(&encoded));
            assert_eq!(rendered, encoded);
        }
        for (path, headers, body) in [
            ("/{{vu}}", &[][..], &b""[..]),
            ("/", &[("X", "{{seq}}")][..], &b""[..]),
            ("/", &[][..], &b"{{uuid}}"[..]),
            ("/?t={{env TOKEN}}", &[][..], &b""[..]),
        ] {
            assert!(!spec_template("POST", path, headers, body, None).1.is_static(), "{path} {headers:?}");
        }
    }

    #[test]
    fn content_length_follows_rendered_body() {
        let (_, template) = spec_template("POST", "/", &[], b"{\"vu\":{{vu}}}", None);
        for (vu, length) in [(5, 8), (12345, 12)] {
            let request = render_request(&template, vu, 0);
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut parsed = httparse::Request::new(&mut headers);
            let httparse::Status::Complete(head_len) = parsed.parse(&request).unwrap() else { panic!("partial head") };
            let declared = parsed.headers.iter().find(|h| h.name == "Content-Length").unwrap().value;
            assert_eq!(declared, length.to_string().as_bytes());
            assert_eq!(&request[head_len..], format!("{{\"vu\":{vu}}}").as_bytes());
        }
    }

    #[test]
    fn renders_are_pure_and_random_parts_vary_by_stream() {
        let (_, t) = spec_template("POST", "/{{rand_int 0 1000000000}}", &[("X-Id", "{{uuid}}")], b"{{uuid}}", None);
        assert_eq!(render_request(&t, 3, 4), render_request(&t, 3, 4));
        assert_ne!(render_request(&t, 3, 4), render_request(&t, 3, 5));
        assert_ne!(render_request(&t, 3, 4), render_request(&t, 4, 4));
    }

    #[test]
    fn header_from_csv_field_differs_per_vu() {
        let data = DataSet::parse_csv("token\nAAA\nBBB\nCCC\n").unwrap();
        let (_, t) = spec_template("GET", "/", &[("Authorization", "Bearer {{token}}")], b"", Some(Arc::new(data)));
        for (vu, token) in [(0, "AAA"), (1, "BBB"), (2, "CCC"), (3, "AAA")] {
            let request = String::from_utf8(render_request(&t, vu, 7)).unwrap();
            assert!(request.contains(&format!("\r\nAuthorization: Bearer {token}\r\n")), "{request}");
        }
    }

    #[test]
    fn rendering_into_grown_buffers_does_not_reallocate() {
        let data = DataSet::parse_csv("token\nAAA\nBBBBBBBBBBBBBBBB\n").unwrap();
        let headers = [("Authorization", "Bearer {{token}}"), ("X-Id", "{{uuid}}")];
        let body = b"{\"n\":{{rand_int -9223372036854775808 9223372036854775807}},\"vu\":{{vu}},\"seq\":{{seq}}}";
        let (_, t) = spec_template("POST", "/u/{{vu}}", &headers, body, Some(Arc::new(data)));
        let (mut body_buf, mut out) = (Vec::with_capacity(4096), Vec::with_capacity(4096));
        let (body_ptr, out_ptr) = (body_buf.as_ptr(), out.as_ptr());
        let capacities = (body_buf.capacity(), out.capacity());
        for i in 0..2000u64 {
            t.render(i * 7919, u64::MAX - i, &Journey::default(), &mut body_buf, &mut out);
            assert_eq!((body_buf.capacity(), out.capacity()), capacities);
            assert_eq!((body_buf.as_ptr(), out.as_ptr()), (body_ptr, out_ptr));
        }
    }
}

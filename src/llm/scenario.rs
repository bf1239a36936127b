//! Scenario files (`--scenario FILE`): parsing and validating a user journey of plain HTTP steps followed by a
//! multi-turn chat conversation, and the JSON paths that pull variables out of HTTP step responses.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// One user journey: the HTTP steps run in order, then the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub http: Vec<HttpStep>,
    pub conversation: Conversation,
}

/// A plain HTTP request made before the conversation. `body` and header values may hold `{{...}}` placeholders,
/// which are left as text here and filled in per journey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpStep {
    pub name: String,
    pub method: String,
    /// Origin-form (`/login`), sent to the run's target; or an `http://` URL of another host.
    pub path: String,
    /// In the order written in the file.
    pub headers: Vec<(String, String)>,
    /// Empty when the file gives none.
    pub body: String,
    /// Variable name and where to find it in the response body, in the order written in the file.
    pub extract: Vec<(String, JsonPath)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// 1..=1000.
    pub turns: u32,
    pub system: Option<String>,
    pub user: UserTurns,
    /// Overrides `--max-tokens` when set.
    pub max_tokens: Option<u64>,
    /// Pause before each turn after the first, drawn from this inclusive range; `(0, 0)` when not set.
    pub think_time: (Duration, Duration),
    /// Added to every turn's request, in the order written in the file.
    pub headers: Vec<(String, String)>,
}

/// What the user says on each turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserTurns {
    /// Turn `t` (from 0) sends `messages[t % len]`; never empty.
    Messages(Vec<String>),
    /// A synthetic prompt of `low..=high` words per turn; `1 <= low <= high`.
    PromptTokens { low: u64, high: u64 },
}

const MAX_TURNS: i64 = 1000;

// The raw shapes mirror the file; every field is optional at this level so that a missing required key gets our own
// message naming it rather than serde's generic "missing field".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    http: Vec<RawHttp>,
    conversation: Option<RawConversation>,
}

// Maps are read with their values' spans because toml hands tables over in key order unless the crate-wide
// `preserve_order` feature is on; sorting by span gets back the file's order without depending on that feature.
type RawMap = BTreeMap<String, Spanned<String>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    name: Option<String>,
    method: Option<String>,
    path: Option<String>,
    headers: Option<RawMap>,
    body: Option<String>,
    extract: Option<RawMap>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConversation {
    turns: Option<i64>,
    system: Option<String>,
    messages: Option<Vec<String>>,
    prompt_tokens: Option<toml::Value>,
    max_tokens: Option<i64>,
    think_time: Option<String>,
    headers: Option<RawMap>,
}

impl Scenario {
    /// Parses and validates a scenario file's text.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| format!("scenario: {}", e.to_string().trim_end()))?;
        let mut http = Vec::with_capacity(raw.http.len());
        for (i, step) in raw.http.into_iter().enumerate() {
            let step = HttpStep::from_raw(step, i + 1)?;
            if http.iter().any(|s: &HttpStep| s.name == step.name) {
                // Names label the steps in reports, so two steps with one name would merge there.
                return Err(format!("scenario: [[http]] \"{}\": name is already used by an earlier step", step.name));
            }
            http.push(step);
        }
        let conversation = raw.conversation.ok_or("scenario: [conversation] is missing")?;
        Ok(Scenario { http, conversation: Conversation::from_raw(conversation)? })
    }

    /// Reads and parses a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("scenario: cannot read {}: {e}", path.display()))?;
        Scenario::parse(&text)
    }

    /// Names of every variable the http steps extract, in order of first appearance, deduplicated (a later step may
    /// overwrite an earlier step's value).
    pub fn variables(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (name, _) in self.http.iter().flat_map(|s| &s.extract) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }
}

impl HttpStep {
    fn from_raw(raw: RawHttp, position: usize) -> Result<HttpStep, String> {
        let name = match raw.name {
            Some(name) if name.trim().is_empty() => {
                return Err(format!("scenario: [[http]] #{position}: name must not be empty"));
            }
            Some(name) => name,
            None => format!("http{position}"),
        };
        let at = format!("scenario: [[http]] \"{name}\"");
        let method = raw.method.unwrap_or_else(|| "GET".to_string());
        if !is_token(&method) {
            return Err(format!("{at}: method \"{}\" is not an HTTP method token", method.escape_debug()));
        }
        let path = raw.path.ok_or_else(|| format!("{at}: path is required"))?;
        // An absolute URL sends the step elsewhere (an auth service on its own host); the run resolves it.
        let scheme = |prefix: &str| path.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix));
        let absolute = scheme("http://") || scheme("https://");
        if !(path.starts_with('/') || absolute) || path.chars().any(|c| c == ' ' || c.is_control()) {
            return Err(format!(
                "{at}: path \"{}\" must start with '/' (or be an http:// or https:// URL) and hold no spaces or control characters",
                path.escape_debug()
            ));
        }
        let headers = headers(raw.headers, &format!("{at}:"))?;
        let mut extract = Vec::new();
        for (var, path) in in_file_order(raw.extract) {
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                // The name is used as a {{name}} placeholder, so it is held to what a placeholder can spell.
                return Err(format!(
                    "{at}: extract \"{}\": variable name must be letters, digits and _",
                    var.escape_debug()
                ));
            }
            let path = JsonPath::parse(&path).map_err(|e| format!("{at}: extract \"{var}\": {e}"))?;
            extract.push((var, path));
        }
        Ok(HttpStep { name, method, path, headers, body: raw.body.unwrap_or_default(), extract })
    }
}

impl Conversation {
    fn from_raw(raw: RawConversation) -> Result<Conversation, String> {
        const AT: &str = "scenario: [conversation]";
        let turns = raw.turns.ok_or_else(|| format!("{AT} turns is required"))?;
        if turns < 1 {
            return Err(format!("{AT} turns must be at least 1"));
        }
        if turns > MAX_TURNS {
            return Err(format!("{AT} turns must be at most {MAX_TURNS}"));
        }
        let user = match (raw.messages, raw.prompt_tokens) {
            (Some(_), Some(_)) => return Err(format!("{AT} messages and prompt_tokens exclude each other; give one")),
            (None, None) => return Err(format!("{AT} needs messages or prompt_tokens")),
            (Some(messages), None) if messages.is_empty() => {
                return Err(format!("{AT} messages must hold at least one message"));
            }
            (Some(messages), None) => UserTurns::Messages(messages),
            (None, Some(value)) => prompt_tokens(&value)?,
        };
        let max_tokens = match raw.max_tokens {
            Some(n) if n < 1 => return Err(format!("{AT} max_tokens must be at least 1")),
            n => n.map(|n| n as u64),
        };
        let think_time = match raw.think_time {
            None => (Duration::ZERO, Duration::ZERO),
            Some(text) => think_time(&text)?,
        };
        Ok(Conversation {
            turns: turns as u32,
            system: raw.system,
            user,
            max_tokens,
            think_time,
            headers: headers(raw.headers, AT)?,
        })
    }
}

fn prompt_tokens(value: &toml::Value) -> Result<UserTurns, String> {
    const AT: &str = "scenario: [conversation] prompt_tokens";
    let (low, high) = match value {
        toml::Value::Integer(n) => (*n, *n),
        toml::Value::String(text) => {
            let bad = || format!("{AT} \"{}\" is not N or A..B", text.escape_debug());
            let number = |s: &str| s.trim().parse::<i64>().map_err(|_| bad());
            match text.split_once("..") {
                Some((low, high)) => (number(low)?, number(high)?),
                None => (number(text)?, number(text)?),
            }
        }
        other => {
            return Err(format!("{AT} must be a number N or a string \"N\" or \"A..B\", not {}", other.type_str()));
        }
    };
    if low < 1 {
        return Err(format!("{AT} must be at least 1"));
    }
    if low > high {
        return Err(format!("{AT} range {low}..{high} runs backwards"));
    }
    Ok(UserTurns::PromptTokens { low: low as u64, high: high as u64 })
}

fn think_time(text: &str) -> Result<(Duration, Duration), String> {
    const AT: &str = "scenario: [conversation] think_time";
    let duration =
        |s: &str| crate::units::parse_duration(s.trim()).map_err(|e| format!("{AT} \"{}\": {e}", text.escape_debug()));
    let (low, high) = match text.split_once("..") {
        Some((low, high)) => (duration(low)?, duration(high)?),
        None => {
            let d = duration(text)?;
            (d, d)
        }
    };
    if low > high {
        return Err(format!("{AT} \"{}\" runs backwards", text.escape_debug()));
    }
    Ok((low, high))
}

fn headers(raw: Option<RawMap>, at: &str) -> Result<Vec<(String, String)>, String> {
    let headers = in_file_order(raw);
    for (name, value) in &headers {
        if !is_token(name) {
            return Err(format!("{at} header \"{}\" is not an HTTP header name", name.escape_debug()));
        }
        if value.contains(['\r', '\n', '\0']) {
            // These would split or end the header line on the wire.
            return Err(format!("{at} header \"{name}\": value must not contain CR, LF or NUL"));
        }
    }
    Ok(headers)
}

fn in_file_order(raw: Option<RawMap>) -> Vec<(String, String)> {
    let mut entries: Vec<_> = raw.unwrap_or_default().into_iter().collect();
    entries.sort_by_key(|(_, value)| value.span().start);
    entries.into_iter().map(|(key, value)| (key, value.into_inner())).collect()
}

/// RFC 9110 `token`, the grammar of both methods and header names.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Where a value sits in a JSON document: `$`, then any sequence of `.name` (name: letters, digits, `_` and `-`) and
/// `[N]` (array index); `$` alone is the whole document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    text: String,
    steps: Vec<Step>,
}

/// One step of a [`JsonPath`]: an object member or an array element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

impl JsonPath {
    pub fn parse(s: &str) -> Result<JsonPath, String> {
        let bad = || format!("path \"{}\" is not a JSON path ($.name, $.name[0], ...)", s.escape_debug());
        let mut rest = s.strip_prefix('$').ok_or_else(bad)?;
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end =
                    after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(after.len());
                if end == 0 {
                    return Err(bad());
                }
                steps.push(Step::Key(after[..end].to_string()));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let (digits, after) = after.split_once(']').ok_or_else(bad)?;
                // `parse` alone would accept a leading '+'.
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                steps.push(Step::Index(digits.parse().map_err(|_| bad())?));
                rest = after;
            } else {
                return Err(bad());
            }
        }
        Ok(JsonPath { text: s.to_string(), steps })
    }

    /// Finds the value in `body`, a JSON document. A string yields its (unescaped) text, a number or bool its JSON
    /// text; null, a missing value, an object or an array yield `Ok(None)`. `Err` means the body is not JSON.
    pub fn extract(&self, body: &[u8]) -> Result<Option<String>, String> {
        let document: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!("response body is not JSON: {e}"))?;
        let mut value = &document;
        for step in &self.steps {
            let next = match step {
                Step::Key(key) => value.get(key.as_str()),
                Step::Index(index) => value.get(*index),
            };
            match next {
                Some(next) => value = next,
                None => return Ok(None),
            }
        }
        Ok(match value {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            serde_json::Value::Null | serde_json::Value::Array(_) | serde_json::Value::Object(_) => None,
        })
    }

    /// The path as written, for messages.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its steps after `$`, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[conversation]\nturns = 2\nmessages = [\"Hi\"]\n";

    fn err(text: &str) -> String {
        Scenario::parse(text).expect_err("should be rejected")
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn path(s: &str) -> JsonPath {
        JsonPath::parse(s).unwrap()
    }

    #[test]
    fn full_example() {
        let text = r#"
[[http]]
name = "login"
method = "POST"
path = "/login"
headers = { "Content-Type" = "application/json", Accept = "*/*" }
body = '{"user": "u{{vu}}"}'
extract = { token = "$.access_token", id = "$.data.items[1].id" }

[[http]]
path = "/me?x=1"

[conversation]
turns = 4
system = "You are terse."
messages = ["Hello", "Go on"]
max_tokens = 64
think_time = "200ms..1s"
headers = { Authorization = "Bearer {{token}}", "X-Trace" = "{{id}}" }
"#;
        let expected = Scenario {
            http: vec![
                HttpStep {
                    name: "login".into(),
                    method: "POST".into(),
                    path: "/login".into(),
                    headers: pairs(&[("Content-Type", "application/json"), ("Accept", "*/*")]),
                    body: r#"{"user": "u{{vu}}"}"#.into(),
                    extract: vec![("token".into(), path("$.access_token")), ("id".into(), path("$.data.items[1].id"))],
                },
                HttpStep {
                    name: "http2".into(),
                    method: "GET".into(),
                    path: "/me?x=1".into(),
                    headers: vec![],
                    body: String::new(),
                    extract: vec![],
                },
            ],
            conversation: Conversation {
                turns: 4,
                system: Some("You are terse.".into()),
                user: UserTurns::Messages(vec!["Hello".into(), "Go on".into()]),
                max_tokens: Some(64),
                think_time: (Duration::from_millis(200), Duration::from_secs(1)),
                headers: pairs(&[("Authorization", "Bearer {{token}}"), ("X-Trace", "{{id}}")]),
            },
        };
        assert_eq!(Scenario::parse(text).unwrap(), expected);
    }

    #[test]
    fn defaults() {
        let s = Scenario::parse(&format!("[[http]]\npath = \"/a\"\n[[http]]\npath = \"/b\"\n{MINIMAL}")).unwrap();
        assert_eq!(s.http[0].name, "http1");
        assert_eq!(s.http[1].name, "http2");
        assert_eq!(s.http[0].method, "GET");
        assert_eq!(s.http[0].body, "");
        assert!(s.http[0].headers.is_empty() && s.http[0].extract.is_empty());
        let c = &s.conversation;
        assert_eq!(c.think_time, (Duration::ZERO, Duration::ZERO));
        assert_eq!((c.system.as_deref(), c.max_tokens), (None, None));
        assert!(c.headers.is_empty());
        assert!(Scenario::parse(MINIMAL).unwrap().http.is_empty());
    }

    #[test]
    fn file_order_survives_in_sub_tables() {
        let text = "[[http]]\npath = \"/\"\n[http.extract]\nz = \"$.z\"\na = \"$.a\"\nm = \"$.m\"\n\
                    [[http]]\npath = \"/\"\nextract = { b = \"$.b\", a = \"$.a2\" }\n"
            .to_string()
            + MINIMAL;
        let s = Scenario::parse(&text).unwrap();
        let names: Vec<_> = s.http[0].extract.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["z", "a", "m"]);
        assert_eq!(s.variables(), ["z", "a", "m", "b"]);
    }

    #[test]
    fn prompt_tokens_forms() {
        let user = |v: &str| {
            Scenario::parse(&format!("[conversation]\nturns = 1\nprompt_tokens = {v}\n")).map(|s| s.conversation.user)
        };
        assert_eq!(user("\"32..64\""), Ok(UserTurns::PromptTokens { low: 32, high: 64 }));
        assert_eq!(user("\"16\""), Ok(UserTurns::PromptTokens { low: 16, high: 16 }));
        assert_eq!(user("8"), Ok(UserTurns::PromptTokens { low: 8, high: 8 }));
        assert_eq!(user("\"5..5\""), Ok(UserTurns::PromptTokens { low: 5, high: 5 }));
        for bad in ["\"0..4\"", "0", "-3", "\"9..4\"", "\"a..b\"", "\"1..\"", "\"\"", "1.5", "true"] {
            let e = user(bad).unwrap_err();
            assert!(e.starts_with("scenario: [conversation] prompt_tokens"), "{bad}: {e}");
        }
    }

    #[test]
    fn think_time_forms() {
        let think =
            |v: &str| Scenario::parse(&format!("{MINIMAL}think_time = \"{v}\"\n")).map(|s| s.conversation.think_time);
        assert_eq!(think("500ms"), Ok((Duration::from_millis(500), Duration::from_millis(500))));
        assert_eq!(think("1.5s..2m"), Ok((Duration::from_millis(1500), Duration::from_secs(120))));
        assert_eq!(think("1s..1s"), Ok((Duration::from_secs(1), Duration::from_secs(1))));
        for bad in ["2s..1s", "fast", "1s.."] {
            let e = think(bad).unwrap_err();
            assert!(e.starts_with("scenario: [conversation] think_time"), "{bad}: {e}");
        }
    }

    #[test]
    fn conversation_errors_name_the_key() {
        let conv = |body: &str| err(&format!("[conversation]\n{body}\n"));
        assert_eq!(conv("turns = 0\nmessages = [\"a\"]"), "scenario: [conversation] turns must be at least 1");
        assert_eq!(conv("turns = 1001\nmessages = [\"a\"]"), "scenario: [conversation] turns must be at most 1000");
        assert_eq!(conv("messages = [\"a\"]"), "scenario: [conversation] turns is required");
        assert!(conv("turns = 1").contains("needs messages or prompt_tokens"));
        assert!(conv("turns = 1\nmessages = [\"a\"]\nprompt_tokens = 3").contains("messages and prompt_tokens"));
        assert!(conv("turns = 1\nmessages = []").contains("messages must hold at least one"));
        assert!(conv("turns = 1\nmessages = [\"a\"]\nmax_tokens = 0").contains("max_tokens must be at least 1"));
        assert_eq!(err("[[http]]\npath = \"/\"\n"), "scenario: [conversation] is missing");
    }

    #[test]
    fn http_errors_name_the_step_and_key() {
        let step = |body: &str| err(&format!("[[http]]\nname = \"login\"\n{body}\n{MINIMAL}"));
        assert_eq!(step("method = \"POST\""), "scenario: [[http]] \"login\": path is required");
        for bad in ["login", "/a b", "/a\\tb", ""] {
            assert!(step(&format!("path = \"{bad}\"")).starts_with("scenario: [[http]] \"login\": path"), "{bad}");
        }
        assert!(step("path = \"/\"\nmethod = \"PO ST\"").contains("\"login\": method \"PO ST\""));
        assert!(step("path = \"/\"\nmethod = \"\"").contains("\"login\": method"));
        assert!(step("path = \"/\"\nheaders = { \"Bad Name\" = \"x\" }").contains("\"login\": header \"Bad Name\""));
        assert!(
            step("path = \"/\"\nheaders = { \"X-A\" = \"a\\r\\nb\" }").contains("\"login\": header \"X-A\": value")
        );
        assert!(
            step("path = \"/\"\nheaders = { \"X-A\" = \"a\\u0000\" }").contains("\"login\": header \"X-A\": value")
        );
        assert!(step("path = \"/\"\nextract = { \"a-b\" = \"$.a\" }").contains("\"login\": extract \"a-b\": variable"));
        assert_eq!(
            step("path = \"/\"\nextract = { token = \"$.a[x]\" }"),
            "scenario: [[http]] \"login\": extract \"token\": path \"$.a[x]\" is not a JSON path ($.name, $.name[0], ...)"
        );
        // An unnamed step is named by its position in messages too.
        assert!(err(&format!("[[http]]\n[[http]]\n{MINIMAL}")).starts_with("scenario: [[http]] \"http1\": path"));
        assert!(err(&format!("[[http]]\nname = \"\"\npath = \"/\"\n{MINIMAL}")).contains("#1: name must not be empty"));
    }

    #[test]
    fn conversation_header_errors() {
        let e = err(&format!("{MINIMAL}headers = {{ \"Auth:\" = \"x\" }}\n"));
        assert_eq!(e, "scenario: [conversation] header \"Auth:\" is not an HTTP header name");
        let e = err(&format!("{MINIMAL}headers = {{ Auth = \"x\\ny\" }}\n"));
        assert!(e.contains("[conversation] header \"Auth\": value must not contain CR, LF or NUL"), "{e}");
    }

    #[test]
    fn duplicate_step_names_rejected() {
        let e = err(&format!("[[http]]\npath = \"/\"\n[[http]]\nname = \"http1\"\npath = \"/\"\n{MINIMAL}"));
        assert_eq!(e, "scenario: [[http]] \"http1\": name is already used by an earlier step");
    }

    #[test]
    fn unknown_keys_and_bad_toml_rejected() {
        let e = err(&format!("{MINIMAL}temperature = 0.5\n"));
        assert!(e.starts_with("scenario: ") && e.contains("temperature") && e.contains("line 4"), "{e}");
        assert!(err(&format!("[[http]]\npath = \"/\"\nurl = \"x\"\n{MINIMAL}")).contains("url"));
        assert!(err(&format!("[extra]\n{MINIMAL}")).contains("extra"));
        let e = err("[conversation\n");
        assert!(e.starts_with("scenario: ") && e.contains("line 1"), "{e}");
        assert!(err(&format!("{MINIMAL}turns = 3\n")).contains("turns"));
    }

    #[test]
    fn variables_in_order_deduplicated() {
        let text = "[[http]]\npath = \"/a\"\nextract = { token = \"$.t\", user = \"$.u\" }\n\
                    [[http]]\npath = \"/b\"\nextract = { token = \"$.t2\", org = \"$.o\" }\n"
            .to_string()
            + MINIMAL;
        assert_eq!(Scenario::parse(&text).unwrap().variables(), ["token", "user", "org"]);
        assert!(Scenario::parse(MINIMAL).unwrap().variables().is_empty());
    }

    #[test]
    fn load_names_the_file() {
        let missing = std::env::temp_dir().join("ssebench-no-such-scenario.toml");
        let e = Scenario::load(&missing).unwrap_err();
        assert!(e.contains("ssebench-no-such-scenario.toml"), "{e}");
        let file = std::env::temp_dir().join(format!("ssebench-scenario-{}.toml", std::process::id()));
        std::fs::write(&file, MINIMAL).unwrap();
        let loaded = Scenario::load(&file);
        std::fs::remove_file(&file).unwrap();
        assert_eq!(loaded.unwrap().conversation.turns, 2);
    }

    #[test]
    fn json_path_finds_values() {
        let body = br#"{"access_token": "abc", "data": {"items": [{"id": 1}, {"id": "x-2"}]}, "n": 1.5, "ok": true,
                        "neg": -7, "esc": "a\"b\\c\n\u00e9", "nil": null, "dash-key": {"k_1": "v"}}"#;
        let get = |p: &str| path(p).extract(body).unwrap();
        assert_eq!(get("$.access_token").as_deref(), Some("abc"));
        assert_eq!(get("$.data.items[1].id").as_deref(), Some("x-2"));
        assert_eq!(get("$.data.items[0].id").as_deref(), Some("1"));
        assert_eq!(get("$.n").as_deref(), Some("1.5"));
        assert_eq!(get("$.neg").as_deref(), Some("-7"));
        assert_eq!(get("$.ok").as_deref(), Some("true"));
        assert_eq!(get("$.esc").as_deref(), Some("a\"b\\c\né"));
        assert_eq!(get("$.dash-key.k_1").as_deref(), Some("v"));
        assert_eq!(path("$").extract(b"\"whole\"").unwrap().as_deref(), Some("whole"));
        assert_eq!(path("$").extract(b" 42 ").unwrap().as_deref(), Some("42"));
    }

    #[test]
    fn json_path_not_found_is_none() {
        let body = br#"{"a": {"b": [1]}, "nil": null}"#;
        for p in ["$.missing", "$.a.b[1]", "$.a[0]", "$.a.b.c", "$.nil", "$.a", "$.a.b", "$", "$.a.b[0].x"] {
            assert_eq!(path(p).extract(body), Ok(None), "{p}");
        }
    }

    #[test]
    fn json_path_body_not_json_is_err() {
        for body in [&b"<html>"[..], b"", b"{\"a\": 1", b"\xff"] {
            let e = path("$.a").extract(body).unwrap_err();
            assert!(e.starts_with("response body is not JSON"), "{e}");
        }
    }

    #[test]
    fn json_path_syntax() {
        for good in ["$", "$.a", "$[0]", "$.a[12][3].b-c_d", "$.0"] {
            assert_eq!(path(good).as_str(), good);
        }
        for bad in
            ["access_token", "$.", "$[x]", "$.a[", "$..a", "", "$a", "$.a.", "$[]", "$[-1]", "$[+1]", "$.a b", "$.é"]
        {
            let e = JsonPath::parse(bad).unwrap_err();
            assert!(e.contains("is not a JSON path"), "{bad}: {e}");
        }
        assert!(JsonPath::parse("$[99999999999999999999999]").is_err());
    }
}

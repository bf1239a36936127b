//! Per-chunk facts of an OpenAI-compatible LLM stream: one bounded, allocation-free, single-pass JSON scan of an SSE
//! `data` payload (chat.completion.chunk, text_completion, in-stream errors, `[DONE]`).
//!
//! Choices the caller must know:
//! - Field paths are matched at their exact place only: `choices[*].delta.{content,reasoning_content,reasoning,role}`,
//!   `choices[*].{text,finish_reason}`, top-level `usage`, `error`, `object`. A `content` key anywhere else
//!   (`logprobs.content`, inside `tool_calls`, ...) is skipped.
//! - `reasoning_content` and `reasoning` are aliases: a delta carrying both counts the longer, not the sum.
//! - Duplicate keys: text fields (`content`, `text`, `reasoning*`) are summed, like text across choices; scalar facts
//!   (`finish_reason`, `usage` and its numbers) are last-wins; `error` is sticky.
//! - Keys and `finish_reason` values are compared after unescaping, so `"\u0063ontent"` is `content`.
//! - Strings are not UTF-8 validated and raw control characters inside them are tolerated; an unpaired UTF-16
//!   surrogate escape counts as U+FFFD (3 bytes, 1 char), as a lossy decoder would produce.
//! - Valid JSON whose top level is not an object yields `Ok(ChunkInfo::default())`.

use std::fmt;

use memchr::memchr2;

/// Deepest container nesting accepted; the top-level object is depth 1. Deeper input is [`ChunkError::TooDeep`].
pub const MAX_DEPTH: u32 = 64;

/// What one `data:` payload of an LLM stream says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChunkInfo {
    /// The payload is `[DONE]`, with optional surrounding ASCII whitespace.
    pub done: bool,
    /// Decoded UTF-8 byte length of `choices[*].delta.content` (chat) plus `choices[*].text` (completions).
    pub content_bytes: u32,
    /// The same text counted in Unicode scalar values after JSON unescaping.
    pub content_chars: u32,
    /// Decoded UTF-8 byte length of `choices[*].delta.reasoning_content` or `choices[*].delta.reasoning` (aliases:
    /// when a delta has both, the longer counts).
    pub reasoning_bytes: u32,
    /// Some delta carries a string `role` and the chunk says nothing else we report: no content, no reasoning, no
    /// finish reason, no usage, no error. Tool-call deltas are not inspected, so they do not clear it.
    pub role_only: bool,
    /// The last non-null string `choices[*].finish_reason`.
    pub finish: Option<Finish>,
    /// The top-level `usage` object; `None` when absent, `null` or not an object.
    pub usage: Option<Usage>,
    /// A top-level `error` key whose value is neither `null` nor `false`, or top-level `"object": "error"`.
    pub error: bool,
}

/// Why a choice stopped generating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// `"stop"`: natural end or stop sequence.
    Stop,
    /// `"length"`: token limit reached.
    Length,
    /// `"tool_calls"`, or legacy `"function_call"`.
    ToolCalls,
    /// `"content_filter"`.
    ContentFilter,
    /// Any other string (`"eos_token"`, `"abort"`, ...).
    Other,
}

/// Token accounting from a `usage` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// `prompt_tokens`.
    pub prompt_tokens: Tokens,
    /// `completion_tokens`.
    pub completion_tokens: Tokens,
    /// `completion_tokens_details.reasoning_tokens` (absent when the details are absent or not an object).
    pub reasoning_tokens: Tokens,
}

impl Usage {
    /// Some count is there but is no token count: the server's accounting cannot be trusted, none of it.
    pub fn is_unreadable(&self) -> bool {
        [self.prompt_tokens, self.completion_tokens, self.reasoning_tokens].contains(&Tokens::Unreadable)
    }
}

/// Largest token count a `usage` number may give: one stream's prompt or answer is far below 2^32 tokens, and
/// a number past it (10^19, say) is an error of the server's, not a count.
pub const MAX_TOKENS: u64 = u32::MAX as u64;

/// One count of a `usage` object, as the JSON gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tokens {
    /// Absent, or `null`.
    #[default]
    Absent,
    /// A non-negative integer literal no greater than [`MAX_TOKENS`].
    Count(u32),
    /// Anything else: a negative, fractional (`5.0`) or exponent (`1e2`) number, one over [`MAX_TOKENS`], a string
    /// (`"5"`), a boolean, an array or an object.
    Unreadable,
}

impl Tokens {
    /// The count, if there is one.
    pub fn count(self) -> Option<u64> {
        match self {
            Tokens::Count(n) => Some(u64::from(n)),
            Tokens::Absent | Tokens::Unreadable => None,
        }
    }
}

/// Why a payload could not be scanned. Small and `Copy` so the caller can count it cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// Not a single well-formed JSON value (nor `[DONE]`).
    NotJson,
    /// Containers nested deeper than [`MAX_DEPTH`]; reported as soon as the limit is crossed.
    TooDeep,
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotJson => "payload is not JSON",
            Self::TooDeep => "payload JSON nests too deeply",
        })
    }
}

impl std::error::Error for ChunkError {}

type Scan<T = ()> = Result<T, ChunkError>;

/// Scans one SSE `data` payload. Never panics, never allocates, and uses bounded stack on any input.
pub fn scan(payload: &[u8]) -> Result<ChunkInfo, ChunkError> {
    scan_capturing(payload, None)
}

/// Where [`scan_capturing`] appends the decoded content text: a multi-turn conversation keeps each answer to send
/// it back as context.
pub struct Capture<'a> {
    pub text: &'a mut Vec<u8>,
    /// `text` never grows past this many bytes; the rest of the answer is dropped (the answer is counted in full).
    pub limit: usize,
}

/// [`scan`], also appending the decoded content text to `capture`. Allocates only when `capture.text` grows; on an
/// error, `capture.text` is left as it was.
pub fn scan_capturing(payload: &[u8], capture: Option<Capture<'_>>) -> Result<ChunkInfo, ChunkError> {
    if payload.trim_ascii() == b"[DONE]" {
        return Ok(ChunkInfo { done: true, ..ChunkInfo::default() });
    }
    let mut s = Scanner { buf: payload, pos: 0 };
    let mut acc = Acc::default();
    let mut captured_before = None;
    if let Some(capture) = capture {
        captured_before = Some(capture.text.len());
        acc.content.capture = Some(capture);
    }
    let result = s.top_level(&mut acc);
    if result.is_err()
        && let (Some(len), Some(capture)) = (captured_before, acc.content.capture.as_mut())
    {
        capture.text.truncate(len);
    }
    result?;
    Ok(acc.into_info())
}

/// Facts gathered while walking the payload, turned into a [`ChunkInfo`] at the end.
#[derive(Default)]
struct Acc<'c> {
    content: Count<'c>,
    reasoning_bytes: usize,
    role: bool,
    finish: Option<Finish>,
    usage: Option<Usage>,
    error: bool,
}

impl Acc<'_> {
    fn into_info(self) -> ChunkInfo {
        let said_more = self.content.bytes > 0
            || self.reasoning_bytes > 0
            || self.finish.is_some()
            || self.usage.is_some()
            || self.error;
        ChunkInfo {
            done: false,
            content_bytes: saturate(self.content.bytes),
            content_chars: saturate(self.content.chars),
            reasoning_bytes: saturate(self.reasoning_bytes),
            role_only: self.role && !said_more,
            finish: self.finish,
            usage: self.usage,
            error: self.error,
        }
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The keys we act on, recognised in any context; each context decides which ones matter there.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Choices,
    Usage,
    Error,
    Object,
    Delta,
    Text,
    FinishReason,
    Content,
    ReasoningContent,
    Reasoning,
    Role,
    PromptTokens,
    CompletionTokens,
    CompletionTokensDetails,
    ReasoningTokens,
    Other,
}

impl Field {
    fn of(name: &[u8]) -> Self {
        match name {
            b"choices" => Self::Choices,
            b"usage" => Self::Usage,
            b"error" => Self::Error,
            b"object" => Self::Object,
            b"delta" => Self::Delta,
            b"text" => Self::Text,
            b"finish_reason" => Self::FinishReason,
            b"content" => Self::Content,
            b"reasoning_content" => Self::ReasoningContent,
            b"reasoning" => Self::Reasoning,
            b"role" => Self::Role,
            b"prompt_tokens" => Self::PromptTokens,
            b"completion_tokens" => Self::CompletionTokens,
            b"completion_tokens_details" => Self::CompletionTokensDetails,
            b"reasoning_tokens" => Self::ReasoningTokens,
            _ => Self::Other,
        }
    }
}

fn finish_of(name: &[u8]) -> Finish {
    match name {
        b"stop" => Finish::Stop,
        b"length" => Finish::Length,
        b"tool_calls" | b"function_call" => Finish::ToolCalls,
        b"content_filter" => Finish::ContentFilter,
        _ => Finish::Other,
    }
}

/// Receives the decoded bytes of a JSON string, in pieces.
trait Sink {
    fn push(&mut self, bytes: &[u8]);
}

/// Discards string bodies that only need validating.
struct Discard;

impl Sink for Discard {
    fn push(&mut self, _: &[u8]) {}
}

/// Measures decoded text: bytes, and chars as bytes that are not UTF-8 continuation bytes (0b10xxxxxx).
#[derive(Default)]
struct Count<'c> {
    bytes: usize,
    chars: usize,
    capture: Option<Capture<'c>>,
}

impl Sink for Count<'_> {
    fn push(&mut self, bytes: &[u8]) {
        if let Some(capture) = &mut self.capture {
            let room = capture.limit.saturating_sub(capture.text.len());
            capture.text.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        self.bytes += bytes.len();
        // As i8, continuation bytes are exactly -128..=-65.
        self.chars += bytes.iter().filter(|&&b| (b as i8) >= -0x40).count();
    }
}

/// Holds a short decoded string (keys, enum-like values) on the stack; longer ones match nothing we look for.
struct Short {
    buf: [u8; Short::CAP],
    len: usize,
    long: bool,
}

impl Short {
    /// Longer than any name we compare against (`completion_tokens_details` is 25).
    const CAP: usize = 32;

    fn new() -> Self {
        Self { buf: [0; Self::CAP], len: 0, long: false }
    }

    fn get(&self) -> &[u8] {
        if self.long { &[] } else { self.buf.get(..self.len).unwrap_or(&[]) }
    }
}

impl Sink for Short {
    fn push(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) if !self.long => {
                dst.copy_from_slice(bytes);
                self.len = end;
            }
            _ => self.long = true,
        }
    }
}

/// The containers `skip_value` has open, innermost in bit 0 (1 = object). `MAX_DEPTH <= 64` keeps them in a `u64`.
#[derive(Default)]
struct Open {
    bits: u64,
    len: u32,
}

impl Open {
    fn push(&mut self, is_object: bool) {
        self.bits = self.bits << 1 | u64::from(is_object);
        self.len += 1;
    }

    fn pop(&mut self) {
        self.bits >>= 1;
        self.len -= 1;
    }

    fn in_object(&self) -> bool {
        self.bits & 1 == 1
    }
}

/// Cursor over one payload. Every method leaves `pos` just past what it consumed; `depth` arguments count the
/// containers enclosing the value at hand.
struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Structure of an LLM chunk: the paths we read. Everything else goes through `skip_value`.
impl Scanner<'_> {
    /// The whole payload: one JSON value with optional whitespace around it.
    fn top_level(&mut self, acc: &mut Acc) -> Scan {
        self.ws();
        if self.peek() == Some(b'{') {
            self.top(acc)?;
        } else {
            self.skip_value(0)?;
        }
        self.ws();
        if self.pos != self.buf.len() {
            return Err(ChunkError::NotJson);
        }
        Ok(())
    }

    fn top(&mut self, acc: &mut Acc) -> Scan {
        self.object(1, |s, field| match field {
            Field::Choices => s.choices(acc),
            Field::Usage => {
                acc.usage = s.usage()?;
                Ok(())
            }
            Field::Error => {
                // `"error": null` (or `false`) is how some servers say "no error".
                acc.error |= !s.at(b"null") && !s.at(b"false");
                s.skip_value(1)
            }
            Field::Object => {
                acc.error |= s.short_string(1)?.is_some_and(|v| v.get() == b"error");
                Ok(())
            }
            _ => s.skip_value(1),
        })
    }

    fn choices(&mut self, acc: &mut Acc) -> Scan {
        if self.peek() != Some(b'[') {
            return self.skip_value(1);
        }
        self.array(2, |s| s.choice(acc))
    }

    fn choice(&mut self, acc: &mut Acc) -> Scan {
        if self.peek() != Some(b'{') {
            return self.skip_value(2);
        }
        self.object(3, |s, field| match field {
            Field::Delta => s.delta(acc),
            Field::Text => s.text(3, &mut acc.content),
            Field::FinishReason => {
                if let Some(reason) = s.short_string(3)? {
                    acc.finish = Some(finish_of(reason.get()));
                }
                Ok(())
            }
            _ => s.skip_value(3),
        })
    }

    fn delta(&mut self, acc: &mut Acc) -> Scan {
        if self.peek() != Some(b'{') {
            return self.skip_value(3);
        }
        // The two reasoning names are aliases: servers mid-rename (vLLM) or proxies may send both with the same
        // text, so a delta contributes the larger of the two rather than their sum.
        let (mut legacy, mut current) = (Count::default(), Count::default());
        self.object(4, |s, field| match field {
            Field::Content => s.text(4, &mut acc.content),
            Field::ReasoningContent => s.text(4, &mut legacy),
            Field::Reasoning => s.text(4, &mut current),
            Field::Role => {
                acc.role |= s.peek() == Some(b'"');
                s.skip_value(4)
            }
            _ => s.skip_value(4),
        })?;
        acc.reasoning_bytes += legacy.bytes.max(current.bytes);
        Ok(())
    }

    fn usage(&mut self) -> Scan<Option<Usage>> {
        if self.peek() != Some(b'{') {
            self.skip_value(1)?;
            return Ok(None);
        }
        let mut usage = Usage::default();
        self.object(2, |s, field| {
            match field {
                Field::PromptTokens => usage.prompt_tokens = s.tokens(2)?,
                Field::CompletionTokens => usage.completion_tokens = s.tokens(2)?,
                Field::CompletionTokensDetails => usage.reasoning_tokens = s.details()?,
                _ => s.skip_value(2)?,
            }
            Ok(())
        })?;
        Ok(Some(usage))
    }

    /// `usage.completion_tokens_details`, reduced to its `reasoning_tokens`.
    fn details(&mut self) -> Scan<Tokens> {
        if self.peek() != Some(b'{') {
            self.skip_value(2)?;
            return Ok(Tokens::Absent);
        }
        let mut reasoning = Tokens::Absent;
        self.object(3, |s, field| match field {
            Field::ReasoningTokens => {
                reasoning = s.tokens(3)?;
                Ok(())
            }
            _ => s.skip_value(3),
        })?;
        Ok(reasoning)
    }

    /// A text field: measured when it is a string, otherwise (`null`, or anything odd) skipped.
    fn text(&mut self, depth: u32, count: &mut Count) -> Scan {
        if self.peek() == Some(b'"') { self.string(count) } else { self.skip_value(depth) }
    }

    /// A string value decoded into a [`Short`]; `None` (value skipped) when it is not a string.
    fn short_string(&mut self, depth: u32) -> Scan<Option<Short>> {
        if self.peek() != Some(b'"') {
            self.skip_value(depth)?;
            return Ok(None);
        }
        let mut short = Short::new();
        self.string(&mut short)?;
        Ok(Some(short))
    }

    /// A token count: `null` is none, a non-negative integer literal up to [`MAX_TOKENS`] a count, and any other
    /// value (skipped) unreadable.
    fn tokens(&mut self, depth: u32) -> Scan<Tokens> {
        match self.peek() {
            Some(b'n') => self.literal(b"null").map(|()| Tokens::Absent),
            Some(b'-' | b'0'..=b'9') => {
                let count = self.number()?.and_then(|n| u32::try_from(n).ok());
                Ok(count.map_or(Tokens::Unreadable, Tokens::Count))
            }
            _ => self.skip_value(depth).map(|()| Tokens::Unreadable),
        }
    }
}

/// Generic JSON grammar: containers, strings, numbers, literals.
impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.pos += usize::from(hit);
        hit
    }

    fn expect(&mut self, b: u8) -> Scan {
        if self.eat(b) { Ok(()) } else { Err(ChunkError::NotJson) }
    }

    fn at(&self, word: &[u8]) -> bool {
        self.buf.get(self.pos..).is_some_and(|rest| rest.starts_with(word))
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Walks the object at `pos` (a `{`) whose own depth is `depth`; `member` is called with each key's field and
    /// the cursor on its value, and must consume that value.
    fn object(&mut self, depth: u32, mut member: impl FnMut(&mut Self, Field) -> Scan) -> Scan {
        if depth > MAX_DEPTH {
            return Err(ChunkError::TooDeep);
        }
        self.pos += 1;
        self.ws();
        if self.eat(b'}') {
            return Ok(());
        }
        loop {
            let field = self.key()?;
            member(self, field)?;
            self.ws();
            match self.bump() {
                Some(b',') => self.ws(),
                Some(b'}') => return Ok(()),
                _ => return Err(ChunkError::NotJson),
            }
        }
    }

    /// Walks the array at `pos` (a `[`) whose own depth is `depth`; `element` must consume each element.
    fn array(&mut self, depth: u32, mut element: impl FnMut(&mut Self) -> Scan) -> Scan {
        if depth > MAX_DEPTH {
            return Err(ChunkError::TooDeep);
        }
        self.pos += 1;
        self.ws();
        if self.eat(b']') {
            return Ok(());
        }
        loop {
            element(self)?;
            self.ws();
            match self.bump() {
                Some(b',') => self.ws(),
                Some(b']') => return Ok(()),
                _ => return Err(ChunkError::NotJson),
            }
        }
    }

    /// Reads `"key" :` and leaves the cursor on the value.
    fn key(&mut self) -> Scan<Field> {
        if self.peek() != Some(b'"') {
            return Err(ChunkError::NotJson);
        }
        let mut name = Short::new();
        self.string(&mut name)?;
        self.ws();
        self.expect(b':')?;
        self.ws();
        Ok(Field::of(name.get()))
    }

    /// Validates and consumes any value. Iterative, so stack use is constant whatever the nesting.
    fn skip_value(&mut self, depth: u32) -> Scan {
        let mut open = Open::default();
        loop {
            self.ws();
            match self.peek() {
                Some(b @ (b'{' | b'[')) => {
                    if depth + open.len + 1 > MAX_DEPTH {
                        return Err(ChunkError::TooDeep);
                    }
                    let is_object = b == b'{';
                    self.pos += 1;
                    self.ws();
                    if !self.eat(if is_object { b'}' } else { b']' }) {
                        open.push(is_object);
                        if is_object {
                            self.key()?;
                        }
                        continue;
                    }
                }
                _ => self.scalar()?,
            }
            if !self.next_element(&mut open)? {
                return Ok(());
            }
        }
    }

    /// After a value: consumes closing brackets, then a `,` (and the key, in an object) if the innermost open
    /// container goes on. `false` once every container opened by `skip_value` is closed.
    fn next_element(&mut self, open: &mut Open) -> Scan<bool> {
        while open.len > 0 {
            self.ws();
            match (self.bump(), open.in_object()) {
                (Some(b','), true) => {
                    self.ws();
                    self.key()?;
                    return Ok(true);
                }
                (Some(b','), false) => return Ok(true),
                (Some(b'}'), true) | (Some(b']'), false) => open.pop(),
                _ => return Err(ChunkError::NotJson),
            }
        }
        Ok(false)
    }

    fn scalar(&mut self) -> Scan {
        match self.peek() {
            Some(b'"') => self.string(&mut Discard),
            Some(b'-' | b'0'..=b'9') => self.number().map(drop),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => Err(ChunkError::NotJson),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Scan {
        if !self.at(word) {
            return Err(ChunkError::NotJson);
        }
        self.pos += word.len();
        Ok(())
    }

    /// Consumes a JSON number; yields its value when it is a plain non-negative integer that fits `u64`.
    fn number(&mut self) -> Scan<Option<u64>> {
        let negative = self.eat(b'-');
        let start = self.pos;
        match self.bump() {
            Some(b'0') => {}
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(ChunkError::NotJson),
        }
        let end = self.pos;
        let mut integral = !negative;
        if self.eat(b'.') {
            integral = false;
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            integral = false;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.some_digits()?;
        }
        let digits = self.buf.get(start..end).filter(|_| integral);
        Ok(digits.and_then(|d| d.iter().try_fold(0u64, |n, &c| n.checked_mul(10)?.checked_add(u64::from(c - b'0')))))
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn some_digits(&mut self) -> Scan {
        let start = self.pos;
        self.digits();
        if self.pos == start { Err(ChunkError::NotJson) } else { Ok(()) }
    }

    /// Consumes the string at `pos` (a `"`), feeding its decoded bytes to `sink`. Unescaped runs are found with
    /// `memchr` and handed over whole.
    fn string(&mut self, sink: &mut impl Sink) -> Scan {
        self.pos += 1;
        loop {
            let rest = self.buf.get(self.pos..).unwrap_or_default();
            let Some(i) = memchr2(b'"', b'\\', rest) else {
                return Err(ChunkError::NotJson);
            };
            sink.push(&rest[..i]);
            self.pos += i + 1;
            if rest[i] == b'"' {
                return Ok(());
            }
            self.escape(sink)?;
        }
    }

    /// Decodes the escape after a backslash.
    fn escape(&mut self, sink: &mut impl Sink) -> Scan {
        let byte = match self.bump() {
            Some(c @ (b'"' | b'\\' | b'/')) => c,
            Some(b'b') => 0x08,
            Some(b'f') => 0x0c,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'u') => return self.unicode_escape(sink),
            _ => return Err(ChunkError::NotJson),
        };
        sink.push(&[byte]);
        Ok(())
    }

    /// Decodes `XXXX` after `\u`, pairing a high surrogate with a directly following `\uXXXX` low surrogate.
    /// Unpaired surrogates become U+FFFD rather than an error: the JSON grammar allows them.
    fn unicode_escape(&mut self, sink: &mut impl Sink) -> Scan {
        let unit = self.hex4(self.pos).ok_or(ChunkError::NotJson)?;
        self.pos += 4;
        let code = match unit {
            0xD800..=0xDBFF => match self.low_surrogate() {
                Some(low) => 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00),
                None => unit,
            },
            _ => unit,
        };
        let ch = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
        sink.push(ch.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }

    /// Consumes `\uXXXX` only if it is a low surrogate, so anything else is decoded on its own.
    fn low_surrogate(&mut self) -> Option<u32> {
        if !self.at(b"\\u") {
            return None;
        }
        let low = self.hex4(self.pos + 2).filter(|low| (0xDC00..=0xDFFF).contains(low))?;
        self.pos += 6;
        Some(low)
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.buf.get(at..at.checked_add(4)?)?;
        digits.iter().try_fold(0, |n, &d| Some(n << 4 | char::from(d).to_digit(16)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    const NONE: ChunkInfo = ChunkInfo {
        done: false,
        content_bytes: 0,
        content_chars: 0,
        reasoning_bytes: 0,
        role_only: false,
        finish: None,
        usage: None,
        error: false,
    };
    const ROLE_ONLY: ChunkInfo = ChunkInfo { role_only: true, ..NONE };
    const DONE: ChunkInfo = ChunkInfo { done: true, ..NONE };
    const ERROR: ChunkInfo = ChunkInfo { error: true, ..NONE };

    fn text(bytes: u32, chars: u32) -> ChunkInfo {
        ChunkInfo { content_bytes: bytes, content_chars: chars, ..NONE }
    }

    fn reasoning(bytes: u32) -> ChunkInfo {
        ChunkInfo { reasoning_bytes: bytes, ..NONE }
    }

    fn finish(f: Finish) -> ChunkInfo {
        ChunkInfo { finish: Some(f), ..NONE }
    }

    fn usage(prompt: Tokens, completion: Tokens, reasoning: Tokens) -> ChunkInfo {
        let usage = Usage { prompt_tokens: prompt, completion_tokens: completion, reasoning_tokens: reasoning };
        ChunkInfo { usage: Some(usage), ..NONE }
    }

    fn check(input: &str, expected: Result<ChunkInfo, ChunkError>) {
        assert_eq!(scan(input.as_bytes()), expected, "input: {input}");
    }

    /// Wraps a delta body into a one-choice chat chunk.
    fn delta(body: &str) -> String {
        format!(r#"{{"object":"chat.completion.chunk","choices":[{{"index":0,"delta":{body},"finish_reason":null}}]}}"#)
    }

    #[test]
    fn capture_keeps_decoded_content_within_its_limit_and_undoes_a_failed_scan() {
        let mut text = Vec::new();
        let chunk = br#"{"choices":[{"delta":{"content":"h\u00e9\"llo","reasoning_content":"no"}}]}"#;
        let info = scan_capturing(chunk, Some(Capture { text: &mut text, limit: 100 })).unwrap();
        assert_eq!((info.content_bytes, text.as_slice()), (7, "h\u{e9}\"llo".as_bytes()));
        let completion = br#"{"choices":[{"text":" more text"}]}"#;
        scan_capturing(completion, Some(Capture { text: &mut text, limit: 10 })).unwrap();
        assert_eq!(text, "h\u{e9}\"llo mo".as_bytes());
        let broken = br#"{"choices":[{"delta":{"content":"lost"}}]"#;
        assert!(scan_capturing(broken, Some(Capture { text: &mut text, limit: 100 })).is_err());
        assert_eq!(text, "h\u{e9}\"llo mo".as_bytes());
    }

    #[test]
    fn deltas() {
        let cases: &[(&str, ChunkInfo)] = &[
            (r#"{"role":"assistant","content":"","refusal":null}"#, ROLE_ONLY),
            (r#"{"role":"assistant","content":null}"#, ROLE_ONLY),
            (r#"{"role":"assistant"}"#, ROLE_ONLY),
            (r#"{"role":null}"#, NONE),
            (r#"{"content":""}"#, NONE),
            (r#"{"content":null}"#, NONE),
            (r#"{}"#, NONE),
            (r#"{"content":"Hello"}"#, text(5, 5)),
            (r#"{"role":"assistant","content":"Hi"}"#, text(2, 2)),
            (r#"{"content":"a\nb\"c\\d\/e\bf\fg\rh\ti"}"#, text(17, 17)),
            (r#"{"content":"caf\u00e9"}"#, text(5, 4)),
            (r#"{"content":"caf\u00E9"}"#, text(5, 4)),
            (r#"{"content":"\u20ac\u0041"}"#, text(4, 2)),
            (r#"{"content":"\ud83d\ude00"}"#, text(4, 1)),
            (r#"{"content":"\uD83D\uDE00!"}"#, text(5, 2)),
            (r#"{"content":"é😀日"}"#, text(9, 3)),
            (r#"{"content":"\u0000"}"#, text(1, 1)),
            // Unpaired surrogates decode as U+FFFD (3 bytes).
            (r#"{"content":"\ud83d"}"#, text(3, 1)),
            (r#"{"content":"\ude00x"}"#, text(4, 2)),
            (r#"{"content":"\ud83d\u0041"}"#, text(4, 2)),
            (r#"{"content":"\ud83d\ud83d\ude00"}"#, text(7, 2)),
            (r#"{"content":"\ud83d\n"}"#, text(4, 2)),
            (r#"{"reasoning_content":"think"}"#, reasoning(5)),
            (r#"{"reasoning":"abc"}"#, reasoning(3)),
            (r#"{"reasoning_content":"ab","reasoning":"c"}"#, reasoning(2)),
            (r#"{"reasoning":"a","reasoning_content":"bc"}"#, reasoning(2)),
            (r#"{"reasoning_content":"same","reasoning":"same"}"#, reasoning(4)),
            (r#"{"reasoning":"ab","reasoning":"c","reasoning_content":"xy"}"#, reasoning(3)),
            (r#"{"role":"assistant","content":"","reasoning":"\u00e9"}"#, reasoning(2)),
            (r#"{"role":"assistant","content":"","reasoning":null}"#, ROLE_ONLY),
            (r#"{"content":"ab","reasoning_content":"cd"}"#, ChunkInfo { reasoning_bytes: 2, ..text(2, 2) }),
            // Text that is not a string is not text.
            (r#"{"content":5}"#, NONE),
            (r#"{"content":["a"],"reasoning":{"text":"x"}}"#, NONE),
            // Duplicate text keys are summed.
            (r#"{"content":"ab","content":"c"}"#, text(3, 3)),
            // Escaped keys compare unescaped.
            (r#"{"\u0063ontent":"hi"}"#, text(2, 2)),
            (r#"{"content\u0000":"hi"}"#, NONE),
            (r#"{"a_key_that_is_much_longer_than_thirty_two_bytes":"hi"}"#, NONE),
            // Misplaced `content` keys.
            (
                r#"{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"content\":1}","content":"x"}}]}"#,
                NONE,
            ),
            (r#"{"role":"assistant","content":null,"tool_calls":[{"content":"x"}]}"#, ROLE_ONLY),
            (r#"{"message":{"content":"nested"}}"#, NONE),
            (" \r\n{ \"content\" :\t\"ok\" ,\n \"role\" : \"assistant\" } ", text(2, 2)),
        ];
        for (body, expected) in cases {
            check(&delta(body), Ok(*expected));
        }
    }

    #[test]
    fn choices() {
        let cases: &[(&str, ChunkInfo)] = &[
            (r#"{"choices":[]}"#, NONE),
            (r#"{"choices":null}"#, NONE),
            (r#"{"choices":{"delta":{"content":"x"}}}"#, NONE),
            (r#"{"choices":[1,"x",null,[],{}]}"#, NONE),
            (r#"{"choices":[{"delta":"hi"}]}"#, NONE),
            (r#"{"choices":[{"delta":null,"text":null}]}"#, NONE),
            (r#"{"choices":[{"delta":{"content":"ab"}},{"delta":{"content":"cde"}}]}"#, text(5, 5)),
            (r#"{"choices":[{"text":" Paris is","index":0,"logprobs":null,"finish_reason":null}]}"#, text(9, 9)),
            (
                r#"{"choices":[{"text":"a"},{"text":"b","finish_reason":"length"}]}"#,
                ChunkInfo { finish: Some(Finish::Length), ..text(2, 2) },
            ),
            (r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#, finish(Finish::Stop)),
            (r#"{"choices":[{"finish_reason":"length"}]}"#, finish(Finish::Length)),
            (r#"{"choices":[{"finish_reason":"tool_calls"}]}"#, finish(Finish::ToolCalls)),
            (r#"{"choices":[{"finish_reason":"function_call"}]}"#, finish(Finish::ToolCalls)),
            (r#"{"choices":[{"finish_reason":"content_filter"}]}"#, finish(Finish::ContentFilter)),
            (r#"{"choices":[{"finish_reason":"eos_token"}]}"#, finish(Finish::Other)),
            (r#"{"choices":[{"finish_reason":""}]}"#, finish(Finish::Other)),
            (r#"{"choices":[{"finish_reason":"st\u006fp"}]}"#, finish(Finish::Stop)),
            (r#"{"choices":[{"finish_reason":7}]}"#, NONE),
            (r#"{"choices":[{"finish_reason":"stop"},{"finish_reason":null}]}"#, finish(Finish::Stop)),
            (r#"{"choices":[{"finish_reason":"stop","finish_reason":"length"}]}"#, finish(Finish::Length)),
            (r#"{"choices":[{"delta":{"role":"assistant"},"finish_reason":"stop"}]}"#, finish(Finish::Stop)),
            // `content`/`text` outside `delta`/choice level, or in logprobs, do not count.
            (r#"{"content":"x","text":"y","choices":[{"content":"z","message":{"content":"w"}}]}"#, NONE),
            (
                r#"{"choices":[{"delta":{"content":"ok"},"logprobs":{"content":[{"token":"ok","logprob":-0.1,"bytes":[111,107],"top_logprobs":[{"token":"ok","content":"no"}]}],"refusal":null}}]}"#,
                text(2, 2),
            ),
            (r#"{"choices":[{"delta":{"tool_calls":[{"delta":{"content":"no"}}]}}]}"#, NONE),
            // Key order does not matter.
            (
                r#"{"choices":[{"finish_reason":null,"delta":{"content":"abc","role":"assistant"},"index":0}],"id":"x"}"#,
                text(3, 3),
            ),
            (r#"{"usage":null,"choices":[{"delta":{"content":"abc"}}],"object":"chat.completion.chunk"}"#, text(3, 3)),
            // Duplicate `choices` keys: both are read.
            (r#"{"choices":[{"text":"a"}],"choices":[{"text":"b"}]}"#, text(2, 2)),
            (r#"{"ch\u006fices":[{"text":"a"}]}"#, text(1, 1)),
        ];
        for (input, expected) in cases {
            check(input, Ok(*expected));
        }
    }

    #[test]
    fn usage_objects() {
        use Tokens::{Absent as A, Count as C, Unreadable as U};
        let openai = r#"{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}"#;
        let cases: &[(&str, ChunkInfo)] = &[
            (openai, usage(C(19), C(10), C(0))),
            (
                r#"{"prompt_tokens":12,"total_tokens":40,"completion_tokens":28,"prompt_tokens_details":null}"#,
                usage(C(12), C(28), A),
            ),
            (r#"{"completion_tokens_details":{"reasoning_tokens":61},"completion_tokens":88}"#, usage(A, C(88), C(61))),
            (r#"{}"#, usage(A, A, A)),
            (r#"null"#, NONE),
            (r#""soon""#, NONE),
            (r#"[1]"#, NONE),
            (r#"{"prompt_tokens":0,"completion_tokens":null}"#, usage(C(0), A, A)),
            (r#"{"completion_tokens_details":null}"#, usage(A, A, A)),
            (r#"{"completion_tokens_details":"none"}"#, usage(A, A, A)),
            (r#"{"completion_tokens_details":{"reasoning_tokens":null}}"#, usage(A, A, A)),
            (r#"{"completion_tokens_details":{"reasoning_tokens":5},"completion_tokens_details":{}}"#, usage(A, A, A)),
            // Last wins, an unreadable value too.
            (r#"{"prompt_tokens":1,"prompt_tokens":2}"#, usage(C(2), A, A)),
            (r#"{"completion_tokens":"x","completion_tokens":2}"#, usage(A, C(2), A)),
            (r#"{"completion_tokens":2,"completion_tokens":-2}"#, usage(A, U, A)),
            (r#"{"reasoning_tokens":5,"nested":{"prompt_tokens":9}}"#, usage(A, A, A)),
            // The largest count, and every kind of number or value that is none.
            (r#"{"prompt_tokens":4294967295,"completion_tokens":4294967295}"#, usage(C(u32::MAX), C(u32::MAX), A)),
            (r#"{"prompt_tokens":12.0,"completion_tokens":1e2}"#, usage(U, U, A)),
            (r#"{"prompt_tokens":-3,"completion_tokens":"7"}"#, usage(U, U, A)),
            (r#"{"completion_tokens":1e30}"#, usage(A, U, A)),
            (r#"{"completion_tokens":-1}"#, usage(A, U, A)),
            (r#"{"completion_tokens":-0}"#, usage(A, U, A)),
            (r#"{"completion_tokens":5.0}"#, usage(A, U, A)),
            (r#"{"completion_tokens":"5"}"#, usage(A, U, A)),
            (r#"{"completion_tokens":4294967296}"#, usage(A, U, A)),
            (r#"{"completion_tokens":10000000000000000000}"#, usage(A, U, A)),
            (r#"{"prompt_tokens":18446744073709551615,"completion_tokens":18446744073709551616}"#, usage(U, U, A)),
            (r#"{"completion_tokens":true,"prompt_tokens":[1]}"#, usage(U, U, A)),
            (r#"{"completion_tokens_details":{"reasoning_tokens":{"n":1}}}"#, usage(A, A, U)),
        ];
        for (body, expected) in cases {
            check(&format!(r#"{{"choices":[],"usage":{body}}}"#), Ok(*expected));
        }
        // Last `usage` wins, even when it is null.
        check(r#"{"usage":{"prompt_tokens":1},"usage":null}"#, Ok(NONE));
        check(r#"{"usage":null,"usage":{"prompt_tokens":1}}"#, Ok(usage(C(1), A, A)));
        // Usage is only read at the top level.
        check(r#"{"choices":[{"usage":{"prompt_tokens":1},"delta":{"usage":{"prompt_tokens":1}}}]}"#, Ok(NONE));
        let with_role = r#"{"choices":[{"delta":{"role":"assistant","content":""}}],"usage":{"prompt_tokens":3}}"#;
        check(with_role, Ok(usage(C(3), A, A)));
        // Not JSON stays not JSON, inside a count too.
        check(r#"{"usage":{"completion_tokens":nul}}"#, Err(ChunkError::NotJson));
        check(r#"{"usage":{"completion_tokens":05}}"#, Err(ChunkError::NotJson));
    }

    #[test]
    fn only_readable_usage_counts() {
        let readable = Usage { prompt_tokens: Tokens::Count(3), completion_tokens: Tokens::Absent, ..Usage::default() };
        assert!(!readable.is_unreadable());
        for field in 0..3 {
            let mut counts = [Tokens::Count(1); 3];
            counts[field] = Tokens::Unreadable;
            let [prompt_tokens, completion_tokens, reasoning_tokens] = counts;
            assert!(Usage { prompt_tokens, completion_tokens, reasoning_tokens }.is_unreadable(), "{counts:?}");
        }
        assert_eq!((Tokens::Count(u32::MAX).count(), Tokens::Absent.count()), (Some(MAX_TOKENS), None));
        assert_eq!(Tokens::Unreadable.count(), None);
    }

    #[test]
    fn done_and_errors() {
        let cases: &[(&str, Result<ChunkInfo, ChunkError>)] = &[
            ("[DONE]", Ok(DONE)),
            ("  [DONE]\n", Ok(DONE)),
            ("\t[DONE] \r\n", Ok(DONE)),
            ("[DONE]x", Err(ChunkError::NotJson)),
            ("[ DONE ]", Err(ChunkError::NotJson)),
            ("[done]", Err(ChunkError::NotJson)),
            (r#"{"error":{"message":"boom","type":"server_error","code":500}}"#, Ok(ERROR)),
            (r#"{"object":"error","message":"x","type":"BadRequestError","param":null,"code":400}"#, Ok(ERROR)),
            (r#"{"error":"overloaded"}"#, Ok(ERROR)),
            (r#"{"error":null,"choices":[]}"#, Ok(NONE)),
            (r#"{"error":false}"#, Ok(NONE)),
            (r#"{"object":"chat.completion.chunk"}"#, Ok(NONE)),
            (r#"{"object":"err\u006fr"}"#, Ok(ERROR)),
            (r#"{"choices":[{"delta":{"role":"assistant"}}],"error":{"message":"x"}}"#, Ok(ERROR)),
            (r#"{"choices":[{"error":{"message":"x"},"delta":{"error":1}}]}"#, Ok(NONE)),
            (r#"{"error":{"message":"x"},"error":null}"#, Ok(ERROR)),
            (r#"{"error":nul}"#, Err(ChunkError::NotJson)),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }

    #[test]
    fn valid_json_that_is_not_a_chunk() {
        for input in ["{}", "[1,2]", "\"str\"", "42", "-0.5e3", "null", "true", " [ ] ", "{\"a\":{\"b\":[{}]}}"] {
            check(input, Ok(NONE));
        }
    }

    #[test]
    fn not_json() {
        let cases = [
            "",
            "   ",
            "{",
            "}",
            r#"{"a":}"#,
            r#"{"a":1}x"#,
            r#"{"a":1}}"#,
            r#"{"a":1}{"b":2}"#,
            r#"{"a":"abc"#,
            r#"{"a":"abc\"}"#,
            r#"{"a":"\"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":"\u12G4"}"#,
            r#"{"a":"\ud83d\uZZZZ"}"#,
            r#"{"a":"\'"}"#,
            "hello",
            "tru",
            "nul",
            "NaN",
            "Infinity",
            r#"{"a":tru}"#,
            r#"{"a":truex}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":-}"#,
            r#"{"a":1e}"#,
            r#"{"a":1e+}"#,
            r#"{"a":+1}"#,
            r#"{"a",1}"#,
            r#"{"a"1}"#,
            r#"{a:1}"#,
            r#"{'a':1}"#,
            r#"{"a":1,}"#,
            r#"{,}"#,
            "[1,]",
            "[,1]",
            "[1 2]",
            "[}",
            "{]",
            "[DONE",
            r#"{"choices":[{"delta":{"content":"x"}}]"#,
            r#"{"choices":[}"#,
            r#"{"choices":[{"delta":{"content":"x"]}}"#,
            r#"{"choices":[{"delta":{"content":"x",}}]}"#,
            r#"{"choices":[{"delta":{"content":"x\q"}}]}"#,
            r#"{"choices":[{"finish_reason":"stop}]}"#,
            r#"{"usage":{"prompt_tokens":1.e5}}"#,
            r#"{"usage":{"completion_tokens_details":{"reasoning_tokens":}}}"#,
            r#"{"error":{"message":"x"}"#,
            "\u{feff}{}",
        ];
        for input in cases {
            check(input, Err(ChunkError::NotJson));
        }
    }

    fn nested(prefix: &str, open: &str, close: &str, n: usize, suffix: &str) -> String {
        format!("{prefix}{}{}{suffix}", open.repeat(n), close.repeat(n))
    }

    #[test]
    fn depth_limit() {
        let ok = Ok(NONE);
        let deep = Err(ChunkError::TooDeep);
        check(&nested("", "[", "]", 64, ""), ok);
        check(&nested("", "[", "]", 65, ""), deep);
        check(&nested("", "[", "]", 1000, ""), deep);
        check(&"[".repeat(1000), deep);
        check(&nested("", "{\"a\":", "}", 64, "").replace("{\"a\":}", "{}"), ok);
        check(&format!("{}1{}", "{\"a\":".repeat(1000), "}".repeat(1000)), deep);
        // Top-level object is depth 1, so 63 more levels fit.
        check(&nested("{\"x\":", "[", "]", 63, "}"), ok);
        check(&nested("{\"x\":", "[", "]", 64, "}"), deep);
        // Deep values under the fields we read: choices(2) choice(3) delta(4), usage(2) details(3).
        check(&nested(r#"{"choices":[{"delta":{"content":"#, "[", "]", 60, "}}]}"), ok);
        check(&nested(r#"{"choices":[{"delta":{"content":"#, "[", "]", 61, "}}]}"), deep);
        check(&nested(r#"{"choices":[{"logprobs":"#, "[", "]", 61, "}]}"), ok);
        check(&nested(r#"{"choices":[{"logprobs":"#, "[", "]", 62, "}]}"), deep);
        let empty = usage(Tokens::Absent, Tokens::Absent, Tokens::Absent);
        check(&nested(r#"{"usage":{"completion_tokens_details":{"x":"#, "[", "]", 61, "}}}"), Ok(empty));
        check(&nested(r#"{"usage":{"completion_tokens_details":{"x":"#, "[", "]", 62, "}}}"), deep);
        // Too deep wins over later malformation, and over truncation.
        check(&format!("{}x", "[".repeat(65)), deep);
    }

    #[test]
    fn bounded_stack() {
        // A small stack proves there is no recursion proportional to input depth.
        let worker = std::thread::Builder::new().stack_size(128 * 1024).spawn(|| {
            let inputs = [nested("", "[", "]", 100_000, ""), "{\"a\":".repeat(100_000), "[{\"a\":".repeat(50_000)];
            inputs.iter().map(|i| scan(i.as_bytes())).collect::<Vec<_>>()
        });
        let results = worker.expect("spawn").join().expect("no stack overflow");
        assert!(results.iter().all(|r| *r == Err(ChunkError::TooDeep)));
    }

    /// Encodes `s` as a JSON string literal, choosing per char (from `modes`) between raw UTF-8, a short escape
    /// where one exists, and `\u` escapes (surrogate pairs above U+FFFF, upper or lower case hex).
    fn encode_json_string(s: &str, modes: &[u8]) -> String {
        let mut out = String::from("\"");
        for (i, c) in s.chars().enumerate() {
            let mode = modes.get(i % modes.len().max(1)).copied().unwrap_or(0) % 4;
            let short = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                '/' => Some("\\/"),
                '\u{8}' => Some("\\b"),
                '\u{c}' => Some("\\f"),
                '\n' => Some("\\n"),
                '\r' => Some("\\r"),
                '\t' => Some("\\t"),
                _ => None,
            };
            match (mode, short) {
                (0, Some(esc)) | (1, Some(esc)) => out.push_str(esc),
                (0 | 1, None) if c != '"' && c != '\\' && c >= ' ' => out.push(c),
                _ => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        if mode == 3 {
                            out.push_str(&format!("\\u{unit:04X}"));
                        } else {
                            out.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                }
            }
        }
        out.push('"');
        out
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        let key = prop_oneof![
            Just("content".to_owned()),
            Just("text".to_owned()),
            Just("delta".to_owned()),
            Just("choices".to_owned()),
            Just("usage".to_owned()),
            any::<String>(),
        ];
        leaf.prop_recursive(5, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    /// One chat chunk with `content` in the right place and `noise` where a `content` key must be ignored.
    fn chunk_with(content: &str, noise: &Value) -> String {
        let chunk = json!({
            "id": "chatcmpl-1",
            "extra": noise,
            "choices": [{
                "index": 0,
                "delta": {"tool_calls": noise, "content": content},
                "logprobs": {"content": noise},
                "finish_reason": null
            }],
            "usage": null
        });
        chunk.to_string()
    }

    proptest! {
        #[test]
        fn counts_match_serde_for_json_text(value in arb_json(), noise in arb_json()) {
            let content = value.to_string();
            let info = scan(chunk_with(&content, &noise).as_bytes()).expect("valid chunk");
            prop_assert_eq!(info.content_bytes as usize, content.len());
            prop_assert_eq!(info.content_chars as usize, content.chars().count());
        }

        #[test]
        fn counts_match_for_any_escaping(text in any::<String>(), modes in prop::collection::vec(any::<u8>(), 1..8)) {
            let literal = encode_json_string(&text, &modes);
            let decoded: String = serde_json::from_str(&literal).expect("encoder emits valid JSON");
            prop_assert_eq!(&decoded, &text);
            let payload = format!(r#"{{"choices":[{{"delta":{{"content":{literal},"reasoning":{literal},"reasoning_content":{literal}}}}}]}}"#);
            let info = scan(payload.as_bytes()).expect("valid chunk");
            prop_assert_eq!(info.content_bytes as usize, text.len());
            prop_assert_eq!(info.content_chars as usize, text.chars().count());
            prop_assert_eq!(info.reasoning_bytes as usize, text.len());
        }

        #[test]
        fn validity_matches_serde(value in arb_json(), cut in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), with in 0usize..12, mode in 0u8..3) {
            let mut bytes = value.to_string().into_bytes();
            // Replacing ASCII by ASCII keeps UTF-8 valid, and no replacement can form a `\u` escape or a digit,
            // so serde's stricter rules (surrogates, number range) cannot make the two disagree.
            match mode {
                0 => bytes.truncate(cut.index(bytes.len() + 1)),
                1 => {
                    let i = at.index(bytes.len());
                    if bytes[i].is_ascii() {
                        bytes[i] = b"{}[]:,\" tx-"[with % 11];
                    }
                }
                _ => {}
            }
            let ours = scan(&bytes);
            prop_assert_ne!(ours, Err(ChunkError::TooDeep));
            prop_assert_eq!(ours.is_ok(), serde_json::from_slice::<Value>(&bytes).is_ok(), "{:?}", String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn token_counts_match_serde(value in arb_json(), count in any::<u32>()) {
            let model = |v: &Value| match v {
                Value::Null => Tokens::Absent,
                // serde_json reads `5.0` as a float, so an integer here was an integer literal.
                v => v.as_u64().and_then(|n| u32::try_from(n).ok()).map_or(Tokens::Unreadable, Tokens::Count),
            };
            for v in [value, Value::from(count), Value::from(u64::from(count) + MAX_TOKENS + 1)] {
                let payload = json!({"usage": {"completion_tokens": v, "completion_tokens_details": {"reasoning_tokens": v}}});
                let got = scan(payload.to_string().as_bytes()).expect("valid chunk").usage.expect("a usage object");
                prop_assert_eq!((got.completion_tokens, got.reasoning_tokens), (model(&v), model(&v)), "{}", v);
            }
        }

        #[test]
        fn never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = scan(&bytes);
        }

        #[test]
        fn never_panics_inside_fields(
            prefix in 0usize..6,
            tail in prop::collection::vec(prop_oneof![any::<u8>(), prop::sample::select(b"{}[]:,\"\\u0dD8eE.-+ntrfalse".to_vec())], 0..128),
        ) {
            let prefixes = [
                r#"{"choices":[{"delta":{"content":""#,
                r#"{"choices":[{"delta":{"#,
                r#"{"choices":[{"finish_reason":"#,
                r#"{"usage":{"completion_tokens_details":{"reasoning_tokens":"#,
                r#"{"usage":{"prompt_tokens":"#,
                r#"{"error":"#,
            ];
            let mut bytes = prefixes[prefix].as_bytes().to_vec();
            bytes.extend_from_slice(&tail);
            let _ = scan(&bytes);
        }
    }
}

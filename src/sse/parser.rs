//! Incremental, bounded parser for WHATWG HTML §9.2.6 "Interpreting an event
//! stream", over byte slices.
//!
//! The parser works on bytes, not UTF-8: the only bytes with meaning (CR, LF,
//! ':', ' ', NUL and the digits) are ASCII, and invalid UTF-8 cannot hide
//! them, so decoding would only cost time. Line ends are found with
//! `memchr2`; a line that lies wholly in one input is interpreted straight
//! from the input slice, and only a line split across `feed` calls is copied
//! into the partial-line buffer. The buffers are reused (`clear`, never new
//! `Vec`s), so once they have grown to the working size nothing allocates.
//!
//! Every buffer is bounded by `max_event_size`: a peer that never sends a line
//! end or a blank line costs at most that many bytes, then `EventTooLarge`.

use memchr::{memchr, memchr2};

use crate::units::parse_decimal;

/// The UTF-8 byte order mark, stripped once at the very start of a stream.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// The event type of an event whose stream set none.
const DEFAULT_EVENT_TYPE: &[u8] = b"message";

/// Why a stream could not be parsed. `Copy` so the engine can count it by variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseError {
    /// A line or an event needed more than `max_event_size` bytes of buffer.
    EventTooLarge,
}

/// A dispatched event. Borrows the parser's buffers; valid until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The event type; `b"message"` when the stream set none.
    pub event_type: &'a [u8],
    /// The data buffer with its final LF removed.
    pub data: &'a [u8],
    /// The last event ID string at dispatch time.
    pub last_event_id: &'a [u8],
    /// Whether the event's own lines set that ID, or it was inherited from the events before.
    pub id_field: IdField,
}

/// What the `id` fields of one event (the lines since the last blank line) did to the last event ID buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdField {
    /// No `id` field: the event carries the ID it inherited.
    #[default]
    Absent,
    /// An `id` field set the buffer (an empty value too: that clears it).
    Set,
    /// Only `id` fields with NUL, which the spec ignores: the event carries the ID it inherited, yet the
    /// server meant to give it one.
    Ignored,
}

/// Where the stream stands on its optional leading byte order mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bom {
    /// Nothing but a BOM prefix seen yet: this many bytes (0..=2) of it were
    /// held back, because a BOM may be split across inputs.
    Pending(u8),
    /// The BOM was stripped or ruled out; every byte from now on is stream.
    Done,
}

/// A sans-IO SSE parser: feed it body bytes, it calls back once per event.
#[derive(Debug)]
pub struct Parser {
    /// Bytes of a line that began in an earlier input and has no line end
    /// yet. Empty whenever the line being assembled started in this input.
    line: Vec<u8>,
    /// The last input ended in CR, so an LF starting the next input is the
    /// second half of that CRLF, not a line end of its own.
    skip_lf: bool,
    bom: Bom,
    /// Set by an error; `feed` refuses work until `reset`, so the engine
    /// cannot act on events of a stream it has already failed.
    poisoned: bool,
    fields: Fields,
}

/// The buffers the field rules act on. Kept apart from `Parser::line` so a
/// buffered line can be interpreted while it is borrowed.
#[derive(Debug)]
struct Fields {
    max_event_size: usize,
    /// The data buffer: every `data` value followed by LF.
    data: Vec<u8>,
    event_type: Vec<u8>,
    /// The last event ID buffer. The spec's "last event ID string" is copied
    /// from it at each dispatch, and an event is handed out right then, so
    /// one buffer serves both and no copy is made.
    last_event_id: Vec<u8>,
    /// The `id` fields since the last blank line. `Set` here means the buffer holds an ID no blank line has
    /// dispatched yet: the spec's last event ID string is still the value before it.
    id_field: IdField,
    retry_ms: Option<u64>,
}

impl Parser {
    /// `max_event_size`: most bytes one event may buffer (data buffer + the
    /// partial line being assembled). Exceeding it is `SseError::EventTooLarge`.
    ///
    /// Buffers start empty and grow on demand up to that bound: allocating
    /// the bound up front would cost `max_event_size` per connection even for
    /// streams of tiny events.
    pub fn new(max_event_size: usize) -> Parser {
        Parser {
            line: Vec::new(),
            skip_lf: false,
            bom: Bom::Pending(0),
            poisoned: false,
            fields: Fields {
                max_event_size,
                data: Vec::new(),
                event_type: Vec::new(),
                last_event_id: Vec::new(),
                id_field: IdField::Absent,
                retry_ms: None,
            },
        }
    }

    /// Feeds the next bytes of the stream, calling `on_event` once per
    /// dispatched event, in order. After an Err the parser is poisoned until
    /// `reset`.
    pub fn feed<F: FnMut(Event<'_>)>(&mut self, input: &[u8], mut on_event: F) -> Result<(), SseError> {
        if self.poisoned {
            return Err(SseError::EventTooLarge);
        }
        let result = self.feed_lines(input, &mut on_event);
        self.poisoned = result.is_err();
        self.debug_assert_invariants();
        result
    }

    /// End of stream: discards any unfinished event (and an unterminated last
    /// line). Returns true if something was discarded (a partial line, or a
    /// non-empty data buffer).
    pub fn finish(&mut self) -> bool {
        let discarded = self.is_mid_event();
        if let Bom::Pending(held) = self.bom
            && held > 0
        {
            // The held bytes were not a BOM, so they were the start of an
            // unterminated first line: discarded like any partial line.
            self.bom = Bom::Done;
        }
        self.line.clear();
        self.skip_lf = false;
        self.fields.data.clear();
        self.fields.event_type.clear();
        self.debug_assert_invariants();
        discarded
    }

    /// True while bytes of an unfinished event are held (partial line or
    /// non-empty data buffer). Held-back BOM prefix bytes count as a partial
    /// line: until the third byte arrives they may be the first line's start.
    pub fn is_mid_event(&self) -> bool {
        matches!(self.bom, Bom::Pending(held) if held > 0) || !self.line.is_empty() || !self.fields.data.is_empty()
    }

    /// The reconnection time set by the last valid `retry:` field, in ms.
    pub fn retry_ms(&self) -> Option<u64> {
        self.fields.retry_ms
    }

    /// The last event ID buffer (persists across events, as the spec says).
    pub fn last_event_id(&self) -> &[u8] {
        &self.fields.last_event_id
    }

    /// The last event ID buffer holds an ID that no blank line has dispatched yet (the stream may have ended
    /// inside that event): the spec's last event ID string, which a browser sends when it reconnects, is
    /// still the value the buffer had before. False once a blank line dispatches it, with data or without.
    pub fn id_is_pending(&self) -> bool {
        self.fields.id_field == IdField::Set
    }

    /// Makes the parser ready for a new stream, keeping buffer capacity (no
    /// allocation). Clears the last event ID and retry too: the spec starts
    /// every stream with empty buffers, so read them before calling this.
    pub fn reset(&mut self) {
        self.line.clear();
        self.skip_lf = false;
        self.bom = Bom::Pending(0);
        self.poisoned = false;
        self.fields.data.clear();
        self.fields.event_type.clear();
        self.fields.last_event_id.clear();
        self.fields.id_field = IdField::Absent;
        self.fields.retry_ms = None;
        self.debug_assert_invariants();
    }

    /// [`reset`](Self::reset) for the next stream of the same event source: the last event ID buffer starts as
    /// `last_event_id` (the last event ID string the previous stream left), as browsers do on a reconnect, so
    /// events without an `id` field carry it. No allocation once the buffer has grown to the ID's size.
    pub fn reset_with_last_event_id(&mut self, last_event_id: &[u8]) {
        assert!(last_event_id.len() <= self.fields.max_event_size, "the ID came from a parser with this bound");
        debug_assert!(memchr::memchr3(b'\r', b'\n', 0, last_event_id).is_none(), "no line end or NUL in an ID");
        self.reset();
        self.fields.last_event_id.extend_from_slice(last_event_id);
    }

    fn feed_lines<F: FnMut(Event<'_>)>(&mut self, input: &[u8], on_event: &mut F) -> Result<(), SseError> {
        let Some(mut rest) = self.strip_bom(input)? else {
            return Ok(());
        };
        if self.skip_lf && !rest.is_empty() {
            self.skip_lf = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        // Bounded: every pass consumes at least the line end it found.
        while let Some(end) = memchr2(b'\n', b'\r', rest) {
            if self.line.is_empty() {
                if let Some(consumed) = self.fields.dispatch_whole_event(rest, end, on_event)? {
                    rest = &rest[consumed..];
                    continue;
                }
                self.fields.interpret_line(&rest[..end], on_event)?;
            } else {
                self.buffer_line_part(&rest[..end])?;
                self.fields.interpret_line(&self.line, on_event)?;
                self.line.clear();
            }
            let mut next = end + 1;
            if rest[end] == b'\r' {
                match rest.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    // The line was handled on its CR at once (the event must
                    // not wait for bytes that may never come); the LF of a
                    // CRLF may still begin the next input.
                    None => self.skip_lf = true,
                }
            }
            rest = &rest[next..];
        }
        self.buffer_line_part(rest)
    }

    /// Strips a BOM at the very start of the stream, even one split across
    /// inputs. Returns the input left to parse, or None when all of it was
    /// held back as a possible BOM prefix.
    fn strip_bom<'i>(&mut self, input: &'i [u8]) -> Result<Option<&'i [u8]>, SseError> {
        let Bom::Pending(held) = self.bom else {
            return Ok(Some(input));
        };
        let held = usize::from(held);
        let wanted = &BOM[held..];
        let seen = wanted.len().min(input.len());
        if input[..seen] == wanted[..seen] {
            if seen == wanted.len() {
                self.bom = Bom::Done;
                return Ok(Some(&input[seen..]));
            }
            debug_assert_eq!(seen, input.len());
            self.bom = Bom::Pending(u8::try_from(held + seen).expect("a BOM prefix is < 3 bytes"));
            return Ok(None);
        }
        // Not a BOM after all: the bytes held back from earlier inputs are
        // the start of the first line. This input's bytes are still in it.
        self.bom = Bom::Done;
        self.buffer_line_part(&BOM[..held])?;
        Ok(Some(input))
    }

    /// Appends to the partial line, keeping data + partial line within the bound.
    fn buffer_line_part(&mut self, part: &[u8]) -> Result<(), SseError> {
        let held = self.fields.data.len() + self.line.len();
        debug_assert!(held <= self.fields.max_event_size);
        if part.len() > self.fields.max_event_size - held {
            return Err(SseError::EventTooLarge);
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    fn debug_assert_invariants(&self) {
        let max = self.fields.max_event_size;
        debug_assert!(self.fields.data.len() + self.line.len() <= max);
        debug_assert!(self.fields.event_type.len() <= max);
        debug_assert!(self.fields.last_event_id.len() <= max);
        debug_assert!(self.fields.data.is_empty() || self.fields.data.ends_with(b"\n"));
        debug_assert!(!self.skip_lf || self.bom == Bom::Done);
        debug_assert!(self.line.is_empty() || self.bom == Bom::Done);
    }
}

impl Fields {
    /// Applies one complete line (line end excluded) to the buffers.
    fn interpret_line<F: FnMut(Event<'_>)>(&mut self, line: &[u8], on_event: &mut F) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(on_event);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(()); // A comment, often a keep-alive.
        }
        // Most lines of a busy stream are data lines. "data" holds no colon,
        // so this is the general rule below, minus the search for the colon.
        if let Some(value) = line.strip_prefix(b"data:") {
            return self.append_data(value.strip_prefix(b" ").unwrap_or(value));
        }
        let (name, value) = match memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => self.append_data(value),
            b"event" => set_bounded(&mut self.event_type, value, self.max_event_size),
            b"id" if memchr(0, value).is_none() => {
                self.id_field = IdField::Set;
                set_bounded(&mut self.last_event_id, value, self.max_event_size)
            }
            b"id" => {
                if self.id_field == IdField::Absent {
                    self.id_field = IdField::Ignored;
                }
                Ok(())
            }
            b"retry" => {
                // Only non-empty ASCII digits that fit a u64 count; anything else leaves the reconnection time as it was.
                if let Some(retry_ms) = parse_decimal(value) {
                    self.retry_ms = Some(retry_ms);
                }
                Ok(())
            }
            // Unknown fields are ignored.
            _ => Ok(()),
        }
    }

    /// Fast path for the commonest event, one `data` line followed at once by its blank line,
    /// both in `rest` (the line ends at `end`): dispatched straight from the input, so the data
    /// buffer is never touched and never grows. Returns the bytes consumed, or None when the
    /// general rules must handle the line (same results, the tests check both ways agree).
    fn dispatch_whole_event<F: FnMut(Event<'_>)>(
        &mut self,
        rest: &[u8],
        end: usize,
        on_event: &mut F,
    ) -> Result<Option<usize>, SseError> {
        if !self.data.is_empty() {
            return Ok(None);
        }
        let value = match rest[..end].strip_prefix(b"data") {
            Some([]) => &[][..],
            Some([b':', value @ ..]) => value.strip_prefix(b" ").unwrap_or(value),
            _ => return Ok(None),
        };
        let mut next = end + 1;
        if rest[end] == b'\r' && rest.get(next) == Some(&b'\n') {
            next += 1;
        }
        // The blank line must end within `rest` too; a CR at the very end (maybe half a CRLF)
        // is left to the general rules and their skip_lf.
        let blank_len = match (rest.get(next), rest.get(next + 1)) {
            (Some(b'\n'), _) => 1,
            (Some(b'\r'), Some(b'\n')) => 2,
            (Some(b'\r'), Some(_)) => 1,
            _ => return Ok(None),
        };
        // The same bound as `append_data`: the value and its LF must fit.
        if value.len() >= self.max_event_size {
            return Err(SseError::EventTooLarge);
        }
        let event_type = if self.event_type.is_empty() { DEFAULT_EVENT_TYPE } else { &self.event_type };
        on_event(Event { event_type, data: value, last_event_id: &self.last_event_id, id_field: self.id_field });
        self.event_type.clear();
        self.id_field = IdField::Absent;
        Ok(Some(next + blank_len))
    }

    fn append_data(&mut self, value: &[u8]) -> Result<(), SseError> {
        debug_assert!(self.data.len() <= self.max_event_size);
        // The value and its LF must fit: value.len() + 1 <= room.
        if value.len() >= self.max_event_size - self.data.len() {
            return Err(SseError::EventTooLarge);
        }
        self.data.extend_from_slice(value);
        self.data.push(b'\n');
        Ok(())
    }

    /// A blank line: hand out the event, if it has data, and start the next.
    fn dispatch<F: FnMut(Event<'_>)>(&mut self, on_event: &mut F) {
        // Here the spec copies the last event ID buffer to the last event ID
        // string; the event below borrows the buffer, so nothing to copy.
        if let Some((lf, data)) = self.data.split_last() {
            debug_assert_eq!(*lf, b'\n');
            let event_type = if self.event_type.is_empty() { DEFAULT_EVENT_TYPE } else { &self.event_type };
            on_event(Event { event_type, data, last_event_id: &self.last_event_id, id_field: self.id_field });
        }
        self.data.clear();
        self.event_type.clear();
        self.id_field = IdField::Absent;
    }
}

/// Replaces `buffer` with `value` unless `value` is over the bound.
fn set_bounded(buffer: &mut Vec<u8>, value: &[u8], max_event_size: usize) -> Result<(), SseError> {
    if value.len() > max_event_size {
        return Err(SseError::EventTooLarge);
    }
    buffer.clear();
    buffer.extend_from_slice(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A bound no table case comes near, for tests about semantics.
    const MAX_BIG: usize = 1 << 20;

    /// An event copied out of the parser: (type, data, last event ID).
    type Owned = (Vec<u8>, Vec<u8>, Vec<u8>);

    /// Events as a table writes them: (type, data, last event ID).
    type Expected = &'static [(&'static str, &'static str, &'static str)];

    /// A table row: an input and the events it must dispatch, fed any way.
    type Case = (&'static [u8], Expected);

    /// What feeding a whole stream left: the events, the first error, and
    /// the parser itself for further questions.
    struct Run {
        events: Vec<Owned>,
        result: Result<(), SseError>,
        parser: Parser,
    }

    fn own(event: Event<'_>) -> Owned {
        (event.event_type.to_vec(), event.data.to_vec(), event.last_event_id.to_vec())
    }

    /// Feeds `pieces` in order to a fresh parser, stopping at the first error.
    fn run<'a>(max_event_size: usize, pieces: impl IntoIterator<Item = &'a [u8]>) -> Run {
        let mut parser = Parser::new(max_event_size);
        let mut events = Vec::new();
        let mut result = Ok(());
        for piece in pieces {
            result = parser.feed(piece, |event| events.push(own(event)));
            if result.is_err() {
                break;
            }
        }
        Run { events, result, parser }
    }

    /// The input cut at each of `cuts` (sorted offsets, repeats allowed).
    fn pieces<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut out = Vec::with_capacity(cuts.len() + 1);
        let mut start = 0;
        for &cut in cuts {
            out.push(&input[start..cut]);
            start = cut;
        }
        out.push(&input[start..]);
        out
    }

    /// Every way of feeding `input` the tests try, with a name for messages:
    /// one shot, two pieces cut at every index, and one byte at a time.
    fn feedings(input: &[u8]) -> Vec<(String, Vec<&[u8]>)> {
        let mut out = vec![("one-shot".to_string(), vec![input])];
        for cut in 0..=input.len() {
            out.push((format!("cut at {cut}"), pieces(input, &[cut])));
        }
        out.push(("byte by byte".to_string(), input.chunks(1).collect()));
        out
    }

    fn owned(expected: &[(&str, &str, &str)]) -> Vec<Owned> {
        expected.iter().map(|&(event_type, data, id)| (event_type.into(), data.into(), id.into())).collect()
    }

    /// Asserts that `input`, fed every way, dispatches exactly `expected`
    /// (type, data, last event ID) and that `finish` dispatches nothing more.
    fn check(input: &[u8], expected: &[(&str, &str, &str)]) {
        let expected = owned(expected);
        for (how, pieces) in feedings(input) {
            let mut run = run(MAX_BIG, pieces);
            assert_eq!(run.result, Ok(()), "{how}: {}", input.escape_ascii());
            assert_eq!(run.events, expected, "{how}: {}", input.escape_ascii());
            run.parser.finish();
            assert!(!run.parser.is_mid_event(), "{how}: {}", input.escape_ascii());
        }
    }

    #[test]
    fn line_ends() {
        let cases: &[Case] = &[
            (b"data: a\n\n", &[("message", "a", "")]),
            (b"data: a\r\r", &[("message", "a", "")]),
            (b"data: a\r\n\r\n", &[("message", "a", "")]),
            (b"data: a\rdata: b\ndata: c\r\n\r\n", &[("message", "a\nb\nc", "")]),
            (b"data: a\r\ndata: b\rdata: c\n\r", &[("message", "a\nb\nc", "")]),
            // LF then CR is two line ends, so a blank line.
            (b"data: a\n\rdata: b\n\n", &[("message", "a", ""), ("message", "b", "")]),
            // CR CR LF: the CR ends the data line, CRLF is the blank line.
            (b"data: a\r\r\n", &[("message", "a", "")]),
            (b"data: a\r\n\n", &[("message", "a", "")]),
            // A lone CR mid-line ends the line: "b" is a field of its own.
            (b"data: a\rb\n\n", &[("message", "a", "")]),
            (b"data: a\r\rdata: b\n\n", &[("message", "a", ""), ("message", "b", "")]),
            (b"\n\r\n\r\n\r", &[]),
            (b"", &[]),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn cr_at_end_of_input_then_lf_is_one_line_end() {
        // Had the LF counted as a line end of its own, the blank line would
        // have dispatched "a" alone.
        let events = run(MAX_BIG, [&b"data: a\r"[..], b"", b"\ndata: b\n\n"]).events;
        assert_eq!(events, owned(&[("message", "a\nb", "")]));
        // Only one LF is skipped, and only right after the CR.
        let events = run(MAX_BIG, [&b"data: a\r"[..], b"\n\ndata: b\n\n"]).events;
        assert_eq!(events, owned(&[("message", "a", ""), ("message", "b", "")]));
        let events = run(MAX_BIG, [&b"data: a\r"[..], b"data: b\r", b"\r"]).events;
        assert_eq!(events, owned(&[("message", "a\nb", "")]));
    }

    #[test]
    fn byte_order_mark() {
        let cases: &[Case] = &[
            (b"\xEF\xBB\xBFdata: a\n\n", &[("message", "a", "")]),
            (b"\xEF\xBB\xBF\n", &[]),
            (b"\xEF\xBB\xBF", &[]),
            // A prefix that then differs is part of the first line's field
            // name, so "data" is not recognised (were it stripped, it would be).
            (b"\xEFdata: a\n\ndata: b\n\n", &[("message", "b", "")]),
            (b"\xEF\xBBdata: a\n\ndata: b\n\n", &[("message", "b", "")]),
            (b"\xEF\xBB\xBEdata: a\n\ndata: b\n\n", &[("message", "b", "")]),
            (b"\xEF\xBB\ndata: b\n\n", &[("message", "b", "")]),
            (b"\xEF\ndata: b\n\n", &[("message", "b", "")]),
            // Only one BOM, only at the start of the stream.
            (b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n", &[("message", "b", "")]),
            (b"\n\xEF\xBB\xBFdata: a\n\ndata: b\n\n", &[("message", "b", "")]),
            (b"data: \xEF\xBB\xBFa\n\n", &[("message", "\u{FEFF}a", "")]),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn fields() {
        let cases: &[Case] = &[
            // A field without a colon has an empty value: "data" appends an
            // LF, the buffer is not empty, so an event with empty data goes out.
            (b"data\n\n", &[("message", "", "")]),
            (b"data:\n\n", &[("message", "", "")]),
            (b"data: \n\n", &[("message", "", "")]),
            (b"data\ndata\n\n", &[("message", "\n", "")]),
            (b"data:a\n\n", &[("message", "a", "")]),
            // Only one leading space is removed; trailing spaces stay.
            (b"data:  a \n\n", &[("message", " a ", "")]),
            (b"data: a:b: c\n\n", &[("message", "a:b: c", "")]),
            (b"data: a\ndata: b\ndata\ndata: c\n\n", &[("message", "a\nb\n\nc", "")]),
            // Field names are exact bytes.
            (b"Data: a\n\nDATA: a\n\ndata : a\n\n data: a\n\n", &[]),
            (b"foo: bar\ndata: a\nfoo\n\n", &[("message", "a", "")]),
            (b"event: add\ndata: a\n\n", &[("add", "a", "")]),
            (b"event:  add\ndata: a\n\n", &[(" add", "a", "")]),
            (b"event: x\nevent: y\ndata: a\n\n", &[("y", "a", "")]),
            (b"event: x\nevent:\ndata: a\n\n", &[("message", "a", "")]),
            (b"event: x\nevent\ndata: a\n\n", &[("message", "a", "")]),
            // The event type lasts one event, even one with no data.
            (b"event: add\ndata: a\n\ndata: b\n\n", &[("add", "a", ""), ("message", "b", "")]),
            (b"event: add\n\ndata: b\n\n", &[("message", "b", "")]),
            (b"retry: 10\n\n", &[]),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn comments() {
        let cases: &[Case] = &[
            (b":comment\ndata: a\n\n", &[("message", "a", "")]),
            (b": data: x\n\n", &[]),
            (b":\n\n:\r\n\r\n", &[]),
            // A comment is not a blank line: the event goes on.
            (b"data: a\n: keep-alive\ndata: b\n\n", &[("message", "a\nb", "")]),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn last_event_id() {
        let cases: &[Case] = &[
            (b"id: 1\ndata: a\n\n", &[("message", "a", "1")]),
            (b"data: a\nid: 1\n\n", &[("message", "a", "1")]),
            (b"id:  1\ndata: a\n\n", &[("message", "a", " 1")]),
            // The ID persists across events.
            (b"id: 1\ndata: a\n\ndata: b\n\n", &[("message", "a", "1"), ("message", "b", "1")]),
            // A blank line with no data dispatches nothing, but the ID still took.
            (b"id: 7\n\ndata: a\n\n", &[("message", "a", "7")]),
            (b"id: 7\n\n\n\ndata: a\n\n", &[("message", "a", "7")]),
            // An ID with NUL is ignored; the old one stays.
            (b"id: 1\n\nid: 2\x003\ndata: a\n\n", &[("message", "a", "1")]),
            (b"id: \x00\ndata: a\n\n", &[("message", "a", "")]),
            // `id` alone resets it to empty.
            (b"id: 1\ndata: a\n\nid\ndata: b\n\n", &[("message", "a", "1"), ("message", "b", "")]),
            (b"id: 1\ndata: a\n\nid:\ndata: b\n\n", &[("message", "a", "1"), ("message", "b", "")]),
            (b"id: 1\nid: 2\ndata: a\n\n", &[("message", "a", "2")]),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn end_of_stream_discards_the_unfinished_event() {
        let cases: &[Case] = &[
            (b"data: a", &[]),
            (b"data: a\n", &[]),
            (b"data: a\r", &[]),
            (b"data: a\n\ndata: b\n", &[("message", "a", "")]),
            (b"data: a\n\ndata: b", &[("message", "a", "")]),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn bytes_are_not_utf8_validated() {
        for (how, pieces) in feedings(b"event: \xC3\ndata: \xFF\xFE\x80\nid: \xED\xA0\x80\n\n") {
            let events = run(MAX_BIG, pieces).events;
            let expected: Vec<Owned> = vec![(b"\xC3".into(), b"\xFF\xFE\x80".into(), b"\xED\xA0\x80".into())];
            assert_eq!(events, expected, "{how}");
        }
    }

    #[test]
    fn retry() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"retry: 100\n", Some(100)),
            (b"retry:100\n", Some(100)),
            (b"retry: 007\n", Some(7)),
            (b"retry: 0\n", Some(0)),
            (b"retry: 18446744073709551615\n", Some(u64::MAX)),
            (b"retry: 18446744073709551616\n", None),
            (b"retry: 100\nretry: 99999999999999999999999\n", Some(100)),
            (b"retry: 100\nretry: x\nretry\nretry:\n", Some(100)),
            (b"retry: 100\nretry: 200\n", Some(200)),
            (b"retry: 1a\n", None),
            (b"retry: \n", None),
            (b"retry\n", None),
            (b"retry:  100\n", None),
            (b"retry: 100 \n", None),
            (b"retry: -1\n", None),
            (b"retry: +1\n", None),
            (b"retry: 1.5\n", None),
            (b"retry: \xD9\xA1\n", None),
            (b"Retry: 100\n", None),
            (b"retry: 100", None),
        ];
        for (input, expected) in cases {
            for (how, pieces) in feedings(input) {
                let run = run(MAX_BIG, pieces);
                assert_eq!(run.parser.retry_ms(), *expected, "{how}: {}", input.escape_ascii());
            }
        }
    }

    #[test]
    fn last_event_id_buffer() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"id: 5\n", b"5"),
            (b"id: 5\n\ndata: a\n\n", b"5"),
            (b"id: 5\n\nid\n", b""),
            (b"id: 5\nid: 6\x00\n", b"5"),
            (b"id: 5\nid: 6", b"5"),
        ];
        for (input, expected) in cases {
            for (how, pieces) in feedings(input) {
                let run = run(MAX_BIG, pieces);
                assert_eq!(run.parser.last_event_id(), *expected, "{how}: {}", input.escape_ascii());
            }
        }
    }

    #[test]
    fn id_field_says_whether_an_event_set_its_own_id() {
        use IdField::{Absent, Ignored, Set};
        let cases: &[(&[u8], &[IdField])] = &[
            (b"id: 1\ndata: a\n\ndata: b\n\n", &[Set, Absent]),
            (b"data: a\nid: 1\n\n", &[Set]),
            // An empty `id` sets the buffer (to empty).
            (b"id: 1\ndata: a\n\nid\ndata: b\n\nid:\ndata: c\n\n", &[Set, Set, Set]),
            // An `id` with NUL is ignored: the event inherits "1", though the server meant to number it.
            (b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", &[Set, Ignored]),
            // A valid `id` wins over one with NUL, in either order.
            (b"id: 2\x00\nid: 3\ndata: a\n\nid: 4\nid: \x00\ndata: b\n\n", &[Set, Set]),
            // A blank line without data ends the block: its `id` does not carry over as the next event's own.
            (b"id: 7\n\ndata: a\n\n", &[Absent]),
            (b"id: 7\x00\n\ndata: a\n\n", &[Absent]),
        ];
        for (input, expected) in cases {
            for (how, pieces) in feedings(input) {
                let mut parser = Parser::new(MAX_BIG);
                let mut got = Vec::new();
                for piece in pieces {
                    parser.feed(piece, |event| got.push(event.id_field)).unwrap();
                }
                assert_eq!(got, *expected, "{how}: {}", input.escape_ascii());
            }
        }
    }

    #[test]
    fn an_id_is_pending_until_a_blank_line_dispatches_it() {
        let cases: &[(&[u8], bool)] = &[
            (b"", false),
            (b"data: a\n\n", false),
            (b"id: 5\n", true),
            (b"id: 5\ndata: a\n", true),
            (b"id\n", true),
            (b"id: 5\ndata: a\n\n", false),
            // A block with no data still dispatches the ID (to the last event ID string).
            (b"id: 5\n\n", false),
            (b"id: 5\n\nid: 6\ndata: a", true),
            // An ignored `id` changes nothing.
            (b"id: 5\n\nid: 6\x00\n", false),
            // Unterminated: the line was never interpreted.
            (b"id: 5", false),
        ];
        for (input, expected) in cases {
            for (how, pieces) in feedings(input) {
                let mut run = run(MAX_BIG, pieces);
                assert_eq!(run.parser.id_is_pending(), *expected, "{how}: {}", input.escape_ascii());
                // The end of the stream discards the event, not the ID it was about to dispatch.
                run.parser.finish();
                assert_eq!(run.parser.id_is_pending(), *expected, "finished, {how}: {}", input.escape_ascii());
            }
        }
    }

    #[test]
    fn a_reset_with_the_last_event_id_lets_the_next_stream_inherit_it() {
        let mut parser = Parser::new(16);
        parser.feed(b"retry: 5\nid: 1-0\ndata: a\n\nid: 1-1\ndata: b", |_| {}).unwrap();
        assert!(parser.id_is_pending());
        parser.reset_with_last_event_id(b"1-0");
        assert_eq!((parser.last_event_id(), parser.id_is_pending(), parser.retry_ms()), (&b"1-0"[..], false, None));
        let mut events = Vec::new();
        parser.feed(b"data: c\n\nid: 1-2\ndata: d\n\n", |event| events.push(own(event))).unwrap();
        assert_eq!(events, owned(&[("message", "c", "1-0"), ("message", "d", "1-2")]));
        parser.reset();
        assert_eq!(parser.last_event_id(), b"");
    }

    #[test]
    fn mid_event_and_finish() {
        // (input, is_mid_event after feeding it, what finish returns)
        let cases: &[(&[u8], bool)] = &[
            (b"", false),
            (b"data: a", true),
            (b"data: a\n", true),
            (b"data: a\r", true),
            (b"data: a\n\n", false),
            (b"data", true),
            (b"data\n", true),
            (b":comment", true),
            (b":comment\n", false),
            // An event type alone holds no data, so nothing is discarded.
            (b"event: x\n", false),
            (b"id: 1\n", false),
            (b"\r", false),
            (b"\xEF", true),
            (b"\xEF\xBB", true),
            (b"\xEF\xBB\xBF", false),
            (b"\xEF\xBB\xBFd", true),
        ];
        for (input, mid_event) in cases {
            for (how, pieces) in feedings(input) {
                let mut parser = run(MAX_BIG, pieces).parser;
                let context = format!("{how}: {}", input.escape_ascii());
                assert_eq!(parser.is_mid_event(), *mid_event, "{context}");
                assert_eq!(parser.finish(), *mid_event, "{context}");
                assert!(!parser.is_mid_event(), "{context}");
                assert!(!parser.finish(), "{context}");
            }
        }
    }

    #[test]
    fn finish_never_dispatches_what_it_discarded() {
        let mut parser = Parser::new(MAX_BIG);
        let mut events = Vec::new();
        parser.feed(b"event: x\ndata: a\ndata", |e| events.push(own(e))).unwrap();
        assert!(parser.finish());
        parser.feed(b"\n\ndata: b\n\n", |e| events.push(own(e))).unwrap();
        assert_eq!(events, owned(&[("message", "b", "")]));
    }

    #[test]
    fn event_too_large() {
        // (max_event_size, pieces fed in order, events before the error, result)
        type BoundCase = (usize, &'static [&'static [u8]], Expected, Result<(), SseError>);
        let too_large = Err(SseError::EventTooLarge);
        let cases: &[BoundCase] = &[
            // The data buffer, LF included, may fill the bound exactly.
            (8, &[b"data: 1234567\n\n"], &[("message", "1234567", "")], Ok(())),
            (8, &[b"data: 12345678\n\n"], &[], too_large),
            (8, &[b"data: 123\ndata: 1234\n"], &[], too_large),
            (8, &[b"data: a\n\ndata: 123456789\n\n"], &[("message", "a", "")], too_large),
            // The data buffer empties at each dispatch.
            (
                8,
                &[b"data: 1234567\n\ndata: 1234567\n\n"],
                &[("message", "1234567", ""), ("message", "1234567", "")],
                Ok(()),
            ),
            // A partial line is bounded while it is assembled, with or without a line end to come.
            (16, &[b"data: 0123456789"], &[], Ok(())),
            (16, &[b"data: 0123456789x"], &[], too_large),
            (16, &[b"data: 0123456789", b"x"], &[], too_large),
            // Data buffer and partial line share the bound.
            (16, &[b"data: 0123456789\nda"], &[], Ok(())),
            (16, &[b"data: 0123456789\ndata: "], &[], too_large),
            // A comment or unknown field that arrives whole is never copied...
            (16, &[b": 0123456789012345678901234\ndata: a\n\n"], &[("message", "a", "")], Ok(())),
            (16, &[b"foo: 0123456789012345678901234\ndata: a\n\n"], &[("message", "a", "")], Ok(())),
            // ...but one that spans inputs is buffered, so bounded.
            (16, &[b": 01234567", b"89012345678901234\n"], &[], too_large),
            (4, &[b"event: 1234\ndata: a\n\n"], &[("1234", "a", "")], Ok(())),
            (4, &[b"event: 12345\n"], &[], too_large),
            (4, &[b"id: 1234\ndata: a\n\n"], &[("message", "a", "1234")], Ok(())),
            (4, &[b"id: 12345\n"], &[], too_large),
            // An ignored id is not stored, so not bounded.
            (4, &[b"id: 12345\x00\n"], &[], Ok(())),
            (0, &[b"\n\n:\n"], &[], Ok(())),
            (0, &[b"data\n"], &[], too_large),
            (1, &[b"data\n\n"], &[("message", "", "")], Ok(())),
            (1, &[b"\xEF", b"\xBB", b"\xBF"], &[], Ok(())),
            (1, &[b"\xEF", b"\xBB", b"x"], &[], too_large),
        ];
        for (max_event_size, pieces, expected, result) in cases {
            let run = run(*max_event_size, pieces.iter().copied());
            let context = format!("max {max_event_size}, {pieces:?}");
            assert_eq!(run.result, *result, "{context}");
            assert_eq!(run.events, owned(expected), "{context}");
        }
    }

    #[test]
    fn error_poisons_until_reset() {
        let mut parser = Parser::new(8);
        let mut events = Vec::new();
        let result = parser.feed(b"data: 123456789\n", |e| events.push(own(e)));
        assert_eq!(result, Err(SseError::EventTooLarge));
        assert_eq!(parser.feed(b"\n", |e| events.push(own(e))), Err(SseError::EventTooLarge));
        assert_eq!(parser.feed(b"", |e| events.push(own(e))), Err(SseError::EventTooLarge));
        parser.reset();
        parser.feed(b"data: a\n\n", |e| events.push(own(e))).unwrap();
        assert_eq!(events, owned(&[("message", "a", "")]));
    }

    #[test]
    fn reset_starts_a_new_stream_and_keeps_capacity() {
        let mut parser = Parser::new(MAX_BIG);
        let mut events = Vec::new();
        let stream = b"\xEF\xBB\xBFretry: 5\nid: 9\nevent: e\ndata: 0123456789\n\ndata: x\ndata: partial";
        parser.feed(stream, |e| events.push(own(e))).unwrap();
        assert_eq!(events, owned(&[("e", "0123456789", "9")]));
        let capacities = (parser.line.capacity(), parser.fields.data.capacity(), parser.fields.event_type.capacity());

        parser.reset();
        assert!(!parser.is_mid_event());
        assert_eq!(parser.retry_ms(), None);
        assert_eq!(parser.last_event_id(), b"");
        assert_eq!(
            (parser.line.capacity(), parser.fields.data.capacity(), parser.fields.event_type.capacity()),
            capacities
        );
        // A new stream: its BOM is stripped again, nothing of the old one leaks.
        events.clear();
        parser.feed(b"\xEF\xBB\xBFdata: y\n\n", |e| events.push(own(e))).unwrap();
        assert_eq!(events, owned(&[("message", "y", "")]));

        // Reset also forgets a half-seen BOM and a pending CRLF.
        parser.feed(b"data: z\r", |_| {}).unwrap();
        parser.reset();
        events.clear();
        parser.feed(b"\ndata: w\n\n", |e| events.push(own(e))).unwrap();
        assert_eq!(events, owned(&[("message", "w", "")]));
        parser.reset();
        parser.feed(b"\xEF\xBB", |_| {}).unwrap();
        parser.reset();
        parser.feed(b"data: v\n\n", |e| events.push(own(e))).unwrap();
        assert_eq!(events, owned(&[("message", "w", ""), ("message", "v", "")]));
    }

    /// The spec's algorithm the slow, obvious way, for the property tests:
    /// whole input at once, lines split by hand, owned buffers everywhere.
    /// Returns the events, the reconnection time and the last event ID buffer.
    fn naive(input: &[u8]) -> (Vec<Owned>, Option<u64>, Vec<u8>) {
        let body = input.strip_prefix(&BOM[..]).unwrap_or(input);
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut line = Vec::new();
        let mut i = 0;
        while i < body.len() {
            match body[i] {
                b'\r' => {
                    lines.push(std::mem::take(&mut line));
                    if body.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                }
                b'\n' => lines.push(std::mem::take(&mut line)),
                byte => line.push(byte),
            }
            i += 1;
        }
        // Whatever is left in `line` never saw its line end: discarded.

        let (mut events, mut retry_ms) = (Vec::new(), None);
        let (mut data, mut event_type, mut id) = (Vec::new(), Vec::new(), Vec::new());
        for line in lines {
            if line.is_empty() {
                if !data.is_empty() {
                    data.pop();
                    let event_type = if event_type.is_empty() { b"message".to_vec() } else { event_type.clone() };
                    events.push((event_type, data.clone(), id.clone()));
                }
                data.clear();
                event_type.clear();
                continue;
            }
            if line[0] == b':' {
                continue;
            }
            let (name, value) = match line.iter().position(|&b| b == b':') {
                Some(colon) => {
                    let mut value = &line[colon + 1..];
                    if value.first() == Some(&b' ') {
                        value = &value[1..];
                    }
                    (&line[..colon], value)
                }
                None => (&line[..], &[][..]),
            };
            match name {
                b"data" => {
                    data.extend_from_slice(value);
                    data.push(b'\n');
                }
                b"event" => event_type = value.to_vec(),
                b"id" if !value.contains(&0) => id = value.to_vec(),
                b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                    if let Ok(parsed) = std::str::from_utf8(value).unwrap().parse::<u64>() {
                        retry_ms = Some(parsed);
                    }
                }
                _ => {}
            }
        }
        (events, retry_ms, id)
    }

    /// Bytes that matter to the grammar, and a few that look like a BOM.
    fn value() -> impl Strategy<Value = Vec<u8>> {
        let alphabet = vec![b'a', b'b', b' ', b' ', b':', b'0', b'7', 0x00, 0xEF, 0xBB, 0xBF, 0xFF];
        prop_oneof![
            3 => prop::collection::vec(prop::sample::select(alphabet), 0..8),
            1 => "[0-9]{0,22}".prop_map(String::into_bytes),
        ]
    }

    fn line() -> impl Strategy<Value = Vec<u8>> {
        let names: Vec<&[u8]> = vec![b"data", b"data", b"event", b"id", b"retry", b"", b"foo", b"Data", b"data "];
        let separators: Vec<&[u8]> = vec![b"", b":", b": ", b":  "];
        prop_oneof![
            2 => Just(Vec::new()),
            6 => (prop::sample::select(names), prop::sample::select(separators), value())
                .prop_map(|(name, separator, value)| [name, separator, &value].concat()),
        ]
    }

    fn line_end() -> impl Strategy<Value = &'static [u8]> {
        prop::sample::select(vec![&b"\n"[..], b"\r", b"\r\n"])
    }

    /// An event stream: optional BOM, lines with mixed line ends, then garbage
    /// that may hold line ends or an unfinished line.
    fn stream() -> impl Strategy<Value = Vec<u8>> {
        let garbage = prop::collection::vec(prop::sample::select(b"\r\n:data \xEF".to_vec()), 0..12);
        (any::<bool>(), prop::collection::vec((line(), line_end()), 0..24), garbage).prop_map(
            |(bom, lines, garbage)| {
                let mut out = if bom { BOM.to_vec() } else { Vec::new() };
                for (line, end) in lines {
                    out.extend_from_slice(&line);
                    out.extend_from_slice(end);
                }
                out.extend_from_slice(&garbage);
                out
            },
        )
    }

    /// Raw bytes drawn from the grammar's alphabet, with no structure at all.
    fn soup() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(b"\r\n\r\n: dataevntiry0\x00\xEF\xBB\xBF".to_vec()), 0..200)
    }

    /// Offsets to cut an input of `len` bytes at, sorted.
    fn cuts(indices: &[prop::sample::Index], len: usize) -> Vec<usize> {
        let mut cuts: Vec<usize> = indices.iter().map(|index| index.index(len + 1)).collect();
        cuts.sort_unstable();
        cuts
    }

    /// Property (a) and (b): every way of feeding gives the one-shot result,
    /// and the one-shot result is the naive model's.
    fn assert_matches_model(input: &[u8], indices: &[prop::sample::Index]) {
        let mut one_shot = run(MAX_BIG, [input]);
        assert_one_shot_matches_naive(&one_shot, input);
        let one_shot_discarded = one_shot.parser.finish();

        let mut feedings = feedings(input);
        feedings.push(("random cuts".to_string(), pieces(input, &cuts(indices, input.len()))));
        for (how, pieces) in feedings {
            let mut split = run(MAX_BIG, pieces);
            assert_eq!(split.result, Ok(()), "{how}");
            assert_eq!(split.events, one_shot.events, "{how}");
            assert_eq!(split.parser.retry_ms(), one_shot.parser.retry_ms(), "{how}");
            assert_eq!(split.parser.last_event_id(), one_shot.parser.last_event_id(), "{how}");
            assert_eq!(split.parser.id_is_pending(), one_shot.parser.id_is_pending(), "{how}");
            assert_eq!(split.parser.finish(), one_shot_discarded, "{how}");
        }
    }

    fn assert_one_shot_matches_naive(one_shot: &Run, input: &[u8]) {
        let (events, retry_ms, last_event_id) = naive(input);
        assert_eq!(one_shot.result, Ok(()));
        assert_eq!(one_shot.events, events);
        assert_eq!(one_shot.parser.retry_ms(), retry_ms);
        assert_eq!(one_shot.parser.last_event_id(), &last_event_id[..]);
    }

    proptest! {
        #[test]
        fn split_feeding_and_naive_model_agree_on_streams(
            input in stream(),
            indices in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            assert_matches_model(&input, &indices);
        }

        #[test]
        fn split_feeding_and_naive_model_agree_on_soup(
            input in soup(),
            indices in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            assert_matches_model(&input, &indices);
        }

        /// With a small bound, splitting may only fail sooner: a line split
        /// across inputs is buffered and counted, a whole one need not be.
        #[test]
        fn split_feeding_with_a_small_bound_fails_no_later(
            input in stream(),
            max_event_size in 0usize..24,
            indices in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let one_shot = run(max_event_size, [&input[..]]);
            let split = run(max_event_size, pieces(&input, &cuts(&indices, input.len())));
            prop_assert!(one_shot.events.starts_with(&split.events));
            if one_shot.result.is_err() {
                prop_assert!(split.result.is_err());
            }
            if split.result.is_ok() {
                prop_assert_eq!(&split.events, &one_shot.events);
            }
            if one_shot.result.is_ok() {
                prop_assert_eq!(&one_shot.events, &naive(&input).0);
            }
        }
    }
}

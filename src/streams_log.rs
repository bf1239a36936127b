//! `--streams-log`, sans IO: `StreamRecord`, one ended stream's figures as a small `Copy` value (a core appends one
//! per ended stream to a buffer reserved up front, never per event), and its JSON line, formatted by the engine's
//! writer thread, never on a core.

use std::io::Write;

use crate::recorder::StreamEnd;

/// Records a core's buffer holds (reserved up front, never grown): one interval's ended streams at up to 65,536 per
/// core per `--report-interval`. A full buffer drops (and counts) the streams that end after it fills.
pub const RECORDS_PER_BUFFER: usize = 65_536;

/// Buffers per core: one being filled, one travelling to the writer and back. A core that finds none back at an
/// interval's end (the writer is behind) keeps filling the one it has.
pub const BUFFERS_PER_CORE: usize = 2;

/// An absent value (no connect on a kept-alive connection, no TLS, no head, no event, no token): `null` in the log.
pub const ABSENT: u64 = u64::MAX;

/// One ended stream, as the core saw it. Times in µs; `ABSENT` where a value does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRecord {
    /// The virtual user (`{{vu}}`; the arrival's number in the open model) and its stream number (`{{seq}}`).
    pub vu: u64,
    pub stream: u32,
    /// The stream's start (its request's, or its connect's if it never sent one), µs since the run's start.
    pub start_us: u64,
    pub end: StreamEnd,
    pub connect_us: u64,
    pub tls_us: u64,
    pub headers_us: u64,
    pub first_event_us: u64,
    pub stream_us: u64,
    pub events: u64,
    pub bytes: u64,
    pub max_gap_us: u64,
    /// `--openai` only (`ABSENT` otherwise): time to the first content token, and the stream's tokens.
    pub ttft_us: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub tokens_from_usage: bool,
}

impl StreamRecord {
    /// Nothing measured yet: a stream's figures start here and fill in as it goes.
    pub const EMPTY: StreamRecord = StreamRecord {
        vu: 0,
        stream: 0,
        start_us: 0,
        end: StreamEnd::Interrupted,
        connect_us: ABSENT,
        tls_us: ABSENT,
        headers_us: ABSENT,
        first_event_us: ABSENT,
        stream_us: 0,
        events: 0,
        bytes: 0,
        max_gap_us: ABSENT,
        ttft_us: ABSENT,
        input_tokens: ABSENT,
        output_tokens: ABSENT,
        tokens_from_usage: false,
    };

    /// Writes the record as one JSON line. `run_start_us`: the run's start, Unix µs; `llm`: the token fields too.
    pub fn write_line(&self, out: &mut impl Write, run_start_us: u64, llm: bool) -> std::io::Result<()> {
        write!(
            out,
            "{{\"vu\":{},\"stream\":{},\"start_us\":{},\"outcome\":\"",
            self.vu,
            self.stream,
            run_start_us + self.start_us
        )?;
        match self.end {
            StreamEnd::Completed => out.write_all(b"completed")?,
            StreamEnd::Interrupted => out.write_all(b"interrupted")?,
            StreamEnd::Failed(crate::recorder::Failure::HttpStatus(code)) => write!(out, "http_{code}")?,
            StreamEnd::Failed(failure) => out.write_all(failure.name().as_bytes())?,
        }
        out.write_all(b"\"")?;
        let fields = [
            ("connect_us", self.connect_us),
            ("tls_us", self.tls_us),
            ("headers_us", self.headers_us),
            ("first_event_us", self.first_event_us),
            ("stream_us", self.stream_us),
            ("events", self.events),
            ("bytes", self.bytes),
            ("max_gap_us", self.max_gap_us),
        ];
        write_fields(out, &fields)?;
        if llm {
            let tokens =
                [("ttft_us", self.ttft_us), ("input_tokens", self.input_tokens), ("output_tokens", self.output_tokens)];
            write_fields(out, &tokens)?;
            write!(out, ",\"tokens_from_usage\":{}", self.tokens_from_usage)?;
        }
        out.write_all(b"}\n")
    }
}

fn write_fields(out: &mut impl Write, fields: &[(&str, u64)]) -> std::io::Result<()> {
    for &(name, value) in fields {
        match value {
            ABSENT => write!(out, ",\"{name}\":null")?,
            value => write!(out, ",\"{name}\":{value}")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{ABSENT, StreamRecord};
    use crate::recorder::{Failure, StreamEnd};

    /// A record stays small: a core's buffer of them is reserved up front (120 B: 7.5 MiB per buffer).
    #[test]
    fn a_record_is_small() {
        assert!(std::mem::size_of::<StreamRecord>() <= 120, "{} B", std::mem::size_of::<StreamRecord>());
    }

    fn line(record: StreamRecord, llm: bool) -> String {
        let mut out = Vec::new();
        record.write_line(&mut out, 1_000_000, llm).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Every field by name, absent values as null, outcomes as the report names them; one valid JSON line each.
    #[test]
    fn records_are_written_as_json_lines() {
        let mut record = StreamRecord { vu: 3, stream: 7, start_us: 250, connect_us: 90, ..StreamRecord::EMPTY };
        record.end = StreamEnd::Completed;
        assert_eq!(
            line(record, false),
            "{\"vu\":3,\"stream\":7,\"start_us\":1000250,\"outcome\":\"completed\",\"connect_us\":90,\"tls_us\":null,\
             \"headers_us\":null,\"first_event_us\":null,\"stream_us\":0,\"events\":0,\"bytes\":0,\"max_gap_us\":null}\n"
        );
        for (end, outcome) in [
            (StreamEnd::Interrupted, "interrupted"),
            (StreamEnd::Failed(Failure::ConnectRefused), "connect_refused"),
            (StreamEnd::Failed(Failure::HttpStatus(503)), "http_503"),
        ] {
            let record = StreamRecord { end, ttft_us: 5, input_tokens: ABSENT, ..StreamRecord::EMPTY };
            let text = line(record, true);
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value["outcome"], outcome);
            assert_eq!((value["ttft_us"].as_u64(), value["input_tokens"].is_null()), (Some(5), true));
            assert_eq!(value["tokens_from_usage"], false);
        }
    }
}

//! `--data` files: CSV (with a header row) or JSON lines loaded into a `DataSet` at start-up, and which row a
//! render uses (`DataMode`). Strings here are start-up only; renders borrow the rows.

use std::path::Path;

/// The rows of a data file; a `{{field}}` placeholder takes its value from one row.
#[derive(Debug, Clone)]
pub struct DataSet {
    fields: Vec<String>,
    /// Row-major: row `i` is `values[i * fields.len()..(i + 1) * fields.len()]`.
    values: Vec<String>,
    rows: usize,
}

impl DataSet {
    /// Loads `path` as CSV (`.csv`) or JSON lines (`.jsonl`, `.ndjson`). Errors name the file.
    pub fn load(path: &Path) -> Result<DataSet, String> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let parse: fn(&str) -> Result<DataSet, String> = match ext.as_str() {
            "csv" => DataSet::parse_csv,
            "jsonl" | "ndjson" => DataSet::parse_jsonl,
            _ => return Err(format!("data file {}: expected a .csv, .jsonl or .ndjson file", path.display())),
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("data file {}: {e}", path.display()))?;
        parse(&text).map_err(|e| format!("data file {}: {e}", path.display()))
    }

    /// Parses RFC 4180 CSV whose first row names the fields. Blank lines are skipped; values are kept as written
    /// (not trimmed), header names are trimmed. A leading byte-order mark is dropped.
    pub fn parse_csv(text: &str) -> Result<DataSet, String> {
        let mut records = csv_records(strip_bom(text))?.into_iter();
        let Some((header_line, header)) = records.next() else { return Err("no header row".into()) };
        let fields: Vec<String> = header.iter().map(|f| f.trim().to_string()).collect();
        for (i, field) in fields.iter().enumerate() {
            if field.is_empty() {
                return Err(format!("line {header_line}: header field {} is empty", i + 1));
            }
            if fields[..i].contains(field) {
                return Err(format!("line {header_line}: header field \"{field}\" appears twice"));
            }
        }
        let mut data = DataSet { fields, values: Vec::new(), rows: 0 };
        for (line, record) in records {
            if record.len() != data.fields.len() {
                return Err(format!("line {line}: {} fields, but the header has {}", record.len(), data.fields.len()));
            }
            data.push_row(line, record)?;
        }
        data.finish()
    }

    /// Parses JSON lines: one object per non-blank line, values strings, numbers or booleans. Fields are the
    /// keys (sorted within each line, then in order of first appearance), and every row must have all of them. A
    /// leading byte-order mark is dropped.
    pub fn parse_jsonl(text: &str) -> Result<DataSet, String> {
        use serde_json::Value;
        let mut objects = Vec::new();
        let mut fields: Vec<String> = Vec::new();
        for (i, line) in strip_bom(text).lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let value: Value = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
            let Value::Object(object) = value else { return Err(format!("line {}: expected a JSON object", i + 1)) };
            for key in object.keys() {
                if !fields.contains(key) {
                    fields.push(key.clone());
                }
            }
            objects.push((i + 1, object));
        }
        let mut data = DataSet { fields, values: Vec::new(), rows: 0 };
        for (line, object) in objects {
            let mut row = Vec::with_capacity(data.fields.len());
            for field in &data.fields {
                row.push(match object.get(field) {
                    None => return Err(format!("line {line}: missing key \"{field}\"")),
                    Some(Value::String(s)) => s.clone(),
                    Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                    Some(_) => return Err(format!("line {line}: \"{field}\" must be a string, number or boolean")),
                });
            }
            data.push_row(line, row)?;
        }
        data.finish()
    }

    /// Field names, in file order.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Number of data rows (at least one).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Row `i`'s values, one per field. Panics when `i >= rows()`.
    pub fn row(&self, i: usize) -> &[String] {
        let width = self.fields.len();
        &self.values[i * width..(i + 1) * width]
    }

    /// Values go into request headers, where CR, LF or NUL would split or truncate the head.
    fn push_row(&mut self, line: usize, row: Vec<String>) -> Result<(), String> {
        for (field, value) in self.fields.iter().zip(&row) {
            if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                return Err(format!("line {line}: value of \"{field}\" contains CR, LF or NUL"));
            }
        }
        self.values.extend(row);
        self.rows += 1;
        Ok(())
    }

    fn finish(self) -> Result<DataSet, String> {
        match () {
            _ if self.rows == 0 => Err("no data rows".into()),
            _ if self.fields.is_empty() => Err("no fields".into()),
            _ => Ok(self),
        }
    }
}

/// `text` without a leading UTF-8 byte-order mark: editors on Windows save one, it is invisible there, and left in
/// it would become part of the first field's name.
fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Splits CSV into records, each with the 1-based line it starts on. Lenient where RFC 4180 is silent (a quote
/// inside an unquoted field is kept); blank or whitespace-only lines are skipped.
fn csv_records(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut records = Vec::new();
    let (mut fields, mut field) = (Vec::new(), String::new());
    let (mut line, mut record_line) = (1, 1);
    let (mut in_quotes, mut was_quoted) = (false, false);
    let mut chars = text.chars().peekable();
    loop {
        let c = chars.next();
        if in_quotes {
            match c {
                None => return Err(format!("line {record_line}: quoted field is never closed")),
                Some('"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                Some('"') => in_quotes = false,
                Some(c) => {
                    line += usize::from(c == '\n');
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            Some('"') if field.is_empty() => (in_quotes, was_quoted) = (true, true),
            Some(',') => fields.push(std::mem::take(&mut field)),
            Some('\r') if chars.peek() == Some(&'\n') => {}
            None | Some('\n') => {
                let blank = fields.is_empty() && !was_quoted && field.trim().is_empty();
                if !blank {
                    fields.push(std::mem::take(&mut field));
                    records.push((record_line, std::mem::take(&mut fields)));
                }
                field.clear();
                was_quoted = false;
                if c.is_none() {
                    return Ok(records);
                }
                line += 1;
                record_line = line;
            }
            Some(c) => field.push(c),
        }
    }
}

/// Which data row a render uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataMode {
    /// Each user keeps one row: `vu % rows`.
    Vu,
    /// Each request takes the next row: `(seq * users + vu) % rows`, so concurrent requests use distinct rows.
    Request,
}

impl DataMode {
    /// The row (of `rows`) that user `vu`'s stream `seq` uses in a run of `users` virtual users.
    pub fn row_index(self, vu: u64, seq: u64, users: u64, rows: usize) -> usize {
        // u128 so that a huge seq * users cannot wrap and skew the rotation.
        let index = match self {
            DataMode::Vu => u128::from(vu),
            DataMode::Request => u128::from(seq) * u128::from(users) + u128::from(vu),
        };
        (index % rows.max(1) as u128) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_parses_quotes_crlf_and_blank_lines() {
        let d = DataSet::parse_csv(" name , token\r\n\"a,b\",\"say \"\"hi\"\"\"\r\n\r\n  \nplain,\n").unwrap();
        assert_eq!(d.fields(), ["name", "token"]);
        assert_eq!(d.rows(), 2);
        assert_eq!(d.row(0), ["a,b", "say \"hi\""]);
        assert_eq!(d.row(1), ["plain", ""]);
        assert_eq!(DataSet::parse_csv("x\n1").unwrap().row(0), ["1"]);
    }

    #[test]
    fn csv_errors_name_the_line() {
        for (text, needle) in [
            ("a,b\n1,2,3\n", "line 2: 3 fields, but the header has 2"),
            ("a,b\n1,2\n\n3\n", "line 4: 1 fields"),
            ("a, a\n1,2\n", "\"a\" appears twice"),
            ("a, \n1,2\n", "header field 2 is empty"),
            ("a\n\"x\ny\"\n", "line 2: value of \"a\" contains CR"),
            ("a\nx\ry\n", "line 2: value of \"a\""),
            ("a,b\n1,x\0\n", "line 2: value of \"b\""),
            ("a\n\"open\n", "line 2: quoted field is never closed"),
            ("a,b\n", "no data rows"),
            ("\n", "no header row"),
        ] {
            let e = DataSet::parse_csv(text).err().unwrap_or_else(|| panic!("{text:?} parsed"));
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn jsonl_takes_scalars_in_key_order() {
        let d = DataSet::parse_jsonl(
            "{\"id\":1,\"name\":\"ann\",\"ok\":true}\n\n{\"ok\":false,\"name\":\"b\",\"id\":2.5}\r\n",
        )
        .unwrap();
        assert_eq!(d.fields(), ["id", "name", "ok"]);
        assert_eq!(
            (d.row(0), d.row(1)),
            (&["1", "ann", "true"].map(String::from)[..], &["2.5", "b", "false"].map(String::from)[..])
        );
    }

    #[test]
    fn jsonl_errors_name_line_and_key() {
        for (text, needle) in [
            ("{\"a\":1}\n{\"a\":2,\"b\":3}\n", "line 1: missing key \"b\""),
            ("{\"a\":1,\"b\":2}\n\n{\"b\":2}\n", "line 3: missing key \"a\""),
            ("[1,2]\n", "line 1: expected a JSON object"),
            ("{\"a\":null}\n", "line 1: \"a\" must be"),
            ("{\"a\":{\"b\":1}}\n", "line 1: \"a\" must be"),
            ("{\"a\":\"x\\ny\"}\n", "line 1: value of \"a\" contains"),
            ("{\"a\":1}\nnope\n", "line 2"),
            ("{}\n", "no fields"),
            ("\n \n", "no data rows"),
        ] {
            let e = DataSet::parse_jsonl(text).err().unwrap_or_else(|| panic!("{text:?} parsed"));
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn load_picks_the_format_by_extension() {
        let dir = std::env::temp_dir().join(format!("tmpl-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text, result) in [
            ("d.csv", "a\n1\n", Ok(1)),
            ("d.NDJSON", "{\"a\":1}\n{\"a\":2}\n", Ok(2)),
            ("d.txt", "a\n1\n", Err("expected a .csv")),
            ("missing.csv", "", Err("missing.csv")),
        ] {
            let path = dir.join(name);
            if !name.starts_with("missing") {
                std::fs::write(&path, text).unwrap();
            }
            match (DataSet::load(&path), result) {
                (Ok(d), Ok(rows)) => assert_eq!(d.rows(), rows),
                (Err(e), Err(needle)) => assert!(e.contains(needle), "{name}: {e}"),
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn data_mode_picks_rows() {
        use DataMode::{Request, Vu};
        for (mode, vu, seq, users, rows, expected) in [
            (Vu, 0, 9, 4, 3, 0),
            (Vu, 4, 9, 10, 3, 1),
            (Request, 1, 0, 4, 10, 1),
            (Request, 1, 2, 4, 10, 9),
            (Request, 3, 2, 4, 5, 1),
            // (2^64 - 1) * 2^64 mod 7 = 1 * 2: no wrap-around in seq * users + vu.
            (Request, u64::MAX, u64::MAX, u64::MAX, 7, 2),
        ] {
            assert_eq!(mode.row_index(vu, seq, users, rows), expected, "{mode:?} vu {vu} seq {seq}");
        }
        // With as many rows as 3 users make requests in 2 rounds, every row is used exactly once.
        let mut used: Vec<usize> =
            (0..3).flat_map(|vu| (0..2).map(move |seq| Request.row_index(vu, seq, 3, 6))).collect();
        used.sort();
        assert_eq!(used, [0, 1, 2, 3, 4, 5]);
    }
}

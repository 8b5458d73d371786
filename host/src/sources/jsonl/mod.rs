//! Reads recorded events, one JSON object a line, reporting bad lines precisely.
//!
//! A bad line is returned as an error naming the file, the line, the field and what was
//! expected; the caller decides to skip it (and count it) or stop. Reading goes on after it.
//! Recorded days may arrive compressed ([`compressed`]); a back-test on several threads reads
//! them as numbered blocks of whole lines ([`blocks`]).

pub mod blocks;
pub mod compressed;

use std::fmt;
use std::io::{BufRead, Read};

use std::sync::Arc;

use super::{Running, Sink, Source};
use crate::event::{Event, LineError, parse_line};

/// Longest line accepted; a longer one is reported, not loaded, so a corrupt file cannot make
/// the agent allocate without bound.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// A line that is not a valid event, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// The file, as named by the user.
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// What is wrong.
    pub error: LineError,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.error)
    }
}

impl std::error::Error for BadLine {}

/// One line's event: `None` for a blank line, else the event or what is wrong with the line
/// (not UTF-8, not an event). Both readers ([`JsonlReader`], [`blocks::Block`]) parse lines
/// with it, so a line reads the same whichever reads it.
pub fn parse_bytes(line: &[u8]) -> Option<Result<Event, LineError>> {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t.trim(),
        Err(e) => {
            return Some(Err(LineError {
                field: None,
                column: None,
                message: format!("not valid UTF-8 (byte {})", e.valid_up_to() + 1),
            }));
        }
    };
    if text.is_empty() {
        return None;
    }
    Some(parse_line(text))
}

/// Iterates over the events of a JSONL stream: `Ok(Ok(event))`, `Ok(Err(bad line))`, or
/// `Err(io error)` (after which iteration ends).
pub struct JsonlReader<R> {
    input: R,
    file: String,
    line: u64,
    buf: Vec<u8>,
    failed: bool,
}

impl<R: BufRead> JsonlReader<R> {
    /// Reads `input`, naming it `file` in errors.
    pub fn new(input: R, file: impl Into<String>) -> Self {
        JsonlReader {
            input,
            file: file.into(),
            line: 0,
            buf: Vec::with_capacity(1024),
            failed: false,
        }
    }

    fn bad(&self, message: String) -> BadLine {
        BadLine {
            file: self.file.clone(),
            line: self.line,
            error: LineError {
                field: None,
                column: None,
                message,
            },
        }
    }

    /// Skips the rest of an over-long line.
    fn skip_line(&mut self) -> std::io::Result<()> {
        loop {
            let (done, used) = {
                let chunk = self.input.fill_buf()?;
                if chunk.is_empty() {
                    return Ok(());
                }
                match memchr::memchr(b'\n', chunk) {
                    Some(i) => (true, i + 1),
                    None => (false, chunk.len()),
                }
            };
            self.input.consume(used);
            if done {
                return Ok(());
            }
        }
    }
}

impl<R: BufRead> Iterator for JsonlReader<R> {
    type Item = std::io::Result<Result<Event, BadLine>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            self.buf.clear();
            let limit = MAX_LINE_BYTES as u64 + 1;
            match (&mut self.input)
                .take(limit)
                .read_until(b'\n', &mut self.buf)
            {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            self.line += 1;
            if self.buf.len() > MAX_LINE_BYTES && self.buf.last() != Some(&b'\n') {
                if let Err(e) = self.skip_line() {
                    self.failed = true;
                    return Some(Err(e));
                }
                let msg = format!("line longer than {MAX_LINE_BYTES} bytes");
                return Some(Ok(Err(self.bad(msg))));
            }
            match parse_bytes(&self.buf) {
                // Blank lines separate nothing and carry nothing.
                None => continue,
                Some(parsed) => {
                    return Some(Ok(parsed.map_err(|error| BadLine {
                        file: self.file.clone(),
                        line: self.line,
                        error,
                    })));
                }
            }
        }
    }
}

/// Events streamed to the running agent as JSON lines, from a file, a FIFO or standard input
/// (`-`): the [`Source`] behind `vigilo run --events`. A malformed line is logged and skipped.
pub struct JsonlFile {
    path: std::path::PathBuf,
}

impl JsonlFile {
    /// The events in `path` (`-`: standard input).
    pub fn new(path: std::path::PathBuf) -> JsonlFile {
        JsonlFile { path }
    }
}

impl Source for JsonlFile {
    /// The file is opened on the source's own thread: opening a FIFO waits for its writer,
    /// which must not hold up the agent's start.
    fn start(self: Box<Self>, sink: Arc<dyn Sink>) -> std::io::Result<Running> {
        let (path, name) = (self.path.clone(), self.path.display().to_string());
        sink.status("events", true, format!("JSON lines from {name}"));
        std::thread::Builder::new()
            .name("vigilo-source-jsonl".into())
            .spawn(move || {
                let reader: Box<dyn BufRead + Send> = if name == "-" {
                    Box::new(std::io::BufReader::new(std::io::stdin()))
                } else {
                    match std::fs::File::open(&path) {
                        Ok(f) => Box::new(std::io::BufReader::new(f)),
                        Err(e) => {
                            let why = format!("cannot open {name}: {e}");
                            sink.off("events", why, "events from it are off");
                            return;
                        }
                    }
                };
                for item in JsonlReader::new(reader, name.clone()) {
                    match item {
                        Ok(Ok(event)) => {
                            if !sink.event(event) {
                                return;
                            }
                        }
                        Ok(Err(bad)) => tracing::warn!("skipped {bad}"),
                        Err(e) => {
                            tracing::error!("cannot read {name}: {e}");
                            return;
                        }
                    }
                }
                tracing::info!(source = %name, "end of input");
            })?;
        Ok(Running::threads())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8]) -> Vec<Result<Event, BadLine>> {
        JsonlReader::new(input, "day.jsonl")
            .map(|r| r.expect("no io error"))
            .collect()
    }

    #[test]
    fn reports_bad_lines_with_file_and_line_and_keeps_going() {
        let input = b"{\"ts\":\"2026-11-02T09:00:00Z\",\"kind\":\"usb\"}\n\n\
            {\"ts\":\"2026-11-02T09:00:01Z\",\"kind\":\"usb\",\"bytes\":\"many\"}\n\
            \xff\xfe\n\
            {\"ts\":\"2026-11-02T09:00:02Z\",\"kind\":\"account\"}";
        let out = read(input);
        assert_eq!(out.len(), 4);
        assert!(out[0].is_ok());
        let bad = out[1].clone().expect_err("bad bytes");
        assert_eq!(bad.line, 3);
        assert_eq!(bad.error.field.as_deref(), Some("bytes"));
        assert!(bad.to_string().starts_with("day.jsonl:3: column"), "{bad}");
        let bad = out[2].clone().expect_err("bad utf8");
        assert!(
            bad.to_string().contains("day.jsonl:4: not valid UTF-8"),
            "{bad}"
        );
        assert!(out[3].is_ok(), "the last line needs no newline");
    }

    #[test]
    fn over_long_lines_are_reported_and_skipped() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
        input.extend_from_slice(b"\n{\"ts\":\"2026-11-02T09:00:00Z\",\"kind\":\"usb\"}\n");
        let out = read(&input);
        assert_eq!(out.len(), 2);
        assert!(
            out[0]
                .clone()
                .expect_err("long")
                .to_string()
                .contains("longer than")
        );
        assert!(out[1].is_ok());
    }
}

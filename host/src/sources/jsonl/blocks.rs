//! A recording cut into numbered blocks of whole lines, so that several threads can parse it:
//! one thread reads (and decompresses) and cuts, the others parse and evaluate.
//!
//! A block knows the number of its first line, so a bad line is reported with the same file and
//! line number [`super::JsonlReader`] gives. A line longer than [`MAX_LINE_BYTES`] is not
//! copied: it stays in its block as an empty line marked over-long, so memory stays bounded and
//! the numbering goes on.

use std::io::{self, BufRead};

use super::{BadLine, MAX_LINE_BYTES, parse_bytes};
use crate::event::{Event, LineError};

/// About this many bytes of lines a block (a block ends at a line's end).
pub const BLOCK_BYTES: usize = 1 << 20;

/// Whole lines of a recording.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Block {
    /// The number of its first line (1-based).
    first_line: u64,
    /// The number of its last line.
    last_line: u64,
    /// Its lines, each ending in `\n`.
    bytes: Vec<u8>,
    /// Lines (by number) left out for being longer than [`MAX_LINE_BYTES`].
    overlong: Vec<u64>,
}

impl Block {
    /// The number of its last line.
    pub fn last_line(&self) -> u64 {
        self.last_line
    }

    /// Each line's event or what is wrong with it (named after `file`), blank lines left out.
    pub fn events<'a>(
        &'a self,
        file: &'a str,
    ) -> impl Iterator<Item = Result<Event, BadLine>> + 'a {
        self.lines()
            .filter_map(move |(line, text)| self.event_of(line, text, file))
    }

    /// Its lines as they are, with their numbers.
    pub fn lines(&self) -> impl Iterator<Item = (u64, &[u8])> {
        // Every line ends in a newline: the empty piece after the last one is not a line.
        (self.first_line..=self.last_line).zip(self.bytes.split(|&b| b == b'\n'))
    }

    /// Line `line` (its `text`, as [`Block::lines`] gives it): its event, what is wrong with it
    /// (named after `file`), or nothing for a blank line.
    pub fn event_of(&self, line: u64, text: &[u8], file: &str) -> Option<Result<Event, BadLine>> {
        let bad = |error| BadLine {
            file: file.to_string(),
            line,
            error,
        };
        if self.overlong.contains(&line) {
            let message = format!("line longer than {MAX_LINE_BYTES} bytes");
            return Some(Err(bad(LineError {
                field: None,
                column: None,
                message,
            })));
        }
        parse_bytes(text).map(|parsed| parsed.map_err(bad))
    }
}

/// Cuts a stream into [`Block`]s; an I/O error (a corrupt compressed stream) ends it.
pub struct Blocks<R> {
    input: R,
    /// Lines cut so far.
    line: u64,
    failed: bool,
}

impl<R: BufRead> Blocks<R> {
    /// Blocks of `input`.
    pub fn new(input: R) -> Blocks<R> {
        Blocks {
            input,
            line: 0,
            failed: false,
        }
    }
}

impl<R: BufRead> Iterator for Blocks<R> {
    type Item = io::Result<Block>;

    fn next(&mut self) -> Option<io::Result<Block>> {
        if self.failed {
            return None;
        }
        let mut block = Block {
            first_line: self.line + 1,
            last_line: 0,
            bytes: Vec::with_capacity(BLOCK_BYTES + 64 * 1024),
            overlong: Vec::new(),
        };
        // Where the line being copied starts in the block, and whether it is being skipped
        // for being too long.
        let mut line_start = 0;
        let mut skipping = false;
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            if chunk.is_empty() {
                // The end: a last line without its newline is a line too.
                if skipping || block.bytes.len() > line_start {
                    block.bytes.push(b'\n');
                    self.line += 1;
                }
                block.last_line = self.line;
                return (!block.bytes.is_empty()).then_some(Ok(block));
            }
            let (piece, ends_line) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (&chunk[..=i], true),
                None => (chunk, false),
            };
            let used = piece.len();
            let length = block.bytes.len() - line_start + used - usize::from(ends_line);
            if !skipping && length > MAX_LINE_BYTES {
                block.bytes.truncate(line_start);
                block.overlong.push(self.line + 1);
                skipping = true;
            }
            if !skipping {
                block.bytes.extend_from_slice(piece);
            }
            self.input.consume(used);
            if ends_line {
                if skipping {
                    block.bytes.push(b'\n');
                    skipping = false;
                }
                self.line += 1;
                line_start = block.bytes.len();
                if block.bytes.len() >= BLOCK_BYTES {
                    block.last_line = self.line;
                    return Some(Ok(block));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::jsonl::JsonlReader;

    /// Every line as the line-by-line reader sees it: event JSON or `file:line: error`.
    fn by_lines(text: &[u8]) -> Vec<String> {
        JsonlReader::new(text, "f")
            .map(|item| match item.expect("read") {
                Ok(e) => e.to_json(),
                Err(bad) => bad.to_string(),
            })
            .collect()
    }

    fn by_blocks(text: &[u8], capacity: usize) -> Vec<String> {
        Blocks::new(std::io::BufReader::with_capacity(capacity, text))
            .flat_map(|b| {
                b.expect("read")
                    .events("f")
                    .map(|item| match item {
                        Ok(e) => e.to_json(),
                        Err(bad) => bad.to_string(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn blocks_read_every_line_as_the_line_reader_does() {
        let good = r#"{"ts":"2026-11-02T09:00:00Z","kind":"usb","action":"inserted"}"#;
        let mut text = Vec::new();
        for i in 0..20_000 {
            match i % 5000 {
                7 => text.extend_from_slice(b"{\"ts\": 1}\n"),
                8 => text.extend_from_slice(b"\n"),
                9 => text.extend_from_slice(b"\xff\xfe\n"),
                10 => {
                    text.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 1));
                    text.push(b'\n');
                }
                _ => {
                    text.extend_from_slice(good.as_bytes());
                    text.push(b'\n');
                }
            }
        }
        // And a last line without its newline.
        text.extend_from_slice(b"{\"kind\": 3}");
        let expected = by_lines(&text);
        assert!(
            expected.iter().any(|l| l.contains("f:20001:")),
            "the last line is a line"
        );
        assert!(
            expected
                .iter()
                .any(|l| l.contains("f:11: line longer than"))
        );
        for capacity in [1 << 10, 1 << 16, 1 << 20] {
            assert_eq!(by_blocks(&text, capacity), expected, "buffer {capacity}");
        }
        let blocks: Vec<Block> = Blocks::new(&text[..]).map(|b| b.expect("read")).collect();
        assert!(blocks.len() > 1, "a big input is several blocks");
        assert!(
            blocks
                .iter()
                .all(|b| b.bytes.len() < BLOCK_BYTES + MAX_LINE_BYTES)
        );
    }
}

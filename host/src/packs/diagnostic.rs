//! Located errors: `file:line:column: message`, the form editors and CI logs understand.

use std::fmt;
use std::ops::Range;

/// One problem found in a pack file, with where it is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The file, as the user named it (or its path inside the pack).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Maps byte offsets of one file's text to lines and columns.
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Indexes `text`.
    pub fn new(text: &'a str) -> LineIndex<'a> {
        let starts = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// The 1-based line and column of a byte offset.
    pub fn locate(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        (line, column)
    }
}

/// Collects diagnostics for one file.
pub struct Reporter<'a> {
    file: String,
    index: LineIndex<'a>,
    /// What has been found so far.
    pub found: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    /// A reporter for `file` whose text is `text`.
    pub fn new(file: impl Into<String>, text: &'a str) -> Reporter<'a> {
        Reporter {
            file: file.into(),
            index: LineIndex::new(text),
            found: Vec::new(),
        }
    }

    /// The problems found, in file order.
    pub fn into_sorted(self) -> Vec<Diagnostic> {
        let mut found = self.found;
        found.sort_by_key(|d| (d.line, d.column));
        found
    }

    /// The line and column of a byte offset of the file.
    pub fn locate(&self, offset: usize) -> (usize, usize) {
        self.index.locate(offset)
    }

    /// Records a problem at a span of the file.
    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = self.index.locate(span.start);
        self.found.push(Diagnostic {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_lines_and_character_columns() {
        let idx = LineIndex::new("ab\nçd\n\nx");
        assert_eq!(idx.locate(0), (1, 1));
        assert_eq!(idx.locate(1), (1, 2));
        assert_eq!(idx.locate(3), (2, 1));
        assert_eq!(idx.locate(5), (2, 2), "ç is one column though two bytes");
        assert_eq!(idx.locate(8), (4, 1));
        assert_eq!(idx.locate(999), (4, 2));
    }
}

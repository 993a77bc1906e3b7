//! Schema errors: each names the file, the line and what is wrong.
use std::fmt;

/// One problem in one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The table file (built-in name like `schemas/generic.toml`, or the overlay path).
    pub file: String,
    /// 1-based line; 0 when the problem concerns the whole file.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

/// Every problem found while loading the schema tables (start-up stops on any).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SchemaError {
    /// The problems, sorted by file and line.
    pub issues: Vec<Issue>,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.issues.len();
        write!(
            f,
            "{n} error{} in schema tables",
            if n == 1 { "" } else { "s" }
        )?;
        for i in &self.issues {
            write!(f, "\n  {i}")?;
        }
        Ok(())
    }
}

/// Byte offset → 1-based line number for one file's text.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes `text`.
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        LineIndex { starts }
    }

    /// The 1-based line holding byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_from_offsets() {
        let idx = LineIndex::new("ab\ncd\n\nef");
        assert_eq!(idx.line(0), 1);
        assert_eq!(idx.line(2), 1);
        assert_eq!(idx.line(3), 2);
        assert_eq!(idx.line(6), 3);
        assert_eq!(idx.line(7), 4);
        assert_eq!(idx.line(100), 4);
    }

    #[test]
    fn display_names_file_and_line() {
        let e = SchemaError {
            issues: vec![Issue {
                file: "schemas/x.toml".into(),
                line: 7,
                message: "unknown conversion `foo`".into(),
            }],
        };
        assert_eq!(
            e.to_string(),
            "1 error in schema tables\n  schemas/x.toml:7: unknown conversion `foo`"
        );
    }
}

//! Diagnostics with file, line, column and a hint, printed rustc-style:
//!
//! ```text
//! error: step `menu` goes to unknown step `pas_bestil`
//!   --> flows/nordby/main.toml:12:8
//!    |
//! 12 | goto = "pas_bestil"
//!    |        ^
//!    = hint: known steps: welcome, menu, pas
//! ```

use std::{fmt, path::PathBuf};

/// How bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Refuses the load.
    Error,
    /// Reported, the load goes on (e.g. an unreachable step).
    Warning,
}

/// One finding about a flow or config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// File.
    pub file: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column in characters (0 when unknown).
    pub col: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// The source line, for display.
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(f, "{sev}: {}", self.message)?;
        let width = self.line.to_string().len();
        let pad = " ".repeat(width);
        writeln!(
            f,
            "{pad}--> {}:{}:{}",
            self.file.display(),
            self.line,
            self.col
        )?;
        if let Some(src) = &self.source_line {
            writeln!(f, "{pad} |")?;
            writeln!(f, "{} | {}", self.line, src)?;
            writeln!(f, "{pad} | {}^", " ".repeat(self.col.saturating_sub(1)))?;
        }
        if let Some(h) = &self.hint {
            writeln!(f, "{pad} = hint: {h}")?;
        }
        Ok(())
    }
}

/// A file's text, for turning byte offsets into line and column.
#[derive(Debug, Clone)]
pub struct Source {
    /// Path as given.
    pub path: PathBuf,
    /// Content.
    pub text: String,
}

impl Source {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = self
            .text
            .get(line_start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        (line, col)
    }

    /// A diagnostic at a byte offset.
    pub fn diag(
        &self,
        severity: Severity,
        offset: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        let (line, col) = self.line_col(offset);
        Diagnostic {
            severity,
            file: self.path.clone(),
            line,
            col,
            message: message.into(),
            hint,
            source_line: self.text.lines().nth(line - 1).map(str::to_string),
        }
    }
}

/// The closest known name to a misspelt one, for "did you mean" hints.
pub fn closest<'a>(wrong: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(wrong, k), k))
        .filter(|(s, _)| *s > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

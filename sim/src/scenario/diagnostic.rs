//! Load errors that name file, line and column, rendered the way miette and rustc do.

use std::fmt;
use std::ops::Range;

/// Why a scenario did not load: where (file, 1-based line and column, in characters) and
/// what was expected there.
///
/// `Display` renders the whole diagnostic: an `error: ...` line, then for a located error
/// a ` --> file:line:col` line, the source line and a caret under the offending text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The file, as the user named it; `--set`, `--protocol` or `--bug` when a command-line
    /// override is at fault.
    pub file: String,
    /// 1-based line, when the error has a place in the file.
    pub line: Option<usize>,
    /// 1-based column in characters, when the error has a place in the file.
    pub column: Option<usize>,
    /// What went wrong and what was expected, on one line.
    pub message: String,
    snippet: Option<Snippet>,
}

/// The source line shown under a located error, and what to underline in it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Snippet {
    /// The line as shown (possibly a window of a very long line).
    text: String,
    /// Characters of `text` before the caret.
    caret_at: usize,
    /// How many characters to underline; at least 1.
    caret_len: usize,
}

/// Shown source lines longer than this are cut to a window around the caret, so that a
/// minified or binary file cannot flood the terminal.
const MAX_SHOWN_CHARS: usize = 120;

impl LoadError {
    /// An error with no place in a file (an unreadable file, a bad override).
    pub(crate) fn plain(file: &str, message: impl Into<String>) -> LoadError {
        LoadError {
            file: file.to_string(),
            line: None,
            column: None,
            message: one_line(&message.into()),
            snippet: None,
        }
    }

    /// An error at byte range `span` of `text`, the contents of `file`.
    pub(crate) fn at(file: &str, text: &str, span: Range<usize>, message: &str) -> LoadError {
        let start = floor_boundary(text, span.start);
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line_no = text[..start].matches('\n').count() + 1;
        let line = text[line_start..line_end].trim_end_matches('\r');
        let before = text[line_start..start].chars().count();
        let end = floor_boundary(text, span.end.clamp(start, line_end));
        let width = text[start..end].chars().count().max(1);
        LoadError {
            file: file.to_string(),
            line: Some(line_no),
            column: Some(before + 1),
            message: one_line(message),
            snippet: Some(Snippet::new(line, before, width)),
        }
    }
}

impl Snippet {
    fn new(line: &str, caret_at: usize, caret_len: usize) -> Snippet {
        // Control characters shown one for one as visible ones, so the caret stays right.
        let line = &crate::shown::visible_line(line);
        let chars: Vec<char> = line.chars().collect();
        let caret_at = caret_at.min(chars.len());
        let caret_len = caret_len.clamp(1, MAX_SHOWN_CHARS / 2);
        if chars.len() <= MAX_SHOWN_CHARS {
            return Snippet {
                text: line.to_string(),
                caret_at,
                caret_len,
            };
        }
        let from = caret_at.saturating_sub(MAX_SHOWN_CHARS / 2);
        let to = (from + MAX_SHOWN_CHARS).min(chars.len());
        let mut text: String = if from > 0 {
            "...".into()
        } else {
            String::new()
        };
        let caret_at = caret_at - from + text.len();
        text.extend(&chars[from..to]);
        if to < chars.len() {
            text.push_str("...");
        }
        Snippet {
            text,
            caret_at,
            caret_len,
        }
    }
}

/// The largest char boundary of `text` at or below `at` (clamped to the text).
fn floor_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Parser messages sometimes span lines ("invalid table header\nexpected `]`"); a
/// diagnostic's headline is one line, with what it echoes of the input escaped and cut
/// ([`crate::shown`]) and no Rust type names.
fn one_line(message: &str) -> String {
    let message = crate::shown::without_type_names(message);
    let line = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let line = crate::shown::shown(&line);
    if line.is_empty() {
        "invalid input (the parser gave no detail)".to_string()
    } else {
        line
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        let (Some(line), Some(column)) = (self.line, self.column) else {
            return Ok(());
        };
        let pad = " ".repeat(line.to_string().len());
        write!(f, "\n{pad}--> {}:{line}:{column}", self.file)?;
        if let Some(snippet) = &self.snippet {
            // Tabs stay tabs under the caret so that it lines up however wide they render.
            let lead: String = snippet
                .text
                .chars()
                .take(snippet.caret_at)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let carets = "^".repeat(snippet.caret_len);
            write!(f, "\n{pad} |\n{line} | {}", snippet.text)?;
            write!(f, "\n{pad} | {lead}{carets}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_miette_with_line_column_and_caret() {
        let text = "a = 1\n\nb = 2\n\n\n\n\n\n\n\n\ncolour = \"red\"\n";
        let at = text.find("colour").unwrap();
        let e = LoadError::at(
            "scenarios/x.toml",
            text,
            at..at + 6,
            "unknown field `colour`",
        );
        assert_eq!((e.line, e.column), (Some(12), Some(1)));
        assert_eq!(
            e.to_string(),
            "error: unknown field `colour`\n  --> scenarios/x.toml:12:1\n   |\n\
             12 | colour = \"red\"\n   | ^^^^^^"
        );
    }

    #[test]
    fn columns_count_characters_and_carets_keep_tabs() {
        let text = "\tnäme = 3\n";
        let at = text.find('3').unwrap();
        let e = LoadError::at("f", text, at..at + 1, "bad");
        assert_eq!((e.line, e.column), (Some(1), Some(9)));
        assert!(e.to_string().ends_with("1 | \tnäme = 3\n  | \t       ^"));
    }

    #[test]
    fn plain_errors_are_one_line_and_spans_past_the_end_are_clamped() {
        let e = LoadError::plain("f", "cannot read f: gone");
        assert_eq!(e.to_string(), "error: cannot read f: gone");
        let e = LoadError::at("f", "x = é", 5..99, "two\nlines");
        assert_eq!((e.line, e.column), (Some(1), Some(5)));
        assert!(e.to_string().starts_with("error: two; lines\n"));
    }

    #[test]
    fn long_lines_are_windowed_around_the_caret() {
        let text = format!("{}X{}", "a".repeat(500), "b".repeat(500));
        let e = LoadError::at("f", &text, 500..501, "here");
        assert_eq!(e.column, Some(501));
        let shown = e.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert!(lines[3].len() < 140, "{}", lines[3]);
        let caret = lines[4].find('^').unwrap();
        assert_eq!(lines[3].as_bytes()[caret], b'X');
    }
}

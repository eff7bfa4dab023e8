//! What `simkv check` refuses before judging: a file that is not UTF-8 text (located at its
//! first bad byte), and a history with no operation to judge (exit 2, never "linearizable").

use simkv_sim::history::line_column;
use std::path::Path;

/// A history file's text; an invalid byte is an error naming its line and column.
pub fn read_text(file: &Path) -> Result<String, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.as_bytes()[..at]);
        let (line, column) = line_column(&text, at);
        let byte = e.as_bytes()[at];
        format!(
            "{}:{line}:{column}: expected UTF-8 text, found the invalid byte 0x{byte:02x}",
            file.display()
        )
    })
}

/// An empty history (no records, only comments, or only operations that are never judged:
/// `:fail`ed ones, a nemesis's) is bad input: a check of nothing must not pass CI.
pub fn refuse_empty(file: &Path, ops: usize) -> Result<(), String> {
    if ops > 0 {
        return Ok(());
    }
    Err(format!(
        "{}: 0 operations to check (the history is empty, only comments, or only failed or \
         nemesis operations); nothing was judged",
        file.display()
    ))
}

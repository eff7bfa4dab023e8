//! User input as an error message echoes it: control characters (a NUL, an escape, a
//! right-to-left override) made visible, and very long words cut, so that a hostile or
//! binary file cannot drive the terminal or flood it.

/// The longest run of non-space characters an echo shows in full; a longer one keeps its
/// head and tail around a note of how much was cut.
pub const MAX_WORD_CHARS: usize = 80;
/// The longest message shown; beyond it the rest is cut with a note.
pub const MAX_MESSAGE_CHARS: usize = 1_000;

/// Whether `c` would act on a terminal rather than print: C0 and C1 controls (but a tab),
/// DEL, and the Unicode format characters that reorder or hide text (bidi embeddings,
/// overrides and isolates, zero-width characters, the byte-order mark).
pub fn is_hidden(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}')
        || c == '\u{FEFF}'
}

/// `c` as one visible character: a C0 control as its control picture (NUL as `␀`), any
/// other hidden character as `�`. One character for one, so columns stay right.
pub fn visible(c: char) -> char {
    match c {
        '\0'..='\u{1F}' if c != '\t' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{FFFD}'),
        '\u{7F}' => '\u{2421}',
        c if is_hidden(c) => '\u{FFFD}',
        c => c,
    }
}

/// A line of user text with every hidden character replaced one for one (see [`visible`]).
pub fn visible_line(text: &str) -> String {
    text.chars().map(visible).collect()
}

/// A message that may echo user input, made safe to print on one line: hidden characters
/// (newlines too) escaped as `\u{..}`, words longer than [`MAX_WORD_CHARS`] cut in the middle, the whole at most
/// [`MAX_MESSAGE_CHARS`].
pub fn shown(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_CHARS + 64));
    let mut word: Vec<char> = Vec::new();
    let mut total = 0usize;
    let mut chars = message.chars();
    loop {
        let next = chars.next();
        match next {
            Some(c) if !c.is_whitespace() => {
                word.push(c);
                continue;
            }
            _ => {}
        }
        total += push_word(&mut out, &word);
        word.clear();
        match next {
            Some(c) => {
                // One line: a newline or another control is shown escaped.
                let text = if is_hidden(c) {
                    format!("\\u{{{:x}}}", c as u32)
                } else {
                    c.to_string()
                };
                total += text.chars().count();
                out.push_str(&text);
            }
            None => break,
        }
        if total > MAX_MESSAGE_CHARS {
            let rest = chars.count();
            out.push_str(&format!("... ({rest} more characters cut)"));
            break;
        }
    }
    out
}

/// Appends `word`, escaped and cut; returns the characters it added.
fn push_word(out: &mut String, word: &[char]) -> usize {
    let escape = |c: &char| {
        if is_hidden(*c) {
            format!("\\u{{{:x}}}", *c as u32)
        } else {
            c.to_string()
        }
    };
    let before = out.chars().count();
    if word.len() <= MAX_WORD_CHARS {
        word.iter().for_each(|c| out.push_str(&escape(c)));
    } else {
        let (head, tail) = (MAX_WORD_CHARS / 2, MAX_WORD_CHARS / 4);
        word[..head].iter().for_each(|c| out.push_str(&escape(c)));
        let cut = word.len() - head - tail;
        out.push_str(&format!("...({cut} characters cut)..."));
        word[word.len() - tail..]
            .iter()
            .for_each(|c| out.push_str(&escape(c)));
    }
    out.chars().count() - before
}

/// Serde's names for the loader's own types (`expected struct RawMix`) as a reader would
/// say them (`expected a table`).
pub fn without_type_names(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = ["struct ", "enum "]
        .iter()
        .filter_map(|k| rest.find(k).map(|i| (i, *k)))
        .min()
    {
        let (i, keyword) = at;
        let after = &rest[i + keyword.len()..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        let is_type = name.starts_with(|c: char| c.is_ascii_uppercase());
        out.push_str(&rest[..i]);
        if is_type {
            out.push_str(if keyword == "struct " {
                "a table"
            } else {
                "one of its documented forms"
            });
            rest = &after[name_len..];
        } else {
            out.push_str(keyword);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_escaped_and_long_words_cut() {
        assert_eq!(shown("key `a\u{202E}b`"), "key `a\\u{202e}b`");
        assert_eq!(shown("nul \0 here"), "nul \\u{0} here");
        assert_eq!(shown("a\nb"), "a\\u{a}b");
        let long = format!("unknown field `{}`, expected x", "k".repeat(1_000_000));
        let s = shown(&long);
        assert!(s.len() < 200, "{s}");
        assert!(
            s.contains("characters cut") && s.ends_with("expected x"),
            "{s}"
        );
        let many = "word ".repeat(10_000);
        assert!(shown(&many).len() < MAX_MESSAGE_CHARS + 100);
    }

    #[test]
    fn visible_keeps_one_character_per_character() {
        assert_eq!(visible_line("a\0b\u{202E}c\td"), "a\u{2400}b\u{FFFD}c\td");
    }

    #[test]
    fn type_names_become_words() {
        assert_eq!(
            without_type_names("invalid type: string \"x\", expected struct RawMix"),
            "invalid type: string \"x\", expected a table"
        );
        assert_eq!(
            without_type_names("a struct field, enum Foo"),
            "a struct field, one of its documented forms"
        );
    }
}

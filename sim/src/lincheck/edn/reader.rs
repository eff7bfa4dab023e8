//! A small EDN reader that tracks lines and columns, enough for Jepsen histories.
//!
//! It reads nil, booleans, integers (beyond 64 bits kept as text), floats and ratios (as
//! text), strings, characters, keywords, symbols, lists, vectors, sets, maps, tagged literals
//! (`#inst "..."`, `#jepsen.history.Op{...}`: kept with their tag) and `#_` discards; `;`
//! comments and commas are whitespace. Nesting is bounded so hostile input cannot overflow the
//! stack. Every failure is a [`HistoryError`].

use crate::history::HistoryError;
use std::fmt;

/// An EDN value.
#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits 64 bits.
    Int(i64),
    /// Any other number (big integer, float, decimal, ratio), by its text.
    Number(String),
    /// A string.
    Str(String),
    /// A character, `\a`.
    Char(char),
    /// A keyword, without its colon.
    Keyword(String),
    /// A symbol.
    Symbol(String),
    /// `(...)`.
    List(Vec<Edn>),
    /// `[...]`.
    Vector(Vec<Edn>),
    /// `#{...}`.
    Set(Vec<Edn>),
    /// `{...}`, entries in file order.
    Map(Vec<(Edn, Edn)>),
    /// `#tag value`.
    Tagged(String, Box<Edn>),
}

/// Deepest nesting accepted; histories nest three or four levels.
const MAX_DEPTH: usize = 128;

struct Reader<'a> {
    text: &'a str,
    at: usize,
    line: usize,
    column: usize,
    depth: usize,
}

/// Reads exactly one EDN value (for `--init`).
pub fn parse_value(text: &str) -> Result<Edn, HistoryError> {
    let mut r = Reader {
        text,
        at: 0,
        line: 1,
        column: 1,
        depth: 0,
    };
    r.skip_space()?;
    let v = r.value()?;
    r.skip_space()?;
    if r.peek().is_some() {
        return Err(r.error("expected a single EDN value"));
    }
    Ok(v)
}

/// Reads a history's records: the elements of one top-level vector or list, or each
/// top-level value, handing each to `each` with the line and column where it begins, as it
/// is read (streaming: no record outlives its turn unless `each` keeps it).
pub(super) fn records(
    text: &str,
    each: impl FnMut(usize, usize, Edn) -> Result<(), HistoryError>,
) -> Result<(), HistoryError> {
    records_of(text, true, each)
}

/// Reads each top-level value of `text` (a part of a history, for the streaming reader): a
/// collection among them is a record like any other, not the history's collection.
pub(super) fn top_level_values(
    text: &str,
    each: impl FnMut(usize, usize, Edn) -> Result<(), HistoryError>,
) -> Result<(), HistoryError> {
    records_of(text, false, each)
}

/// [`records`]; `collection`: a first value that is a vector or list holds the records.
fn records_of(
    text: &str,
    collection: bool,
    mut each: impl FnMut(usize, usize, Edn) -> Result<(), HistoryError>,
) -> Result<(), HistoryError> {
    let mut r = Reader {
        text,
        at: 0,
        line: 1,
        column: 1,
        depth: 0,
    };
    r.skip_space()?;
    let close = match r.peek() {
        Some('[') if collection => Some(']'),
        Some('(') if collection => Some(')'),
        _ => None,
    };
    if let Some(close) = close {
        r.bump();
        r.depth = 1;
        loop {
            r.skip_space()?;
            match r.peek() {
                None => return Err(r.error(&format!("expected {close} to close the history"))),
                Some(c) if c == close => {
                    r.bump();
                    break;
                }
                Some(_) => {
                    let (line, column, edn) = r.positioned()?;
                    each(line, column, edn)?;
                }
            }
        }
        r.skip_space()?;
        if r.peek().is_some() {
            return Err(r.error("expected the end of the file after the history's collection"));
        }
        return Ok(());
    }
    while r.peek().is_some() {
        let (line, column, edn) = r.positioned()?;
        each(line, column, edn)?;
        r.skip_space()?;
    }
    Ok(())
}

impl Reader<'_> {
    fn error(&self, message: &str) -> HistoryError {
        HistoryError {
            line: self.line,
            column: self.column,
            message: crate::shown::shown(message),
        }
    }

    fn peek(&self) -> Option<char> {
        // ASCII without decoding: almost every byte of a history.
        match *self.text.as_bytes().get(self.at)? {
            b if b < 0x80 => Some(char::from(b)),
            _ => self.text[self.at..].chars().next(),
        }
    }

    fn peek2(&self) -> Option<char> {
        self.text[self.at..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn skip_space(&mut self) -> Result<(), HistoryError> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() || c == ',' => {
                    self.bump();
                }
                Some(';') => while !matches!(self.bump(), None | Some('\n')) {},
                Some('#') if self.peek2() == Some('_') => {
                    self.bump();
                    self.bump();
                    self.skip_space()?;
                    self.value()?;
                }
                _ => return Ok(()),
            }
        }
    }

    fn positioned(&mut self) -> Result<(usize, usize, Edn), HistoryError> {
        let (line, column) = (self.line, self.column);
        Ok((line, column, self.value()?))
    }

    fn value(&mut self) -> Result<Edn, HistoryError> {
        let Some(c) = self.peek() else {
            return Err(self.error("expected a value, found the end of the file"));
        };
        match c {
            '(' | '[' | '{' => {
                self.bump();
                self.nested(c)
            }
            '#' => self.dispatch(),
            '"' => self.string(),
            '\\' => self.character(),
            ':' => {
                self.bump();
                let name = self.token();
                if name.is_empty() {
                    return Err(self.error("expected a keyword's name after ':'"));
                }
                Ok(Edn::Keyword(name))
            }
            ')' | ']' | '}' => Err(self.error(&format!("unexpected '{c}'"))),
            _ => self.atom(),
        }
    }

    fn nested(&mut self, open: char) -> Result<Edn, HistoryError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        self.depth += 1;
        let close = match open {
            '(' => ')',
            '[' => ']',
            _ => '}',
        };
        let items = self.items(close)?;
        self.depth -= 1;
        Ok(match open {
            '(' => Edn::List(items),
            '[' => Edn::Vector(items),
            '{' => self.map(items)?,
            _ => Edn::Set(items),
        })
    }

    fn items(&mut self, close: char) -> Result<Vec<Edn>, HistoryError> {
        let mut items = Vec::new();
        loop {
            self.skip_space()?;
            match self.peek() {
                None => {
                    return Err(
                        self.error(&format!("expected '{close}', found the end of the file"))
                    )
                }
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(_) => items.push(self.value()?),
            }
        }
    }

    fn map(&self, items: Vec<Edn>) -> Result<Edn, HistoryError> {
        if items.len() % 2 != 0 {
            return Err(self.error("a map needs an even number of forms (key value pairs)"));
        }
        let mut entries = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            entries.push((k, v));
        }
        Ok(Edn::Map(entries))
    }

    fn dispatch(&mut self) -> Result<Edn, HistoryError> {
        self.bump();
        match self.peek() {
            Some('{') => {
                self.bump();
                if self.depth >= MAX_DEPTH {
                    return Err(self.error("nesting too deep"));
                }
                self.depth += 1;
                let items = self.items('}')?;
                self.depth -= 1;
                Ok(Edn::Set(items))
            }
            Some('#') => {
                self.bump();
                Ok(Edn::Symbol(format!("##{}", self.token())))
            }
            _ => {
                let tag = self.token();
                if tag.is_empty() {
                    return Err(self.error("expected a tag, a set or a discard after '#'"));
                }
                self.skip_space()?;
                if self.depth >= MAX_DEPTH {
                    return Err(self.error("nesting too deep"));
                }
                self.depth += 1;
                let inner = self.value()?;
                self.depth -= 1;
                Ok(Edn::Tagged(tag, Box::new(inner)))
            }
        }
    }

    /// The characters of a symbol, keyword or number.
    fn token(&mut self) -> String {
        let start = self.at;
        while let Some(c) = self.peek() {
            let delimiter = matches!(c, ',' | '(' | ')' | '[' | ']' | '{' | '}' | '"' | ';');
            if c.is_whitespace() || delimiter {
                break;
            }
            self.bump();
        }
        self.text[start..self.at].to_string()
    }

    fn atom(&mut self) -> Result<Edn, HistoryError> {
        let (line, column) = (self.line, self.column);
        let tok = self.token();
        let starts_number = |t: &str| {
            let t = t.strip_prefix(['-', '+']).unwrap_or(t);
            t.starts_with(|c: char| c.is_ascii_digit())
        };
        Ok(match tok.as_str() {
            "nil" => Edn::Nil,
            "true" => Edn::Bool(true),
            "false" => Edn::Bool(false),
            t if starts_number(t) => number(t).ok_or_else(|| HistoryError {
                line,
                column,
                message: crate::shown::shown(&format!("expected a number, found {t:?}")),
            })?,
            "" => return Err(self.error("expected a value")),
            t => Edn::Symbol(t.to_string()),
        })
    }

    fn string(&mut self) -> Result<Edn, HistoryError> {
        self.bump();
        let mut s = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(
                    self.error("expected '\"' to close the string, found the end of the file")
                );
            };
            match c {
                '"' => return Ok(Edn::Str(s)),
                '\\' => {
                    let e = self
                        .bump()
                        .ok_or_else(|| self.error("unfinished escape in a string"))?;
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        '"' | '\\' | '/' => e,
                        'u' => self.unicode()?,
                        _ => return Err(self.error(&format!("unknown escape \\{e} in a string"))),
                    });
                }
                _ => s.push(c),
            }
        }
    }

    fn unicode(&mut self) -> Result<char, HistoryError> {
        let mut code = 0u32;
        for _ in 0..4 {
            let d = self.bump().and_then(|c| c.to_digit(16));
            code = code * 16 + d.ok_or_else(|| self.error("expected four hex digits after \\u"))?;
        }
        char::from_u32(code).ok_or_else(|| self.error("\\u names no character"))
    }

    fn character(&mut self) -> Result<Edn, HistoryError> {
        self.bump();
        let first = self
            .bump()
            .ok_or_else(|| self.error("expected a character after '\\'"))?;
        let rest = self.token();
        if rest.is_empty() {
            return Ok(Edn::Char(first));
        }
        let name = format!("{first}{rest}");
        let c = match name.as_str() {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            "backspace" => '\u{8}',
            "formfeed" => '\u{c}',
            n if n.starts_with('u') && n.len() == 5 => u32::from_str_radix(&n[1..], 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| self.error("expected \\uXXXX"))?,
            _ => return Err(self.error(&format!("unknown character \\{name}"))),
        };
        Ok(Edn::Char(c))
    }
}

fn number(t: &str) -> Option<Edn> {
    if let Ok(i) = t.parse::<i64>() {
        return Some(Edn::Int(i));
    }
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    let ok = digits
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+' | '/' | 'N' | 'M'));
    if !ok {
        return None;
    }
    // `1N` is an integer: read it as one when it fits.
    if let Some(i) = t.strip_suffix('N').and_then(|x| x.parse::<i64>().ok()) {
        return Some(Edn::Int(i));
    }
    Some(Edn::Number(t.to_string()))
}

fn write_seq(f: &mut fmt::Formatter<'_>, open: &str, items: &[Edn], close: &str) -> fmt::Result {
    f.write_str(open)?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        write!(f, "{item}")?;
    }
    f.write_str(close)
}

/// EDN text. Maps and sets print their entries sorted by text, so that equal values print
/// equal (values are interned by this text).
impl fmt::Display for Edn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(i) => write!(f, "{i}"),
            Edn::Number(n) | Edn::Symbol(n) => f.write_str(n),
            Edn::Str(s) => {
                f.write_str("\"")?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        '\t' => f.write_str("\\t")?,
                        '\r' => f.write_str("\\r")?,
                        c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")
            }
            Edn::Char(c) => write!(f, "\\{c}"),
            Edn::Keyword(k) => write!(f, ":{k}"),
            Edn::List(x) => write_seq(f, "(", x, ")"),
            Edn::Vector(x) => write_seq(f, "[", x, "]"),
            Edn::Set(x) => {
                let mut texts: Vec<String> = x.iter().map(|e| e.to_string()).collect();
                texts.sort();
                write!(f, "#{{{}}}", texts.join(" "))
            }
            Edn::Map(entries) => {
                let mut texts: Vec<String> =
                    entries.iter().map(|(k, v)| format!("{k} {v}")).collect();
                texts.sort();
                write!(f, "{{{}}}", texts.join(", "))
            }
            Edn::Tagged(tag, v) => write!(f, "#{tag} {v}"),
        }
    }
}

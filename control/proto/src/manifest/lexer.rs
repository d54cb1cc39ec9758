//! Manifest text → a flat list of tokens, each with its line, column and line indentation.
//!
//! Owns the shell-like word rules: double-quoted strings (with `\"` and `\\`), single-quoted
//! literal strings, backslash escapes outside quotes, adjacent parts joining into one word
//! (`--name="a b"` is the word `--name=a b`), `#` comments that start where a word could start,
//! and the unquoted delimiters `{`, `}` and `;`. Every line ends with an [`TokenKind::Eol`].
//!
//! A line with a lexical error keeps the tokens before the bad word and ends with
//! [`TokenKind::Broken`], so the parser can skip that statement without reporting it twice.
//! Never panics: only iterators over `char`s, no indexing.

use super::error::{Located, ManifestErrorKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TokenKind {
    /// A word after quote removal and escape processing.
    Word(String),
    /// An unquoted `{`.
    Open,
    /// An unquoted `}`.
    Close,
    /// An unquoted `;`.
    Semi,
    /// The rest of the line could not be read (the error is already reported).
    Broken,
    /// End of a line.
    Eol,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub kind: TokenKind,
    /// 1-based line.
    pub line: u32,
    /// 1-based character column where the token starts.
    pub col: u32,
    /// Whether this is the first token of its line (indentation matters only for those).
    pub first: bool,
}

/// The tokens of a whole file and, per line, its leading whitespace.
#[derive(Debug, Default)]
pub(super) struct Lexed {
    pub tokens: Vec<Token>,
    /// `indents[line - 1]` is the leading whitespace of that line.
    pub indents: Vec<String>,
}

impl Lexed {
    /// The leading whitespace of `line` (empty for a line that does not exist).
    pub fn indent(&self, line: u32) -> &str {
        usize::try_from(line)
            .ok()
            .and_then(|l| l.checked_sub(1))
            .and_then(|i| self.indents.get(i))
            .map_or("", String::as_str)
    }
}

/// Converts a 0-based count to a 1-based `u32` position, saturating on absurd inputs.
pub(super) fn one_based(index: usize) -> u32 {
    u32::try_from(index).map_or(u32::MAX, |i| i.saturating_add(1))
}

/// Splits `text` into tokens; lexical errors go to `errors`.
pub(super) fn lex(text: &str, errors: &mut Vec<Located>) -> Lexed {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lexed = Lexed::default();
    for (index, raw) in text.split('\n').enumerate() {
        let line = one_based(index);
        let content = raw.strip_suffix('\r').unwrap_or(raw);
        let indent: String = content.chars().take_while(|c| c.is_whitespace()).collect();
        lexed.indents.push(indent);
        lex_line(content, line, &mut lexed.tokens, errors);
    }
    lexed
}

/// The word being built and where it started.
struct Pending {
    text: String,
    col: u32,
}

fn lex_line(content: &str, line: u32, tokens: &mut Vec<Token>, errors: &mut Vec<Located>) {
    let start = tokens.len();
    let mut chars = content.chars().enumerate().peekable();
    let mut word: Option<Pending> = None;
    let push = |tokens: &mut Vec<Token>, kind: TokenKind, col: u32| {
        let first = tokens.len() == start;
        tokens.push(Token {
            kind,
            line,
            col,
            first,
        });
    };
    let flush = |tokens: &mut Vec<Token>, word: &mut Option<Pending>| {
        if let Some(w) = word.take() {
            push(tokens, TokenKind::Word(w.text), w.col);
        }
    };
    while let Some((i, c)) = chars.next() {
        let col = one_based(i);
        match c {
            '#' if word.is_none() => break,
            c if c.is_whitespace() => flush(tokens, &mut word),
            '{' | '}' | ';' => {
                flush(tokens, &mut word);
                let kind = match c {
                    '{' => TokenKind::Open,
                    '}' => TokenKind::Close,
                    _ => TokenKind::Semi,
                };
                push(tokens, kind, col);
            }
            '"' | '\'' => {
                let w = word.get_or_insert_with(|| Pending {
                    text: String::new(),
                    col,
                });
                let mut closed = false;
                while let Some((_, q)) = chars.next() {
                    if q == c {
                        closed = true;
                        break;
                    }
                    if c == '"' && q == '\\' {
                        match chars.peek() {
                            Some(&(_, e)) if e == '"' || e == '\\' => {
                                w.text.push(e);
                                chars.next();
                            }
                            _ => w.text.push('\\'),
                        }
                    } else {
                        w.text.push(q);
                    }
                }
                if !closed {
                    errors.push(Located::new(
                        line,
                        col,
                        ManifestErrorKind::UnterminatedQuote { quote: c },
                    ));
                    push(tokens, TokenKind::Broken, col);
                    word = None;
                    break;
                }
            }
            '\\' => {
                if let Some((_, e)) = chars.next() {
                    word.get_or_insert_with(|| Pending {
                        text: String::new(),
                        col,
                    })
                    .text
                    .push(e);
                } else {
                    errors.push(Located::new(
                        line,
                        col,
                        ManifestErrorKind::DanglingBackslash,
                    ));
                    push(tokens, TokenKind::Broken, col);
                    word = None;
                    break;
                }
            }
            c => word
                .get_or_insert_with(|| Pending {
                    text: String::new(),
                    col,
                })
                .text
                .push(c),
        }
    }
    flush(tokens, &mut word);
    let col = one_based(content.chars().count());
    push(tokens, TokenKind::Eol, col);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        let mut errors = Vec::new();
        let lexed = lex(line, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        lexed
            .tokens
            .into_iter()
            .filter_map(|t| match t.kind {
                TokenKind::Word(w) => Some(w),
                TokenKind::Open => Some("<{>".into()),
                TokenKind::Close => Some("<}>".into()),
                TokenKind::Semi => Some("<;>".into()),
                TokenKind::Broken => Some("<broken>".into()),
                TokenKind::Eol => None,
            })
            .collect()
    }

    fn first_error(line: &str) -> Located {
        let mut errors = Vec::new();
        let _ = lex(line, &mut errors);
        errors.into_iter().next().expect("an error")
    }

    #[test]
    fn splits_on_whitespace_and_delimiters() {
        assert_eq!(words("  exec   /bin/x\t--a"), ["exec", "/bin/x", "--a"]);
        assert_eq!(
            words("health{check tcp;interval 2s}"),
            [
                "health", "<{>", "check", "tcp", "<;>", "interval", "2s", "<}>"
            ]
        );
    }

    #[test]
    fn quotes_join_with_adjacent_parts() {
        assert_eq!(
            words(r#"args --name="a b" 'c d'e"#),
            ["args", "--name=a b", "c de"]
        );
        assert_eq!(words(r#"x "" ''"#), ["x", "", ""]);
        assert_eq!(words(r#"x "{;}#""#), ["x", "{;}#"]);
    }

    #[test]
    fn escapes() {
        assert_eq!(words(r#"x "a\"b\\c\n""#), ["x", r#"a"b\c\n"#]);
        assert_eq!(words(r"x 'a\b'"), ["x", r"a\b"]);
        assert_eq!(words(r"x a\ b \{ \#"), ["x", "a b", "{", "#"]);
    }

    #[test]
    fn comments_start_only_where_a_word_could() {
        assert_eq!(words("exec /x # the binary"), ["exec", "/x"]);
        assert_eq!(words("# whole line"), Vec::<String>::new());
        assert_eq!(
            words("args --color=#fff a#b"),
            ["args", "--color=#fff", "a#b"]
        );
        assert_eq!(words("health {# comment"), ["health", "<{>"]);
        assert_eq!(words(r##"x "#not""##), ["x", "#not"]);
    }

    #[test]
    fn columns_are_characters_and_lines_are_counted() {
        let mut errors = Vec::new();
        let lexed = lex("é é x\r\n\n  y 'z", &mut errors);
        let pos: Vec<_> = lexed
            .tokens
            .iter()
            .map(|t| (t.line, t.col, t.first))
            .collect();
        assert_eq!(
            pos,
            [
                (1, 1, true),
                (1, 3, false),
                (1, 5, false),
                (1, 6, false),
                (2, 1, true),
                (3, 3, true),
                (3, 5, false),
                (3, 7, false)
            ]
        );
        assert_eq!(lexed.indent(3), "  ");
        assert_eq!(lexed.indent(99), "");
        assert_eq!(
            errors,
            [Located::new(
                3,
                5,
                ManifestErrorKind::UnterminatedQuote { quote: '\'' }
            )]
        );
    }

    #[test]
    fn unterminated_quote_and_dangling_backslash() {
        assert_eq!(
            first_error(r#"exec "abc"#),
            Located::new(1, 6, ManifestErrorKind::UnterminatedQuote { quote: '"' })
        );
        assert_eq!(
            first_error(r#"exec x"a\""#),
            Located::new(1, 7, ManifestErrorKind::UnterminatedQuote { quote: '"' })
        );
        assert_eq!(
            first_error("exec a\\"),
            Located::new(1, 7, ManifestErrorKind::DanglingBackslash)
        );
        let mut errors = Vec::new();
        let lexed = lex("exec \"abc\nport 1", &mut errors);
        assert_eq!(
            lexed.tokens.get(1).map(|t| &t.kind),
            Some(&TokenKind::Broken)
        );
        assert_eq!(lexed.tokens.len(), 6);
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        assert_eq!(words("\u{feff}app x"), ["app", "x"]);
    }
}

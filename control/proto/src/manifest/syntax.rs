//! Tokens → [`RawManifest`]: a tree of statements (`key value… [block]`) with positions, knowing
//! nothing about which keys exist.
//!
//! Owns block structure. A statement ends at a newline, `;` or `}`. Its block is either braces
//! (`key {` on the same line, or `{` first on the next line) or indentation: a statement with no
//! value, ending its line, followed by lines indented deeper than its own line, owns those lines
//! until one is not deeper. Indentation is compared as text (a deeper line's leading whitespace
//! starts with the shallower one's), so a tab never silently equals some number of spaces.
//!
//! Unbalanced braces are reported here; statements with a lexical error are marked `broken`
//! so the validator skips them. Recursion depth is bounded by [`MAX_DEPTH`].

use super::error::{Located, ManifestErrorKind};
use super::lexer::{Lexed, Token, TokenKind};

/// Deepest block nesting accepted (the language needs 3: app → block → nothing deeper).
const MAX_DEPTH: usize = 32;

/// A word with the position of its first character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Word {
    pub text: String,
    pub line: u32,
    pub col: u32,
}

/// `key value… [block]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stmt {
    pub key: Word,
    pub values: Vec<Word>,
    pub block: Option<Block>,
    /// A lexical error cut this statement short (already reported).
    pub broken: bool,
}

/// The statements of a braced or indented block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Block {
    /// Position of the `{`, or of the first statement of an indented block.
    pub line: u32,
    pub col: u32,
    pub stmts: Vec<Stmt>,
}

/// A whole file as a flat list of top-level statements (`app` statements among them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawManifest {
    pub stmts: Vec<Stmt>,
}

/// What ends the body being read.
#[derive(Clone, Copy)]
enum End<'a> {
    /// The end of the file (top level).
    Eof,
    /// A `}`.
    Brace,
    /// A line whose indentation is not deeper than this.
    Indent(&'a str),
}

/// How a line's indentation relates to its block's.
#[derive(Debug, PartialEq, Eq)]
enum Depth {
    Deeper,
    NotDeeper,
    Inconsistent,
}

fn depth(line: &str, parent: &str) -> Depth {
    if line.len() > parent.len() && line.starts_with(parent) {
        Depth::Deeper
    } else if parent.starts_with(line) {
        Depth::NotDeeper
    } else {
        Depth::Inconsistent
    }
}

/// Builds the statement tree; structural errors go to `errors`.
pub(super) fn build(lexed: &Lexed, errors: &mut Vec<Located>) -> RawManifest {
    let mut builder = Builder {
        lexed,
        pos: 0,
        errors,
        depth: 0,
    };
    RawManifest {
        stmts: builder.body(End::Eof),
    }
}

struct Builder<'a, 'e> {
    lexed: &'a Lexed,
    pos: usize,
    errors: &'e mut Vec<Located>,
    depth: usize,
}

impl<'a> Builder<'a, '_> {
    fn peek(&self) -> Option<&'a Token> {
        self.lexed.tokens.get(self.pos)
    }

    fn bump(&mut self) {
        self.pos = self.pos.saturating_add(1);
    }

    fn error(&mut self, line: u32, col: u32, kind: ManifestErrorKind) {
        self.errors.push(Located::new(line, col, kind));
    }

    /// Skips the rest of the current line.
    fn skip_line(&mut self) {
        while let Some(t) = self.peek() {
            self.bump();
            if t.kind == TokenKind::Eol {
                break;
            }
        }
    }

    fn body(&mut self, end: End<'_>) -> Vec<Stmt> {
        let mut stmts = Vec::new();
        while let Some(t) = self.peek() {
            match (&t.kind, end) {
                (TokenKind::Eol | TokenKind::Semi, _) => self.bump(),
                (TokenKind::Close, End::Eof) => {
                    self.error(t.line, t.col, ManifestErrorKind::UnexpectedCloseBrace);
                    self.bump();
                }
                (TokenKind::Close, _) => break,
                (kind, _) => {
                    if let (End::Indent(parent), true) = (end, t.first) {
                        match depth(self.lexed.indent(t.line), parent) {
                            Depth::Deeper => {}
                            Depth::NotDeeper => break,
                            Depth::Inconsistent => {
                                self.error(t.line, 1, ManifestErrorKind::InconsistentIndentation);
                                self.skip_line();
                                continue;
                            }
                        }
                    }
                    match kind {
                        TokenKind::Word(_) => {
                            if let Some(stmt) = self.stmt() {
                                stmts.push(stmt);
                            }
                        }
                        TokenKind::Open => {
                            self.error(t.line, t.col, ManifestErrorKind::UnexpectedOpenBrace);
                            let _ = self.braced("{", t);
                        }
                        _ => self.bump(),
                    }
                }
            }
        }
        stmts
    }

    /// Reads one statement starting at a word.
    fn stmt(&mut self) -> Option<Stmt> {
        let key_token = self.peek()?;
        let TokenKind::Word(key_text) = &key_token.kind else {
            return None;
        };
        let key = Word {
            text: key_text.clone(),
            line: key_token.line,
            col: key_token.col,
        };
        self.bump();
        let mut stmt = Stmt {
            key,
            values: Vec::new(),
            block: None,
            broken: false,
        };
        while let Some(t) = self.peek() {
            match &t.kind {
                TokenKind::Word(text) => {
                    stmt.values.push(Word {
                        text: text.clone(),
                        line: t.line,
                        col: t.col,
                    });
                    self.bump();
                }
                TokenKind::Broken => {
                    stmt.broken = true;
                    self.bump();
                }
                TokenKind::Open => {
                    stmt.block = Some(self.braced(&stmt.key.text, t));
                    return Some(stmt);
                }
                TokenKind::Eol => break,
                TokenKind::Semi | TokenKind::Close => return Some(stmt),
            }
        }
        // The statement ended its line: a `{` opening the next line, or deeper lines, are its block.
        let mut ahead = self.pos;
        while let Some(t) = self.lexed.tokens.get(ahead) {
            if t.kind != TokenKind::Eol {
                break;
            }
            ahead = ahead.saturating_add(1);
        }
        let Some(next) = self.lexed.tokens.get(ahead) else {
            return Some(stmt);
        };
        if next.kind == TokenKind::Open && next.first {
            self.pos = ahead;
            stmt.block = Some(self.braced(&stmt.key.text, next));
        } else if stmt.values.is_empty()
            && !stmt.broken
            && next.first
            && next.kind != TokenKind::Close
        {
            match depth(
                self.lexed.indent(next.line),
                self.lexed.indent(stmt.key.line),
            ) {
                Depth::Deeper => {
                    self.pos = ahead;
                    let parent = self.lexed.indent(stmt.key.line);
                    let stmts = self.nested(End::Indent(parent));
                    stmt.block = Some(Block {
                        line: next.line,
                        col: next.col,
                        stmts,
                    });
                }
                Depth::Inconsistent => {
                    self.error(next.line, 1, ManifestErrorKind::InconsistentIndentation)
                }
                Depth::NotDeeper => {}
            }
        }
        Some(stmt)
    }

    /// Reads a `{ … }` block whose `{` is `open` (the current token).
    fn braced(&mut self, name: &str, open: &Token) -> Block {
        self.bump();
        let stmts = self.nested(End::Brace);
        match self.peek() {
            Some(t) if t.kind == TokenKind::Close => self.bump(),
            _ => self.error(
                open.line,
                open.col,
                ManifestErrorKind::UnterminatedBlock {
                    block: name.to_owned(),
                    opened_at_line: open.line,
                },
            ),
        }
        Block {
            line: open.line,
            col: open.col,
            stmts,
        }
    }

    /// A block body one level deeper; past [`MAX_DEPTH`] the body is skipped.
    fn nested(&mut self, end: End<'_>) -> Vec<Stmt> {
        if self.depth >= MAX_DEPTH {
            // Too deep to be a manifest: skip to the matching end without recursing further.
            let mut open = 0_usize;
            while let Some(t) = self.peek() {
                match t.kind {
                    TokenKind::Open => open = open.saturating_add(1),
                    TokenKind::Close if open == 0 => break,
                    TokenKind::Close => open -= 1,
                    _ => {}
                }
                self.bump();
            }
            return Vec::new();
        }
        self.depth += 1;
        let stmts = self.body(end);
        self.depth -= 1;
        stmts
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::lex;
    use super::*;

    /// A compact rendering: `key v v {…}` per statement, `!` for broken ones.
    fn shape(text: &str) -> (String, Vec<Located>) {
        fn render(stmts: &[Stmt], out: &mut String) {
            for (i, s) in stmts.iter().enumerate() {
                if i > 0 {
                    out.push_str("; ");
                }
                out.push_str(&s.key.text);
                for v in &s.values {
                    out.push(' ');
                    out.push_str(&v.text);
                }
                if s.broken {
                    out.push('!');
                }
                if let Some(b) = &s.block {
                    out.push_str(" {");
                    render(&b.stmts, out);
                    out.push('}');
                }
            }
        }
        let mut errors = Vec::new();
        let lexed = lex(text, &mut errors);
        let raw = build(&lexed, &mut errors);
        let mut out = String::new();
        render(&raw.stmts, &mut out);
        (out, errors)
    }

    fn ok(text: &str) -> String {
        let (out, errors) = shape(text);
        assert!(errors.is_empty(), "{errors:?}");
        out
    }

    #[test]
    fn brace_blocks_same_line_next_line_and_one_line() {
        assert_eq!(ok("app a {\n exec x\n}"), "app a {exec x}");
        assert_eq!(ok("app a\n{\n exec x\n}"), "app a {exec x}");
        assert_eq!(ok("app a\n\n# c\n{ exec x }"), "app a {exec x}");
        assert_eq!(
            ok("health { check GET / 200; interval 2s }"),
            "health {check GET / 200; interval 2s}"
        );
        assert_eq!(ok("a { b { c } }; d"), "a {b {c}}; d");
    }

    #[test]
    fn indentation_blocks() {
        assert_eq!(
            ok("health\n  check tcp\n  retries 2\nport 1"),
            "health {check tcp; retries 2}; port 1"
        );
        assert_eq!(ok("  env\n    A 1\n\n    B 2\n  x"), "env {A 1; B 2}; x");
        assert_eq!(
            ok("app a\n  env\n    A 1\n  port 2"),
            "app a; env {A 1}; port 2"
        );
        // A statement with values never opens an indentation block.
        assert_eq!(ok("exec x\n  port 1"), "exec x; port 1");
        // Not deeper: siblings.
        assert_eq!(ok("health\ncheck tcp"), "health; check tcp");
        // Indentation inside braces, closed by the brace.
        assert_eq!(
            ok("app a {\n  health\n    check tcp\n}"),
            "app a {health {check tcp}}"
        );
        assert_eq!(ok("a {\n  b\n    c 1 }\nd"), "a {b {c 1}}; d");
    }

    #[test]
    fn mixed_tabs_and_spaces_are_inconsistent() {
        // Relative to an unindented parent, any indentation is deeper.
        assert_eq!(ok("env\n\tA 1\n  B 2\nx"), "env {A 1; B 2}; x");
        let (out, errors) = shape("a\n  b\n    c 1\n\td\n  e");
        assert_eq!(out, "a {b {c 1}; e}");
        assert_eq!(
            errors,
            [Located::new(
                4,
                1,
                ManifestErrorKind::InconsistentIndentation
            )]
        );
        // A block key followed by a line that is neither deeper nor shallower.
        let (out, errors) = shape("a\n  b\n\tc");
        assert_eq!(out, "a {b; c}");
        assert_eq!(
            errors,
            [Located::new(
                3,
                1,
                ManifestErrorKind::InconsistentIndentation
            )]
        );
    }

    #[test]
    fn brace_errors() {
        let (out, errors) = shape("a {\n b 1\n");
        assert_eq!(out, "a {b 1}");
        assert_eq!(
            errors,
            [Located::new(
                1,
                3,
                ManifestErrorKind::UnterminatedBlock {
                    block: "a".into(),
                    opened_at_line: 1
                }
            )]
        );
        let (out, errors) = shape("x 1\n}\ny");
        assert_eq!(out, "x 1; y");
        assert_eq!(
            errors,
            [Located::new(2, 1, ManifestErrorKind::UnexpectedCloseBrace)]
        );
        let (out, errors) = shape("x\n{ a }\n{ b }");
        assert_eq!(out, "x {a}");
        assert_eq!(
            errors,
            [Located::new(3, 1, ManifestErrorKind::UnexpectedOpenBrace)]
        );
    }

    #[test]
    fn broken_statements_are_marked() {
        let (out, errors) = shape("a {\n exec \"x\n port 1\n}");
        assert_eq!(out, "a {exec!; port 1}");
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let text = format!("{}{}", "a {".repeat(100_000), "}".repeat(100_000));
        let (_, errors) = shape(&text);
        assert!(errors.is_empty(), "{:?}", errors.first());
        let text = "a {".repeat(100_000);
        let (_, errors) = shape(&text);
        assert_eq!(errors.len(), MAX_DEPTH + 1);
    }
}

//! Splits a master file (RFC 1035 section 5.1) into entries: the tokens of one logical line,
//! with parentheses joining physical lines, `;` comments dropped, quoted strings kept whole.
//!
//! Tokens stay raw slices of the file (escapes undecoded): what an escape means depends on the
//! field it is in (a name, a character-string, an SVCB value), so the field decodes it.

/// One token: a word or a quoted string, with where it starts (1-based line and column).
#[derive(Debug, Clone, Copy)]
pub struct Token<'a> {
    /// The bytes between the quotes for a quoted string, else the word as written.
    pub text: &'a [u8],
    pub quoted: bool,
    pub line: usize,
    pub column: usize,
}

/// A syntax error of the file itself (an unbalanced parenthesis or quote).
#[derive(Debug)]
pub struct LexError {
    pub line: usize,
    pub column: usize,
    pub message: &'static str,
}

/// Hands out one entry at a time; see the module documentation.
pub struct Lexer<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
    line_start: usize,
    /// Where the open parenthesis is, while one is open: errors point at it.
    open_paren: Option<(usize, usize)>,
    /// The text is a piece of a file that goes on: an entry that reaches its end is not
    /// finished, and the reading stops before it (see [`Lexer::resume_point`]).
    partial: bool,
    /// Where the unfinished entry starts (offset and line), once one was met.
    starved: Option<(usize, usize)>,
}

/// Why lexing an entry stopped early.
enum Stop {
    Error(LexError),
    /// The end of a partial text, inside an entry.
    Starved,
}

impl From<LexError> for Stop {
    fn from(error: LexError) -> Self {
        Stop::Error(error)
    }
}

impl<'a> Lexer<'a> {
    pub fn new(text: &'a [u8]) -> Self {
        Self::piece(text, 1, false)
    }

    /// Reads `text`, which starts at a line start of a file, at line `line`; `partial` says
    /// the file goes on after it.
    pub fn piece(text: &'a [u8], line: usize, partial: bool) -> Self {
        Self {
            text,
            pos: 0,
            line,
            line_start: 0,
            open_paren: None,
            partial,
            starved: None,
        }
    }

    /// How much of a partial text was read (offset) and the line the rest starts at: the
    /// start of the unfinished entry, or the end.
    pub fn resume_point(&self) -> (usize, usize) {
        self.starved.unwrap_or((self.pos, self.line))
    }

    fn column(&self, pos: usize) -> usize {
        pos - self.line_start + 1
    }

    fn newline(&mut self) {
        self.pos += 1;
        self.line += 1;
        self.line_start = self.pos;
    }

    /// Fills `tokens` with the next entry's tokens. Returns false at the end of the file.
    /// After an error the rest of the physical line is skipped, so the next call goes on.
    pub fn next_entry(&mut self, tokens: &mut Vec<Token<'a>>) -> Result<bool, LexError> {
        if self.starved.is_some() {
            return Ok(false);
        }
        let start = (self.pos, self.line);
        match self.entry(tokens) {
            Ok(more) => Ok(more),
            Err(Stop::Error(error)) => Err(error),
            Err(Stop::Starved) => {
                tokens.clear();
                self.starved = Some(start);
                Ok(false)
            }
        }
    }

    fn entry(&mut self, tokens: &mut Vec<Token<'a>>) -> Result<bool, Stop> {
        tokens.clear();
        loop {
            let Some(&byte) = self.text.get(self.pos) else {
                return self.at_end(tokens);
            };
            match byte {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b';' => {
                    while self.text.get(self.pos).is_some_and(|&b| b != b'\n') {
                        self.pos += 1;
                    }
                    if self.partial && self.pos >= self.text.len() {
                        return Err(Stop::Starved);
                    }
                }
                b'\n' => {
                    self.newline();
                    if self.open_paren.is_none() && !tokens.is_empty() {
                        return Ok(true);
                    }
                }
                b'(' => {
                    if self.open_paren.is_some() {
                        return Err(self.fail("nested parentheses").into());
                    }
                    self.open_paren = Some((self.line, self.column(self.pos)));
                    self.pos += 1;
                }
                b')' => {
                    if self.open_paren.take().is_none() {
                        return Err(self.fail("unbalanced parenthesis: ')' without '('").into());
                    }
                    self.pos += 1;
                }
                b'"' => tokens.push(self.quoted()?),
                _ => tokens.push(self.word()?),
            }
        }
    }

    /// The end of the text: whether an entry was read, or why none can be.
    fn at_end(&mut self, tokens: &[Token<'a>]) -> Result<bool, Stop> {
        if self.partial {
            return Err(Stop::Starved);
        }
        if let Some((line, column)) = self.open_paren.take() {
            return Err(Stop::Error(LexError {
                line,
                column,
                message: "unbalanced parenthesis: '(' is never closed",
            }));
        }
        Ok(!tokens.is_empty())
    }

    /// The quoted string at the opening quote under `pos`.
    fn quoted(&mut self) -> Result<Token<'a>, Stop> {
        let (line, column) = (self.line, self.column(self.pos));
        self.pos += 1;
        let start = self.pos;
        self.skip_quoted(line, column)?;
        Ok(Token {
            text: &self.text[start..self.pos - 1],
            quoted: true,
            line,
            column,
        })
    }

    /// The word starting at `pos`.
    fn word(&mut self) -> Result<Token<'a>, Stop> {
        let (line, column, start) = (self.line, self.column(self.pos), self.pos);
        self.skip_word(line, column)?;
        Ok(Token {
            text: &self.text[start..self.pos],
            quoted: false,
            line,
            column,
        })
    }

    /// Past the closing quote; newlines inside are part of the string.
    fn skip_quoted(&mut self, line: usize, column: usize) -> Result<(), Stop> {
        loop {
            match self.text.get(self.pos) {
                None if self.partial => return Err(Stop::Starved),
                None => {
                    return Err(Stop::Error(LexError {
                        line,
                        column,
                        message: "unterminated quoted string",
                    }));
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => self.pos += 2,
                Some(b'\n') => self.newline(),
                Some(_) => self.pos += 1,
            }
        }
    }

    /// To the first unescaped delimiter. A quote inside a word opens a quoted part that belongs
    /// to the same token (`alpn="h2,h3"` in SVCB parameters).
    fn skip_word(&mut self, line: usize, column: usize) -> Result<(), Stop> {
        loop {
            let Some(&byte) = self.text.get(self.pos) else {
                // The word may go on in the next piece of the file.
                return if self.partial {
                    Err(Stop::Starved)
                } else {
                    Ok(())
                };
            };
            match byte {
                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' => break,
                b'\\' => self.pos = (self.pos + 2).min(self.text.len()),
                b'"' => {
                    self.pos += 1;
                    self.skip_quoted(line, column)?;
                }
                _ => self.pos += 1,
            }
        }
        Ok(())
    }

    /// An error at the current position; the rest of the line is skipped.
    fn fail(&mut self, message: &'static str) -> LexError {
        let error = LexError {
            line: self.line,
            column: self.column(self.pos),
            message,
        };
        self.skip_line();
        error
    }

    /// Drops the rest of the physical line and any open parenthesis (error recovery).
    pub fn skip_line(&mut self) {
        self.open_paren = None;
        while let Some(&byte) = self.text.get(self.pos) {
            if byte == b'\n' {
                self.newline();
                return;
            }
            self.pos += 1;
        }
    }
}

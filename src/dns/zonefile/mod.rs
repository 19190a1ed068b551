//! The master file reader (RFC 1035 section 5, RFC 3597, RFC 2308 `$TTL`, BIND's `$GENERATE`):
//! presentation text in, records in wire form out, one at a time, to a sink that stores them.
//! It knows nothing of serving, geo or the zone index.
//!
//! Accepts what NSD 4.6 and Knot 3.2 accept: every type in [`types::TYPES`], the generic
//! `TYPEnnn`/`CLASSnnn`/`\# length hex` syntax for any type, `\X` and decimal `\DDD` escapes
//! anywhere, any octet in a label, `@` and relative names wherever a name stands, TTL units,
//! `$ORIGIN`, `$TTL`, `$INCLUDE file [origin]`, `$GENERATE`. A record with no TTL and no `$TTL`
//! before it gets 3600 seconds and a warning, as in NSD and Knot.
//!
//! Every error names `file:line:column`; reading goes on after an error (up to
//! [`MAX_ERRORS`] per file), so one run lists them all.

pub mod encoding;
mod generate;
pub mod lexer;
pub mod name;
pub mod print;
pub mod rdata;
mod special;
mod svcb;
#[cfg(test)]
mod tests;
pub mod types;

use std::path::{Path, PathBuf};

use super::ZoneError;
use lexer::{Lexer, Token};
use rdata::{FieldError, Fields};

/// Errors listed per file at most; past this many the file is not read further.
pub const MAX_ERRORS: usize = 100;
/// `$INCLUDE` nesting at most (loops are refused before that).
const MAX_INCLUDE_DEPTH: usize = 8;
/// How much of a zone file is read at once.
const PIECE: usize = 1 << 20;
/// The TTL of records that have none when no `$TTL` came before (NSD's and Knot's default).
pub const DEFAULT_TTL: u32 = 3600;

/// One record as read, borrowed from the reader's buffers.
#[derive(Debug, Clone, Copy)]
pub struct ReadRecord<'b> {
    /// Wire form, absolute, in the case it was written.
    pub owner: &'b [u8],
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    /// Wire form; names uncompressed.
    pub rdata: &'b [u8],
}

/// Where a record or a problem is: for messages.
#[derive(Debug, Clone, Copy)]
pub struct Place<'p> {
    pub file: &'p Path,
    pub line: usize,
    pub column: usize,
}

/// What a reading found besides the records.
#[derive(Debug, Default)]
pub struct Report {
    pub errors: Vec<ZoneError>,
    pub warnings: Vec<ZoneError>,
}

/// Reads the master file `path` of the zone `origin` (wire form) and hands every record to
/// `sink`, which may refuse one with a message (reported at the record's place).
pub fn read_file(
    path: &Path,
    origin: &[u8],
    sink: &mut dyn FnMut(&ReadRecord<'_>, Place<'_>) -> Result<(), String>,
) -> Report {
    let mut reader = Reader::new(sink);
    reader.include(path, origin.to_vec(), None);
    reader.report
}

/// Reads `text` as if it were the file `path` (tests, policy files, fuzzing).
pub fn read_text(
    text: &[u8],
    path: &Path,
    origin: &[u8],
    sink: &mut dyn FnMut(&ReadRecord<'_>, Place<'_>) -> Result<(), String>,
) -> Report {
    let mut reader = Reader::new(sink);
    reader.stack.push(path.to_path_buf());
    let mut state = FileState {
        origin: origin.to_vec(),
        owner: None,
    };
    reader.read(text, path, &mut state);
    reader.report
}

struct Reader<'s> {
    sink: &'s mut dyn FnMut(&ReadRecord<'_>, Place<'_>) -> Result<(), String>,
    report: Report,
    /// From `$TTL`; it holds across `$INCLUDE`s, as in BIND and Knot.
    default_ttl: Option<u32>,
    warned_default_ttl: bool,
    /// The files being read, outermost first: `$INCLUDE` loops and depth are checked on it.
    stack: Vec<PathBuf>,
    name_buffer: Vec<u8>,
    rdata_buffer: Vec<u8>,
}

/// What one file's reading carries from entry to entry.
struct FileState {
    origin: Vec<u8>,
    /// The last owner name, for entries that start with blanks.
    owner: Option<Vec<u8>>,
}

impl<'s> Reader<'s> {
    fn new(sink: &'s mut dyn FnMut(&ReadRecord<'_>, Place<'_>) -> Result<(), String>) -> Self {
        Reader {
            sink,
            report: Report::default(),
            default_ttl: None,
            warned_default_ttl: false,
            stack: Vec::new(),
            name_buffer: Vec::new(),
            rdata_buffer: Vec::new(),
        }
    }

    fn full(&self) -> bool {
        self.report.errors.len() >= MAX_ERRORS
    }

    fn error(&mut self, place: Place<'_>, message: impl ToString) {
        if self.full() {
            return;
        }
        self.report.errors.push(at(place, message.to_string()));
        if self.full() {
            let message =
                format!("more than {MAX_ERRORS} errors: the rest of the file is not read");
            self.report.errors.push(at(place, message));
        }
    }

    /// Reads the file `path` with `origin`; `from` is where the `$INCLUDE` stands.
    fn include(&mut self, path: &Path, origin: Vec<u8>, from: Option<Place<'_>>) {
        let place = from.unwrap_or(Place {
            file: path,
            line: 0,
            column: 0,
        });
        if self.stack.iter().any(|p| p == path) {
            let message = format!("$INCLUDE loop: {} is already being read", path.display());
            return self.error(place, message);
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            let message = format!("$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep");
            return self.error(place, message);
        }
        let mut file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) => {
                let message = format!("cannot read {}: {e}", path.display());
                return match from {
                    Some(place) => self.error(place, message),
                    None => self.report.errors.push(ZoneError::new(path, None, message)),
                };
            }
        };
        self.stack.push(path.to_path_buf());
        let mut state = FileState {
            origin,
            owner: None,
        };
        if let Err(e) = self.read_file_in_pieces(&mut file, path, &mut state) {
            let message = format!("cannot read {}: {e}", path.display());
            self.report.errors.push(ZoneError::new(path, None, message));
        }
        self.stack.pop();
    }

    /// Reads a file [`PIECE`] bytes at a time, so that a large zone's text is never all in
    /// memory beside the records built from it: an entry cut by the end of a piece is read
    /// again, whole, with the next one.
    fn read_file_in_pieces(
        &mut self,
        file: &mut std::fs::File,
        path: &Path,
        state: &mut FileState,
    ) -> std::io::Result<()> {
        use std::io::Read as _;
        let mut buffer: Vec<u8> = Vec::with_capacity(PIECE);
        let mut line = 1;
        loop {
            let read = file.by_ref().take(PIECE as u64).read_to_end(&mut buffer)?;
            let last = read == 0;
            let mut lexer = Lexer::piece(&buffer, line, !last);
            self.entries(&mut lexer, path, state);
            let (used, next_line) = lexer.resume_point();
            if last || self.full() {
                return Ok(());
            }
            buffer.drain(..used);
            line = next_line;
        }
    }

    fn lex_error(&mut self, path: &Path, e: lexer::LexError) {
        let place = Place {
            file: path,
            line: e.line,
            column: e.column,
        };
        self.error(place, e.message);
    }

    fn read(&mut self, text: &[u8], path: &Path, state: &mut FileState) {
        self.entries(&mut Lexer::new(text), path, state);
    }

    /// Every entry the lexer hands out, until it has no more or the errors are too many.
    fn entries(&mut self, lexer: &mut Lexer<'_>, path: &Path, state: &mut FileState) {
        let mut tokens: Vec<Token<'_>> = Vec::new();
        while !self.full() {
            match lexer.next_entry(&mut tokens) {
                Ok(false) => break,
                Ok(true) => self.entry(&tokens, path, state),
                Err(e) => self.lex_error(path, e),
            }
        }
    }

    fn entry(&mut self, tokens: &[Token<'_>], path: &Path, state: &mut FileState) {
        let first = tokens[0];
        let place = |token: &Token<'_>| Place {
            file: path,
            line: token.line,
            column: token.column,
        };
        let indented = first.column > 1;
        if !indented && !first.quoted && first.text.first() == Some(&b'$') {
            return self.directive(tokens, path, state);
        }
        let (owner, rest) = if indented {
            let Some(owner) = state.owner.clone() else {
                return self.error(
                    place(&first),
                    "no owner name: the first record must name one",
                );
            };
            (owner, tokens)
        } else {
            self.name_buffer.clear();
            if let Err(message) = name::parse_name(first.text, &state.origin, &mut self.name_buffer)
            {
                return self.error(place(&first), message);
            }
            (self.name_buffer.clone(), &tokens[1..])
        };
        state.owner = Some(owner.clone());
        let RecordHeader {
            ttl,
            class,
            rtype,
            rdata_at: index,
        } = match record_header(rest, &first) {
            Ok(header) => header,
            Err((token, message)) => return self.error(place(&token), message),
        };
        let ttl = self.ttl_or_default(ttl, place(&first));
        let rdata_tokens = &rest[index..];
        self.rdata_buffer.clear();
        let mut fields = Fields::new(rdata_tokens, &state.origin);
        if let Err(FieldError { at: i, message }) =
            rdata::parse(rtype, &mut fields, &mut self.rdata_buffer)
        {
            let token = rdata_tokens
                .get(i)
                .or(rdata_tokens.last())
                .or(rest.get(index - 1))
                .unwrap_or(&first);
            return self.error(place(token), message);
        }
        let record = ReadRecord {
            owner: &owner,
            rtype,
            class: class.unwrap_or(1),
            ttl,
            rdata: &self.rdata_buffer,
        };
        if let Err(message) = (self.sink)(&record, place(&first)) {
            self.error(place(&first), message);
        }
    }

    /// The entry's TTL, else `$TTL`'s, else the default (said once per file).
    fn ttl_or_default(&mut self, ttl: Option<u32>, place: Place<'_>) -> u32 {
        if let Some(ttl) = ttl.or(self.default_ttl) {
            return ttl;
        }
        if !self.warned_default_ttl {
            self.warned_default_ttl = true;
            let message =
                format!("warning: no $TTL and no TTL on this record: using {DEFAULT_TTL} seconds");
            self.report.warnings.push(at(place, message));
        }
        DEFAULT_TTL
    }

    fn directive(&mut self, tokens: &[Token<'_>], path: &Path, state: &mut FileState) {
        let first = tokens[0];
        let place = Place {
            file: path,
            line: first.line,
            column: first.column,
        };
        match first.text.to_ascii_uppercase().as_slice() {
            b"$ORIGIN" => self.origin_directive(tokens, path, state),
            b"$TTL" => match tokens {
                [_, arg] => match encoding::parse_ttl(arg.text) {
                    Ok(ttl) => self.default_ttl = Some(ttl),
                    Err(message) => self.error(place_of(path, arg), message),
                },
                _ => self.error(place, "$TTL takes one TTL"),
            },
            b"$INCLUDE" => self.include_directive(tokens, path, state),
            b"$GENERATE" => self.generate_directive(tokens, path, state),
            _ => {
                let message = format!("unknown directive {}", types::lossy(first.text));
                self.error(place, message);
            }
        }
    }

    fn origin_directive(&mut self, tokens: &[Token<'_>], path: &Path, state: &mut FileState) {
        let [_, arg] = tokens else {
            return self.error(place_of(path, &tokens[0]), "$ORIGIN takes one domain name");
        };
        // NSD and Knot refuse a relative $ORIGIN (BIND appends the current one).
        if arg.text.last() != Some(&b'.') || arg.text.ends_with(b"\\.") {
            let message = format!(
                "$ORIGIN {} is not absolute: end it with a dot",
                types::lossy(arg.text)
            );
            return self.error(place_of(path, arg), message);
        }
        let mut origin = Vec::new();
        match name::parse_name(arg.text, &state.origin, &mut origin) {
            Ok(()) => state.origin = origin,
            Err(message) => self.error(place_of(path, arg), message),
        }
    }

    fn include_directive(&mut self, tokens: &[Token<'_>], path: &Path, state: &FileState) {
        let Some(file) = tokens.get(1) else {
            return self.error(place_of(path, &tokens[0]), "$INCLUDE needs a file name");
        };
        if let Some(extra) = tokens.get(3) {
            let message = "$INCLUDE takes a file and an origin at most";
            return self.error(place_of(path, extra), message);
        }
        let mut origin = state.origin.clone();
        if let Some(arg) = tokens.get(2) {
            origin.clear();
            if let Err(message) = name::parse_name(arg.text, &state.origin, &mut origin) {
                return self.error(place_of(path, arg), message);
            }
        }
        let mut unescaped = Vec::new();
        if let Err(message) = encoding::unescape_text(file.text, &mut unescaped) {
            return self.error(place_of(path, file), message);
        }
        let relative = PathBuf::from(String::from_utf8_lossy(&unescaped).into_owned());
        let target = match path.parent() {
            Some(dir) if relative.is_relative() => dir.join(relative),
            _ => relative,
        };
        self.include(&target, origin, Some(place_of(path, file)));
    }

    fn generate_directive(&mut self, tokens: &[Token<'_>], path: &Path, state: &mut FileState) {
        let first = tokens[0];
        let lines = match generate::expand(tokens) {
            Ok(lines) => lines,
            Err((i, message)) => {
                return self.error(place_of(path, &tokens[i.min(tokens.len() - 1)]), message);
            }
        };
        // Each generated line is read as an entry at the $GENERATE's place.
        for line in lines {
            let mut lexer = Lexer::new(&line);
            let mut generated = Vec::new();
            match lexer.next_entry(&mut generated) {
                Ok(true) => {
                    for token in &mut generated {
                        token.line = first.line;
                        token.column = first.column;
                    }
                    self.entry(&generated, path, state);
                }
                Ok(false) => {}
                Err(e) => self.error(place_of(path, &first), e.message),
            }
            if self.full() {
                return;
            }
        }
    }
}

fn place_of<'p>(file: &'p Path, token: &Token<'_>) -> Place<'p> {
    Place {
        file,
        line: token.line,
        column: token.column,
    }
}

/// What comes before a record's rdata.
struct RecordHeader {
    ttl: Option<u32>,
    class: Option<u16>,
    rtype: u16,
    /// The index of the first rdata token.
    rdata_at: usize,
}

/// `[TTL] [class] type` at the start of `rest`, the first two in either order (RFC 1035
/// section 5.1), and where the rdata starts; else the token at fault and why.
fn record_header<'a>(
    rest: &[Token<'a>],
    first: &Token<'a>,
) -> Result<RecordHeader, (Token<'a>, String)> {
    let mut ttl = None;
    let mut class = None;
    for (index, token) in rest.iter().enumerate() {
        if ttl.is_none() && token.text.first().is_some_and(u8::is_ascii_digit) {
            ttl = Some(encoding::parse_ttl(token.text).map_err(|e| (*token, e.to_string()))?);
            continue;
        }
        if class.is_none()
            && let Some(parsed) = types::parse_class(token.text)
        {
            class = Some(parsed.map_err(|e| (*token, e.to_string()))?);
            continue;
        }
        return match types::parse_type(token.text) {
            Some(Ok(rtype)) => Ok(RecordHeader {
                ttl,
                class,
                rtype,
                rdata_at: index + 1,
            }),
            Some(Err(e)) => Err((*token, e.to_string())),
            None => Err((*token, format!("unknown type {}", types::lossy(token.text)))),
        };
    }
    let last = rest.last().unwrap_or(first);
    Err((*last, "missing type: the entry ends before it".to_string()))
}

/// The origin a file declares before its first record with a `$ORIGIN` line (absolute
/// names only), from the first 4 KiB; None when it has none.
pub fn leading_origin(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)
        .ok()?
        .take(4096)
        .read_to_end(&mut head)
        .ok()?;
    let mut lexer = Lexer::new(&head);
    let mut tokens = Vec::new();
    if !lexer.next_entry(&mut tokens).ok()? {
        return None;
    }
    let [directive, name] = tokens[..] else {
        return None;
    };
    if !directive.text.eq_ignore_ascii_case(b"$ORIGIN") || name.text.last() != Some(&b'.') {
        return None;
    }
    let mut origin = Vec::new();
    name::parse_name(name.text, b"\0", &mut origin).ok()?;
    Some(origin)
}

fn at(place: Place<'_>, message: impl Into<String>) -> ZoneError {
    ZoneError::at(place.file, place.line, place.column, message)
}

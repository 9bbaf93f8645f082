//! A small JSON well-formedness check (RFC 8259), so the crate can refuse malformed signals
//! without depending on a JSON library.
//!
//! It answers one question — "is this text one JSON value?" — and builds nothing. Nesting is
//! tracked in a 128-bit mask instead of recursion or a heap stack, so hostile input can neither
//! blow the call stack nor make it allocate. The depth cap is the deepest nesting serde_json's
//! default recursion limit lets through, so text accepted here is never refused by the `serde`
//! feature for being too deep.
//!
//! Lone UTF-16 surrogates in `\u` escapes are accepted: RFC 8259's grammar allows them, and
//! `JSON.stringify` emits them for strings that contain one. (serde_json refuses them when it
//! decodes such a string into a Rust `String`.)
//!
//! The check runs on every `PatchSignals` event, so it has two paths. [`compact`] takes text
//! the way serializers write it (no whitespace, no escapes, integers, a name's colon right
//! after its quote), with little state and few branches per token; at the first token it
//! does not take, it hands over to [`nested`], at the start of that token, which takes all of
//! JSON. Both read strings a word at a time ([`string_stops`]) and give the same verdict,
//! offset and reason as one another (the tests hold both to the simpler validator this
//! module had before).

use std::fmt;

/// The deepest nesting of arrays and objects [`validate`] accepts.
pub(crate) const MAX_DEPTH: usize = 127;

/// Why [`validate`] refused a text, and the byte offset where it noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JsonError {
    offset: usize,
    reason: Reason,
}

/// What [`validate`] found wrong; a byte-sized code, so that a `Result` carrying it comes back in
/// registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    ExpectedValue,
    EndExpectingValue,
    TooDeep,
    ExpectedMemberName,
    ExpectedColon,
    TrailingText,
    EndInContainer,
    ExpectedCommaOrBrace,
    ExpectedCommaOrBracket,
    UnterminatedString,
    ControlInString,
    InvalidEscape,
    ExpectedHex,
    LeadingZero,
    ExpectedDigit,
    ExpectedFractionDigit,
    ExpectedExponentDigit,
}

impl Reason {
    fn text(self) -> &'static str {
        match self {
            Reason::ExpectedValue => "expected a JSON value",
            Reason::EndExpectingValue => "unexpected end of input, expected a value",
            Reason::TooDeep => "nesting deeper than 127 levels",
            Reason::ExpectedMemberName => "expected a string as the object member name",
            Reason::ExpectedColon => "expected ':' after the object member name",
            Reason::TrailingText => "unexpected text after the JSON value",
            Reason::EndInContainer => "unexpected end of input inside a container",
            Reason::ExpectedCommaOrBrace => "expected ',' or '}' after an object member",
            Reason::ExpectedCommaOrBracket => "expected ',' or ']' after an array element",
            Reason::UnterminatedString => "unterminated string",
            Reason::ControlInString => "control character must be escaped in a string",
            Reason::InvalidEscape => "invalid escape sequence in string",
            Reason::ExpectedHex => "expected four hex digits after \\u",
            Reason::LeadingZero => "leading zeros are not allowed in numbers",
            Reason::ExpectedDigit => "expected a digit",
            Reason::ExpectedFractionDigit => "expected a digit after the decimal point",
            Reason::ExpectedExponentDigit => "expected a digit in the exponent",
        }
    }
}

impl JsonError {
    /// Byte offset into the text where the problem was found.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid JSON at byte {}: {}",
            self.offset,
            self.reason.text()
        )
    }
}

impl std::error::Error for JsonError {}

/// Checks that `text` is exactly one well-formed JSON value, optionally surrounded by
/// whitespace, nested at most [`MAX_DEPTH`] levels deep.
pub(crate) fn validate(text: &str) -> Result<(), JsonError> {
    check(text.as_bytes()).map(drop)
}

/// Whether `text` is one well-formed JSON value (as [`validate`]) that is an object.
///
/// `Ok(false)` is a well-formed value of another kind.
pub(crate) fn validate_object(text: &str) -> Result<bool, JsonError> {
    check(text.as_bytes())
}

#[cold]
#[inline(never)]
fn error(offset: usize, reason: Reason) -> JsonError {
    JsonError { offset, reason }
}

/// Returns whether the value is an object.
fn check(b: &[u8]) -> Result<bool, JsonError> {
    let (object, end) = match b.first() {
        Some(&c @ (b'{' | b'[')) => (c == b'{', compact(b)?),
        _ => {
            let start = skip_whitespace(b, 0);
            match b.get(start) {
                Some(&c @ (b'{' | b'[')) => (c == b'{', nested(b, start, 0, 0, At::Value)?),
                _ => (false, scalar(b, start)?),
            }
        }
    };
    if end != b.len() {
        let end = skip_whitespace(b, end);
        if end != b.len() {
            return Err(error(end, Reason::TrailingText));
        }
    }
    Ok(object)
}

/// A top-level value that is not an array or object.
#[inline(never)]
fn scalar(b: &[u8], i: usize) -> Result<usize, JsonError> {
    match b.get(i) {
        None => Err(error(i, Reason::EndExpectingValue)),
        Some(b'"') => string_rest(b, scan_string(b, i + 1).0),
        Some(&c @ (b'0'..=b'9' | b'-')) => number(b, i, c),
        Some(b't') => literal(b, i, b"true"),
        Some(b'f') => literal(b, i, b"false"),
        Some(b'n') => literal(b, i, b"null"),
        Some(_) => Err(error(i, Reason::ExpectedValue)),
    }
}

/// `,` then `"` as the low bytes of a little-endian word: the next member of an object.
const COMMA_QUOTE: [u8; 2] = *b",\"";

/// The fast path: the array or object at the start of `b`, as long as it is written the way
/// serializers write it (no whitespace, no escapes, integers only, names directly followed by
/// `:`). At the first token it does not take, it hands the text to [`nested`], at the start
/// of that token, which takes everything.
///
/// `open` holds one bit per open container (set: object), innermost lowest, under a
/// sentinel bit; so `open == 1` is the top level, and its width caps the depth it handles.
fn compact(b: &[u8]) -> Result<usize, JsonError> {
    let mut open = 1u64;
    let mut i = 0;
    'value: loop {
        let Some(&c) = b.get(i) else {
            return resume(b, i, open, At::Value);
        };
        if c == b'"' {
            let (end, rest) = scan_string(b, i + 1);
            if rest as u8 != b'"' {
                return resume(b, i, open, At::Value);
            }
            i = end + 1;
        } else if c.wrapping_sub(b'1') < 9 {
            let end = digits(b, i + 1);
            if let Some(b'.' | b'e' | b'E') = b.get(end) {
                return resume(b, i, open, At::Value);
            }
            i = end;
        } else if c == b'{' {
            if open >> 62 != 0 || b.get(i + 1) != Some(&b'"') {
                return resume(b, i, open, At::Value);
            }
            match simple_name(b, i + 1) {
                Some(after) => i = after,
                None => return resume(b, i, open, At::Value),
            }
            open = open << 1 | 1;
            continue;
        } else if c == b'[' {
            // `[]` and `[ ` are the general path's, from the bracket.
            if open >> 62 != 0 || b.get(i + 1).is_some_and(|&n| n <= b' ' || n == b']') {
                return resume(b, i, open, At::Value);
            }
            open <<= 1;
            i += 1;
            continue;
        } else if let Some(end) = compact_literal(b, i, c) {
            i = end;
        } else {
            return resume(b, i, open, At::Value);
        }
        // A value just ended.
        loop {
            if open & 1 == 1 {
                if b.get(i..).and_then(<[u8]>::first_chunk::<2>) == Some(&COMMA_QUOTE) {
                    match simple_name(b, i + 1) {
                        Some(after) => i = after,
                        None => return resume(b, i, open, At::AfterValue),
                    }
                    continue 'value;
                }
                if b.get(i) != Some(&b'}') {
                    return resume(b, i, open, At::AfterValue);
                }
            } else {
                match b.get(i) {
                    Some(b',') => {
                        i += 1;
                        continue 'value;
                    }
                    Some(b']') => {}
                    _ => return resume(b, i, open, At::AfterValue),
                }
            }
            i += 1;
            open >>= 1;
            if open == 1 {
                return Ok(i);
            }
        }
    }
}

/// `true`, `false` or `null` at `i`, whose first byte is `c`.
#[inline(always)]
fn compact_literal(b: &[u8], i: usize, c: u8) -> Option<usize> {
    let word: &[u8] = match c {
        b't' => b"true",
        b'f' => b"false",
        b'n' => b"null",
        _ => return None,
    };
    (b.get(i..i + word.len()) == Some(word)).then_some(i + word.len())
}

/// The name at `i` (its opening quote) when it has no escape and the colon follows it
/// directly: the position after the colon.
#[inline(always)]
fn simple_name(b: &[u8], i: usize) -> Option<usize> {
    let (end, rest) = scan_string(b, i + 1);
    (rest as u16 == QUOTE_COLON).then_some(end + 2)
}

/// Hands the text over from [`compact`] to [`nested`].
#[inline(never)]
fn resume(b: &[u8], i: usize, open: u64, at: At) -> Result<usize, JsonError> {
    let depth = 63 - open.leading_zeros() as usize;
    nested(b, i, depth, u128::from(open ^ 1 << depth), at)
}

/// Where [`nested`] takes up the text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    /// A value starts at `i`.
    Value,
    /// A value ended just before `i`.
    AfterValue,
}

/// The general path: the text from `i` on, inside `depth` containers whose kinds are the
/// low bits of `kinds` (set: object, innermost lowest), to the end of the outermost one.
fn nested(
    b: &[u8],
    mut i: usize,
    mut depth: usize,
    mut kinds: u128,
    at: At,
) -> Result<usize, JsonError> {
    let mut after_value = at == At::AfterValue;
    'value: loop {
        if !after_value {
            let Some(&c) = b.get(i) else {
                return Err(error(i, Reason::EndExpectingValue));
            };
            if c == b'"' {
                let (end, rest) = scan_string(b, i + 1);
                i = match rest as u8 {
                    b'"' => end + 1,
                    _ => string_rest(b, end)?,
                };
            } else if c.wrapping_sub(b'0') < 10 {
                i = number(b, i, c)?;
            } else if c == b'{' || c == b'[' {
                if depth == MAX_DEPTH {
                    return Err(error(i, Reason::TooDeep));
                }
                depth += 1;
                let object = c == b'{';
                kinds = kinds << 1 | u128::from(object);
                i = skip_whitespace(b, i + 1);
                if b.get(i) != Some(&(c + 2)) {
                    if object {
                        i = member_name(b, i)?;
                    }
                    continue;
                }
                i += 1;
                depth -= 1;
                kinds >>= 1;
                if depth == 0 {
                    return Ok(i);
                }
            } else {
                i = match c {
                    b'-' => number(b, i, c)?,
                    b't' => literal(b, i, b"true")?,
                    b'f' => literal(b, i, b"false")?,
                    b'n' => literal(b, i, b"null")?,
                    b' ' | b'\t' | b'\n' | b'\r' => {
                        i = skip_whitespace_run(b, i + 1);
                        continue;
                    }
                    _ => return Err(error(i, Reason::ExpectedValue)),
                };
            }
        }
        after_value = false;
        // A value just ended: close containers until one wants another value.
        loop {
            let object = kinds & 1 == 1;
            match b.get(i) {
                Some(b',') => {
                    i += 1;
                    if object {
                        i = member_name(b, skip_whitespace(b, i))?;
                    }
                    continue 'value;
                }
                Some(b'}') if object => {}
                Some(b']') if !object => {}
                Some(b' ' | b'\t' | b'\n' | b'\r') => {
                    i = skip_whitespace_run(b, i + 1);
                    continue;
                }
                _ => return Err(after_value_error(i, b.len(), object)),
            }
            i += 1;
            depth -= 1;
            kinds >>= 1;
            if depth == 0 {
                return Ok(i);
            }
        }
    }
}

#[cold]
#[inline(never)]
fn after_value_error(i: usize, len: usize, object: bool) -> JsonError {
    let reason = if i == len {
        Reason::EndInContainer
    } else if object {
        Reason::ExpectedCommaOrBrace
    } else {
        Reason::ExpectedCommaOrBracket
    };
    error(i, reason)
}

/// Skips JSON whitespace. Compact JSON has none, so the first test is the whole cost.
#[inline(always)]
fn skip_whitespace(b: &[u8], i: usize) -> usize {
    // Every JSON whitespace byte is at most b' ': one compare passes the rest.
    if b.get(i).is_some_and(|&c| c > b' ') {
        return i;
    }
    skip_whitespace_run(b, i)
}

#[inline(always)]
fn skip_whitespace_run(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// `"` then `:` as the low bytes of a little-endian word.
const QUOTE_COLON: u16 = u16::from_le_bytes(*b"\":");

/// Reads `"name" :` at the start of an object member; returns the position after the colon.
#[inline(always)]
fn member_name(b: &[u8], i: usize) -> Result<usize, JsonError> {
    if b.get(i) != Some(&b'"') {
        return Err(error(i, Reason::ExpectedMemberName));
    }
    let (end, rest) = scan_string(b, i + 1);
    // `"name":` is by far the most common spelling.
    if rest as u16 == QUOTE_COLON {
        return Ok(end + 2);
    }
    member_name_rest(b, end)
}

#[inline(never)]
fn member_name_rest(b: &[u8], end: usize) -> Result<usize, JsonError> {
    let i = skip_whitespace(b, string_rest(b, end)?);
    if b.get(i) != Some(&b':') {
        return Err(error(i, Reason::ExpectedColon));
    }
    Ok(i + 1)
}

#[inline(always)]
fn literal(b: &[u8], i: usize, word: &[u8]) -> Result<usize, JsonError> {
    match b.get(i..i + word.len()) == Some(word) {
        true => Ok(i + word.len()),
        false => Err(error(i, Reason::ExpectedValue)),
    }
}

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// Flags the bytes of `w` that are `"`, `\` or a control character (lowest flag exact).
///
/// `w ^ 0x02` maps the control characters onto themselves and `"` onto 0x20, so one
/// "below 0x21" test catches both.
#[inline(always)]
fn string_stops(w: u64) -> u64 {
    let y = w ^ u64::from_ne_bytes([0x02; 8]);
    let s = w ^ u64::from_ne_bytes([b'\\'; 8]);
    (y.wrapping_sub(u64::from_ne_bytes([0x21; 8])) | s.wrapping_sub(ONES)) & !w & HIGHS
}

/// The bit of the lowest byte flagged, rounded down to the byte.
#[inline(always)]
fn found(flags: u64) -> Option<u32> {
    std::num::NonZeroU64::new(flags).map(|f| f.trailing_zeros() & !7)
}

/// `scan` for the end of a plain run in a string, with the word that most strings end in
/// read in line.
#[inline(always)]
fn scan_string(b: &[u8], i: usize) -> (usize, u64) {
    if let Some(word) = b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_le_bytes(*word);
        if let Some(bit) = found(string_stops(w)) {
            return (i + (bit / 8) as usize, w >> bit);
        }
        return scan_long(b, i + 8);
    }
    if let Some(last) = b.last_chunk::<8>() {
        // The last eight bytes, shifted so that `i` is the lowest: the zeros shifted in are
        // flagged (as control characters), so a stop is found.
        let shift = (i + 8 - b.len()) * 8;
        let w = u64::from_le_bytes(*last)
            .checked_shr(shift as u32)
            .unwrap_or(0);
        let bit = string_stops(w).trailing_zeros() & !7;
        return (i + (bit / 8) as usize, w.checked_shr(bit).unwrap_or(0));
    }
    scan(b, i, string_stops)
}

/// [`scan`] kept out of line, for the strings longer than a word.
#[inline(never)]
fn scan_long(b: &[u8], i: usize) -> (usize, u64) {
    scan(b, i, string_stops)
}

/// The position of the first byte at or after `i` that `stops` flags, or `b.len()`, and the
/// bytes from there on as a little-endian word (zeros past the end).
#[inline(always)]
fn scan(b: &[u8], mut i: usize, stops: impl Fn(u64) -> u64) -> (usize, u64) {
    while let Some(word) = b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_le_bytes(*word);
        if let Some(bit) = found(stops(w)) {
            return (i + (bit / 8) as usize, w >> bit);
        }
        i += 8;
    }
    let w = match b.last_chunk::<8>() {
        Some(last) => {
            let shift = (i + 8 - b.len()) * 8;
            u64::from_le_bytes(*last)
                .checked_shr(shift as u32)
                .unwrap_or(0)
        }
        None => {
            let rest = b.get(i..).unwrap_or_default();
            rest.iter().rev().fold(0, |w, &c| w << 8 | u64::from(c))
        }
    };
    // The zeros shifted in are flagged, whatever `stops` is, so this finds one.
    let bit = stops(w).trailing_zeros() & !7;
    (i + (bit / 8) as usize, w.checked_shr(bit).unwrap_or(0))
}

/// Reads the rest of a string from a byte `string_stops` flagged; returns the position after
/// the closing quote.
#[inline(never)]
fn string_rest(b: &[u8], mut i: usize) -> Result<usize, JsonError> {
    loop {
        match b.get(i) {
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => i = escape(b, i)?,
            None => return Err(error(i, Reason::UnterminatedString)),
            Some(_) => return Err(error(i, Reason::ControlInString)),
        }
        i = scan(b, i, string_stops).0;
    }
}

/// Reads the escape whose backslash is at `i`; returns the position after it.
fn escape(b: &[u8], mut i: usize) -> Result<usize, JsonError> {
    match b.get(i + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
        Some(b'u') => {
            i += 2;
            for _ in 0..4 {
                match b.get(i) {
                    Some(c) if c.is_ascii_hexdigit() => i += 1,
                    _ => return Err(error(i, Reason::ExpectedHex)),
                }
            }
            Ok(i)
        }
        _ => Err(error(i + 1, Reason::InvalidEscape)),
    }
}

#[inline(always)]
fn digits(b: &[u8], mut i: usize) -> usize {
    while let Some(b'0'..=b'9') = b.get(i) {
        i += 1;
    }
    i
}

/// Reads the number whose first byte, `first`, is at `i`.
#[inline(always)]
fn number(b: &[u8], mut i: usize, first: u8) -> Result<usize, JsonError> {
    if first == b'-' {
        return signed_number(b, i + 1);
    }
    i = match first {
        b'0' => zero(b, i + 1)?,
        _ => digits(b, i + 1),
    };
    match b.get(i) {
        Some(b'.' | b'e' | b'E') => fraction_and_exponent(b, i),
        _ => Ok(i),
    }
}

#[inline(never)]
fn signed_number(b: &[u8], i: usize) -> Result<usize, JsonError> {
    match b.get(i) {
        Some(&c @ b'0'..=b'9') => number(b, i, c),
        _ => Err(error(i, Reason::ExpectedDigit)),
    }
}

/// Refuses a digit after a leading zero.
#[inline(always)]
fn zero(b: &[u8], i: usize) -> Result<usize, JsonError> {
    match b.get(i) {
        Some(b'0'..=b'9') => Err(error(i, Reason::LeadingZero)),
        _ => Ok(i),
    }
}

#[inline(never)]
fn fraction_and_exponent(b: &[u8], mut i: usize) -> Result<usize, JsonError> {
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !matches!(b.get(i), Some(b'0'..=b'9')) {
            return Err(error(i, Reason::ExpectedFractionDigit));
        }
        i = digits(b, i);
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        if !matches!(b.get(i), Some(b'0'..=b'9')) {
            return Err(error(i, Reason::ExpectedExponentDigit));
        }
        i = digits(b, i);
    }
    Ok(i)
}

#[cfg(test)]
mod tests;

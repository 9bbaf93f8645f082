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
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_values() {
        let cases = [
            "{}",
            "[]",
            " \t\r\n{} \n",
            r#"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#,
            r#"{"count":-0.5e+10,"x":0,"y":1E3,"z":-12.25}"#,
            r#""plain string""#,
            r#""esc \" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00""#,
            r#""lone surrogate \ud800""#,
            "\"unicode ünïcødé ✓\"",
            "0",
            "-0",
            "123",
            "true",
            "null",
            r#"[[[]],{},[{}]]"#,
            r#"{"a" : [ 1 , 2 ] , "a" : 3 }"#,
        ];
        for text in cases {
            assert_eq!(validate(text), Ok(()), "{text:?}");
        }
    }

    #[test]
    fn refuses_malformed_values_with_position() {
        let cases: &[(&str, usize)] = &[
            ("", 0),
            ("   ", 3),
            ("{", 1),
            ("}", 0),
            ("[1,]", 3),
            ("[1 2]", 3),
            (r#"{"a"}"#, 4),
            (r#"{"a":}"#, 5),
            (r#"{"a":1,}"#, 7),
            (r#"{a:1}"#, 1),
            (r#"{"a":1 "b":2}"#, 7),
            ("[1]]", 3),
            ("{} {}", 3),
            ("01", 1),
            ("-", 1),
            ("1.", 2),
            ("1e", 2),
            ("1e+", 3),
            (".5", 0),
            ("+1", 0),
            ("tru", 0),
            ("nul", 0),
            ("True", 0),
            ("NaN", 0),
            (r#""abc"#, 4),
            ("\"a\u{1}b\"", 2),
            ("\"tab\there\"", 4),
            (r#""\x""#, 2),
            (r#""\u12G4""#, 5),
            (r#""\u12""#, 5),
            ("'single'", 0),
            ("[1,2", 4),
        ];
        for &(text, offset) in cases {
            let err = validate(text).expect_err(text);
            assert_eq!(err.offset(), offset, "{text:?}: {err}");
        }
    }

    #[test]
    fn nesting_is_capped_without_recursion() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert_eq!(validate(&ok), Ok(()));

        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        let err = validate(&deep).unwrap_err();
        assert_eq!(err.offset(), MAX_DEPTH);
        assert!(err.to_string().contains("nesting"), "{err}");

        // Far deeper than any stack could take if this recursed.
        let hostile = "{\"a\":".repeat(1_000_000);
        assert!(validate(&hostile).is_err());
    }

    #[test]
    fn mixed_containers_track_their_kind() {
        // The closing bracket must match the container, at every depth.
        assert_eq!(validate(r#"[{"a":[{"b":[]}]}]"#), Ok(()));
        assert!(validate(r#"[{"a":[{"b":[]]}]}"#).is_err());
        assert!(validate(r#"{"a":[}"#).is_err());
        assert!(validate(r#"[{]"#).is_err());
    }

    #[test]
    fn display_says_what_and_where() {
        let err = validate(r#"{"a" 1}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid JSON at byte 5: expected ':' after the object member name"
        );
    }

    #[test]
    fn depth_limit_is_serde_jsons() {
        for depth in [MAX_DEPTH, MAX_DEPTH + 1] {
            let text = "[".repeat(depth) + &"]".repeat(depth);
            let ours = validate(&text).is_ok();
            let theirs = serde_json::from_str::<serde_json::Value>(&text).is_ok();
            assert_eq!(ours, theirs, "depth {depth}");
        }
    }

    #[test]
    fn agrees_with_serde_json() {
        let samples = [
            "{}",
            "[1,2,3]",
            "[1,2,]",
            r#"{"a":"\u00"}"#,
            "1.0e-5",
            "-01",
            " null ",
            "\"\\/\"",
            "[true false]",
            r#"{"nested":{"deeper":[1,{"x":null}]}}"#,
        ];
        for text in samples {
            let ours = validate(text).is_ok();
            let theirs = serde_json::from_str::<serde_json::Value>(text).is_ok();
            assert_eq!(ours, theirs, "{text:?}");
        }
    }

    /// Tricky corners, each against serde_json's verdict (lone surrogates aside, which
    /// serde_json refuses only when it decodes them into a `String`).
    #[test]
    fn tricky_texts_table() {
        let cases: &[(&str, bool)] = &[
            // numbers
            ("0", true),
            ("-0", true),
            ("-", false),
            ("--1", false),
            ("00", false),
            ("-01", false),
            ("0.0", true),
            ("0.", false),
            (".0", false),
            ("1e5", true),
            ("1E+5", true),
            ("1e-05", true),
            ("1e", false),
            ("1e+", false),
            ("1.5e3.2", false),
            ("1ee5", false),
            ("0x10", false),
            ("Infinity", false),
            ("-Infinity", false),
            ("123456789012345678901234567890", true),
            ("[1,-2.5e-3,0,10]", true),
            ("{\"n\":1.}", false),
            // escapes
            (r#""\"""#, true),
            (r#""\\""#, true),
            (r#""\/""#, true),
            (r#""\b\f\n\r\t""#, true),
            (r#""\a""#, false),
            (r#""\'""#, false),
            (r#""\u00""#, false),
            (r#""\u00zz""#, false),
            (r#""\U0041""#, false),
            (r#""\u0041""#, true),
            (r#""\uFFFF""#, true),
            ("\"\\", false),
            ("\"\\\"", false),
            ("\"ab\\\\\"", true),
            // eight-byte words: a quote, backslash or control character at every offset
            ("\"0123456\"", true),
            ("\"01234567\"", true),
            ("\"012345678\"", true),
            ("\"0123456\\n789abcdef\"", true),
            ("\"0123456789abcde\u{1f}\"", false),
            ("\"\u{7f}\u{80}é✓😀 ünïcødé plain text\"", true),
            ("\"tab\tinside\"", false),
            ("\"nul\u{0}inside\"", false),
            // surrogates, as escapes
            (r#""\uD83D\uDE00""#, true),
            // structure and trailing garbage
            ("{}", true),
            ("{} ", true),
            ("{}x", false),
            ("{}}", false),
            ("{},", false),
            ("[] []", false),
            ("{\"a\":1}\u{0}", false),
            ("\u{feff}{}", false),
            ("{\"a\" : 1 , \"b\" :[ ] }", true),
            ("{\"a\":1,}", false),
            ("{,}", false),
            ("{\"a\"1}", false),
            ("{\"a\":}", false),
            ("[,1]", false),
            ("[1,,2]", false),
            ("{\"a\":[1}", false),
            ("{1:2}", false),
            ("trueish", false),
            ("nulll", false),
            ("[tru]", false),
            ("", false),
            (" ", false),
        ];
        for &(text, ok) in cases {
            assert_eq!(validate(text).is_ok(), ok, "{text:?}");
            let theirs = serde_json::from_str::<serde_json::Value>(text).is_ok();
            assert_eq!(ok, theirs, "serde_json disagrees on {text:?}");
        }
        // Lone surrogates: well-formed by the grammar (and from `JSON.stringify`).
        for text in [r#""\uD800""#, r#""\uDC00x""#, r#"{"a":"\ud83d"}"#] {
            assert_eq!(validate(text), Ok(()), "{text:?}");
        }
    }

    #[test]
    fn depth_limit_counts_objects_and_arrays_alike() {
        let mixed = |depth: usize| {
            let open: String = (0..depth)
                .map(|d| if d % 2 == 0 { "{\"k\":" } else { "[" })
                .collect();
            let close: String = (0..depth)
                .rev()
                .map(|d| if d % 2 == 0 { "}" } else { "]" })
                .collect();
            open + "0" + &close
        };
        assert_eq!(validate(&mixed(MAX_DEPTH)), Ok(()));
        let err = validate(&mixed(MAX_DEPTH + 1)).unwrap_err();
        assert!(err.to_string().contains("nesting"), "{err}");
        // Unclosed at the deepest level allowed: an end-of-input error, not a depth one.
        let unclosed = "[".repeat(MAX_DEPTH);
        assert!(
            validate(&unclosed)
                .unwrap_err()
                .to_string()
                .contains("end of input")
        );
    }

    #[test]
    fn objects_are_told_from_other_values() {
        assert_eq!(validate_object(" {\"a\":1} "), Ok(true));
        assert_eq!(validate_object("[{}]"), Ok(false));
        assert_eq!(validate_object("\"{}\""), Ok(false));
        assert!(validate_object("{").is_err());
    }

    proptest::proptest! {
        /// Texts made of JSON's own pieces agree with serde_json, whatever the order.
        #[test]
        fn agrees_with_serde_json_on_jsonish_noise(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "{", "}", "[", "]", ",", ":", " ", "\"", "\"k\"", "\"v\\n\"", "\\u00e9",
                    "\\", "0", "-", "1", ".", "e", "+", "12", "true", "null", "fals", "\u{1}",
                    "é", "\"0123456789\"",
                ]),
                0..24,
            ),
        ) {
            let text = pieces.concat();
            let ours = validate(&text).is_ok();
            let theirs = serde_json::from_str::<serde_json::Value>(&text).is_ok();
            proptest::prop_assert_eq!(ours, theirs, "{:?}", text);
        }
    }

    /// The verdict, offset and reason agree with the reference validator's, or says how not.
    fn agrees_with_reference(text: &str) -> Result<(), String> {
        let ours = validate(text).map_err(|err| (err.offset, err.reason.text()));
        let theirs = reference::validate(text);
        match ours == theirs {
            true => Ok(()),
            false => Err(format!("{text:?}: {ours:?}, reference {theirs:?}")),
        }
    }

    /// serde_json's verdict when it reads a value without building it, which takes lone
    /// surrogates as this module does (decoding into a `String` refuses them).
    fn serde_json_accepts(text: &str) -> bool {
        serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
    }

    #[test]
    fn edge_cases_table() {
        let cases: &[(&str, bool)] = &[
            // numbers, alone and where the fast path meets them
            ("-", false),
            ("-0", true),
            ("01", false),
            ("1.", false),
            ("1e", false),
            ("1e+", false),
            (".5", false),
            ("[-]", false),
            ("[-0]", true),
            ("[01]", false),
            ("[1.]", false),
            ("[1e]", false),
            ("[1e+]", false),
            ("[.5]", false),
            ("[-1.5e3,0,0e0,0E+0,0.0e-0,10,-10]", true),
            ("{\"a\":-1.5e3}", true),
            ("{\"a\":01}", false),
            ("{\"a\":1.}", false),
            ("{\"a\":-}", false),
            ("[1-2]", false),
            ("[1.5.5]", false),
            // literals
            ("tru", false),
            ("nul", false),
            ("falsey", false),
            ("[tru]", false),
            ("[nul]", false),
            ("[falsey]", false),
            ("{\"a\":falsey}", false),
            ("{\"a\":true,\"b\":false,\"c\":null}", true),
            ("[true,false,null]", true),
            ("[truefalse]", false),
            // whitespace everywhere it may be, and where it may not
            (" {} ", true),
            ("{}\n", true),
            ("\t[ ]\r\n", true),
            ("{ }", true),
            ("[ ]", true),
            ("{\"a\"\t:\n1\r}", true),
            ("{\"a\": 1, \"b\": [true, false, null]}", true),
            ("{\"a\" :1}", true),
            ("{\"a\":1 }", true),
            ("{\"a\":1 ,\"b\":2}", true),
            ("{\"a\":1, \"b\":2}", true),
            ("[1 ,2]", true),
            ("[ 1,2 ]", true),
            ("{\"a\":\"x\" }", true),
            ("{\"a\":\u{b}1}", false),
            ("[1,\u{c}2]", false),
            ("[1\u{0}]", false),
            ("{\"a\":1}\u{0}", false),
            // empty containers, where the fast path hands over
            ("{\"a\":{}}", true),
            ("{\"a\":[]}", true),
            ("[[],{}]", true),
            ("[{},[]]", true),
            ("{\"a\":[{}]}", true),
            ("[{\"a\":[]}]", true),
            ("[{]", false),
            ("[{}", false),
            ("{\"a\":[}", false),
            // names
            ("{\"a\\\"b\":1}", true),
            ("{\"a\\u0041\":1}", true),
            ("{\"\":1}", true),
            ("{\"a\":1,\"\":2}", true),
            ("{\"a\",1}", false),
            ("{\"a\":1,\"b\"}", false),
            ("{\"a\":1,\"b\":}", false),
            ("{\"a\":1,,\"b\":2}", false),
            ("{\"a\":1,}", false),
            ("{\"a\":1,[]}", false),
            // trailing text
            ("{}{}", false),
            ("[]]", false),
            ("{\"a\":1}}", false),
            ("{\"a\":1},", false),
            ("{\"a\":1} x", false),
            ("[1]\"", false),
            ("\"a\"\"", false),
        ];
        for &(text, ok) in cases {
            assert_eq!(validate(text).is_ok(), ok, "{text:?}");
            assert_eq!(serde_json_accepts(text), ok, "serde_json on {text:?}");
            agrees_with_reference(text).unwrap();
        }
    }

    /// Every way a string can stop (or seem to), at every offset from its start, in texts
    /// that end at every offset after it: each eight-byte word and the short last one see
    /// each stop at each of their byte positions.
    #[test]
    fn string_stops_at_every_word_offset() {
        let stops = [
            "\"", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9", "\\uD800", "\\u12G4", "\\u12", "\\x",
            "\\", "\u{0}", "\u{1f}", "\t", "\u{7f}", "é", "#", "]", "!",
        ];
        let wraps = [
            ("", ""),
            ("[", "]"),
            ("{\"k\":", "}"),
            ("{\"", "\":1}"),
            ("[1,", ",2]"),
        ];
        for before in 0..18 {
            for stop in stops {
                for after in 0..10 {
                    for (open, close) in wraps {
                        let text = format!(
                            "{open}\"{}{stop}{}\"{close}",
                            "a".repeat(before),
                            "b".repeat(after)
                        );
                        agrees_with_reference(&text).unwrap();
                        assert_eq!(
                            validate(&text).is_ok(),
                            serde_json_accepts(&text),
                            "{text:?}"
                        );
                        for cut in (0..text.len()).filter(|&cut| text.is_char_boundary(cut)) {
                            agrees_with_reference(&text[..cut]).unwrap();
                        }
                    }
                }
            }
        }
    }

    /// Numbers and literals, right and wrong, at every alignment and cut short anywhere.
    #[test]
    fn numbers_and_literals_at_every_offset() {
        let tokens = [
            "0",
            "-0",
            "7",
            "-7",
            "10",
            "01",
            "-01",
            "-",
            "1.",
            "1.5",
            ".5",
            "1e",
            "1e+",
            "1E-7",
            "1.5e3",
            "-1.5e3",
            "12345678901234567890",
            "0.000123",
            "1.e1",
            "1e1.5",
            "--1",
            "+1",
            "0x1",
            "true",
            "false",
            "null",
            "tru",
            "nul",
            "fals",
            "falsey",
            "truex",
            "nulll",
        ];
        for pad in 0..9 {
            let padding = "a".repeat(pad);
            for token in tokens {
                for text in [
                    token.to_string(),
                    format!("[\"{padding}\",{token}]"),
                    format!("{{\"{padding}\":{token}}}"),
                    format!("{{\"{padding}\":{token},\"b\":1}}"),
                    format!("[{token} ]"),
                ] {
                    agrees_with_reference(&text).unwrap();
                    assert_eq!(
                        validate(&text).is_ok(),
                        serde_json_accepts(&text),
                        "{text:?}"
                    );
                    for cut in 0..text.len() {
                        agrees_with_reference(&text[..cut]).unwrap();
                    }
                }
            }
        }
    }

    /// The depth cap holds whether the fast path or the general one reaches it, and when
    /// the fast path hands over at any depth.
    #[test]
    fn depth_cap_on_either_path() {
        for depth in [1, 2, 61, 62, 63, 64, 65, 126, 127, 128, 129] {
            let arrays = "[".repeat(depth) + &"]".repeat(depth);
            let spaced = "[".repeat(depth) + " " + &"]".repeat(depth);
            let objects = "{\"k\":".repeat(depth) + "1" + &"}".repeat(depth);
            let pretty = " ".to_string() + &objects;
            for text in [arrays, spaced, objects, pretty] {
                assert_eq!(validate(&text).is_ok(), depth <= MAX_DEPTH, "depth {depth}");
                agrees_with_reference(&text).unwrap();
                // (`IgnoredAny` is not held to serde_json's recursion limit; `Value` is.)
                let theirs = serde_json::from_str::<serde_json::Value>(&text).is_ok();
                assert_eq!(theirs, depth <= MAX_DEPTH, "serde_json at depth {depth}");
            }
        }
    }

    /// Any JSON value, as serde_json writes it compactly or pretty-printed.
    fn json_values() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "(?s:.{0,12})".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(("(?s:.{0,10})", inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Texts made of JSON's pieces get the reference's verdict, offset and reason.
        #[test]
        fn agrees_with_reference_on_jsonish_noise(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "{", "}", "[", "]", ",", ":", " ", "\n", "\t", "\"", "\"k\"", "\"k\":",
                    ",\"", "\"v\\n\"", "\\u00e9", "\\uD83D", "\\", "0", "-", "1", "7", ".", "e",
                    "E", "+", "12", "true", "null", "false", "fals", "\u{1}", "\u{0}", "é",
                    "\"0123456789\"", "\"abcdefghijklmnopq\"",
                ]),
                0..32,
            ),
        ) {
            let text = pieces.concat();
            proptest::prop_assert!(agrees_with_reference(&text).is_ok(), "{}", agrees_with_reference(&text).unwrap_err());
            proptest::prop_assert_eq!(validate(&text).is_ok(), serde_json_accepts(&text), "{:?}", text);
        }

        /// What serde_json writes is accepted, and every text cut short of it or with one
        /// ASCII byte changed gets the reference's verdict, offset and reason.
        #[test]
        fn serde_json_output_and_its_mutations(
            value in json_values(),
            pretty in proptest::bool::ANY,
            at in proptest::prelude::any::<proptest::sample::Index>(),
            byte in proptest::sample::select(b"{}[],:\" \n\t\\0123456789.eE+-tfnaluxr\x01\x7f".to_vec()),
        ) {
            let text = match pretty {
                true => serde_json::to_string_pretty(&value).unwrap(),
                false => serde_json::to_string(&value).unwrap(),
            };
            proptest::prop_assert_eq!(validate(&text), Ok(()), "{:?}", text);
            for cut in (0..text.len()).filter(|&cut| text.is_char_boundary(cut)) {
                let cut = &text[..cut];
                proptest::prop_assert!(agrees_with_reference(cut).is_ok(), "{}", agrees_with_reference(cut).unwrap_err());
            }
            let mut bytes = text.into_bytes();
            let at = at.index(bytes.len().max(1));
            if bytes.get(at).is_some_and(u8::is_ascii) {
                bytes[at] = byte;
                let text = String::from_utf8(bytes).unwrap();
                proptest::prop_assert!(agrees_with_reference(&text).is_ok(), "{}", agrees_with_reference(&text).unwrap_err());
                proptest::prop_assert_eq!(validate(&text).is_ok(), serde_json_accepts(&text), "{:?}", text);
            }
        }
    }

    /// The validator as it was before the fast path, kept as the oracle that the current one
    /// must match exactly: same verdict, same offset, same reason.
    mod reference {
        type JsonError = (usize, &'static str);

        const MAX_DEPTH: usize = 127;

        pub(super) fn validate(text: &str) -> Result<(), JsonError> {
            check(text.as_bytes()).map(drop)
        }

        fn error(offset: usize, reason: &'static str) -> JsonError {
            (offset, reason)
        }

        // Skips JSON whitespace. Compact JSON has none, so the first test is the whole cost.
        fn skip_whitespace(b: &[u8], mut i: usize) -> usize {
            // Every JSON whitespace byte is at most b' ': one compare passes the rest.
            if b.get(i).is_some_and(|&c| c > b' ') {
                return i;
            }
            while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
                i += 1;
            }
            i
        }

        // The validator proper: one loop over the bytes with the position, depth and container
        // kind in locals, everything but the error paths inlined, so that the hot path is a few
        // compares per token. Returns the first byte of the value, which says its kind.
        //
        // Nesting is a 128-bit mask in two words (bit `d` set: the container at depth `d + 1` is an object), so
        // neither recursion nor a heap stack is needed whatever the input; the kind of the
        // innermost container is kept apart, and read back from the mask only when one closes.
        fn check(b: &[u8]) -> Result<u8, JsonError> {
            let mut i = skip_whitespace(b, 0);
            let first = b.get(i).copied().unwrap_or(0);
            let mut depth = 0usize;
            let mut objects = [0u64; 2];
            let mut in_object = false;
            loop {
                // A value is expected at `i` (whitespace before it is skipped).
                i = skip_whitespace(b, i);
                let Some(&c) = b.get(i) else {
                    return Err(error(i, "unexpected end of input, expected a value"));
                };
                match c {
                    b'"' => i = string(b, i + 1)?,
                    b'{' | b'[' => {
                        if depth == MAX_DEPTH {
                            return Err(error(i, "nesting deeper than 127 levels"));
                        }
                        in_object = c == b'{';
                        let (word, bit) = (depth >> 6, 1u64 << (depth & 63));
                        if in_object {
                            objects[word] |= bit;
                        } else {
                            objects[word] &= !bit;
                        }
                        depth += 1;
                        i = skip_whitespace(b, i + 1);
                        let close = if in_object { b'}' } else { b']' };
                        if b.get(i) == Some(&close) {
                            i += 1;
                            depth -= 1;
                            in_object = depth > 0 && is_object(&objects, depth - 1);
                        } else if in_object {
                            i = member_name(b, i)?;
                            continue;
                        } else {
                            continue;
                        }
                    }
                    b'-' | b'0'..=b'9' => i = number(b, i)?,
                    b't' => i = literal(b, i, b"true")?,
                    b'f' => i = literal(b, i, b"false")?,
                    b'n' => i = literal(b, i, b"null")?,
                    _ => return Err(error(i, "expected a JSON value")),
                }

                // A value just ended: close containers until one wants another value.
                loop {
                    i = skip_whitespace(b, i);
                    if depth == 0 {
                        return match i == b.len() {
                            true => Ok(first),
                            false => Err(error(i, "unexpected text after the JSON value")),
                        };
                    }
                    match (b.get(i), in_object) {
                        (Some(b','), true) => {
                            i = member_name(b, skip_whitespace(b, i + 1))?;
                            break;
                        }
                        (Some(b','), false) => {
                            i += 1;
                            break;
                        }
                        (Some(b'}'), true) | (Some(b']'), false) => {
                            i += 1;
                            depth -= 1;
                            in_object = depth > 0 && is_object(&objects, depth - 1);
                        }
                        (None, _) => {
                            return Err(error(i, "unexpected end of input inside a container"));
                        }
                        (_, true) => {
                            return Err(error(i, "expected ',' or '}' after an object member"));
                        }
                        (_, false) => {
                            return Err(error(i, "expected ',' or ']' after an array element"));
                        }
                    }
                }
            }
        }

        // Whether the container at depth `at + 1` is an object.
        fn is_object(objects: &[u64; 2], at: usize) -> bool {
            objects[(at >> 6) & 1] >> (at & 63) & 1 == 1
        }

        // Reads `"name" :` at the start of an object member; returns the position after the colon.
        fn member_name(b: &[u8], i: usize) -> Result<usize, JsonError> {
            if b.get(i) != Some(&b'"') {
                return Err(error(i, "expected a string as the object member name"));
            }
            let i = string(b, i + 1)?;
            // `"name":` is by far the most common spelling.
            if b.get(i) == Some(&b':') {
                return Ok(i + 1);
            }
            let i = skip_whitespace(b, i);
            if b.get(i) != Some(&b':') {
                return Err(error(i, "expected ':' after the object member name"));
            }
            Ok(i + 1)
        }

        fn literal(b: &[u8], i: usize, word: &[u8]) -> Result<usize, JsonError> {
            match b.get(i..i + word.len()) == Some(word) {
                true => Ok(i + word.len()),
                false => Err(error(i, "expected a JSON value")),
            }
        }

        // The index of the first `"`, `\` or control character in `b[i..]`, or `b.len()`.
        //
        // Eight bytes at a time: in `word ^ pattern` a matching byte is zero, and
        // `(x - 0x01..) & !x & 0x80..` flags zero bytes (`(w - 0x20..) & !w & 0x80..` flags bytes
        // below 0x20). Only the lowest flag of each test is exact (borrows run upwards), so only the
        // lowest flag of their union is read, and it is a true one.
        fn plain_run_end(b: &[u8], mut i: usize) -> usize {
            const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
            const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
            const SPACES: u64 = u64::from_ne_bytes([0x20; 8]);
            const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
            const BACKSLASHES: u64 = u64::from_ne_bytes([b'\\'; 8]);
            while let Some(word) = b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
                let w = u64::from_le_bytes(*word);
                let q = w ^ QUOTES;
                let s = w ^ BACKSLASHES;
                let found = (q.wrapping_sub(ONES) & !q
                    | s.wrapping_sub(ONES) & !s
                    | w.wrapping_sub(SPACES) & !w)
                    & HIGHS;
                if found != 0 {
                    return i + (found.trailing_zeros() / 8) as usize;
                }
                i += 8;
            }
            while let Some(&c) = b.get(i) {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    return i;
                }
                i += 1;
            }
            i
        }

        // Reads the rest of a string whose opening quote is just before `i`; returns the position
        // after the closing quote.
        fn string(b: &[u8], mut i: usize) -> Result<usize, JsonError> {
            loop {
                i = plain_run_end(b, i);
                match b.get(i) {
                    Some(b'"') => return Ok(i + 1),
                    Some(b'\\') => i = escape(b, i)?,
                    None => return Err(error(i, "unterminated string")),
                    // The scan stopped here, so this is a control character. (The input is a
                    // `&str`, so multi-byte characters are valid UTF-8.)
                    Some(_) => {
                        return Err(error(i, "control character must be escaped in a string"));
                    }
                }
            }
        }

        // Reads the escape whose backslash is at `i`; returns the position after it.
        fn escape(b: &[u8], mut i: usize) -> Result<usize, JsonError> {
            match b.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
                Some(b'u') => {
                    i += 2;
                    for _ in 0..4 {
                        match b.get(i) {
                            Some(c) if c.is_ascii_hexdigit() => i += 1,
                            _ => return Err(error(i, "expected four hex digits after \\u")),
                        }
                    }
                    Ok(i)
                }
                _ => Err(error(i + 1, "invalid escape sequence in string")),
            }
        }

        fn digits(b: &[u8], mut i: usize) -> usize {
            while let Some(b'0'..=b'9') = b.get(i) {
                i += 1;
            }
            i
        }

        fn number(b: &[u8], mut i: usize) -> Result<usize, JsonError> {
            if b.get(i) == Some(&b'-') {
                i += 1;
            }
            match b.get(i) {
                Some(b'0') => {
                    i += 1;
                    if let Some(b'0'..=b'9') = b.get(i) {
                        return Err(error(i, "leading zeros are not allowed in numbers"));
                    }
                }
                Some(b'1'..=b'9') => i = digits(b, i + 1),
                _ => return Err(error(i, "expected a digit")),
            }
            if b.get(i) == Some(&b'.') {
                i += 1;
                if !matches!(b.get(i), Some(b'0'..=b'9')) {
                    return Err(error(i, "expected a digit after the decimal point"));
                }
                i = digits(b, i);
            }
            if let Some(b'e' | b'E') = b.get(i) {
                i += 1;
                if let Some(b'+' | b'-') = b.get(i) {
                    i += 1;
                }
                if !matches!(b.get(i), Some(b'0'..=b'9')) {
                    return Err(error(i, "expected a digit in the exponent"));
                }
                i = digits(b, i);
            }
            Ok(i)
        }
    }
}

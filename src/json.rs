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

use std::fmt;

/// The deepest nesting of arrays and objects [`validate`] accepts.
pub(crate) const MAX_DEPTH: usize = 127;

/// Why [`validate`] refused a text, and the byte offset where it noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JsonError {
    offset: usize,
    reason: &'static str,
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
        write!(f, "invalid JSON at byte {}: {}", self.offset, self.reason)
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
    check(text.as_bytes()).map(|first| first == b'{')
}

#[cold]
#[inline(never)]
fn error(offset: usize, reason: &'static str) -> JsonError {
    JsonError { offset, reason }
}

/// Skips JSON whitespace. Compact JSON has none, so the first test is the whole cost.
#[inline(always)]
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

/// The validator proper: one loop over the bytes with the position, depth and container
/// kind in locals, everything but the error paths inlined, so that the hot path is a few
/// compares per token. Returns the first byte of the value, which says its kind.
///
/// Nesting is a 128-bit mask in two words (bit `d` set: the container at depth `d + 1` is an object), so
/// neither recursion nor a heap stack is needed whatever the input; the kind of the
/// innermost container is kept apart, and read back from the mask only when one closes.
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
                (None, _) => return Err(error(i, "unexpected end of input inside a container")),
                (_, true) => return Err(error(i, "expected ',' or '}' after an object member")),
                (_, false) => return Err(error(i, "expected ',' or ']' after an array element")),
            }
        }
    }
}

/// Whether the container at depth `at + 1` is an object.
#[inline(always)]
fn is_object(objects: &[u64; 2], at: usize) -> bool {
    objects[(at >> 6) & 1] >> (at & 63) & 1 == 1
}

/// Reads `"name" :` at the start of an object member; returns the position after the colon.
#[inline(always)]
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

#[inline(always)]
fn literal(b: &[u8], i: usize, word: &[u8]) -> Result<usize, JsonError> {
    match b.get(i..i + word.len()) == Some(word) {
        true => Ok(i + word.len()),
        false => Err(error(i, "expected a JSON value")),
    }
}

/// The index of the first `"`, `\` or control character in `b[i..]`, or `b.len()`.
///
/// Eight bytes at a time: in `word ^ pattern` a matching byte is zero, and
/// `(x - 0x01..) & !x & 0x80..` flags zero bytes (`(w - 0x20..) & !w & 0x80..` flags bytes
/// below 0x20). Only the lowest flag of each test is exact (borrows run upwards), so only the
/// lowest flag of their union is read, and it is a true one.
#[inline(always)]
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
        let found =
            (q.wrapping_sub(ONES) & !q | s.wrapping_sub(ONES) & !s | w.wrapping_sub(SPACES) & !w)
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

/// Reads the rest of a string whose opening quote is just before `i`; returns the position
/// after the closing quote.
#[inline(always)]
fn string(b: &[u8], mut i: usize) -> Result<usize, JsonError> {
    loop {
        i = plain_run_end(b, i);
        match b.get(i) {
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => i = escape(b, i)?,
            None => return Err(error(i, "unterminated string")),
            // The scan stopped here, so this is a control character. (The input is a
            // `&str`, so multi-byte characters are valid UTF-8.)
            Some(_) => return Err(error(i, "control character must be escaped in a string")),
        }
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
                    _ => return Err(error(i, "expected four hex digits after \\u")),
                }
            }
            Ok(i)
        }
        _ => Err(error(i + 1, "invalid escape sequence in string")),
    }
}

#[inline(always)]
fn digits(b: &[u8], mut i: usize) -> usize {
    while let Some(b'0'..=b'9') = b.get(i) {
        i += 1;
    }
    i
}

#[inline(always)]
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
}

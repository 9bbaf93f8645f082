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
    Validator {
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
        // Bit `d` is set when the container at depth `d + 1` is an object; 128 bits cover
        // `MAX_DEPTH`.
        objects: 0,
    }
    .run()
}

struct Validator<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    objects: u128,
}

impl Validator<'_> {
    fn run(mut self) -> Result<(), JsonError> {
        loop {
            // A value is expected here.
            self.skip_whitespace();
            match self.peek() {
                Some(b'{') => {
                    self.open(true)?;
                    self.skip_whitespace();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        self.close();
                    } else {
                        self.member_name()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.open(false)?;
                    self.skip_whitespace();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        self.close();
                    } else {
                        continue;
                    }
                }
                Some(b'"') => self.string()?,
                Some(b't') => self.literal("true")?,
                Some(b'f') => self.literal("false")?,
                Some(b'n') => self.literal("null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(_) => return Err(self.error("expected a JSON value")),
                None => return Err(self.error("unexpected end of input, expected a value")),
            }

            // A value just ended: close containers until one wants another value.
            loop {
                self.skip_whitespace();
                if self.depth == 0 {
                    return match self.peek() {
                        None => Ok(()),
                        Some(_) => Err(self.error("unexpected text after the JSON value")),
                    };
                }
                let in_object = self.objects >> (self.depth - 1) & 1 == 1;
                match (self.peek(), in_object) {
                    (Some(b','), true) => {
                        self.pos += 1;
                        self.skip_whitespace();
                        self.member_name()?;
                        break;
                    }
                    (Some(b','), false) => {
                        self.pos += 1;
                        break;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        self.pos += 1;
                        self.close();
                    }
                    (None, _) => {
                        return Err(self.error("unexpected end of input inside a container"));
                    }
                    (_, true) => {
                        return Err(self.error("expected ',' or '}' after an object member"));
                    }
                    (_, false) => {
                        return Err(self.error("expected ',' or ']' after an array element"));
                    }
                }
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn error(&self, reason: &'static str) -> JsonError {
        JsonError {
            offset: self.pos,
            reason,
        }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn open(&mut self, object: bool) -> Result<(), JsonError> {
        if self.depth == MAX_DEPTH {
            return Err(self.error("nesting deeper than 127 levels"));
        }
        let bit = 1u128 << self.depth;
        if object {
            self.objects |= bit;
        } else {
            self.objects &= !bit;
        }
        self.depth += 1;
        self.pos += 1;
        Ok(())
    }

    fn close(&mut self) {
        self.depth -= 1;
    }

    /// Reads `"name" :` at the start of an object member.
    fn member_name(&mut self) -> Result<(), JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a string as the object member name"));
        }
        self.string()?;
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return Err(self.error("expected ':' after the object member name"));
        }
        self.pos += 1;
        Ok(())
    }

    fn literal(&mut self, word: &'static str) -> Result<(), JsonError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    fn string(&mut self) -> Result<(), JsonError> {
        self.pos += 1; // the opening quote
        loop {
            // Most of a string is plain text: skip it in one tight scan.
            let plain = self.bytes[self.pos..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            self.pos = plain.map_or(self.bytes.len(), |at| self.pos + at);
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1;
                        }
                        Some(b'u') => {
                            self.pos += 1;
                            for _ in 0..4 {
                                match self.peek() {
                                    Some(b) if b.is_ascii_hexdigit() => self.pos += 1,
                                    _ => {
                                        return Err(
                                            self.error("expected four hex digits after \\u")
                                        );
                                    }
                                }
                            }
                        }
                        _ => return Err(self.error("invalid escape sequence in string")),
                    }
                }
                // The scan stopped here, so this is a control character. (The
                // input is a `&str`, so multi-byte characters are valid UTF-8.)
                Some(_) => {
                    return Err(self.error("control character must be escaped in a string"));
                }
            }
        }
    }

    fn number(&mut self) -> Result<(), JsonError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.error("leading zeros are not allowed in numbers"));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.required_digits("expected a digit after the decimal point")?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.required_digits("expected a digit in the exponent")?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn required_digits(&mut self, reason: &'static str) -> Result<(), JsonError> {
        match self.peek() {
            Some(b'0'..=b'9') => {
                self.digits();
                Ok(())
            }
            _ => Err(self.error(reason)),
        }
    }
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
}

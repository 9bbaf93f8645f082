//! Decoding `application/x-www-form-urlencoded` text, the format of query strings.
//!
//! Two flavours share one byte decoder: [`decode_lossy`] follows the WHATWG URL standard (what
//! browsers and `URLSearchParams` do: a `%` not followed by two hex digits stays literal, bytes
//! that are not UTF-8 become U+FFFD), which suits general query parameters; [`decode_strict`]
//! refuses both, which suits the Datastar signals, where a damaged escape should be reported
//! rather than quietly turned into different JSON.

use std::borrow::Cow;
use std::fmt;

/// Why [`decode_strict`] refused a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// A `%` at this byte offset is not followed by two hex digits.
    BadEscape(usize),
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::BadEscape(at) => {
                write!(f, "'%' at byte {at} is not followed by two hex digits")
            }
            DecodeError::NotUtf8 => f.write_str("percent-decoded bytes are not UTF-8"),
        }
    }
}

/// Decodes `+` as a space and `%XX` as a byte, keeping malformed escapes literally and
/// replacing bytes that are not UTF-8 with U+FFFD.
pub(crate) fn decode_lossy(input: &str) -> Cow<'_, str> {
    match decode_bytes(input) {
        Decoded::Unchanged => Cow::Borrowed(input),
        Decoded::Bytes { bytes, .. } => match String::from_utf8(bytes) {
            Ok(text) => Cow::Owned(text),
            Err(err) => Cow::Owned(String::from_utf8_lossy(err.as_bytes()).into_owned()),
        },
    }
}

/// Decodes `+` as a space and `%XX` as a byte, refusing malformed escapes and decoded bytes that
/// are not UTF-8.
pub(crate) fn decode_strict(input: &str) -> Result<Cow<'_, str>, DecodeError> {
    match decode_bytes(input) {
        Decoded::Unchanged => Ok(Cow::Borrowed(input)),
        Decoded::Bytes {
            bad_escape: Some(at),
            ..
        } => Err(DecodeError::BadEscape(at)),
        Decoded::Bytes { bytes, .. } => String::from_utf8(bytes)
            .map(Cow::Owned)
            .map_err(|_| DecodeError::NotUtf8),
    }
}

enum Decoded {
    /// Nothing to decode: the input can be borrowed as it is.
    Unchanged,
    Bytes {
        bytes: Vec<u8>,
        /// Offset of the first `%` without two hex digits after it (kept literally in `bytes`).
        bad_escape: Option<usize>,
    },
}

fn decode_bytes(input: &str) -> Decoded {
    let raw = input.as_bytes();
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return Decoded::Unchanged;
    }
    // Decoding only ever shrinks the text, so this is the one allocation.
    let mut bytes = Vec::with_capacity(raw.len());
    let mut bad_escape = None;
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => {
                bytes.push(b' ');
                i += 1;
            }
            b'%' => match (raw.get(i + 1).and_then(hex), raw.get(i + 2).and_then(hex)) {
                (Some(high), Some(low)) => {
                    bytes.push(high << 4 | low);
                    i += 3;
                }
                _ => {
                    bad_escape.get_or_insert(i);
                    bytes.push(b'%');
                    i += 1;
                }
            },
            other => {
                bytes.push(other);
                i += 1;
            }
        }
    }
    Decoded::Bytes { bytes, bad_escape }
}

fn hex(byte: &u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(decode_lossy("abc-._~"), Cow::Borrowed("abc-._~")));
        assert!(matches!(decode_strict("abc"), Ok(Cow::Borrowed("abc"))));
    }

    #[test]
    fn decodes_plus_and_escapes() {
        let cases = [
            ("a+b", "a b"),
            ("a%20b", "a b"),
            ("%2B", "+"),
            ("%7B%22a%22%3A1%7D", r#"{"a":1}"#),
            ("%c3%A9t%C3%a9", "été"),
            ("100%25", "100%"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(decode_lossy(input), expected, "{input:?}");
            assert_eq!(decode_strict(input).unwrap(), expected, "{input:?}");
        }
    }

    #[test]
    fn lossy_keeps_bad_escapes_and_replaces_bad_utf8() {
        assert_eq!(decode_lossy("100%"), "100%");
        assert_eq!(decode_lossy("%zz+%4"), "%zz %4");
        assert_eq!(decode_lossy("a%FFb"), "a\u{FFFD}b");
        assert_eq!(decode_lossy("%E2%82"), "\u{FFFD}");
    }

    #[test]
    fn strict_refuses_bad_escapes_and_bad_utf8() {
        assert_eq!(decode_strict("ab%zz"), Err(DecodeError::BadEscape(2)));
        assert_eq!(decode_strict("%4"), Err(DecodeError::BadEscape(0)));
        assert_eq!(decode_strict("x%"), Err(DecodeError::BadEscape(1)));
        assert_eq!(decode_strict("%FF"), Err(DecodeError::NotUtf8));
        assert_eq!(
            DecodeError::BadEscape(3).to_string(),
            "'%' at byte 3 is not followed by two hex digits"
        );
    }
}

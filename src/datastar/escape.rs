//! Escaping for text that lands inside a `<script>` element or an HTML attribute value.
//!
//! Everything here streams into a [`Lines`] run, piece by piece, so escaping allocates nothing.

use std::io;

use crate::event::{Lines, invalid_input};

/// Pushes `text` as a double-quoted string literal that means the same to JavaScript and to
/// JSON, and that cannot end the `<script>` element it sits in.
///
/// Besides quotes, backslash and control characters, `<`, `>` and `&` are written as `\u` escapes
/// so that no HTML markup appears in the script at all, `'` so that the literal also survives
/// being moved into single quotes, and U+2028/U+2029 because JavaScript before ES2019 ends lines
/// at them. The literal never contains CR or LF, so it never splits a data line.
pub(super) fn push_js_string(out: &mut Lines<'_, '_>, text: &str) {
    out.push("\"");
    let bytes = text.as_bytes();
    let mut clean = 0;
    let mut at = 0;
    let mut hex = [0u8; 6];
    while at < bytes.len() {
        let (escaped, len): (&str, usize) = match bytes[at] {
            b'"' => ("\\\"", 1),
            b'\\' => ("\\\\", 1),
            b'\n' => ("\\n", 1),
            b'\r' => ("\\r", 1),
            b'\t' => ("\\t", 1),
            b'<' => ("\\u003C", 1),
            b'>' => ("\\u003E", 1),
            b'&' => ("\\u0026", 1),
            b'\'' => ("\\u0027", 1),
            b @ (0x00..=0x1f | 0x7f) => (unicode_escape(b, &mut hex), 1),
            0xe2 if bytes[at + 1..].starts_with(&[0x80, 0xa8]) => ("\\u2028", 3),
            0xe2 if bytes[at + 1..].starts_with(&[0x80, 0xa9]) => ("\\u2029", 3),
            _ => {
                at += 1;
                continue;
            }
        };
        // Every escaped sequence starts and ends on a character boundary.
        out.push(&text[clean..at]).push(escaped);
        at += len;
        clean = at;
    }
    out.push(&text[clean..]).push("\"");
}

/// `\u00XX` for an ASCII byte.
fn unicode_escape(byte: u8, buf: &mut [u8; 6]) -> &str {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    *buf = *b"\\u0000";
    buf[4] = HEX[usize::from(byte >> 4)];
    buf[5] = HEX[usize::from(byte & 0xf)];
    // Only ASCII was written, so this is always UTF-8.
    std::str::from_utf8(buf).unwrap_or_default()
}

/// Pushes script source so that the HTML parser ends the `<script>` element only at the closing
/// tag we write after it.
///
/// The HTML tokenizer ends a script element at `</script` followed by whitespace, `/` or `>`
/// (any case), and after `<!--` a `<script` followed by one of those makes it skip the next
/// `</script>` (the "double escaped" state of WHATWG HTML §13.2.5.27). So:
///
/// - every `</script` (any case, whatever follows) becomes `<\/script`;
/// - every `<script` followed by whitespace, `/`, `>` or the end of the text becomes
///   `\u003Cscript`.
///
/// Both rewrites mean the same as the original inside JavaScript strings, template literals,
/// regular expressions (with or without the `u` flag), comments and JSON, which is where such
/// text occurs in a working script. `<scriptCount` and the like are left alone, so comparisons
/// such as `i<scriptCount` keep working.
pub(super) fn push_script_text(out: &mut Lines<'_, '_>, text: &str) {
    let bytes = text.as_bytes();
    let mut clean = 0;
    let mut from = 0;
    while let Some(found) = bytes[from..].iter().position(|&b| b == b'<') {
        let lt = from + found;
        let rest = &bytes[lt + 1..];
        if starts_with_ignore_case(rest, b"/script") {
            // `<` and `/` are ASCII, so both cuts are on character boundaries.
            out.push(&text[clean..=lt]).push("\\/");
            clean = lt + 2;
        } else if starts_with_ignore_case(rest, b"script")
            && rest
                .get(b"script".len())
                .is_none_or(|&b| matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' ' | b'/' | b'>'))
        {
            out.push(&text[clean..lt]).push("\\u003C");
            clean = lt + 1;
        }
        from = lt + 1;
    }
    out.push(&text[clean..]);
}

fn starts_with_ignore_case(text: &[u8], prefix: &[u8]) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Pushes an attribute value for a double-quoted attribute.
///
/// `&` and `"` are all a double-quoted value needs; `'`, `<` and `>` are escaped as well so the
/// value stays inert if someone copies it into another context. A NUL becomes U+FFFD, which is
/// what the HTML parser makes of it (WHATWG HTML §13.2.5.36), so the bytes on the wire say what
/// the page will see rather than a character a strict parser would reject.
pub(super) fn push_attribute_value(out: &mut Lines<'_, '_>, value: &str) {
    let mut clean = 0;
    for (at, byte) in value.bytes().enumerate() {
        let escaped = match byte {
            b'&' => "&amp;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'\0' => "\u{FFFD}",
            _ => continue,
        };
        out.push(&value[clean..at]).push(escaped);
        clean = at + 1;
    }
    out.push(&value[clean..]);
}

/// Refuses an attribute name the HTML tokenizer would not read back as one whole name.
///
/// WHATWG HTML §13.1.2.3: a name is one or more characters other than controls, space, `"`, `'`,
/// `>`, `/` and `=`; `<` is refused as well, since the tokenizer flags it as an error.
pub(super) fn check_attribute_name(name: &str) -> io::Result<()> {
    if name.is_empty() {
        return Err(invalid_input("script attribute name", name, "is empty"));
    }
    let bad = |b: u8| {
        b < 0x20 || b == 0x7f || matches!(b, b' ' | b'"' | b'\'' | b'>' | b'/' | b'=' | b'<')
    };
    if name.bytes().any(bad) {
        return Err(invalid_input(
            "script attribute name",
            name,
            "contains a space, a control character or one of \" ' < > / =",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{DataWriter, Encode, EventMeta, format_event};

    /// Runs `write` in a one-line `data: ` run and returns what it wrote on that line.
    fn pushed(write: impl Fn(&mut Lines<'_, '_>)) -> String {
        struct Run<F>(F);
        impl<F: Fn(&mut Lines<'_, '_>)> Encode for Run<F> {
            fn meta(&self) -> EventMeta<'_> {
                EventMeta::new("")
            }
            fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()> {
                (self.0)(&mut data.lines("")?);
                Ok(())
            }
        }
        let text = format_event(&Run(write)).unwrap();
        let body = text.strip_prefix("data: ").unwrap().strip_suffix("\n\n");
        body.unwrap().replace("\ndata: ", "\n")
    }

    #[test]
    fn js_strings_escape_everything_that_matters_in_a_script() {
        let out =
            pushed(|l| push_js_string(l, "a\"b\\c\n\r\t<>&'\u{0}\u{1f}\u{7f}\u{2028}\u{2029}é"));
        assert_eq!(
            out,
            r#""a\"b\\c\n\r\t\u003C\u003E\u0026\u0027\u0000\u001F\u007F\u2028\u2029é""#
        );
        assert_eq!(pushed(|l| push_js_string(l, "")), "\"\"");
        // A lone 0xE2 lead byte of another character is left alone.
        assert_eq!(pushed(|l| push_js_string(l, "\u{2027}€")), "\"\u{2027}€\"");
    }

    #[test]
    fn js_strings_are_json_too() {
        let nasty = "</script><!--\"'\\\u{0}\u{2028}\n\u{10ffff}";
        let literal = pushed(|l| push_js_string(l, nasty));
        let back: String = serde_json::from_str(&literal).unwrap();
        assert_eq!(back, nasty);
    }

    #[test]
    fn script_text_cannot_close_or_double_escape_its_element() {
        let cases = [
            ("x = '</script>'", r"x = '<\/script>'"),
            ("'</SCRIPT '", r"'<\/SCRIPT '"),
            ("a</ScRiPt", r"a<\/ScRiPt"),
            ("a</scripts>", r"a<\/scripts>"),
            ("'<!--<script>'", r"'<!--\u003Cscript>'"),
            ("<SCRIPT/", r"\u003CSCRIPT/"),
            ("<script", r"\u003Cscript"),
            ("<script\t", "\\u003Cscript\t"),
            ("i<scriptCount", "i<scriptCount"),
            ("a < b && c <d", "a < b && c <d"),
            ("<</script<script>", r"<<\/script\u003Cscript>"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(
                pushed(|l| push_script_text(l, input)),
                expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn attribute_values_are_escaped() {
        assert_eq!(
            pushed(|l| push_attribute_value(l, r#"a&b"c'd<e>f"#)),
            "a&amp;b&quot;c&#39;d&lt;e&gt;f"
        );
        assert_eq!(pushed(|l| push_attribute_value(l, "plain")), "plain");
        assert_eq!(
            pushed(|l| push_attribute_value(l, "\0a\0\0")),
            "\u{FFFD}a\u{FFFD}\u{FFFD}"
        );
    }

    #[test]
    fn attribute_names_are_checked() {
        for good in ["type", "data-on:click", "x_y.z", "é"] {
            check_attribute_name(good).unwrap();
        }
        for bad in [
            "", "a b", "a\"", "a'", "a>", "a/", "a=", "a<", "a\n", "a\r", "a\0", "\u{7f}",
        ] {
            let err = check_attribute_name(bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            assert!(err.to_string().starts_with("script attribute name"));
        }
    }
}

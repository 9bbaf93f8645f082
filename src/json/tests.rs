//! The JSON check against the validator it replaced, kept as the oracle, and
//! against serde_json.

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
        "\"", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9", "\\uD800", "\\u12G4", "\\u12", "\\x", "\\",
        "\u{0}", "\u{1f}", "\t", "\u{7f}", "é", "#", "]", "!",
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

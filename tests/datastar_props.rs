//! Whatever strings a Datastar event is given, it is either refused with `InvalidInput` or a
//! browser decodes exactly one event with exactly the expected data lines: never an extra field,
//! never an extra event, never a script that escapes its element.

use dstar::datastar::{
    ConsoleLog, DispatchEvent, ElementPatchMode, ExecuteScript, Namespace, PatchElements,
    PatchSignals, Redirect, RemoveSignals,
};
use dstar::testing::{self, MessageEvent};
use dstar::{Encode, format_event};
use proptest::prelude::*;
use serde_json::Value;
use std::io;

/// Text rich in what breaks event streams, HTML and JavaScript.
fn nasty_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(vec![
            "\r", "\n", "\r\n", "\0", "\t", " ", ":", ".", "\"", "'", "\\", "<", ">", "&", "=",
            "/", "data: x", "event: y", "</script>", "</SCRIPT ", "<script>", "<!--", "-->",
            "javascript:", "//", "https://", "\u{2028}", "\u{feff}", "é", "😀", "{", "}", "null",
        ])
        .prop_map(str::to_string),
        2 => "[a-z]{1,4}",
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

fn has_break(text: &str) -> bool {
    text.contains(['\r', '\n'])
}

fn lines(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .split('\n')
        .map(str::to_string)
        .collect()
}

/// Formats `event`; on success decodes it as a browser would and checks it is one whole event.
fn encode(event: &impl Encode) -> Result<MessageEvent, io::Error> {
    let text = format_event(event)?;
    Ok(decode_one(&text).unwrap_or_else(|| panic!("no event dispatched: {text:?}")))
}

/// Decodes one formatted event; `None` if it has no data lines, so a browser dispatches nothing.
fn decode_one(text: &str) -> Option<MessageEvent> {
    let stream = testing::parse_event_stream(text.as_bytes());
    assert!(stream.events.len() <= 1, "several events: {text:?}");
    assert!(!stream.pending, "trailing fields: {text:?}");
    assert!(stream.comments.is_empty(), "comment lines: {text:?}");
    if stream.events.is_empty() {
        assert!(
            !text.contains("\ndata:"),
            "data lines, yet no event: {text:?}"
        );
    }
    stream.events.into_iter().next()
}

/// The HTML of a script event's `elements` lines, joined back with `\n`.
fn script_element(event: &MessageEvent) -> String {
    let rest = event
        .data
        .strip_prefix("mode append\nselector body\n")
        .unwrap_or_else(|| panic!("not a script event: {:?}", event.data));
    rest.split('\n')
        .map(|line| line.strip_prefix("elements ").expect("an elements line"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks that the HTML parser would end the element exactly at its end, and returns the
/// script's source.
fn script_source(html: &str) -> String {
    assert!(html.starts_with("<script"), "{html:?}");
    assert!(html.ends_with("</script>"), "{html:?}");
    let lower = html.to_ascii_lowercase();
    assert_eq!(
        lower.matches("</script").count(),
        1,
        "closes early: {html:?}"
    );
    let tag_starts = lower
        .match_indices("<script")
        .filter(|(at, _)| {
            lower[at + 7..]
                .bytes()
                .next()
                .is_none_or(|b| matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' ' | b'/' | b'>'))
        })
        .count();
    assert_eq!(tag_starts, 1, "nested script tag: {html:?}");
    // Attribute values are escaped, so the first `>` ends the start tag.
    let open_end = html.find('>').unwrap();
    html[open_end + 1..html.len() - "</script>".len()].to_string()
}

/// Undoes the neutralising rewrites, to compare script sources up to them.
fn unneutralised(source: &str) -> String {
    source.replace("<\\/", "</").replace("\\u003C", "<")
}

fn html_escaped(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        // What the HTML parser makes of a NUL in an attribute value.
        .replace('\0', "\u{FFFD}")
}

fn valid_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && !name.bytes().any(|b| {
            b < 0x20 || b == 0x7f || matches!(b, b' ' | b'"' | b'\'' | b'>' | b'/' | b'=' | b'<')
        })
}

/// The string literal `prefix"…"suffix` holds, read back as JSON.
fn literal_between(source: &str, prefix: &str, suffix: &str) -> String {
    let literal = source
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
        .unwrap_or_else(|| panic!("unexpected script {source:?}"));
    serde_json::from_str(literal).unwrap()
}

fn mode() -> impl Strategy<Value = ElementPatchMode> {
    prop::sample::select(vec![
        ElementPatchMode::Outer,
        ElementPatchMode::Inner,
        ElementPatchMode::Replace,
        ElementPatchMode::Prepend,
        ElementPatchMode::Append,
        ElementPatchMode::Before,
        ElementPatchMode::After,
        ElementPatchMode::Remove,
    ])
}

fn namespace() -> impl Strategy<Value = Namespace> {
    prop::sample::select(vec![Namespace::Html, Namespace::Svg, Namespace::Mathml])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn patch_elements_is_refused_or_exact(
        html in nasty_text(),
        selector in nasty_text(),
        vts in nasty_text(),
        id in prop::option::of(nasty_text()),
        mode in mode(),
        namespace in namespace(),
        view_transition: bool,
    ) {
        let mut event = PatchElements::new(&html)
            .selector(&selector)
            .view_transition_selector(&vts)
            .use_view_transition(view_transition)
            .mode(mode)
            .namespace(namespace);
        if let Some(id) = &id {
            event = event.id(id);
        }
        let must_refuse = has_break(&selector)
            || has_break(&vts)
            || id.as_deref().is_some_and(|id| has_break(id) || id.contains('\0'));
        match format_event(&event) {
            Err(err) => {
                prop_assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
                prop_assert!(must_refuse, "refused: {}", err);
            }
            Ok(text) => {
                prop_assert!(!must_refuse);
                let mut expected = Vec::new();
                if !selector.is_empty() {
                    expected.push(format!("selector {selector}"));
                }
                if mode != ElementPatchMode::Outer {
                    expected.push(format!("mode {mode}"));
                }
                if view_transition {
                    expected.push("useViewTransition true".to_string());
                    if !vts.is_empty() {
                        expected.push(format!("viewTransitionSelector {vts}"));
                    }
                }
                if namespace != Namespace::Html {
                    expected.push(format!("namespace {namespace}"));
                }
                if !html.is_empty() {
                    expected.extend(lines(&html).iter().map(|line| format!("elements {line}")));
                }
                // With nothing to say the event has no data lines, and a browser skips it.
                let Some(decoded) = decode_one(&text) else {
                    prop_assert!(expected.is_empty(), "{:?}", text);
                    return Ok(());
                };
                prop_assert_eq!(decoded.event_type, "datastar-patch-elements");
                prop_assert_eq!(decoded.id, id);
                prop_assert_eq!(decoded.data, expected.join("\n"));
            }
        }
    }

    #[test]
    fn execute_script_is_refused_or_contained(
        script in nasty_text(),
        attributes in prop::collection::vec(
            (
                prop_oneof![
                    3 => "[a-z][a-z-]{0,6}",
                    1 => Just("data-effect".to_string()),
                    1 => Just("Type".to_string()),
                    1 => nasty_text(),
                ],
                nasty_text(),
            ),
            0..3,
        ),
        auto_remove: bool,
    ) {
        let pairs: Vec<(&str, &str)> =
            attributes.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let event = ExecuteScript::new(&script).attributes(&pairs).auto_remove(auto_remove);
        // HTML keeps only the first of two attributes with one name (ASCII
        // case-insensitive), so a repeat, or a data-effect beside ours, is refused.
        let repeated = attributes.iter().enumerate().any(|(at, (name, _))| {
            attributes[..at].iter().any(|(earlier, _)| earlier.eq_ignore_ascii_case(name))
                || (auto_remove && name.eq_ignore_ascii_case("data-effect"))
        });
        let must_refuse = repeated
            || attributes
                .iter()
                .any(|(name, value)| !valid_attribute_name(name) || has_break(value));
        match encode(&event) {
            Err(err) => {
                prop_assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
                prop_assert!(must_refuse, "refused: {}", err);
            }
            Ok(decoded) => {
                prop_assert!(!must_refuse);
                prop_assert_eq!(&decoded.event_type, "datastar-patch-elements");
                let html = script_element(&decoded);
                let mut open = String::from("<script");
                for (name, value) in &attributes {
                    open.push_str(&format!(" {name}=\"{}\"", html_escaped(value)));
                }
                if auto_remove {
                    open.push_str(" data-effect=\"el.remove()\"");
                }
                open.push('>');
                prop_assert!(html.starts_with(&open), "{:?} does not start with {:?}", html, open);
                let source = script_source(&html);
                prop_assert_eq!(unneutralised(&source), unneutralised(&lines(&script).join("\n")));
            }
        }
    }

    #[test]
    fn patch_signals_sends_json_objects_verbatim(
        text in prop_oneof![
            nasty_text(),
            prop::collection::btree_map("[a-z\"\\\\<\u{2028}]{0,3}", nasty_text(), 0..4)
                .prop_flat_map(|map| (Just(map), any::<bool>()))
                .prop_map(|(map, pretty)| if pretty {
                    serde_json::to_string_pretty(&map).unwrap()
                } else {
                    serde_json::to_string(&map).unwrap()
                }),
        ],
        only_if_missing: bool,
    ) {
        let is_object = serde_json::from_str::<Value>(&text).is_ok_and(|v| v.is_object());
        let event = PatchSignals::new(&text).only_if_missing(only_if_missing);
        match encode(&event) {
            Err(err) => {
                prop_assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
                prop_assert!(!is_object, "refused an object: {}", err);
            }
            Ok(decoded) => {
                prop_assert!(is_object, "accepted {:?}", text);
                let mut expected = Vec::new();
                if only_if_missing {
                    expected.push("onlyIfMissing true".to_string());
                }
                expected.extend(lines(&text).iter().map(|line| format!("signals {line}")));
                prop_assert_eq!(&decoded.event_type, "datastar-patch-signals");
                prop_assert_eq!(decoded.data, expected.join("\n"));
            }
        }
    }

    #[test]
    fn remove_signals_is_refused_or_removes_exactly_the_paths(
        paths in prop::collection::vec(
            prop::collection::vec(prop_oneof![4 => "[a-c]{1,2}", 1 => nasty_text()], 1..4)
                .prop_map(|segments| segments.join(".")),
            0..5,
        ),
    ) {
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let must_refuse = paths.iter().any(|path| {
            path.split('.').any(|s| s.is_empty() || s.chars().any(|c| c.is_ascii_control()))
        });
        match encode(&RemoveSignals::new(&refs)) {
            Err(err) => {
                prop_assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
                prop_assert!(must_refuse, "refused: {}", err);
            }
            Ok(decoded) => {
                prop_assert!(!must_refuse);
                let json = decoded.data.strip_prefix("signals ").unwrap();
                prop_assert!(!json.contains('\n'));
                let patch: Value = serde_json::from_str(json).unwrap();
                // Every path is removed, itself or through an ancestor that is removed too.
                for path in &paths {
                    let mut at = &patch;
                    let mut walked = Vec::new();
                    for segment in path.split('.') {
                        if at.is_null() {
                            break;
                        }
                        walked.push(segment);
                        at = &at[segment];
                    }
                    prop_assert!(at.is_null(), "{} not removed in {}", path, json);
                    prop_assert!(paths.contains(&walked.join(".")), "{} removed more", json);
                }
                // And nothing else is: every null in the patch is one of the paths.
                fn leaves(value: &Value, prefix: &str, out: &mut Vec<String>) {
                    match value {
                        Value::Object(map) => {
                            assert!(!map.is_empty(), "empty object in a removal");
                            for (key, value) in map {
                                let path = if prefix.is_empty() {
                                    key.clone()
                                } else {
                                    format!("{prefix}.{key}")
                                };
                                leaves(value, &path, out);
                            }
                        }
                        Value::Null => out.push(prefix.to_string()),
                        other => panic!("unexpected {other}"),
                    }
                }
                let mut removed = Vec::new();
                if !paths.is_empty() {
                    leaves(&patch, "", &mut removed);
                }
                for leaf in removed {
                    prop_assert!(paths.contains(&leaf), "{} was not asked for", leaf);
                }
            }
        }
    }

    #[test]
    fn redirects_never_reach_a_script_scheme(
        url in prop_oneof![
            nasty_text(),
            (prop::sample::select(vec![
                "", " ", "\t", "\0", "javascript:", "JAVASCRIPT:", "java\tscript:", "data:",
                "vbscript:", "http://", "https:", "//", "/\\", "\\\\", "/", "?", "#",
            ]), nasty_text())
                .prop_map(|(start, rest)| format!("{start}{rest}")),
        ],
        allow_other_origins: bool,
    ) {
        let event = Redirect::new(&url).allow_other_origins(allow_other_origins);
        match encode(&event) {
            Err(err) => prop_assert_eq!(err.kind(), io::ErrorKind::InvalidInput),
            Ok(decoded) => {
                let source = script_source(&script_element(&decoded));
                let target = literal_between(
                    &source,
                    "setTimeout(() => window.location.href = ",
                    ")",
                );
                prop_assert_eq!(&target, &url);
                // What a browser's URL parser makes of it (WHATWG URL: strip leading C0 and
                // space, drop tab and newlines), and the scheme it then sees.
                let seen: String = url
                    .trim_start_matches(|c: char| c <= ' ')
                    .chars()
                    .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
                    .collect();
                let scheme = seen.split_once(':').map(|(s, _)| s).filter(|s| {
                    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                        && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                });
                if let Some(scheme) = scheme {
                    let scheme = scheme.to_ascii_lowercase();
                    prop_assert!(scheme == "http" || scheme == "https", "{:?}", url);
                    prop_assert!(allow_other_origins, "{:?}", url);
                }
                let two_slashes = seen.starts_with("//")
                    || seen.starts_with("/\\")
                    || seen.starts_with("\\/")
                    || seen.starts_with("\\\\");
                prop_assert!(!two_slashes || allow_other_origins, "{:?}", url);
            }
        }
    }

    #[test]
    fn helper_strings_round_trip_as_literals(message in nasty_text(), name in nasty_text()) {
        let decoded = encode(&ConsoleLog::new(&message)).unwrap();
        let source = script_source(&script_element(&decoded));
        prop_assert_eq!(literal_between(&source, "console.log(", ")"), message);

        match encode(&DispatchEvent::new(&name)) {
            Err(err) => {
                prop_assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
                prop_assert!(name.is_empty() || has_break(&name));
            }
            Ok(decoded) => {
                let source = script_source(&script_element(&decoded));
                let got = literal_between(
                    &source,
                    "document.dispatchEvent(new CustomEvent(",
                    ", {bubbles: true, cancelable: true, composed: true, detail: null}))",
                );
                prop_assert_eq!(got, name);
            }
        }
    }
}

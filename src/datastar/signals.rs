//! `datastar-patch-signals`: a JSON merge patch for the page's signals.

use std::io;

use super::PATCH_SIGNALS;
use super::escape::push_js_string;
use crate::event::{DataWriter, Encode, EventMeta, Head, Lines, OneLine, invalid_input, sealed};
use crate::json;

/// A `datastar-patch-signals` event: JSON merged into the page's signals
/// ([RFC 7386](https://datatracker.ietf.org/doc/html/rfc7386) merge patch: `null` removes a
/// signal, objects merge recursively).
///
/// The text must be one well-formed JSON object (RFC 8259), nested no deeper than serde_json
/// reads by default; anything else is refused with [`io::ErrorKind::InvalidInput`] when the
/// event is written, since the browser could do nothing with it. It is sent as it is, one
/// `signals` line per line, so pretty-printed JSON is fine.
///
/// ```
/// use dstar::datastar::PatchSignals;
/// use dstar::format_event;
///
/// let event = PatchSignals::new("{\"count\": 1,\n \"open\": true}").only_if_missing(true);
/// assert_eq!(
///     format_event(&event)?,
///     "event: datastar-patch-signals\n\
///      data: onlyIfMissing true\n\
///      data: signals {\"count\": 1,\n\
///      data: signals  \"open\": true}\n\
///      \n"
/// );
///
/// let refused = format_event(&PatchSignals::new("{\"count\": }"));
/// assert_eq!(refused.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchSignals<'a> {
    meta: EventMeta<'a>,
    signals: &'a str,
    /// The text is known to be a JSON object (it came as [`Signals`]).
    checked: bool,
    only_if_missing: bool,
}

/// JSON object text checked once, as [`PatchSignals`] would check it, so that
/// sending it again (to many connections, or many times) does not check it
/// again: see [`PatchSignals::checked`].
///
/// ```
/// use dstar::datastar::{PatchSignals, Signals};
///
/// let signals = Signals::new(r#"{"count":1}"#)?;
/// let event = PatchSignals::checked(signals); // not checked again when written
/// assert_eq!(
///     dstar::format_event(&event)?,
///     "event: datastar-patch-signals\ndata: signals {\"count\":1}\n\n"
/// );
/// assert!(Signals::new("[1]").is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Signals<'a>(&'a str);

impl<'a> Signals<'a> {
    /// Checks that `text` is one well-formed JSON object (RFC 8259, nested no
    /// deeper than serde_json reads by default); refused with
    /// [`io::ErrorKind::InvalidInput`] otherwise.
    pub fn new(text: &'a str) -> io::Result<Self> {
        check_json_object(text)?;
        Ok(Signals(text))
    }

    /// Serializes `value` with serde_json into `out` (cleared first, and
    /// reusable: its capacity is kept) and takes the text as checked:
    /// serde_json writes well-formed JSON, so only its kind is looked at (and
    /// its bytes taken back as a `String` by std's UTF-8 check).
    /// A value that is not serialized as an object (a number, a list) is
    /// refused with [`io::ErrorKind::InvalidInput`].
    ///
    /// ```
    /// use dstar::datastar::{PatchSignals, Signals};
    ///
    /// #[derive(serde::Serialize)]
    /// struct Counter { count: u32 }
    ///
    /// let mut json = String::new();
    /// let signals = Signals::serialize(&Counter { count: 2 }, &mut json)?;
    /// assert_eq!(signals.as_str(), r#"{"count":2}"#);
    /// let _event = PatchSignals::checked(signals);
    /// assert!(Signals::serialize(&[1, 2], &mut json).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(feature = "serde")]
    pub fn serialize<T: serde::Serialize + ?Sized>(
        value: &T,
        out: &'a mut String,
    ) -> io::Result<Self> {
        out.clear();
        let mut bytes = std::mem::take(out).into_bytes();
        let written = serde_json::to_writer(&mut bytes, value);
        // serde_json writes UTF-8 only; a failed serialization leaves a prefix,
        // which is cleared below.
        *out = String::from_utf8(bytes).unwrap_or_default();
        if let Err(err) = written {
            out.clear();
            return Err(io::Error::new(io::ErrorKind::InvalidInput, err));
        }
        if !out.starts_with('{') {
            return Err(invalid_input("signals", out, "are not a JSON object"));
        }
        Ok(Signals(out.as_str()))
    }

    /// The JSON text.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }
}

impl<'a> PatchSignals<'a> {
    /// Patches the signals with this JSON object text.
    pub const fn new(signals: &'a str) -> Self {
        PatchSignals {
            meta: EventMeta::new(PATCH_SIGNALS),
            signals,
            checked: false,
            only_if_missing: false,
        }
    }

    /// Patches the signals with JSON that was [checked once](Signals) already:
    /// writing it scans it only for line breaks.
    pub const fn checked(signals: Signals<'a>) -> Self {
        PatchSignals {
            meta: EventMeta::new(PATCH_SIGNALS),
            signals: signals.0,
            checked: true,
            only_if_missing: false,
        }
    }

    /// Sets only the signals the page does not have yet (default `false`).
    pub const fn only_if_missing(mut self, only_if_missing: bool) -> Self {
        self.only_if_missing = only_if_missing;
        self
    }

    crate::event::id_and_retry_setters!(datastar);
}

/// The head of a signal patch without options.
static SIGNALS_HEAD: Head = Head::new("event: datastar-patch-signals\ndata: signals ");

impl Encode for PatchSignals<'_> {
    fn meta(&self) -> EventMeta<'_> {
        self.meta
    }

    /// Compact JSON without options, checked here and written without
    /// scanning a constant (see [`Encode::one_line`]).
    fn one_line(&self, _: sealed::Token) -> io::Result<Option<OneLine<'_>>> {
        if self.only_if_missing {
            return Ok(None);
        }
        if !self.checked {
            check_json_object(self.signals)?;
        }
        Ok(Some(OneLine {
            head: &SIGNALS_HEAD,
            id: self.meta.id,
            retry: self.meta.retry,
            value: self.signals,
        }))
    }

    fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()> {
        if !self.checked {
            check_json_object(self.signals)?;
        }
        if self.only_if_missing {
            data.checked_line("onlyIfMissing ", "true");
        }
        data.constant_prefixed("signals ", self.signals);
        Ok(())
    }
}

fn check_json_object(signals: &str) -> io::Result<()> {
    match json::validate_object(signals) {
        Ok(true) => Ok(()),
        Ok(false) => Err(invalid_input("signals", signals, "are not a JSON object")),
        Err(err) => Err(invalid_input(
            "signals",
            signals,
            &format!("are not valid JSON: {err}"),
        )),
    }
}

/// A `datastar-patch-signals` event that removes signals, given by their dot paths.
///
/// `user.name` and `user.email` become `{"user":{"name":null,"email":null}}`: paths that share
/// a prefix share its object, and a path that removes a whole object (`user`) takes the place
/// of the paths inside it. Keys keep the order in which they first appear.
///
/// A path is one or more segments joined by `.`. Every segment must be non-empty and free of
/// control characters (which includes CR and LF); a segment may hold any other character,
/// including `"` and `\`, which are JSON-escaped. A path may have as many segments as the
/// crate's JSON check allows levels of nesting. Anything else is refused with
/// [`io::ErrorKind::InvalidInput`] when the event is written. An empty list of paths removes
/// nothing (`{}`).
///
/// Each path is compared with the ones before it, so the work grows with the square of their
/// number; that is meant for the handful of paths a handler removes at once.
///
/// ```
/// use dstar::datastar::RemoveSignals;
/// use dstar::format_event;
///
/// let event = RemoveSignals::new(&["user.name", "draft", "user.email"]);
/// assert_eq!(
///     format_event(&event)?,
///     "event: datastar-patch-signals\n\
///      data: signals {\"user\":{\"name\":null,\"email\":null},\"draft\":null}\n\
///      \n"
/// );
///
/// let refused = format_event(&RemoveSignals::new(&["user..name"]));
/// assert_eq!(refused.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoveSignals<'a> {
    meta: EventMeta<'a>,
    paths: &'a [&'a str],
}

/// The deepest path [`RemoveSignals`] writes: as deep as the JSON reader reads.
const MAX_SEGMENTS: usize = json::MAX_DEPTH;

impl<'a> RemoveSignals<'a> {
    /// Removes the signals at these dot paths.
    pub const fn new(paths: &'a [&'a str]) -> Self {
        RemoveSignals {
            meta: EventMeta::new(PATCH_SIGNALS),
            paths,
        }
    }

    crate::event::id_and_retry_setters!(datastar);
}

impl Encode for RemoveSignals<'_> {
    fn meta(&self) -> EventMeta<'_> {
        self.meta
    }

    fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()> {
        for path in self.paths {
            check_path(path)?;
        }
        write_object(&mut data.constant_lines("signals "), self.paths, "");
        Ok(())
    }
}

fn check_path(path: &str) -> io::Result<()> {
    let mut segments = 0;
    for segment in path.split('.') {
        if segment.is_empty() {
            return Err(invalid_input("signal path", path, "has an empty segment"));
        }
        if segment.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(invalid_input(
                "signal path",
                path,
                "contains a control character",
            ));
        }
        segments += 1;
    }
    if segments > MAX_SEGMENTS {
        let problem = format!("is deeper than {MAX_SEGMENTS} segments");
        return Err(invalid_input("signal path", path, &problem));
    }
    Ok(())
}

/// Writes the object of removals for the paths under `prefix` (`""`, or some segments
/// followed by a `.`).
///
/// Recursion is bounded by [`MAX_SEGMENTS`], which the paths were checked against.
fn write_object(out: &mut Lines<'_, '_>, paths: &[&str], prefix: &str) {
    out.push("{");
    let mut first = true;
    for (at, path) in paths.iter().enumerate() {
        let Some(segment) = segment_after(path, prefix) else {
            continue;
        };
        let seen = paths[..at]
            .iter()
            .any(|earlier| segment_after(earlier, prefix) == Some(segment));
        if seen {
            continue;
        }
        if !first {
            out.push(",");
        }
        first = false;
        push_js_string(out, segment);
        out.push(":");
        let key = &path[..prefix.len() + segment.len()];
        if paths.contains(&key) {
            // Removing the whole object makes removals inside it moot.
            out.push("null");
        } else {
            // `key` is a proper prefix of `path`, so a `.` follows it.
            write_object(out, paths, &path[..key.len() + 1]);
        }
    }
    out.push("}");
}

/// The segment of `path` right after `prefix`, if `path` lies under it.
fn segment_after<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    let rest = path.strip_prefix(prefix)?;
    rest.split('.').next().filter(|segment| !segment.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format_event;
    use std::time::Duration;

    fn signals_line(paths: &[&str]) -> String {
        let text = format_event(&RemoveSignals::new(paths)).unwrap();
        let line = text
            .strip_prefix("event: datastar-patch-signals\ndata: signals ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .unwrap();
        assert!(!line.contains('\n'));
        line.to_string()
    }

    #[test]
    fn checked_signals_write_what_unchecked_ones_do() {
        for text in [r#"{"a":1}"#, "{\r\n\"a\": 1\n}", " {} "] {
            let checked = PatchSignals::checked(Signals::new(text).unwrap())
                .id("1")
                .only_if_missing(true);
            let plain = PatchSignals::new(text).id("1").only_if_missing(true);
            assert_eq!(
                format_event(&checked).unwrap(),
                format_event(&plain).unwrap()
            );
            let (checked, plain) = (
                PatchSignals::checked(Signals::new(text).unwrap()),
                PatchSignals::new(text),
            );
            assert_eq!(
                format_event(&checked).unwrap(),
                format_event(&plain).unwrap()
            );
        }
        for bad in ["", "[1]", "{", "{} {}"] {
            let err = Signals::new(bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serialized_signals_are_objects_and_reuse_the_buffer() {
        let mut json = String::with_capacity(64);
        let map = std::collections::BTreeMap::from([("a", vec![1, 2]), ("b", vec![])]);
        let signals = Signals::serialize(&map, &mut json).unwrap();
        assert_eq!(signals.as_str(), r#"{"a":[1,2],"b":[]}"#);
        crate::json::validate(signals.as_str()).unwrap();
        assert!(json.capacity() >= 64);
        for not_object in [
            serde_json::json!(1),
            serde_json::json!([{}]),
            serde_json::json!("{}"),
        ] {
            assert!(Signals::serialize(&not_object, &mut json).is_err());
        }
    }

    #[test]
    fn the_constant_head_is_the_event_type_and_prefix() {
        let event_line = format!("event: {PATCH_SIGNALS}\n");
        let (line, start) = SIGNALS_HEAD.text.split_at(SIGNALS_HEAD.split);
        assert_eq!(line, event_line.as_bytes());
        assert_eq!(start, b"data: signals ");
    }

    #[test]
    fn one_line_and_general_paths_write_the_same_bytes() {
        for event in [
            PatchSignals::new(r#"{"a":1}"#),
            PatchSignals::new(r#"{"a":1}"#)
                .id("3")
                .retry(Duration::from_secs(4)),
            PatchSignals::new("{\n\"a\": 1\n}"),
            PatchSignals::new("{}").only_if_missing(true),
        ] {
            let mut framed = Vec::new();
            crate::write_framed(&mut framed, &event).unwrap();
            let text = format_event(&event).unwrap();
            let size = format!("{:x}\r\n", text.len());
            assert_eq!(framed, [size.as_bytes(), text.as_bytes(), b"\r\n"].concat());
        }
        let mut framed = b"kept".to_vec();
        assert!(crate::write_framed(&mut framed, &PatchSignals::new("[1]")).is_err());
        assert!(crate::write_framed(&mut framed, &PatchSignals::new("{\"a\":}")).is_err());
        assert_eq!(framed, b"kept");
    }

    #[test]
    fn patch_signals_writes_options_and_splits_lines() {
        let event = PatchSignals::new("{\r\n\"a\": 1\r}")
            .only_if_missing(true)
            .id("s1")
            .retry(Duration::from_millis(1500));
        assert_eq!(
            format_event(&event).unwrap(),
            "event: datastar-patch-signals\nid: s1\nretry: 1500\n\
             data: onlyIfMissing true\ndata: signals {\ndata: signals \"a\": 1\ndata: signals }\n\n"
        );
        let defaults = PatchSignals::new("{}").only_if_missing(false);
        assert_eq!(
            format_event(&defaults).unwrap(),
            "event: datastar-patch-signals\ndata: signals {}\n\n"
        );
    }

    #[test]
    fn patch_signals_refuses_what_is_not_a_json_object() {
        for bad in [
            "", " ", "{", "{\"a\":}", "[1]", "1", "\"{}\"", "null", "{} {}", "{'a':1}",
        ] {
            let err = format_event(&PatchSignals::new(bad)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            assert!(err.to_string().starts_with("signals "), "{err}");
        }
        format_event(&PatchSignals::new("\n {\"a\":[1,{\"b\":null}]} \n")).unwrap();
    }

    #[test]
    fn remove_signals_groups_paths_into_objects() {
        assert_eq!(
            signals_line(&["user.name", "user.email"]),
            r#"{"user":{"name":null,"email":null}}"#
        );
        assert_eq!(signals_line(&["a"]), r#"{"a":null}"#);
        assert_eq!(signals_line(&[]), "{}");
        assert_eq!(
            signals_line(&["a.b.c", "x", "a.b.d", "a.e", "x"]),
            r#"{"a":{"b":{"c":null,"d":null},"e":null},"x":null}"#
        );
        // Removing `user` takes in everything under it, in either order.
        assert_eq!(signals_line(&["user.name", "user"]), r#"{"user":null}"#);
        assert_eq!(signals_line(&["user", "user.name"]), r#"{"user":null}"#);
        // A segment that merely starts like another is a different key.
        assert_eq!(
            signals_line(&["ab.c", "a.c"]),
            r#"{"ab":{"c":null},"a":{"c":null}}"#
        );
    }

    #[test]
    fn remove_signals_escapes_keys() {
        let line = signals_line(&["we\"ird.back\\slash", "<tag>.é"]);
        assert_eq!(
            line,
            r#"{"we\"ird":{"back\\slash":null},"\u003Ctag\u003E":{"é":null}}"#
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["we\"ird"]["back\\slash"], serde_json::Value::Null);
        assert!(value["<tag>"].is_object());
    }

    #[test]
    fn remove_signals_refuses_bad_paths() {
        let deep = vec!["a"; MAX_SEGMENTS + 1].join(".");
        for bad in [
            "", ".", "a.", ".a", "a..b", "a\nb", "a\rb", "a.b\u{0}", "\u{7f}", &deep,
        ] {
            let err = format_event(&RemoveSignals::new(&["ok", bad])).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            assert!(err.to_string().starts_with("signal path "), "{err}");
        }
        let deepest = vec!["a"; MAX_SEGMENTS].join(".");
        let line = signals_line(&[&deepest]);
        assert_eq!(line.matches('{').count(), MAX_SEGMENTS);
        json::validate(&line).unwrap();
    }
}

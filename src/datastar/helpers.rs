//! Ready-made scripts: redirect, console output, custom DOM events, history, prefetching.
//!
//! Each helper is an event of its own that writes a script event (see
//! [`ExecuteScript`](super::ExecuteScript)) whose JavaScript it generates. Every string the
//! caller gives is written as an escaped JavaScript string literal, so it is data in the script
//! and never code, and it cannot contain markup that would end the `<script>` element.

use std::fmt;
use std::io;

use super::PATCH_ELEMENTS;
use super::escape::{push_js_string, push_script_text};
use super::script::write_script;
use crate::event::{DataWriter, Encode, EventMeta, check_single_line, invalid_input};
use crate::json;

/// Where a URL leads, as far as its start decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// A path, query or fragment: resolved against the current page, so same-origin.
    ThisOrigin,
    /// An absolute `http:`/`https:` URL, or a scheme-relative `//host/…` one.
    AnyOrigin,
}

/// Checks a URL the browser will navigate to or fetch, and says where it may lead.
///
/// The browser's URL parser (WHATWG URL) strips leading spaces and control characters and drops
/// tabs and line breaks anywhere, which is how `java\tscript:` becomes `javascript:`. Such URLs
/// are refused outright, so what is checked here is what the browser reads. Then only `http` and
/// `https` are allowed as schemes (compared without case); `javascript:`, `data:`, `vbscript:`,
/// `file:` and every other scheme are refused. Without a scheme, a URL that starts with two
/// slashes (either way round: the parser reads `\` as `/`) names another host.
fn check_url(what: &str, url: &str) -> io::Result<Reach> {
    if url.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(invalid_input(
            what,
            url,
            "contains a control character, which browsers strip and which can hide a scheme",
        ));
    }
    if url.starts_with(' ') {
        return Err(invalid_input(
            what,
            url,
            "starts with a space, which browsers strip and which can hide a scheme",
        ));
    }
    if let Some(scheme) = scheme(url) {
        if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
            return Ok(Reach::AnyOrigin);
        }
        return Err(invalid_input(
            what,
            url,
            "has a scheme other than http or https",
        ));
    }
    let is_slash = |b: Option<&u8>| matches!(b, Some(b'/' | b'\\'));
    if is_slash(url.as_bytes().first()) && is_slash(url.as_bytes().get(1)) {
        return Ok(Reach::AnyOrigin);
    }
    Ok(Reach::ThisOrigin)
}

/// The scheme of a URL (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` before a `:`), if it has
/// one.
fn scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut bytes = scheme.bytes();
    let starts_with_letter = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    (starts_with_letter && rest_ok).then_some(scheme)
}

/// Sends the browser to another page: a script that sets `window.location.href`.
///
/// By default only URLs on the page's own origin are allowed: paths (`/account`,
/// `../up`, `next`), queries (`?page=2`) and fragments (`#top`). An absolute `http`/`https`
/// URL, or a scheme-relative `//host/…` one, could lead anywhere and needs
/// [`allow_other_origins(true)`](Redirect::allow_other_origins), so a URL taken from a request
/// cannot turn into an open redirect by accident. Any other scheme (`javascript:`, `data:`,
/// `vbscript:`, `file:`, …) is always refused, as is a URL with control characters or a
/// leading space, which browsers strip and which can hide a scheme. Refusals are
/// [`io::ErrorKind::InvalidInput`] errors when the event is written.
///
/// ```
/// use dstar::datastar::Redirect;
/// use dstar::format_event;
///
/// assert_eq!(
///     format_event(&Redirect::new("/account?tab=\"keys\""))?,
///     "event: datastar-patch-elements\n\
///      data: mode append\n\
///      data: selector body\n\
///      data: elements <script data-effect=\"el.remove()\">\
///      setTimeout(() => window.location.href = \"/account?tab=\\\"keys\\\"\")</script>\n\
///      \n"
/// );
///
/// assert!(format_event(&Redirect::new("https://example.com/")).is_err());
/// assert!(format_event(&Redirect::new("https://example.com/").allow_other_origins(true)).is_ok());
/// assert!(format_event(&Redirect::new("JavaScript:alert(1)").allow_other_origins(true)).is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redirect<'a> {
    meta: EventMeta<'a>,
    url: &'a str,
    allow_other_origins: bool,
}

impl<'a> Redirect<'a> {
    /// Redirects to this URL.
    pub const fn new(url: &'a str) -> Self {
        Redirect {
            meta: EventMeta::new(PATCH_ELEMENTS),
            url,
            allow_other_origins: false,
        }
    }

    /// Allows absolute `http`/`https` URLs and scheme-relative ones, which may lead to other
    /// origins (default `false`). Other schemes stay refused.
    pub const fn allow_other_origins(mut self, allow: bool) -> Self {
        self.allow_other_origins = allow;
        self
    }

    crate::event::id_and_retry_setters!(datastar);
}

impl Encode for Redirect<'_> {
    fn meta(&self) -> EventMeta<'_> {
        self.meta
    }

    fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()> {
        let reach = check_url("redirect URL", self.url)?;
        if reach == Reach::AnyOrigin && !self.allow_other_origins {
            return Err(invalid_input(
                "redirect URL",
                self.url,
                "may lead to another origin; allow that with allow_other_origins(true)",
            ));
        }
        write_script(data, &[], true, |out| {
            // Deferred, so the rest of this response is processed before the page unloads.
            out.push("setTimeout(() => window.location.href = ");
            push_js_string(out, self.url);
            out.push(")");
        })
    }
}

/// The console method a [`ConsoleLog`] calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ConsoleLevel {
    /// `console.log` (the default).
    #[default]
    Log,
    /// `console.info`.
    Info,
    /// `console.warn`.
    Warn,
    /// `console.error`.
    Error,
    /// `console.debug`.
    Debug,
}

impl ConsoleLevel {
    /// The method's name, such as `"warn"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConsoleLevel::Log => "log",
            ConsoleLevel::Info => "info",
            ConsoleLevel::Warn => "warn",
            ConsoleLevel::Error => "error",
            ConsoleLevel::Debug => "debug",
        }
    }
}

impl fmt::Display for ConsoleLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes a message to the browser's console: `console.log("…")`, or another level.
///
/// The message may be any text; it is sent as an escaped string literal.
///
/// ```
/// use dstar::datastar::{ConsoleLevel, ConsoleLog};
/// use dstar::format_event;
///
/// let event = ConsoleLog::new("disk \"almost\" full\n</script>").level(ConsoleLevel::Warn);
/// assert!(format_event(&event)?.contains(
///     r#"<script data-effect="el.remove()">console.warn("disk \"almost\" full\n\u003C/script\u003E")</script>"#
/// ));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsoleLog<'a> {
    meta: EventMeta<'a>,
    message: &'a str,
    level: ConsoleLevel,
}

impl<'a> ConsoleLog<'a> {
    /// Logs this message with `console.log`.
    pub const fn new(message: &'a str) -> Self {
        ConsoleLog {
            meta: EventMeta::new(PATCH_ELEMENTS),
            message,
            level: ConsoleLevel::Log,
        }
    }

    /// Sets the console method (default [`Log`](ConsoleLevel::Log)).
    pub const fn level(mut self, level: ConsoleLevel) -> Self {
        self.level = level;
        self
    }

    crate::event::id_and_retry_setters!(datastar);
}

impl Encode for ConsoleLog<'_> {
    fn meta(&self) -> EventMeta<'_> {
        self.meta
    }

    fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()> {
        write_script(data, &[], true, |out| {
            out.push("console.").push(self.level.as_str()).push("(");
            push_js_string(out, self.message);
            out.push(")");
        })
    }
}

/// Dispatches a [`CustomEvent`](https://developer.mozilla.org/docs/Web/API/CustomEvent) in the
/// page, on `document` or on every element matching a selector.
///
/// The detail is JSON text (default `null`), checked to be well-formed; it reaches listeners as
/// `event.detail`. Like the Go SDK, the event bubbles, is cancelable and is composed unless told
/// otherwise. The name must be non-empty; it, the selector and the detail are refused with
/// [`io::ErrorKind::InvalidInput`] when the event is written if they are not as described, and
/// the name and selector must be single lines.
///
/// ```
/// use dstar::datastar::DispatchEvent;
/// use dstar::format_event;
///
/// let event = DispatchEvent::new("saved")
///     .detail(r#"{"id": 7}"#)
///     .selector("#editor")
///     .bubbles(false);
/// assert!(format_event(&event)?.contains(
///     r##"document.querySelectorAll("#editor").forEach((el) => el.dispatchEvent(new CustomEvent("saved", {bubbles: false, cancelable: true, composed: true, detail: {"id": 7}})))"##
/// ));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DispatchEvent<'a> {
    meta: EventMeta<'a>,
    name: &'a str,
    detail: &'a str,
    selector: &'a str,
    bubbles: bool,
    cancelable: bool,
    composed: bool,
}

impl<'a> DispatchEvent<'a> {
    /// Dispatches an event with this name on `document`.
    pub const fn new(name: &'a str) -> Self {
        DispatchEvent {
            meta: EventMeta::new(PATCH_ELEMENTS),
            name,
            detail: "null",
            selector: "",
            bubbles: true,
            cancelable: true,
            composed: true,
        }
    }

    /// Sets the event's detail, as JSON text (default `null`).
    pub const fn detail(mut self, json: &'a str) -> Self {
        self.detail = json;
        self
    }

    /// Dispatches on every element matching this CSS selector instead of on `document`; an
    /// empty selector means `document`.
    pub const fn selector(mut self, selector: &'a str) -> Self {
        self.selector = selector;
        self
    }

    /// Whether the event bubbles up the tree (default `true`).
    pub const fn bubbles(mut self, bubbles: bool) -> Self {
        self.bubbles = bubbles;
        self
    }

    /// Whether listeners may cancel the event (default `true`).
    pub const fn cancelable(mut self, cancelable: bool) -> Self {
        self.cancelable = cancelable;
        self
    }

    /// Whether the event crosses shadow DOM boundaries (default `true`).
    pub const fn composed(mut self, composed: bool) -> Self {
        self.composed = composed;
        self
    }

    crate::event::id_and_retry_setters!(datastar);
}

impl Encode for DispatchEvent<'_> {
    fn meta(&self) -> EventMeta<'_> {
        self.meta
    }

    fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()> {
        if self.name.is_empty() {
            return Err(invalid_input("custom event name", self.name, "is empty"));
        }
        check_single_line("custom event name", self.name)?;
        check_single_line("custom event selector", self.selector)?;
        if let Err(err) = json::validate(self.detail) {
            return Err(invalid_input(
                "custom event detail",
                self.detail,
                &format!("is not valid JSON: {err}"),
            ));
        }
        let flag = |on: bool| if on { "true" } else { "false" };
        write_script(data, &[], true, |out| {
            if self.selector.is_empty() {
                out.push("document.dispatchEvent(");
            } else {
                out.push("document.querySelectorAll(");
                push_js_string(out, self.selector);
                out.push(").forEach((el) => el.dispatchEvent(");
            }
            out.push("new CustomEvent(");
            push_js_string(out, self.name);
            out.push(", {bubbles: ")
                .push(flag(self.bubbles))
                .push(", cancelable: ")
                .push(flag(self.cancelable))
                .push(", composed: ")
                .push(flag(self.composed))
                .push(", detail: ");
            // JSON is a JavaScript expression; only `</script` and the like need neutralising,
            // and their rewrites are JSON string escapes too.
            push_script_text(out, self.detail);
            // Close the options and the constructor, then the dispatch call (and `forEach`).
            out.push("})")
                .push(if self.selector.is_empty() { ")" } else { "))" });
        })
    }
}

/// Replaces the page's URL without navigating: `window.history.replaceState`.
///
/// The URL is checked like a [`Redirect`]'s, except that absolute `http`/`https` URLs are
/// allowed: the browser itself refuses to replace the URL with one on another origin.
///
/// ```
/// use dstar::datastar::ReplaceUrl;
/// use dstar::format_event;
///
/// assert!(format_event(&ReplaceUrl::new("/search?q=sse"))?.contains(
///     r#"<script data-effect="el.remove()">window.history.replaceState({}, "", "/search?q=sse")</script>"#
/// ));
/// assert!(format_event(&ReplaceUrl::new("javascript:alert(1)")).is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplaceUrl<'a> {
    meta: EventMeta<'a>,
    url: &'a str,
}

impl<'a> ReplaceUrl<'a> {
    /// Replaces the page's URL with this one.
    pub const fn new(url: &'a str) -> Self {
        ReplaceUrl {
            meta: EventMeta::new(PATCH_ELEMENTS),
            url,
        }
    }

    crate::event::id_and_retry_setters!(datastar);
}

impl Encode for ReplaceUrl<'_> {
    fn meta(&self) -> EventMeta<'_> {
        self.meta
    }

    fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()> {
        check_url("replacement URL", self.url)?;
        write_script(data, &[], true, |out| {
            out.push("window.history.replaceState({}, \"\", ");
            push_js_string(out, self.url);
            out.push(")");
        })
    }
}

/// Asks the browser to prefetch pages the user is likely to visit next, with
/// [speculation rules](https://developer.mozilla.org/docs/Web/API/Speculation_Rules_API): a
/// `<script type="speculationrules">` that stays in the page (removing it would cancel the
/// prefetches).
///
/// Each URL is checked like a [`Redirect`]'s, except that other origins are allowed: only
/// `http`/`https` URLs and relative ones, without control characters or a leading space.
///
/// ```
/// use dstar::datastar::Prefetch;
/// use dstar::format_event;
///
/// assert!(format_event(&Prefetch::new(&["/next", "/docs?page=2"]))?.contains(
///     r#"<script type="speculationrules">{"prefetch":[{"source":"list","urls":["/next","/docs?page=2"]}]}</script>"#
/// ));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefetch<'a> {
    meta: EventMeta<'a>,
    urls: &'a [&'a str],
}

impl<'a> Prefetch<'a> {
    /// Prefetches these URLs.
    pub const fn new(urls: &'a [&'a str]) -> Self {
        Prefetch {
            meta: EventMeta::new(PATCH_ELEMENTS),
            urls,
        }
    }

    crate::event::id_and_retry_setters!(datastar);
}

impl Encode for Prefetch<'_> {
    fn meta(&self) -> EventMeta<'_> {
        self.meta
    }

    fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()> {
        for url in self.urls {
            check_url("prefetch URL", url)?;
        }
        let attributes = [("type", "speculationrules")];
        write_script(data, &attributes, false, |out| {
            out.push(r#"{"prefetch":[{"source":"list","urls":["#);
            for (at, url) in self.urls.iter().enumerate() {
                if at > 0 {
                    out.push(",");
                }
                push_js_string(out, url);
            }
            out.push("]}]}");
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format_event;

    /// The script element's source, for a helper that writes a one-line script.
    fn script(event: &impl Encode) -> String {
        let text = format_event(event).unwrap();
        let element = text
            .strip_prefix(
                "event: datastar-patch-elements\ndata: mode append\ndata: selector body\ndata: elements ",
            )
            .and_then(|rest| rest.strip_suffix("</script>\n\n"))
            .unwrap();
        let (_, source) = element.split_once('>').unwrap();
        source.to_string()
    }

    fn refused(event: &impl Encode) -> String {
        let mut buf = Vec::new();
        let err = crate::write_event(&mut buf, event).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(buf.is_empty());
        err.to_string()
    }

    #[test]
    fn redirect_allows_same_origin_urls() {
        for url in [
            "/",
            "/a/b?c=d#e",
            "?page=2",
            "#top",
            "next",
            "../up",
            "",
            "a/b:c",
            "./x:y",
        ] {
            assert_eq!(check_url("u", url).unwrap(), Reach::ThisOrigin, "{url:?}");
            format_event(&Redirect::new(url)).unwrap();
        }
        assert_eq!(
            script(&Redirect::new("/a?b=<c>&d='e'")),
            r#"setTimeout(() => window.location.href = "/a?b=\u003Cc\u003E\u0026d=\u0027e\u0027")"#
        );
    }

    #[test]
    fn redirect_to_other_origins_needs_the_opt_in() {
        let others = [
            "https://example.com",
            "HTTP://example.com/x",
            "http:example.com",
            "//example.com",
            "/\\example.com",
            "\\\\example.com",
            "\\/example.com",
        ];
        for url in others {
            assert_eq!(check_url("u", url).unwrap(), Reach::AnyOrigin, "{url:?}");
            let message = refused(&Redirect::new(url));
            assert!(message.contains("allow_other_origins"), "{message}");
            format_event(&Redirect::new(url).allow_other_origins(true)).unwrap();
        }
    }

    #[test]
    fn scripting_schemes_are_always_refused() {
        let bad = [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "java\tscript:alert(1)",
            "java\nscript:alert(1)",
            "java\rscript:alert(1)",
            "\u{0}javascript:alert(1)",
            "\u{1}javascript:alert(1)",
            " javascript:alert(1)",
            "\u{7f}javascript:alert(1)",
            "javascript\u{0}:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "DATA:text/html;base64,PHNjcmlwdD4=",
            "vbscript:msgbox(1)",
            "file:///etc/passwd",
            "blob:https://example.com/x",
            "about:blank",
            "x-custom+scheme.1:payload",
        ];
        for url in bad {
            assert!(check_url("u", url).is_err(), "{url:?}");
            refused(&Redirect::new(url).allow_other_origins(true));
            refused(&ReplaceUrl::new(url));
            refused(&Prefetch::new(&["/ok", url]));
        }
        // Characters that are not ASCII letters cannot start a scheme: these are paths.
        for url in [
            "\u{feff}javascript:alert(1)",
            "ｊavascript:alert(1)",
            "1http://x",
        ] {
            assert_eq!(check_url("u", url).unwrap(), Reach::ThisOrigin, "{url:?}");
        }
    }

    #[test]
    fn console_log_levels() {
        for (level, name) in [
            (ConsoleLevel::Log, "log"),
            (ConsoleLevel::Info, "info"),
            (ConsoleLevel::Warn, "warn"),
            (ConsoleLevel::Error, "error"),
            (ConsoleLevel::Debug, "debug"),
        ] {
            assert_eq!(
                script(&ConsoleLog::new("a\u{2028}b").level(level)),
                format!(r#"console.{name}("a\u2028b")"#)
            );
        }
        assert_eq!(ConsoleLevel::default(), ConsoleLevel::Log);
        let text = format_event(&ConsoleLog::new("x").id("c1")).unwrap();
        assert!(text.starts_with("event: datastar-patch-elements\nid: c1\n"));
    }

    #[test]
    fn dispatch_event_on_document_and_on_selected_elements() {
        assert_eq!(
            script(&DispatchEvent::new("ping")),
            r#"document.dispatchEvent(new CustomEvent("ping", {bubbles: true, cancelable: true, composed: true, detail: null}))"#
        );
        assert_eq!(
            script(
                &DispatchEvent::new("a\"b")
                    .selector(".x[data-y='1']")
                    .detail("[\"</script>\"]")
                    .cancelable(false)
                    .composed(false)
            ),
            r#"document.querySelectorAll(".x[data-y=\u00271\u0027]").forEach((el) => el.dispatchEvent(new CustomEvent("a\"b", {bubbles: true, cancelable: false, composed: false, detail: ["<\/script>"]})))"#
        );
        // Multi-line JSON spans elements lines.
        let text = format_event(&DispatchEvent::new("e").detail("{\n\"a\": 1\n}")).unwrap();
        assert!(text.contains("detail: {\ndata: elements \"a\": 1\ndata: elements }}))</script>"));
    }

    #[test]
    fn dispatch_event_refuses_bad_input() {
        assert!(refused(&DispatchEvent::new("")).starts_with("custom event name"));
        assert!(refused(&DispatchEvent::new("a\nb")).starts_with("custom event name"));
        assert!(
            refused(&DispatchEvent::new("e").selector("#a\r")).starts_with("custom event selector")
        );
        assert!(refused(&DispatchEvent::new("e").detail("{")).starts_with("custom event detail"));
        assert!(refused(&DispatchEvent::new("e").detail("")).starts_with("custom event detail"));
    }

    #[test]
    fn replace_url_and_prefetch() {
        assert_eq!(
            script(&ReplaceUrl::new("https://example.com/a b")),
            r#"window.history.replaceState({}, "", "https://example.com/a b")"#
        );
        let text = format_event(&Prefetch::new(&["/a\"", "https://cdn.example.com/x"])).unwrap();
        assert_eq!(
            text,
            "event: datastar-patch-elements\ndata: mode append\ndata: selector body\n\
             data: elements <script type=\"speculationrules\">\
             {\"prefetch\":[{\"source\":\"list\",\"urls\":[\"/a\\\"\",\"https://cdn.example.com/x\"]}]}\
             </script>\n\n"
        );
        let none = format_event(&Prefetch::new(&[])).unwrap();
        assert!(none.contains(r#""urls":[]"#));
    }

    #[test]
    fn speculation_rules_are_json() {
        let text = format_event(&Prefetch::new(&["/a\"<b>", "/é\u{2028}"])).unwrap();
        let start = text.find('{').unwrap();
        let end = text.rfind("</script>").unwrap();
        let rules: serde_json::Value = serde_json::from_str(&text[start..end]).unwrap();
        assert_eq!(rules["prefetch"][0]["urls"][0], "/a\"<b>");
        assert_eq!(rules["prefetch"][0]["urls"][1], "/é\u{2028}");
    }
}

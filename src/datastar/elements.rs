//! `datastar-patch-elements`: HTML to morph into the page, or elements to remove.

use std::fmt;
use std::io;
use std::str::FromStr;

use super::PATCH_ELEMENTS;
use crate::event::{
    DataWriter, Encode, EventMeta, Head, OneLine, check_single_line, invalid_input, sealed,
};

/// How patched elements go into the page.
///
/// ```
/// use dstar::datastar::ElementPatchMode;
///
/// assert_eq!(ElementPatchMode::default(), ElementPatchMode::Outer);
/// assert_eq!(ElementPatchMode::Append.as_str(), "append");
/// assert_eq!("before".parse::<ElementPatchMode>()?, ElementPatchMode::Before);
/// assert!("morph".parse::<ElementPatchMode>().is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ElementPatchMode {
    /// Morph the target's outer HTML, keeping the state of elements that stay (the default,
    /// never written to the wire).
    #[default]
    Outer,
    /// Morph the target's inner HTML.
    Inner,
    /// Replace the target outright, without morphing.
    Replace,
    /// Insert as the target's first children.
    Prepend,
    /// Insert as the target's last children.
    Append,
    /// Insert before the target.
    Before,
    /// Insert after the target.
    After,
    /// Remove the target; the elements may be left out.
    Remove,
}

impl ElementPatchMode {
    const ALL: [ElementPatchMode; 8] = [
        ElementPatchMode::Outer,
        ElementPatchMode::Inner,
        ElementPatchMode::Replace,
        ElementPatchMode::Prepend,
        ElementPatchMode::Append,
        ElementPatchMode::Before,
        ElementPatchMode::After,
        ElementPatchMode::Remove,
    ];

    /// The name Datastar uses on the wire, such as `"append"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ElementPatchMode::Outer => "outer",
            ElementPatchMode::Inner => "inner",
            ElementPatchMode::Replace => "replace",
            ElementPatchMode::Prepend => "prepend",
            ElementPatchMode::Append => "append",
            ElementPatchMode::Before => "before",
            ElementPatchMode::After => "after",
            ElementPatchMode::Remove => "remove",
        }
    }
}

impl fmt::Display for ElementPatchMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses the wire name (exactly, lowercase); anything else is
/// [`io::ErrorKind::InvalidInput`].
impl FromStr for ElementPatchMode {
    type Err = io::Error;

    fn from_str(name: &str) -> io::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str() == name)
            .ok_or_else(|| {
                invalid_input(
                    "patch mode",
                    name,
                    "is not one of outer, inner, replace, prepend, append, before, after, remove",
                )
            })
    }
}

/// The namespace new elements are created in.
///
/// ```
/// use dstar::datastar::Namespace;
///
/// assert_eq!(Namespace::default(), Namespace::Html);
/// assert_eq!("svg".parse::<Namespace>()?, Namespace::Svg);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// HTML elements (the default, never written to the wire).
    #[default]
    Html,
    /// SVG elements, for patching inside an `<svg>`.
    Svg,
    /// MathML elements, for patching inside a `<math>`.
    Mathml,
}

impl Namespace {
    /// The name Datastar uses on the wire: `"html"`, `"svg"` or `"mathml"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Namespace::Html => "html",
            Namespace::Svg => "svg",
            Namespace::Mathml => "mathml",
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses the wire name (exactly, lowercase); anything else is
/// [`io::ErrorKind::InvalidInput`].
impl FromStr for Namespace {
    type Err = io::Error;

    fn from_str(name: &str) -> io::Result<Self> {
        [Namespace::Html, Namespace::Svg, Namespace::Mathml]
            .into_iter()
            .find(|namespace| namespace.as_str() == name)
            .ok_or_else(|| invalid_input("namespace", name, "is not one of html, svg, mathml"))
    }
}

/// A `datastar-patch-elements` event: HTML to morph into the page, or a selector whose
/// elements to remove.
///
/// Options left at their defaults are left off the wire, as the ADR asks: no `selector` line
/// without a selector, no `mode` line for [`Outer`](ElementPatchMode::Outer), no `namespace`
/// line for [`Html`](Namespace::Html), no `useViewTransition` line unless it is `true`. The HTML
/// becomes one `elements` line per line (CR, LF and CRLF all end a line).
///
/// ```
/// use dstar::datastar::{ElementPatchMode, Namespace, PatchElements};
/// use dstar::format_event;
/// use std::time::Duration;
///
/// let event = PatchElements::new("<circle id=\"dot\"/>\n<rect id=\"box\"/>")
///     .selector("#chart")
///     .mode(ElementPatchMode::Append)
///     .namespace(Namespace::Svg)
///     .use_view_transition(true)
///     .view_transition_selector("#chart")
///     .id("7")
///     .retry(Duration::from_secs(2));
/// assert_eq!(
///     format_event(&event)?,
///     "event: datastar-patch-elements\n\
///      id: 7\n\
///      retry: 2000\n\
///      data: selector #chart\n\
///      data: mode append\n\
///      data: useViewTransition true\n\
///      data: viewTransitionSelector #chart\n\
///      data: namespace svg\n\
///      data: elements <circle id=\"dot\"/>\n\
///      data: elements <rect id=\"box\"/>\n\
///      \n"
/// );
///
/// // A selector is a single line: a line break in it is refused, not sent.
/// let refused = format_event(&PatchElements::new("<p>hi</p>").selector("#a\rdata: x"));
/// assert_eq!(refused.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchElements<'a> {
    meta: EventMeta<'a>,
    elements: &'a str,
    selector: &'a str,
    mode: ElementPatchMode,
    namespace: Namespace,
    use_view_transition: bool,
    view_transition_selector: &'a str,
}

impl<'a> PatchElements<'a> {
    /// Patches these elements, by default morphing each into the element with the same id.
    ///
    /// An empty text writes no `elements` line at all. An event left without any data line
    /// (empty text, no other option) is not dispatched by the browser; only its id and retry
    /// take effect.
    pub const fn new(elements: &'a str) -> Self {
        PatchElements {
            meta: EventMeta::new(PATCH_ELEMENTS),
            elements,
            selector: "",
            mode: ElementPatchMode::Outer,
            namespace: Namespace::Html,
            use_view_transition: false,
            view_transition_selector: "",
        }
    }

    /// Removes the elements matching a CSS selector: mode `remove`, no elements.
    ///
    /// ```
    /// use dstar::datastar::PatchElements;
    ///
    /// assert_eq!(
    ///     dstar::format_event(&PatchElements::remove("#toast, .flash"))?,
    ///     "event: datastar-patch-elements\ndata: selector #toast, .flash\ndata: mode remove\n\n"
    /// );
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub const fn remove(selector: &'a str) -> Self {
        PatchElements::new("")
            .selector(selector)
            .mode(ElementPatchMode::Remove)
    }

    /// Targets the elements matching this CSS selector instead of matching by id.
    ///
    /// An empty selector is the same as none. One with CR or LF is refused when the event is
    /// written.
    pub const fn selector(mut self, selector: &'a str) -> Self {
        self.selector = selector;
        self
    }

    /// Sets how the elements go into the page (default [`Outer`](ElementPatchMode::Outer)).
    pub const fn mode(mut self, mode: ElementPatchMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the namespace new elements are created in (default [`Html`](Namespace::Html)).
    pub const fn namespace(mut self, namespace: Namespace) -> Self {
        self.namespace = namespace;
        self
    }

    /// Runs the patch inside a view transition, where the browser supports them.
    pub const fn use_view_transition(mut self, on: bool) -> Self {
        self.use_view_transition = on;
        self
    }

    /// Scopes the view transition to the elements matching this CSS selector.
    ///
    /// As the ADR says, it is written only together with
    /// [`use_view_transition(true)`](PatchElements::use_view_transition); without it there is
    /// no transition to scope. It is checked either way: CR or LF in it is refused when the
    /// event is written. An empty selector is the same as none.
    pub const fn view_transition_selector(mut self, selector: &'a str) -> Self {
        self.view_transition_selector = selector;
        self
    }

    crate::event::id_and_retry_setters!(datastar);
}

/// The head of an element patch that has nothing but elements.
static ELEMENTS_HEAD: Head = Head::new("event: datastar-patch-elements\ndata: elements ");

impl Encode for PatchElements<'_> {
    fn meta(&self) -> EventMeta<'_> {
        self.meta
    }

    /// The common case, no option set and one line of HTML, without scanning
    /// a constant (see [`Encode::one_line`]).
    fn one_line(&self, _: sealed::Token) -> io::Result<Option<OneLine<'_>>> {
        let plain = self.selector.is_empty()
            && self.mode == ElementPatchMode::Outer
            && !self.use_view_transition
            && self.namespace == Namespace::Html
            && !self.elements.is_empty();
        // A view-transition selector is checked even where it is not written.
        if !plain || !self.view_transition_selector.is_empty() {
            return Ok(None);
        }
        Ok(Some(OneLine {
            head: &ELEMENTS_HEAD,
            id: self.meta.id,
            retry: self.meta.retry,
            value: self.elements,
        }))
    }

    fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()> {
        check_single_line("selector", self.selector)?;
        check_single_line("viewTransitionSelector", self.view_transition_selector)?;
        if !self.selector.is_empty() {
            data.checked_line("selector ", self.selector);
        }
        if self.mode != ElementPatchMode::Outer {
            data.checked_line("mode ", self.mode.as_str());
        }
        if self.use_view_transition {
            data.checked_line("useViewTransition ", "true");
            if !self.view_transition_selector.is_empty() {
                data.checked_line("viewTransitionSelector ", self.view_transition_selector);
            }
        }
        if self.namespace != Namespace::Html {
            data.checked_line("namespace ", self.namespace.as_str());
        }
        if !self.elements.is_empty() {
            data.constant_prefixed("elements ", self.elements);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format_event;

    fn text(event: &PatchElements<'_>) -> String {
        format_event(event).unwrap()
    }

    #[test]
    fn the_datastar_default_retry_is_left_off_and_others_written() {
        use std::time::Duration;
        let elided = text(&PatchElements::new("<p>").retry(crate::DEFAULT_RETRY));
        assert_eq!(
            elided,
            "event: datastar-patch-elements\ndata: elements <p>\n\n"
        );
        let sent = text(&PatchElements::new("<p>").retry(Duration::from_millis(1001)));
        assert!(sent.contains("\nretry: 1001\n"), "{sent}");
        // As a plain event, the same delay is sent: EventSource's default differs.
        let plain = format_event(&crate::Event::message("x").retry(crate::DEFAULT_RETRY));
        assert_eq!(plain.unwrap(), "retry: 1000\ndata: x\n\n");
        for helper in [
            format_event(&crate::datastar::PatchSignals::new("{}").retry(crate::DEFAULT_RETRY)),
            format_event(&crate::datastar::ExecuteScript::new("1").retry(crate::DEFAULT_RETRY)),
            format_event(&crate::datastar::RemoveSignals::new(&["a"]).retry(crate::DEFAULT_RETRY)),
        ] {
            assert!(!helper.unwrap().contains("retry"));
        }
    }

    #[test]
    fn the_constant_head_is_the_event_type_and_prefix() {
        let event_line = format!("event: {PATCH_ELEMENTS}\n");
        let (line, start) = ELEMENTS_HEAD.text.split_at(ELEMENTS_HEAD.split);
        assert_eq!(line, event_line.as_bytes());
        assert_eq!(start, b"data: elements ");
    }

    #[test]
    fn one_line_and_general_paths_write_the_same_bytes() {
        let cases = [
            PatchElements::new("<p id=\"a\">1</p>"),
            PatchElements::new("<p id=\"a\">1</p>").id("7"),
            PatchElements::new("<p>1</p>").retry(std::time::Duration::from_millis(2500)),
            PatchElements::new("<p>1</p>")
                .id("")
                .retry(crate::DEFAULT_RETRY),
            PatchElements::new("<a>\r\n</a>").id("x"),
            PatchElements::new("<p>1</p>").view_transition_selector("#v"),
            PatchElements::new(""),
        ];
        for event in cases {
            let mut framed = Vec::new();
            crate::write_framed(&mut framed, &event).unwrap();
            let text = format_event(&event).unwrap();
            let size = format!("{:x}\r\n", text.len());
            assert_eq!(framed, [size.as_bytes(), text.as_bytes(), b"\r\n"].concat());
        }
        for bad in [
            PatchElements::new("<p>").id("a\nb"),
            PatchElements::new("<p>").id("a\0b"),
        ] {
            let mut framed = b"kept".to_vec();
            assert!(crate::write_framed(&mut framed, &bad).is_err());
            assert_eq!(framed, b"kept");
        }
    }

    #[test]
    fn defaults_are_left_off_the_wire() {
        let event = PatchElements::new("<div id=\"a\">x</div>")
            .mode(ElementPatchMode::Outer)
            .namespace(Namespace::Html)
            .use_view_transition(false)
            .view_transition_selector("#ignored")
            .retry(crate::DEFAULT_RETRY);
        assert_eq!(
            text(&event),
            "event: datastar-patch-elements\ndata: elements <div id=\"a\">x</div>\n\n"
        );
    }

    #[test]
    fn every_mode_and_namespace_is_written_by_name() {
        for mode in ElementPatchMode::ALL {
            let written = text(&PatchElements::new("<p id=\"p\"></p>").mode(mode));
            let has_line = written.contains(&format!("data: mode {mode}\n"));
            assert_eq!(has_line, mode != ElementPatchMode::Outer, "{written}");
            assert_eq!(mode.as_str().parse::<ElementPatchMode>().unwrap(), mode);
        }
        for namespace in [Namespace::Svg, Namespace::Mathml] {
            let written = text(&PatchElements::new("<g/>").namespace(namespace));
            assert!(written.contains(&format!("data: namespace {namespace}\n")));
            assert_eq!(namespace.as_str().parse::<Namespace>().unwrap(), namespace);
        }
        let err = "Append".parse::<ElementPatchMode>().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().starts_with("patch mode \"Append\""));
        assert!("xml".parse::<Namespace>().is_err());
    }

    #[test]
    fn html_is_split_at_every_kind_of_line_break() {
        assert_eq!(
            text(&PatchElements::new("<a>\r\n<b>\r<c>\n</a>")),
            "event: datastar-patch-elements\n\
             data: elements <a>\n\
             data: elements <b>\n\
             data: elements <c>\n\
             data: elements </a>\n\n"
        );
    }

    #[test]
    fn view_transition_selector_needs_view_transitions() {
        let event = PatchElements::new("<p id=\"p\"></p>").view_transition_selector("#main");
        assert!(!text(&event).contains("viewTransitionSelector"));
        let on = text(&event.use_view_transition(true));
        assert!(on.contains("data: useViewTransition true\ndata: viewTransitionSelector #main\n"));
    }

    #[test]
    fn remove_needs_no_elements() {
        assert_eq!(
            text(&PatchElements::remove("#gone").id("9")),
            "event: datastar-patch-elements\nid: 9\ndata: selector #gone\ndata: mode remove\n\n"
        );
        // Removing by the ids of the given elements also works.
        assert_eq!(
            text(&PatchElements::new("<p id=\"x\"></p>").mode(ElementPatchMode::Remove)),
            "event: datastar-patch-elements\ndata: mode remove\ndata: elements <p id=\"x\"></p>\n\n"
        );
    }

    #[test]
    fn line_breaks_in_single_line_options_are_refused_by_name() {
        for brk in ["\r", "\n", "\r\n"] {
            let bad = format!("#a{brk}data: injected");
            let cases = [
                ("selector", PatchElements::new("<p></p>").selector(&bad)),
                (
                    "viewTransitionSelector",
                    PatchElements::new("<p></p>").view_transition_selector(&bad),
                ),
                ("event id", PatchElements::new("<p></p>").id(&bad)),
            ];
            for (name, event) in cases {
                let mut buf = b"kept".to_vec();
                let err = crate::write_event(&mut buf, &event).unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
                assert!(err.to_string().starts_with(name), "{err}");
                assert_eq!(buf, b"kept");
            }
        }
    }
}

//! Running JavaScript in the page: a `<script>` appended to `<body>` by a patch-elements event.

use std::io;

use super::PATCH_ELEMENTS;
use super::escape::{check_attribute_name, push_attribute_value, push_script_text};
use crate::event::{DataWriter, Encode, EventMeta, Lines, find_line_break, invalid_input};

/// Runs a script in the page: a `datastar-patch-elements` event that appends
/// `<script>…</script>` to `<body>`.
///
/// By default the script element removes itself once it has run
/// (`data-effect="el.remove()"`); [`auto_remove(false)`](ExecuteScript::auto_remove) keeps it.
/// Extra attributes come first, in the order given, with their values HTML-escaped.
///
/// The script text cannot end its element early: every `</script` in it (any case) is written
/// as `<\/script`, and a `<script` that could start a nested tag as `\u003Cscript`; both mean
/// the same inside the JavaScript strings, regular expressions and comments where such text
/// occurs. The script may span lines; each becomes its own `elements` line.
///
/// Attribute names must be HTML attribute names (no spaces, controls, quotes, `<`, `>`, `/` or
/// `=`), each given once (compared ignoring ASCII case, as HTML does), and attribute values must
/// be a single line; anything else is refused with [`io::ErrorKind::InvalidInput`] when the
/// event is written. While [`auto_remove`](ExecuteScript::auto_remove) is on, a `data-effect`
/// attribute of your own is refused too: the page would keep only one of the two effects. A NUL
/// in a value is written as U+FFFD, which is what the page's HTML parser makes of it.
///
/// ```
/// use dstar::datastar::ExecuteScript;
/// use dstar::format_event;
///
/// assert_eq!(
///     format_event(&ExecuteScript::new("console.log('hi')"))?,
///     "event: datastar-patch-elements\n\
///      data: mode append\n\
///      data: selector body\n\
///      data: elements <script data-effect=\"el.remove()\">console.log('hi')</script>\n\
///      \n"
/// );
///
/// let module = ExecuteScript::new("import { a } from \"/a.js\";\na();")
///     .attributes(&[("type", "module"), ("nonce", "r4nd\"m")])
///     .auto_remove(false);
/// assert_eq!(
///     format_event(&module)?,
///     "event: datastar-patch-elements\n\
///      data: mode append\n\
///      data: selector body\n\
///      data: elements <script type=\"module\" nonce=\"r4nd&quot;m\">import { a } from \"/a.js\";\n\
///      data: elements a();</script>\n\
///      \n"
/// );
///
/// // Text that mentions a closing tag cannot close the element.
/// let sneaky = format_event(&ExecuteScript::new("s = '</SCRIPT><img src=x>'"))?;
/// assert!(sneaky.contains(r"s = '<\/SCRIPT><img src=x>'</script>"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecuteScript<'a> {
    meta: EventMeta<'a>,
    script: &'a str,
    auto_remove: bool,
    attributes: &'a [(&'a str, &'a str)],
}

impl<'a> ExecuteScript<'a> {
    /// Runs this JavaScript.
    pub const fn new(script: &'a str) -> Self {
        ExecuteScript {
            meta: EventMeta::new(PATCH_ELEMENTS),
            script,
            auto_remove: true,
            attributes: &[],
        }
    }

    /// Whether the script element removes itself after running (default `true`).
    pub const fn auto_remove(mut self, auto_remove: bool) -> Self {
        self.auto_remove = auto_remove;
        self
    }

    /// Adds attributes to the script element, as `(name, value)` pairs, in this order.
    pub const fn attributes(mut self, attributes: &'a [(&'a str, &'a str)]) -> Self {
        self.attributes = attributes;
        self
    }

    crate::event::id_and_retry_setters!(datastar);
}

impl Encode for ExecuteScript<'_> {
    fn meta(&self) -> EventMeta<'_> {
        self.meta
    }

    fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()> {
        write_script(data, self.attributes, self.auto_remove, |out| {
            push_script_text(out, self.script)
        })
    }
}

/// Writes the data of a script event; `body` pushes the script's source.
///
/// Line order follows the ADR's examples: `mode append`, `selector body`, then the element.
/// The helpers in this module use it too, with bodies that generate their JavaScript.
pub(super) fn write_script(
    data: &mut DataWriter<'_>,
    attributes: &[(&str, &str)],
    auto_remove: bool,
    body: impl FnOnce(&mut Lines<'_, '_>),
) -> io::Result<()> {
    for (at, (name, value)) in attributes.iter().enumerate() {
        check_attribute_name(name)?;
        // HTML keeps the first of two attributes with one name (names are ASCII
        // case-insensitive) and drops the other without a word, so a repeated name, or a
        // `data-effect` beside the one that removes the script, would be lost in the page.
        let repeated = attributes[..at]
            .iter()
            .any(|(earlier, _)| earlier.eq_ignore_ascii_case(name));
        if repeated {
            return Err(invalid_input(
                "script attribute name",
                name,
                "is given twice; the page would keep only the first",
            ));
        }
        if auto_remove && name.eq_ignore_ascii_case("data-effect") {
            return Err(invalid_input(
                "script attribute name",
                name,
                "clashes with the data-effect that removes the script; \
                 use auto_remove(false) to write your own",
            ));
        }
        if find_line_break(value.as_bytes()).is_some() {
            return Err(invalid_input(
                &format!("script attribute {name}"),
                value,
                "has a value with a line break (CR or LF)",
            ));
        }
    }
    data.checked_line("mode ", "append");
    data.checked_line("selector ", "body");
    let mut out = data.constant_lines("elements ");
    out.push("<script");
    for (name, value) in attributes {
        out.push(" ").push(name).push("=\"");
        push_attribute_value(&mut out, value);
        out.push("\"");
    }
    if auto_remove {
        out.push(" data-effect=\"el.remove()\"");
    }
    out.push(">");
    body(&mut out);
    out.push("</script>");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format_event;

    fn elements(event: &ExecuteScript<'_>) -> String {
        let text = format_event(event).unwrap();
        let rest = text
            .strip_prefix(
                "event: datastar-patch-elements\ndata: mode append\ndata: selector body\n",
            )
            .unwrap();
        rest.strip_suffix("\n\n").unwrap().to_string()
    }

    #[test]
    fn defaults_and_options_match_the_adr() {
        assert_eq!(
            elements(&ExecuteScript::new("go()")),
            "data: elements <script data-effect=\"el.remove()\">go()</script>"
        );
        assert_eq!(
            elements(
                &ExecuteScript::new("go()")
                    .attributes(&[("type", "text/javascript"), ("blocking", "false")])
                    .auto_remove(false)
            ),
            "data: elements <script type=\"text/javascript\" blocking=\"false\">go()</script>"
        );
        assert_eq!(
            elements(&ExecuteScript::new("go()").attributes(&[("type", "module")])),
            "data: elements <script type=\"module\" data-effect=\"el.remove()\">go()</script>"
        );
        let text = format_event(&ExecuteScript::new("").id("e1")).unwrap();
        assert!(text.starts_with("event: datastar-patch-elements\nid: e1\n"));
        assert!(text.ends_with("<script data-effect=\"el.remove()\"></script>\n\n"));
    }

    #[test]
    fn multi_line_scripts_span_elements_lines() {
        assert_eq!(
            elements(&ExecuteScript::new("if (a) {\r\n  b();\r}")),
            "data: elements <script data-effect=\"el.remove()\">if (a) {\n\
             data: elements   b();\n\
             data: elements }</script>"
        );
    }

    #[test]
    fn script_text_cannot_close_its_element() {
        let out = elements(&ExecuteScript::new(
            "a('</script>'); b('</ScRiPt\n>'); c('<!--<script>')",
        ));
        assert_eq!(out.matches("</script>").count(), 1, "{out}");
        assert!(out.ends_with("</script>"));
        assert!(!out.to_ascii_lowercase().contains("</script\n"));
        assert!(out.contains(r"a('<\/script>'); b('<\/ScRiPt"));
        assert!(out.contains(r"c('<!--\u003Cscript>')"));
    }

    #[test]
    fn attribute_values_are_escaped_and_single_line() {
        assert_eq!(
            elements(&ExecuteScript::new("").attributes(&[("data-x", "\"><img src=x>&")])),
            "data: elements <script data-x=\"&quot;&gt;&lt;img src=x&gt;&amp;\" data-effect=\"el.remove()\"></script>"
        );
        for value in ["a\rb", "a\nb", "a\r\n"] {
            let attributes = [("type", value)];
            let err = format_event(&ExecuteScript::new("").attributes(&attributes)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(
                err.to_string().starts_with("script attribute type "),
                "{err}"
            );
        }
        assert_eq!(
            elements(&ExecuteScript::new("").attributes(&[("nonce", "a\0b")])),
            "data: elements <script nonce=\"a\u{FFFD}b\" data-effect=\"el.remove()\"></script>"
        );
        let attributes = [("on click", "x")];
        let err = format_event(&ExecuteScript::new("").attributes(&attributes)).unwrap_err();
        assert!(
            err.to_string().starts_with("script attribute name"),
            "{err}"
        );
    }

    #[test]
    fn an_attribute_the_page_would_drop_is_refused() {
        for attributes in [
            &[("data-effect", "alert(1)")][..],
            &[("DATA-Effect", "alert(1)")],
            &[("type", "module"), ("TYPE", "text/javascript")],
            &[("nonce", "a"), ("data-effect", "b"), ("Nonce", "c")],
        ] {
            let event = ExecuteScript::new("go()").attributes(attributes);
            let err = format_event(&event).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{attributes:?}");
            assert!(
                err.to_string().starts_with("script attribute name"),
                "{err}"
            );
        }
        // Without the auto-remove, the effect is the caller's own.
        let own = [("data-effect", "el.dataset.ran = 1")];
        assert_eq!(
            elements(
                &ExecuteScript::new("go()")
                    .attributes(&own)
                    .auto_remove(false)
            ),
            "data: elements <script data-effect=\"el.dataset.ran = 1\">go()</script>"
        );
        // Other data-* attributes are fine beside it.
        elements(&ExecuteScript::new("").attributes(&[("data-effect-x", "1")]));
    }
}

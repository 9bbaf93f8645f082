//! The text of one SSE event: validation, line splitting, formatting.
//!
//! An SSE event is a block of `field: value` lines ended by a blank line
//! ([WHATWG HTML, "event stream interpretation"][spec]). A browser ends a line
//! at CR, LF *or* CRLF, so any of those three inside user text would start a
//! new field. This module makes that impossible:
//!
//! - **data** is split at every CR, LF and CRLF (CRLF counts as one break) and
//!   each line becomes its own `data:` line, so the browser joins them back
//!   with `\n` and gets the text it was sent (line breaks normalised to `\n`);
//! - an **event type** containing CR or LF, and an **id** containing CR, LF or
//!   NUL, are refused with [`io::ErrorKind::InvalidInput`] before anything is
//!   written (a browser ignores an id containing NUL, so it would be lost).
//!
//! Everything that can be sent as an event implements [`Encode`]: the plain
//! [`Event`] of this module and the Datastar events of [`crate::datastar`].
//! An `Encode` implementation never touches bytes directly; it describes its
//! header ([`EventMeta`]) and writes its data through a [`DataWriter`], which
//! only ever produces well-formed `data:` lines.
//!
//! [spec]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

mod data;
mod formatted;
mod validate;

pub use data::{DataWriter, Lines};
pub(crate) use formatted::write_chunk;
pub use formatted::{FormattedEvent, format_event, write_comment, write_event, write_framed};
pub use validate::{check_event_type, check_id};
pub(crate) use validate::{check_single_line, find_line_break, invalid_input};

use std::io;
use std::time::Duration;

/// Datastar's default reconnection delay, which the Datastar events of
/// [`crate::datastar`] leave off the wire: the Datastar client retries after
/// 1000 ms unless told otherwise, so `retry: 1000` would only repeat it.
///
/// A plain [`Event`] writes every retry it is given, this one included: a
/// browser's own `EventSource` picks its own default (often a few seconds),
/// so there `retry: 1000` does change something.
pub const DEFAULT_RETRY: Duration = Duration::from_millis(1000);

/// Anything that can be written as exactly one SSE event.
///
/// Implementations say what their header is ([`meta`](Encode::meta)) and write
/// their data lines through a [`DataWriter`]. The writer validates and splits
/// everything, so an implementation cannot produce a stray field or event,
/// whatever text it is given.
///
/// ```
/// use dstar::event::{format_event, DataWriter, Encode, EventMeta};
/// use std::io;
///
/// /// A chat message: `data: from <name>` then the text, line by line.
/// struct Chat<'a> { from: &'a str, text: &'a str }
///
/// impl Encode for Chat<'_> {
///     fn meta(&self) -> EventMeta<'_> {
///         EventMeta::new("chat")
///     }
///     fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()> {
///         data.line("from ", self.from)?; // refuses a name with a line break
///         data.text(self.text);            // splits the text into lines
///         Ok(())
///     }
/// }
///
/// let text = format_event(&Chat { from: "ann", text: "hi\r\nall" }).unwrap();
/// assert_eq!(text, "event: chat\ndata: from ann\ndata: hi\ndata: all\n\n");
/// assert!(format_event(&Chat { from: "ann\nevent: x", text: "" }).is_err());
/// ```
pub trait Encode {
    /// The event's type, id and reconnection delay.
    fn meta(&self) -> EventMeta<'_>;

    /// Writes the event's data lines.
    ///
    /// Returning an error abandons the event: whatever was written for it is
    /// taken back, and the caller sees the error.
    fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()>;

    /// Crate-internal: the event as one line of user text under a constant
    /// head, when it has that shape, so that it can be written without
    /// scanning the crate's own constants and with its length known before
    /// its chunk's size line. `Ok(None)` means "write it the general way".
    ///
    /// The argument is a type outside code cannot name, so this method can be
    /// neither called nor overridden there (as `std::error::Error::type_id`
    /// does): everything another crate encodes goes through [`DataWriter`].
    #[doc(hidden)]
    fn one_line(&self, _: sealed::Token) -> io::Result<Option<OneLine<'_>>> {
        Ok(None)
    }
}

impl<T: Encode + ?Sized> Encode for &T {
    fn meta(&self) -> EventMeta<'_> {
        (**self).meta()
    }
    fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()> {
        (**self).encode_data(data)
    }
    fn one_line(&self, token: sealed::Token) -> io::Result<Option<OneLine<'_>>> {
        (**self).one_line(token)
    }
}

pub(crate) mod sealed {
    /// Only this crate can make one: see [`Encode::one_line`](super::Encode::one_line).
    #[derive(Clone, Copy, Debug)]
    pub struct Token(pub(crate) ());
}

/// The constant part of a one-line event, `event: {type}\ndata: {prefix}`,
/// checked when it is made (at compile time, for a `static`): one `event:`
/// line with a type, then the start of a `data:` line, no other line break.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct Head {
    /// Both lines' text, written with one copy when there is no id or retry.
    pub(crate) text: &'static [u8],
    /// Where the `event:` line ends (after its LF): id and retry go there.
    pub(crate) split: usize,
    /// `text` padded to a fixed size, so that it is copied with a few stores
    /// and cut to length rather than through a `memcpy` call.
    padded: [u8; Head::ROOM],
}

impl Head {
    /// Panics (at compile time in a `static`) unless `text` has the form above.
    pub(crate) const fn new(text: &'static str) -> Head {
        let text = text.as_bytes();
        let mut split = 0;
        while split < text.len() && text[split] != b'\n' {
            split += 1;
        }
        split += 1;
        assert!(split > "event: \n".len() && split <= text.len());
        assert!(starts_with(text, 0, b"event: ") && !has_break(text, 0, split - 1));
        assert!(starts_with(text, split, b"data: ") && !has_break(text, split, text.len()));
        assert!(text.len() <= Head::ROOM);
        let mut padded = [0; Head::ROOM];
        let mut i = 0;
        while i < text.len() {
            padded[i] = text[i];
            i += 1;
        }
        Head {
            text,
            split,
            padded,
        }
    }

    /// The longest head: room for the Datastar heads, which are 44–47 bytes.
    pub(crate) const ROOM: usize = 64;

    /// Appends the whole head.
    #[inline]
    pub(crate) fn push(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        buf.extend_from_slice(&self.padded);
        buf.truncate(start + self.text.len());
    }
}

const fn starts_with(text: &[u8], at: usize, start: &[u8]) -> bool {
    let mut i = 0;
    while i < start.len() {
        if at + i >= text.len() || text[at + i] != start[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn has_break(text: &[u8], mut from: usize, end: usize) -> bool {
    while from < end {
        if text[from] == b'\r' || text[from] == b'\n' {
            return true;
        }
        from += 1;
    }
    false
}

/// An event that is a constant head, an optional id and retry, and one data
/// line of user text; see [`Encode::one_line`].
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct OneLine<'a> {
    pub(crate) head: &'static Head,
    /// Unchecked: the writer checks the id, and that the value is one line.
    pub(crate) id: Option<&'a str>,
    pub(crate) retry: Option<Duration>,
    pub(crate) value: &'a str,
}

/// The header fields of an event: `event`, `id` and `retry`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EventMeta<'a> {
    /// The event type; empty means none, which a browser dispatches as `message`.
    pub event_type: &'a str,
    /// The event id, which the browser sends back as `Last-Event-ID` when it
    /// reconnects. `Some("")` is written, and resets the browser's last id.
    pub id: Option<&'a str>,
    /// How long the browser waits before reconnecting; written in whole
    /// milliseconds. (The Datastar builders never set it to [`DEFAULT_RETRY`],
    /// which their client assumes anyway.)
    pub retry: Option<Duration>,
}

impl<'a> EventMeta<'a> {
    /// A header with this event type, no id and no retry.
    pub const fn new(event_type: &'a str) -> Self {
        EventMeta {
            event_type,
            id: None,
            retry: None,
        }
    }
}

/// A plain SSE event: a type, data, and optionally an id and a retry delay.
///
/// It borrows everything it holds, so building one allocates nothing.
///
/// ```
/// use dstar::{format_event, Event};
/// use std::time::Duration;
///
/// let event = Event::new("greeting")
///     .data("hello\nworld")
///     .id("7")
///     .retry(Duration::from_secs(5));
/// assert_eq!(
///     format_event(&event).unwrap(),
///     "event: greeting\nid: 7\nretry: 5000\ndata: hello\ndata: world\n\n"
/// );
///
/// // Several pieces: each is split on its own line breaks.
/// let lines = ["one", "two\r\nthree"];
/// assert_eq!(
///     format_event(&Event::message(&lines)).unwrap(),
///     "data: one\ndata: two\ndata: three\n\n"
/// );
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event<'a> {
    meta: EventMeta<'a>,
    data: Data<'a>,
}

impl<'a> Event<'a> {
    /// An event of this type, with no data yet.
    ///
    /// An event without data lines is not dispatched by a browser, but its
    /// id and retry still take effect.
    pub const fn new(event_type: &'a str) -> Self {
        Event {
            meta: EventMeta::new(event_type),
            data: Data::None,
        }
    }

    /// An event without a type, which a browser dispatches as `message`.
    pub fn message(data: impl Into<Data<'a>>) -> Self {
        Event::new("").data(data)
    }

    /// Sets the data: one string, or several (a slice, array or `Vec` of
    /// `&str` or `String`). Each piece is split at CR, LF and CRLF, and each
    /// line becomes one `data:` line; an empty string is one empty line.
    pub fn data(mut self, data: impl Into<Data<'a>>) -> Self {
        self.data = data.into();
        self
    }

    id_and_retry_setters!();
}

/// The `id` and `retry` builder methods of an event type with a
/// `meta: EventMeta<'a>` field: every event in this crate has them, alike.
macro_rules! id_and_retry_setters {
    () => {
        $crate::event::id_and_retry_setters!(@id);

        /// Sets the reconnection delay, written in whole milliseconds
        /// (every value, 1000 ms included: a plain `EventSource`'s default is
        /// the browser's own).
        pub const fn retry(mut self, retry: ::std::time::Duration) -> Self {
            self.meta.retry = Some(retry);
            self
        }
    };
    (datastar) => {
        $crate::event::id_and_retry_setters!(@id);

        /// Sets the reconnection delay; 1000 ms ([`DEFAULT_RETRY`](crate::DEFAULT_RETRY),
        /// the Datastar client's default) is left off the wire.
        pub const fn retry(mut self, retry: ::std::time::Duration) -> Self {
            let default = crate::DEFAULT_RETRY.as_nanos();
            self.meta.retry = if retry.as_nanos() == default {
                None
            } else {
                Some(retry)
            };
            self
        }
    };
    (@id) => {
        /// Sets the event id, which the browser sends back as `Last-Event-ID`
        /// when it reconnects.
        pub const fn id(mut self, id: &'a str) -> Self {
            self.meta.id = Some(id);
            self
        }
    };
}
pub(crate) use id_and_retry_setters;

impl Encode for Event<'_> {
    fn meta(&self) -> EventMeta<'_> {
        self.meta
    }

    fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()> {
        match self.data {
            Data::None => {}
            Data::Text(text) => data.text(text),
            Data::Strs(pieces) => pieces.iter().for_each(|p| data.text(p)),
            Data::Strings(pieces) => pieces.iter().for_each(|p| data.text(p)),
        }
        Ok(())
    }
}

/// The data of an [`Event`]: nothing, one string, or several.
///
/// You rarely name this type: [`Event::data`] takes anything that converts
/// into it (`&str`, `&String`, and slices, arrays or `Vec`s of either).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Data<'a> {
    /// No data lines at all.
    #[default]
    None,
    /// One string, split into lines.
    Text(&'a str),
    /// Several strings, each split into lines.
    Strs(&'a [&'a str]),
    /// Several strings, each split into lines.
    Strings(&'a [String]),
}

impl<'a> From<&'a str> for Data<'a> {
    fn from(text: &'a str) -> Self {
        Data::Text(text)
    }
}

impl<'a> From<&'a String> for Data<'a> {
    fn from(text: &'a String) -> Self {
        Data::Text(text)
    }
}

impl<'a> From<&'a [&'a str]> for Data<'a> {
    fn from(pieces: &'a [&'a str]) -> Self {
        Data::Strs(pieces)
    }
}

impl<'a, const N: usize> From<&'a [&'a str; N]> for Data<'a> {
    fn from(pieces: &'a [&'a str; N]) -> Self {
        Data::Strs(pieces)
    }
}

impl<'a> From<&'a Vec<&'a str>> for Data<'a> {
    fn from(pieces: &'a Vec<&'a str>) -> Self {
        Data::Strs(pieces)
    }
}

impl<'a> From<&'a [String]> for Data<'a> {
    fn from(pieces: &'a [String]) -> Self {
        Data::Strings(pieces)
    }
}

impl<'a, const N: usize> From<&'a [String; N]> for Data<'a> {
    fn from(pieces: &'a [String; N]) -> Self {
        Data::Strings(pieces)
    }
}

impl<'a> From<&'a Vec<String>> for Data<'a> {
    fn from(pieces: &'a Vec<String>) -> Self {
        Data::Strings(pieces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(event: &impl Encode) -> String {
        format_event(event).unwrap()
    }

    #[test]
    fn data_is_split_at_cr_lf_and_crlf() {
        let event = Event::new("t").data("a\nb\rc\r\nd\n\re");
        assert_eq!(
            text(&event),
            "event: t\ndata: a\ndata: b\ndata: c\ndata: d\ndata: \ndata: e\n\n"
        );
    }

    #[test]
    fn trailing_and_leading_breaks_give_empty_lines() {
        assert_eq!(text(&Event::message("")), "data: \n\n");
        assert_eq!(text(&Event::message("\n")), "data: \ndata: \n\n");
        assert_eq!(text(&Event::message("\r\n")), "data: \ndata: \n\n");
        assert_eq!(text(&Event::message("x\r")), "data: x\ndata: \n\n");
    }

    #[test]
    fn many_pieces_are_split_independently() {
        let pieces = ["a\r", "\nb"];
        // A CR ending one piece and an LF starting the next are two breaks:
        // pieces are separate lines, not one text.
        assert_eq!(
            text(&Event::message(&pieces)),
            "data: a\ndata: \ndata: \ndata: b\n\n"
        );
        let owned = vec!["x".to_string(), "y".to_string()];
        assert_eq!(text(&Event::message(&owned)), "data: x\ndata: y\n\n");
        let none: [&str; 0] = [];
        assert_eq!(text(&Event::new("t").data(&none)), "event: t\n\n");
    }

    #[test]
    fn heads_are_checked_when_made() {
        let head = Head::new("event: t\ndata: p ");
        assert_eq!((head.text, head.split), (&b"event: t\ndata: p "[..], 9));
        for bad in [
            "event: \ndata: p",
            "event: t\rdata: p",
            "event: t\ndata: p\n",
            "event: t\ndata: \rp",
            "event: t\nevent: u\ndata: p",
            "evnt: t\ndata: p",
            "event: t\ndat: p",
            "event: t",
        ] {
            assert!(
                std::panic::catch_unwind(|| Head::new(bad)).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn header_fields_in_order_and_every_retry_written() {
        let ev = Event::new("t")
            .id("1")
            .retry(Duration::from_millis(2500))
            .data("d");
        assert_eq!(text(&ev), "event: t\nid: 1\nretry: 2500\ndata: d\n\n");
        // A plain EventSource's default is the browser's, so 1000 ms is sent.
        let ev = Event::new("t").retry(DEFAULT_RETRY).data("d");
        assert_eq!(text(&ev), "event: t\nretry: 1000\ndata: d\n\n");
        let ev = Event::new("t").retry(Duration::ZERO).data("d");
        assert_eq!(text(&ev), "event: t\nretry: 0\ndata: d\n\n");
        let ev = Event::new("t").id("").data("d");
        assert_eq!(text(&ev), "event: t\nid: \ndata: d\n\n");
    }
}

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

use std::io;
use std::time::Duration;

/// The reconnection delay that is left off the wire: Datastar's client
/// defaults to 1000 ms, so `retry: 1000` would only repeat the default.
///
/// Note that a browser's own `EventSource` picks its own default (often a few
/// seconds); send any other value to override it.
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
}

impl<T: Encode + ?Sized> Encode for &T {
    fn meta(&self) -> EventMeta<'_> {
        (**self).meta()
    }
    fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()> {
        (**self).encode_data(data)
    }
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
    /// milliseconds, and left off when it is [`DEFAULT_RETRY`].
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
        /// Sets the event id, which the browser sends back as `Last-Event-ID`
        /// when it reconnects.
        pub const fn id(mut self, id: &'a str) -> Self {
            self.meta.id = Some(id);
            self
        }

        /// Sets the reconnection delay; 1000 ms ([`DEFAULT_RETRY`](crate::DEFAULT_RETRY),
        /// Datastar's default) is left off the wire.
        pub const fn retry(mut self, retry: ::std::time::Duration) -> Self {
            self.meta.retry = Some(retry);
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

/// Writes the data lines of one event into a buffer.
///
/// Every method produces whole `data:` lines: text is split at CR, LF and
/// CRLF, and single-line values that contain a line break are refused.
#[derive(Debug)]
pub struct DataWriter<'b> {
    buf: &'b mut Vec<u8>,
}

impl DataWriter<'_> {
    /// Writes `text` as data: one `data:` line per line of text.
    ///
    /// An empty text is one empty `data:` line.
    pub fn text(&mut self, text: &str) {
        self.write_lines(b"", text.as_bytes());
    }

    /// Writes each line of `text` as `data: {prefix}{line}`.
    ///
    /// This is how Datastar's `elements <html>` lines are made. Refused with
    /// [`io::ErrorKind::InvalidInput`] if `prefix` contains a line break.
    pub fn prefixed(&mut self, prefix: &str, text: &str) -> io::Result<()> {
        check_single_line("data line prefix", prefix)?;
        self.write_lines(prefix.as_bytes(), text.as_bytes());
        Ok(())
    }

    /// Writes one line, `data: {prefix}{value}`, for a value that is a single
    /// line by nature (a CSS selector, a mode, a flag).
    ///
    /// Refused with [`io::ErrorKind::InvalidInput`] if either part contains
    /// CR or LF: splitting it would change its meaning.
    pub fn line(&mut self, prefix: &str, value: &str) -> io::Result<()> {
        check_single_line("data line prefix", prefix)?;
        check_single_line("single-line value", value)?;
        let buf = &mut *self.buf;
        buf.reserve(DATA.len() + prefix.len() + value.len() + 1);
        buf.extend_from_slice(DATA);
        buf.extend_from_slice(prefix.as_bytes());
        buf.extend_from_slice(value.as_bytes());
        buf.push(b'\n');
        Ok(())
    }

    /// Starts a run of data lines that each begin with `prefix`, for text that
    /// arrives in pieces; see [`Lines`].
    ///
    /// Refused with [`io::ErrorKind::InvalidInput`] if `prefix` contains a
    /// line break.
    pub fn lines<'p>(&mut self, prefix: &'p str) -> io::Result<Lines<'_, 'p>> {
        check_single_line("data line prefix", prefix)?;
        self.buf.extend_from_slice(DATA);
        self.buf.extend_from_slice(prefix.as_bytes());
        Ok(Lines {
            buf: self.buf,
            prefix: prefix.as_bytes(),
            after_cr: false,
        })
    }

    #[inline]
    fn write_lines(&mut self, prefix: &[u8], mut text: &[u8]) {
        let buf = &mut *self.buf;
        // One reservation for the common case of text without line breaks.
        buf.reserve(DATA.len() + prefix.len() + text.len() + 1);
        loop {
            buf.extend_from_slice(DATA);
            buf.extend_from_slice(prefix);
            match find_line_break(text) {
                None => {
                    buf.extend_from_slice(text);
                    buf.push(b'\n');
                    return;
                }
                Some(at) => {
                    buf.extend_from_slice(&text[..at]);
                    buf.push(b'\n');
                    text = skip_line_break(text, at);
                }
            }
        }
    }
}

/// A run of `data:` lines sharing a prefix, fed text piece by piece.
///
/// Line breaks inside the pieces start new lines, exactly as if the pieces had
/// been one string: a CR at the end of one piece and an LF at the start of the
/// next are one break. The last line is ended when the `Lines` is dropped.
///
/// ```
/// use dstar::event::{format_event, DataWriter, Encode, EventMeta};
/// use std::io;
///
/// struct Quote<'a>(&'a str);
/// impl Encode for Quote<'_> {
///     fn meta(&self) -> EventMeta<'_> { EventMeta::new("quote") }
///     fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()> {
///         data.lines("> ")?.push("\u{201c}").push(self.0).push("\u{201d}");
///         Ok(())
///     }
/// }
/// assert_eq!(
///     format_event(&Quote("to be\r\nor not")).unwrap(),
///     "event: quote\ndata: > \u{201c}to be\ndata: > or not\u{201d}\n\n"
/// );
/// ```
#[derive(Debug)]
pub struct Lines<'b, 'p> {
    buf: &'b mut Vec<u8>,
    prefix: &'p [u8],
    /// The last byte pushed was a CR, so an LF that comes next belongs to it.
    after_cr: bool,
}

impl Lines<'_, '_> {
    /// Appends a piece of text, starting a new line at each line break.
    pub fn push(&mut self, piece: &str) -> &mut Self {
        let mut text = piece.as_bytes();
        if text.is_empty() {
            // An empty piece changes nothing: a CR before it still pairs
            // with an LF after it.
            return self;
        }
        if self.after_cr && text[0] == b'\n' {
            text = &text[1..];
        }
        // Also cleared when the piece was only the LF that completed a CRLF,
        // so that the next piece's LF is a break of its own.
        self.after_cr = text.last() == Some(&b'\r');
        if text.is_empty() {
            return self;
        }
        self.buf.reserve(text.len());
        while let Some(at) = find_line_break(text) {
            self.buf.extend_from_slice(&text[..at]);
            self.buf.push(b'\n');
            self.buf.extend_from_slice(DATA);
            self.buf.extend_from_slice(self.prefix);
            text = skip_line_break(text, at);
        }
        self.buf.extend_from_slice(text);
        self
    }
}

impl Drop for Lines<'_, '_> {
    fn drop(&mut self) {
        self.buf.push(b'\n');
    }
}

const DATA: &[u8] = b"data: ";

/// Appends one event to `buf`; on error `buf` is left as it was.
///
/// This is the allocation-free way to format events: reuse the same `Vec`
/// and it stops growing once it has room for your largest event.
///
/// ```
/// use dstar::{write_event, Event};
///
/// let mut buf = Vec::with_capacity(256);
/// write_event(&mut buf, &Event::new("tick").data("1")).unwrap();
/// write_event(&mut buf, &Event::new("tick").data("2")).unwrap();
/// assert_eq!(buf, b"event: tick\ndata: 1\n\nevent: tick\ndata: 2\n\n");
///
/// let before = buf.len();
/// let refused = write_event(&mut buf, &Event::new("tick\r").data("3"));
/// assert_eq!(refused.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
/// assert_eq!(buf.len(), before); // nothing was added
/// ```
pub fn write_event(buf: &mut Vec<u8>, event: &(impl Encode + ?Sized)) -> io::Result<()> {
    let meta = event.meta();
    check_event_type(meta.event_type)?;
    if let Some(id) = meta.id {
        check_id(id)?;
    }
    let start = buf.len();
    if !meta.event_type.is_empty() {
        field(buf, b"event: ", meta.event_type.as_bytes());
    }
    if let Some(id) = meta.id {
        field(buf, b"id: ", id.as_bytes());
    }
    if let Some(retry) = meta.retry.filter(|r| *r != DEFAULT_RETRY) {
        buf.extend_from_slice(b"retry: ");
        push_decimal(buf, retry.as_millis());
        buf.push(b'\n');
    }
    if let Err(err) = event.encode_data(&mut DataWriter { buf }) {
        buf.truncate(start);
        return Err(err);
    }
    buf.push(b'\n');
    Ok(())
}

/// Formats one event as text, without a connection.
///
/// The same validation and splitting as [`SseConnection::send_event`](crate::SseConnection::send_event);
/// use [`write_event`] to append to a reused buffer instead.
///
/// ```
/// use dstar::{format_event, Event};
///
/// assert_eq!(
///     format_event(&Event::new("update").data("a\rb")).unwrap(),
///     "event: update\ndata: a\ndata: b\n\n"
/// );
/// ```
pub fn format_event(event: &(impl Encode + ?Sized)) -> io::Result<String> {
    let mut buf = Vec::new();
    write_event(&mut buf, event)?;
    // Every byte came from a `&str` or is ASCII, and lines are only cut at
    // ASCII CR/LF, so the text is UTF-8; the error arm is never taken.
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// An event formatted once, to be sent on many connections.
///
/// Fan-out formats an event once and hands the same text to every
/// subscriber; [`SseConnection::send_formatted`](crate::SseConnection::send_formatted)
/// frames it for each connection. It can only be made by formatting an
/// [`Encode`], so its text is always exactly one well-formed event.
///
/// ```
/// use dstar::{Event, FormattedEvent, SseConnection};
///
/// let event = FormattedEvent::new(&Event::new("tick").data("1").id("41"))?;
/// assert_eq!(event.as_str(), "event: tick\nid: 41\ndata: 1\n\n");
/// assert_eq!(event.id(), Some("41"));
///
/// let mut a = SseConnection::body_only(Vec::new());
/// let mut b = SseConnection::body_only(Vec::new());
/// a.send_formatted(&event)?;
/// b.send_formatted(&event)?;
/// assert_eq!(a.get_ref(), b.get_ref());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FormattedEvent {
    text: String,
    id: Option<String>,
}

impl FormattedEvent {
    /// Formats `event`, with the same validation as [`write_event`].
    pub fn new(event: &(impl Encode + ?Sized)) -> io::Result<Self> {
        let text = format_event(event)?;
        let id = event.meta().id.map(str::to_string);
        Ok(FormattedEvent { text, id })
    }

    /// Checks that `text` is exactly one event in the form this crate writes,
    /// and takes it as formatted: for events that come back from elsewhere,
    /// such as a pub/sub channel shared by several servers.
    ///
    /// The form is strict — exactly what [`FormattedEvent::new`] writes:
    /// `event: `, `id: ` and `retry: ` lines, each at most once and in that
    /// order, then `data: ` lines, then one blank line; every line ends with
    /// LF and no CR appears anywhere; the type is not empty, the id has no
    /// NUL, and the retry is plain decimal other than the default 1000 (which
    /// the encoder leaves off). Anything else is refused with
    /// [`io::ErrorKind::InvalidData`], so text that could inject a field or an
    /// event never reaches a connection.
    ///
    /// ```
    /// use dstar::{Event, FormattedEvent};
    ///
    /// let sent = FormattedEvent::new(&Event::new("tick").data("1\n2").id("7"))?;
    /// let received = FormattedEvent::parse(sent.as_str().to_string())?;
    /// assert_eq!(received, sent);
    ///
    /// for bad in ["data: a\n\ndata: b\n\n", "data: a\r\n\n", "data: a\n", "evil\n\n"] {
    ///     assert!(FormattedEvent::parse(bad.to_string()).is_err(), "{bad:?}");
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn parse(text: String) -> io::Result<Self> {
        let invalid = |problem: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not one well-formed event: {problem}"),
            )
        };
        if text.contains('\r') {
            return Err(invalid("it contains CR"));
        }
        // The blank line that ends the event, after the LF of its last field
        // (an event with no fields at all is the blank line alone).
        let fields = match text.strip_suffix('\n') {
            Some("") => return Ok(FormattedEvent { text, id: None }),
            Some(rest) => match rest.strip_suffix('\n') {
                Some("") | None => return Err(invalid("it does not end with a blank line")),
                Some(fields) => fields,
            },
            None => return Err(invalid("it does not end with a blank line")),
        };
        let mut id = None;
        // Fields must come in the order the encoder writes them.
        let mut stage = 0;
        for line in fields.split('\n') {
            let (rank, field) = if let Some(value) = line.strip_prefix("event: ") {
                (1, value.is_empty().then_some("an empty event type"))
            } else if let Some(value) = line.strip_prefix("id: ") {
                id = Some(value.to_string());
                (2, value.contains('\0').then_some("an id with NUL"))
            } else if let Some(value) = line.strip_prefix("retry: ") {
                // As the encoder writes it: plain decimal, and never the default.
                let canonical = value.parse::<u128>().is_ok_and(|ms| {
                    ms.to_string() == value
                        && ms != DEFAULT_RETRY.as_millis()
                        && ms <= Duration::MAX.as_millis()
                });
                (
                    3,
                    (!canonical).then_some("a retry that is not as the encoder writes it"),
                )
            } else if line.starts_with("data: ") {
                (4, None)
            } else if line.is_empty() {
                return Err(invalid("it holds more than one event"));
            } else {
                return Err(invalid("a line is not an event, id, retry or data field"));
            };
            if let Some(problem) = field {
                return Err(invalid(problem));
            }
            if rank < stage || (rank == stage && rank != 4) {
                return Err(invalid("fields are repeated or out of order"));
            }
            stage = rank;
        }
        Ok(FormattedEvent { text, id })
    }

    /// The event's text, ending with its blank line.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The event's id, if it has one.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The same event with `id` as its id, in the place the encoder writes
    /// it (after the `event:` line): for ids given by whoever delivers the
    /// event, such as a hub numbering its events or a Redis stream.
    ///
    /// An event that has an id already keeps it. An id that would break
    /// framing is refused with [`io::ErrorKind::InvalidInput`].
    pub(crate) fn with_id(self, id: &str) -> io::Result<Self> {
        if self.id.is_some() {
            return Ok(self);
        }
        check_id(id)?;
        let at = match self.text.strip_prefix("event: ") {
            Some(rest) => "event: ".len() + rest.find('\n').map_or(rest.len(), |n| n + 1),
            None => 0,
        };
        let mut text = String::with_capacity(self.text.len() + id.len() + 5);
        text.push_str(&self.text[..at]);
        text.push_str("id: ");
        text.push_str(id);
        text.push('\n');
        text.push_str(&self.text[at..]);
        Ok(FormattedEvent {
            text,
            id: Some(id.to_string()),
        })
    }
}

/// Appends an SSE comment: one `:` line per line of `text`.
///
/// Browsers ignore comments; they keep idle connections and proxies awake and
/// let the server notice a client that has gone away.
///
/// ```
/// let mut buf = Vec::new();
/// dstar::event::write_comment(&mut buf, "keep-alive");
/// dstar::event::write_comment(&mut buf, "");
/// assert_eq!(buf, b": keep-alive\n:\n");
/// ```
pub fn write_comment(buf: &mut Vec<u8>, text: &str) {
    let mut text = text.as_bytes();
    loop {
        let (line, rest) = match find_line_break(text) {
            Some(at) => (&text[..at], Some(skip_line_break(text, at))),
            None => (text, None),
        };
        buf.push(b':');
        if !line.is_empty() {
            buf.push(b' ');
            buf.extend_from_slice(line);
        }
        buf.push(b'\n');
        match rest {
            Some(rest) => text = rest,
            None => return,
        }
    }
}

#[inline]
fn field(buf: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    buf.reserve(name.len() + value.len() + 1);
    buf.extend_from_slice(name);
    buf.extend_from_slice(value);
    buf.push(b'\n');
}

/// Refuses an event type that would end its own line.
pub fn check_event_type(event_type: &str) -> io::Result<()> {
    check_single_line("event type", event_type)
}

/// Refuses an event id that would end its own line, or that a browser would
/// ignore because it contains NUL.
pub fn check_id(id: &str) -> io::Result<()> {
    check_single_line("event id", id)?;
    if id.as_bytes().contains(&0) {
        return Err(invalid_input(
            "event id",
            id,
            "contains NUL, which browsers ignore",
        ));
    }
    Ok(())
}

/// Refuses a value that contains CR or LF.
///
/// `what` names the value in the error message.
pub(crate) fn check_single_line(what: &'static str, value: &str) -> io::Result<()> {
    if find_line_break(value.as_bytes()).is_some() {
        return Err(invalid_input(
            what,
            value,
            "contains a line break (CR or LF)",
        ));
    }
    Ok(())
}

pub(crate) fn invalid_input(what: &str, value: &str, problem: &str) -> io::Error {
    const SHOWN: usize = 40;
    let shown = match value.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{:?}...", &value[..end]),
        None => format!("{value:?}"),
    };
    crate::error::Refused::error(format!("{what} {shown} {problem}"))
}

/// Returns the index of the first CR or LF in `text`.
///
/// This scan runs over every byte of every event, so it is written for
/// speed in safe code: 32-byte blocks are tested with a branch-free fold
/// that the compiler turns into SIMD compares, and only a block with a hit
/// is searched, a word at a time. A tail shorter than a block is covered by
/// one last block that overlaps bytes already known to be clean.
#[inline]
pub(crate) fn find_line_break(text: &[u8]) -> Option<usize> {
    let len = text.len();
    if len < 32 {
        if len < 8 {
            return text.iter().position(|&b| b == b'\n' || b == b'\r');
        }
        let (words, _) = text.as_chunks::<8>();
        if let Some(at) = first_break_in_words(words) {
            return Some(at);
        }
        let last = len - 8;
        let word = text[last..].first_chunk::<8>()?;
        return first_break_in_words(std::slice::from_ref(word)).map(|at| last + at);
    }
    let (blocks, tail) = text.as_chunks::<32>();
    for (k, block) in blocks.iter().enumerate() {
        if has_break(block) {
            return first_break_in_block(block).map(|at| k * 32 + at);
        }
    }
    if tail.is_empty() {
        return None;
    }
    let last = len - 32;
    let block = text[last..].first_chunk::<32>()?;
    if !has_break(block) {
        return None;
    }
    first_break_in_block(block).map(|at| last + at)
}

/// Whether a block holds CR or LF; written without early exit (an `any`
/// would stop at each byte) so that it compiles to vector compares.
#[inline(always)]
fn has_break(block: &[u8; 32]) -> bool {
    block.iter().fold(0u8, |hit, &b| {
        hit | u8::from(b == b'\n') | u8::from(b == b'\r')
    }) != 0
}

#[inline(always)]
fn first_break_in_block(block: &[u8; 32]) -> Option<usize> {
    let (words, _) = block.as_chunks::<8>();
    first_break_in_words(words)
}

/// A word at a time: a byte equal to CR or LF makes the matching byte of
/// `word ^ pattern` zero, and `(x - 0x01..) & !x & 0x80..` flags zero bytes.
/// The flag of the lowest zero byte is exact (borrows only run upwards), and
/// that is the only one read.
#[inline(always)]
fn first_break_in_words(words: &[[u8; 8]]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const LFS: u64 = u64::from_ne_bytes([b'\n'; 8]);
    const CRS: u64 = u64::from_ne_bytes([b'\r'; 8]);
    for (k, word) in words.iter().enumerate() {
        let word = u64::from_le_bytes(*word);
        let lf = word ^ LFS;
        let cr = word ^ CRS;
        let found = (lf.wrapping_sub(ONES) & !lf | cr.wrapping_sub(ONES) & !cr) & HIGHS;
        if found != 0 {
            return Some(k * 8 + (found.trailing_zeros() / 8) as usize);
        }
    }
    None
}

/// Returns the text after the line break at `at` (CRLF is one break).
pub(crate) fn skip_line_break(text: &[u8], at: usize) -> &[u8] {
    if text[at] == b'\r' && text.get(at + 1) == Some(&b'\n') {
        &text[at + 2..]
    } else {
        &text[at + 1..]
    }
}

/// Appends `n` in decimal.
pub(crate) fn push_decimal(buf: &mut Vec<u8>, mut n: u128) {
    let mut digits = [0u8; 39];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(event: &impl Encode) -> String {
        format_event(event).unwrap()
    }

    #[test]
    fn with_id_writes_the_id_where_the_encoder_would() {
        let cases = [
            Event::new("t").data("a\nb"),
            Event::message("x"),
            Event::new("t"),
            Event::default(),
            Event::new("t").retry(Duration::from_millis(2500)).data("y"),
        ];
        for event in cases {
            let added = FormattedEvent::new(&event).unwrap().with_id("e-7").unwrap();
            let direct = FormattedEvent::new(&event.id("e-7")).unwrap();
            assert_eq!(added, direct);
            assert_eq!(FormattedEvent::parse(added.as_str().into()).unwrap(), added);
        }
        let kept = FormattedEvent::new(&Event::message("x").id("1")).unwrap();
        assert_eq!(kept.clone().with_id("2").unwrap(), kept);
        let plain = FormattedEvent::new(&Event::message("x")).unwrap();
        assert!(plain.clone().with_id("a\nb").is_err());
        assert!(plain.with_id("a\0b").is_err());
    }

    #[test]
    fn find_line_break_agrees_with_a_plain_scan() {
        let mut cases: Vec<Vec<u8>> = vec![vec![], b"\n".to_vec(), b"\r".to_vec()];
        // Every position of a break within and around a word boundary, with
        // neighbours that look like CR/LF to a sloppy bit trick.
        for len in (0..80).chain([95, 96, 97, 200, 221]) {
            for at in 0..len {
                for brk in [b'\n', b'\r'] {
                    for fill in [b'a', 0x0b, 0x0c, 0x8a, 0x8d, 0x00, 0xff, 0x09] {
                        let mut v = vec![fill; len];
                        v[at] = brk;
                        cases.push(v);
                    }
                }
            }
            cases.push(vec![b'x'; len]);
        }
        for case in cases {
            let expected = case.iter().position(|&b| b == b'\n' || b == b'\r');
            assert_eq!(find_line_break(&case), expected, "{case:?}");
        }
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
    fn header_fields_in_order_and_default_retry_omitted() {
        let ev = Event::new("t")
            .id("1")
            .retry(Duration::from_millis(2500))
            .data("d");
        assert_eq!(text(&ev), "event: t\nid: 1\nretry: 2500\ndata: d\n\n");
        let ev = Event::new("t").retry(DEFAULT_RETRY).data("d");
        assert_eq!(text(&ev), "event: t\ndata: d\n\n");
        let ev = Event::new("t").retry(Duration::ZERO).data("d");
        assert_eq!(text(&ev), "event: t\nretry: 0\ndata: d\n\n");
        let ev = Event::new("t").id("").data("d");
        assert_eq!(text(&ev), "event: t\nid: \ndata: d\n\n");
    }

    #[test]
    fn invalid_type_and_id_are_refused_without_writing() {
        let bad = [
            Event::new("a\nb"),
            Event::new("a\r"),
            Event::new("t").id("1\n"),
            Event::new("t").id("\r1"),
            Event::new("t").id("1\0"),
        ];
        for event in bad {
            let mut buf = b"kept".to_vec();
            let err = write_event(&mut buf, &event.data("x")).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert_eq!(buf, b"kept");
        }
        // NUL is fine in a type and in data.
        assert_eq!(
            text(&Event::new("a\0").data("\0")),
            "event: a\0\ndata: \0\n\n"
        );
    }

    #[test]
    fn error_messages_name_the_value_and_stay_short() {
        let err = check_id(&format!("{}\n", "x".repeat(100))).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("event id \"xxxx"), "{message}");
        assert!(message.contains("line break"), "{message}");
        assert!(message.len() < 120, "{message}");
    }

    struct Failing;
    impl Encode for Failing {
        fn meta(&self) -> EventMeta<'_> {
            EventMeta::new("t")
        }
        fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()> {
            data.text("written, then taken back");
            data.line("selector ", "#a\nb")
        }
    }

    #[test]
    fn a_failing_encoder_leaves_the_buffer_as_it_was() {
        let mut buf = b"before".to_vec();
        let err = write_event(&mut buf, &Failing).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(buf, b"before");
    }

    #[test]
    fn lines_join_pieces_and_treat_split_crlf_as_one_break() {
        let mut buf = Vec::new();
        {
            let mut data = DataWriter { buf: &mut buf };
            data.lines("p ")
                .unwrap()
                .push("a\r")
                .push("\nb")
                .push("")
                .push("\r")
                .push("")
                .push("\n")
                .push("c\n");
        }
        // As one text: "a\r\nb\r\nc\n".
        assert_eq!(buf, b"data: p a\ndata: p b\ndata: p c\ndata: p \n");
    }

    fn pushed(pieces: &[&str]) -> Vec<u8> {
        let mut buf = Vec::new();
        {
            let mut data = DataWriter { buf: &mut buf };
            let mut lines = data.lines("p ").unwrap();
            for piece in pieces {
                lines.push(piece);
            }
        }
        buf
    }

    #[test]
    fn an_lf_after_a_split_crlf_is_a_break_of_its_own() {
        // "\r\n\n": a CRLF, then an LF; three lines, the last two empty.
        assert_eq!(pushed(&["\r", "\n", "\n"]), pushed(&["\r\n\n"]));
        assert_eq!(
            pushed(&["\r", "\n", "\n"]),
            b"data: p \ndata: p \ndata: p \n"
        );
        assert_eq!(
            pushed(&["a\r", "\n", "\nb"]),
            b"data: p a\ndata: p \ndata: p b\n"
        );
    }

    proptest::proptest! {
        /// However a text is cut into pieces, it makes the same lines.
        #[test]
        fn any_split_of_a_text_gives_the_same_lines(
            parts in proptest::collection::vec(
                proptest::sample::select(vec!["\r", "\n", "\r\n", "a", "", "b\r", "\nc"]),
                0..12,
            ),
            cuts in proptest::collection::vec(proptest::bool::ANY, 12),
        ) {
            let text = parts.concat();
            // Join neighbouring parts where `cuts` says not to cut.
            let mut pieces = vec![String::new()];
            for (part, cut) in parts.iter().zip(&cuts) {
                if *cut {
                    pieces.push(String::new());
                }
                pieces.last_mut().unwrap().push_str(part);
            }
            let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
            proptest::prop_assert_eq!(pushed(&pieces), pushed(&[text.as_str()]));
        }
    }

    #[test]
    fn prefixes_and_single_line_values_are_checked() {
        let mut buf = Vec::new();
        let mut data = DataWriter { buf: &mut buf };
        assert!(data.prefixed("x\n", "y").is_err());
        assert!(data.lines("x\r").is_err());
        assert!(data.line("mode ", "inner\r").is_err());
        data.line("mode ", "inner").unwrap();
        data.prefixed("elements ", "<a>\n</a>").unwrap();
        assert_eq!(
            buf,
            b"data: mode inner\ndata: elements <a>\ndata: elements </a>\n"
        );
    }

    #[test]
    fn comments_are_split_like_data() {
        let mut buf = Vec::new();
        write_comment(&mut buf, "a\r\nb\rc");
        assert_eq!(buf, b": a\n: b\n: c\n");
    }

    #[test]
    fn formatted_events_parse_back_and_malformed_text_is_refused() {
        let events = [
            Event::new("t")
                .data("a\r\nb")
                .id("1")
                .retry(Duration::from_secs(3)),
            Event::message(""),
            Event::new("only-type"),
            Event::new("t").id(""),
            Event::message(&["x", "", "y"]),
        ];
        for event in events {
            let formatted = FormattedEvent::new(&event).unwrap();
            let parsed = FormattedEvent::parse(formatted.as_str().to_string()).unwrap();
            assert_eq!(parsed, formatted);
        }
        assert_eq!(FormattedEvent::parse("\n".into()).unwrap().as_str(), "\n");
        for bad in [
            "",
            "\n\n",
            "data: a\n",
            "data: a\n\n\n",
            "data: a\n\ndata: b\n\n",
            "data: a\rdata: b\n\n",
            "data:a\n\n",
            ": comment\n\n",
            "event: \ndata: a\n\n",
            "id: 1\0\n\n",
            "retry: 1s\n\n",
            "retry: \n\n",
            "retry: 1000\n\n",
            "retry: 0100\n\n",
            "retry: +5\n\n",
            "retry: 999999999999999999999999999999999999999999\n\n",
            "retry: 99999999999999999999999\n\n",
            "data: a\nevent: t\n\n",
            "id: 1\nid: 2\n\n",
            "event: a\nevent: b\n\n",
        ] {
            let err = FormattedEvent::parse(bad.to_string()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{bad:?}");
        }
    }

    #[test]
    fn decimals() {
        for n in [0u128, 7, 10, 999, 1000, u64::MAX as u128, u128::MAX] {
            let mut buf = Vec::new();
            push_decimal(&mut buf, n);
            assert_eq!(buf, n.to_string().as_bytes());
        }
    }
}

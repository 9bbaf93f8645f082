//! Whole events: [`write_event`], [`format_event`], [`FormattedEvent`] and comments.

use std::io;
use std::time::Duration;

use super::validate::{check_event_type, check_id, find_line_break, skip_line_break};
use super::{DataWriter, Encode, Head, OneLine, data, sealed};
use crate::chunked;
use crate::http::syntax::{decimal, push_decimal};

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
    if let Some(retry) = meta.retry {
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

/// Appends one event framed as one HTTP/1.1 chunk (RFC 9112 §7.1): its size
/// in hex, CRLF, the event, CRLF. On error `buf` is left as it was.
///
/// This is the path [`SseConnection`](crate::SseConnection) takes, for a
/// server that owns its write path (an event loop, a `writev`, a buffer pool)
/// and only wants the bytes of a chunked `text/event-stream` body. The
/// response head, and the last chunk `0\r\n\r\n` that ends the body, are
/// the caller's. An event of no bytes at all cannot happen (every event ends
/// with a blank line), so no empty chunk, which would end the body, is ever
/// written.
///
/// ```
/// use dstar::datastar::PatchElements;
/// use dstar::{Event, testing, write_framed};
///
/// let mut body = Vec::new();
/// write_framed(&mut body, &PatchElements::new("<p id=\"a\">1</p>"))?;
/// write_framed(&mut body, &Event::new("note").data("two\nlines").id("2"))?;
/// assert!(body.starts_with(b"3f\r\nevent: datastar-patch-elements\n"));
/// body.extend_from_slice(b"0\r\n\r\n");
///
/// let chunked = testing::decode_chunked(&body).unwrap();
/// assert!(chunked.finished);
/// assert_eq!(chunked.chunks.len(), 2); // one chunk per event
/// let stream = testing::parse_event_stream(&chunked.chunks.concat());
/// assert_eq!(stream.events[0].data, "elements <p id=\"a\">1</p>");
/// assert_eq!(stream.events[1].data, "two\nlines");
/// assert_eq!(stream.events[1].last_event_id, "2");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_framed(buf: &mut Vec<u8>, event: &(impl Encode + ?Sized)) -> io::Result<()> {
    write_chunk(buf, event, 2).map(drop)
}

/// [`write_framed`], guessing `width` hex digits for the size of an event
/// whose length is not known in advance; returns the width it took, the
/// next guess (the events of one stream tend to be alike).
#[inline]
pub(crate) fn write_chunk(
    buf: &mut Vec<u8>,
    event: &(impl Encode + ?Sized),
    width: usize,
) -> io::Result<usize> {
    if let Some(one) = event.one_line(sealed::Token(()))? {
        return write_one_line(buf, &one, width);
    }
    let mark = buf.len();
    let chunk = chunked::begin(buf, width);
    if let Err(err) = write_event(buf, event) {
        buf.truncate(mark);
        return Err(err);
    }
    Ok(chunked::end(buf, chunk))
}

/// Writes a [`OneLine`] event as one chunk. The only scans are of user
/// text: the id, and the value for its line breaks.
///
/// A value of one line (the common case) has its length known before a byte
/// is written: the size line, the constant head, the value and the event's
/// end go out with one reservation. An event with an id or retry, or a value
/// of several lines, takes [`write_one_line_in_full`].
#[inline]
fn write_one_line(buf: &mut Vec<u8>, one: &OneLine<'_>, width: usize) -> io::Result<usize> {
    let value = one.value.as_bytes();
    let first_break = find_line_break(value);
    if one.id.is_some() || one.retry.is_some() || first_break.is_some() {
        return write_one_line_in_full(buf, one, width, first_break);
    }
    let len = one.head.text.len() + value.len() + 2;
    // Room for the whole padded head, which is stored before it is cut.
    buf.reserve(chunked::MAX_SIZE_LINE + Head::ROOM + value.len() + 4);
    let width = chunked::push_size_line(buf, len);
    one.head.push(buf);
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\n\n\r\n");
    Ok(width)
}

/// [`write_one_line`] with an id or retry, or a value of several lines, given
/// where the value's first line break is. A value of one line still has its
/// length known up front; one of several lines takes the chunk's size by
/// guess and patch, as the general path does, but still skips the
/// constants' scans.
#[inline(never)]
fn write_one_line_in_full(
    buf: &mut Vec<u8>,
    one: &OneLine<'_>,
    width: usize,
    first_break: Option<usize>,
) -> io::Result<usize> {
    let value = one.value.as_bytes();
    if let Some(id) = one.id {
        check_id(id)?;
    }
    let mut retry = [0u8; 39];
    let retry = one
        .retry
        .map(|delay| decimal(&mut retry, delay.as_millis()));
    let (event_line, data_start) = one.head.text.split_at(one.head.split);
    if first_break.is_some() {
        let chunk = chunked::begin(buf, width);
        write_header(buf, event_line, one.id, retry);
        data::write_lines(buf, b"", data_start, value, first_break);
        buf.push(b'\n');
        return Ok(chunked::end(buf, chunk));
    }
    let mut len = one.head.text.len() + value.len() + 2;
    if let Some(id) = one.id {
        len += "id: \n".len() + id.len();
    }
    if let Some(digits) = retry {
        len += "retry: \n".len() + digits.len();
    }
    buf.reserve(chunked::MAX_SIZE_LINE + len + 2);
    let width = chunked::push_size_line(buf, len);
    write_header(buf, event_line, one.id, retry);
    buf.extend_from_slice(data_start);
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\n\n\r\n");
    Ok(width)
}

/// The `event:` line, then the id and retry lines if there are any.
#[inline]
fn write_header(buf: &mut Vec<u8>, event_line: &[u8], id: Option<&str>, retry: Option<&[u8]>) {
    buf.extend_from_slice(event_line);
    if let Some(id) = id {
        field(buf, b"id: ", id.as_bytes());
    }
    if let Some(digits) = retry {
        field(buf, b"retry: ", digits);
    }
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
    /// NUL, and the retry is plain decimal. Anything else is refused with
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
                let canonical = value
                    .parse::<u128>()
                    .is_ok_and(|ms| ms.to_string() == value && ms <= Duration::MAX.as_millis());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, EventMeta};

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
}

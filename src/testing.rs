//! Decoding what a connection wrote, for your own tests.
//!
//! Point an [`SseConnection`](crate::SseConnection) at a `Vec<u8>`, then
//! decode the bytes the way a client would: the response head, the chunked
//! framing (checked strictly against RFC 9112 §7.1), and the event stream,
//! parsed exactly as the WHATWG HTML ["event stream interpretation"][spec]
//! says a browser parses it. The decoder is written from those texts, not
//! from the encoder, so it catches what the encoder gets wrong.
//!
//! ```
//! use dstar::{testing, Event, SseConnection};
//!
//! let mut sse = SseConnection::start(Vec::new())?;
//! sse.send_event(Event::new("greeting").data("hello\r\nworld").id("1"))?;
//! let bytes = sse.finish()?;
//!
//! let response = testing::decode_response(&bytes).unwrap();
//! assert_eq!(response.status, 200);
//! assert_eq!(response.header("content-type"), Some("text/event-stream"));
//! assert!(response.finished);
//! let event = &response.events()[0];
//! assert_eq!(event.event_type, "greeting");
//! assert_eq!(event.data, "hello\nworld");
//! assert_eq!(event.last_event_id, "1");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [spec]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

use std::fmt;

use crate::syntax;

pub use crate::compression::decode::ContentDecoder;

/// A response decoded from bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The reason phrase (often empty in HTTP/1.1 and ignored by clients).
    pub reason: String,
    /// The header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// Whether the body was chunked.
    pub chunked: bool,
    /// The payload of each chunk, in order (empty when not chunked), as
    /// sent: still compressed if the response has a `Content-Encoding`.
    pub chunks: Vec<Vec<u8>>,
    /// Whether the body was complete: the last chunk was seen (chunked), or
    /// `Content-Length` bytes were present. Always `false` for a
    /// close-delimited body, whose end is the end of the connection.
    pub finished: bool,
    /// The body, with chunked framing removed and decoded from its
    /// `Content-Encoding` (see [`ContentDecoder`]).
    pub body: Vec<u8>,
    /// Bytes after the end of the body (the next response on a keep-alive
    /// connection), or the start of an incomplete chunk.
    pub rest: Vec<u8>,
    /// The body parsed as an event stream.
    pub stream: EventStream,
}

impl Response {
    /// The value of the first header with this name, compared without case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The events a browser would dispatch.
    pub fn events(&self) -> &[MessageEvent] {
        &self.stream.events
    }
}

/// What a browser's `EventSource` makes of an event stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventStream {
    /// The events dispatched, in order.
    pub events: Vec<MessageEvent>,
    /// The text of every comment line, without the `:` and one space after it.
    pub comments: Vec<String>,
    /// The reconnection time in milliseconds, if any valid `retry` set it.
    pub retry: Option<u64>,
    /// The last event ID at the end of the stream.
    pub last_event_id: String,
    /// Whether the stream ended inside an event (fields after the last blank
    /// line, or an unterminated line), which a browser discards.
    pub pending: bool,
}

/// One dispatched event, as a browser's `MessageEvent` sees it, plus what
/// its own block of fields set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageEvent {
    /// The event type; `message` when none was given.
    pub event_type: String,
    /// The data lines joined with `\n`.
    pub data: String,
    /// The last event ID at dispatch (it carries over from earlier events).
    pub last_event_id: String,
    /// The `id` field of this event's own block, if one was accepted.
    pub id: Option<String>,
    /// The `retry` field of this event's own block, if one was accepted.
    pub retry: Option<u64>,
}

/// Why bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Offset of the problem in the input.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for DecodeError {}

fn error(offset: usize, message: impl Into<String>) -> DecodeError {
    DecodeError {
        offset,
        message: message.into(),
    }
}

/// Decodes an HTTP/1.1 response: head, body framing, event stream.
///
/// The head must end its lines with CRLF. A chunked body is decoded with
/// [`decode_chunked`]; a body with `Content-Length` is taken at that length;
/// any other body runs to the end of the input. A body with a
/// `Content-Encoding` is then decoded (see [`ContentDecoder`]); if the
/// chunked body is finished, its compressed stream must be too.
pub fn decode_response(bytes: &[u8]) -> Result<Response, DecodeError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return Err(error(bytes.len(), "incomplete response head"));
        }
        Err(e) => return Err(error(0, format!("invalid response head: {e}"))),
    };
    if let Some(at) = bare_lf(&bytes[..head_len]) {
        return Err(error(at, "line in the response head ends with a bare LF"));
    }
    if parsed.version != Some(1) {
        return Err(error(0, "not an HTTP/1.1 response"));
    }
    let mut response = Response {
        status: parsed.code.unwrap_or_default(),
        reason: parsed.reason.unwrap_or_default().to_string(),
        headers: Vec::new(),
        chunked: false,
        chunks: Vec::new(),
        finished: false,
        body: Vec::new(),
        rest: Vec::new(),
        stream: EventStream::default(),
    };
    for h in parsed.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| error(0, format!("header {} is not UTF-8", h.name)))?;
        response
            .headers
            .push((h.name.to_string(), value.to_string()));
    }
    let body = &bytes[head_len..];
    let transfer_encoding = response.header("transfer-encoding");
    if let Some(te) = transfer_encoding {
        if !te.eq_ignore_ascii_case("chunked") {
            return Err(error(0, format!("unsupported Transfer-Encoding {te:?}")));
        }
        let chunked = decode_chunked(body).map_err(|e| error(head_len + e.offset, e.message))?;
        response.chunked = true;
        response.finished = chunked.finished;
        response.body = chunked.chunks.concat();
        response.chunks = chunked.chunks;
        response.rest = chunked.rest;
    } else if let Some(len) = response.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| error(0, format!("invalid Content-Length {len:?}")))?;
        let taken = len.min(body.len());
        response.finished = taken == len;
        response.body = body[..taken].to_vec();
        response.rest = body[taken..].to_vec();
    } else {
        response.body = body.to_vec();
    }
    let encoding = response.header("content-encoding");
    if encoding.is_some_and(|e| !e.eq_ignore_ascii_case("identity")) {
        let mut decoder =
            ContentDecoder::new(encoding).map_err(|e| error(head_len + e.offset, e.message))?;
        decoder
            .push(&response.body)
            .map_err(|e| error(head_len, e.message))?;
        if response.finished {
            decoder.finish().map_err(|e| error(head_len, e.message))?;
        }
        response.body = decoder.decoded().to_vec();
    }
    response.stream = parse_event_stream(&response.body);
    Ok(response)
}

/// A chunked body, decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chunked {
    /// The payload of each chunk.
    pub chunks: Vec<Vec<u8>>,
    /// Whether the last chunk and the trailer section were seen.
    pub finished: bool,
    /// The trailer fields, as `(name, value)`.
    pub trailers: Vec<(String, String)>,
    /// What follows the body if it is finished, or the incomplete start of a
    /// chunk if it is not.
    pub rest: Vec<u8>,
}

/// Decodes a chunked body (RFC 9112 §7.1), strictly.
///
/// Every line must end with CRLF; chunk sizes are hex digits only, without
/// whitespace or sign; extensions must follow the grammar; chunk data must be
/// followed by CRLF. Input that stops partway through a chunk is not an
/// error (a live stream can be read at any moment): the complete chunks are
/// returned and the rest is left in [`Chunked::rest`].
pub fn decode_chunked(bytes: &[u8]) -> Result<Chunked, DecodeError> {
    let mut out = Chunked::default();
    let mut at = 0;
    loop {
        let chunk_start = at;
        let Some(line_end) = find_crlf(bytes, at)? else {
            out.rest = bytes[chunk_start..].to_vec();
            return Ok(out);
        };
        let size = parse_chunk_size_line(&bytes[at..line_end]).map_err(|m| error(at, m))?;
        at = line_end + 2;
        if size == 0 {
            return match decode_trailers(bytes, at, &mut out.trailers)? {
                Some(end) => {
                    out.finished = true;
                    out.rest = bytes[end..].to_vec();
                    Ok(out)
                }
                None => {
                    out.trailers.clear();
                    out.rest = bytes[chunk_start..].to_vec();
                    Ok(out)
                }
            };
        }
        let data_end = at.saturating_add(size);
        let after_data = bytes.get(data_end..).unwrap_or_default();
        if !b"\r\n".starts_with(&after_data[..after_data.len().min(2)]) {
            return Err(error(data_end, "chunk data is not followed by CRLF"));
        }
        if after_data.len() < 2 {
            out.rest = bytes[chunk_start..].to_vec();
            return Ok(out);
        }
        out.chunks.push(bytes[at..data_end].to_vec());
        at = data_end + 2;
    }
}

/// Finds the CRLF ending the line that starts at `from`; a bare CR or LF
/// inside chunk framing is an error.
fn find_crlf(bytes: &[u8], from: usize) -> Result<Option<usize>, DecodeError> {
    for i in from..bytes.len() {
        match bytes[i] {
            b'\n' => return Err(error(i, "bare LF in chunked framing")),
            b'\r' => {
                return match bytes.get(i + 1) {
                    Some(b'\n') => Ok(Some(i)),
                    Some(_) => Err(error(i, "bare CR in chunked framing")),
                    None => Ok(None),
                };
            }
            _ => {}
        }
    }
    Ok(None)
}

/// `chunk-size [ chunk-ext ]`, where
/// `chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`.
fn parse_chunk_size_line(line: &[u8]) -> Result<usize, String> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(format!("chunk size {:?} is not hexadecimal", lossy(line)));
    }
    let mut size: usize = 0;
    for &d in &line[..digits] {
        let value = (d as char).to_digit(16).unwrap_or(0) as usize;
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(value))
            .ok_or_else(|| format!("chunk size {:?} overflows", lossy(&line[..digits])))?;
    }
    if !syntax::chunk_extensions_are_valid(&line[digits..]) {
        return Err(format!("malformed chunk extension in {:?}", lossy(line)));
    }
    Ok(size)
}

/// Reads trailer fields up to the empty line; returns the offset after it, or
/// `None` if the input ends first.
fn decode_trailers(
    bytes: &[u8],
    mut at: usize,
    trailers: &mut Vec<(String, String)>,
) -> Result<Option<usize>, DecodeError> {
    loop {
        let Some(end) = find_crlf(bytes, at)? else {
            return Ok(None);
        };
        let line = &bytes[at..end];
        if line.is_empty() {
            return Ok(Some(end + 2));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .filter(|&c| c > 0 && line[..c].iter().all(|&b| syntax::is_tchar(b)))
            .ok_or_else(|| error(at, format!("malformed trailer field {:?}", lossy(line))))?;
        let value = lossy(&line[colon + 1..]);
        trailers.push((
            lossy(&line[..colon]),
            value.trim_matches([' ', '\t']).to_string(),
        ));
        at = end + 2;
    }
}

fn bare_lf(head: &[u8]) -> Option<usize> {
    (0..head.len()).find(|&i| head[i] == b'\n' && (i == 0 || head[i - 1] != b'\r'))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Parses an event stream as the WHATWG HTML standard says a browser does.
///
/// - The bytes are decoded as UTF-8 (invalid sequences become U+FFFD) and
///   one leading byte order mark is dropped.
/// - Lines end at CRLF, LF or CR. A final line without an ending is
///   discarded, and so is an event whose blank line never came.
/// - A line starting with `:` is a comment. Otherwise the field name runs up
///   to the first `:` and the value follows it, minus one leading space; a
///   line without `:` is a field name with an empty value.
/// - `event` sets the type; `data` appends its value and a LF; `id` sets the
///   last event ID unless the value contains NUL; `retry` sets the
///   reconnection time if the value is all ASCII digits; other fields are
///   ignored.
/// - A blank line dispatches: the last event ID is updated; if no data was
///   given nothing is dispatched; else one trailing LF is removed from the
///   data and an event of the given type (or `message`) is dispatched.
///
/// ```
/// use dstar::testing::parse_event_stream;
///
/// let stream = parse_event_stream(b"data:a\r\ndata: b\rid: 1\n\n: hi\nevent: x\ndata\n\ndata: cut");
/// assert_eq!(stream.events[0].data, "a\nb");
/// assert_eq!(stream.events[0].last_event_id, "1");
/// assert_eq!(stream.events[1].event_type, "x");
/// assert_eq!(stream.events[1].data, "");
/// assert_eq!(stream.events[1].last_event_id, "1");
/// assert_eq!(stream.comments, ["hi"]);
/// assert!(stream.pending);
/// ```
pub fn parse_event_stream(bytes: &[u8]) -> EventStream {
    let decoded = String::from_utf8_lossy(bytes);
    let mut text: &str = decoded.strip_prefix('\u{feff}').unwrap_or(&decoded);
    let mut stream = EventStream::default();
    let mut data = String::new();
    let mut event_type = String::new();
    let mut last_event_id = String::new();
    let mut block_id = None;
    let mut block_retry = None;
    let mut in_block = false;

    while let Some(end) = text.find(['\r', '\n']) {
        let line = &text[..end];
        text = if text[end..].starts_with("\r\n") {
            &text[end + 2..]
        } else {
            &text[end + 1..]
        };

        if line.is_empty() {
            stream.last_event_id.clone_from(&last_event_id);
            let (id, retry) = (block_id.take(), block_retry.take());
            in_block = false;
            if data.is_empty() {
                event_type.clear();
                continue;
            }
            if data.ends_with('\n') {
                data.pop();
            }
            stream.events.push(MessageEvent {
                event_type: if event_type.is_empty() {
                    "message".to_string()
                } else {
                    std::mem::take(&mut event_type)
                },
                data: std::mem::take(&mut data),
                last_event_id: last_event_id.clone(),
                id,
                retry,
            });
            event_type.clear();
            continue;
        }
        if let Some(comment) = line.strip_prefix(':') {
            stream
                .comments
                .push(comment.strip_prefix(' ').unwrap_or(comment).to_string());
            continue;
        }
        in_block = true;
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match name {
            "event" => value.clone_into(&mut event_type),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => {
                value.clone_into(&mut last_event_id);
                block_id = Some(value.to_string());
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                let ms = value.parse().unwrap_or(u64::MAX);
                stream.retry = Some(ms);
                block_retry = Some(ms);
            }
            _ => {}
        }
    }
    stream.pending = in_block || !text.is_empty();
    stream
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Vec<MessageEvent> {
        parse_event_stream(text.as_bytes()).events
    }

    fn ev(event_type: &str, data: &str, last_event_id: &str) -> MessageEvent {
        MessageEvent {
            event_type: event_type.into(),
            data: data.into(),
            last_event_id: last_event_id.into(),
            ..MessageEvent::default()
        }
    }

    #[test]
    fn examples_from_the_standard() {
        // "data: YHOO\ndata: +2\ndata: 10\n\n" gives one message "YHOO\n+2\n10".
        assert_eq!(
            events("data: YHOO\ndata: +2\ndata: 10\n\n"),
            [ev("message", "YHOO\n+2\n10", "")]
        );
        // The four-block example: comments, ids carrying over, empty data.
        let stream = parse_event_stream(
            b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n",
        );
        assert_eq!(stream.events.len(), 2);
        assert_eq!(
            stream.events[0],
            MessageEvent {
                id: Some("1".into()),
                ..ev("message", "first event", "1")
            }
        );
        assert_eq!(
            stream.events[1],
            MessageEvent {
                id: Some("".into()),
                ..ev("message", "second event", "")
            }
        );
        assert!(stream.pending, "the third event has no blank line");
        // "data\n\ndata\ndata\n\ndata:" gives "" then "\n"; the last is discarded.
        assert_eq!(
            events("data\n\ndata\ndata\n\ndata:"),
            [ev("message", "", ""), ev("message", "\n", "")]
        );
        // Only one space after the colon is removed.
        assert_eq!(
            events("data:test\n\ndata: test\n\n"),
            [ev("message", "test", ""), ev("message", "test", "")]
        );
    }

    #[test]
    fn line_endings_and_bom() {
        let stream = parse_event_stream("\u{feff}data: a\r\rdata: b\r\n\r\ndata: c\n\n".as_bytes());
        let data: Vec<_> = stream.events.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["a", "b", "c"]);
        // Only one BOM is dropped; a second one is part of the field name.
        let stream = parse_event_stream("\u{feff}\u{feff}data: x\n\n".as_bytes());
        assert!(stream.events.is_empty());
    }

    #[test]
    fn ids_with_nul_and_bad_retry_are_ignored() {
        let stream = parse_event_stream(
            b"id: 1\nretry: 5\ndata: a\n\nid: 2\0\nretry: 5s\nretry:\ndata: b\n\n",
        );
        assert_eq!(stream.events[0].last_event_id, "1");
        assert_eq!(stream.events[0].retry, Some(5));
        assert_eq!(stream.events[1].last_event_id, "1");
        assert_eq!(stream.events[1].id, None);
        assert_eq!(stream.events[1].retry, None);
        assert_eq!(stream.retry, Some(5));
    }

    #[test]
    fn event_type_resets_after_dispatch_and_without_data() {
        assert_eq!(
            events("event: a\n\ndata: x\n\nevent: b\ndata: y\n\ndata: z\n\n"),
            [
                ev("message", "x", ""),
                ev("b", "y", ""),
                ev("message", "z", "")
            ]
        );
        // An id-only block updates the last event ID without dispatching.
        let stream = parse_event_stream(b"id: 9\n\n");
        assert!(stream.events.is_empty());
        assert_eq!(stream.last_event_id, "9");
        assert!(!stream.pending);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(
            events("data: \u{fffd}\n\n"),
            parse_event_stream(b"data: \xff\n\n").events
        );
    }

    #[test]
    fn chunked_bodies() {
        let ok = decode_chunked(b"3\r\nabc\r\n1;a=b ; c=\"d\\\"\"\r\nx\r\n0\r\nT: v\r\n\r\nnext")
            .unwrap();
        assert_eq!(ok.chunks, [b"abc".to_vec(), b"x".to_vec()]);
        assert!(ok.finished);
        assert_eq!(ok.trailers, [("T".to_string(), "v".to_string())]);
        assert_eq!(ok.rest, b"next");

        let partial = decode_chunked(b"3\r\nabc\r\n5\r\nab").unwrap();
        assert_eq!(partial.chunks, [b"abc".to_vec()]);
        assert!(!partial.finished);
        assert_eq!(partial.rest, b"5\r\nab");

        for bad in [
            &b"3\nabc\r\n"[..],
            b"3\r\nabcd\r\n",
            b"x\r\n",
            b" 3\r\nabc\r\n",
            b"3 x\r\nabc\r\n",
            b"+3\r\nabc\r\n",
            b"3;\r\nabc\r\n",
            b"3;a=\r\nabc\r\n",
            b"3\r\nabc\n",
            b"11111111111111111\r\n",
            b"0\r\nbad trailer\r\n\r\n",
            b"3\rx",
        ] {
            assert!(
                decode_chunked(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn responses() {
        let r = decode_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ndata: x\n\nabcd")
            .unwrap();
        assert!(r.finished);
        assert_eq!(r.rest, b"abcd");
        assert_eq!(r.events()[0].data, "x");

        let r = decode_response(b"HTTP/1.1 200 OK\r\n\r\ndata: x\n\n").unwrap();
        assert!(!r.finished && !r.chunked);
        assert_eq!(r.events().len(), 1);

        assert!(decode_response(b"HTTP/1.1 200 OK\nA: b\n\n").is_err());
        assert!(decode_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(decode_response(b"HTTP/1.0 200 OK\r\n\r\n").is_err());
        assert!(decode_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").is_err());
    }
}

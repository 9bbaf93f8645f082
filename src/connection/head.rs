//! [`SseResponse`]: the head of an SSE response — status, headers, framing
//! and content coding — written before the first event.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use super::SseConnection;
use crate::compression::{Compression, Compressor, Encoding};
use crate::error::Refused;
use crate::event;
use crate::http::{self, syntax};
use crate::probe::Probe;

/// The response head of an SSE stream: status, headers and framing.
///
/// [`SseConnection::start`] uses the defaults; build one of these to choose
/// the status, add headers, or send a close-delimited body.
///
/// ```
/// use dstar::SseResponse;
///
/// let sse = SseResponse::new()
///     .header("X-Accel-Buffering", "no") // tell nginx not to buffer
///     .header("Set-Cookie", "tab=1; HttpOnly")
///     .start(Vec::new())
///     .unwrap();
/// let head = String::from_utf8(sse.into_inner()).unwrap();
/// assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(head.contains("\r\nX-Accel-Buffering: no\r\n"));
///
/// // A header that would break the head is refused, and nothing is written.
/// let mut out = Vec::new();
/// let refused = SseResponse::new().header("X-Evil", "a\r\nb: c").start(&mut out);
/// assert_eq!(refused.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
/// assert!(out.is_empty());
/// ```
#[derive(Clone, Debug)]
pub struct SseResponse {
    status: u16,
    headers: Vec<(String, String)>,
    chunked: bool,
    date: bool,
    /// Whether the client asked to keep the connection (`true` unless known otherwise).
    keep_alive: bool,
    /// The answered request's mark that its connection ends with its response.
    closing: Option<Arc<AtomicBool>>,
    compression: Compression,
    accept_encoding: Option<String>,
}

impl Default for SseResponse {
    fn default() -> Self {
        SseResponse::new()
    }
}

impl SseResponse {
    /// `200 OK`, `Content-Type: text/event-stream`, `Cache-Control: no-cache`,
    /// chunked.
    ///
    /// There is deliberately no `Connection` header: it is forbidden in
    /// HTTP/2 (RFC 9113 §8.2.2), and a proxy that forwards it breaks browsers.
    pub fn new() -> Self {
        SseResponse {
            status: 200,
            headers: Vec::new(),
            chunked: true,
            date: true,
            keep_alive: true,
            closing: None,
            compression: Compression::off(),
            accept_encoding: None,
        }
    }

    /// Sets what the answered request decided: whether its client asked to
    /// keep the connection, the mark to set if the response ends it, and its
    /// `Accept-Encoding`. The request side calls this from
    /// [`for_request`](SseResponse::for_request), so this module needs no
    /// request type.
    pub(crate) fn answering(
        mut self,
        keep_alive: bool,
        closing: Arc<AtomicBool>,
        accept_encoding: Option<String>,
    ) -> Self {
        self.keep_alive = keep_alive;
        self.closing = Some(closing);
        self.accept_encoding = accept_encoding;
        self
    }

    /// Sets the status code (default 200).
    ///
    /// [`start`](SseResponse::start) refuses codes that cannot carry a body:
    /// 1xx, 204, 205 and 304, and anything outside 100–599.
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a header, after the defaults.
    ///
    /// A `Content-Type`, `Cache-Control` or `Date` replaces the default one.
    /// Checked when the response starts: a name that is not an HTTP token, a
    /// value with CR, LF, NUL or another control character, and the headers
    /// that frame the body or the connection (`Content-Length`,
    /// `Transfer-Encoding`, `Connection`, `Keep-Alive`, `Trailer`, `Upgrade`),
    /// are refused there with [`io::ErrorKind::InvalidInput`] and nothing is
    /// written.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Leaves out the `Date` header, for byte-exact output in tests.
    pub fn without_date(mut self) -> Self {
        self.date = false;
        self
    }

    /// Sends the body without chunked framing, ended by closing the
    /// connection, with `Connection: close`. For HTTP/1.0 clients, which do
    /// not understand chunked coding. On a response made
    /// [for a request](SseResponse::for_request), starting it marks the
    /// connection as ending with this response.
    pub fn close_delimited(mut self) -> Self {
        self.chunked = false;
        self
    }

    /// Compresses the stream with a coding negotiated from the request's
    /// `Accept-Encoding` (see the [`compression`](crate::compression)
    /// module); the default is [`Compression::off`].
    ///
    /// The response then says `Vary: Accept-Encoding` and, if a coding was
    /// chosen, `Content-Encoding`. A client that accepts none of the codings
    /// gets the stream uncompressed, byte for byte as without this call. A
    /// `Content-Encoding` header of your own turns compression off.
    pub fn compression(mut self, settings: Compression) -> Self {
        self.compression = settings;
        self
    }

    /// Sets the `Accept-Encoding` to negotiate with, for a request that was
    /// not read with this crate ([`for_request`](SseResponse::for_request)
    /// sets it from a [`Request`](crate::Request)).
    pub fn accept_encoding(mut self, value: &str) -> Self {
        self.accept_encoding = Some(value.to_string());
        self
    }

    /// Writes the head to `writer`, flushes it, and returns the connection.
    ///
    /// On any error (an invalid status or header, a failed write) the
    /// connection is not returned; for an invalid one nothing was written.
    pub fn start<W: Write>(self, writer: W) -> io::Result<SseConnection<W>> {
        self.start_with_probe(writer, None)
    }

    /// Like [`start`](SseResponse::start), for a socket that can be
    /// [probed](Probe): [`check_connection`](SseConnection::check_connection)
    /// then notices a hung-up peer before writing to it.
    pub fn start_socket<W: Write + Probe>(self, writer: W) -> io::Result<SseConnection<W>> {
        self.start_with_probe(writer, Some(|w: &W| w.peer_hung_up()))
    }

    fn start_with_probe<W: Write>(
        self,
        writer: W,
        probe: Option<fn(&W) -> io::Result<bool>>,
    ) -> io::Result<SseConnection<W>> {
        let mut conn = SseConnection::new(writer, self.chunked, probe);
        let negotiated = self.negotiate();
        if let Some(encoding) = negotiated.flatten() {
            conn.compressor = Some(Box::new(Compressor::new(encoding, &self.compression)?));
        }
        self.write_head(&mut conn.queue, negotiated)?;
        if let Some(closing) = &self.closing
            && self.closes_connection()
        {
            closing.store(true, Ordering::Release);
        }
        conn.flush()?;
        Ok(conn)
    }

    /// Whether the connection ends with this response: its body is
    /// close-delimited, or the client asked to close.
    fn closes_connection(&self) -> bool {
        !self.chunked || !self.keep_alive
    }

    /// `None` when the coding does not depend on the request; otherwise the
    /// coding chosen (`Some(None)`: identity).
    fn negotiate(&self) -> Option<Option<Encoding>> {
        let own = self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-encoding"));
        (self.compression.is_enabled() && !own)
            .then(|| self.compression.negotiate(self.accept_encoding.as_deref()))
    }

    fn write_head(
        &self,
        buf: &mut Vec<u8>,
        negotiated: Option<Option<Encoding>>,
    ) -> io::Result<()> {
        let reason = reason_phrase(self.status)?;
        for (name, value) in &self.headers {
            check_header(name, value)?;
        }
        let user_sets = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        buf.extend_from_slice(b"HTTP/1.1 ");
        syntax::push_decimal(buf, u128::from(self.status));
        buf.push(b' ');
        buf.extend_from_slice(reason.as_bytes());
        buf.extend_from_slice(b"\r\n");
        if !user_sets("content-type") {
            buf.extend_from_slice(b"Content-Type: text/event-stream\r\n");
        }
        if !user_sets("cache-control") {
            buf.extend_from_slice(b"Cache-Control: no-cache\r\n");
        }
        if self.chunked {
            buf.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        if self.closes_connection() {
            buf.extend_from_slice(b"Connection: close\r\n");
        }
        if let Some(encoding) = negotiated {
            if let Some(encoding) = encoding {
                buf.extend_from_slice(b"Content-Encoding: ");
                buf.extend_from_slice(encoding.token().as_bytes());
                buf.extend_from_slice(b"\r\n");
            }
            buf.extend_from_slice(b"Vary: Accept-Encoding\r\n");
        }
        if self.date && !user_sets("date") {
            buf.extend_from_slice(b"Date: ");
            http::push_http_date(buf, SystemTime::now());
            buf.extend_from_slice(b"\r\n");
        }
        for (name, value) in &self.headers {
            buf.extend_from_slice(name.as_bytes());
            buf.extend_from_slice(b": ");
            buf.extend_from_slice(value.as_bytes());
            buf.extend_from_slice(b"\r\n");
        }
        buf.extend_from_slice(b"\r\n");
        Ok(())
    }
}

/// The reason phrase of a status that can start an event stream.
fn reason_phrase(status: u16) -> io::Result<&'static str> {
    // 1xx, 204, 205 and 304 responses have no body (RFC 9110 §6.4.1).
    if !(200..=599).contains(&status) || matches!(status, 204 | 205 | 304) {
        return Err(Refused::error(format!(
            "status {status} cannot start an SSE response: it has no body"
        )));
    }
    // The reason phrase is optional (RFC 9112 §4); clients ignore it.
    Ok(http::reason_phrase(status))
}

fn check_header(name: &str, value: &str) -> io::Result<()> {
    let invalid = |problem: &str| event::invalid_input("header", name, problem);
    if name.is_empty() || !name.bytes().all(syntax::is_tchar) {
        return Err(invalid("has a name that is not an HTTP token"));
    }
    // Each of these would contradict the framing written: the body is chunked or ends with the
    // connection, has no trailer section, and the connection is not switching protocols.
    const FRAMING: [&str; 6] = [
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "trailer",
        "upgrade",
    ];
    if FRAMING
        .iter()
        .any(|framing| name.eq_ignore_ascii_case(framing))
    {
        return Err(invalid(
            "frames the body or the connection, which the SSE connection does itself",
        ));
    }
    // field-value = *( field-vchar / SP / HTAB ), obs-text allowed (RFC 9110 §5.5).
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(invalid(
            "has a value with CR, LF, NUL or another control character",
        ));
    }
    Ok(())
}

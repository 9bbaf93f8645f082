//! [`Request`]: one request's head and body, and the accessors a Datastar server reads them with.

use std::borrow::Cow;
use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::reader::{ConnectionState, Next, send_continue};
use super::target::split_target;
use super::{Limits, RequestError, RequestErrorKind, RequestReader};
use crate::http::Version;
use crate::percent;

/// One HTTP request: its head, its fully read body, and accessors for what a Datastar server
/// needs from them.
///
/// The request owns its bytes — one copy of the head and the body — and every accessor borrows
/// from them, so reading a header or the path allocates nothing.
///
/// ```
/// use dstar::request::Request;
///
/// let request = Request::parse(
///     b"GET /search?q=rust+sse&page=2 HTTP/1.1\r\n\
///       Host: example.com\r\n\
///       Datastar-Request: true\r\n\
///       \r\n",
/// )?;
/// assert_eq!(request.method(), "GET");
/// assert_eq!(request.path(), "/search");
/// assert_eq!(request.query(), Some("q=rust+sse&page=2"));
/// assert_eq!(request.query_param("q").as_deref(), Some("rust sse"));
/// assert_eq!(request.header("host"), Some("example.com"));
/// assert!(request.is_datastar_request());
/// assert!(request.keep_alive());
/// # Ok::<(), dstar::request::RequestError>(())
/// ```
#[derive(Clone)]
pub struct Request {
    pub(super) head: Box<[u8]>,
    pub(super) method: Span,
    pub(super) target: Span,
    pub(super) version: Version,
    pub(super) headers: Vec<HeaderSpan>,
    pub(super) body: Vec<u8>,
    pub(super) keep_alive: bool,
    /// Set once a response that ends with the connection was started for a request read from
    /// this connection; shared with the [`RequestReader`] (and every clone of the request), which
    /// then reads no further request.
    pub(super) closing: Arc<AtomicBool>,
}

/// Where a piece of the head sits in [`Request::head`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) end: usize,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct HeaderSpan {
    pub(super) name: Span,
    pub(super) value: Span,
}

impl Request {
    /// Reads one request from `stream` with the default [`Limits`].
    ///
    /// This suits a connection that carries a single request, such as one about to be turned
    /// into an event stream. Bytes the client sent after the request (a pipelined second one)
    /// may be read and dropped; for a connection that serves several requests use a
    /// [`RequestReader`], which keeps them. The stream must be writable so the reader can answer
    /// `Expect: 100-continue`; `&mut TcpStream` and `&TcpStream` both are.
    ///
    /// A connection that closes, or stays silent past its read timeout, before sending anything
    /// is an [`RequestErrorKind::Incomplete`] or [`RequestErrorKind::Timeout`] error here.
    ///
    /// ```
    /// use std::io::Cursor;
    /// use dstar::request::Request;
    ///
    /// let mut stream = Cursor::new(b"DELETE /todo/3 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec());
    /// let request = Request::read(&mut stream)?;
    /// assert_eq!(request.method(), "DELETE");
    /// assert_eq!(request.path(), "/todo/3");
    /// # Ok::<(), dstar::request::RequestError>(())
    /// ```
    pub fn read<S: Read + Write>(stream: S) -> Result<Request, RequestError> {
        let mut reader = RequestReader::new(stream);
        match reader
            .state
            .read_request(&mut reader.stream, &mut send_continue)?
        {
            Next::Request(request) => Ok(request),
            Next::Closed => Err(RequestError::new(
                RequestErrorKind::Incomplete,
                "connection closed before a request arrived",
            )),
            Next::Idle => Err(RequestError::new(
                RequestErrorKind::Timeout,
                "no request arrived before the read timed out",
            )),
        }
    }

    /// Parses one complete request, body included, from bytes in memory, with the default
    /// [`Limits`]. Bytes after the request are ignored.
    ///
    /// This runs exactly the checks reading from a stream does, which makes it the easy way to
    /// build requests in tests.
    ///
    /// ```
    /// use dstar::request::Request;
    ///
    /// let request = Request::parse(
    ///     b"POST /todo HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\n{\"title\":\"a\"}",
    /// )?;
    /// assert_eq!(request.body(), br#"{"title":"a"}"#);
    /// # Ok::<(), dstar::request::RequestError>(())
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Request, RequestError> {
        let mut input = bytes;
        let mut state = ConnectionState::new(Limits::default());
        // Everything is already here, so there is no one to send `100 Continue` to.
        match state.read_request(&mut input, &mut |_| Ok(()))? {
            Next::Request(request) => Ok(request),
            Next::Closed | Next::Idle => Err(RequestError::new(
                RequestErrorKind::Incomplete,
                "the input holds no request",
            )),
        }
    }

    /// The request method, such as `GET` or `POST`. Methods are case-sensitive.
    pub fn method(&self) -> &str {
        self.text(self.method)
    }

    /// The request target exactly as sent: usually the path and query, like `/a/b?c=d`.
    pub fn target(&self) -> &str {
        self.text(self.target)
    }

    /// The path of the request target, without the query and still percent-encoded.
    ///
    /// For a target in absolute form (`http://example.com/a?b`), the scheme and authority are
    /// dropped too, so routing sees `/a` either way.
    ///
    /// ```
    /// use dstar::request::Request;
    ///
    /// let request = Request::parse(b"GET http://example.com/a%20b?c HTTP/1.1\r\nHost: example.com\r\n\r\n")?;
    /// assert_eq!(request.path(), "/a%20b");
    /// # Ok::<(), dstar::request::RequestError>(())
    /// ```
    pub fn path(&self) -> &str {
        split_target(self.target()).0
    }

    /// The query string after the first `?`, still encoded, or `None` when there is no `?`.
    pub fn query(&self) -> Option<&str> {
        split_target(self.target()).1
    }

    /// The decoded value of the first query parameter called `name`, or `None` if there is none.
    ///
    /// Names and values are decoded as `application/x-www-form-urlencoded`, the way browsers
    /// encode forms and `URLSearchParams`: `+` is a space and `%XX` a byte. As in browsers, a
    /// malformed `%` escape is kept literally and bytes that are not UTF-8 become U+FFFD; a
    /// parameter without `=` has an empty value.
    ///
    /// ```
    /// use dstar::request::Request;
    ///
    /// let request = Request::parse(b"GET /?name=J%C3%BCrgen+M&flag&x=100% HTTP/1.1\r\nHost: x\r\n\r\n")?;
    /// assert_eq!(request.query_param("name").as_deref(), Some("Jürgen M"));
    /// assert_eq!(request.query_param("flag").as_deref(), Some(""));
    /// assert_eq!(request.query_param("x").as_deref(), Some("100%"));
    /// assert_eq!(request.query_param("missing"), None);
    /// # Ok::<(), dstar::request::RequestError>(())
    /// ```
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.raw_query_param(name).map(percent::decode_lossy)
    }

    /// Every query parameter in order, decoded as in [`query_param`](Request::query_param).
    ///
    /// ```
    /// use dstar::request::Request;
    ///
    /// let request = Request::parse(b"GET /?a=1&b=two+words&a=3 HTTP/1.1\r\nHost: x\r\n\r\n")?;
    /// let params: Vec<(String, String)> = request
    ///     .query_params()
    ///     .map(|(name, value)| (name.into_owned(), value.into_owned()))
    ///     .collect();
    /// assert_eq!(params, [("a".into(), "1".into()), ("b".into(), "two words".into()), ("a".into(), "3".into())]);
    /// # Ok::<(), dstar::request::RequestError>(())
    /// ```
    pub fn query_params(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> + '_ {
        self.raw_query_params()
            .map(|(name, value)| (percent::decode_lossy(name), percent::decode_lossy(value)))
    }

    /// The HTTP version of the request.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The value of the first header field called `name` (compared case-insensitively), or
    /// `None` if there is none or its value is not UTF-8.
    ///
    /// Surrounding whitespace is already trimmed. Use [`header_bytes`](Request::header_bytes)
    /// for values that may hold other bytes, and [`headers`](Request::headers) to see fields
    /// that occur more than once.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_bytes(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    /// The raw value of the first header field called `name` (compared case-insensitively).
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.header_values(name).next()
    }

    /// Every header field as `(name, value)`, in the order the client sent them.
    ///
    /// ```
    /// use dstar::request::Request;
    ///
    /// let request = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")?;
    /// let names: Vec<&str> = request.headers().map(|(name, _)| name).collect();
    /// assert_eq!(names, ["Host", "Accept"]);
    /// # Ok::<(), dstar::request::RequestError>(())
    /// ```
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&str, &[u8])> + '_ {
        self.headers.iter().map(|header| {
            (
                self.text(header.name),
                &self.head[header.value.start..header.value.end],
            )
        })
    }

    /// The body, decoded from its chunked framing if it had one; empty when there was none.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the body out of the request.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// Whether the request came from the Datastar client, which marks its requests with
    /// `Datastar-Request: true`.
    pub fn is_datastar_request(&self) -> bool {
        self.header_bytes("datastar-request")
            .is_some_and(|value| value.eq_ignore_ascii_case(b"true"))
    }

    /// The `Last-Event-ID` header a reconnecting event-stream client sends: the id of the last
    /// event it received, so the stream can resume after it.
    pub fn last_event_id(&self) -> Option<&str> {
        self.header("last-event-id")
    }

    /// Whether the connection may carry another request after the response to this one.
    ///
    /// HTTP/1.1 connections persist unless the client sent `Connection: close`; HTTP/1.0 ones
    /// close unless it sent `Connection: keep-alive`. And once a response that ends by closing
    /// the connection has been started for this request — an event stream to an HTTP/1.0 client,
    /// which is [close-delimited](crate::SseResponse::for_request), or anything after
    /// [`close_after_response`](Request::close_after_response) — it is `false` whatever the client
    /// asked. Pass the request to the [`response`](crate::response) helpers, which tell the client
    /// the decision; the [`RequestReader`] that read the request follows it by itself.
    ///
    /// ```
    /// use dstar::{Request, SseResponse};
    ///
    /// let old = Request::parse(b"GET /feed HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")?;
    /// assert!(old.keep_alive()); // as asked: a page could be sent with a Content-Length
    /// let sse = SseResponse::for_request(&old).start(Vec::new())?;
    /// assert!(!old.keep_alive()); // but this stream ends only when the connection closes
    /// # drop(sse);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keep_alive(&self) -> bool {
        self.keep_alive && !self.closing.load(Ordering::Acquire)
    }

    /// Says that the connection ends with the response to this request: call it when you answer
    /// with a body that the closing of the connection delimits.
    ///
    /// From then on [`keep_alive`](Request::keep_alive) is `false`, for this request and its
    /// clones, and the [`RequestReader`] that read it returns `Ok(None)` instead of reading
    /// another request, so the server drops the connection and the client sees its response
    /// end. [`SseResponse::for_request`](crate::SseResponse::for_request) does this by itself
    /// for the streams it cannot chunk.
    ///
    /// ```
    /// use dstar::request::RequestReader;
    /// use std::io::Cursor;
    ///
    /// let two = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
    /// let mut reader = RequestReader::new(Cursor::new(two.to_vec()));
    /// let first = reader.next_request()?.unwrap();
    /// first.close_after_response();
    /// assert!(!first.keep_alive());
    /// assert!(reader.next_request()?.is_none()); // /b is never read
    /// # Ok::<(), dstar::request::RequestError>(())
    /// ```
    pub fn close_after_response(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// The mark [`close_after_response`](Request::close_after_response) sets, for a response to
    /// set when it starts.
    pub(crate) fn closing_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.closing)
    }

    /// The `Accept-Encoding` of the request: every field of that name joined with `, `
    /// (RFC 9110 §5.3), or `None` if there is none.
    pub(crate) fn accept_encoding(&self) -> Option<String> {
        let mut joined: Option<String> = None;
        for value in self.header_values("accept-encoding") {
            let value = String::from_utf8_lossy(value);
            match &mut joined {
                None => joined = Some(value.into_owned()),
                Some(joined) => {
                    joined.push_str(", ");
                    joined.push_str(&value);
                }
            }
        }
        joined
    }

    fn text(&self, span: Span) -> &str {
        // Spans of the method, target and names only cover bytes httparse checked to be
        // ASCII or UTF-8, so this never falls back.
        std::str::from_utf8(&self.head[span.start..span.end]).unwrap_or_default()
    }

    pub(super) fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a [u8]> {
        self.headers
            .iter()
            .filter(move |header| self.text(header.name).eq_ignore_ascii_case(name))
            .map(move |header| &self.head[header.value.start..header.value.end])
    }

    fn raw_query_params(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.query()
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
    }

    pub(super) fn raw_query_param(&self, name: &str) -> Option<&str> {
        self.raw_query_params()
            .find(|(raw_name, _)| percent::decode_lossy(raw_name) == name)
            .map(|(_, value)| value)
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, Cow<'_, str>)> = self
            .headers()
            .map(|(name, value)| (name, String::from_utf8_lossy(value)))
            .collect();
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("version", &self.version)
            .field("headers", &headers)
            .field("body", &format_args!("{} bytes", self.body.len()))
            .field("keep_alive", &self.keep_alive())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_fields_are_joined() {
        let request = Request::parse(
            b"GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br;q=0\r\naccept-encoding: gzip\r\n\r\n",
        )
        .unwrap();
        assert_eq!(request.accept_encoding().as_deref(), Some("br;q=0, gzip"));
        let none = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(none.accept_encoding(), None);
    }
}

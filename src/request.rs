//! Reading HTTP/1.1 requests from a blocking stream: the head, the body, and Datastar's signals.
//!
//! Before a server can answer with Server-Sent Events it has to read the request: the method and
//! path to route on, the `Datastar-Request` header, `Last-Event-ID` on a reconnect, and the
//! signals the browser sent along. [`RequestReader`] does that for one connection, request after
//! request (keep-alive and pipelining included); [`Request::read`] reads a single request off a
//! stream; [`Request::parse`] reads one from bytes already in memory, which is handy in tests.
//!
//! `httparse` parses the head. Everything around it is here, and it is where blocking servers
//! usually get hurt, so every input is bounded by [`Limits`]:
//!
//! - the head (request line and headers) may not exceed [`Limits::max_head`] bytes (431),
//!   nor carry more than [`Limits::max_headers`] fields (431);
//! - the body may not exceed [`Limits::max_body`] bytes, whatever its framing (413);
//! - the whole request must arrive within [`Limits::request_timeout`] (408).
//!
//! Memory follows the limits: the reader never buffers more than `max_head` bytes, and a body
//! buffer never grows past `max_body`, no matter what a `Content-Length` claims.
//!
//! # Framing and request smuggling
//!
//! A body is framed by `Content-Length` or by `Transfer-Encoding: chunked` (RFC 9112 §6), and
//! every ambiguity a proxy and a server could resolve differently is refused rather than guessed:
//! both headers together, `Content-Length` repeated or not a plain decimal number,
//! `Transfer-Encoding` in an HTTP/1.0 request, `chunked` applied twice or not last (all 400),
//! and codings other than `chunked` (501). Chunked framing is read strictly: every line ends in
//! CRLF, chunk sizes are bare hexadecimal that must fit in 64 bits, and extensions must follow the
//! grammar. Extensions and trailer fields are read and discarded; together they count against
//! `max_head`. In the head itself a bare LF is accepted as a line ending, as RFC 9112 §2.2
//! allows, while obsolete line folding is refused (400). An HTTP/1.1 request must carry exactly
//! one valid `Host` header (400).
//!
//! After any error the connection's framing can no longer be trusted: answer with
//! [`write_error`](crate::response::write_error) (it says `Connection: close`) and close it.
//!
//! # Timeouts
//!
//! A blocking server spends a thread per connection, so a client must never be able to hold one
//! forever. Two settings work together:
//!
//! - the stream's own read timeout ([`TcpStream::set_read_timeout`]) bounds how long one read
//!   waits for a silent client. When it fires between requests, [`RequestReader::next_request`]
//!   reports the idle connection as finished (`Ok(None)`); in the middle of a request, it is an
//!   [`ErrorKind::Timeout`] error (408);
//! - [`Limits::request_timeout`] bounds the whole request, counted from its first byte. It is
//!   checked before every read, so a client that drips one byte at a time — each byte resetting
//!   the socket's per-read timeout — is still cut off.
//!
//! A client is therefore cut off at most `request_timeout` plus one read timeout after its
//! request began. The deadline is checked between reads rather than by changing the socket's
//! timeout, so it works over any [`Read`] (TLS, Unix sockets, in-memory) and never touches the
//! settings the caller chose. Set a write timeout too ([`TcpStream::set_write_timeout`]): a
//! client that stops reading would otherwise block the response forever.
//!
//! [`TcpStream::set_read_timeout`]: std::net::TcpStream::set_read_timeout
//! [`TcpStream::set_write_timeout`]: std::net::TcpStream::set_write_timeout
//!
//! # Example
//!
//! A server loop for one connection, serving requests until the client is done:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use std::time::Duration;
//! use dstar::request::RequestReader;
//! use dstar::response;
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let address = listener.local_addr()?;
//! let client = std::thread::spawn(move || -> std::io::Result<String> {
//!     let mut stream = TcpStream::connect(address)?;
//!     stream.set_read_timeout(Some(Duration::from_secs(5)))?;
//!     stream.write_all(b"GET /hello HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")?;
//!     let mut reply = String::new();
//!     stream.read_to_string(&mut reply)?;
//!     Ok(reply)
//! });
//!
//! let (stream, _) = listener.accept()?;
//! stream.set_read_timeout(Some(Duration::from_secs(5)))?;
//! stream.set_write_timeout(Some(Duration::from_secs(5)))?;
//! let mut connection = RequestReader::new(stream);
//! loop {
//!     let request = match connection.next_request() {
//!         Ok(Some(request)) => request,
//!         Ok(None) => break, // closed by the client, or idle past the read timeout
//!         Err(err) => {
//!             // The reply may not get through; the connection is closing either way.
//!             let _ = response::write_error(connection.get_mut(), &err);
//!             break;
//!         }
//!     };
//!     // Passing the request answers it as it asked: kept alive or not, and
//!     // without a body if it was HEAD.
//!     match request.path() {
//!         "/hello" => response::write_text(connection.get_mut(), 200, "Hello!", &request)?,
//!         _ => response::write_not_found(connection.get_mut(), &request)?,
//!     }
//! }
//! drop(connection); // closes the socket
//!
//! let reply = client.join().expect("client thread")?;
//! assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(reply.ends_with("\r\n\r\nHello!"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::{json, percent, syntax};

/// How much of the read buffer to allocate at first; it grows by doubling up to `max_head`.
const INITIAL_BUFFER: usize = 8 * 1024;
/// The smallest step a body buffer grows by, so small bodies take one allocation.
const BODY_STEP: usize = 16 * 1024;
/// Hex digits a chunk size may have once leading zeros are set aside: 16 fill 64 bits.
const MAX_CHUNK_SIZE_DIGITS: usize = 16;
/// The interim response that tells a client waiting on `Expect: 100-continue` to send its body.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Bounds on what a client may send, and how slowly.
///
/// The defaults suit a Datastar server: requests are small, and signals are bounded to the same
/// 1 MiB the body is. Adjust them with the builder methods, which share the fields' names:
///
/// ```
/// use std::time::Duration;
/// use dstar::request::Limits;
///
/// let limits = Limits::default()
///     .max_body(64 * 1024)
///     .request_timeout(Some(Duration::from_secs(10)));
/// assert_eq!(limits.max_body, 64 * 1024);
/// assert_eq!(limits.max_head, 64 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The most bytes the request head (request line and header fields) may take, and the most
    /// the reader ever buffers. A chunked body's extensions and trailer fields count against the
    /// same budget, in total. Over it: 431 Request Header Fields Too Large. Default: 64 KiB.
    pub max_head: usize,
    /// The most header fields a request may carry. Over it: 431. Default: 100.
    pub max_headers: usize,
    /// The most bytes a body may decode to, whether framed by `Content-Length` or chunked.
    /// Over it: 413 Content Too Large, refused before the body is read when the length is
    /// declared up front. Default: 1 MiB.
    pub max_body: usize,
    /// How long one request may take to arrive in full, head and body, counted from its first
    /// byte; `None` for no limit. Checked before every read, so it catches clients that drip
    /// bytes slowly; see the [module documentation](self#timeouts) for how it works with the
    /// socket's read timeout. Over it: 408 Request Timeout. Default: 30 seconds.
    pub request_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 64 * 1024,
            max_headers: 100,
            max_body: 1024 * 1024,
            request_timeout: Some(Duration::from_secs(30)),
        }
    }
}

impl Limits {
    /// Sets [`max_head`](Limits#structfield.max_head), the size limit of the request head.
    #[must_use]
    pub fn max_head(mut self, bytes: usize) -> Self {
        self.max_head = bytes;
        self
    }

    /// Sets [`max_headers`](Limits#structfield.max_headers), the limit on header fields.
    #[must_use]
    pub fn max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }

    /// Sets [`max_body`](Limits#structfield.max_body), the size limit of the decoded body.
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Sets [`request_timeout`](Limits#structfield.request_timeout), the deadline for a whole
    /// request.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }
}

/// The HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Version {
    /// HTTP/1.0: connections close after each response unless the client asks otherwise.
    Http10,
    /// HTTP/1.1: connections stay open unless either side says `Connection: close`.
    Http11,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        })
    }
}

/// What went wrong with a request; each kind maps to the status code to answer with.
///
/// ```
/// use dstar::request::{ErrorKind, Request};
///
/// let err = Request::parse(b"GET / HTTP/1.1\r\n\r\n").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::BadHost);
/// assert_eq!(err.status(), 400);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request line or a header field is malformed, including obsolete line folding (400).
    MalformedHead,
    /// An HTTP/1.1 request has no `Host` header, or a request has several or an invalid one
    /// (400).
    BadHost,
    /// `Content-Length` is repeated or not a decimal number (400).
    BadContentLength,
    /// `Transfer-Encoding` cannot frame the body safely: it comes with `Content-Length`, in an
    /// HTTP/1.0 request, or without `chunked` as its single, final coding (400).
    BadTransferEncoding,
    /// The chunked framing of the body is malformed (400).
    BadChunk,
    /// The connection closed in the middle of a request (400).
    Incomplete,
    /// Reading the request, or sending the `100 Continue` interim response, failed (400). The
    /// client has most likely gone; answering is harmless but will usually fail too.
    Io,
    /// The signals are not well-formed JSON, not UTF-8, or not validly percent-encoded; or,
    /// with the `serde` feature, they do not fit the requested type (400).
    BadSignals,
    /// The request did not arrive in time (408).
    Timeout,
    /// The body is larger than [`Limits::max_body`], or its chunk extensions larger than
    /// [`Limits::max_head`] allows (413).
    BodyTooLarge,
    /// `Expect` asks for something other than `100-continue` (417).
    ExpectationFailed,
    /// The request head, or a chunked body's trailer section, is larger than
    /// [`Limits::max_head`] (431).
    HeadTooLarge,
    /// The request has more header fields than [`Limits::max_headers`] (431).
    TooManyHeaders,
    /// `Transfer-Encoding` names a coding other than `chunked` (501).
    UnsupportedTransferEncoding,
    /// The request is for an HTTP version other than 1.0 and 1.1 (505).
    UnsupportedVersion,
}

impl ErrorKind {
    /// The HTTP status code to answer a request that failed this way.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::MalformedHead
            | ErrorKind::BadHost
            | ErrorKind::BadContentLength
            | ErrorKind::BadTransferEncoding
            | ErrorKind::BadChunk
            | ErrorKind::Incomplete
            | ErrorKind::Io
            | ErrorKind::BadSignals => 400,
            ErrorKind::Timeout => 408,
            ErrorKind::BodyTooLarge => 413,
            ErrorKind::ExpectationFailed => 417,
            ErrorKind::HeadTooLarge | ErrorKind::TooManyHeaders => 431,
            ErrorKind::UnsupportedTransferEncoding => 501,
            ErrorKind::UnsupportedVersion => 505,
        }
    }
}

/// A request that could not be read, or whose signals could not be used.
///
/// Its [`Display`](fmt::Display) says what was wrong in words a client developer can act on,
/// [`status`](RequestError::status) gives the status code to answer with, and
/// [`write_error`](crate::response::write_error) sends that answer.
///
/// ```
/// use dstar::request::{ErrorKind, Request};
///
/// let err = Request::parse(
///     b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
/// )
/// .unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::BadContentLength);
/// assert_eq!(err.status(), 400);
/// assert_eq!(err.to_string(), "request has 2 Content-Length headers");
/// ```
#[derive(Debug)]
pub struct RequestError {
    kind: ErrorKind,
    message: String,
    source: Option<io::Error>,
}

impl RequestError {
    /// An error of this kind with a message for the client, for requests
    /// your own code refuses: signals of the wrong shape, say. Answer it with
    /// [`write_error`](crate::response::write_error) like the reader's own.
    ///
    /// ```
    /// use dstar::request::{ErrorKind, RequestError};
    ///
    /// let err = RequestError::new(ErrorKind::BadSignals, "count must be a number");
    /// assert_eq!(err.status(), 400);
    /// assert_eq!(err.to_string(), "count must be a number");
    /// ```
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RequestError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Classifies a failed read or write: a timed-out socket is a 408, anything else an I/O error.
    fn from_io(err: io::Error, doing: &str) -> Self {
        let kind = if is_timeout(&err) {
            ErrorKind::Timeout
        } else {
            ErrorKind::Io
        };
        let message = if kind == ErrorKind::Timeout {
            format!("timed out {doing}")
        } else {
            format!("failed {doing}: {err}")
        };
        RequestError {
            kind,
            message,
            source: Some(err),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status code to answer with: 400, 408, 413, 417, 431, 501 or 505.
    pub fn status(&self) -> u16 {
        self.kind.status()
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|err| err as &(dyn std::error::Error + 'static))
    }
}

/// Lets `?` turn a request error into an [`io::Error`] in functions that return
/// [`io::Result`], keeping the original I/O error when there is one.
impl From<RequestError> for io::Error {
    fn from(err: RequestError) -> Self {
        let kind = match err.kind {
            ErrorKind::Io => match err.source {
                Some(source) => return source,
                None => io::ErrorKind::Other,
            },
            ErrorKind::Timeout => io::ErrorKind::TimedOut,
            ErrorKind::Incomplete => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, err)
    }
}

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
    head: Box<[u8]>,
    method: Span,
    target: Span,
    version: Version,
    headers: Vec<HeaderSpan>,
    body: Vec<u8>,
    keep_alive: bool,
    /// Set once a response that ends with the connection was started for a request read from
    /// this connection; shared with the [`RequestReader`] (and every clone of the request), which
    /// then reads no further request.
    closing: Arc<AtomicBool>,
}

/// Where a piece of the head sits in [`Request::head`].
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
}

#[derive(Debug, Clone, Copy)]
struct HeaderSpan {
    name: Span,
    value: Span,
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
    /// is an [`ErrorKind::Incomplete`] or [`ErrorKind::Timeout`] error here.
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
                ErrorKind::Incomplete,
                "connection closed before a request arrived",
            )),
            Next::Idle => Err(RequestError::new(
                ErrorKind::Timeout,
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
                ErrorKind::Incomplete,
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

    /// The Datastar signals the request carries, as JSON text checked to be well-formed.
    ///
    /// Datastar sends them, for `GET` and `DELETE`, URL-encoded in the `datastar` query
    /// parameter, and for every other method as the body. A missing parameter or an empty body
    /// means the request has no signals: `Ok(None)`. Text that is not well-formed JSON
    /// (RFC 8259, at most 127 levels deep), not UTF-8 or not validly percent-encoded is an
    /// [`ErrorKind::BadSignals`] error, answered with 400.
    ///
    /// ```
    /// use dstar::request::Request;
    ///
    /// let get = Request::parse(b"GET /?datastar=%7B%22count%22%3A1%7D HTTP/1.1\r\nHost: x\r\n\r\n")?;
    /// assert_eq!(get.signals()?.as_deref(), Some(r#"{"count":1}"#));
    ///
    /// let post = Request::parse(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n{\"count\":2}")?;
    /// assert_eq!(post.signals()?.as_deref(), Some(r#"{"count":2}"#));
    ///
    /// let none = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
    /// assert_eq!(none.signals()?, None);
    ///
    /// let broken = Request::parse(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"count\":}")?;
    /// let err = broken.signals().unwrap_err();
    /// assert_eq!(err.status(), 400);
    /// assert_eq!(err.to_string(), "signals are not valid JSON: invalid JSON at byte 9: expected a JSON value");
    /// # Ok::<(), dstar::request::RequestError>(())
    /// ```
    pub fn signals(&self) -> Result<Option<Cow<'_, str>>, RequestError> {
        let text = if self.signals_in_query() {
            let Some(raw) = self.raw_query_param("datastar") else {
                return Ok(None);
            };
            percent::decode_strict(raw).map_err(|err| {
                RequestError::new(
                    ErrorKind::BadSignals,
                    format!("the datastar query parameter is malformed: {err}"),
                )
            })?
        } else {
            let text = std::str::from_utf8(&self.body).map_err(|err| {
                RequestError::new(
                    ErrorKind::BadSignals,
                    format!(
                        "signals are not UTF-8: invalid byte at offset {}",
                        err.valid_up_to()
                    ),
                )
            })?;
            Cow::Borrowed(text)
        };
        if text.is_empty() {
            return Ok(None);
        }
        json::validate(&text).map_err(|err| {
            RequestError::new(
                ErrorKind::BadSignals,
                format!("signals are not valid JSON: {err}"),
            )
        })?;
        Ok(Some(text))
    }

    /// The signals deserialized into `T`; `Ok(None)` when the request has none.
    ///
    /// The text is found and checked as by [`signals`](Request::signals); a value that does not
    /// fit `T` is an [`ErrorKind::BadSignals`] error carrying serde_json's explanation.
    ///
    /// ```
    /// use dstar::request::Request;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Signals {
    ///     count: u32,
    /// }
    ///
    /// let request = Request::parse(b"GET /?datastar=%7B%22count%22%3A5%7D HTTP/1.1\r\nHost: x\r\n\r\n")?;
    /// let signals: Signals = request.signals_as()?.unwrap_or(Signals { count: 0 });
    /// assert_eq!(signals.count, 5);
    /// # Ok::<(), dstar::request::RequestError>(())
    /// ```
    #[cfg(feature = "serde")]
    pub fn signals_as<T: serde::de::DeserializeOwned>(&self) -> Result<Option<T>, RequestError> {
        let Some(text) = self.signals()? else {
            return Ok(None);
        };
        serde_json::from_str(&text).map(Some).map_err(|err| {
            RequestError::new(
                ErrorKind::BadSignals,
                format!("signals do not have the expected shape: {err}"),
            )
        })
    }

    fn signals_in_query(&self) -> bool {
        matches!(self.method(), "GET" | "DELETE")
    }

    fn text(&self, span: Span) -> &str {
        // Spans of the method, target and names only cover bytes httparse checked to be
        // ASCII or UTF-8, so this never falls back.
        std::str::from_utf8(&self.head[span.start..span.end]).unwrap_or_default()
    }

    fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a [u8]> {
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

    fn raw_query_param(&self, name: &str) -> Option<&str> {
        self.raw_query_params()
            .find(|(raw_name, _)| percent::decode_lossy(raw_name) == name)
            .map(|(_, value)| value)
    }

    /// Checks the `Host` rules of RFC 9112 §3.2.
    fn check_host(&self) -> Result<(), RequestError> {
        let mut hosts = self.header_values("host");
        match (hosts.next(), hosts.count()) {
            (None, _) if self.version == Version::Http10 => Ok(()),
            (None, _) => Err(RequestError::new(
                ErrorKind::BadHost,
                "HTTP/1.1 request has no Host header",
            )),
            (Some(host), 0) if host.iter().all(|&b| is_host_byte(b)) => Ok(()),
            (Some(host), 0) => Err(RequestError::new(
                ErrorKind::BadHost,
                format!("Host header \"{}\" is not a valid host", snippet(host)),
            )),
            (Some(_), more) => Err(RequestError::new(
                ErrorKind::BadHost,
                format!("request has {} Host headers", more + 1),
            )),
        }
    }

    /// Works out how the body is framed (RFC 9112 §6.3), refusing anything ambiguous.
    fn framing(&self, limits: &Limits) -> Result<Framing, RequestError> {
        let has_transfer_encoding = self.header_values("transfer-encoding").next().is_some();
        let lengths = self.header_values("content-length").count();
        if has_transfer_encoding {
            if self.version == Version::Http10 {
                return Err(RequestError::new(
                    ErrorKind::BadTransferEncoding,
                    "HTTP/1.0 request has a Transfer-Encoding header",
                ));
            }
            if lengths > 0 {
                return Err(RequestError::new(
                    ErrorKind::BadTransferEncoding,
                    "request has both Transfer-Encoding and Content-Length",
                ));
            }
            check_transfer_codings(self.header_values("transfer-encoding"))?;
            return Ok(Framing::Chunked);
        }
        match lengths {
            0 => Ok(Framing::Length(0)),
            1 => {
                let value = self
                    .header_values("content-length")
                    .next()
                    .unwrap_or_default();
                parse_content_length(value, limits.max_body).map(Framing::Length)
            }
            n => Err(RequestError::new(
                ErrorKind::BadContentLength,
                format!("request has {n} Content-Length headers"),
            )),
        }
    }

    /// Whether the client waits for `100 Continue` before sending the body.
    fn expects_continue(&self) -> Result<bool, RequestError> {
        // RFC 9110 §10.1.1: a 100-continue expectation in an HTTP/1.0 request is ignored.
        if self.version == Version::Http10 {
            return Ok(false);
        }
        let mut expectations = self.header_values("expect");
        match (expectations.next(), expectations.next()) {
            (None, _) => Ok(false),
            (Some(value), None) if value.eq_ignore_ascii_case(b"100-continue") => Ok(true),
            (Some(value), _) => Err(RequestError::new(
                ErrorKind::ExpectationFailed,
                format!(
                    "expectation \"{}\" is not supported, only 100-continue",
                    snippet(value)
                ),
            )),
        }
    }

    fn wants_keep_alive(&self) -> bool {
        let (mut close, mut keep_alive) = (false, false);
        for value in self.header_values("connection") {
            for option in value.split(|&b| b == b',') {
                let option = option.trim_ascii();
                close |= option.eq_ignore_ascii_case(b"close");
                keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        match self.version {
            Version::Http11 => !close,
            Version::Http10 => keep_alive && !close,
        }
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

/// Reads requests one after another from one connection.
///
/// The reader owns the stream and a buffer that carries bytes over from one request to the next,
/// so pipelined requests are not lost. Write each response to [`get_mut`](RequestReader::get_mut)
/// before asking for the next request, and stop when [`next_request`](RequestReader::next_request)
/// returns `Ok(None)` or an error. The [module documentation](self) shows a complete server loop.
///
/// ```
/// use std::io::Cursor;
/// use dstar::request::RequestReader;
///
/// let pipelined = b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n\
///                   POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
/// let mut reader = RequestReader::new(Cursor::new(pipelined.to_vec()));
///
/// let first = reader.next_request()?.expect("a first request");
/// assert_eq!(first.path(), "/one");
/// let second = reader.next_request()?.expect("a second request");
/// assert_eq!(second.path(), "/two");
/// assert_eq!(second.body(), b"{}");
/// assert!(reader.next_request()?.is_none()); // the client closed the connection
/// # Ok::<(), dstar::request::RequestError>(())
/// ```
pub struct RequestReader<S> {
    stream: S,
    state: ConnectionState,
}

impl<S> RequestReader<S> {
    /// Wraps a stream, reading with the default [`Limits`].
    pub fn new(stream: S) -> Self {
        Self::with_limits(stream, Limits::default())
    }

    /// Wraps a stream, reading with the given limits.
    pub fn with_limits(stream: S, limits: Limits) -> Self {
        RequestReader {
            stream,
            state: ConnectionState::new(limits),
        }
    }

    /// The limits requests are read with.
    pub fn limits(&self) -> &Limits {
        &self.state.limits
    }

    /// Bytes already read from the stream but not yet part of a returned request: the start of
    /// the next pipelined request, if the client sent one early.
    pub fn buffered(&self) -> &[u8] {
        self.state.buffer.data()
    }

    /// The stream, for example to inspect its address.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, to write a response to. Reading from it directly would take bytes away from
    /// the next request.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Gives the stream back, for example to turn the connection into an event stream.
    /// [Buffered](RequestReader::buffered) bytes are dropped.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<S: Read + Write> RequestReader<S> {
    /// Reads the next request, head and body.
    ///
    /// Returns `Ok(None)` when the connection is finished: the client closed it (or stayed
    /// silent past the stream's read timeout) between requests, the previous request did not
    /// keep the connection alive (see [`Request::keep_alive`]: the client asked to close, or
    /// the response started for it ends with the connection, as an event stream to an HTTP/1.0
    /// client does), or an earlier call failed. So a server loop that stops at `Ok(None)` never
    /// waits on a client that is itself waiting for the connection to close. An error means the request could
    /// not be read; answer it with [`write_error`](crate::response::write_error) and close the
    /// connection.
    ///
    /// The stream must be writable as well as readable: when a request says
    /// `Expect: 100-continue` the reader writes the `100 Continue` interim response before it
    /// waits for the body, as the client is waiting for it. `TcpStream` and `&TcpStream`
    /// qualify. An in-memory `Cursor<Vec<u8>>` does too, for requests without `Expect`: a
    /// cursor writes where it reads, so the interim response would land on its own input.
    pub fn next_request(&mut self) -> Result<Option<Request>, RequestError> {
        match self
            .state
            .read_request(&mut self.stream, &mut send_continue)?
        {
            Next::Request(request) => Ok(Some(request)),
            Next::Closed | Next::Idle => Ok(None),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for RequestReader<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestReader")
            .field("stream", &self.stream)
            .field("limits", &self.state.limits)
            .field("buffered", &self.state.buffer.len())
            .field("finished", &self.state.finished)
            .finish()
    }
}

fn send_continue<S: Write>(stream: &mut S) -> io::Result<()> {
    stream.write_all(CONTINUE)?;
    stream.flush()
}

/// What the next read produced.
enum Next {
    Request(Request),
    /// The peer closed the connection between requests.
    Closed,
    /// The stream's read timeout fired before any byte of a request arrived.
    Idle,
}

/// How a request body is delimited.
enum Framing {
    Length(usize),
    Chunked,
}

/// Everything a connection keeps between requests, apart from the stream.
struct ConnectionState {
    buffer: Buffer,
    limits: Limits,
    /// Set once no further request may be read: after an error, a close, or a request that
    /// does not keep the connection alive.
    finished: bool,
    /// Shared with every request read here; see `Request::closing`. Made with the first request,
    /// so that reading the ones after it allocates nothing for it.
    closing: Option<Arc<AtomicBool>>,
}

impl ConnectionState {
    fn new(limits: Limits) -> Self {
        ConnectionState {
            buffer: Buffer::default(),
            limits,
            finished: false,
            closing: None,
        }
    }

    fn read_request<R: Read>(
        &mut self,
        stream: &mut R,
        send_continue: &mut dyn FnMut(&mut R) -> io::Result<()>,
    ) -> Result<Next, RequestError> {
        // A response to the previous request ends with the connection: the client reads it
        // until the connection closes, so it sends nothing more, and must not be waited for.
        let closing = self.closing.as_ref();
        if self.finished || closing.is_some_and(|c| c.load(Ordering::Acquire)) {
            self.finished = true;
            return Ok(Next::Closed);
        }
        let next = self.read_request_inner(stream, send_continue);
        self.finished = match &next {
            Ok(Next::Request(request)) => !request.keep_alive,
            Ok(Next::Closed | Next::Idle) | Err(_) => true,
        };
        next
    }

    fn read_request_inner<R: Read>(
        &mut self,
        stream: &mut R,
        send_continue: &mut dyn FnMut(&mut R) -> io::Result<()>,
    ) -> Result<Next, RequestError> {
        let mut clock = Clock::new(self.limits.request_timeout);
        let head = match self.read_head(stream, &mut clock)? {
            Ok(head) => head,
            Err(quiet_end) => return Ok(quiet_end),
        };

        let mut request = Request {
            head: self.buffer.data()[..head.len].into(),
            method: head.method,
            target: head.target,
            version: head.version,
            headers: head.headers,
            body: Vec::new(),
            keep_alive: false,
            closing: Arc::clone(
                self.closing
                    .get_or_insert_with(|| Arc::new(AtomicBool::new(false))),
            ),
        };
        self.buffer.consume(head.len);

        request.check_host()?;
        let framing = request.framing(&self.limits)?;
        let expects_continue = request.expects_continue()?;
        request.keep_alive = request.wants_keep_alive();

        let has_body = !matches!(framing, Framing::Length(0));
        // Only a client that has not started sending its body is still waiting to be told to.
        if has_body && expects_continue && self.buffer.len() == 0 {
            send_continue(stream)
                .map_err(|err| RequestError::from_io(err, "sending 100 Continue"))?;
        }
        request.body = match framing {
            Framing::Length(0) => Vec::new(),
            Framing::Length(length) => self.read_sized_body(stream, length, &mut clock)?,
            Framing::Chunked => self.read_chunked_body(stream, &mut clock)?,
        };
        Ok(Next::Request(request))
    }

    /// Reads until the buffer starts with a complete head. The inner `Err` is a connection
    /// that ended quietly before a request began.
    fn read_head<R: Read>(
        &mut self,
        stream: &mut R,
        clock: &mut Clock,
    ) -> Result<Result<Head, Next>, RequestError> {
        let max_head = self.limits.max_head;
        // Parsing is retried only when a blank line may have arrived, so a client sending its
        // head byte by byte costs one scan of each byte rather than a full parse per byte.
        let mut parsed_once = false;
        let mut scanned: usize = 0;
        loop {
            let data = self.buffer.data();
            if !data.is_empty() {
                clock.start();
                let window = &data[..data.len().min(max_head)];
                if !parsed_once || has_blank_line(&window[scanned.saturating_sub(3)..]) {
                    parsed_once = true;
                    if let Some(head) = parse_head(window, self.limits.max_headers)? {
                        return Ok(Ok(head));
                    }
                }
                scanned = window.len();
            }
            if data.len() >= max_head {
                return Err(RequestError::new(
                    ErrorKind::HeadTooLarge,
                    format!("request head is larger than the {max_head}-byte limit"),
                ));
            }
            clock.check()?;
            match self.buffer.fill(stream, max_head) {
                Ok(0) if self.buffer.is_blank() => return Ok(Err(Next::Closed)),
                Ok(0) => {
                    return Err(RequestError::new(
                        ErrorKind::Incomplete,
                        format!(
                            "connection closed after {} bytes of the request head",
                            self.buffer.len()
                        ),
                    ));
                }
                Ok(_) => {}
                Err(err) if is_timeout(&err) && self.buffer.is_blank() => {
                    return Ok(Err(Next::Idle));
                }
                Err(err) => {
                    return Err(RequestError::from_io(err, "reading the request head"));
                }
            }
        }
    }

    fn read_sized_body<R: Read>(
        &mut self,
        stream: &mut R,
        length: usize,
        clock: &mut Clock,
    ) -> Result<Vec<u8>, RequestError> {
        let mut body = Vec::new();
        let early = length.min(self.buffer.len());
        append_bounded(&mut body, &self.buffer.data()[..early], length);
        self.buffer.consume(early);

        // The rest is read straight into the body, never past its end, so whatever follows
        // stays in the stream for the next request.
        let mut filled = body.len();
        while filled < length {
            clock.check()?;
            if filled == body.len() {
                let target = length.min(filled.saturating_mul(2).max(BODY_STEP));
                body.reserve_exact(target - body.len());
                body.resize(target, 0);
            }
            match read_retrying(stream, &mut body[filled..]) {
                Ok(0) => {
                    return Err(RequestError::new(
                        ErrorKind::Incomplete,
                        format!("connection closed after {filled} of {length} body bytes"),
                    ));
                }
                Ok(n) => filled += n,
                Err(err) => return Err(RequestError::from_io(err, "reading the request body")),
            }
        }
        body.truncate(filled);
        Ok(body)
    }

    fn read_chunked_body<R: Read>(
        &mut self,
        stream: &mut R,
        clock: &mut Clock,
    ) -> Result<Vec<u8>, RequestError> {
        let max_head = self.limits.max_head;
        let mut decoder = ChunkedDecoder::new(&self.limits);
        let mut body = Vec::new();
        loop {
            let used = decoder.decode(self.buffer.data(), &mut body)?;
            self.buffer.consume(used);
            if decoder.is_done() {
                return Ok(body);
            }
            if self.buffer.len() >= max_head {
                return Err(decoder.line_too_long());
            }
            clock.check()?;
            match self.buffer.fill(stream, max_head) {
                Ok(0) => {
                    return Err(RequestError::new(
                        ErrorKind::Incomplete,
                        format!(
                            "connection closed after {} bytes of a chunked body",
                            body.len()
                        ),
                    ));
                }
                Ok(_) => {}
                Err(err) => {
                    return Err(RequestError::from_io(
                        err,
                        "reading the chunked request body",
                    ));
                }
            }
        }
    }
}

/// The deadline for one request, started by its first byte.
struct Clock {
    timeout: Option<Duration>,
    deadline: Option<Instant>,
}

impl Clock {
    fn new(timeout: Option<Duration>) -> Self {
        Clock {
            timeout,
            deadline: None,
        }
    }

    fn start(&mut self) {
        if let (Some(timeout), None) = (self.timeout, self.deadline) {
            // A timeout too large to add is as good as none.
            self.deadline = Instant::now().checked_add(timeout);
        }
    }

    fn check(&self) -> Result<(), RequestError> {
        match (self.deadline, self.timeout) {
            (Some(deadline), Some(timeout)) if Instant::now() >= deadline => {
                Err(RequestError::new(
                    ErrorKind::Timeout,
                    format!("request did not arrive within the {timeout:?} request timeout"),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// The read buffer: `bytes[start..end]` holds what was read but not yet consumed.
///
/// `bytes` is kept zero-initialised up to its length, so reads go straight into it without
/// zeroing the space again each time.
#[derive(Default)]
struct Buffer {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

impl Buffer {
    fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether everything buffered could only be the blank lines a client may send between
    /// requests (RFC 9112 §2.2), which are no request at all.
    fn is_blank(&self) -> bool {
        self.data().iter().all(|&b| b == b'\r' || b == b'\n')
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads once from `stream` into free space, growing the storage to at most `max` bytes.
    /// The caller makes sure fewer than `max` bytes are buffered.
    fn fill<R: Read>(&mut self, stream: &mut R, max: usize) -> io::Result<usize> {
        if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.bytes.len() {
            let target = max.min(self.bytes.len().saturating_mul(2).max(INITIAL_BUFFER));
            // Exact, so the storage never exceeds `max` the way doubling could.
            self.bytes.reserve_exact(target - self.bytes.len());
            self.bytes.resize(target, 0);
        }
        let limit = self.bytes.len().min(max);
        let n = read_retrying(stream, &mut self.bytes[self.end..limit])?;
        self.end += n;
        Ok(n)
    }
}

fn read_retrying<R: Read>(stream: &mut R, into: &mut [u8]) -> io::Result<usize> {
    loop {
        match stream.read(into) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

fn is_timeout(err: &io::Error) -> bool {
    // Unix reports an expired socket timeout as WouldBlock, Windows as TimedOut.
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Appends to a body whose final size is at most `max`, growing its storage by doubling but
/// never past `max`.
fn append_bounded(body: &mut Vec<u8>, bytes: &[u8], max: usize) {
    let needed = body.len() + bytes.len();
    if needed > body.capacity() {
        let target = max.min(body.capacity().saturating_mul(2).max(needed).max(BODY_STEP));
        body.reserve_exact(target.max(needed) - body.len());
    }
    body.extend_from_slice(bytes);
}

/// Whether `bytes` holds the empty line that ends a head, with either line ending.
fn has_blank_line(bytes: &[u8]) -> bool {
    bytes
        .windows(2)
        .enumerate()
        .any(|(i, pair)| pair == b"\n\n" || (pair == b"\n\r" && bytes.get(i + 2) == Some(&b'\n')))
}

/// The parts of a complete head, as spans into the buffer it was parsed from.
struct Head {
    len: usize,
    method: Span,
    target: Span,
    version: Version,
    headers: Vec<HeaderSpan>,
}

fn parse_head(data: &[u8], max_headers: usize) -> Result<Option<Head>, RequestError> {
    let mut slots = vec![httparse::EMPTY_HEADER; max_headers];
    let mut parsed = httparse::Request::new(&mut slots);
    let len = match parsed.parse(data) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(RequestError::new(
                ErrorKind::TooManyHeaders,
                format!("request has more than {max_headers} header fields"),
            ));
        }
        Err(httparse::Error::Version) => return Err(version_error(data)),
        Err(err) => {
            return Err(RequestError::new(
                ErrorKind::MalformedHead,
                format!("malformed request head: {err}"),
            ));
        }
    };
    let (Some(method), Some(target), Some(minor)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(RequestError::new(
            ErrorKind::MalformedHead,
            "malformed request head: incomplete request line",
        ));
    };
    let span = |part: &[u8]| {
        let start = part.as_ptr().addr() - data.as_ptr().addr();
        Span {
            start,
            end: start + part.len(),
        }
    };
    Ok(Some(Head {
        len,
        method: span(method.as_bytes()),
        target: span(target.as_bytes()),
        version: if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        },
        headers: parsed
            .headers
            .iter()
            .map(|header| HeaderSpan {
                name: span(header.name.as_bytes()),
                value: span(header.value),
            })
            .collect(),
    }))
}

/// httparse reports any bad version the same way; tell a well-formed but unsupported one
/// (`HTTP/2.0`, say) apart, since it deserves 505 rather than 400.
fn version_error(data: &[u8]) -> RequestError {
    let line = data
        .split(|&b| b == b'\n')
        .find(|line| !line.is_empty() && *line != b"\r")
        .unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // Only a request line of exactly three parts has a version to speak of: with a space in the
    // target, httparse takes part of the target for the version.
    let mut parts = line.split(|&b| b == b' ');
    let version = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some(version), None) => version,
        _ => b"",
    };
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit()
                && minor.is_ascii_digit()
                && !(*major == b'1' && (*minor == b'0' || *minor == b'1')) =>
        {
            RequestError::new(
                ErrorKind::UnsupportedVersion,
                format!(
                    "HTTP/{}.{} is not supported, only HTTP/1.0 and HTTP/1.1",
                    *major as char, *minor as char
                ),
            )
        }
        _ => RequestError::new(
            ErrorKind::MalformedHead,
            "malformed request head: invalid HTTP version",
        ),
    }
}

/// Checks that the transfer codings, across all `Transfer-Encoding` fields, are exactly
/// `chunked` (RFC 9112 §6.1, §6.3).
fn check_transfer_codings<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<(), RequestError> {
    let bad = |message: String| RequestError::new(ErrorKind::BadTransferEncoding, message);
    let mut codings = Vec::new();
    for value in values {
        for element in value.split(|&b| b == b',') {
            let element = element.trim_ascii();
            // RFC 9110 §5.6.1: empty list elements are allowed and mean nothing.
            if element.is_empty() {
                continue;
            }
            let name = element
                .split(|&b| b == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            if name.is_empty() || !name.iter().all(|&b| syntax::is_tchar(b)) {
                return Err(bad(format!(
                    "Transfer-Encoding \"{}\" is malformed",
                    snippet(value)
                )));
            }
            codings.push((name, element.len() != name.len()));
        }
    }
    let Some((&(last, last_has_parameters), earlier)) = codings.split_last() else {
        return Err(bad("Transfer-Encoding is empty".into()));
    };
    if !last.eq_ignore_ascii_case(b"chunked") {
        return Err(bad(format!(
            "the final transfer coding is \"{}\", not chunked, so the body has no reliable length",
            snippet(last)
        )));
    }
    if last_has_parameters {
        return Err(bad("the chunked transfer coding takes no parameters".into()));
    }
    for &(name, _) in earlier {
        if name.eq_ignore_ascii_case(b"chunked") {
            return Err(bad("chunked is applied more than once".into()));
        }
    }
    if let Some(&(name, _)) = earlier.first() {
        return Err(RequestError::new(
            ErrorKind::UnsupportedTransferEncoding,
            format!(
                "transfer coding \"{}\" is not supported, only chunked",
                snippet(name)
            ),
        ));
    }
    Ok(())
}

fn parse_content_length(value: &[u8], max_body: usize) -> Result<usize, RequestError> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(RequestError::new(
            ErrorKind::BadContentLength,
            format!(
                "Content-Length \"{}\" is not a decimal number",
                snippet(value)
            ),
        ));
    }
    let too_large = || {
        RequestError::new(
            ErrorKind::BodyTooLarge,
            format!(
                "Content-Length {} is larger than the {max_body}-byte limit",
                snippet(value)
            ),
        )
    };
    let mut length: usize = 0;
    for digit in value {
        length = length
            .checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(digit - b'0')))
            .ok_or_else(too_large)?;
    }
    if length > max_body {
        return Err(too_large());
    }
    Ok(length)
}

/// Decodes a chunked body (RFC 9112 §7.1) incrementally from whatever part of it is buffered.
struct ChunkedDecoder {
    state: ChunkState,
    max_body: usize,
    /// What is left of `max_head` for leading zeros, extensions and trailer fields.
    budget: usize,
    max_head: usize,
    /// How much of a line that has not fully arrived was already searched for its end, so a
    /// line dripping in byte by byte is scanned once rather than once per byte.
    scanned: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data, with this many bytes to go.
    Data(usize),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// Expecting a trailer field or the empty line that ends the body.
    Trailer,
    Done,
}

impl ChunkedDecoder {
    fn new(limits: &Limits) -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
            max_body: limits.max_body,
            budget: limits.max_head,
            max_head: limits.max_head,
            scanned: 0,
        }
    }

    fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes as much of `input` as possible, appending chunk data to `body`, and returns
    /// how many bytes it used. Lines are only used whole, so the rest waits for more input.
    fn decode(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<usize, RequestError> {
        let mut used = 0;
        loop {
            let rest = &input[used..];
            match self.state {
                ChunkState::Size => {
                    let Some(line) = self.take_line(rest)? else {
                        return Ok(used);
                    };
                    used += line.len() + 2;
                    let size = self.chunk_size(line, body.len())?;
                    self.state = if size == 0 {
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(remaining) => {
                    if rest.is_empty() {
                        return Ok(used);
                    }
                    let take = remaining.min(rest.len());
                    append_bounded(body, &rest[..take], self.max_body);
                    used += take;
                    self.state = if take == remaining {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(remaining - take)
                    };
                }
                ChunkState::DataEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        used += 2;
                        self.state = ChunkState::Size;
                    }
                    [] | [b'\r'] => return Ok(used),
                    _ => return Err(bad_chunk("chunk data is not followed by CRLF")),
                },
                ChunkState::Trailer => {
                    let Some(line) = self.take_line(rest)? else {
                        return Ok(used);
                    };
                    used += line.len() + 2;
                    if line.is_empty() {
                        self.state = ChunkState::Done;
                        return Ok(used);
                    }
                    if !self.charge(line.len() + 2) {
                        return Err(self.trailers_too_large());
                    }
                    check_trailer_field(line)?;
                }
                ChunkState::Done => return Ok(used),
            }
        }
    }

    /// Splits off the CRLF-terminated line `input` starts with, or returns `None` if it has not
    /// fully arrived. Chunked framing is read strictly: a bare LF, or a CR not followed by LF,
    /// is an error.
    fn take_line<'a>(&mut self, input: &'a [u8]) -> Result<Option<&'a [u8]>, RequestError> {
        let from = self.scanned.min(input.len());
        let Some(offset) = input[from..].iter().position(|&b| b == b'\r' || b == b'\n') else {
            self.scanned = input.len();
            return Ok(None);
        };
        let end = from + offset;
        match (input[end], input.get(end + 1)) {
            (b'\r', Some(b'\n')) => {
                self.scanned = 0;
                Ok(Some(&input[..end]))
            }
            (b'\r', None) => {
                self.scanned = end;
                Ok(None)
            }
            (b'\r', Some(_)) => Err(bad_chunk("CR without LF in chunked framing")),
            _ => Err(bad_chunk("bare LF in chunked framing")),
        }
    }

    /// The error for a line that does not fit in the buffer.
    fn line_too_long(&self) -> RequestError {
        match self.state {
            ChunkState::Trailer => self.trailers_too_large(),
            _ => RequestError::new(
                ErrorKind::BodyTooLarge,
                format!(
                    "a chunk-size line is longer than the {}-byte buffer",
                    self.max_head
                ),
            ),
        }
    }

    fn trailers_too_large(&self) -> RequestError {
        RequestError::new(
            ErrorKind::HeadTooLarge,
            format!(
                "chunk extensions and trailer fields are larger than the {}-byte limit",
                self.max_head
            ),
        )
    }

    fn charge(&mut self, bytes: usize) -> bool {
        match self.budget.checked_sub(bytes) {
            Some(left) => {
                self.budget = left;
                true
            }
            None => false,
        }
    }

    /// Parses `chunk-size [ chunk-ext ]` and checks the chunk fits in the body limit.
    fn chunk_size(&mut self, line: &[u8], body_len: usize) -> Result<usize, RequestError> {
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 {
            return Err(bad_chunk(format!(
                "chunk size \"{}\" is not hexadecimal",
                snippet(line)
            )));
        }
        let zeros = line[..digits].iter().take_while(|&&b| b == b'0').count();
        let significant = &line[zeros..digits];
        if significant.len() > MAX_CHUNK_SIZE_DIGITS {
            return Err(bad_chunk("chunk size does not fit in 64 bits"));
        }
        let extensions = &line[digits..];
        check_chunk_extensions(extensions)?;
        // Leading zeros and extensions carry no data, so they are what could be sent in bulk
        // for free; they draw on the same budget as trailers.
        let padding = if significant.is_empty() {
            zeros - 1
        } else {
            zeros
        };
        if !self.charge(padding + extensions.len()) {
            return Err(RequestError::new(
                ErrorKind::BodyTooLarge,
                format!(
                    "chunk extensions are larger than the {}-byte limit",
                    self.max_head
                ),
            ));
        }
        let size = significant
            .iter()
            .fold(0u64, |size, &digit| size << 4 | u64::from(hex_value(digit)));
        let room = self.max_body - body_len;
        match usize::try_from(size) {
            Ok(size) if size <= room => Ok(size),
            _ => Err(RequestError::new(
                ErrorKind::BodyTooLarge,
                format!(
                    "chunked request body is larger than the {}-byte limit",
                    self.max_body
                ),
            )),
        }
    }
}

fn bad_chunk(message: impl Into<String>) -> RequestError {
    RequestError::new(ErrorKind::BadChunk, message)
}

/// Checks what follows the chunk size is `*( BWS ";" BWS ext-name [ BWS "=" BWS ext-value ] )`
/// (RFC 9112 §7.1.1).
fn check_chunk_extensions(extensions: &[u8]) -> Result<(), RequestError> {
    if syntax::chunk_extensions_are_valid(extensions) {
        Ok(())
    } else {
        Err(bad_chunk(format!(
            "chunk extension \"{}\" is malformed",
            snippet(extensions)
        )))
    }
}

/// Checks a trailer field line is `name: value`; trailers are discarded, but they must still
/// be well-formed so nothing odd slips through unread.
fn check_trailer_field(line: &[u8]) -> Result<(), RequestError> {
    if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(bad_chunk("obsolete line folding in a trailer field"));
    }
    let colon = line.iter().position(|&b| b == b':');
    let well_formed = colon.is_some_and(|colon| {
        colon > 0
            && line[..colon].iter().all(|&b| syntax::is_tchar(b))
            && line[colon + 1..]
                .iter()
                .all(|&b| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80)
    });
    if well_formed {
        Ok(())
    } else {
        Err(bad_chunk(format!(
            "trailer field \"{}\" is malformed",
            snippet(line)
        )))
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// Bytes of `uri-host [ ":" port ]` (RFC 3986): reg-name, IP literals and percent-escapes.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%:[]".contains(&b)
}

/// Drops `scheme://authority` from a target in absolute form.
/// Splits a request target into the path to route on and the query, as
/// [`Request::path`] and [`Request::query`] do: for servers that hand you the
/// target as a string, such as tiny_http's `Request::url()`.
///
/// Route on the path, never on the whole target: Datastar sends the page's
/// signals in the query of every `GET` (`/feed?datastar=%7B%7D`). Both parts
/// stay percent-encoded; a target in absolute form
/// (`http://example.com/a?b`) loses its scheme and authority.
///
/// ```
/// use dstar::request::split_target;
///
/// assert_eq!(split_target("/clock?datastar=%7B%7D"), ("/clock", Some("datastar=%7B%7D")));
/// assert_eq!(split_target("/clock"), ("/clock", None));
/// assert_eq!(split_target("/a?"), ("/a", Some("")));
/// assert_eq!(split_target("http://example.com/a%20b?c=d"), ("/a%20b", Some("c=d")));
/// ```
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    (strip_scheme_and_authority(path), query)
}

fn strip_scheme_and_authority(target: &str) -> &str {
    let Some((scheme, rest)) = target.split_once("://") else {
        return target;
    };
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme {
        return target;
    }
    rest.find('/').map_or("/", |slash| &rest[slash..])
}

/// A short, escaped excerpt of client-sent bytes for an error message, which may end up in a
/// response body or a log.
fn snippet(bytes: &[u8]) -> String {
    const MAX: usize = 40;
    let shown = bytes.get(..MAX).unwrap_or(bytes);
    let mut text = shown.escape_ascii().to_string();
    if bytes.len() > MAX {
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory connection: reads come from `input`, at most `chunk` bytes at a time;
    /// writes are collected.
    struct Duplex {
        input: Vec<u8>,
        position: usize,
        chunk: usize,
        written: Vec<u8>,
    }

    impl Duplex {
        fn new(input: &[u8], chunk: usize) -> Self {
            Duplex {
                input: input.to_vec(),
                position: 0,
                chunk: chunk.max(1),
                written: Vec::new(),
            }
        }
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let rest = &self.input[self.position..];
            let n = rest.len().min(buf.len()).min(self.chunk);
            buf[..n].copy_from_slice(&rest[..n]);
            self.position += n;
            Ok(n)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn decode_chunked(input: &[u8], limits: &Limits) -> Result<(Vec<u8>, usize), RequestError> {
        let mut decoder = ChunkedDecoder::new(limits);
        let mut body = Vec::new();
        let used = decoder.decode(input, &mut body)?;
        assert!(decoder.is_done(), "incomplete: {input:?}");
        Ok((body, used))
    }

    #[test]
    fn chunked_decoder_handles_every_split_point() {
        let input = b"5;name=value;x=\"q\\\"s\"\r\nhello\r\n0006\r\n world\r\n0\r\nTrailer: yes\r\n\r\nNEXT";
        let limits = Limits::default();
        let (body, used) = decode_chunked(input, &limits).unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(&input[used..], b"NEXT");

        // Fed in two pieces split anywhere, the decoder must reach the same result.
        for split in 0..input.len() {
            let mut decoder = ChunkedDecoder::new(&limits);
            let mut body = Vec::new();
            let used = decoder.decode(&input[..split], &mut body).unwrap();
            let rest = [&input[used..split], &input[split..]].concat();
            let more = decoder.decode(&rest, &mut body).unwrap();
            assert!(decoder.is_done(), "split at {split}");
            assert_eq!(body, b"hello world", "split at {split}");
            assert_eq!(&rest[more..], b"NEXT", "split at {split}");
        }
    }

    #[test]
    fn chunk_sizes_are_strict() {
        let limits = Limits::default();
        let refused: &[&[u8]] = &[
            b"\r\n",
            b"x\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"+5\r\nhello\r\n0\r\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\rhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5;\r\nhello\r\n0\r\n\r\n",
            b"5;a=\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"open\r\nhello\r\n0\r\n\r\n",
            b"5;a b\r\nhello\r\n0\r\n\r\n",
            b"5;a=b c\r\nhello\r\n0\r\n\r\n",
            b"5,a\r\nhello\r\n0\r\n\r\n",
            b"10000000000000000\r\n",
            b"0\r\nBad Name: x\r\n\r\n",
            b"0\r\n folded\r\n\r\n",
            b"0\r\nno-colon\r\n\r\n",
            b"0\r\nx: a\x01b\r\n\r\n",
            b"0\r\nx: y\n\r\n",
        ];
        for input in refused {
            let mut decoder = ChunkedDecoder::new(&limits);
            let result = decoder.decode(input, &mut Vec::new());
            let err = result.expect_err(&String::from_utf8_lossy(input));
            assert_eq!(
                err.status(),
                400,
                "{:?}: {err}",
                String::from_utf8_lossy(input)
            );
        }

        let accepted: &[&[u8]] = &[
            b"5 ;a\r\nhello\r\n0\r\n\r\n",
            b"5\t; a = b\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"\"\r\nhello\r\n0\r\n\r\n",
            b"A\r\nhellohello\r\n0\r\n\r\n",
            b"a\r\nhellohello\r\n000\r\n\r\n",
            b"0000000000000000000005\r\nhello\r\n0\r\n\r\n",
        ];
        for input in accepted {
            let (body, _) = decode_chunked(input, &limits)
                .unwrap_or_else(|err| panic!("{:?}: {err}", String::from_utf8_lossy(input)));
            assert!(body.starts_with(b"hello"));
        }
    }

    #[test]
    fn chunked_limits_hold_before_data_arrives() {
        let limits = Limits::default().max_body(10).max_head(32);
        let mut decoder = ChunkedDecoder::new(&limits);
        // The size alone is over the limit: refused before a single data byte is read.
        let err = decoder.decode(b"b\r\n", &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BodyTooLarge);

        // Many small chunks add up.
        let mut decoder = ChunkedDecoder::new(&limits);
        let err = decoder
            .decode(b"6\r\nabcdef\r\n5\r\nghijk\r\n", &mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BodyTooLarge);

        // Extensions and trailers share the 32-byte budget.
        let ext = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(40));
        let mut decoder = ChunkedDecoder::new(&limits);
        let err = decoder.decode(ext.as_bytes(), &mut Vec::new()).unwrap_err();
        assert_eq!(err.status(), 413);
        let trailers = b"0\r\nA: 0123456789\r\nB: 0123456789\r\nC: 01234567\r\n\r\n";
        let mut decoder = ChunkedDecoder::new(&limits);
        let err = decoder.decode(trailers, &mut Vec::new()).unwrap_err();
        assert_eq!(err.status(), 431);
    }

    #[test]
    fn a_dripping_chunk_line_is_scanned_once() {
        // 60 000 bytes of extensions fed one byte per read. Rescanning the pending line on every
        // read would take about 1.8 billion comparisons; scanning once takes 60 000.
        let mut input =
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1".to_vec();
        for _ in 0..10_000 {
            input.extend_from_slice(b";e=abc");
        }
        input.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        let started = Instant::now();
        let request = RequestReader::new(Duplex::new(&input, 1))
            .next_request()
            .unwrap()
            .unwrap();
        assert_eq!(request.body(), b"x");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn reads_head_byte_by_byte() {
        let input = b"POST /x?datastar=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
        let mut reader = RequestReader::new(Duplex::new(input, 1));
        let request = reader.next_request().unwrap().unwrap();
        assert_eq!(request.body(), b"hello");
        assert_eq!(request.path(), "/x");
        assert!(reader.next_request().unwrap().is_none());
    }

    #[test]
    fn expect_continue_is_answered_only_while_the_client_waits() {
        let head =
            b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        // Head and body arrive in separate reads, as they would from a waiting client.
        let mut stream = Duplex::new(&[&head[..], b"{}"].concat(), head.len());
        let request = RequestReader::new(&mut stream)
            .next_request()
            .unwrap()
            .unwrap();
        assert_eq!(request.body(), b"{}");
        assert_eq!(stream.written, CONTINUE);

        // The body came along with the head: the client did not wait, so no interim answer.
        let mut stream = Duplex::new(&[&head[..], b"{}"].concat(), 4096);
        RequestReader::new(&mut stream)
            .next_request()
            .unwrap()
            .unwrap();
        assert!(stream.written.is_empty());

        // No body, nothing to continue to.
        let mut stream = Duplex::new(
            b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
            4096,
        );
        RequestReader::new(&mut stream)
            .next_request()
            .unwrap()
            .unwrap();
        assert!(stream.written.is_empty());

        // Too large: refused without inviting the body.
        let mut stream = Duplex::new(
            b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 99999999\r\n\r\n",
            4096,
        );
        let err = RequestReader::new(&mut stream).next_request().unwrap_err();
        assert_eq!(err.status(), 413);
        assert!(stream.written.is_empty());
    }

    #[test]
    fn a_zero_deadline_stops_a_second_read() {
        let limits = Limits::default().request_timeout(Some(Duration::ZERO));
        let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        // All in one read: the deadline is never consulted.
        let mut reader = RequestReader::with_limits(Duplex::new(input, 4096), limits);
        assert!(reader.next_request().unwrap().is_some());
        // Dripped: the second read finds the deadline passed.
        let mut reader = RequestReader::with_limits(Duplex::new(input, 3), limits);
        let err = reader.next_request().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert_eq!(err.status(), 408);
        assert!(
            reader.next_request().unwrap().is_none(),
            "finished after an error"
        );
    }

    #[test]
    fn buffer_never_outgrows_max_head() {
        for max_head in [1, 7, 100, 5000, 50_000] {
            let limits = Limits::default().max_head(max_head);
            let input = vec![b'a'; 100_000];
            let mut reader = RequestReader::with_limits(Duplex::new(&input, 3000), limits);
            let err = reader.next_request().unwrap_err();
            assert_eq!(err.status(), 431);
            assert!(
                reader.state.buffer.bytes.capacity() <= max_head,
                "{} > {max_head}",
                reader.state.buffer.bytes.capacity()
            );
        }
    }

    #[test]
    fn body_capacity_never_outgrows_max_body() {
        for max_body in [1, 100, 20_000, 70_000] {
            let limits = Limits::default().max_body(max_body);
            let sized = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {max_body}\r\n\r\n");
            let mut input = sized.into_bytes();
            input.resize(input.len() + max_body, b'x');
            let request = RequestReader::with_limits(Duplex::new(&input, 777), limits)
                .next_request()
                .unwrap()
                .unwrap();
            assert_eq!(request.body.len(), max_body);
            assert!(request.body.capacity() <= max_body);

            let mut chunked =
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            let mut left = max_body;
            while left > 0 {
                let size = left.min(333);
                chunked.extend_from_slice(format!("{size:x}\r\n").as_bytes());
                chunked.resize(chunked.len() + size, b'y');
                chunked.extend_from_slice(b"\r\n");
                left -= size;
            }
            chunked.extend_from_slice(b"0\r\n\r\n");
            let request = RequestReader::with_limits(Duplex::new(&chunked, 1000), limits)
                .next_request()
                .unwrap()
                .unwrap();
            assert_eq!(request.body.len(), max_body);
            assert!(request.body.capacity() <= max_body);
        }
    }

    #[test]
    fn version_errors_distinguish_unsupported_from_malformed() {
        let cases: &[(&[u8], u16)] = &[
            (b"GET / HTTP/2.0\r\n\r\n", 505),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
            (b"\r\nGET / HTTP/0.9\r\nHost: x\r\n\r\n", 505),
            (b"GET / HTTP/1.1x\r\n\r\n", 400),
            (b"GET / FTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/11\r\n\r\n", 400),
            (b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            (b"GET /a HTTP/2.0 x\r\nHost: x\r\n\r\n", 400),
        ];
        for &(input, status) in cases {
            let err = Request::parse(input).unwrap_err();
            assert_eq!(
                err.status(),
                status,
                "{:?}: {err}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn absolute_form_targets_route_by_path() {
        assert_eq!(strip_scheme_and_authority("http://a.b/c/d"), "/c/d");
        assert_eq!(strip_scheme_and_authority("HTTPS://a.b"), "/");
        assert_eq!(strip_scheme_and_authority("/x://y"), "/x://y");
        assert_eq!(strip_scheme_and_authority("*"), "*");
        assert_eq!(strip_scheme_and_authority("1http://a/b"), "1http://a/b");
    }

    #[test]
    fn public_types_cross_threads() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Request>();
        send_sync::<RequestError>();
        send_sync::<Limits>();
        send_sync::<RequestReader<std::net::TcpStream>>();
    }

    #[test]
    fn snippets_are_escaped_and_short() {
        assert_eq!(snippet(b"a\r\n\xff"), "a\\r\\n\\xff");
        assert_eq!(snippet(&[b'x'; 50]), format!("{}...", "x".repeat(40)));
    }

    #[test]
    fn io_errors_convert_to_io_errors() {
        let err = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap_err();
        assert_eq!(io::Error::from(err).kind(), io::ErrorKind::UnexpectedEof);
        let err = Request::parse(b"GET / HTTP/1.1\r\n\r\n").unwrap_err();
        assert_eq!(io::Error::from(err).kind(), io::ErrorKind::InvalidData);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const LIMITS: Limits = Limits {
            max_head: 256,
            max_headers: 8,
            max_body: 300,
            request_timeout: None,
        };

        /// Requests close to valid, so mutations reach the body and signal code, not just the
        /// request line.
        fn near_requests() -> impl Strategy<Value = Vec<u8>> {
            let pieces = prop::sample::select(vec![
                &b"GET /?datastar=%7B%22a%22%3A1%7D HTTP/1.1\r\nHost: x\r\n\r\n"[..],
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\n[1]\r\n0\r\nT: v\r\n\r\n",
                b"PUT / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}",
                b"DELETE /?datastar=%5B HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
                b"\r\n",
                b"Content-Length: 99\r\n",
                b"Transfer-Encoding: gzip, chunked\r\n",
                b"ffffffffffffffffff\r\n",
                b"\n",
                b" ",
                b":",
            ]);
            (
                prop::collection::vec(pieces, 1..6),
                any::<Vec<(usize, u8)>>(),
            )
                .prop_map(|(pieces, edits)| {
                    let mut bytes = pieces.concat();
                    for (at, byte) in edits.into_iter().take(4) {
                        if !bytes.is_empty() {
                            let at = at % bytes.len();
                            bytes[at] = byte;
                        }
                    }
                    bytes
                })
        }

        fn check_connection(input: &[u8], chunk: usize) {
            let mut reader = RequestReader::with_limits(Duplex::new(input, chunk), LIMITS);
            // Each request consumes at least one byte, so this loop ends.
            for _ in 0..=input.len() {
                let outcome = reader.next_request();
                assert!(reader.state.buffer.bytes.capacity() <= LIMITS.max_head);
                match outcome {
                    Ok(Some(request)) => {
                        assert!(request.body.capacity() <= LIMITS.max_body);
                        assert!(request.head.len() <= LIMITS.max_head);
                        assert!(request.headers.len() <= LIMITS.max_headers);
                        let _ = (request.path(), request.query(), request.last_event_id());
                        let _ = request.query_params().count();
                        if let Err(err) = request.signals() {
                            assert_eq!(err.status(), 400);
                        }
                    }
                    Ok(None) => return,
                    Err(err) => {
                        assert!((400..600).contains(&err.status()), "{err}");
                        assert!(!err.to_string().is_empty());
                        assert!(reader.next_request().unwrap().is_none());
                        return;
                    }
                }
            }
            panic!("reader did not finish");
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn arbitrary_bytes_are_handled(input in prop::collection::vec(any::<u8>(), 0..600), chunk in 1usize..64) {
                check_connection(&input, chunk);
            }

            #[test]
            fn near_valid_requests_are_handled(input in near_requests(), chunk in 1usize..64) {
                check_connection(&input, chunk);
            }

            #[test]
            fn signals_never_panic(text in ".{0,64}", raw in prop::collection::vec(any::<u8>(), 0..64)) {
                let _ = json::validate(&text);
                let _ = percent::decode_lossy(&text);
                let _ = percent::decode_strict(&text);
                let lossy = String::from_utf8_lossy(&raw);
                let _ = json::validate(&lossy);
            }
        }
    }
}

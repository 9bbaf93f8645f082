//! Why a request could not be read or used, and the status code to answer with.

use std::fmt;
use std::io;

use crate::chunked::decode::{ChunkError, ChunkErrorKind};

/// What went wrong with a request; each kind maps to the status code to answer with.
///
/// ```
/// use dstar::request::{RequestErrorKind, Request};
///
/// let err = Request::parse(b"GET / HTTP/1.1\r\n\r\n").unwrap_err();
/// assert_eq!(err.kind(), RequestErrorKind::BadHost);
/// assert_eq!(err.status(), 400);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestErrorKind {
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
    ///
    /// [`Limits::max_body`]: crate::request::Limits::max_body
    /// [`Limits::max_head`]: crate::request::Limits::max_head
    BodyTooLarge,
    /// `Expect` asks for something other than `100-continue` (417).
    ExpectationFailed,
    /// The request head, or a chunked body's trailer section, is larger than
    /// [`Limits::max_head`] (431).
    ///
    /// [`Limits::max_head`]: crate::request::Limits::max_head
    HeadTooLarge,
    /// The request has more header fields than [`Limits::max_headers`] (431).
    ///
    /// [`Limits::max_headers`]: crate::request::Limits::max_headers
    TooManyHeaders,
    /// `Transfer-Encoding` names a coding other than `chunked` (501).
    UnsupportedTransferEncoding,
    /// The request is for an HTTP version other than 1.0 and 1.1 (505).
    UnsupportedVersion,
}

/// The old name of [`RequestErrorKind`], which read as `std::io::ErrorKind` wherever both were
/// imported.
#[deprecated(since = "0.2.0", note = "renamed to `RequestErrorKind`")]
pub type ErrorKind = RequestErrorKind;

impl RequestErrorKind {
    /// The HTTP status code to answer a request that failed this way.
    pub fn status(self) -> u16 {
        match self {
            RequestErrorKind::MalformedHead
            | RequestErrorKind::BadHost
            | RequestErrorKind::BadContentLength
            | RequestErrorKind::BadTransferEncoding
            | RequestErrorKind::BadChunk
            | RequestErrorKind::Incomplete
            | RequestErrorKind::Io
            | RequestErrorKind::BadSignals => 400,
            RequestErrorKind::Timeout => 408,
            RequestErrorKind::BodyTooLarge => 413,
            RequestErrorKind::ExpectationFailed => 417,
            RequestErrorKind::HeadTooLarge | RequestErrorKind::TooManyHeaders => 431,
            RequestErrorKind::UnsupportedTransferEncoding => 501,
            RequestErrorKind::UnsupportedVersion => 505,
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
/// use dstar::request::{RequestErrorKind, Request};
///
/// let err = Request::parse(
///     b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
/// )
/// .unwrap_err();
/// assert_eq!(err.kind(), RequestErrorKind::BadContentLength);
/// assert_eq!(err.status(), 400);
/// assert_eq!(err.to_string(), "request has 2 Content-Length headers");
/// ```
#[derive(Debug)]
pub struct RequestError {
    kind: RequestErrorKind,
    message: String,
    source: Option<io::Error>,
}

impl RequestError {
    /// An error of this kind with a message for the client, for requests
    /// your own code refuses: signals of the wrong shape, say. Answer it with
    /// [`write_error`](crate::response::write_error) like the reader's own.
    ///
    /// ```
    /// use dstar::request::{RequestErrorKind, RequestError};
    ///
    /// let err = RequestError::new(RequestErrorKind::BadSignals, "count must be a number");
    /// assert_eq!(err.status(), 400);
    /// assert_eq!(err.to_string(), "count must be a number");
    /// ```
    pub fn new(kind: RequestErrorKind, message: impl Into<String>) -> Self {
        RequestError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Classifies a failed read or write: a timed-out socket is a 408, anything else an I/O error.
    pub(super) fn from_io(err: io::Error, doing: &str) -> Self {
        let kind = if is_timeout(&err) {
            RequestErrorKind::Timeout
        } else {
            RequestErrorKind::Io
        };
        let message = if kind == RequestErrorKind::Timeout {
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
    pub fn kind(&self) -> RequestErrorKind {
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
            RequestErrorKind::Io => match err.source {
                Some(source) => return source,
                None => io::ErrorKind::Other,
            },
            RequestErrorKind::Timeout => io::ErrorKind::TimedOut,
            RequestErrorKind::Incomplete => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, err)
    }
}

/// A chunked body that could not be decoded is a request that could not be read.
impl From<ChunkError> for RequestError {
    fn from(err: ChunkError) -> Self {
        let kind = match err.kind {
            ChunkErrorKind::Malformed => RequestErrorKind::BadChunk,
            ChunkErrorKind::BodyTooLarge => RequestErrorKind::BodyTooLarge,
            ChunkErrorKind::TrailersTooLarge => RequestErrorKind::HeadTooLarge,
        };
        RequestError::new(kind, err.message)
    }
}

/// Whether a failed read is a socket's read timeout firing.
pub(super) fn is_timeout(err: &io::Error) -> bool {
    // Unix reports an expired socket timeout as WouldBlock, Windows as TimedOut.
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Request;

    #[test]
    fn io_errors_convert_to_io_errors() {
        let err = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap_err();
        assert_eq!(io::Error::from(err).kind(), io::ErrorKind::UnexpectedEof);
        let err = Request::parse(b"GET / HTTP/1.1\r\n\r\n").unwrap_err();
        assert_eq!(io::Error::from(err).kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn chunked_errors_keep_their_status() {
        let limits = crate::request::Limits::default().max_body(4).max_head(100);
        let answer = |body: &[u8]| {
            let mut input =
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            input.extend_from_slice(body);
            crate::request::RequestReader::with_limits(std::io::Cursor::new(input), limits)
                .next_request()
                .unwrap_err()
        };
        assert_eq!(answer(b"5\nhello\r\n").kind(), RequestErrorKind::BadChunk);
        assert_eq!(
            answer(b"5\r\nhello\r\n").kind(),
            RequestErrorKind::BodyTooLarge
        );
        // Seven trailer lines of 18 bytes with their CRLF: over the 100-byte budget.
        let trailers = format!("0\r\n{}\r\n", "T: 0123456789012\r\n".repeat(7));
        let err = answer(trailers.as_bytes());
        assert_eq!(
            (err.kind(), err.status()),
            (RequestErrorKind::HeadTooLarge, 431)
        );
    }
}

//! Plain, complete HTTP responses: pages, text, 404s, and answers to requests that failed.
//!
//! Event streams have their own writer; these helpers are for everything around them — the page
//! that loads the Datastar client, a health check, an error. Each response is written with one
//! `write_all` call, carries a `Content-Length`, and states whether the connection stays open:
//! pass [`Request::keep_alive`](crate::request::Request::keep_alive) as `keep_alive`, and close
//! the connection after writing when it is `false`.
//!
//! ```
//! use dstar::response;
//!
//! let mut out = Vec::new();
//! response::write_html(&mut out, "<h1>Hi</h1>", true)?;
//! assert_eq!(
//!     String::from_utf8(out).unwrap(),
//!     "HTTP/1.1 200 OK\r\n\
//!      Content-Type: text/html; charset=utf-8\r\n\
//!      Content-Length: 11\r\n\
//!      Connection: keep-alive\r\n\
//!      \r\n\
//!      <h1>Hi</h1>",
//! );
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Write};

use crate::request::RequestError;

/// Writes a complete response with the given status, content type and body.
///
/// The status must be a three-digit code and the content type must not contain line breaks;
/// otherwise nothing is written and the error is [`io::ErrorKind::InvalidInput`]. The reason
/// phrase comes from [`reason_phrase`].
///
/// ```
/// use dstar::response;
///
/// let mut out = Vec::new();
/// response::write_response(&mut out, 201, "application/json", b"{}", false)?;
/// assert!(out.starts_with(b"HTTP/1.1 201 Created\r\n"));
/// assert!(out.ends_with(b"Connection: close\r\n\r\n{}"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_response<W: Write + ?Sized>(
    writer: &mut W,
    status: u16,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> io::Result<()> {
    if !(100..=999).contains(&status) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{status} is not a three-digit status code"),
        ));
    }
    // A line break here would let the caller's data start a header of its own.
    if content_type.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "content type contains a line break",
        ));
    }
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\n\
         Content-Type: {content_type}\r\n\
         Content-Length: {length}\r\n\
         Connection: {connection}\r\n\
         \r\n",
        reason = reason_phrase(status),
        length = body.len(),
    );
    // One buffer, one write: no small segments for Nagle's algorithm to hold back.
    let mut message = Vec::with_capacity(head.len() + body.len());
    message.extend_from_slice(head.as_bytes());
    message.extend_from_slice(body);
    writer.write_all(&message)?;
    writer.flush()
}

/// Writes `200 OK` with an HTML page.
pub fn write_html<W: Write + ?Sized>(
    writer: &mut W,
    html: &str,
    keep_alive: bool,
) -> io::Result<()> {
    write_response(
        writer,
        200,
        "text/html; charset=utf-8",
        html.as_bytes(),
        keep_alive,
    )
}

/// Writes a plain-text response with the given status.
///
/// ```
/// use dstar::response;
///
/// let mut out = Vec::new();
/// response::write_text(&mut out, 503, "try again later", false)?;
/// assert!(out.starts_with(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_text<W: Write + ?Sized>(
    writer: &mut W,
    status: u16,
    text: &str,
    keep_alive: bool,
) -> io::Result<()> {
    write_response(
        writer,
        status,
        "text/plain; charset=utf-8",
        text.as_bytes(),
        keep_alive,
    )
}

/// Writes `404 Not Found` with a short plain-text body.
pub fn write_not_found<W: Write + ?Sized>(writer: &mut W, keep_alive: bool) -> io::Result<()> {
    write_text(writer, 404, "404 Not Found\n", keep_alive)
}

/// Writes the answer to a request that could not be read or used: its status, and the error's
/// message as a plain-text body so the client's developer can see what was wrong.
///
/// The response always says `Connection: close`: after a failed read the connection's framing
/// cannot be trusted, so close it once this is written. When the client may still be sending a
/// body the server refused (a 413, say), closing with unread data can make the operating system
/// reset the connection before the client reads the answer; calling
/// [`TcpStream::shutdown`](std::net::TcpStream::shutdown) for writing and reading until end of
/// stream, briefly, gives the answer a better chance.
///
/// ```
/// use dstar::{request::Request, response};
///
/// let err = Request::parse(b"GET / HTTP/1.1\r\n\r\n").unwrap_err();
/// let mut out = Vec::new();
/// response::write_error(&mut out, &err)?;
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     "HTTP/1.1 400 Bad Request\r\n\
///      Content-Type: text/plain; charset=utf-8\r\n\
///      Content-Length: 53\r\n\
///      Connection: close\r\n\
///      \r\n\
///      400 Bad Request: HTTP/1.1 request has no Host header\n",
/// );
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_error<W: Write + ?Sized>(writer: &mut W, error: &RequestError) -> io::Result<()> {
    let status = error.status();
    let text = format!("{status} {}: {error}\n", reason_phrase(status));
    write_text(writer, status, &text, false)
}

/// The standard reason phrase for a status code, or `""` for codes without one here.
///
/// ```
/// assert_eq!(dstar::response::reason_phrase(431), "Request Header Fields Too Large");
/// ```
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_closes_when_asked() {
        let mut out = Vec::new();
        write_not_found(&mut out, false).unwrap();
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\n\
              Content-Type: text/plain; charset=utf-8\r\n\
              Content-Length: 14\r\n\
              Connection: close\r\n\
              \r\n\
              404 Not Found\n"
        );
    }

    #[test]
    fn refuses_header_injection_and_bad_statuses() {
        let mut out = Vec::new();
        let err =
            write_response(&mut out, 200, "text/html\r\nSet-Cookie: x", b"", true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = write_response(&mut out, 42, "text/plain", b"", true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(out.is_empty());
    }

    #[test]
    fn unknown_statuses_have_an_empty_reason() {
        let mut out = Vec::new();
        write_text(&mut out, 299, "", true).unwrap();
        assert!(out.starts_with(b"HTTP/1.1 299 \r\n"));
    }

    #[test]
    fn every_error_kind_has_a_reason_phrase() {
        use crate::request::ErrorKind::*;
        for kind in [
            MalformedHead,
            BadHost,
            BadContentLength,
            BadTransferEncoding,
            BadChunk,
            Incomplete,
            Io,
            BadSignals,
            Timeout,
            BodyTooLarge,
            ExpectationFailed,
            HeadTooLarge,
            TooManyHeaders,
            UnsupportedTransferEncoding,
            UnsupportedVersion,
        ] {
            assert!(!reason_phrase(kind.status()).is_empty(), "{kind:?}");
        }
    }
}

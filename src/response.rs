//! Plain, complete HTTP responses: pages, text, 404s, and answers to requests that failed.
//!
//! Event streams have their own writer; these helpers are for everything around them — the page
//! that loads the Datastar client, a health check, an error. Each response is written with one
//! `write_all` call and carries `Content-Length` (but for 204 and 304, which have no content),
//! `Date` and `Connection`. Pass the
//! [`Request`] you are answering (see [`Reply`]): the connection then stays open if it asked
//! for that, and a `HEAD` request gets the head without the body. Close the connection after
//! writing when [`Request::keep_alive`] is `false`.
//!
//! ```
//! use dstar::{Request, response, testing};
//!
//! let request = Request::parse(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")?;
//! let mut out = Vec::new();
//! response::write_html(&mut out, "<h1>Hi</h1>", &request)?;
//!
//! let response = testing::decode_response(&out)?;
//! assert_eq!(response.status, 200);
//! assert_eq!(response.header("content-type"), Some("text/html; charset=utf-8"));
//! assert_eq!(response.header("connection"), Some("keep-alive"));
//! assert_eq!(response.body, b"<h1>Hi</h1>");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, Write};

use std::time::SystemTime;

pub use crate::http::reason_phrase;

use crate::http;
use crate::request::{Request, RequestError};

/// How to answer one request: whether the connection stays open after the
/// response, and whether the request was `HEAD`, whose answer carries the
/// headers of the response but no body (RFC 9110 §9.3.2).
///
/// Every function here takes `impl Into<Reply>`: pass the [`Request`] to
/// answer it as it asked, or [`Reply::keep_alive`] / [`Reply::close`] for a
/// request read some other way, to say only whether the connection stays
/// open.
///
/// ```
/// use dstar::{Request, response};
///
/// let head = Request::parse(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")?;
/// let mut out = Vec::new();
/// response::write_html(&mut out, "<h1>Hi</h1>", &head)?;
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.contains("Content-Length: 11\r\n"));
/// assert!(text.ends_with("\r\n\r\n"), "no body after the head");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    keep_alive: bool,
    head: bool,
}

impl Reply {
    /// A reply with its body, after which the connection stays open for the
    /// next request (`Connection: keep-alive`).
    ///
    /// ```
    /// use dstar::response::{self, Reply};
    ///
    /// let mut out = Vec::new();
    /// response::write_text(&mut out, 200, "ok", Reply::keep_alive())?;
    /// assert!(String::from_utf8(out).unwrap().contains("\r\nConnection: keep-alive\r\n"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn keep_alive() -> Self {
        Reply {
            keep_alive: true,
            head: false,
        }
    }

    /// A reply with its body, after which the server closes the connection
    /// (`Connection: close`).
    ///
    /// ```
    /// use dstar::response::{self, Reply};
    ///
    /// let mut out = Vec::new();
    /// response::write_text(&mut out, 200, "bye", Reply::close())?;
    /// assert!(String::from_utf8(out).unwrap().contains("\r\nConnection: close\r\n"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn close() -> Self {
        Reply {
            keep_alive: false,
            head: false,
        }
    }
}

impl From<&Request> for Reply {
    /// The reply `request` asked for: kept alive as its version and
    /// `Connection` header say, without a body if it was `HEAD`.
    fn from(request: &Request) -> Self {
        Reply {
            keep_alive: request.keep_alive(),
            head: request.method() == "HEAD",
        }
    }
}

/// Writes a complete response with the given status, content type and body.
///
/// The response says how long the body is (`Content-Length`), when it was
/// made (`Date`), and whether the connection stays open (`Connection`); the
/// body is left out for a `HEAD` request. The reason phrase comes from
/// [`reason_phrase`].
///
/// Nothing is written, and the error is [`io::ErrorKind::InvalidInput`],
/// when the status is not a three-digit code, when it is an interim 1xx
/// (those only precede a final response), when the content type contains a
/// control character, or when `body` is not empty for a status that has no
/// content: 204, 205 and 304 (RFC 9110 §15.3.5, §15.3.6, §15.4.5). A body
/// written after them would be read as the start of the next response on a
/// kept-alive connection, so it is refused rather than dropped unseen.
///
/// 204 and 304 are written without `Content-Type` and `Content-Length`, as
/// RFC 9110 §8.6 and §15.4.5 ask: their end is the end of the head
/// (RFC 9112 §6.3). 205 says `Content-Length: 0`, since a client would
/// otherwise read its body until the connection closes.
///
/// ```
/// use dstar::response::{self, Reply};
///
/// let mut out = Vec::new();
/// response::write_response(&mut out, 201, "application/json", b"{}", Reply::close())?;
/// assert!(out.starts_with(b"HTTP/1.1 201 Created\r\n"));
/// assert!(out.windows(19).any(|line| line == b"Connection: close\r\n"));
/// assert!(out.ends_with(b"\r\n\r\n{}"));
///
/// let mut out = Vec::new();
/// response::write_response(&mut out, 304, "text/html", b"", Reply::keep_alive())?;
/// let head = String::from_utf8(out).unwrap();
/// assert!(head.starts_with("HTTP/1.1 304 Not Modified\r\n"));
/// assert!(!head.contains("Content-Length") && !head.contains("Content-Type"));
///
/// let mut out = Vec::new();
/// let refused = response::write_response(&mut out, 204, "text/plain", b"x", Reply::close());
/// assert_eq!(refused.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
/// assert!(out.is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_response<W: Write + ?Sized>(
    writer: &mut W,
    status: u16,
    content_type: &str,
    body: &[u8],
    reply: impl Into<Reply>,
) -> io::Result<()> {
    let reply = reply.into();
    if !(100..=999).contains(&status) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{status} is not a three-digit status code"),
        ));
    }
    if http::is_informational(status) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{status} is an interim response, not one that answers a request"),
        ));
    }
    if http::forbids_content(status) && !body.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a {status} response has no content, but a {}-byte body was given",
                body.len()
            ),
        ));
    }
    // A line break here would let the caller's data start a header of its own.
    if content_type
        .bytes()
        .any(|b| b < 0x20 && b != b'\t' || b == 0x7f)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "content type contains a control character",
        ));
    }
    let connection = if reply.keep_alive {
        "keep-alive"
    } else {
        "close"
    };
    // One buffer, one write: no small segments for Nagle's algorithm to hold back.
    let mut message = Vec::with_capacity(160 + body.len());
    message
        .extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).as_bytes());
    // 204 and 304 end with their head (RFC 9112 §6.3): no length, and no type for content that
    // is not there.
    if !matches!(status, 204 | 304) {
        message.extend_from_slice(
            format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                body.len()
            )
            .as_bytes(),
        );
    }
    message.extend_from_slice(format!("Connection: {connection}\r\nDate: ").as_bytes());
    http::push_http_date(&mut message, SystemTime::now());
    message.extend_from_slice(b"\r\n\r\n");
    if !reply.head {
        message.extend_from_slice(body);
    }
    writer.write_all(&message)?;
    writer.flush()
}

/// Writes `200 OK` with an HTML page.
pub fn write_html<W: Write + ?Sized>(
    writer: &mut W,
    html: &str,
    reply: impl Into<Reply>,
) -> io::Result<()> {
    write_response(
        writer,
        200,
        "text/html; charset=utf-8",
        html.as_bytes(),
        reply,
    )
}

/// Writes a plain-text response with the given status.
///
/// ```
/// use dstar::response::{self, Reply};
///
/// let mut out = Vec::new();
/// response::write_text(&mut out, 503, "try again later", Reply::close())?;
/// assert!(out.starts_with(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_text<W: Write + ?Sized>(
    writer: &mut W,
    status: u16,
    text: &str,
    reply: impl Into<Reply>,
) -> io::Result<()> {
    write_response(
        writer,
        status,
        "text/plain; charset=utf-8",
        text.as_bytes(),
        reply,
    )
}

/// Writes `404 Not Found` with a short plain-text body.
pub fn write_not_found<W: Write + ?Sized>(
    writer: &mut W,
    reply: impl Into<Reply>,
) -> io::Result<()> {
    write_text(writer, 404, "404 Not Found\n", reply)
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
///
/// let response = dstar::testing::decode_response(&out)?;
/// assert_eq!((response.status, response.reason.as_str()), (400, "Bad Request"));
/// assert_eq!(response.header("connection"), Some("close"));
/// assert_eq!(response.body, b"400 Bad Request: HTTP/1.1 request has no Host header\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_error<W: Write + ?Sized>(writer: &mut W, error: &RequestError) -> io::Result<()> {
    let status = error.status();
    let text = format!("{status} {}: {error}\n", reason_phrase(status));
    write_text(writer, status, &text, Reply::close())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The response without its `Date` line, which changes every second.
    fn undated(out: &[u8]) -> String {
        let text = String::from_utf8(out.to_vec()).unwrap();
        let start = text.find("Date: ").expect("a Date header");
        let end = start + text[start..].find("\r\n").unwrap() + 2;
        assert_eq!(end - start, "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n".len());
        format!("{}{}", &text[..start], &text[end..])
    }

    #[test]
    fn not_found_closes_when_asked() {
        let mut out = Vec::new();
        write_not_found(&mut out, Reply::close()).unwrap();
        assert_eq!(
            undated(&out),
            "HTTP/1.1 404 Not Found\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 14\r\n\
             Connection: close\r\n\
             \r\n\
             404 Not Found\n"
        );
    }

    #[test]
    fn head_requests_get_the_head_without_the_body() {
        for (request, keep_alive) in [
            (&b"HEAD /page HTTP/1.1\r\nHost: x\r\n\r\n"[..], "keep-alive"),
            (b"HEAD /page HTTP/1.0\r\n\r\n", "close"),
        ] {
            let request = Request::parse(request).unwrap();
            let mut out = Vec::new();
            write_html(&mut out, "<p>page</p>", &request).unwrap();
            assert_eq!(
                undated(&out),
                format!(
                    "HTTP/1.1 200 OK\r\n\
                     Content-Type: text/html; charset=utf-8\r\n\
                     Content-Length: 11\r\n\
                     Connection: {keep_alive}\r\n\
                     \r\n"
                )
            );
        }
        let get = Request::parse(b"GET /page HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = Vec::new();
        write_not_found(&mut out, &get).unwrap();
        assert!(out.ends_with(b"\r\n\r\n404 Not Found\n"));
    }

    #[test]
    fn refuses_header_injection_and_bad_statuses() {
        let mut out = Vec::new();
        for content_type in ["text/html\r\nSet-Cookie: x", "text/html\n", "text/\0html"] {
            let err =
                write_response(&mut out, 200, content_type, b"", Reply::keep_alive()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        let err = write_response(&mut out, 42, "text/plain", b"", Reply::keep_alive()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(out.is_empty());
    }

    #[test]
    fn unknown_statuses_have_an_empty_reason() {
        let mut out = Vec::new();
        write_text(&mut out, 299, "", Reply::keep_alive()).unwrap();
        assert!(out.starts_with(b"HTTP/1.1 299 \r\n"));
    }

    #[test]
    fn every_error_kind_has_a_reason_phrase() {
        use crate::request::RequestErrorKind::*;
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

    #[test]
    fn interim_statuses_are_refused() {
        for status in [100, 101, 102, 103, 150, 199] {
            let mut out = Vec::new();
            for reply in [Reply::keep_alive(), Reply::close()] {
                let err = write_response(&mut out, status, "text/plain", b"", reply).unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{status}");
            }
            let err = write_text(&mut out, status, "hi", Reply::close()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{status}");
            assert!(out.is_empty(), "{status}: nothing written");
        }
    }

    #[test]
    fn statuses_without_content_frame_nothing_after_the_head() {
        // (status, the framing lines the head must carry, the ones it must not)
        let cases: &[(u16, &[&str], &[&str])] = &[
            (204, &[], &["Content-Length", "Content-Type"]),
            (304, &[], &["Content-Length", "Content-Type"]),
            (205, &["Content-Length: 0\r\n"], &[]),
            (
                200,
                &["Content-Length: 0\r\n", "Content-Type: text/plain\r\n"],
                &[],
            ),
        ];
        for &(status, present, absent) in cases {
            let mut out = Vec::new();
            write_response(&mut out, status, "text/plain", b"", Reply::keep_alive()).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
            assert!(text.contains("\r\nConnection: keep-alive\r\n"), "{text}");
            assert!(text.ends_with("\r\n\r\n"), "{status}: ends with its head");
            for line in present {
                assert!(text.contains(line), "{status}: {line:?} in {text:?}");
            }
            for name in absent {
                assert!(!text.contains(name), "{status}: no {name} in {text:?}");
            }
        }
    }

    #[test]
    fn a_body_for_a_status_without_content_is_refused() {
        for status in [204, 205, 304] {
            let mut out = Vec::new();
            let err = write_response(&mut out, status, "text/plain", b"x", Reply::keep_alive())
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{status}");
            let err = write_text(&mut out, status, "gone", Reply::close()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{status}");
            assert!(out.is_empty(), "{status}: nothing written");
        }
    }

    #[test]
    fn a_kept_alive_connection_stays_in_step_after_a_response_without_content() {
        // What a client reads: each response parsed where the previous one ended (RFC 9112 §6.3).
        for status in [204, 205, 304] {
            let mut wire = Vec::new();
            write_response(&mut wire, status, "text/html", b"", Reply::keep_alive()).unwrap();
            write_text(&mut wire, 200, "next", Reply::keep_alive()).unwrap();

            let mut headers = [httparse::EMPTY_HEADER; 8];
            let mut first = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(end) = first.parse(&wire).unwrap() else {
                panic!("{status}: incomplete head");
            };
            assert_eq!(first.code, Some(status));
            let length = first
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map_or(0, |h| {
                    std::str::from_utf8(h.value).unwrap().parse().unwrap()
                });
            assert_eq!(length, 0, "{status}");

            let mut headers = [httparse::EMPTY_HEADER; 8];
            let mut second = httparse::Response::new(&mut headers);
            let parsed = second.parse(&wire[end + length..]).unwrap();
            assert!(parsed.is_complete(), "{status}");
            assert_eq!(
                second.code,
                Some(200),
                "{status}: the next response starts in step"
            );
            assert!(wire.ends_with(b"\r\n\r\nnext"));
        }
    }

    #[test]
    fn head_requests_and_statuses_without_content() {
        let head = Request::parse(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = Vec::new();
        write_response(&mut out, 304, "text/html", b"", &head).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 304 Not Modified\r\n"));
        assert!(!text.contains("Content-Length"));
        assert!(text.ends_with("\r\n\r\n"));
    }
}

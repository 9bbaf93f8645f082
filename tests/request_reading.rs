//! Table-driven tests of request reading: which requests are accepted, what they read as, and
//! which are refused with what status. Every case runs with several read sizes, from one byte
//! per read to everything at once, since a stream may split a request anywhere.

use std::io::{self, Cursor, Read, Write};
use std::time::Duration;

use dstar::request::{Limits, Request, RequestError, RequestErrorKind, RequestReader, Version};

/// An in-memory connection that hands out at most `chunk` bytes per read and records writes.
struct Connection {
    input: Cursor<Vec<u8>>,
    chunk: usize,
    written: Vec<u8>,
}

impl Connection {
    fn new(input: &[u8], chunk: usize) -> Self {
        Connection {
            input: Cursor::new(input.to_vec()),
            chunk,
            written: Vec::new(),
        }
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.chunk);
        self.input.read(&mut buf[..n])
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const READ_SIZES: [usize; 4] = [1, 3, 17, usize::MAX];

/// Reads the first request of `input` at every read size, checking they all agree.
fn read_first(input: &[u8], limits: Limits) -> Result<Request, RequestError> {
    let mut results = READ_SIZES.iter().map(|&chunk| {
        RequestReader::with_limits(Connection::new(input, chunk), limits)
            .next_request()
            .and_then(|request| {
                request.ok_or_else(|| panic!("no request in {:?}", String::from_utf8_lossy(input)))
            })
    });
    let first = results.next().expect("at least one read size");
    for other in results {
        match (&first, &other) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.target(), b.target());
                assert_eq!(a.body(), b.body());
            }
            (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind(), "{a} / {b}"),
            (a, b) => panic!("read sizes disagree: {a:?} / {b:?}"),
        }
    }
    first
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A request that must be accepted, and what it must read as.
struct Valid {
    input: &'static [u8],
    method: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    body: &'static [u8],
    keep_alive: bool,
}

/// The expectations most cases share; each case overrides what differs.
const ROOT: Valid = Valid {
    input: b"",
    method: "GET",
    path: "/",
    query: None,
    body: b"",
    keep_alive: true,
};

#[test]
fn valid_requests() {
    let cases = [
        Valid {
            input: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            ..ROOT
        },
        Valid {
            input: b"GET /a/b?c=d&e HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
            path: "/a/b",
            query: Some("c=d&e"),
            ..ROOT
        },
        // RFC 9112 §2.2: blank lines before the request line are ignored...
        Valid {
            input: b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
            ..ROOT
        },
        // ...and a bare LF may end a line of the head.
        Valid {
            input: b"GET /lf HTTP/1.1\nHost: x\n\n",
            path: "/lf",
            ..ROOT
        },
        Valid {
            input: b"GET /mixed HTTP/1.1\r\nHost: x\n\r\n",
            path: "/mixed",
            ..ROOT
        },
        // HTTP/1.0 needs no Host, and closes unless asked not to.
        Valid {
            input: b"GET / HTTP/1.0\r\n\r\n",
            keep_alive: false,
            ..ROOT
        },
        Valid {
            input: b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            ..ROOT
        },
        Valid {
            input: b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, CLOSE\r\n\r\n",
            keep_alive: false,
            ..ROOT
        },
        Valid {
            input: b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            method: "POST",
            path: "/form",
            body: b"hello",
            ..ROOT
        },
        Valid {
            input: b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 007\r\n\r\n1234567",
            method: "POST",
            body: b"1234567",
            ..ROOT
        },
        Valid {
            input: b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            method: "POST",
            ..ROOT
        },
        Valid {
            input: b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                     5;ext=1;quoted=\"a b\"\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n",
            method: "POST",
            body: b"hello world",
            ..ROOT
        },
        // Codings are case-insensitive, and empty list elements mean nothing.
        Valid {
            input: b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , CHUNKED\r\n\r\n0\r\n\r\n",
            method: "PUT",
            ..ROOT
        },
        Valid {
            input: b"GET http://example.com/abs?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
            path: "/abs",
            query: Some("q=1"),
            ..ROOT
        },
        Valid {
            input: b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
            method: "OPTIONS",
            path: "*",
            ..ROOT
        },
        // Methods are case-sensitive tokens; routing decides what `get` means.
        Valid {
            input: b"get / HTTP/1.1\r\nHost: x\r\n\r\n",
            method: "get",
            ..ROOT
        },
        Valid {
            input: b"GET / HTTP/1.1\r\nHost: x\r\nX-Latin1: caf\xe9\r\n\r\n",
            ..ROOT
        },
        // An empty Host is what a client sends when the target has no authority.
        Valid {
            input: b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
            ..ROOT
        },
        Valid {
            input: b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
            ..ROOT
        },
    ];
    for case in cases {
        let input = case.input;
        let request = read_first(input, Limits::default())
            .unwrap_or_else(|err| panic!("{:?} refused: {err}", text(input)));
        assert_eq!(request.method(), case.method, "{:?}", text(input));
        assert_eq!(request.path(), case.path, "{:?}", text(input));
        assert_eq!(request.query(), case.query, "{:?}", text(input));
        assert_eq!(request.body(), case.body, "{:?}", text(input));
        assert_eq!(request.keep_alive(), case.keep_alive, "{:?}", text(input));
    }
}

#[test]
fn invalid_requests() {
    let huge_head = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
        "a".repeat(70_000)
    );
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
        "X: y\r\n".repeat(100)
    );
    let big_body = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        1024 * 1024 + 1
    );
    let big_chunk = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        1024 * 1024 + 1
    );
    let chunked = |body: &str| {
        format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{body}")
    };

    // (input, kind): the status follows from the kind, and is checked too.
    let cases: Vec<(Vec<u8>, RequestErrorKind)> = vec![
        // Truncated heads.
        (b"G".to_vec(), RequestErrorKind::Incomplete),
        (b"GET / HT".to_vec(), RequestErrorKind::Incomplete),
        (b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec(), RequestErrorKind::Incomplete),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r".to_vec(), RequestErrorKind::Incomplete),
        // Malformed heads.
        (b"GET / HTTP/1.1\rHost: x\r\n\r\n".to_vec(), RequestErrorKind::MalformedHead),
        (b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), RequestErrorKind::MalformedHead),
        (b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), RequestErrorKind::MalformedHead),
        (b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), RequestErrorKind::MalformedHead),
        (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n".to_vec(), RequestErrorKind::MalformedHead),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n".to_vec(), RequestErrorKind::MalformedHead),
        (b"GET / HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n".to_vec(), RequestErrorKind::MalformedHead),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), RequestErrorKind::MalformedHead),
        // Obsolete line folding.
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n".to_vec(), RequestErrorKind::MalformedHead),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n\tb\r\n\r\n".to_vec(), RequestErrorKind::MalformedHead),
        (b"GET / HTTP/1.1\r\n Host: x\r\n\r\n".to_vec(), RequestErrorKind::MalformedHead),
        // Versions.
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n".to_vec(), RequestErrorKind::UnsupportedVersion),
        (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n".to_vec(), RequestErrorKind::UnsupportedVersion),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), RequestErrorKind::UnsupportedVersion),
        (b"GET / HTTP/1\r\nHost: x\r\n\r\n".to_vec(), RequestErrorKind::MalformedHead),
        (b"GET /\r\n\r\n".to_vec(), RequestErrorKind::MalformedHead),
        // Host (RFC 9112 §3.2).
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), RequestErrorKind::BadHost),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), RequestErrorKind::BadHost),
        (b"GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n".to_vec(), RequestErrorKind::BadHost),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n".to_vec(), RequestErrorKind::BadHost),
        (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n".to_vec(), RequestErrorKind::BadHost),
        (b"GET / HTTP/1.1\r\nHost: a@b\r\n\r\n".to_vec(), RequestErrorKind::BadHost),
        // Size limits.
        (huge_head.into_bytes(), RequestErrorKind::HeadTooLarge),
        (vec![b'a'; 100_000], RequestErrorKind::HeadTooLarge),
        (many_headers.into_bytes(), RequestErrorKind::TooManyHeaders),
        (big_body.into_bytes(), RequestErrorKind::BodyTooLarge),
        (big_chunk.into_bytes(), RequestErrorKind::BodyTooLarge),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999999\r\n\r\n"
                .to_vec(),
            RequestErrorKind::BodyTooLarge,
        ),
        // Content-Length.
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"
                .to_vec(),
            RequestErrorKind::BadContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
                .to_vec(),
            RequestErrorKind::BadContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello".to_vec(),
            RequestErrorKind::BadContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello".to_vec(),
            RequestErrorKind::BadContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
            RequestErrorKind::BadContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello".to_vec(),
            RequestErrorKind::BadContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5 5\r\n\r\nhello".to_vec(),
            RequestErrorKind::BadContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n".to_vec(),
            RequestErrorKind::BadContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nshort".to_vec(),
            RequestErrorKind::Incomplete,
        ),
        // Transfer-Encoding (RFC 9112 §6.1, §6.3).
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .to_vec(),
            RequestErrorKind::BadTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
                .to_vec(),
            RequestErrorKind::BadTransferEncoding,
        ),
        (
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            RequestErrorKind::BadTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
            RequestErrorKind::BadTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n".to_vec(),
            RequestErrorKind::BadTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n".to_vec(),
            RequestErrorKind::BadTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec(),
            RequestErrorKind::BadTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;q=1\r\n\r\n".to_vec(),
            RequestErrorKind::BadTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n".to_vec(),
            RequestErrorKind::BadTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunk\"ed\r\n\r\n".to_vec(),
            RequestErrorKind::BadTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(),
            RequestErrorKind::UnsupportedTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec(),
            RequestErrorKind::UnsupportedTransferEncoding,
        ),
        // Chunked framing: sizes.
        (chunked("zz\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked("\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked(" 5\r\nhello\r\n0\r\n\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked("5 \r\nhello\r\n0\r\n\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked("-5\r\nhello\r\n0\r\n\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked("0x5\r\nhello\r\n0\r\n\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked("5g\r\nhello\r\n0\r\n\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked("10000000000000000\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked("ffffffffffffffff\r\n").into_bytes(), RequestErrorKind::BodyTooLarge),
        // Chunked framing: line endings.
        (chunked("5\nhello\r\n0\r\n\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked("5\rhello\r\n0\r\n\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked("5\r\nhelloX\r\n0\r\n\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked("5\r\nhello\n0\r\n\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked("5\r\nhello\r\n0\r\n\n").into_bytes(), RequestErrorKind::BadChunk),
        // Chunked framing: extensions.
        (chunked("5;\r\nhello\r\n0\r\n\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked("5;=x\r\nhello\r\n0\r\n\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked("5;a=\r\nhello\r\n0\r\n\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked("5;a=\"x\r\nhello\r\n0\r\n\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked("5;a=b c\r\nhello\r\n0\r\n\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked("5;a\x00\r\nhello\r\n0\r\n\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (
            chunked(&format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(70_000))).into_bytes(),
            RequestErrorKind::BodyTooLarge,
        ),
        // Chunked framing: trailers.
        (chunked("0\r\nX: y\r\n folded\r\n\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (chunked("0\r\nno colon\r\n\r\n").into_bytes(), RequestErrorKind::BadChunk),
        (
            chunked(&format!("0\r\n{}\r\n", "T: aaaaaaaaaa\r\n".repeat(5000))).into_bytes(),
            RequestErrorKind::HeadTooLarge,
        ),
        (chunked("5\r\nhel").into_bytes(), RequestErrorKind::Incomplete),
        (chunked("5\r\nhello\r\n0\r\n").into_bytes(), RequestErrorKind::Incomplete),
        // Expectations.
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx".to_vec(),
            RequestErrorKind::ExpectationFailed,
        ),
    ];
    for (input, kind) in cases {
        let err = match read_first(&input, Limits::default()) {
            Ok(request) => panic!("{:?} accepted as {request:?}", text(&input)),
            Err(err) => err,
        };
        assert_eq!(
            err.kind(),
            kind,
            "{:?}: {err}",
            text(&input[..input.len().min(200)])
        );
        assert_eq!(err.status(), kind.status());
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn statuses_follow_the_kind() {
    let statuses = [
        (RequestErrorKind::MalformedHead, 400),
        (RequestErrorKind::BadHost, 400),
        (RequestErrorKind::BadContentLength, 400),
        (RequestErrorKind::BadTransferEncoding, 400),
        (RequestErrorKind::BadChunk, 400),
        (RequestErrorKind::Incomplete, 400),
        (RequestErrorKind::Io, 400),
        (RequestErrorKind::BadSignals, 400),
        (RequestErrorKind::Timeout, 408),
        (RequestErrorKind::BodyTooLarge, 413),
        (RequestErrorKind::ExpectationFailed, 417),
        (RequestErrorKind::HeadTooLarge, 431),
        (RequestErrorKind::TooManyHeaders, 431),
        (RequestErrorKind::UnsupportedTransferEncoding, 501),
        (RequestErrorKind::UnsupportedVersion, 505),
    ];
    for (kind, status) in statuses {
        assert_eq!(kind.status(), status, "{kind:?}");
    }
}

#[test]
fn error_messages_say_what_went_wrong() {
    let cases: &[(&[u8], &str)] = &[
        (b"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 request has no Host header"),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            "request has 2 Host headers",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n",
            "Content-Length \"1e3\" is not a decimal number",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",
            "Content-Length 2000000 is larger than the 1048576-byte limit",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "request has both Transfer-Encoding and Content-Length",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: br, chunked\r\n\r\n",
            "transfer coding \"br\" is not supported, only chunked",
        ),
        (
            b"GET / HTTP/3.0\r\n\r\n",
            "HTTP/3.0 is not supported, only HTTP/1.0 and HTTP/1.1",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
            "malformed request head: invalid header name",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
            "connection closed after 3 of 10 body bytes",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello",
            "bare LF in chunked framing",
        ),
    ];
    for &(input, message) in cases {
        let err = Request::parse(input).unwrap_err();
        assert_eq!(err.to_string(), message, "{:?}", text(input));
    }
}

#[test]
fn pipelined_requests_are_read_one_after_another() {
    let input = b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n\
                  POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
                  \r\n\
                  PUT /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n\
                  DELETE /4?datastar=%7B%7D HTTP/1.1\r\nHost: x\r\n\r\n\
                  GET /5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n\
                  GET /never HTTP/1.1\r\nHost: x\r\n\r\n";
    for chunk in READ_SIZES {
        let mut reader = RequestReader::new(Connection::new(input, chunk));
        let mut seen = Vec::new();
        while let Some(request) = reader.next_request().unwrap() {
            seen.push((
                request.method().to_owned(),
                request.path().to_owned(),
                request.into_body(),
            ));
        }
        let expected: Vec<(String, String, Vec<u8>)> = vec![
            ("GET".into(), "/1".into(), b"".to_vec()),
            ("POST".into(), "/2".into(), b"abc".to_vec()),
            ("PUT".into(), "/3".into(), b"de".to_vec()),
            ("DELETE".into(), "/4".into(), b"".to_vec()),
            ("GET".into(), "/5".into(), b"".to_vec()),
        ];
        assert_eq!(seen, expected, "read size {chunk}");
        // `Connection: close` ended the conversation; the reader stays finished.
        assert!(reader.next_request().unwrap().is_none());
    }
}

#[test]
fn http_1_0_closes_after_one_request_unless_kept_alive() {
    let two = b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n";
    let mut reader = RequestReader::new(Connection::new(two, usize::MAX));
    assert_eq!(reader.next_request().unwrap().unwrap().path(), "/a");
    assert!(reader.next_request().unwrap().is_none());

    let kept = b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n";
    let mut reader = RequestReader::new(Connection::new(kept, usize::MAX));
    assert_eq!(reader.next_request().unwrap().unwrap().path(), "/a");
    assert_eq!(reader.next_request().unwrap().unwrap().path(), "/b");
    assert!(reader.next_request().unwrap().is_none());
}

#[test]
fn an_event_stream_to_http_1_0_ends_the_connection_even_if_kept_alive() {
    let kept = b"GET /feed HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n";
    let mut reader = RequestReader::new(Connection::new(kept, usize::MAX));
    let feed = reader.next_request().unwrap().unwrap();
    assert!(feed.keep_alive());
    let sse = dstar::SseResponse::for_request(&feed)
        .start(Vec::new())
        .unwrap();
    let head = String::from_utf8(sse.into_inner()).unwrap();
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    // The client reads the stream until the connection closes: nothing more is read from it.
    assert!(!feed.keep_alive());
    assert!(reader.next_request().unwrap().is_none());
    assert!(reader.next_request().unwrap().is_none());

    // A chunked stream to HTTP/1.1, finished, leaves the connection to the next request.
    let two = b"GET /feed HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut reader = RequestReader::new(Connection::new(two, usize::MAX));
    let feed = reader.next_request().unwrap().unwrap();
    let sse = dstar::SseResponse::for_request(&feed)
        .start(Vec::new())
        .unwrap();
    let head = String::from_utf8(sse.finish().unwrap()).unwrap();
    assert!(!head.contains("Connection"), "{head}");
    assert!(feed.keep_alive());
    assert_eq!(reader.next_request().unwrap().unwrap().path(), "/b");
}

#[test]
fn a_stream_to_a_client_that_asked_to_close_says_so() {
    let request = Request::parse(b"GET /feed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let request = request.unwrap();
    let sse = dstar::SseResponse::for_request(&request)
        .start(Vec::new())
        .unwrap();
    let response = dstar::testing::decode_response(&sse.finish().unwrap()).unwrap();
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert!(response.finished);
}

#[test]
fn a_request_marked_to_close_ends_the_reader() {
    let two = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut reader = RequestReader::new(Connection::new(two, usize::MAX));
    let first = reader.next_request().unwrap().unwrap();
    let copy = first.clone();
    copy.close_after_response();
    assert!(!first.keep_alive());
    let mut out = Vec::new();
    dstar::response::write_text(&mut out, 200, "bye", &first).unwrap();
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("Connection: close\r\n")
    );
    assert!(reader.next_request().unwrap().is_none());
}

#[test]
fn a_connection_ends_cleanly_between_requests() {
    for input in [&b""[..], b"\r\n", b"\r\n\r\n\n"] {
        let mut reader = RequestReader::new(Connection::new(input, 1));
        assert!(
            reader.next_request().unwrap().is_none(),
            "{:?}",
            text(input)
        );
    }
    // A request cut short is not a clean end.
    let mut reader =
        RequestReader::new(Connection::new(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET", 5));
    assert!(reader.next_request().unwrap().is_some());
    assert_eq!(
        reader.next_request().unwrap_err().kind(),
        RequestErrorKind::Incomplete
    );
    // After an error the reader is finished.
    assert!(reader.next_request().unwrap().is_none());
}

#[test]
fn buffered_shows_the_start_of_the_next_request() {
    let input = b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\n";
    let mut reader = RequestReader::new(Connection::new(input, usize::MAX));
    reader.next_request().unwrap().unwrap();
    assert_eq!(reader.buffered(), b"GET /2 HTTP/1.1\r\n");
    assert_eq!(reader.limits(), &Limits::default());
    let connection = reader.into_inner();
    assert!(connection.written.is_empty());
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let head =
        b"POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n";
    let mut input = head.to_vec();
    input.extend_from_slice(b"data");
    // One read returns exactly the head, as when the client waits before sending the body.
    let mut reader = RequestReader::new(Connection::new(&input, head.len()));
    let request = reader.next_request().unwrap().unwrap();
    assert_eq!(request.body(), b"data");
    assert_eq!(reader.get_ref().written, b"HTTP/1.1 100 Continue\r\n\r\n");

    // HTTP/1.0 clients never wait for it (RFC 9110 §10.1.1).
    let head = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    let mut input = head.to_vec();
    input.extend_from_slice(b"data");
    let mut reader = RequestReader::new(Connection::new(&input, head.len()));
    reader.next_request().unwrap().unwrap();
    assert!(reader.get_ref().written.is_empty());
}

#[test]
fn custom_limits_apply() {
    let limits = Limits::default().max_head(64).max_headers(2).max_body(4);
    let ok = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd";
    assert_eq!(read_first(ok, limits).unwrap().body(), b"abcd");

    let cases: &[(&[u8], RequestErrorKind)] = &[
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde", RequestErrorKind::BodyTooLarge),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            RequestErrorKind::BodyTooLarge,
        ),
        (b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n", RequestErrorKind::TooManyHeaders),
        (
            b"GET /a-path-long-enough-to-push-the-head-over-sixty-four-bytes HTTP/1.1\r\nHost: x\r\n\r\n",
            RequestErrorKind::HeadTooLarge,
        ),
    ];
    for &(input, kind) in cases {
        assert_eq!(
            read_first(input, limits).unwrap_err().kind(),
            kind,
            "{:?}",
            text(input)
        );
    }
}

#[test]
fn accessors() {
    let request = Request::parse(
        b"GET /events?id=7&name=a%20b+c&empty=&flag&%6Eame=second HTTP/1.1\r\n\
          Host: example.com\r\n\
          Datastar-Request: true\r\n\
          Last-Event-ID: 42\r\n\
          Accept: text/event-stream\r\n\
          X-Binary: \xff\r\n\
          \r\n",
    )
    .unwrap();
    assert_eq!(request.version(), Version::Http11);
    assert_eq!(request.version().to_string(), "HTTP/1.1");
    assert_eq!(
        request.target(),
        "/events?id=7&name=a%20b+c&empty=&flag&%6Eame=second"
    );
    assert_eq!(request.query_param("id").as_deref(), Some("7"));
    assert_eq!(
        request.query_param("name").as_deref(),
        Some("a b c"),
        "first one wins"
    );
    assert_eq!(request.query_param("empty").as_deref(), Some(""));
    assert_eq!(request.query_param("flag").as_deref(), Some(""));
    assert_eq!(request.query_param("nope"), None);
    assert_eq!(request.query_params().count(), 5);
    assert_eq!(request.header("ACCEPT"), Some("text/event-stream"));
    assert_eq!(request.header("x-binary"), None, "not UTF-8");
    assert_eq!(request.header_bytes("x-binary"), Some(&b"\xff"[..]));
    assert_eq!(request.headers().len(), 5);
    assert!(request.is_datastar_request());
    assert_eq!(request.last_event_id(), Some("42"));
    assert!(request.keep_alive());

    let plain =
        Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\nDatastar-Request: false\r\n\r\n").unwrap();
    assert!(!plain.is_datastar_request());
    assert_eq!(plain.last_event_id(), None);
    assert_eq!(plain.query(), None);
    assert_eq!(plain.query_params().count(), 0);

    let debug = format!("{request:?}");
    assert!(debug.contains("\"/events?id=7"), "{debug}");
    assert!(debug.contains("0 bytes"), "{debug}");
}

#[test]
fn signals_come_from_the_query_or_the_body() {
    let cases: &[(&[u8], Option<&str>)] = &[
        (b"GET /?datastar=%7B%22a%22%3A1%7D HTTP/1.1\r\nHost: x\r\n\r\n", Some(r#"{"a":1}"#)),
        (b"GET /?x=1&datastar={%22a%22:%20%22b+c%22} HTTP/1.1\r\nHost: x\r\n\r\n", Some(r#"{"a": "b c"}"#)),
        (b"DELETE /?datastar=%5B%5D HTTP/1.1\r\nHost: x\r\n\r\n", Some("[]")),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None),
        (b"GET /?datastar= HTTP/1.1\r\nHost: x\r\n\r\n", None),
        (b"GET /?datastar HTTP/1.1\r\nHost: x\r\n\r\n", None),
        // GET signals come from the query even when there is a body.
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", None),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"a\":1}", Some(r#"{"a":1}"#)),
        (b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", Some("{}")),
        (b"PATCH / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n \"\" ", Some(" \"\" ")),
        // Other methods read the body, not the query.
        (b"POST /?datastar=%7B%7D HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", None),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":2}\r\n0\r\n\r\n",
            Some(r#"{"a":2}"#),
        ),
    ];
    for &(input, expected) in cases {
        let request = Request::parse(input).unwrap();
        let signals = request
            .signals()
            .unwrap_or_else(|err| panic!("{:?}: {err}", text(input)));
        assert_eq!(signals.as_deref(), expected, "{:?}", text(input));
    }
}

#[test]
fn malformed_signals_are_refused_with_400() {
    let deep = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 256\r\n\r\n{}{}",
        "[".repeat(128),
        "]".repeat(128)
    );
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"GET /?datastar=%7B HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "signals are not valid JSON",
        ),
        (
            b"GET /?datastar=%7B%zz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "not followed by two hex digits",
        ),
        (
            b"GET /?datastar=%FF HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "not UTF-8",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{'a'}".to_vec(),
            "at byte 1",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n\xff\xfe".to_vec(),
            "not UTF-8",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n   ".to_vec(),
            "unexpected end of input",
        ),
        (deep.into_bytes(), "nesting deeper than 127 levels"),
    ];
    for (input, needle) in cases {
        let request = Request::parse(&input).unwrap();
        let err = request.signals().unwrap_err();
        assert_eq!(err.kind(), RequestErrorKind::BadSignals);
        assert_eq!(err.status(), 400);
        assert!(
            err.to_string().contains(needle),
            "{:?}: {err}",
            text(&input)
        );
    }
}

#[cfg(feature = "serde")]
#[test]
fn signals_deserialize_into_user_types() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Todo {
        title: String,
        done: bool,
    }

    let request =
        Request::parse(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 29\r\n\r\n{\"title\":\"write\",\"done\":true}")
            .unwrap();
    let todo: Option<Todo> = request.signals_as().unwrap();
    assert_eq!(
        todo,
        Some(Todo {
            title: "write".into(),
            done: true
        })
    );

    let empty = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(empty.signals_as::<Todo>().unwrap(), None);

    let wrong = Request::parse(b"GET /?datastar=%7B%22title%22%3A1%7D HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let err = wrong.signals_as::<Todo>().unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(
        err.to_string()
            .starts_with("signals do not have the expected shape"),
        "{err}"
    );
}

#[test]
fn request_read_takes_one_request_off_a_stream() {
    let mut stream = Connection::new(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n", 4);
    assert_eq!(Request::read(&mut stream).unwrap().path(), "/one");
    // Nothing left: closed before a request.
    let err = Request::read(&mut stream).unwrap_err();
    assert_eq!(err.kind(), RequestErrorKind::Incomplete);
}

#[test]
fn request_timeout_counts_from_the_first_byte() {
    // A reader that waits before each read: an idle wait before the request must not count.
    struct Slow(Connection, Duration);
    impl Read for Slow {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            std::thread::sleep(self.1);
            self.0.read(buf)
        }
    }
    impl Write for Slow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    let input = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let limits = Limits::default().request_timeout(Some(Duration::from_millis(60)));
    // The first read waits 30 ms before any byte; one read then brings the whole request.
    let slow = Slow(
        Connection::new(input, usize::MAX),
        Duration::from_millis(30),
    );
    assert!(
        RequestReader::with_limits(slow, limits)
            .next_request()
            .unwrap()
            .is_some()
    );

    // Dripped 4 bytes per 30 ms read, it overruns 60 ms.
    let slow = Slow(Connection::new(input, 4), Duration::from_millis(30));
    let err = RequestReader::with_limits(slow, limits)
        .next_request()
        .unwrap_err();
    assert_eq!(err.kind(), RequestErrorKind::Timeout);
    assert_eq!(err.status(), 408);
    assert!(err.to_string().contains("request timeout"), "{err}");
}

#[test]
#[allow(deprecated)]
fn the_old_error_kind_name_still_compiles() {
    // `request::ErrorKind` was renamed so it no longer shadows `std::io::ErrorKind`; the old
    // name stays as a deprecated alias, variants included.
    use dstar::request::ErrorKind;
    let err = Request::parse(b"GET / HTTP/1.1\r\n\r\n").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadHost);
    let kind: RequestErrorKind = ErrorKind::Timeout;
    assert_eq!(kind.status(), 408);
}

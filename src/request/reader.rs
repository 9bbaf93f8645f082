//! [`RequestReader`]: one connection's requests, read one after another — the state kept between
//! them, the read buffer, and the clock that bounds each request.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::error::is_timeout;
use super::head::{Framing, Head, has_blank_line, parse_head};
use super::{Limits, Request, RequestError, RequestErrorKind};
use crate::chunked::decode::{BODY_STEP, ChunkedDecoder, append_bounded};

/// How much of the read buffer to allocate at first; it grows by doubling up to `max_head`.
const INITIAL_BUFFER: usize = 8 * 1024;
/// The interim response that tells a client waiting on `Expect: 100-continue` to send its body.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Reads requests one after another from one connection.
///
/// The reader owns the stream and a buffer that carries bytes over from one request to the next,
/// so pipelined requests are not lost. Write each response to [`get_mut`](RequestReader::get_mut)
/// before asking for the next request, and stop when [`next_request`](RequestReader::next_request)
/// returns `Ok(None)` or an error. The [module documentation](crate::request) shows a complete server loop.
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
    pub(super) stream: S,
    pub(super) state: ConnectionState,
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

pub(super) fn send_continue<S: Write>(stream: &mut S) -> io::Result<()> {
    stream.write_all(CONTINUE)?;
    stream.flush()
}

/// What the next read produced.
pub(super) enum Next {
    Request(Request),
    /// The peer closed the connection between requests.
    Closed,
    /// The stream's read timeout fired before any byte of a request arrived.
    Idle,
}

/// Everything a connection keeps between requests, apart from the stream.
pub(super) struct ConnectionState {
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
    pub(super) fn new(limits: Limits) -> Self {
        ConnectionState {
            buffer: Buffer::default(),
            limits,
            finished: false,
            closing: None,
        }
    }

    pub(super) fn read_request<R: Read>(
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
                    RequestErrorKind::HeadTooLarge,
                    format!("request head is larger than the {max_head}-byte limit"),
                ));
            }
            clock.check()?;
            match self.buffer.fill(stream, max_head) {
                Ok(0) if self.buffer.is_blank() => return Ok(Err(Next::Closed)),
                Ok(0) => {
                    return Err(RequestError::new(
                        RequestErrorKind::Incomplete,
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
                        RequestErrorKind::Incomplete,
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
        let mut decoder = ChunkedDecoder::new(self.limits.max_body, self.limits.max_head);
        let mut body = Vec::new();
        loop {
            let used = decoder.decode(self.buffer.data(), &mut body)?;
            self.buffer.consume(used);
            if decoder.is_done() {
                return Ok(body);
            }
            if self.buffer.len() >= max_head {
                return Err(decoder.line_too_long().into());
            }
            clock.check()?;
            match self.buffer.fill(stream, max_head) {
                Ok(0) => {
                    return Err(RequestError::new(
                        RequestErrorKind::Incomplete,
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
                    RequestErrorKind::Timeout,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{json, percent};

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
        assert_eq!(err.kind(), RequestErrorKind::Timeout);
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

//! [`SseConnection`]: one SSE response, written straight into a blocking writer.
//!
//! The connection writes the HTTP/1.1 response head itself, then frames every
//! event as exactly one HTTP chunk. Events are formatted into a buffer that is
//! reused, and go to the writer in a single `write_all` followed by one
//! `flush`. Once the buffer has grown to fit, sending an event allocates
//! nothing, as long as events stay under 16 KiB: after a larger one the
//! buffer shrinks back to 16 KiB, so that ten thousand idle streams cost what
//! ordinary events need.
//!
//! # Closed state
//!
//! The first failed write or flush (any error from the writer) closes the
//! connection, and [`check_connection`](SseConnection::check_connection)
//! closes it when it sees that the peer has hung up. **Every later call
//! returns [`io::ErrorKind::NotConnected`] and writes nothing**; its inner
//! error is a [`Closed`] that says why. A write that fails part-way (a write
//! timeout, say) may have left part of an event on the wire; what holds is
//! that nothing follows it, so the client sees a stream cut short, never one
//! event spliced into another.
//!
//! # What each call returns
//!
//! The kind alone does not say what happened, since a writer may return
//! `NotConnected` or `InvalidInput` itself. Every error the connection
//! returns carries a typed inner error, which [`Error::of`] reads:
//!
//! | what happened | [`Error::of`] | [`kind`](io::Error::kind) | inner error (`get_ref`) | written | afterwards |
//! |---|---|---|---|---|---|
//! | an event type or id, a Datastar argument, a status or a header that would break the framing | [`Error::Refused`] | `InvalidInput` | [`Refused`] | nothing | open |
//! | the writer's `write` or `flush` failed (or the compressor's codec) | [`Error::WriteFailed`] with the writer's error | the writer's | the writer's error, wrapped (its [`source`](std::error::Error::source)) | possibly part of the queue | closed: [`Closed::WriteFailed`] with that kind |
//! | [`check_connection`](SseConnection::check_connection)'s probe found the peer gone | [`Error::PeerGone`] | `BrokenPipe` | a private type | nothing | closed: [`Closed::PeerHungUp`] |
//! | the probe itself failed | [`Error::WriteFailed`] | the probe's | the probe's error, wrapped | nothing | closed: [`Closed::WriteFailed`] |
//! | any call on a closed connection | [`Error::AlreadyClosed`] with the reason | `NotConnected` | [`Closed`] | nothing | closed |
//!
//! By call: [`send_event`](SseConnection::send_event),
//! [`send_all`](SseConnection::send_all),
//! [`queue_event`](SseConnection::queue_event) and the other sends return
//! `Ok(&mut self)` or any row; [`flush`](SseConnection::flush) and
//! [`finish`](SseConnection::finish) never refuse (rows 2 and 5);
//! [`check_connection`](SseConnection::check_connection) can return rows 2 to
//! 5; [`SseResponse::start`] returns rows 1 and 2 (and never a connection on
//! error). A `WouldBlock` or `TimedOut` from a socket with a write timeout is
//! a writer failure like any other. The one error that is none of these:
//! [`body_only_compressed`](SseConnection::body_only_compressed) returns
//! `Unsupported` for a coding this build lacks (no connection is made, and
//! [`Error::of`] says `None`).
//!
//! ```
//! use dstar::connection::Error;
//! use dstar::{Event, SseConnection};
//!
//! fn send(sse: &mut SseConnection<Vec<u8>>, text: &str) -> &'static str {
//!     let Err(err) = sse.send_event(Event::message(text)) else { return "sent" };
//!     match Error::of(&err) {
//!         Some(Error::Refused(_)) => "refused, still open",
//!         Some(Error::PeerGone | Error::WriteFailed(_)) => "the client is gone",
//!         Some(Error::AlreadyClosed(_)) => "stop calling",
//!         _ => "not from the connection",
//!     }
//! }
//! let mut sse = SseConnection::body_only(Vec::new());
//! assert_eq!(send(&mut sse, "hello"), "sent");
//! assert_eq!(send(&mut sse, "hello"), "sent");
//! ```
//!
//! # Dropping
//!
//! Dropping a connection that was not [finished](SseConnection::finish)
//! writes nothing, not even events that were queued but not flushed. The
//! chunked body is then left without its terminating chunk, so the client can
//! tell the stream was cut short rather than complete (an `EventSource`
//! reconnects either way). Close the socket afterwards: the client is still
//! waiting for the rest of that body, so the connection cannot carry another
//! request.

use std::fmt;
use std::io::{self, Write};

use crate::chunked;
use crate::compression::{self, Compression, Compressor, Encoding};
use crate::event::{self, Encode, FormattedEvent};

use compression::Failure as Fail;

pub use crate::error::{Closed, Error, Refused};
use crate::error::{PeerGone, WriteFailed};
pub use crate::probe::Probe;

mod head;

pub use head::SseResponse;

/// Once this much is queued, [`SseConnection::queue_event`] writes it out.
const MAX_QUEUED: usize = 8 * 1024;

/// After a write, a buffer that grew past this (for a very large event)
/// shrinks back to it: a hub may hold ten thousand idle streams, and each
/// should cost what an ordinary event needs, not its largest one. A queue
/// holds at most `MAX_QUEUED` plus one event, so bursts of events up to
/// `MAX_QUEUED` in size never reallocate.
const MAX_RETAINED: usize = 2 * MAX_QUEUED;

/// One SSE response, written into a blocking writer: a `TcpStream`, a
/// `&mut TcpStream`, or a `Vec<u8>` in a test.
///
/// ```
/// use dstar::{Event, SseConnection, SseResponse};
///
/// let mut sse = SseResponse::new().without_date().start(Vec::new())?;
/// sse.send_event(Event::new("greeting").data("hello"))?
///     .send_event(Event::new("greeting").data("two\nlines").id("2"))?;
/// let bytes = sse.finish()?;
///
/// assert_eq!(
///     String::from_utf8(bytes).unwrap(),
///     "HTTP/1.1 200 OK\r\n\
///      Content-Type: text/event-stream\r\n\
///      Cache-Control: no-cache\r\n\
///      Transfer-Encoding: chunked\r\n\
///      \r\n\
///      1d\r\nevent: greeting\ndata: hello\n\n\r\n\
///      2d\r\nevent: greeting\nid: 2\ndata: two\ndata: lines\n\n\r\n\
///      0\r\n\r\n"
/// );
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Chaining with `?`, as above, is the counterpart of Elixir's `send_event!`:
/// the first error ends the chain.
pub struct SseConnection<W> {
    writer: W,
    /// Whole, framed events (and the head, at first) not yet written.
    queue: Vec<u8>,
    chunked: bool,
    closed: Option<Closed>,
    probe: Option<fn(&W) -> io::Result<bool>>,
    /// Width of the last chunk's size: the guess for the next one.
    chunk_width: usize,
    /// The stream's compressor, if the response negotiated a coding.
    compressor: Option<Box<Compressor>>,
}

/// Shows the state, and the writer's type rather than its value, so that any
/// writer will do (`unwrap_err` on a `send_event` result needs `Debug`).
impl<W> fmt::Debug for SseConnection<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseConnection")
            .field("writer", &std::any::type_name::<W>())
            .field("chunked", &self.chunked)
            .field("queued", &self.queue.len())
            .field("closed", &self.closed)
            .field("probed", &self.probe.is_some())
            .field("content_encoding", &self.content_encoding())
            .finish()
    }
}

// Accessors need no `Write` bound (C-STRUCT-BOUNDS: bounds go on the impls that use them).
impl<W> SseConnection<W> {
    /// The coding the stream is compressed with, or `None` for none.
    pub fn content_encoding(&self) -> Option<Encoding> {
        self.compressor.as_ref().map(|c| c.encoding())
    }

    /// Whether the connection is closed; see [`closed`](SseConnection::closed).
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Why the connection is closed, or `None` while it is open.
    pub fn closed(&self) -> Option<Closed> {
        self.closed
    }

    /// The number of bytes queued and not yet written.
    pub fn queued_len(&self) -> usize {
        self.queue.len()
    }

    /// The writer.
    pub fn get_ref(&self) -> &W {
        &self.writer
    }

    /// The writer. Writing to it directly corrupts the stream unless you
    /// know what you are doing.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// Gives the writer back without writing anything; queued events are
    /// dropped. See [`finish`](SseConnection::finish) to end the response.
    pub fn into_inner(self) -> W {
        self.writer
    }
}

impl<W: Write> SseConnection<W> {
    fn new(writer: W, chunked: bool, probe: Option<fn(&W) -> io::Result<bool>>) -> Self {
        SseConnection {
            writer,
            queue: Vec::new(),
            chunked,
            closed: None,
            probe,
            chunk_width: 2,
            compressor: None,
        }
    }

    /// Starts an SSE response with the default head (see [`SseResponse::new`])
    /// and flushes it, so the client sees the response before the first event.
    ///
    /// For a `TcpStream`, prefer [`start_socket`](SseConnection::start_socket);
    /// when answering a request, [`SseResponse::for_request`] also frames the
    /// body for an HTTP/1.0 client (or a proxy that speaks 1.0 upstream, as
    /// nginx does by default), which cannot read chunked coding.
    pub fn start(writer: W) -> io::Result<Self> {
        SseResponse::new().start(writer)
    }

    /// Starts an SSE response with the default head on a socket that can be
    /// [probed](Probe), so that [`check_connection`](SseConnection::check_connection)
    /// notices a client that has closed its end before writing to it.
    pub fn start_socket(writer: W) -> io::Result<Self>
    where
        W: Probe,
    {
        SseResponse::new().start_socket(writer)
    }

    /// A connection that writes only the event stream itself: no response
    /// head and no chunked framing, for a host that writes the head and
    /// frames the body itself. Nothing is written until the first event.
    pub fn body_only(writer: W) -> Self {
        SseConnection::new(writer, false, None)
    }

    /// Like [`body_only`](SseConnection::body_only), with the stream
    /// compressed in `encoding`, for a host that writes the head: it must
    /// say `Content-Encoding` (see [`Encoding::token`]) and
    /// `Vary: Accept-Encoding`. Fails with
    /// [`Unsupported`](io::ErrorKind::Unsupported) if this build lacks the
    /// coding.
    pub fn body_only_compressed(
        writer: W,
        encoding: Encoding,
        settings: &Compression,
    ) -> io::Result<Self> {
        let mut conn = SseConnection::new(writer, false, None);
        conn.compressor = Some(Box::new(Compressor::new(encoding, settings)?));
        Ok(conn)
    }

    /// Sends one event: formats it as one chunk, writes it with a single
    /// `write_all` (together with anything [queued](SseConnection::queue_event)
    /// before it) and flushes.
    ///
    /// An event type with CR or LF, or an id with CR, LF or NUL, is refused
    /// with [`io::ErrorKind::InvalidInput`]: nothing is written and the
    /// connection stays open. Any write error closes the connection (see the
    /// [module docs](crate::connection#closed-state)).
    pub fn send_event(&mut self, event: impl Encode) -> io::Result<&mut Self> {
        self.queue_event(event)?;
        self.flush()?;
        Ok(self)
    }

    /// Sends several events in one write: all of them or, if one is refused,
    /// none of them.
    ///
    /// ```
    /// # use dstar::{Event, SseConnection};
    /// let mut sse = SseConnection::body_only(Vec::new());
    /// let ticks = ["1", "2", "3"].map(|n| Event::new("tick").data(n));
    /// sse.send_all(&ticks)?;
    /// assert_eq!(sse.get_ref().len(), 3 * "event: tick\ndata: 1\n\n".len());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_all<E: Encode>(
        &mut self,
        events: impl IntoIterator<Item = E>,
    ) -> io::Result<&mut Self> {
        self.check_open()?;
        if self.compressor.is_some() {
            // One compressed chunk for the burst: a refused event must not
            // reach the compressor, whose window cannot be taken back.
            self.frame(|buf| {
                events
                    .into_iter()
                    .try_for_each(|event| event::write_event(buf, &event))
            })?;
            self.flush()?;
            return Ok(self);
        }
        let mark = self.queue.len();
        for event in events {
            if let Err(err) = self.frame_event(&event) {
                self.queue.truncate(mark);
                return Err(err);
            }
        }
        self.flush()?;
        Ok(self)
    }

    /// Queues one event without flushing it, so that several events can go
    /// out in one write: call [`flush`](SseConnection::flush) when the burst
    /// is complete.
    ///
    /// Validation is as in [`send_event`](SseConnection::send_event). Once
    /// 8 KiB are queued they are written out (whole events only, not
    /// flushed), so a long burst does not hold unbounded memory.
    #[inline]
    pub fn queue_event(&mut self, event: impl Encode) -> io::Result<&mut Self> {
        self.check_open()?;
        self.frame_event(&event)?;
        if self.queue.len() >= MAX_QUEUED {
            self.write_queue()?;
        }
        Ok(self)
    }

    /// Sends an event that was [formatted once](FormattedEvent) for many
    /// connections; like [`send_event`](SseConnection::send_event) otherwise.
    pub fn send_formatted(&mut self, event: &FormattedEvent) -> io::Result<&mut Self> {
        self.queue_formatted(event)?;
        self.flush()?;
        Ok(self)
    }

    /// Queues an event that was [formatted once](FormattedEvent) for many
    /// connections; like [`queue_event`](SseConnection::queue_event) otherwise.
    pub fn queue_formatted(&mut self, event: &FormattedEvent) -> io::Result<&mut Self> {
        let text = event.as_str().as_bytes();
        if self.chunked && self.compressor.is_none() {
            // The length is known: the size line is written directly.
            self.check_open()?;
            chunked::write_chunk(&mut self.queue, text);
            if self.queue.len() >= MAX_QUEUED {
                self.write_queue()?;
            }
            return Ok(self);
        }
        self.enqueue(|buf| {
            buf.extend_from_slice(text);
            Ok(())
        })
    }

    /// Sends an SSE comment (one `:` line per line of `text`) as its own
    /// chunk. Browsers ignore comments.
    pub fn send_comment(&mut self, text: &str) -> io::Result<&mut Self> {
        self.enqueue(|buf| {
            event::write_comment(buf, text);
            Ok(())
        })?;
        self.flush()?;
        Ok(self)
    }

    /// Writes out everything queued in one `write_all`, then flushes the
    /// writer. Returns the connection, like the sends, so calls chain.
    pub fn flush(&mut self) -> io::Result<&mut Self> {
        self.check_open()?;
        self.write_queue()?;
        loop {
            match self.writer.flush() {
                Ok(()) => return Ok(self),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.close(e)),
            }
        }
    }

    /// Checks that the client is still there.
    ///
    /// On a connection started with [`start_socket`](SseConnection::start_socket)
    /// the socket is first asked, without blocking, whether the peer has hung
    /// up. Then an empty SSE comment is sent as its own chunk and flushed;
    /// writing to a socket whose peer has gone fails at the latest on the
    /// next call. Returns the connection, like the sends; for the errors, see
    /// the [table](crate::connection#what-each-call-returns), and for what
    /// the probe cannot see, [`Probe`'s implementation for
    /// `TcpStream`](Probe#impl-Probe-for-TcpStream).
    ///
    /// Call it every 15–30 seconds on an idle stream: it keeps proxies from
    /// timing the stream out, and it is how a vanished client is noticed.
    pub fn check_connection(&mut self) -> io::Result<&mut Self> {
        self.check_open()?;
        if let Some(probe) = self.probe {
            match probe(&self.writer) {
                Ok(false) => {}
                Ok(true) => {
                    self.closed = Some(Closed::PeerHungUp);
                    self.queue = Vec::new();
                    return Err(PeerGone::error());
                }
                Err(e) => return Err(self.close(e)),
            }
        }
        self.send_comment("")
    }

    /// Ends the response: writes anything queued and the terminating chunk
    /// (`0\r\n\r\n`) in one write, flushes, and hands the writer back, so a
    /// keep-alive connection can serve its next request.
    ///
    /// For a close-delimited or body-only connection nothing is added: close
    /// the writer to end the body. Whether the connection may carry another
    /// request is the request's to say ([`Request::keep_alive`](crate::Request::keep_alive), which a
    /// response made with [`SseResponse::for_request`] keeps up to date),
    /// and a [`RequestReader`](crate::RequestReader) follows it by itself.
    ///
    /// A compressed stream is ended first (brotli's and zstd's last block,
    /// gzip's trailer), in the same write.
    pub fn finish(mut self) -> io::Result<W> {
        self.end_body()?;
        Ok(self.writer)
    }

    /// What [`finish`](SseConnection::finish) writes, for a hub that keeps
    /// the writer to shut its socket down afterwards.
    pub(crate) fn end_body(&mut self) -> io::Result<()> {
        self.check_open()?;
        if let Some(mut compressor) = self.compressor.take() {
            self.frame_compressed(&mut compressor, |c, out| c.finish(out).map_err(Fail::Codec))?;
        }
        if self.chunked {
            self.queue.extend_from_slice(chunked::LAST_CHUNK);
        }
        self.flush().map(drop)
    }

    /// Queues one framed event, and writes the queue out once it is large.
    fn enqueue(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<&mut Self> {
        self.check_open()?;
        self.frame(write)?;
        if self.queue.len() >= MAX_QUEUED {
            self.write_queue()?;
        }
        Ok(self)
    }

    /// Appends one event as one chunk (or as it is, or compressed, see
    /// [`frame`](Self::frame)). An identity chunked stream takes
    /// [`event::write_chunk`]: the size line of a one-line Datastar event is
    /// written directly, its length being known before it is written.
    #[inline]
    fn frame_event(&mut self, event: &impl Encode) -> io::Result<()> {
        if self.chunked && self.compressor.is_none() {
            self.chunk_width = event::write_chunk(&mut self.queue, event, self.chunk_width)?;
            return Ok(());
        }
        self.frame(|buf| event::write_event(buf, event))
    }

    /// Appends what `write` produces as one chunk (or as it is, without
    /// chunked framing), compressed and flushed if the stream is. On error
    /// the queue is left as it was.
    fn frame(&mut self, write: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> io::Result<()> {
        if let Some(mut compressor) = self.compressor.take() {
            let framed = self.frame_compressed(&mut compressor, |c, out| c.compress(write, out));
            if !self.is_closed() {
                self.compressor = Some(compressor);
            }
            return framed;
        }
        if !self.chunked {
            return write(&mut self.queue);
        }
        let mark = self.queue.len();
        let chunk = chunked::begin(&mut self.queue, self.chunk_width);
        if let Err(err) = write(&mut self.queue) {
            self.queue.truncate(mark);
            return Err(err);
        }
        self.chunk_width = chunked::end(&mut self.queue, chunk);
        Ok(())
    }

    /// [`frame`](SseConnection::frame) for a compressed stream: `compress`
    /// appends the compressed bytes. A codec failure closes the connection,
    /// since the stream cannot go on.
    fn frame_compressed(
        &mut self,
        compressor: &mut Compressor,
        compress: impl FnOnce(&mut Compressor, &mut Vec<u8>) -> Result<(), Fail>,
    ) -> io::Result<()> {
        let mark = self.queue.len();
        let chunk = self
            .chunked
            .then(|| chunked::begin(&mut self.queue, self.chunk_width));
        match compress(compressor, &mut self.queue) {
            Ok(()) => {}
            Err(Fail::Refused(err)) => {
                self.queue.truncate(mark);
                return Err(err);
            }
            Err(Fail::Codec(err)) => return Err(self.close(err)),
        }
        if let Some(chunk) = chunk {
            self.chunk_width = chunked::end(&mut self.queue, chunk);
        }
        Ok(())
    }

    fn write_queue(&mut self) -> io::Result<()> {
        if self.queue.is_empty() {
            return Ok(());
        }
        // `write_all` retries short writes and `Interrupted` itself.
        if let Err(e) = self.writer.write_all(&self.queue) {
            return Err(self.close(e));
        }
        self.queue.clear();
        self.queue.shrink_to(MAX_RETAINED);
        Ok(())
    }

    /// Marks the connection closed by a writer error, and returns the error,
    /// wrapped so that it cannot be taken for one the connection made.
    fn close(&mut self, err: io::Error) -> io::Error {
        self.closed = Some(Closed::WriteFailed(err.kind()));
        self.queue = Vec::new();
        WriteFailed::error(err)
    }

    fn check_open(&self) -> io::Result<()> {
        match self.closed {
            None => Ok(()),
            Some(reason) => Err(reason.error()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    #[test]
    fn a_large_event_leaves_no_large_buffer_behind() {
        let mut sse = SseConnection::start(io::sink()).unwrap();
        let big = "x".repeat(1 << 20);
        sse.send_event(Event::message(big.as_str())).unwrap();
        assert!(sse.queue.capacity() <= MAX_RETAINED);
        // A burst longer than what is retained is written out as it grows.
        for _ in 0..1000 {
            sse.queue_event(Event::message("a burst of small events"))
                .unwrap();
        }
        sse.flush().unwrap();
        assert!(sse.queue.capacity() <= MAX_RETAINED);
        // Ordinary events keep the buffer they need: it is not shrunk below
        // an event's size, and the next event reuses it as it is.
        sse.send_event(Event::message("small")).unwrap();
        let kept = sse.queue.capacity();
        assert!(kept >= "6\r\ndata: small\n\n\r\n".len(), "{kept}");
        let at = sse.queue.as_ptr();
        sse.send_event(Event::message("small")).unwrap();
        assert_eq!((sse.queue.capacity(), sse.queue.as_ptr()), (kept, at));
    }
}

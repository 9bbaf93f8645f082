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
//!   [`RequestErrorKind::Timeout`] error (408);
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
//! [`Read`]: std::io::Read
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

// How this module is laid out, one concept per file:
//
// - limits.rs   Limits, the bounds on what a client may send
// - error.rs    RequestError and RequestErrorKind, each kind with its status code
// - message.rs  Request: the head and body read, and the accessors on them
// - signals.rs  Request::signals: Datastar's signals, from the query or the body
// - target.rs   split_target: the path and query of a request target
// - reader.rs   RequestReader: one connection's requests, its buffer and its clock
// - head.rs     parsing the head, and the Host, framing, Expect and Connection rules
// - sse.rs      SseResponse::for_request: an event stream framed for the request
//
// The chunked body decoder sits beside the encoder, in chunked/decode.rs. Data flows one way:
// request -> connection (through sse.rs), never back.

mod error;
mod head;
mod limits;
mod message;
mod reader;
mod signals;
mod sse;
mod target;

pub use crate::http::Version;
#[allow(deprecated)]
pub use error::ErrorKind;
pub use error::{RequestError, RequestErrorKind};
pub use limits::Limits;
pub use message::Request;
pub use reader::RequestReader;
pub use target::split_target;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_cross_threads() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Request>();
        send_sync::<RequestError>();
        send_sync::<Limits>();
        send_sync::<RequestReader<std::net::TcpStream>>();
    }
}

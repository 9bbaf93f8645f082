//! Server-Sent Events and [Datastar](https://data-star.dev) for plain,
//! blocking Rust.
//!
//! dstar writes an SSE response — the HTTP/1.1 head, the chunked framing and
//! the events — straight into any [`std::io::Write`]: a `TcpStream`, a
//! `&mut TcpStream`, or a `Vec<u8>` in a test. It needs `std` and `httparse`
//! and no runtime. Data flows one way, and each step has its module:
//!
//! | step | module |
//! |---|---|
//! | a request comes in: method, path, headers, body, limits, keep-alive | [`request`] |
//! | the page's signals are read from it (query or body), checked as JSON | [`Request::signals`] |
//! | events are formatted into a buffer, split so no text can inject a field | [`event`], [`datastar`] |
//! | each event is framed as one HTTP chunk and written in one `write_all` | [`connection`] |
//! | one event reaches many streams, formatted once | [`broadcast`] |
//! | a stream is compressed, one window for its life, flushed per event | [`compression`] |
//! | what was written is decoded again, as a browser would, in tests | [`testing`] |
//!
//! # A stream
//!
//! ```
//! use dstar::{Event, SseConnection, testing};
//!
//! // Any writer will do; on a server it is the TcpStream of the request.
//! let mut sse = SseConnection::start(Vec::new())?;
//! sse.send_event(Event::new("greeting").data("hello\nworld").id("1"))?;
//! let written = sse.finish()?; // the terminating chunk; the writer comes back
//!
//! let response = testing::decode_response(&written).unwrap();
//! assert_eq!(response.header("content-type"), Some("text/event-stream"));
//! assert_eq!(response.events()[0].data, "hello\nworld");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Text can never break out of its event: data is split at CR, LF and CRLF
//! into `data:` lines, and an event type or id that would end its own line is
//! refused with [`std::io::ErrorKind::InvalidInput`] before anything is
//! written:
//!
//! ```
//! # use dstar::{Event, SseConnection};
//! let mut sse = SseConnection::body_only(Vec::new());
//! let refused = sse.send_event(Event::new("update\r\nevent: forged").data("x"));
//! assert_eq!(refused.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
//! assert!(sse.get_ref().is_empty());
//! assert!(!sse.is_closed()); // a refused event leaves the connection usable
//! ```
//!
//! # A server
//!
//! A blocking server reads each request with a [`RequestReader`] (which keeps
//! pipelined bytes for the next request on a keep-alive connection), answers
//! pages with [`response`], and turns the connection into a stream with
//! [`SseConnection::start_socket`]: on a socket, [`check_connection`]
//! notices a client that has gone away before writing to it.
//!
//! ```no_run
//! use dstar::datastar::PatchElements;
//! use dstar::{RequestReader, SseConnection, response};
//! use std::net::TcpListener;
//! use std::time::Duration;
//!
//! # fn main() -> std::io::Result<()> {
//! for stream in TcpListener::bind("127.0.0.1:8080")?.incoming() {
//!     let stream = stream?;
//!     stream.set_nodelay(true)?; // Nagle would hold small events back
//!     stream.set_read_timeout(Some(Duration::from_secs(10)))?;
//!     stream.set_write_timeout(Some(Duration::from_secs(10)))?;
//!     std::thread::spawn(move || -> std::io::Result<()> {
//!         let mut requests = RequestReader::new(&stream);
//!         while let Some(request) = requests.next_request().map_err(std::io::Error::from)? {
//!             if request.path() != "/feed" {
//!                 response::write_not_found(&mut &stream, &request)?;
//!                 continue;
//!             }
//!             let mut sse = SseConnection::start_socket(&stream)?;
//!             for n in 1.. {
//!                 let html = format!("<p id=\"count\">{n}</p>");
//!                 sse.send_event(PatchElements::new(&html))?;
//!                 std::thread::sleep(Duration::from_secs(1));
//!             }
//!         }
//!         Ok(())
//!     });
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # The page's client
//!
//! A Datastar page loads the client with
//! `<script type="module" src="…">`; [`datastar::client_url`] gives that URL:
//! [`datastar::CLIENT_URL`] (the v1.0.1 release on jsDelivr) unless the
//! `DATASTAR_CLIENT_URL` environment variable names another copy, for a
//! deployment that cannot or may not load it from the CDN. The examples'
//! pages take it from there.
//!
//! # Closed connections
//!
//! The first failed write closes a connection and returns the writer's own
//! error; every later call returns [`std::io::ErrorKind::NotConnected`] (with
//! a [`Closed`] inside saying why) and writes nothing, so a half-written
//! event is never followed by more bytes. See [`connection`].
//!
//! # Features
//!
//! - `serde`: `Request::signals_as` deserialises signals into your type.
//! - `redis`: `redis_bridge` carries a hub's events to other server
//!   instances through a Redis stream, and resumes tabs on any of them.
//! - `brotli`, `zstd`, `gzip` (`compression` for all three): streams
//!   compressed in a coding negotiated from `Accept-Encoding`, flushed per
//!   event; see [`compression`].
//!
//! [`check_connection`]: SseConnection::check_connection
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// --- modules (each owner adds its own line) ---
pub mod broadcast;
mod chunked;
pub mod compression;
pub mod connection;
pub mod datastar;
mod date;
pub mod event;
mod json;
mod percent;
#[cfg(feature = "redis")]
pub mod redis_bridge;
pub mod request;
pub mod response;
mod syntax;
pub mod testing;

pub use connection::{Closed, Probe, SseConnection, SseResponse};
pub use event::{
    DEFAULT_RETRY, Encode, Event, FormattedEvent, format_event, write_event, write_framed,
};
pub use request::{Limits, Request, RequestError, RequestReader};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

//! Server-Sent Events and [Datastar](https://data-star.dev) for plain,
//! blocking Rust.
//!
//! dstar writes an SSE response — the HTTP/1.1 head, the chunked framing and
//! the events — straight into any [`std::io::Write`]: a `TcpStream`, a
//! `&TcpStream`, or a `Vec<u8>` in a test. It needs `std` and `httparse`
//! and no runtime: a thread per stream, or a [`broadcast::Hub`] that serves
//! thousands of streams from a few threads.
//!
//! # How data flows
//!
//! Data flows one way, and each step has its module:
//!
//! | step | module |
//! |---|---|
//! | a request comes in: method, path, headers, body, limits, keep-alive | [`request`] |
//! | the page's signals are read from it (query or body), checked as JSON | [`Request::signals`] |
//! | a page, a 404 or the 400 for a bad request is answered | [`response`] |
//! | events are formatted into a buffer, split so no text can inject a field | [`event`], [`datastar`] |
//! | each event is framed as one HTTP chunk and written in one `write_all` | [`connection`] |
//! | one event reaches many streams, formatted once, replayed after a reconnect | [`broadcast`] |
//! | a stream is compressed, one window for its life, flushed per event | [`compression`] |
//! | the hub's events reach other server instances through Redis (feature `redis`) | `redis_bridge` |
//! | what was written is decoded again, as a browser would, in tests | [`testing`] |
//!
//! # A first stream
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
//! A blocking server reads each request with a [`RequestReader`], which
//! keeps pipelined bytes for the next request on a keep-alive connection and
//! returns `Ok(None)` when the connection is done. A request that cannot be
//! read gets its status (400, 413, 431, 501…) from
//! [`response::write_error`], and the connection closes. A stream starts
//! with [`SseResponse::for_request`], which frames it for the client's HTTP
//! version, and [`start_socket`](SseResponse::start_socket), so that
//! [`check_connection`] notices a client that has gone away before writing
//! to it.
//!
//! ```
//! use dstar::datastar::PatchElements;
//! use dstar::{RequestReader, SseResponse, response, testing};
//! use std::io::{self, Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use std::time::Duration;
//!
//! fn serve(stream: TcpStream) -> io::Result<()> {
//!     stream.set_nodelay(true)?; // Nagle would hold small events back
//!     stream.set_read_timeout(Some(Duration::from_secs(10)))?;
//!     stream.set_write_timeout(Some(Duration::from_secs(10)))?;
//!     let mut requests = RequestReader::new(&stream);
//!     loop {
//!         let request = match requests.next_request() {
//!             Ok(Some(request)) => request,
//!             Ok(None) => return Ok(()), // the client is done
//!             // Answer what could not be read with its status, then close.
//!             Err(err) => return response::write_error(&mut &stream, &err),
//!         };
//!         if request.path() != "/feed" {
//!             response::write_not_found(&mut &stream, &request)?;
//!             continue;
//!         }
//!         let mut sse = SseResponse::for_request(&request).start_socket(&stream)?;
//!         for n in 1..=3 {
//!             let html = format!("<p id=\"count\">{n}</p>");
//!             sse.send_event(PatchElements::new(&html))?;
//!             // A live feed would wait here, and call check_connection()
//!             // every 15 s or so while idle.
//!         }
//!         sse.finish()?; // the connection can carry the next request
//!     }
//! }
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let mut client = TcpStream::connect(listener.local_addr()?)?;
//! client.set_read_timeout(Some(Duration::from_secs(10)))?;
//! // Two pipelined requests; the second has no Host header.
//! client.write_all(b"GET /feed HTTP/1.1\r\nHost: x\r\n\r\nGET /feed HTTP/1.1\r\n\r\n")?;
//! serve(listener.accept()?.0)?;
//!
//! let mut bytes = Vec::new();
//! client.read_to_end(&mut bytes)?;
//! let feed = testing::decode_response(&bytes)?;
//! assert_eq!(feed.events().len(), 3);
//! assert!(feed.events()[2].data.contains("<p id=\"count\">3</p>"));
//! let bad = testing::decode_response(&feed.rest)?;
//! assert_eq!(bad.status, 400);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Datastar events
//!
//! The [`datastar`] builders write the events the Datastar client reads:
//! [`PatchElements`](datastar::PatchElements) morphs HTML into the page,
//! [`PatchSignals`](datastar::PatchSignals) merges JSON into its signals,
//! [`ExecuteScript`](datastar::ExecuteScript) runs a script, and there are
//! helpers for redirects, console logs and more. Arguments that would break
//! the event are refused, like an event's.
//!
//! ```
//! use dstar::datastar::{ElementPatchMode, ExecuteScript, PatchElements, PatchSignals};
//! use dstar::{SseConnection, testing};
//!
//! let mut sse = SseConnection::body_only(Vec::new());
//! sse.send_event(PatchElements::new("<li>one</li>").selector("#list").mode(ElementPatchMode::Append))?
//!     .send_event(PatchSignals::new(r#"{"count":1}"#))?
//!     .send_event(ExecuteScript::new("console.log('hi')"))?;
//!
//! let stream = testing::parse_event_stream(sse.get_ref());
//! let types: Vec<_> = stream.events.iter().map(|e| e.event_type.as_str()).collect();
//! assert_eq!(types, ["datastar-patch-elements", "datastar-patch-signals", "datastar-patch-elements"]);
//! assert!(stream.events[1].data.contains(r#"signals {"count":1}"#));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Reading signals
//!
//! The page sends its signals with every request: as `?datastar=` in the
//! query of a `GET`, as the JSON body otherwise. [`Request::signals`] finds
//! and checks them (invalid JSON is a 400 for [`response::write_error`]);
//! with the `serde` feature, `Request::signals_as` deserialises them.
//!
//! ```
//! use dstar::Request;
//!
//! let get = Request::parse(b"GET /feed?datastar=%7B%22count%22%3A1%7D HTTP/1.1\r\nHost: x\r\n\r\n")?;
//! assert_eq!(get.path(), "/feed"); // route on the path, not on the target
//! assert_eq!(get.signals()?.as_deref(), Some(r#"{"count":1}"#));
//! # Ok::<(), dstar::RequestError>(())
//! ```
//!
//! # Many streams: the hub
//!
//! A [`broadcast::Hub`] owns the streams it is given, formats each published
//! event once and writes it to every subscriber from a few shared threads; a
//! subscriber that stops reading is evicted without holding the others
//! back. With replay on, a client that reconnects with `Last-Event-ID` gets
//! the events it missed ([`broadcast::Replay`]). To restart a server,
//! [`Hub::stop`](broadcast::Hub::stop) *cuts* every stream (no terminating
//! chunk), so clients reconnect, to the next process, with their
//! `Last-Event-ID`; [`Hub::finish`](broadcast::Hub::finish) ends them
//! cleanly, for an application that means the end (the Datastar client does
//! not reconnect after a clean end).
//!
//! ```
//! use dstar::broadcast::{Config, Hub, Replay, Subscription};
//! use dstar::{Event, SseConnection, testing};
//! use std::io::Read;
//! use std::net::{TcpListener, TcpStream};
//! use std::time::Duration;
//!
//! let hub = Hub::new(Config::new().replay(100));
//! hub.publish(Event::new("chat").data("first").id("1"))?; // nobody listening yet
//! hub.publish(Event::new("chat").data("second").id("2"))?;
//!
//! // A client that saw event 1 comes back (a server reads this from the
//! // request's `Last-Event-ID`).
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let mut client = TcpStream::connect(listener.local_addr()?)?;
//! client.set_read_timeout(Some(Duration::from_secs(10)))?;
//! let conn = SseConnection::start_socket(listener.accept()?.0)?;
//! let replay = hub.subscribe(conn, Subscription::new().last_event_id(Some("1")))?;
//! assert_eq!(replay, Replay::Replayed(1));
//!
//! hub.stop(); // a restart: the stream is cut, and the client will come back
//! let mut bytes = Vec::new();
//! client.read_to_end(&mut bytes)?;
//! let response = testing::decode_response(&bytes).unwrap();
//! assert_eq!(response.events()[0].data, "second");
//! assert!(!response.finished); // cut, not ended: EventSource reconnects
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Compression
//!
//! With the `brotli`, `zstd` or `gzip` features (`compression` for all
//! three), [`SseResponse::compression`] negotiates a coding from the
//! request's `Accept-Encoding` and compresses the whole stream with one
//! window, flushed per event: a re-rendered page costs the bytes that
//! changed. The same code runs in every build; without a codec the stream
//! is simply not compressed.
//!
//! ```
//! use dstar::compression::Compression;
//! use dstar::{Event, Request, SseResponse, testing};
//!
//! let request = Request::parse(b"GET /feed HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br, zstd, gzip\r\n\r\n")?;
//! let mut sse = SseResponse::for_request(&request).compression(Compression::new()).start(Vec::new())?;
//! let coding = sse.content_encoding(); // None unless a codec feature is on
//! # #[cfg(any(feature = "brotli", feature = "zstd", feature = "gzip"))]
//! # assert!(coding.is_some());
//! sse.send_event(Event::message("hello"))?;
//!
//! let response = testing::decode_response(&sse.finish()?)?; // decodes the coding too
//! assert_eq!(response.header("content-encoding"), coding.map(|c| c.token()));
//! assert_eq!(response.events()[0].data, "hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Errors and closed connections
//!
//! Sends return [`std::io::Result`], so `?` works in any function that
//! returns `io::Result`. The first failed write closes a connection and
//! returns the writer's own error; every later call returns
//! [`NotConnected`](std::io::ErrorKind::NotConnected) (with a [`Closed`]
//! inside saying why) and writes nothing. A write that fails part-way may
//! leave part of an event on the wire; nothing follows it, so the client
//! sees the stream cut short. [`connection::Error::of`] tells a refused
//! event, a departed peer and an already-closed connection apart; the
//! [table](connection#what-each-call-returns) lists what each call returns.
//!
//! # Testing
//!
//! [`testing`] decodes what a connection wrote the way a browser would,
//! independently of the encoder: [`testing::decode_response`] for a whole
//! response (head, chunks, `Content-Encoding`), and
//! [`testing::parse_event_stream`] for a body, following the WHATWG
//! event-stream rules. The examples above use both.
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
mod error;
pub mod event;
mod http;
mod json;
mod percent;
mod probe;
#[cfg(feature = "redis")]
pub mod redis_bridge;
pub mod request;
pub mod response;
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

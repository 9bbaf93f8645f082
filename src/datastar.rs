//! Datastar's events: patch elements, patch signals, and the script helpers built on them.
//!
//! [Datastar](https://data-star.dev) listens for two SSE event types. A
//! `datastar-patch-elements` event carries HTML to morph into the page, a
//! `datastar-patch-signals` event carries a JSON merge patch for the page's signals; their data
//! lines are `key value` pairs, as the
//! [SDK ADR](https://github.com/starfederation/datastar/blob/develop/sdk/ADR.md) lays out.
//! Everything else (running a script, redirecting, logging to the console) is a patch-elements
//! event that appends a `<script>` to `<body>`.
//!
//! Each event here is a small builder that borrows its strings and implements [`Encode`], so it
//! goes wherever an event goes: [`SseConnection::send_event`](crate::SseConnection::send_event),
//! [`format_event`](crate::format_event), [`write_event`](crate::write_event) and
//! [`FormattedEvent`](crate::FormattedEvent) for fan-out. Building one allocates nothing;
//! encoding streams the caller's text straight into the connection's buffer.
//!
//! ```
//! use dstar::datastar::{ElementPatchMode, PatchElements, PatchSignals};
//! use dstar::SseConnection;
//!
//! let mut sse = SseConnection::body_only(Vec::new());
//! sse.send_event(PatchSignals::new(r#"{"count":1}"#))?
//!     .send_event(PatchElements::new("<li>one</li>").selector("#list").mode(ElementPatchMode::Append))?;
//! assert_eq!(
//!     String::from_utf8(sse.into_inner()).unwrap(),
//!     "event: datastar-patch-signals\n\
//!      data: signals {\"count\":1}\n\
//!      \n\
//!      event: datastar-patch-elements\n\
//!      data: selector #list\n\
//!      data: mode append\n\
//!      data: elements <li>one</li>\n\
//!      \n"
//! );
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What is refused
//!
//! Nothing an event is given can add a field or an event to the stream: multi-line text (HTML,
//! JSON, scripts) is split into one data line per line, at CR, LF and CRLF alike. Values that
//! are single-line by nature (selectors, view-transition selectors, script attribute names and
//! values, event names, URLs, event ids) are refused with [`io::ErrorKind::InvalidInput`] when
//! they contain CR or LF, and the message names the option. Other checks are listed on each
//! builder: signals must be a well-formed JSON object, signal paths must be well-formed, and
//! redirect URLs must pass the [`Redirect`] policy. A refused event writes nothing.
//!
//! # The browser client
//!
//! Pages load the Datastar client with a `<script type="module">`. [`client_url`] says where
//! from: [`CLIENT_URL`] (the v1.0.1 release on jsDelivr, the one the browser tests run) unless
//! the `DATASTAR_CLIENT_URL` environment variable names another copy, as an offline, intranet
//! or CSP-strict deployment needs. Every example takes its page's client from there.
//!
//! [`Encode`]: crate::Encode
//! [`io::ErrorKind::InvalidInput`]: std::io::ErrorKind::InvalidInput

mod client;
mod elements;
mod escape;
mod helpers;
mod script;
mod signals;

pub use client::{CLIENT_URL, CLIENT_URL_VAR, client_url};
pub use elements::{ElementPatchMode, Namespace, PatchElements};
pub use helpers::{ConsoleLevel, ConsoleLog, DispatchEvent, Prefetch, Redirect, ReplaceUrl};
pub use script::ExecuteScript;
pub use signals::{PatchSignals, RemoveSignals, Signals};

/// The event type of element patches, and of every script helper.
pub const PATCH_ELEMENTS: &str = "datastar-patch-elements";

/// The event type of signal patches.
pub const PATCH_SIGNALS: &str = "datastar-patch-signals";

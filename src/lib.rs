//! dstar: synchronous, std-only Server-Sent Events and Datastar for blocking Rust servers.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// --- modules (each owner adds its own line) ---
pub mod broadcast;
mod chunked;
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
pub use event::{DEFAULT_RETRY, Encode, Event, FormattedEvent, format_event, write_event};
pub use request::{Limits, Request, RequestError, RequestReader};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

//! The typed errors inside the `io::Error`s an [`SseConnection`] returns.
//!
//! Kept apart from `connection` so that the event formatters, which refuse
//! events, can make a [`Refused`] without depending on the connection.
//!
//! [`SseConnection`]: crate::SseConnection

use std::fmt;
use std::io;

/// What an error returned by an [`SseConnection`](crate::SseConnection)
/// means, read from the `io::Error` with [`Error::of`].
///
/// The [`io::ErrorKind`] alone cannot say it: a writer may return
/// `NotConnected` or `InvalidInput` itself. Every error the connection
/// returns carries one of this crate's types inside, so the meaning is never
/// guessed. See the [table](crate::connection#what-each-call-returns).
///
/// ```
/// use dstar::connection::{Closed, Error};
/// use dstar::{Event, SseConnection};
/// use std::io::{self, Write};
///
/// /// A writer that reports `NotConnected` itself.
/// struct Unplugged;
/// impl Write for Unplugged {
///     fn write(&mut self, _: &[u8]) -> io::Result<usize> {
///         Err(io::ErrorKind::NotConnected.into())
///     }
///     fn flush(&mut self) -> io::Result<()> { Ok(()) }
/// }
///
/// let mut sse = SseConnection::body_only(Unplugged);
/// let refused = sse.send_event(Event::new("a\nb")).unwrap_err();
/// assert!(matches!(Error::of(&refused), Some(Error::Refused(_))));
///
/// let first = sse.send_event(Event::message("hi")).unwrap_err();
/// assert_eq!(first.kind(), io::ErrorKind::NotConnected); // the writer's kind...
/// assert!(matches!(Error::of(&first), Some(Error::WriteFailed(_)))); // ...but not "already closed"
///
/// let later = sse.send_event(Event::message("hi")).unwrap_err();
/// let reason = Closed::WriteFailed(io::ErrorKind::NotConnected);
/// assert!(matches!(Error::of(&later), Some(Error::AlreadyClosed(r)) if r == reason));
///
/// // Errors that did not come from a connection are none of these.
/// assert!(Error::of(&io::Error::other("elsewhere")).is_none());
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Error<'a> {
    /// The event (or the response's status or a header) was refused before
    /// anything was written: it would have broken the framing. The
    /// connection is still open. Kind: [`InvalidInput`](io::ErrorKind::InvalidInput).
    Refused(&'a Refused),
    /// [`check_connection`](crate::SseConnection::check_connection) found
    /// that the peer has hung up; nothing was written, and the connection is
    /// now closed. Kind: [`BrokenPipe`](io::ErrorKind::BrokenPipe).
    PeerGone,
    /// The connection was already closed, for this reason; nothing was
    /// written. Kind: [`NotConnected`](io::ErrorKind::NotConnected).
    AlreadyClosed(Closed),
    /// The writer (or the probe, or the compressor) failed with this error,
    /// and the connection is now closed. Kind: the writer's own.
    WriteFailed(&'a io::Error),
}

impl<'a> Error<'a> {
    /// What `err` means, if an [`SseConnection`](crate::SseConnection)
    /// returned it; `None` for any other error.
    pub fn of(err: &'a io::Error) -> Option<Error<'a>> {
        let inner = err.get_ref()?;
        if let Some(refused) = inner.downcast_ref::<Refused>() {
            Some(Error::Refused(refused))
        } else if inner.is::<PeerGone>() {
            Some(Error::PeerGone)
        } else if let Some(closed) = inner.downcast_ref::<Closed>() {
            Some(Error::AlreadyClosed(*closed))
        } else {
            let failed = inner.downcast_ref::<WriteFailed>()?;
            Some(Error::WriteFailed(&failed.0))
        }
    }
}

/// Why an event was refused: the inner error of the
/// [`InvalidInput`](io::ErrorKind::InvalidInput) errors for an event type,
/// id, Datastar argument, status or header that would break the framing.
///
/// Its message names the value (shortened) and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    message: String,
}

impl Refused {
    /// An `InvalidInput` error carrying a refusal with this message.
    pub(crate) fn error(message: String) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, Refused { message })
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refused {}

/// The inner error of the [`BrokenPipe`](io::ErrorKind::BrokenPipe) error
/// [`check_connection`](crate::SseConnection::check_connection) returns when
/// its probe finds that the peer has hung up (no write failed: the probe saw
/// the peer's FIN or reset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PeerGone;

impl PeerGone {
    pub(crate) fn error() -> io::Error {
        io::Error::new(io::ErrorKind::BrokenPipe, PeerGone)
    }
}

impl fmt::Display for PeerGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SSE connection closed: the peer hung up")
    }
}

impl std::error::Error for PeerGone {}

/// A writer's own error, wrapped so that it keeps its kind and message but
/// is never mistaken for one the connection made (a writer may return
/// `NotConnected` itself). [`Error::of`] gives the writer's error back; so
/// does [`source`](std::error::Error::source).
#[derive(Debug)]
pub(crate) struct WriteFailed(io::Error);

impl WriteFailed {
    pub(crate) fn error(err: io::Error) -> io::Error {
        io::Error::new(err.kind(), WriteFailed(err))
    }
}

impl fmt::Display for WriteFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for WriteFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Why a connection is closed: the inner error of the
/// [`NotConnected`](io::ErrorKind::NotConnected) errors a closed connection
/// returns.
///
/// ```
/// use dstar::{Closed, Event, SseConnection};
/// use std::io::{self, Write};
///
/// struct Gone;
/// impl Write for Gone {
///     fn write(&mut self, _: &[u8]) -> io::Result<usize> {
///         Err(io::ErrorKind::BrokenPipe.into())
///     }
///     fn flush(&mut self) -> io::Result<()> { Ok(()) }
/// }
///
/// let mut sse = SseConnection::body_only(Gone);
/// let first = sse.send_event(Event::message("hi")).unwrap_err();
/// assert_eq!(first.kind(), io::ErrorKind::BrokenPipe); // why it closed
///
/// let later = sse.send_event(Event::message("hi")).unwrap_err();
/// assert_eq!(later.kind(), io::ErrorKind::NotConnected); // already closed
/// let reason = later.get_ref().and_then(|e| e.downcast_ref::<Closed>());
/// assert_eq!(reason, Some(&Closed::WriteFailed(io::ErrorKind::BrokenPipe)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Closed {
    /// A write or flush to the writer (or the probe, or the compressor)
    /// failed with this kind of error.
    WriteFailed(io::ErrorKind),
    /// [`check_connection`](crate::SseConnection::check_connection) saw that
    /// the peer had hung up.
    PeerHungUp,
}

impl Closed {
    /// The `NotConnected` error every call on a connection closed for this
    /// reason returns.
    pub(crate) fn error(self) -> io::Error {
        io::Error::new(io::ErrorKind::NotConnected, self)
    }
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Closed::WriteFailed(kind) => {
                write!(f, "SSE connection closed: a write failed ({kind})")
            }
            Closed::PeerHungUp => f.write_str("SSE connection closed: the peer hung up"),
        }
    }
}

impl std::error::Error for Closed {}

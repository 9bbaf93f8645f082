//! Writers that fail, stall or write in pieces: the connection must close on
//! the first failure, write nothing after it, and otherwise produce exactly
//! the bytes a perfect writer would get.

mod common;

use common::{Choppy, fail_at_every_byte, session};
use dstar::{Closed, Event, SseConnection, SseResponse};
use std::io::{self, Write};

/// The head every session here starts with: the default one, without `Date`.
fn plain() -> SseResponse {
    SseResponse::new().without_date()
}

fn full_output() -> Vec<u8> {
    let (results, writer) = session(plain(), Vec::new());
    assert!(results.iter().all(Result::is_ok));
    writer.unwrap()
}

#[test]
fn a_failure_at_any_byte_closes_the_connection_and_nothing_follows() {
    fail_at_every_byte(plain, "plain");
}

#[test]
fn short_writes_and_interrupts_still_produce_the_exact_stream() {
    let mut choppy = Choppy::default();
    let (results, _) = session(plain(), &mut choppy);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(choppy.written, full_output());
}

/// A writer whose every write times out, as a socket with a write timeout
/// does when the peer stops reading.
struct Stalled;

impl Write for Stalled {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_stalled_writer_closes_the_connection_with_the_timeout_as_reason() {
    let mut sse = SseConnection::body_only(Stalled);
    let err = sse.send_event(Event::message("x")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    assert_eq!(
        sse.closed(),
        Some(Closed::WriteFailed(io::ErrorKind::WouldBlock))
    );
    assert_eq!(sse.queued_len(), 0, "queued bytes are dropped once closed");
    let err = sse.check_connection().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected);
    assert!(err.to_string().contains("write failed"), "{err}");
}

/// Fails only its flush.
struct FlushFails(Vec<u8>);

impl Write for FlushFails {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Err(io::ErrorKind::ConnectionReset.into())
    }
}

#[test]
fn a_failed_flush_closes_too() {
    let err = SseConnection::start(FlushFails(Vec::new())).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);

    let mut sse = SseConnection::body_only(FlushFails(Vec::new()));
    assert!(sse.send_event(Event::message("x")).is_err());
    assert!(sse.is_closed());
    let before = sse.get_ref().0.len();
    assert!(sse.send_event(Event::message("y")).is_err());
    assert_eq!(sse.get_ref().0.len(), before);
    let finished = sse.finish().err().map(|e| e.kind());
    assert_eq!(finished, Some(io::ErrorKind::NotConnected));
}

/// Reports `NotConnected` itself, as a writer over a socket that was never
/// connected does.
struct Unplugged;

impl Write for Unplugged {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::NotConnected.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_writers_own_not_connected_is_not_taken_for_already_closed() {
    use dstar::connection::Error;
    let mut sse = SseConnection::body_only(Unplugged);
    let refused = sse.send_event(Event::new("a\nb")).unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
    assert!(matches!(Error::of(&refused), Some(Error::Refused(_))));
    assert!(!sse.is_closed());

    let first = sse.send_event(Event::message("x")).unwrap_err();
    assert_eq!(
        first.kind(),
        io::ErrorKind::NotConnected,
        "the writer's kind"
    );
    match Error::of(&first) {
        Some(Error::WriteFailed(own)) => assert_eq!(own.kind(), io::ErrorKind::NotConnected),
        other => panic!("expected the writer's failure, got {other:?}"),
    }
    assert!(first.get_ref().unwrap().downcast_ref::<Closed>().is_none());

    let later = sse.flush().unwrap_err();
    assert_eq!(later.kind(), io::ErrorKind::NotConnected);
    assert!(matches!(
        Error::of(&later),
        Some(Error::AlreadyClosed(Closed::WriteFailed(
            io::ErrorKind::NotConnected
        )))
    ));
}

/// Refuses input itself with `InvalidInput`, which must not read as a refused event.
struct Picky;

impl Write for Picky {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::InvalidInput, "not today"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_writers_own_invalid_input_closes_and_is_not_a_refusal() {
    use dstar::connection::Error;
    let mut sse = SseConnection::body_only(Picky);
    let err = sse.send_comment("x").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(err.to_string(), "not today", "the writer's message is kept");
    assert!(matches!(Error::of(&err), Some(Error::WriteFailed(_))));
    assert!(
        sse.is_closed(),
        "a writer's failure closes, unlike a refusal"
    );
    let refused_header = SseResponse::new().header("Bad Name", "x").start(Vec::new());
    assert!(matches!(
        Error::of(&refused_header.unwrap_err()),
        Some(Error::Refused(_))
    ));
    let refused_status = SseResponse::new().status(204).start(Vec::new());
    assert!(matches!(
        Error::of(&refused_status.unwrap_err()),
        Some(Error::Refused(_))
    ));
}

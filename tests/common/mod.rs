//! Mock writers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{self, Write};
use std::time::Duration;

use dstar::{Closed, Event, SseResponse};

/// Records every `write` call and counts flushes.
#[derive(Debug, Default)]
pub struct Recorder {
    pub writes: Vec<Vec<u8>>,
    pub flushes: usize,
}

impl Recorder {
    pub fn bytes(&self) -> Vec<u8> {
        self.writes.concat()
    }
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes.push(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.flushes += 1;
        Ok(())
    }
}

/// Accepts `budget` bytes in total, then fails every write and flush; a
/// write that straddles the budget is accepted in part (a short write).
#[derive(Debug)]
pub struct FailAfter {
    pub budget: usize,
    pub written: Vec<u8>,
    pub calls_after_failure: usize,
    failed: bool,
}

impl FailAfter {
    pub fn new(budget: usize) -> Self {
        FailAfter {
            budget,
            written: Vec::new(),
            calls_after_failure: 0,
            failed: false,
        }
    }

    fn fail(&mut self) -> io::Error {
        if self.failed {
            self.calls_after_failure += 1;
        }
        self.failed = true;
        io::Error::new(io::ErrorKind::BrokenPipe, "budget exhausted")
    }
}

impl Write for FailAfter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.budget - self.written.len();
        if room == 0 || self.failed {
            return Err(self.fail());
        }
        let n = room.min(buf.len());
        self.written.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.failed {
            return Err(self.fail());
        }
        Ok(())
    }
}

/// Accepts at most a few bytes per call and returns `Interrupted` every
/// third call, from `write` and `flush` alike.
#[derive(Debug, Default)]
pub struct Choppy {
    pub written: Vec<u8>,
    calls: usize,
}

impl Write for Choppy {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(3) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(1 + self.calls % 7);
        self.written.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.calls += 1;
        if self.calls.is_multiple_of(3) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        Ok(())
    }
}

/// One of everything a session can do, on a connection started with
/// `response`: the results of each call, and the writer if it finished.
pub fn session<W: Write>(response: SseResponse, writer: W) -> (Vec<io::Result<()>>, Option<W>) {
    let mut results = Vec::new();
    let mut sse = match response.start(writer) {
        Ok(sse) => sse,
        Err(e) => return (vec![Err(e)], None),
    };
    let big = "z".repeat(3000); // an event larger than the others, queued
    results.push(sse.send_event(Event::new("a").data("one")).map(drop));
    results.push(
        sse.send_event(
            Event::new("b")
                .data("two\r\nlines")
                .id("2")
                .retry(Duration::from_secs(3)),
        )
        .map(drop),
    );
    results.push(sse.send_comment("note").map(drop));
    results.push(sse.queue_event(Event::message(big.as_str())).map(drop));
    results.push(sse.queue_event(Event::message("")).map(drop));
    results.push(sse.flush().map(drop));
    results.push(sse.check_connection().map(drop));
    results.push(
        sse.send_all([Event::message("x"), Event::message("y")])
            .map(drop),
    );
    match sse.finish() {
        Ok(writer) => {
            results.push(Ok(()));
            (results, Some(writer))
        }
        Err(e) => {
            results.push(Err(e));
            (results, None)
        }
    }
}

/// Runs [`session`] against a writer that fails after each byte count in
/// turn, from none to the whole good output: every time, the writer gets a
/// prefix of the good output and is never called again after failing, the
/// first error is the writer's own, and every later call says the
/// connection closed because a write failed.
pub fn fail_at_every_byte(response: impl Fn() -> SseResponse, what: &str) {
    let (results, full) = session(response(), Vec::new());
    assert!(results.iter().all(Result::is_ok), "{what}");
    let full = full.unwrap();
    for budget in 0..=full.len() {
        let mut writer = FailAfter::new(budget);
        let (results, finished) = session(response(), &mut writer);
        let finished = finished.is_some();
        assert_eq!(
            writer.written[..],
            full[..budget],
            "{what} budget {budget}: a prefix of the good output"
        );
        assert_eq!(
            writer.calls_after_failure, 0,
            "{what} budget {budget}: the writer was called again after it failed"
        );
        if budget == full.len() {
            assert!(results.iter().all(Result::is_ok), "{what}");
            assert!(finished, "{what}");
            continue;
        }
        let first_err = results.iter().position(Result::is_err).unwrap();
        assert_eq!(
            results[first_err].as_ref().unwrap_err().kind(),
            io::ErrorKind::BrokenPipe,
            "{what} budget {budget}: the first error is the writer's"
        );
        for later in &results[first_err + 1..] {
            let err = later.as_ref().unwrap_err();
            assert_eq!(
                err.kind(),
                io::ErrorKind::NotConnected,
                "{what} budget {budget}"
            );
            let reason = err.get_ref().and_then(|e| e.downcast_ref::<Closed>());
            assert_eq!(
                reason,
                Some(&Closed::WriteFailed(io::ErrorKind::BrokenPipe)),
                "{what} budget {budget}"
            );
        }
    }
}

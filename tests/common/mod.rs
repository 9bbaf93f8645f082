//! Mock writers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{self, Write};
use std::time::Duration;

use dstar::{Event, SseResponse};

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

//! Test doubles for the hub's unit tests: a writer that records what it
//! is given and can block or fail, and helpers to drive a hub.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::{Hub, Stats, Subscription};
use crate::{Event, SseConnection, SseResponse};

/// What a [`Mock`] writer saw, shared with the test.
#[derive(Debug, Default)]
pub(super) struct Log {
    /// Writes block while the gate is closed.
    pub(super) open: bool,
    /// Every write fails with this, once set.
    pub(super) fail: Option<io::ErrorKind>,
    /// Writes now waiting at the gate.
    pub(super) blocked: usize,
    pub(super) writes: Vec<Vec<u8>>,
    pub(super) flushes: usize,
    pub(super) dropped: bool,
}

#[derive(Default)]
pub(super) struct Tape {
    pub(super) log: Mutex<Log>,
    pub(super) changed: Condvar,
}

impl Tape {
    pub(super) fn new(open: bool) -> Arc<Tape> {
        let tape = Tape::default();
        tape.lock().open = open;
        Arc::new(tape)
    }

    /// Not poisoned by a failed assertion, so the writer's `Drop` does
    /// not panic again while the test unwinds.
    pub(super) fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn update(&self, change: impl FnOnce(&mut Log)) {
        change(&mut self.lock());
        self.changed.notify_all();
    }

    /// Waits (at most 10 s, generously) until `done` holds.
    pub(super) fn wait(&self, what: &str, done: impl Fn(&Log) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut log = self.lock();
        while !done(&log) {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("timed out waiting for {what}: {log:?}"));
            log = self
                .changed
                .wait_timeout(log, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    pub(super) fn text(&self) -> String {
        String::from_utf8(self.lock().writes.concat()).unwrap()
    }
}

/// Opens a tape's gate when dropped: declared after the hub, it lets a
/// blocked writer go before the hub joins it, even if the test fails.
pub(super) struct Release(pub(super) Arc<Tape>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.update(|log| log.open = true);
    }
}

/// An in-memory writer that records writes and flushes, and can block.
pub(super) struct Mock(pub(super) Arc<Tape>);

impl Write for Mock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut log = self.0.lock();
        log.blocked += 1;
        self.0.changed.notify_all();
        while !log.open {
            log = self
                .0
                .changed
                .wait(log)
                .unwrap_or_else(PoisonError::into_inner);
        }
        log.blocked -= 1;
        if let Some(kind) = log.fail {
            return Err(kind.into());
        }
        log.writes.push(buf.to_vec());
        self.0.changed.notify_all();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.update(|log| log.flushes += 1);
        Ok(())
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.0.update(|log| log.dropped = true);
    }
}

pub(super) fn body_only(tape: &Arc<Tape>) -> SseConnection<Mock> {
    SseConnection::body_only(Mock(Arc::clone(tape)))
}

pub(super) fn tick(n: usize) -> String {
    format!("event: tick\ndata: {n}\n\n")
}

pub(super) fn publish_ticks(hub: &Hub, range: std::ops::RangeInclusive<usize>) {
    for n in range {
        hub.publish(Event::new("tick").data(&n.to_string()))
            .unwrap();
    }
}

pub(super) fn wait_for_stats(hub: &Hub, what: &str, done: impl Fn(&Stats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = hub.stats();
        if done(&stats) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {stats:?}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// Subscribes a recording writer and returns what it has received once
/// `events` events have arrived.
pub(super) fn received(
    hub: &Hub,
    sub: Subscription,
    publish: impl FnOnce(),
    events: usize,
) -> Vec<String> {
    let tape = Tape::new(true);
    let conn = with_head(&tape);
    hub.subscribe(conn, sub).unwrap();
    publish();
    tape.wait("the events", |log| events_in(log) >= events);
    let bytes = tape.lock().writes.concat();
    let response = crate::testing::decode_response(&bytes).unwrap();
    response.events().iter().map(|e| e.data.clone()).collect()
}

/// The ids of what a recording writer received.
pub(super) fn ids_of(tape: &Tape) -> Vec<String> {
    let bytes = tape.lock().writes.concat();
    let response = crate::testing::decode_response(&bytes).unwrap();
    response
        .events()
        .iter()
        .map(|e| e.last_event_id.clone())
        .collect()
}

/// A connection to a recording writer that starts with its response head.
pub(super) fn with_head(tape: &Arc<Tape>) -> SseConnection<Mock> {
    SseResponse::new()
        .without_date()
        .start(Mock(Arc::clone(tape)))
        .unwrap()
}

/// How many events a recording writer has received.
pub(super) fn events_in(log: &Log) -> usize {
    let bytes = log.writes.concat();
    crate::testing::decode_response(&bytes)
        .unwrap()
        .events()
        .len()
}

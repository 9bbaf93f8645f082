//! The writer threads: shared ones that take turns among their
//! subscribers, and the dedicated one a stalled subscriber is left with.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::connection::SseConnection;
use crate::event::FormattedEvent;

use super::shared::Shared;
use super::subscriber::{End, Left, Message, Mode, Outcome, Sub};

/// A writer keeps at most this much room for waiting events once it is
/// done with a batch: idle streams are the many.
pub(super) const SHRINK_ABOVE: usize = 32;

/// A connection whose writer type has been forgotten, so that one writer
/// thread can serve connections of any type.
pub(super) trait Stream: Send {
    fn queue(&mut self, event: &FormattedEvent) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
    fn check(&mut self) -> io::Result<()>;
    fn finish(self: Box<Self>) -> io::Result<()>;
    /// Writes what is queued, then ends the stream without its terminating
    /// chunk: the client sees it cut short.
    fn cut(self: Box<Self>) -> io::Result<()>;
    /// Ends the connection without another write.
    fn abandon(self: Box<Self>);
}

impl<W: Write + Send + 'static> Stream for SseConnection<W> {
    fn queue(&mut self, event: &FormattedEvent) -> io::Result<()> {
        self.queue_formatted(event).map(drop)
    }
    fn flush(&mut self) -> io::Result<()> {
        SseConnection::flush(self).map(drop)
    }
    fn check(&mut self) -> io::Result<()> {
        self.check_connection().map(drop)
    }
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        // The hub never hands a connection back, so it ends with its stream.
        let finished = self.end_body();
        self.abandon();
        finished
    }
    fn cut(mut self: Box<Self>) -> io::Result<()> {
        let flushed = SseConnection::flush(&mut self).map(drop);
        self.abandon();
        flushed
    }
    fn abandon(self: Box<Self>) {
        // Dropping the writer closes a socket only if nobody else holds it
        // (a clone the application kept to read requests, say); shutting it
        // down ends the connection for the client now, whoever holds it.
        // Both directions: a thread reading a clone sees the end too.
        if let Some(socket) = (self.get_ref() as &dyn Any).downcast_ref::<TcpStream>() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// One writer thread's share of the subscribers.
pub(super) struct Shard {
    pub(super) run: Mutex<Run>,
    /// Signalled when the run queue gets work, or the hub stops.
    pub(super) ready: Condvar,
}

pub(super) struct Run {
    /// Subscribers with something to write, in turn.
    pub(super) queue: VecDeque<Arc<Sub>>,
    /// Every subscriber this writer serves, for heartbeats.
    pub(super) members: HashMap<u64, Arc<Sub>>,
    /// Which thread owns this writer: bumped when the supervisor hands the
    /// writer to a new thread.
    pub(super) owner: u64,
    /// The subscriber being written to, and since when.
    pub(super) writing: Option<(Arc<Sub>, Instant)>,
    pub(super) stopping: bool,
}

impl Shard {
    pub(super) fn lock(&self) -> MutexGuard<'_, Run> {
        self.run.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves one subscriber once: ends its stream if the hub said so, writes
/// what is queued in one write, or checks an idle connection. `batch` is
/// scratch space, swapped with the queue so the lock is held only briefly.
pub(super) fn serve(shared: &Shared, sub: &Sub, batch: &mut VecDeque<Arc<Message>>) -> Outcome {
    let end = {
        let mut queue = sub.lock();
        std::mem::swap(batch, &mut queue.events);
        queue.end
    };
    let served = panic::catch_unwind(AssertUnwindSafe(|| write_batch(shared, sub, batch, end)));
    batch.clear();
    if batch.capacity() > SHRINK_ABOVE {
        *batch = VecDeque::new();
    }
    match served {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(err)) => {
            drop_stream(sub);
            let timed_out = matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            );
            Outcome::Ended(Some(if timed_out {
                Left::TooSlow
            } else {
                Left::Failed
            }))
        }
        Err(_panic) => {
            // The writer panicked (the hook has reported it): its state is
            // unknown, so the stream is dropped like a failed one.
            drop_stream(sub);
            Outcome::Ended(Some(Left::Failed))
        }
    }
}

pub(super) fn write_batch(
    shared: &Shared,
    sub: &Sub,
    batch: &mut VecDeque<Arc<Message>>,
    end: Option<End>,
) -> io::Result<Outcome> {
    let mut stream = sub.stream.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(conn) = stream.as_mut() else {
        return Ok(Outcome::Ended(None));
    };
    match end {
        Some(End::Drop) => {
            if let Some(conn) = stream.take() {
                conn.abandon();
            }
            return Ok(Outcome::Ended(None));
        }
        Some(end @ (End::Finish | End::Cut)) => {
            let n = batch.len();
            for message in batch.drain(..) {
                conn.queue(&message.event)?;
            }
            // One write: the events still queued, then (when finishing) the
            // last chunk.
            if let Some(conn) = stream.take() {
                match end {
                    End::Finish => conn.finish()?,
                    _ => conn.cut()?,
                }
            }
            shared.count_delivered(n);
            return Ok(Outcome::Ended(None));
        }
        None => {}
    }
    if batch.is_empty() {
        let idle = shared
            .now()
            .saturating_sub(sub.last_write.load(Ordering::Relaxed));
        if idle >= shared.config.heartbeat.as_nanos() as u64 {
            conn.check()?;
            sub.last_write.store(shared.now(), Ordering::Relaxed);
        }
        return Ok(Outcome::Open);
    }
    let n = batch.len();
    for message in batch.drain(..) {
        conn.queue(&message.event)?;
    }
    conn.flush()?;
    shared.count_delivered(n);
    sub.last_write.store(shared.now(), Ordering::Relaxed);
    Ok(Outcome::Open)
}

/// Ends a subscriber's connection without another write, even if dropping
/// it panics.
pub(super) fn drop_stream(sub: &Sub) {
    let taken = sub
        .stream
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let _ = panic::catch_unwind(AssertUnwindSafe(move || taken.map(Stream::abandon)));
}

/// The body of a shared writer thread: serves its subscribers in turn until
/// the hub stops, or until the supervisor hands the writer to another thread
/// while this one is stuck in a write.
pub(super) fn write_shard(shared: Arc<Shared>, index: usize, generation: u64) {
    let shard = &shared.shards[index];
    let heartbeat = shared.config.heartbeat;
    // Heartbeats are due `heartbeat` after the last write; looking four
    // times per interval (at most every second) sends each within a quarter
    // of an interval of when it is due.
    let tick = (heartbeat / 4).clamp(Duration::from_millis(1), Duration::from_secs(1));
    let mut next_scan = Instant::now() + tick;
    let mut batch = VecDeque::new();
    loop {
        let sub = {
            let mut run = shard.lock();
            loop {
                // Also between writes: a writer that is never idle still
                // owes its idle subscribers their heartbeats.
                let now = Instant::now();
                if now >= next_scan {
                    scan_heartbeats(&shared, &mut run);
                    next_scan = now + tick;
                }
                if let Some(sub) = run.queue.pop_front() {
                    run.writing = Some((Arc::clone(&sub), now));
                    break sub;
                }
                if run.stopping {
                    return;
                }
                run = shard
                    .ready
                    .wait_timeout(run, next_scan - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        };
        shared.wake_supervisor();
        let outcome = serve(&shared, &sub, &mut batch);

        let mut run = shard.lock();
        if run.owner != generation {
            // Handed off: the others have a new writer, and this thread
            // stays with the subscriber it was stuck on.
            drop(run);
            dedicated(&shared, &sub, outcome);
            return;
        }
        run.writing = None;
        match outcome {
            Outcome::Open => {
                let mut queue = sub.lock();
                if queue.events.is_empty() && queue.end.is_none() {
                    queue.mode = Mode::Idle;
                } else {
                    drop(queue);
                    run.queue.push_back(sub);
                }
            }
            Outcome::Ended(why) => {
                run.members.remove(&sub.id);
                drop(run);
                if let Some(why) = why {
                    shared.leave(&sub, why);
                }
            }
        }
    }
}

/// Puts the idle subscribers whose heartbeat is due on the run queue.
pub(super) fn scan_heartbeats(shared: &Shared, run: &mut Run) {
    let due = shared
        .now()
        .saturating_sub(shared.config.heartbeat.as_nanos() as u64);
    let Run { queue, members, .. } = run;
    for sub in members.values() {
        if sub.last_write.load(Ordering::Relaxed) > due {
            continue;
        }
        let mut state = sub.lock();
        if state.mode == Mode::Idle {
            state.mode = Mode::Scheduled;
            drop(state);
            queue.push_back(Arc::clone(sub));
        }
    }
}

/// The rest of a handed-off thread's life: it writes one subscriber,
/// waiting on that subscriber's own queue, until the stream ends.
pub(super) fn dedicated(shared: &Shared, sub: &Arc<Sub>, first: Outcome) {
    let mut outcome = first;
    let mut batch = VecDeque::new();
    loop {
        if let Outcome::Ended(why) = outcome {
            if let Some(why) = why {
                shared.leave(sub, why);
            }
            return;
        }
        {
            let mut queue = sub.lock();
            queue.mode = Mode::Dedicated;
            loop {
                if queue.end.is_some() || !queue.events.is_empty() {
                    break;
                }
                let idle = Duration::from_nanos(
                    shared
                        .now()
                        .saturating_sub(sub.last_write.load(Ordering::Relaxed)),
                );
                let Some(left) = shared.config.heartbeat.checked_sub(idle) else {
                    break;
                };
                queue = sub
                    .ready
                    .wait_timeout(queue, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
        outcome = serve(shared, sub, &mut batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;
    use crate::SseResponse;
    use crate::broadcast::mock::*;
    use crate::broadcast::{Config, Hub, Subscription, THREAD_NAME};
    use std::io::{self, Write};
    use std::sync::Mutex;
    use std::thread;
    use std::time::{Duration, Instant};
    #[test]
    fn events_queued_while_a_write_blocks_go_out_in_one_write() {
        let hub = Hub::new(Config::new());
        let tape = Tape::new(false);
        hub.subscribe(body_only(&tape), Subscription::new())
            .unwrap();

        publish_ticks(&hub, 1..=1);
        tape.wait("the first write", |log| log.blocked == 1);
        publish_ticks(&hub, 2..=4);
        tape.update(|log| log.open = true);
        tape.wait("two flushes", |log| log.flushes == 2);

        let log = tape.lock();
        assert_eq!(log.writes.len(), 2, "{log:?}");
        assert_eq!(log.writes[0], tick(1).as_bytes());
        assert_eq!(log.writes[1], (tick(2) + &tick(3) + &tick(4)).as_bytes());
        drop(log);
        wait_for_stats(&hub, "4 deliveries", |s| s.delivered == 4);
    }

    #[test]
    fn an_idle_subscriber_gets_each_event_in_its_own_write() {
        let hub = Hub::new(Config::new());
        let tape = Tape::new(true);
        hub.subscribe(body_only(&tape), Subscription::new())
            .unwrap();
        for n in 1..=3 {
            publish_ticks(&hub, n..=n);
            tape.wait("the event", |log| log.flushes == n);
        }
        assert_eq!(tape.lock().writes.len(), 3);
        assert_eq!(tape.text(), tick(1) + &tick(2) + &tick(3));
    }

    #[test]
    fn a_full_queue_evicts_the_subscriber_and_drops_its_stream() {
        let hub = Hub::new(Config::new().queue_capacity(2));
        let slow = Tape::new(false);
        let _release = Release(Arc::clone(&slow));
        let fast = Tape::new(true);
        hub.subscribe(body_only(&slow), Subscription::new())
            .unwrap();
        hub.subscribe(body_only(&fast), Subscription::new())
            .unwrap();

        // The fast one's queue is only 2 events long too: keep it drained.
        publish_ticks(&hub, 1..=1);
        slow.wait("the first write", |log| log.blocked == 1);
        fast.wait("1 event", |log| log.flushes == 1);
        publish_ticks(&hub, 2..=3); // fills the slow queue
        fast.wait("3 events", |log| log.writes.concat().len() >= 3 * 16);
        assert_eq!(hub.stats().evicted, 0);
        assert_eq!(hub.publish(Event::new("tick").data("4")).unwrap(), 1);

        let stats = hub.stats();
        assert_eq!((stats.evicted, stats.subscribers), (1, 1), "{stats:?}");
        fast.wait("every event", |log| log.writes.concat().len() >= 4 * 16);
        assert_eq!(fast.text(), tick(1) + &tick(2) + &tick(3) + &tick(4));

        // The blocked write completes; nothing more is written, not even
        // what was queued, and the stream is dropped unfinished.
        slow.update(|log| log.open = true);
        slow.wait("the writer to be dropped", |log| log.dropped);
        assert_eq!(slow.text(), tick(1));
        assert_eq!(hub.publish(Event::new("tick").data("5")).unwrap(), 1);
    }

    #[test]
    fn a_write_that_times_out_evicts_and_a_failed_one_disconnects() {
        let hub = Hub::new(Config::new());
        let slow = Tape::new(true);
        let gone = Tape::new(true);
        slow.update(|log| log.fail = Some(io::ErrorKind::WouldBlock));
        gone.update(|log| log.fail = Some(io::ErrorKind::BrokenPipe));
        hub.subscribe(body_only(&slow), Subscription::new())
            .unwrap();
        hub.subscribe(body_only(&gone), Subscription::new())
            .unwrap();
        publish_ticks(&hub, 1..=1);
        wait_for_stats(&hub, "both to leave", |s| s.subscribers == 0);
        let stats = hub.stats();
        assert_eq!((stats.evicted, stats.disconnected), (1, 1), "{stats:?}");
        slow.wait("drop", |log| log.dropped);
        gone.wait("drop", |log| log.dropped);
    }

    #[test]
    fn an_idle_stream_gets_heartbeats_and_a_busy_one_does_not_need_them() {
        let hub = Hub::new(Config::new().heartbeat(Duration::from_millis(20)));
        let tape = Tape::new(true);
        hub.subscribe(body_only(&tape), Subscription::new())
            .unwrap();
        tape.wait("two heartbeats", |log| log.writes.len() >= 2);
        assert!(tape.text().starts_with(":\n:\n"), "{}", tape.text());

        // A stream that gets an event more often than every heartbeat
        // interval, for three intervals, gets no heartbeat among them.
        let heartbeat = Duration::from_millis(100);
        let hub = Hub::new(Config::new().heartbeat(heartbeat));
        let tape = Tape::new(true);
        hub.subscribe(body_only(&tape), Subscription::new())
            .unwrap();
        let start = Instant::now();
        let mut last = start;
        let mut longest_gap = Duration::ZERO;
        let mut n = 0;
        while start.elapsed() < 3 * heartbeat {
            n += 1;
            publish_ticks(&hub, n..=n);
            longest_gap = longest_gap.max(last.elapsed());
            last = Instant::now();
            thread::sleep(Duration::from_millis(2));
        }
        let busy = tick(n);
        tape.wait("every event", |log| {
            log.writes.iter().any(|w| w.ends_with(busy.as_bytes()))
        });
        let log = tape.lock();
        let up_to_last = log
            .writes
            .iter()
            .take_while(|w| !w.ends_with(busy.as_bytes()));
        let heartbeats = up_to_last.filter(|w| w.starts_with(b":")).count();
        // A heartbeat goes to a stream that had no write for an interval:
        // only a publisher that paused that long (a starved test thread on a
        // loaded machine) lets one in. Then the stream was not busy.
        if longest_gap < heartbeat / 2 {
            assert_eq!(heartbeats, 0, "{n} events, {log:?}");
        } else {
            eprintln!("publishing paused for {longest_gap:?}: not a busy stream");
        }
    }

    #[test]
    fn a_heartbeat_that_fails_removes_the_subscriber() {
        let hub = Hub::new(Config::new().heartbeat(Duration::from_millis(10)));
        let tape = Tape::new(true);
        tape.update(|log| log.fail = Some(io::ErrorKind::ConnectionReset));
        hub.subscribe(body_only(&tape), Subscription::new())
            .unwrap();
        wait_for_stats(&hub, "the subscriber to leave", |s| s.disconnected == 1);
        assert_eq!(hub.stats().subscribers, 0);
    }

    #[test]
    fn a_writer_that_panics_leaves_the_hub() {
        struct Panics;
        impl Write for Panics {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                panic!("writer panicked (expected by this test)");
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        // A panic message needs more stack than writing does.
        let hub = Hub::new(Config::new().stack_size(1 << 20));
        hub.subscribe(SseConnection::body_only(Panics), Subscription::new())
            .unwrap();
        publish_ticks(&hub, 1..=1);
        wait_for_stats(&hub, "the subscriber to leave", |s| s.subscribers == 0);
        let stats = hub.stats();
        assert_eq!((stats.subscribers, stats.disconnected), (0, 1));
    }

    #[test]
    fn writers_run_on_small_named_threads() {
        let hub = Hub::new(Config::new().stack_size(32 * 1024));
        let tape = Tape::new(true);
        let name = Arc::new(Mutex::new(None));
        struct Named(Mock, Arc<Mutex<Option<String>>>);
        impl Write for Named {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                *self.1.lock().unwrap() = thread::current().name().map(str::to_string);
                self.0.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                self.0.flush()
            }
        }
        let conn = SseResponse::new()
            .start(Named(Mock(Arc::clone(&tape)), Arc::clone(&name)))
            .unwrap();
        hub.subscribe(conn, Subscription::new()).unwrap();
        publish_ticks(&hub, 1..=3);
        hub.finish();
        assert!(tape.text().ends_with("0\r\n\r\n"));
        assert_eq!(name.lock().unwrap().as_deref(), Some(THREAD_NAME));
    }
}

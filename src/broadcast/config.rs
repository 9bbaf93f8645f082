//! The hub's settings.

#[cfg(doc)]
use super::Hub;
#[cfg(doc)]
use crate::SseConnection;
#[cfg(doc)]
use std::net::TcpStream;
use std::time::Duration;

/// How a [`Hub`] treats its subscribers.
///
/// ```
/// use dstar::broadcast::{Config, Hub};
/// use std::time::Duration;
///
/// let hub = Hub::new(
///     Config::new()
///         .heartbeat(Duration::from_secs(20))
///         .write_timeout(Duration::from_secs(5))
///         .queue_capacity(128)
///         .replay(100),
/// );
/// assert_eq!(hub.stats().subscribers, 0);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub(super) queue_capacity: usize,
    pub(super) heartbeat: Duration,
    pub(super) write_timeout: Duration,
    pub(super) replay: usize,
    pub(super) writers: usize,
    pub(super) handoff_after: Duration,
    pub(super) stack_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    /// The defaults: a queue of 1024 events, a heartbeat after 15 s without a
    /// write, a 10 s write timeout, no replay, one writer thread per core,
    /// hand-off after 20 ms, 256 KiB stacks.
    pub fn new() -> Self {
        Config {
            queue_capacity: 1024,
            heartbeat: Duration::from_secs(15),
            write_timeout: Duration::from_secs(10),
            replay: 0,
            writers: 0,
            handoff_after: Duration::from_millis(20),
            stack_size: 256 * 1024,
        }
    }

    /// How many events may wait for one subscriber (at least 1); one more,
    /// and it is evicted.
    ///
    /// A writer takes the whole queue on every write, so the queue fills
    /// only while a write is blocked, or when you publish a burst faster
    /// than the writers get CPU time: leave room for your largest burst.
    /// Waiting events are shared `Arc`s, so a long queue costs a pointer per
    /// event, not a copy.
    pub fn queue_capacity(mut self, events: usize) -> Self {
        self.queue_capacity = events.max(1);
        self
    }

    /// How long a stream may go without a write before the hub checks that
    /// its client is still there (at least 1 ms; default 15 s).
    ///
    /// The check sends an SSE comment, which also keeps proxies from timing
    /// the stream out; see [`SseConnection::check_connection`].
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval.max(Duration::from_millis(1));
        self
    }

    /// How long one write may block before the subscriber is evicted as too
    /// slow (at least 1 ms; default 10 s).
    ///
    /// Set on the socket by [`Hub::subscribe`] when the writer is a
    /// [`TcpStream`]; for other writers, set it on the socket yourself (see
    /// [write timeouts](crate::broadcast#design)).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How many recent events to keep for replay after a reconnect
    /// (default 0: replay is off).
    pub fn replay(mut self, events: usize) -> Self {
        self.replay = events;
        self
    }

    /// How many threads share the writing (default 0: one per core, as
    /// [`std::thread::available_parallelism`] says).
    ///
    /// More writers do not make writing faster than the cores allow; they
    /// make each writer's group of subscribers smaller.
    pub fn writers(mut self, threads: usize) -> Self {
        self.writers = threads;
        self
    }

    /// How long one write may hold a shared writer thread before the
    /// subscriber is handed a thread of its own and the writer's other
    /// subscribers move on to a new one (at least 1 ms; default 20 ms).
    ///
    /// It bounds how long a stalled subscriber can delay the others. A
    /// write to a socket with room in its buffer takes microseconds, so only
    /// a full buffer (or a starved CPU) takes this long.
    pub fn handoff_after(mut self, limit: Duration) -> Self {
        self.handoff_after = limit.max(Duration::from_millis(1));
        self
    }

    /// The stack size of each thread the hub starts, in bytes (default
    /// 256 KiB).
    ///
    /// Only the pages a thread touches become resident, so the size bounds
    /// address space rather than memory. Raise it if your writer type needs
    /// deep stacks, or if a panic in your writer should print a backtrace
    /// (`RUST_BACKTRACE`), which takes more than writing does.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }
}

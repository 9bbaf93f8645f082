//! Fan-out: one event, formatted once, delivered to many long-lived streams.
//!
//! A [`Hub`] owns any number of [`SseConnection`]s. [`Hub::publish`] formats
//! an event once into a [`FormattedEvent`] and hands the same bytes (one
//! `Arc`) to every subscriber; [`Hub::publish_to`] does the same for the
//! subscribers of one topic.
//!
//! ```
//! use dstar::broadcast::{Config, Hub, Subscription};
//! use dstar::{Event, SseConnection};
//! use std::io::Read;
//! use std::net::{TcpListener, TcpStream};
//! use std::time::Duration;
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let mut client = TcpStream::connect(listener.local_addr()?)?;
//! client.set_read_timeout(Some(Duration::from_secs(10)))?;
//! let (socket, _) = listener.accept()?;
//!
//! // A server would read the request here; then it hands the stream over.
//! let hub = Hub::new(Config::new());
//! hub.subscribe(SseConnection::start_socket(socket)?, Subscription::new())?;
//! assert_eq!(hub.publish(Event::new("greeting").data("hello"))?, 1);
//!
//! // Stopping the hub ends every stream and joins every thread.
//! hub.stop();
//! let mut bytes = Vec::new();
//! client.read_to_end(&mut bytes)?;
//! let response = dstar::testing::decode_response(&bytes).unwrap();
//! assert_eq!(response.events()[0].data, "hello");
//! assert!(response.finished);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Design
//!
//! **One writer thread per subscriber.** Writing to a blocking socket can
//! block for as long as the peer does not read. The only std-only way to stop
//! that from delaying anyone else is to give each socket its own thread:
//! with a shared writer thread, one stalled peer would hold back every
//! subscriber behind it for up to the write timeout on each event. (Std has
//! no `poll`, and a non-blocking write that returns `WouldBlock` halfway
//! through an event would close the connection.) The cost is kept small: the
//! threads get a small stack ([`Config::stack_size`], 64 KiB by default, of
//! which only the few pages actually touched become resident) and are named
//! `dstar-hub`, so they are easy to spot in `top -H` or a debugger.
//!
//! **Publishing never blocks on a subscriber.** Each subscriber has a
//! bounded queue ([`Config::queue_capacity`]); publishing pushes an `Arc` into
//! it under a short lock and wakes the writer only when the queue was empty.
//! A subscriber that cannot keep up is *evicted*: when its queue is full, or
//! when a write stays blocked for longer than [`Config::write_timeout`]. An
//! evicted stream is closed without its terminating chunk, so the client
//! sees it cut short and reconnects (with `Last-Event-ID`, see replay below).
//!
//! **Coalescing.** The writer drains everything queued, frames each event
//! into its connection's buffer, and writes the lot with one `write_all` and
//! one `flush`. An idle stream gets each event as soon as it is published; a
//! busy one pays a fraction of a system call per event.
//!
//! **Write timeouts.** A writer blocked in `write` cannot be interrupted by
//! another thread through a generic `W: Write`; it returns only when the
//! socket's write timeout fires. So a write timeout is required: when the
//! connection's writer is a [`TcpStream`], [`Hub::subscribe`] sets it from
//! [`Config::write_timeout`] itself. For any other writer (TLS over a
//! socket, a `BufWriter`, ...) **set a write timeout on the underlying socket
//! yourself** before subscribing; without one, an evicted subscriber's
//! thread — and [`Hub::stop`], which joins it — waits until the peer reads
//! or the kernel gives up on the connection. Setting the timeout is cheaper
//! than the alternative of keeping a cloned socket per subscriber to shut it
//! down from outside, which would double the file descriptors in use.
//!
//! **Heartbeats.** A writer that has written nothing for
//! [`Config::heartbeat`] calls [`SseConnection::check_connection`]: on a
//! connection started with [`start_socket`](SseConnection::start_socket) a
//! peer that hung up is noticed at once (otherwise the comment written then
//! fails on the next heartbeat at the latest). Subscribers whose connection
//! fails leave the hub by themselves.
//!
//! **Takeover.** A subscription with a [key](Subscription::key) (a browser
//! tab's id, say) replaces the stream already subscribed with that key; the
//! older stream is finished, so a tab that reconnects never leaves a zombie
//! stream behind.
//!
//! **Replay.** With [`Config::replay`] set, the hub keeps the most recent
//! events in a ring. A subscription that gives the client's `Last-Event-ID`
//! ([`Subscription::last_event_id`]) first gets every event published after
//! the one with that id (that it would have received), then the live ones,
//! with no gap and no duplicate. If the id is unknown or has left the ring,
//! nothing is replayed: a partial replay would look complete while missing
//! events. Instead the stream starts with the subscription's
//! [snapshot](Subscription::snapshot) events, as it does for a new client, so
//! the application sends its full state in the one case it has to. Only
//! events with an id can be resumed from, so give every event one when
//! replay is on.
//!
//! **Consistency with your own state.** The hub orders publishes and
//! subscriptions among themselves. To make a snapshot consistent with the
//! live events that follow it, change your state and publish under one lock
//! of yours, and render the snapshot and subscribe under that same lock (the
//! `chat` example does this). Subscribing writes nothing itself, so holding
//! a lock around it does not wait on the network.
//!
//! **Shutdown.** [`Hub::stop`] (also run when the hub is dropped) finishes
//! every stream — the events still queued, then the terminating chunk, in one
//! write — and joins every thread the hub started.
//!
//! **Locks.** The hub's registry lock is taken before a subscriber's queue
//! lock, never the other way round, and no lock is held while writing to a
//! connection.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::connection::SseConnection;
use crate::event::{Encode, FormattedEvent};

/// A writer keeps at most this much room for waiting events once it is
/// idle again.
const SHRINK_ABOVE: usize = 32;

/// The name of every writer thread a hub starts.
pub const THREAD_NAME: &str = "dstar-hub";

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
    queue_capacity: usize,
    heartbeat: Duration,
    write_timeout: Duration,
    replay: usize,
    stack_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    /// The defaults: a queue of 1024 events, a heartbeat after 15 s without a
    /// write, a 10 s write timeout, no replay, 64 KiB stacks.
    pub fn new() -> Self {
        Config {
            queue_capacity: 1024,
            heartbeat: Duration::from_secs(15),
            write_timeout: Duration::from_secs(10),
            replay: 0,
            stack_size: 64 * 1024,
        }
    }

    /// How many events may wait for one subscriber (at least 1); one more,
    /// and it is evicted.
    ///
    /// Its writer drains the whole queue on every write, so the queue fills
    /// only while a write is blocked, or when you publish a burst faster
    /// than a healthy writer thread gets scheduled: leave room for your
    /// largest burst. Waiting events are shared `Arc`s, so a long queue
    /// costs a pointer per event, not a copy.
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
    /// [write timeouts](self#design)).
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

    /// The stack size of each writer thread, in bytes (default 64 KiB).
    ///
    /// Only the pages a thread touches become resident, about 8 KiB for a
    /// writer, so the size bounds address space rather than memory. Raise it
    /// if your writer type needs deep stacks (TLS, say), or if you want a
    /// panic in your writer to be able to print a backtrace.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }
}

/// What a new subscriber receives: which topics, which tab, where to resume.
///
/// ```
/// use dstar::broadcast::Subscription;
/// use dstar::{Event, FormattedEvent};
///
/// // In a request handler: the tab's id and the `Last-Event-ID` header.
/// let last_event_id: Option<&str> = Some("41");
/// let full_state = FormattedEvent::new(&Event::new("state").data("..."))?;
/// let subscription = Subscription::new()
///     .topic("room-1")
///     .key("tab-7f3a")
///     .last_event_id(last_event_id)
///     .snapshot(full_state);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Subscription {
    topics: Vec<Box<str>>,
    key: Option<String>,
    last_event_id: Option<String>,
    snapshot: Vec<FormattedEvent>,
}

impl Subscription {
    /// A subscription to events published to everyone ([`Hub::publish`]).
    pub fn new() -> Self {
        Subscription::default()
    }

    /// Also receive the events published to this topic
    /// ([`Hub::publish_to`]). Call it once per topic.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topics.push(topic.into().into_boxed_str());
        self
    }

    /// Identifies the client (a browser tab, say): subscribing with a key
    /// that is already subscribed finishes the older stream and replaces it.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Resume after this event id: pass the request's `Last-Event-ID`
    /// header as it is. `None` or an empty id asks for no replay.
    pub fn last_event_id(mut self, id: Option<&str>) -> Self {
        self.last_event_id = id.filter(|id| !id.is_empty()).map(str::to_string);
        self
    }

    /// An event to open the stream with unless it is resumed by replay: for
    /// a new client, and for one whose `Last-Event-ID` the hub no longer
    /// holds. Render your full state here. Call it once per event.
    pub fn snapshot(mut self, event: FormattedEvent) -> Self {
        self.snapshot.push(event);
        self
    }
}

/// How a subscription started, as returned by [`Hub::subscribe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Replay {
    /// No `Last-Event-ID` was given: the stream opens with the snapshot.
    NotRequested,
    /// The stream opens with this many events published after the given id
    /// (0 when the client had missed nothing).
    Replayed(usize),
    /// The id is unknown, or older than the events the hub keeps (or replay
    /// is off): nothing was replayed and the stream opens with the snapshot.
    Unavailable,
}

/// A snapshot of a hub's counters, from [`Hub::stats`].
///
/// Every subscriber that has left the hub is counted once, in `evicted`,
/// `disconnected`, `taken_over`, or (at shutdown) none of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Subscribers now in the hub.
    pub subscribers: usize,
    /// Writer threads still running, including those of subscribers that
    /// have just left and are finishing their stream.
    pub threads: usize,
    /// Subscriptions accepted since the hub started.
    pub subscribed: u64,
    /// Events published (each [`publish`](Hub::publish) or
    /// [`publish_to`](Hub::publish_to) counts once).
    pub published: u64,
    /// Events written to subscribers (one per subscriber that was sent it),
    /// including replayed and snapshot events.
    pub delivered: u64,
    /// Subscribers removed for being too slow: their queue was full, or a
    /// write blocked for longer than the write timeout.
    pub evicted: u64,
    /// Subscribers removed because their connection failed: the peer hung
    /// up, or a write failed.
    pub disconnected: u64,
    /// Subscribers replaced by a newer subscription with the same key.
    pub taken_over: u64,
}

/// A broadcast hub: many SSE streams, each written by its own thread.
///
/// Share it between request threads in an `Arc`; dropping the last one stops
/// it. See the [module docs](self) for how it behaves.
pub struct Hub {
    shared: Arc<Shared>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new(Config::new())
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Hub {
    /// A hub with no subscribers. It starts no thread until someone
    /// subscribes.
    pub fn new(config: Config) -> Hub {
        Hub {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(State {
                    stopped: false,
                    next_id: 0,
                    subscribers: HashMap::new(),
                    keys: HashMap::new(),
                    ring: VecDeque::new(),
                    retired: Vec::new(),
                }),
                counters: Counters::default(),
            }),
        }
    }

    /// Hands a started stream to the hub, which writes it from now on.
    ///
    /// The stream opens with replayed events or the snapshot (see
    /// [`Subscription`]), then gets every event published to it. When the
    /// stream ends (evicted, failed, taken over, or the hub stopped), the
    /// hub drops the writer, which closes a socket.
    ///
    /// If the writer is a [`TcpStream`], its write timeout is set to
    /// [`Config::write_timeout`]. Start the connection with
    /// [`start_socket`](SseConnection::start_socket) so heartbeats notice a
    /// client that hung up before writing to it.
    ///
    /// # Errors
    ///
    /// If the hub is stopped, the stream is finished at once and an error of
    /// kind [`NotConnected`](io::ErrorKind::NotConnected) is returned. If
    /// setting the write timeout or starting the writer thread fails, the
    /// connection is dropped and that error is returned.
    pub fn subscribe<W>(&self, conn: SseConnection<W>, sub: Subscription) -> io::Result<Replay>
    where
        W: Write + Send + 'static,
    {
        let config = &self.shared.config;
        if let Some(socket) = (conn.get_ref() as &dyn Any).downcast_ref::<TcpStream>() {
            socket
                .set_write_timeout(Some(config.write_timeout))
                .map_err(|e| context(e, "dstar hub: cannot set the socket's write timeout"))?;
        }
        let mut state = self.shared.lock_state();
        if state.stopped {
            drop(state);
            // Ending the stream cleanly tells the client this was on purpose.
            let _ = conn.finish();
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "dstar hub: cannot subscribe, the hub is stopped",
            ));
        }
        let finished = reap(&mut state.retired);

        let (initial, replay) = state.opening(&sub);
        state.next_id += 1;
        let id = state.next_id;
        let slot = Arc::new(Slot {
            id,
            topics: sub.topics.into_boxed_slice(),
            key: sub.key,
            queue: Mutex::new(Queue {
                events: VecDeque::new(),
                end: None,
            }),
            ready: Condvar::new(),
        });

        // Spawned under the registry lock, so that the thread's entry exists
        // before anything (a publish, a takeover, `stop`) can look for it.
        let shared = Arc::clone(&self.shared);
        let thread_slot = Arc::clone(&slot);
        self.shared.counters.threads.fetch_add(1, Ordering::Relaxed);
        let spawned = thread::Builder::new()
            .name(THREAD_NAME.to_string())
            .stack_size(config.stack_size)
            .spawn(move || write_stream(shared, thread_slot, conn, initial));
        let handle = match spawned {
            Ok(handle) => handle,
            Err(e) => {
                self.shared.counters.threads.fetch_sub(1, Ordering::Relaxed);
                return Err(context(
                    e,
                    "dstar hub: cannot start a writer thread for a subscriber",
                ));
            }
        };

        if let Some(key) = &slot.key
            && let Some(old) = state.keys.insert(key.clone(), id)
            && let Some(entry) = state.subscribers.remove(&old)
        {
            entry.slot.end(End::Finish);
            state.retired.push(entry.handle);
            let taken_over = &self.shared.counters.taken_over;
            taken_over.fetch_add(1, Ordering::Relaxed);
        }
        state.subscribers.insert(id, Entry { slot, handle });
        self.shared
            .counters
            .subscribed
            .fetch_add(1, Ordering::Relaxed);
        drop(state);
        join_all(finished);
        Ok(replay)
    }

    /// Publishes an event to every subscriber; returns how many it was
    /// queued for.
    ///
    /// The event is formatted once; an invalid one is refused with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) before anything is
    /// queued. Never blocks on a subscriber: one whose queue is full is
    /// evicted instead. After [`stop`](Hub::stop) it returns `Ok(0)`.
    pub fn publish(&self, event: impl Encode) -> io::Result<usize> {
        self.publish_message(None, &event)
    }

    /// Publishes an event to the subscribers of `topic` (see
    /// [`Subscription::topic`]); like [`publish`](Hub::publish) otherwise.
    pub fn publish_to(&self, topic: &str, event: impl Encode) -> io::Result<usize> {
        self.publish_message(Some(topic), &event)
    }

    fn publish_message(&self, topic: Option<&str>, event: &dyn EncodeDyn) -> io::Result<usize> {
        let message = Arc::new(Message {
            event: event.format()?,
            topic: topic.map(Box::from),
        });
        let shared = &*self.shared;
        let capacity = shared.config.queue_capacity;
        let mut state = shared.lock_state();
        if state.stopped {
            return Ok(0);
        }
        shared.counters.published.fetch_add(1, Ordering::Relaxed);
        if shared.config.replay > 0 {
            if state.ring.len() == shared.config.replay {
                state.ring.pop_front();
            }
            state.ring.push_back(Arc::clone(&message));
        }
        let mut queued = 0;
        let mut too_slow = Vec::new();
        for (id, entry) in &state.subscribers {
            if !entry.slot.wants(topic) {
                continue;
            }
            match entry.slot.push(&message, capacity) {
                Push::Queued => queued += 1,
                Push::Full => too_slow.push(*id),
                Push::Leaving => {}
            }
        }
        for id in too_slow {
            if let Some(handle) = state.remove(id) {
                state.retired.push(handle);
                shared.counters.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(queued)
    }

    /// The hub's counters, as of now.
    pub fn stats(&self) -> Stats {
        let subscribers = self.shared.lock_state().subscribers.len();
        let c = &self.shared.counters;
        Stats {
            subscribers,
            threads: c.threads.load(Ordering::Relaxed),
            subscribed: c.subscribed.load(Ordering::Relaxed),
            published: c.published.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            evicted: c.evicted.load(Ordering::Relaxed),
            disconnected: c.disconnected.load(Ordering::Relaxed),
            taken_over: c.taken_over.load(Ordering::Relaxed),
        }
    }

    /// Stops the hub: finishes every stream (what is still queued for it,
    /// then its terminating chunk) and joins every thread the hub started.
    ///
    /// Returns when all of them have ended. A writer blocked on a client
    /// that does not read ends when its write times out, so this can take
    /// up to [`Config::write_timeout`]. Later calls to `subscribe` fail and
    /// `publish` delivers nothing; calling `stop` again does nothing.
    pub fn stop(&self) {
        let handles = {
            let mut state = self.shared.lock_state();
            state.stopped = true;
            state.keys.clear();
            state.ring = VecDeque::new();
            let mut handles = std::mem::take(&mut state.retired);
            for (_, entry) in state.subscribers.drain() {
                entry.slot.end(End::Finish);
                handles.push(entry.handle);
            }
            handles
        };
        join_all(handles);
    }
}

/// Object-safe formatting, so `publish_message` is compiled once rather
/// than once per event type.
trait EncodeDyn {
    fn format(&self) -> io::Result<FormattedEvent>;
}

impl<E: Encode> EncodeDyn for E {
    fn format(&self) -> io::Result<FormattedEvent> {
        FormattedEvent::new(self)
    }
}

fn context(err: io::Error, what: &str) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// Joins the threads that have finished, and keeps the others.
fn reap(retired: &mut Vec<JoinHandle<()>>) -> Vec<JoinHandle<()>> {
    let (finished, running) = std::mem::take(retired)
        .into_iter()
        .partition(JoinHandle::is_finished);
    *retired = running;
    finished
}

fn join_all(handles: Vec<JoinHandle<()>>) {
    for handle in handles {
        // A writer that panicked has already reported it through the panic
        // hook; its subscriber left the hub when it unwound.
        let _ = handle.join();
    }
}

struct Shared {
    config: Config,
    state: Mutex<State>,
    counters: Counters,
}

impl Shared {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock; if a user's writer panicked
        // elsewhere, the registry is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count_delivered(&self, events: usize) {
        self.counters
            .delivered
            .fetch_add(events as u64, Ordering::Relaxed);
    }

    /// Removes a subscriber whose writer thread is ending by itself, and
    /// counts why. Does nothing if it was already removed (and counted) by
    /// an eviction, a takeover or `stop`.
    fn leave(&self, slot: &Slot, why: Left) {
        let mut state = self.lock_state();
        if let Some(handle) = state.remove(slot.id) {
            // Our own handle: joined by a later `subscribe` or by `stop`.
            state.retired.push(handle);
            let counter = match why {
                Left::TooSlow => &self.counters.evicted,
                Left::Failed => &self.counters.disconnected,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
struct Counters {
    threads: AtomicUsize,
    subscribed: AtomicU64,
    published: AtomicU64,
    delivered: AtomicU64,
    evicted: AtomicU64,
    disconnected: AtomicU64,
    taken_over: AtomicU64,
}

struct State {
    stopped: bool,
    next_id: u64,
    subscribers: HashMap<u64, Entry>,
    /// Takeover keys, and the subscriber that holds each.
    keys: HashMap<String, u64>,
    /// The most recent events, oldest first, for replay.
    ring: VecDeque<Arc<Message>>,
    /// Threads of subscribers that have left the hub, not yet joined.
    retired: Vec<JoinHandle<()>>,
}

impl State {
    /// The events a new subscription opens with, and how it started.
    fn opening(&self, sub: &Subscription) -> (Vec<Arc<Message>>, Replay) {
        let wants = |m: &Message| match &m.topic {
            None => true,
            Some(topic) => sub.topics.contains(topic),
        };
        let resumed = sub.last_event_id.as_deref().map(|last| {
            self.ring
                .iter()
                .rposition(|m| m.event.id() == Some(last))
                .map(|at| {
                    let missed: Vec<_> = self
                        .ring
                        .range(at + 1..)
                        .filter(|m| wants(m))
                        .cloned()
                        .collect();
                    let n = missed.len();
                    (missed, Replay::Replayed(n))
                })
        });
        match resumed {
            Some(Some(replayed)) => replayed,
            unresumed => {
                let snapshot = sub
                    .snapshot
                    .iter()
                    .map(|event| {
                        Arc::new(Message {
                            event: event.clone(),
                            topic: None,
                        })
                    })
                    .collect();
                let replay = match unresumed {
                    None => Replay::NotRequested,
                    _ => Replay::Unavailable,
                };
                (snapshot, replay)
            }
        }
    }

    /// Takes a subscriber out of the registry and tells its writer to drop
    /// the stream; returns its thread if it was still registered.
    fn remove(&mut self, id: u64) -> Option<JoinHandle<()>> {
        let entry = self.subscribers.remove(&id)?;
        if let Some(key) = &entry.slot.key
            && self.keys.get(key) == Some(&id)
        {
            self.keys.remove(key);
        }
        entry.slot.end(End::Drop);
        Some(entry.handle)
    }
}

struct Entry {
    slot: Arc<Slot>,
    handle: JoinHandle<()>,
}

/// One published event, shared by every queue it is in.
struct Message {
    event: FormattedEvent,
    topic: Option<Box<str>>,
}

/// What the hub and a subscriber's writer thread share.
struct Slot {
    id: u64,
    topics: Box<[Box<str>]>,
    key: Option<String>,
    queue: Mutex<Queue>,
    /// Signalled when the queue stops being empty, or `end` is set.
    ready: Condvar,
}

struct Queue {
    events: VecDeque<Arc<Message>>,
    /// Set when the writer must stop; the first reason given wins.
    end: Option<End>,
}

/// How the hub tells a writer to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Write what is queued and the terminating chunk (takeover, shutdown).
    Finish,
    /// Drop the connection without another write (eviction).
    Drop,
}

enum Push {
    Queued,
    Full,
    Leaving,
}

/// Why a writer thread left the hub by itself.
#[derive(Clone, Copy, Debug)]
enum Left {
    TooSlow,
    Failed,
}

impl Slot {
    fn wants(&self, topic: Option<&str>) -> bool {
        match topic {
            None => true,
            Some(topic) => self.topics.iter().any(|t| **t == *topic),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, message: &Arc<Message>, capacity: usize) -> Push {
        let mut queue = self.lock();
        if queue.end.is_some() {
            return Push::Leaving;
        }
        if queue.events.len() >= capacity {
            queue.end = Some(End::Drop);
            drop(queue);
            self.ready.notify_one();
            return Push::Full;
        }
        let was_empty = queue.events.is_empty();
        queue.events.push_back(Arc::clone(message));
        drop(queue);
        // A writer only waits on an empty queue; one with events queued is
        // busy writing and drains them without being woken. Notifying after
        // unlocking spares the writer from waking up only to wait for the
        // lock.
        if was_empty {
            self.ready.notify_one();
        }
        Push::Queued
    }

    fn end(&self, end: End) {
        let mut queue = self.lock();
        queue.end.get_or_insert(end);
        drop(queue);
        self.ready.notify_one();
    }
}

/// The body of a writer thread.
fn write_stream<W: Write>(
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    mut conn: SseConnection<W>,
    initial: Vec<Arc<Message>>,
) {
    // Leaves the hub however the thread ends, even by a panic in `W`.
    struct Guard<'a> {
        shared: &'a Shared,
        slot: &'a Slot,
        left: Left,
    }
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            self.shared.leave(self.slot, self.left);
            self.shared.counters.threads.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let mut guard = Guard {
        shared: &shared,
        slot: &slot,
        left: Left::Failed,
    };

    let mut pending = 0;
    match serve(&shared, &slot, &mut conn, initial, &mut pending) {
        Ok(End::Finish) => {
            // One write: the events still queued, then the last chunk. The
            // subscriber was already removed, so how it ends is not counted.
            if conn.finish().is_ok() {
                shared.count_delivered(pending);
            }
        }
        Ok(End::Drop) => drop(conn),
        Err(err) => {
            let timed_out = matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            );
            guard.left = if timed_out {
                Left::TooSlow
            } else {
                Left::Failed
            };
            // Leave before dropping the writer: closing a socket can take a
            // moment, and the subscriber should not be counted meanwhile.
            drop(guard);
            drop(conn);
            return;
        }
    }
    drop(guard);
}

/// Writes events as they come until the hub ends the stream (`Ok`) or the
/// connection fails (`Err`). On `Ok(End::Finish)` whatever was still queued
/// is left queued on `conn` for `finish` to write, and `pending` says how
/// many events that is.
fn serve<W: Write>(
    shared: &Shared,
    slot: &Slot,
    conn: &mut SseConnection<W>,
    initial: Vec<Arc<Message>>,
    pending: &mut usize,
) -> io::Result<End> {
    let heartbeat = shared.config.heartbeat;
    let mut batch = VecDeque::from(initial);
    let mut last_write = Instant::now();
    loop {
        if !batch.is_empty() {
            let n = batch.len();
            for message in batch.drain(..) {
                conn.queue_formatted(&message.event)?;
            }
            conn.flush()?;
            shared.count_delivered(n);
            last_write = Instant::now();
            // After a burst, give the room back: idle streams are the many.
            if batch.capacity() > SHRINK_ABOVE {
                batch = VecDeque::new();
            }
        }
        let mut queue = slot.lock();
        loop {
            if let Some(end) = queue.end {
                if end == End::Finish {
                    *pending = queue.events.len();
                    for message in queue.events.drain(..) {
                        conn.queue_formatted(&message.event)?;
                    }
                }
                return Ok(end);
            }
            if !queue.events.is_empty() {
                // Take the whole queue and leave the empty batch in its
                // place: constant time under the lock, however much waited.
                std::mem::swap(&mut batch, &mut queue.events);
                break;
            }
            let idle = last_write.elapsed();
            if idle >= heartbeat {
                drop(queue);
                conn.check_connection()?;
                last_write = Instant::now();
                queue = slot.lock();
                continue;
            }
            queue = slot
                .ready
                .wait_timeout(queue, heartbeat - idle)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, SseResponse};

    /// What a [`Mock`] writer saw, shared with the test.
    #[derive(Debug, Default)]
    struct Log {
        /// Writes block while the gate is closed.
        open: bool,
        /// Every write fails with this, once set.
        fail: Option<io::ErrorKind>,
        /// Writes now waiting at the gate.
        blocked: usize,
        writes: Vec<Vec<u8>>,
        flushes: usize,
        dropped: bool,
    }

    #[derive(Default)]
    struct Tape {
        log: Mutex<Log>,
        changed: Condvar,
    }

    impl Tape {
        fn new(open: bool) -> Arc<Tape> {
            let tape = Tape::default();
            tape.lock().open = open;
            Arc::new(tape)
        }

        /// Not poisoned by a failed assertion, so the writer's `Drop` does
        /// not panic again while the test unwinds.
        fn lock(&self) -> MutexGuard<'_, Log> {
            self.log.lock().unwrap_or_else(PoisonError::into_inner)
        }

        fn update(&self, change: impl FnOnce(&mut Log)) {
            change(&mut self.lock());
            self.changed.notify_all();
        }

        /// Waits (at most 10 s, generously) until `done` holds.
        fn wait(&self, what: &str, done: impl Fn(&Log) -> bool) {
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

        fn text(&self) -> String {
            String::from_utf8(self.lock().writes.concat()).unwrap()
        }
    }

    /// Opens a tape's gate when dropped: declared after the hub, it lets a
    /// blocked writer go before the hub joins it, even if the test fails.
    struct Release(Arc<Tape>);

    impl Drop for Release {
        fn drop(&mut self) {
            self.0.update(|log| log.open = true);
        }
    }

    /// An in-memory writer that records writes and flushes, and can block.
    struct Mock(Arc<Tape>);

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

    fn body_only(tape: &Arc<Tape>) -> SseConnection<Mock> {
        SseConnection::body_only(Mock(Arc::clone(tape)))
    }

    fn tick(n: usize) -> String {
        format!("event: tick\ndata: {n}\n\n")
    }

    fn publish_ticks(hub: &Hub, range: std::ops::RangeInclusive<usize>) {
        for n in range {
            hub.publish(Event::new("tick").data(&n.to_string()))
                .unwrap();
        }
    }

    fn wait_for_stats(hub: &Hub, what: &str, done: impl Fn(&Stats) -> bool) {
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
        wait_for_stats(&hub, "threads to end", |s| s.threads == 0);
    }

    #[test]
    fn an_idle_stream_gets_heartbeats_and_a_busy_one_does_not_need_them() {
        let hub = Hub::new(Config::new().heartbeat(Duration::from_millis(20)));
        let tape = Tape::new(true);
        hub.subscribe(body_only(&tape), Subscription::new())
            .unwrap();
        tape.wait("two heartbeats", |log| log.writes.len() >= 2);
        assert!(tape.text().starts_with(":\n:\n"), "{}", tape.text());
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
    fn stop_finishes_every_stream_with_what_was_queued_and_joins_threads() {
        let hub = Hub::new(Config::new());
        let tapes: Vec<_> = (0..3).map(|_| Tape::new(true)).collect();
        for tape in &tapes {
            let conn = SseResponse::new()
                .without_date()
                .start(Mock(Arc::clone(tape)))
                .unwrap();
            hub.subscribe(conn, Subscription::new()).unwrap();
        }
        let blocked = Tape::new(false);
        let _release = Release(Arc::clone(&blocked));
        hub.subscribe(body_only(&blocked), Subscription::new())
            .unwrap();
        publish_ticks(&hub, 1..=1);
        blocked.wait("the first write", |log| log.blocked == 1);
        publish_ticks(&hub, 2..=2);

        // `stop` joins the blocked writer, so let it go a little later.
        let release = {
            let blocked = Arc::clone(&blocked);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                blocked.update(|log| log.open = true);
            })
        };
        hub.stop();
        release.join().unwrap();

        assert_eq!(hub.stats().threads, 0);
        assert_eq!(hub.stats().subscribers, 0);
        for tape in &tapes {
            assert!(tape.lock().dropped);
            let response = crate::testing::decode_response(tape.text().as_bytes()).unwrap();
            assert!(response.finished);
            let data: Vec<_> = response.events().iter().map(|e| e.data.as_str()).collect();
            assert_eq!(data, ["1", "2"]);
        }
        // The blocked one got its queued event too, in the same write as the end.
        assert_eq!(blocked.text(), tick(1) + &tick(2));
        assert_eq!(blocked.lock().writes.len(), 2);

        assert_eq!(hub.publish(Event::new("tick").data("3")).unwrap(), 0);
        hub.stop(); // again: nothing to do
    }

    #[test]
    fn subscribing_to_a_stopped_hub_finishes_the_stream() {
        let hub = Hub::new(Config::new());
        hub.stop();
        let tape = Tape::new(true);
        let conn = SseResponse::new()
            .without_date()
            .start(Mock(Arc::clone(&tape)))
            .unwrap();
        let err = hub.subscribe(conn, Subscription::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotConnected);
        assert!(err.to_string().contains("stopped"), "{err}");
        assert!(tape.text().ends_with("0\r\n\r\n"));
        assert!(tape.lock().dropped);
    }

    #[test]
    fn dropping_the_hub_stops_it() {
        let tape = Tape::new(true);
        {
            let hub = Hub::new(Config::new());
            let conn = SseResponse::new()
                .without_date()
                .start(Mock(Arc::clone(&tape)))
                .unwrap();
            hub.subscribe(conn, Subscription::new()).unwrap();
        }
        // Dropping joined the writer, which had dropped the stream.
        assert!(tape.lock().dropped);
        assert!(tape.text().ends_with("0\r\n\r\n"));
    }

    #[test]
    fn a_newer_subscription_with_the_same_key_takes_over() {
        let hub = Hub::new(Config::new());
        let old = Tape::new(true);
        let new = Tape::new(true);
        let start = |tape: &Arc<Tape>| {
            SseResponse::new()
                .without_date()
                .start(Mock(Arc::clone(tape)))
                .unwrap()
        };
        hub.subscribe(start(&old), Subscription::new().key("tab"))
            .unwrap();
        hub.subscribe(start(&new), Subscription::new().key("other"))
            .unwrap();
        hub.subscribe(start(&new), Subscription::new().key("tab"))
            .unwrap();
        old.wait("the old stream to end", |log| log.dropped);
        assert!(old.text().ends_with("0\r\n\r\n"), "{}", old.text());
        let stats = hub.stats();
        assert_eq!((stats.subscribers, stats.taken_over), (2, 1), "{stats:?}");
        assert_eq!(hub.publish(Event::new("tick").data("1")).unwrap(), 2);
    }

    /// Subscribes a recording writer and returns what it has received once
    /// `events` events have arrived.
    fn received(
        hub: &Hub,
        sub: Subscription,
        publish: impl FnOnce(),
        events: usize,
    ) -> Vec<String> {
        let tape = Tape::new(true);
        let conn = SseResponse::new()
            .without_date()
            .start(Mock(Arc::clone(&tape)))
            .unwrap();
        hub.subscribe(conn, sub).unwrap();
        publish();
        let count = |log: &Log| {
            let bytes = log.writes.concat();
            crate::testing::decode_response(&bytes)
                .unwrap()
                .events()
                .len()
        };
        tape.wait("the events", |log| count(log) >= events);
        let bytes = tape.lock().writes.concat();
        let response = crate::testing::decode_response(&bytes).unwrap();
        response.events().iter().map(|e| e.data.clone()).collect()
    }

    #[test]
    fn replay_resumes_after_the_last_event_id_with_no_gap() {
        let hub = Hub::new(Config::new().replay(3));
        for n in 1..=5 {
            let id = n.to_string();
            hub.publish(Event::new("tick").data(&id).id(&id)).unwrap();
        }
        let state = FormattedEvent::new(&Event::new("state").data("full")).unwrap();
        let resume = |id: Option<&str>| {
            Subscription::new()
                .last_event_id(id)
                .snapshot(state.clone())
        };
        let live = || {
            hub.publish(Event::new("tick").data("6").id("6")).unwrap();
        };

        // The ring holds 3, 4, 5: resuming after 3 replays 4 and 5.
        let got = received(&hub, resume(Some("3")), live, 3);
        assert_eq!(got, ["4", "5", "6"]);
        // Now it holds 4, 5, 6.
        let got = received(&hub, resume(Some("6")), || {}, 0);
        assert!(got.is_empty(), "{got:?}");
        // 3 is gone, and an unknown id is no better: the snapshot instead.
        for gone in [Some("3"), Some("nope"), None, Some("")] {
            let got = received(&hub, resume(gone), || {}, 1);
            assert_eq!(got, ["full"], "{gone:?}");
        }
    }

    #[test]
    fn subscribe_says_how_the_stream_started() {
        let hub = Hub::new(Config::new().replay(2));
        hub.publish(Event::new("t").data("1").id("1")).unwrap();
        hub.publish(Event::new("t").data("2").id("2")).unwrap();
        let start = |id| {
            let tape = Tape::new(true);
            hub.subscribe(body_only(&tape), Subscription::new().last_event_id(id))
                .unwrap()
        };
        assert_eq!(start(None), Replay::NotRequested);
        assert_eq!(start(Some("1")), Replay::Replayed(1));
        assert_eq!(start(Some("2")), Replay::Replayed(0));
        assert_eq!(start(Some("0")), Replay::Unavailable);

        let off = Hub::new(Config::new());
        off.publish(Event::new("t").data("1").id("1")).unwrap();
        let tape = Tape::new(true);
        let replay = off
            .subscribe(
                body_only(&tape),
                Subscription::new().last_event_id(Some("1")),
            )
            .unwrap();
        assert_eq!(replay, Replay::Unavailable);
    }

    #[test]
    fn replay_only_includes_the_subscribers_topics() {
        let hub = Hub::new(Config::new().replay(10));
        hub.publish(Event::new("t").data("0").id("0")).unwrap();
        hub.publish_to("a", Event::new("t").data("a1").id("1"))
            .unwrap();
        hub.publish_to("b", Event::new("t").data("b2").id("2"))
            .unwrap();
        hub.publish(Event::new("t").data("all3").id("3")).unwrap();
        let sub = Subscription::new().topic("a").last_event_id(Some("0"));
        assert_eq!(received(&hub, sub, || {}, 2), ["a1", "all3"]);
    }

    #[test]
    fn topics_reach_only_their_subscribers() {
        let hub = Hub::new(Config::new());
        let (a, b, none) = (Tape::new(true), Tape::new(true), Tape::new(true));
        hub.subscribe(body_only(&a), Subscription::new().topic("a"))
            .unwrap();
        hub.subscribe(body_only(&b), Subscription::new().topic("b").topic("a"))
            .unwrap();
        hub.subscribe(body_only(&none), Subscription::new())
            .unwrap();
        assert_eq!(hub.publish_to("b", Event::message("to b")).unwrap(), 1);
        assert_eq!(hub.publish_to("a", Event::message("to a")).unwrap(), 2);
        assert_eq!(hub.publish_to("c", Event::message("to c")).unwrap(), 0);
        assert_eq!(hub.publish(Event::message("to all")).unwrap(), 3);
        let sent = |tape: &Tape, n| tape.wait("the events", |log| log.writes.concat().len() >= n);
        sent(&a, 26);
        sent(&b, 38);
        sent(&none, 14);
        assert_eq!(a.text(), "data: to a\n\ndata: to all\n\n");
        assert_eq!(b.text(), "data: to b\n\ndata: to a\n\ndata: to all\n\n");
        assert_eq!(none.text(), "data: to all\n\n");
        assert_eq!(hub.stats().published, 4);
    }

    #[test]
    fn an_invalid_event_is_refused_before_anything_is_queued() {
        let hub = Hub::new(Config::new());
        let tape = Tape::new(true);
        hub.subscribe(body_only(&tape), Subscription::new())
            .unwrap();
        let err = hub.publish(Event::new("bad\ntype").data("x")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(hub.stats().published, 0);
        hub.stop();
        assert!(tape.lock().writes.is_empty());
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
        wait_for_stats(&hub, "the subscriber to leave", |s| s.threads == 0);
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
        hub.stop();
        assert!(tape.text().ends_with("0\r\n\r\n"));
        assert_eq!(name.lock().unwrap().as_deref(), Some(THREAD_NAME));
    }
}

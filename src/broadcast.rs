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
//! // Stopping the hub cuts every stream (the client reconnects, to the
//! // next process, say) and joins every thread.
//! hub.stop();
//! let mut bytes = Vec::new();
//! client.read_to_end(&mut bytes)?;
//! let response = dstar::testing::decode_response(&bytes).unwrap();
//! assert_eq!(response.events()[0].data, "hello");
//! assert!(!response.finished); // no terminating chunk: the client retries
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Design
//!
//! The hard part of fan-out over blocking sockets is the subscriber that
//! stops reading: once its socket buffer is full, a write to it blocks, and
//! whoever is writing waits with it. The hub promises that such a subscriber
//! never holds the others back for more than a bounded time, is evicted, and
//! has its connection closed.
//!
//! **Shared writers, and a hand-off for a stalled one.** A few writer
//! threads ([`Config::writers`], one per core by default) serve all
//! subscribers: each subscriber belongs to one writer, which takes turns
//! among the subscribers that have events waiting. A write to a socket with
//! room in its buffer takes microseconds, so this costs a fraction of what a
//! thread per subscriber does (measured here: about 7 µs of CPU per delivered
//! event against 24 µs, since waking 10,000 threads for every event is what
//! dominates) and holds no thread stack per subscriber. If one write blocks
//! for longer than [`Config::handoff_after`] (20 ms by default), a
//! supervisor thread hands the writer's other subscribers to a new writer
//! thread, and the blocked thread stays with the stalled subscriber alone,
//! as its own thread from then on: the way Go's runtime retakes a processor
//! from a thread blocked in a system call. So a stalled subscriber delays
//! the others sharing its writer by at most that long, once; afterwards it
//! costs a thread of its own, as it would in a thread-per-subscriber design.
//! (A thread that is merely waiting for a CPU can be handed off too; that
//! only costs a thread.) Threads are named `dstar-hub` and get a deliberate
//! stack size ([`Config::stack_size`]).
//!
//! **Publishing never blocks on a subscriber.** Each subscriber has a
//! bounded queue ([`Config::queue_capacity`]); publishing pushes an `Arc`
//! into it under a short lock and, when the subscriber was idle, puts it on
//! its writer's run queue (one wake-up per writer, not per subscriber). A
//! subscriber that cannot keep up is *evicted*: when its queue is full, or
//! when a write stays blocked for longer than [`Config::write_timeout`]. An
//! evicted stream is closed without its terminating chunk, so the client
//! sees it cut short and reconnects (with `Last-Event-ID`, see replay below);
//! a [`TcpStream`] is shut down first, so the cut is seen even if the
//! application holds a clone.
//!
//! **Coalescing.** A writer takes everything queued for a subscriber,
//! frames each event into the connection's buffer, and writes the lot with
//! one `write_all` and one `flush`. An idle stream gets each event as soon as
//! it is published; a busy one pays a fraction of a system call per event.
//!
//! **Write timeouts.** A thread blocked in `write` cannot be interrupted by
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
//! **Heartbeats.** A stream that has had no write for [`Config::heartbeat`]
//! gets [`SseConnection::check_connection`]: on a connection started with
//! [`start_socket`](SseConnection::start_socket) a peer that hung up is
//! noticed at once (otherwise the comment written then fails on the next
//! heartbeat at the latest). Subscribers whose connection fails leave the
//! hub by themselves.
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
//! the application sends its full state in the one case it has to.
//!
//! **Ids.** With replay on, the hub numbers every event published without
//! an id itself: `<epoch>-1`, `<epoch>-2`, ..., where the
//! [epoch](Hub::epoch) is drawn afresh for every hub. So an id a browser
//! kept from a process that has since restarted, or from another instance,
//! is never one of this hub's, and resuming from it takes the snapshot path
//! instead of replaying the wrong events. Leave ids to the hub: an id you
//! give yourself is kept as it is, and is then yours to keep unique across
//! restarts (the [Redis bridge](crate#features) gives the stream's entry
//! ids, which are). With replay off the hub adds no ids: nothing could be
//! resumed from them, and events stay as small as you wrote them.
//!
//! **Consistency with your own state.** The hub orders publishes and
//! subscriptions among themselves. To make a snapshot consistent with the
//! live events that follow it, change your state and publish under one lock
//! of yours, and render the snapshot and subscribe under that same lock (the
//! `chat` example does this). Subscribing writes nothing itself, so holding
//! a lock around it does not wait on the network.
//!
//! **Compression.** A subscriber's connection may be
//! [compressed](crate::compression): the event is still formatted once, and
//! each subscriber's own compressor (its own window) codes it, so CPU per
//! delivery and memory per subscriber grow with the codec (the README has
//! figures). [`Stats::compressed`] counts such subscribers, for an
//! application that caps them.
//!
//! **Shutdown.** Stopping a server is usually a restart (a deploy), and its
//! clients should come back to the next process by themselves.
//! [`Hub::stop`] (also run when the hub is dropped) therefore *cuts* every
//! stream: it writes the events still queued, then ends the stream without
//! the terminating chunk and shuts the socket down, when the writer is a
//! [`TcpStream`], in both directions — so the client sees the cut at once
//! even if the application still holds a clone of the socket. To the client
//! that is a network error, not the end of the response: an `EventSource`,
//! and the Datastar client with its default `retry: 'auto'`, reconnect
//! (Datastar a second later, then backing off, ten tries by default) and
//! send `Last-Event-ID`. A
//! cleanly ended stream, by contrast, is *done* to the Datastar client,
//! which then never asks again. So [`Hub::finish`] is the explicit variant
//! for an application that means the end: it writes what is queued and the
//! terminating chunk. Either one joins every thread the hub started; the
//! first call decides, and a stream offered to the stopped hub is ended the
//! same way. A close-delimited stream (HTTP/1.0, see
//! [`SseResponse::for_request`](crate::SseResponse::for_request)) has no
//! terminating chunk to leave out, so its client sees a cut as a clean end;
//! behind a proxy, speak HTTP/1.1 to the server (nginx:
//! `proxy_http_version 1.1`). For a writer other than a `TcpStream` the hub
//! drops it, which closes the socket unless someone else holds it.
//!
//! **Locks.** The registry lock comes before a writer's run-queue lock,
//! which comes before a subscriber's queue lock; no lock but the
//! subscriber's own connection lock is held while writing to a connection.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::connection::SseConnection;
use crate::event::{Encode, FormattedEvent};

/// A writer keeps at most this much room for waiting events once it is
/// done with a batch: idle streams are the many.
const SHRINK_ABOVE: usize = 32;

/// The name of every thread a hub starts.
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
    writers: usize,
    handoff_after: Duration,
    stack_size: usize,
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
    resume_with: Option<Vec<(Option<Box<str>>, FormattedEvent)>>,
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

    /// Resume with these events instead of the ones in the hub's ring: every
    /// event published after the [`last_event_id`](Subscription::last_event_id),
    /// oldest first, each with the topic it was published to (`None` for
    /// everyone), up to and including the newest one this hub has published.
    ///
    /// This is for a hub fed from a durable log that outlives its ring, such
    /// as a Redis stream (see [`redis_bridge`](crate#features)): the caller
    /// reads what the client missed from the log, and subscribes while
    /// nothing else publishes to the hub, so that the live events follow
    /// with no gap and no duplicate. The hub keeps only the events of the
    /// subscription's topics, and [`Hub::subscribe`] returns
    /// [`Replay::Replayed`] with their number; the snapshot is not sent.
    pub fn resume_with(mut self, missed: Vec<(Option<String>, FormattedEvent)>) -> Self {
        let missed = missed
            .into_iter()
            .map(|(topic, event)| (topic.map(String::into_boxed_str), event))
            .collect();
        self.resume_with = Some(missed);
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
/// `disconnected`, `taken_over`, `reset`, or (at shutdown) none of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Subscribers now in the hub.
    pub subscribers: usize,
    /// Threads the hub runs: its shared writers, the supervisor, and one
    /// per subscriber that was handed a thread of its own and is still
    /// being written (none before the first subscription or after
    /// [`stop`](Hub::stop)).
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
    /// Stalled subscribers handed a thread of their own (see
    /// [`Config::handoff_after`]).
    pub handoffs: u64,
    /// Subscribers cut off by [`Hub::reset`].
    pub reset: u64,
    /// Subscribers now in the hub whose stream is
    /// [compressed](crate::compression): each holds a compressor of its own
    /// (a few hundred KiB). Read it before starting a stream to cap them:
    /// past your limit, start new streams with
    /// [`Compression::off`](crate::compression::Compression::off).
    pub compressed: usize,
}

/// A broadcast hub: many SSE streams, written by a few shared threads.
///
/// Share it between request threads in an `Arc`; dropping the last one stops
/// it. See the [module docs](self) for how it behaves.
///
/// With replay on, the hub numbers the events published without an id
/// itself, as `<epoch>-<n>`; see [replay](self#design) and [`Hub::epoch`].
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
    /// A hub with no subscribers. It starts its threads with the first
    /// subscription.
    pub fn new(config: Config) -> Hub {
        let writers = match config.writers {
            0 => thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let shards = (0..writers)
            .map(|_| Shard {
                run: Mutex::new(Run {
                    queue: VecDeque::new(),
                    members: HashMap::new(),
                    owner: 0,
                    writing: None,
                    tid: None,
                    stopping: false,
                }),
                ready: Condvar::new(),
            })
            .collect();
        Hub {
            shared: Arc::new(Shared {
                config,
                epoch: new_epoch(),
                clock: Instant::now(),
                state: Mutex::new(State {
                    stopped: false,
                    started: false,
                    next_id: 0,
                    next_event: 0,
                    next_shard: 0,
                    subscribers: HashMap::new(),
                    keys: HashMap::new(),
                    ring: VecDeque::new(),
                    threads: Vec::new(),
                }),
                shards,
                counters: Counters::default(),
                stopping: AtomicBool::new(false),
                finishing: AtomicBool::new(false),
                supervisor: OnceLock::new(),
                supervisor_idle: AtomicBool::new(false),
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
    /// If the hub is stopped, the stream is ended at once, the way
    /// [`stop`](Hub::stop) or [`finish`](Hub::finish) ended the others, and
    /// an error of kind [`NotConnected`](io::ErrorKind::NotConnected) is
    /// returned. If
    /// setting the write timeout or starting the hub's threads (on the first
    /// subscription) fails, the connection is dropped and that error is
    /// returned.
    pub fn subscribe<W>(&self, conn: SseConnection<W>, sub: Subscription) -> io::Result<Replay>
    where
        W: Write + Send + 'static,
    {
        let shared = &self.shared;
        if let Some(socket) = (conn.get_ref() as &dyn Any).downcast_ref::<TcpStream>() {
            socket
                .set_write_timeout(Some(shared.config.write_timeout))
                .map_err(|e| context(e, "dstar hub: cannot set the socket's write timeout"))?;
        }
        let mut state = shared.lock_state();
        if state.stopped {
            drop(state);
            // As the streams were ended when the hub stopped: cut, so that the
            // client retries (and finds the next server), or finished.
            if shared.finishing.load(Ordering::SeqCst) {
                let _ = conn.finish();
            } else {
                let _ = Box::new(conn).cut();
            }
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "dstar hub: cannot subscribe, the hub is stopped",
            ));
        }
        if !state.started {
            shared.start(&mut state)?;
        }
        let finished = reap(&mut state.threads);

        let (initial, replay) = state.opening(&sub);
        state.next_id += 1;
        let id = state.next_id;
        let shard = state.next_shard;
        state.next_shard = (shard + 1) % shared.shards.len();
        let has_initial = !initial.is_empty();
        let compressed = conn.content_encoding().is_some();
        let new = Arc::new(Sub {
            id,
            shard,
            topics: sub.topics.into_boxed_slice(),
            key: sub.key,
            queue: Mutex::new(Queue {
                events: initial.into(),
                end: None,
                mode: if has_initial {
                    Mode::Scheduled
                } else {
                    Mode::Idle
                },
            }),
            ready: Condvar::new(),
            stream: Mutex::new(Some(Box::new(conn))),
            last_write: AtomicU64::new(shared.now()),
            compressed,
        });

        if let Some(key) = &new.key
            && let Some(old) = state.keys.insert(key.clone(), id)
            && shared.remove(&mut state, old, End::Finish).is_some()
        {
            let taken_over = &shared.counters.taken_over;
            taken_over.fetch_add(1, Ordering::Relaxed);
        }
        state.subscribers.insert(id, Arc::clone(&new));
        shared.counters.subscribed.fetch_add(1, Ordering::Relaxed);
        {
            let writer = &shared.shards[shard];
            let mut run = writer.lock();
            run.members.insert(id, Arc::clone(&new));
            if has_initial {
                run.queue.push_back(new);
                drop(run);
                writer.ready.notify_one();
            }
        }
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
        self.publish_formatted(None, FormattedEvent::new(&event)?)
    }

    /// Publishes an event to the subscribers of `topic` (see
    /// [`Subscription::topic`]); like [`publish`](Hub::publish) otherwise.
    pub fn publish_to(&self, topic: &str, event: impl Encode) -> io::Result<usize> {
        self.publish_formatted(Some(topic), FormattedEvent::new(&event)?)
    }

    /// Publishes an event that is already formatted — one received from
    /// another server, say (see [`FormattedEvent::parse`]) — to every
    /// subscriber, or to those of `topic`; like [`publish`](Hub::publish)
    /// otherwise.
    pub fn publish_formatted(
        &self,
        topic: Option<&str>,
        event: FormattedEvent,
    ) -> io::Result<usize> {
        let shared = &*self.shared;
        let capacity = shared.config.queue_capacity;
        let mut state = shared.lock_state();
        if state.stopped {
            return Ok(0);
        }
        let event = match event.id() {
            // Numbered under the lock, so that the numbers follow the ring's
            // order. The epoch and a number cannot break framing.
            None if shared.config.replay > 0 => {
                state.next_event += 1;
                let id = format!("{}-{}", shared.epoch, state.next_event);
                event.with_id(&id)?
            }
            _ => event,
        };
        let message = Arc::new(Message {
            event,
            topic: topic.map(Box::from),
        });
        shared.counters.published.fetch_add(1, Ordering::Relaxed);
        if shared.config.replay > 0 {
            if state.ring.len() == shared.config.replay {
                state.ring.pop_front();
            }
            state.ring.push_back(Arc::clone(&message));
        }
        let mut queued = 0;
        let mut too_slow = Vec::new();
        let mut wake: Vec<Vec<Arc<Sub>>> = vec![Vec::new(); shared.shards.len()];
        for (id, sub) in &state.subscribers {
            if !sub.wants(topic) {
                continue;
            }
            let (pushed, schedule) = sub.push(&message, capacity);
            match pushed {
                Push::Queued => queued += 1,
                Push::Full => too_slow.push(*id),
                Push::Leaving => {}
            }
            if schedule {
                wake[sub.shard].push(Arc::clone(sub));
            }
        }
        for id in too_slow {
            if shared.remove(&mut state, id, End::Drop).is_some() {
                shared.counters.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Under the registry lock, so that `stop` cannot slip in between.
        for (index, subs) in wake.into_iter().enumerate() {
            shared.schedule(index, subs);
        }
        Ok(queued)
    }

    /// The hub's epoch: the prefix of the ids it gives events published
    /// without one (`<epoch>-1`, `<epoch>-2`, ...), when replay is on.
    ///
    /// It is different for every hub, in this process and in any other (16
    /// hex digits drawn from the clock, the process id, a counter and the
    /// system's randomness), so an id that a browser kept from another
    /// process, or from an earlier hub, is never taken for one of this
    /// hub's: resuming from it takes the snapshot path.
    ///
    /// ```
    /// use dstar::broadcast::{Config, Hub};
    ///
    /// let (a, b) = (Hub::new(Config::new()), Hub::new(Config::new()));
    /// assert_ne!(a.epoch(), b.epoch());
    /// assert_eq!(a.epoch().len(), 16);
    /// ```
    pub fn epoch(&self) -> &str {
        &self.shared.epoch
    }

    /// Whether a subscription resuming after `last_event_id` would be
    /// replayed from the ring now, rather than start with its snapshot.
    ///
    /// ```
    /// use dstar::broadcast::{Config, Hub};
    /// use dstar::Event;
    ///
    /// let hub = Hub::new(Config::new().replay(10));
    /// hub.publish(Event::message("one"))?;
    /// assert!(hub.can_resume(&format!("{}-1", hub.epoch())));
    /// assert!(!hub.can_resume("1"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn can_resume(&self, last_event_id: &str) -> bool {
        let state = self.shared.lock_state();
        state
            .ring
            .iter()
            .any(|m| m.event.id() == Some(last_event_id))
    }

    /// Forgets the replay ring and cuts every stream short (no terminating
    /// chunk, so clients reconnect), without stopping the hub; returns how
    /// many streams were cut.
    ///
    /// For when the events the hub delivered can no longer be trusted to be
    /// complete — the log that feeds it lost entries, say: every client
    /// comes back, its `Last-Event-ID` is no longer known, and it starts
    /// again from its snapshot. Publish and subscribe work as before.
    pub fn reset(&self) -> usize {
        let shared = &*self.shared;
        let mut state = shared.lock_state();
        state.ring.clear();
        let ids: Vec<u64> = state.subscribers.keys().copied().collect();
        let mut cut = 0;
        for id in ids {
            if shared.remove(&mut state, id, End::Drop).is_some() {
                cut += 1;
            }
        }
        shared
            .counters
            .reset
            .fetch_add(cut as u64, Ordering::Relaxed);
        cut
    }

    /// The hub's counters, as of now.
    pub fn stats(&self) -> Stats {
        let (subscribers, compressed) = {
            let state = self.shared.lock_state();
            let compressed = state.subscribers.values().filter(|s| s.compressed).count();
            (state.subscribers.len(), compressed)
        };
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
            handoffs: c.handoffs.load(Ordering::Relaxed),
            reset: c.reset.load(Ordering::Relaxed),
            compressed,
        }
    }

    /// Stops the hub so that its clients come back: cuts every stream and
    /// joins every thread the hub started. Use it when the server stops to
    /// be restarted, a deploy say; it is also what dropping the hub does.
    ///
    /// Each stream gets what is still queued for it, then ends *without*
    /// the terminating chunk, and a [`TcpStream`] is shut down: the client
    /// sees a network error and reconnects with `Last-Event-ID`, as the
    /// Datastar client and `EventSource` do by default (see the
    /// [module docs](self#design), "Shutdown").
    ///
    /// Returns when all threads have ended. A writer blocked on a client
    /// that does not read ends when its write times out, so this can take
    /// up to [`Config::write_timeout`]. Later calls to `subscribe` fail and
    /// `publish` delivers nothing; calling `stop` or `finish` again does
    /// nothing.
    ///
    /// ```
    /// use dstar::broadcast::{Hub, Subscription};
    /// use dstar::{Event, SseConnection, testing};
    /// # use std::io::{self, Write};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Clone, Default)]
    /// # struct Shared(Arc<Mutex<Vec<u8>>>);
    /// # impl Write for Shared {
    /// #     fn write(&mut self, b: &[u8]) -> io::Result<usize> { self.0.lock().unwrap().write(b) }
    /// #     fn flush(&mut self) -> io::Result<()> { Ok(()) }
    /// # }
    /// let out = Shared::default(); // a writer the test can read back
    /// let hub = Hub::default();
    /// hub.subscribe(SseConnection::start(out.clone())?, Subscription::new())?;
    /// hub.publish(Event::new("tick").data("1"))?;
    /// hub.stop();
    ///
    /// let response = testing::decode_response(&out.0.lock().unwrap()).unwrap();
    /// assert_eq!(response.events()[0].data, "1");
    /// assert!(!response.finished); // cut short: the client reconnects
    /// # Ok::<(), io::Error>(())
    /// ```
    pub fn stop(&self) {
        self.end_all(End::Cut);
    }

    /// Stops the hub for good: finishes every stream (what is still queued
    /// for it, then its terminating chunk, in one write) and joins every
    /// thread the hub started.
    ///
    /// A cleanly ended stream tells the client there is nothing more to
    /// come: the Datastar client does not reconnect after it. Use this only
    /// when the application means the end; to restart a server use
    /// [`stop`](Hub::stop), after which clients come back by themselves.
    /// Otherwise like `stop`: calling either again does nothing.
    pub fn finish(&self) {
        self.end_all(End::Finish);
    }

    fn end_all(&self, end: End) {
        let shared = &*self.shared;
        let threads = {
            let mut state = shared.lock_state();
            if !state.stopped {
                let finishing = end == End::Finish;
                shared.finishing.store(finishing, Ordering::SeqCst);
            }
            state.stopped = true;
            shared.stopping.store(true, Ordering::SeqCst);
            state.keys.clear();
            state.ring = VecDeque::new();
            let ids: Vec<u64> = state.subscribers.keys().copied().collect();
            for id in ids {
                shared.remove(&mut state, id, end);
            }
            // Writers finish what is on their run queues, then leave.
            for shard in shared.shards.iter() {
                shard.lock().stopping = true;
                shard.ready.notify_all();
            }
            if let Some(supervisor) = shared.supervisor.get() {
                supervisor.unpark();
            }
            std::mem::take(&mut state.threads)
        };
        join_all(threads);
    }
}

/// A hub's epoch: 64 bits, as 16 hex digits, different for every hub.
///
/// A process-wide counter keeps two hubs of one process apart even when
/// they are made in the same nanosecond; the process id and the time keep
/// processes apart, and `RandomState`'s keys (drawn from the system's
/// randomness once per thread, then varied per instance) make it
/// unpredictable and keep apart processes whose ids and clocks agree
/// (containers, a clock set back). Hashed together, not concatenated, so
/// that the id stays short.
fn new_epoch() -> Box<str> {
    use std::hash::{BuildHasher, Hasher};
    static HUBS: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(HUBS.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    let since_1970 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(since_1970.as_nanos());
    format!("{:016x}", hasher.finish()).into_boxed_str()
}

/// Object-safe formatting, so `publish_message` is compiled once rather
/// than once per event type.
fn context(err: io::Error, what: &str) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// Takes out the threads that have finished, to be joined, and keeps the
/// others.
fn reap(threads: &mut Vec<JoinHandle<()>>) -> Vec<JoinHandle<()>> {
    let (finished, running) = std::mem::take(threads)
        .into_iter()
        .partition(JoinHandle::is_finished);
    *threads = running;
    finished
}

fn join_all(handles: Vec<JoinHandle<()>>) {
    for handle in handles {
        // Writers catch panics from connections themselves; there is
        // nothing to report here that the panic hook has not printed.
        let _ = handle.join();
    }
}

/// A connection whose writer type has been forgotten, so that one writer
/// thread can serve connections of any type.
trait Stream: Send {
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
        SseConnection::flush(self)
    }
    fn check(&mut self) -> io::Result<()> {
        self.check_connection()
    }
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        // The hub never hands a connection back, so it ends with its stream.
        let finished = self.end_body();
        self.abandon();
        finished
    }
    fn cut(mut self: Box<Self>) -> io::Result<()> {
        let flushed = SseConnection::flush(&mut self);
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

struct Shared {
    config: Config,
    /// The prefix of the ids the hub gives events.
    epoch: Box<str>,
    /// The zero of the nanosecond times kept in atomics.
    clock: Instant,
    state: Mutex<State>,
    shards: Box<[Shard]>,
    counters: Counters,
    /// Set by `stop`, for the supervisor.
    stopping: AtomicBool,
    /// The hub was stopped with `finish` rather than `stop`.
    finishing: AtomicBool,
    supervisor: OnceLock<Thread>,
    /// The supervisor is parked until a writer starts writing.
    supervisor_idle: AtomicBool,
}

impl Shared {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        // Connections' panics are caught away from this lock, so it is
        // never poisoned by them; recover anyway rather than cascade.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    /// Starts the writers and the supervisor (on the first subscription).
    /// If one cannot be started, those already started are stopped again,
    /// so that a later subscription can try afresh.
    fn start(self: &Arc<Self>, state: &mut State) -> io::Result<()> {
        let mut started = Vec::new();
        let mut spawned = Ok(());
        for index in 0..self.shards.len() {
            let shared = Arc::clone(self);
            match self.spawn(move || write_shard(shared, index, 0)) {
                Ok(handle) => started.push(handle),
                Err(e) => {
                    spawned = Err(context(e, "dstar hub: cannot start a writer thread"));
                    break;
                }
            }
        }
        if spawned.is_ok() {
            let shared = Arc::clone(self);
            match self.spawn(move || supervise(shared)) {
                Ok(handle) => {
                    let _ = self.supervisor.set(handle.thread().clone());
                    started.push(handle);
                }
                Err(e) => spawned = Err(context(e, "dstar hub: cannot start its supervisor")),
            }
        }
        if let Err(e) = spawned {
            // Their run queues are empty: told to stop, they leave at once.
            self.shards.iter().for_each(|s| s.lock().stopping = true);
            self.shards.iter().for_each(|s| s.ready.notify_all());
            join_all(started);
            self.shards.iter().for_each(|s| s.lock().stopping = false);
            return Err(e);
        }
        state.threads.extend(started);
        state.started = true;
        Ok(())
    }

    /// Starts a named thread with the configured stack, counted in
    /// `Stats::threads` while it runs.
    fn spawn(self: &Arc<Self>, body: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
        struct Running(Arc<Shared>);
        impl Drop for Running {
            fn drop(&mut self) {
                self.0.counters.threads.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.counters.threads.fetch_add(1, Ordering::Relaxed);
        let running = Running(Arc::clone(self));
        let spawned = thread::Builder::new()
            .name(THREAD_NAME.to_string())
            .stack_size(self.config.stack_size)
            .spawn(move || {
                let _running = running;
                body();
            });
        // On failure the closure, and `running` with it, is dropped.
        spawned
    }

    /// Takes a subscriber out of the registry and tells its writer how to
    /// end the stream; returns it if it was still registered.
    fn remove(&self, state: &mut State, id: u64, end: End) -> Option<Arc<Sub>> {
        let sub = state.subscribers.remove(&id)?;
        if let Some(key) = &sub.key
            && state.keys.get(key) == Some(&id)
        {
            state.keys.remove(key);
        }
        if sub.end(end) {
            self.schedule(sub.shard, vec![Arc::clone(&sub)]);
        }
        Some(sub)
    }

    /// Puts subscribers on their writer's run queue, and wakes it.
    fn schedule(&self, index: usize, subs: Vec<Arc<Sub>>) {
        if subs.is_empty() {
            return;
        }
        let shard = &self.shards[index];
        shard.lock().queue.extend(subs);
        shard.ready.notify_one();
    }

    /// Removes a subscriber whose connection failed, and counts why. Does
    /// nothing if it was already removed (and counted) by an eviction, a
    /// takeover or `stop`.
    fn leave(&self, sub: &Sub, why: Left) {
        let mut state = self.lock_state();
        if state
            .subscribers
            .get(&sub.id)
            .is_some_and(|s| std::ptr::eq(&**s, sub))
        {
            self.remove(&mut state, sub.id, End::Drop);
            let counter = match why {
                Left::TooSlow => &self.counters.evicted,
                Left::Failed => &self.counters.disconnected,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn count_delivered(&self, events: usize) {
        let delivered = &self.counters.delivered;
        delivered.fetch_add(events as u64, Ordering::Relaxed);
    }

    /// Tells the supervisor a write has started, if it is parked.
    fn wake_supervisor(&self) {
        if self.supervisor_idle.load(Ordering::SeqCst)
            && let Some(supervisor) = self.supervisor.get()
        {
            supervisor.unpark();
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
    handoffs: AtomicU64,
    reset: AtomicU64,
}

struct State {
    stopped: bool,
    /// The writers and the supervisor are running.
    started: bool,
    next_id: u64,
    /// The number of the last event the hub gave an id.
    next_event: u64,
    /// The writer the next subscriber joins: round robin.
    next_shard: usize,
    subscribers: HashMap<u64, Arc<Sub>>,
    /// Takeover keys, and the subscriber that holds each.
    keys: HashMap<String, u64>,
    /// The most recent events, oldest first, for replay.
    ring: VecDeque<Arc<Message>>,
    /// Every thread the hub started and has not joined.
    threads: Vec<JoinHandle<()>>,
}

impl State {
    /// The events a new subscription opens with, and how it started.
    fn opening(&self, sub: &Subscription) -> (Vec<Arc<Message>>, Replay) {
        let wants = |m: &Message| match &m.topic {
            None => true,
            Some(topic) => sub.topics.contains(topic),
        };
        if let Some(missed) = &sub.resume_with {
            let missed: Vec<_> = missed
                .iter()
                .filter(|(topic, _)| match topic {
                    None => true,
                    Some(topic) => sub.topics.contains(topic),
                })
                .map(|(topic, event)| {
                    Arc::new(Message {
                        event: event.clone(),
                        topic: topic.clone(),
                    })
                })
                .collect();
            let n = missed.len();
            return (missed, Replay::Replayed(n));
        }
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
}

/// One writer thread's share of the subscribers.
struct Shard {
    run: Mutex<Run>,
    /// Signalled when the run queue gets work, or the hub stops.
    ready: Condvar,
}

struct Run {
    /// Subscribers with something to write, in turn.
    queue: VecDeque<Arc<Sub>>,
    /// Every subscriber this writer serves, for heartbeats.
    members: HashMap<u64, Arc<Sub>>,
    /// Which thread owns this writer: bumped when the supervisor hands the
    /// writer to a new thread.
    owner: u64,
    /// The subscriber being written to, and since when.
    writing: Option<(Arc<Sub>, Instant)>,
    /// The owning thread's id, where the system tells (Linux), so that the
    /// supervisor can ask whether it is blocked or only waiting for a CPU.
    tid: Option<u32>,
    stopping: bool,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Run> {
        self.run.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One published event, shared by every queue it is in.
struct Message {
    event: FormattedEvent,
    topic: Option<Box<str>>,
}

/// One subscriber.
struct Sub {
    id: u64,
    /// The writer it belongs to.
    shard: usize,
    topics: Box<[Box<str>]>,
    key: Option<String>,
    queue: Mutex<Queue>,
    /// Signalled for a subscriber with a thread of its own, when its queue
    /// stops being empty or `end` is set.
    ready: Condvar,
    /// Taken (and dropped) when the stream ends. Only the one thread that
    /// serves the subscriber at a time locks it.
    stream: Mutex<Option<Box<dyn Stream>>>,
    /// When it was last written to, in `Shared::now` time.
    last_write: AtomicU64,
    /// Whether its stream is compressed, for `Stats::compressed`.
    compressed: bool,
}

struct Queue {
    events: VecDeque<Arc<Message>>,
    /// Set when the stream must end; the first reason given wins.
    end: Option<End>,
    mode: Mode,
}

/// Where a subscriber is, as far as being written goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Nothing to write; not on a run queue.
    Idle,
    /// On its writer's run queue, or being written to.
    Scheduled,
    /// Written by a thread of its own, which waits on `Sub::ready`.
    Dedicated,
}

/// How the hub tells a writer to end a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Write what is queued and the terminating chunk (takeover, `finish`).
    Finish,
    /// Write what is queued and end without the terminating chunk (`stop`).
    Cut,
    /// End the connection without another write (eviction).
    Drop,
}

enum Push {
    Queued,
    Full,
    Leaving,
}

/// Why a subscriber left the hub by itself.
#[derive(Clone, Copy, Debug)]
enum Left {
    TooSlow,
    Failed,
}

/// What became of a subscriber after a turn of writing.
enum Outcome {
    /// Still open.
    Open,
    /// Ended: by the hub (`None`, already counted), or by its connection.
    Ended(Option<Left>),
}

impl Sub {
    fn wants(&self, topic: Option<&str>) -> bool {
        match topic {
            None => true,
            Some(topic) => self.topics.iter().any(|t| **t == *topic),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues an event; the `bool` says whether the subscriber must be put
    /// on its writer's run queue.
    fn push(&self, message: &Arc<Message>, capacity: usize) -> (Push, bool) {
        let mut queue = self.lock();
        if queue.end.is_some() {
            return (Push::Leaving, false);
        }
        if queue.events.len() >= capacity {
            queue.end = Some(End::Drop);
            return (Push::Full, self.signal(queue, true));
        }
        let was_empty = queue.events.is_empty();
        queue.events.push_back(Arc::clone(message));
        (Push::Queued, self.signal(queue, was_empty))
    }

    /// Tells the hub to end the stream; `true` if the subscriber must be put
    /// on its writer's run queue for that.
    fn end(&self, end: End) -> bool {
        let mut queue = self.lock();
        queue.end.get_or_insert(end);
        self.signal(queue, true)
    }

    /// Makes sure whoever writes this subscriber will look at its queue.
    fn signal(&self, mut queue: MutexGuard<'_, Queue>, wake: bool) -> bool {
        match queue.mode {
            Mode::Idle => {
                queue.mode = Mode::Scheduled;
                true
            }
            // Its writer looks at the queue again when it is done.
            Mode::Scheduled => false,
            Mode::Dedicated => {
                drop(queue);
                // Its thread only waits on an empty queue; notifying after
                // unlocking spares it waking only to wait for the lock.
                if wake {
                    self.ready.notify_one();
                }
                false
            }
        }
    }
}

/// Serves one subscriber once: ends its stream if the hub said so, writes
/// what is queued in one write, or checks an idle connection. `batch` is
/// scratch space, swapped with the queue so the lock is held only briefly.
fn serve(shared: &Shared, sub: &Sub, batch: &mut VecDeque<Arc<Message>>) -> Outcome {
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

fn write_batch(
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
fn drop_stream(sub: &Sub) {
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
fn write_shard(shared: Arc<Shared>, index: usize, generation: u64) {
    let shard = &shared.shards[index];
    let heartbeat = shared.config.heartbeat;
    // Heartbeats are due `heartbeat` after the last write; looking four
    // times per interval (at most every second) sends each within a quarter
    // of an interval of when it is due.
    let tick = (heartbeat / 4).clamp(Duration::from_millis(1), Duration::from_secs(1));
    let mut next_scan = Instant::now() + tick;
    let mut batch = VecDeque::new();
    let tid = current_tid();
    {
        let mut run = shard.lock();
        if run.owner == generation {
            run.tid = tid;
        }
    }
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
fn scan_heartbeats(shared: &Shared, run: &mut Run) {
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
fn dedicated(shared: &Shared, sub: &Arc<Sub>, first: Outcome) {
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

/// The supervisor: hands a writer whose current write has taken longer
/// than `handoff_after` to a new thread. Parked while no writer is writing.
fn supervise(shared: Arc<Shared>) {
    let limit = shared.config.handoff_after;
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let mut busy = false;
        for index in 0..shared.shards.len() {
            let (started, tid) = {
                let run = shared.shards[index].lock();
                (run.writing.as_ref().map(|(_, since)| *since), run.tid)
            };
            if let Some(since) = started {
                busy = true;
                // On a busy machine a writer can wait for a CPU for longer
                // than the limit; only one asleep in the kernel is stuck.
                if since.elapsed() >= limit && tid.is_none_or(is_asleep) {
                    hand_off(&shared, index);
                }
            }
        }
        if busy {
            thread::park_timeout(limit / 2);
            continue;
        }
        // Park until a writer starts writing. A writer sets `writing` under
        // its lock and then reads the flag, so either the check below sees
        // it writing or the writer sees the flag and unparks.
        shared.supervisor_idle.store(true, Ordering::SeqCst);
        let writing = shared.shards.iter().any(|s| s.lock().writing.is_some());
        if !writing && !shared.stopping.load(Ordering::SeqCst) {
            thread::park();
        }
        shared.supervisor_idle.store(false, Ordering::SeqCst);
    }
}

/// The calling thread's id, from `/proc/thread-self` (Linux only).
fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// Whether a thread of this process is asleep in the kernel (blocked in a
/// write, say) rather than running or waiting for a CPU. If the system does
/// not say, it is taken to be asleep.
fn is_asleep(tid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return true;
    };
    // "tid (name) S ...": the name may hold spaces and parentheses.
    let state = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().next());
    !matches!(state, Some("R"))
}

fn hand_off(shared: &Arc<Shared>, index: usize) {
    let mut state = shared.lock_state();
    if state.stopped {
        // `stop` joins the stuck thread anyway, once its write returns.
        return;
    }
    let shard = &shared.shards[index];
    let mut run = shard.lock();
    let stuck = match &run.writing {
        Some((sub, since)) if since.elapsed() >= shared.config.handoff_after => Arc::clone(sub),
        _ => return,
    };
    // Spawned under the writer's lock: the stuck thread cannot return from
    // its write and look at `owner` until the new thread owns the writer.
    let generation = run.owner + 1;
    let owner = Arc::clone(shared);
    let Ok(handle) = shared.spawn(move || write_shard(owner, index, generation)) else {
        // Out of threads: the writer waits for its write like a shared one
        // would, and the supervisor tries again on its next round.
        return;
    };
    run.owner = generation;
    run.writing = None;
    run.members.remove(&stuck.id);
    drop(run);
    state.threads.push(handle);
    shared.counters.handoffs.fetch_add(1, Ordering::Relaxed);
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
    fn a_stalled_subscriber_is_handed_a_thread_and_its_writer_moves_on() {
        // One shared writer, so both subscribers share it.
        let hub = Hub::new(
            Config::new()
                .writers(1)
                .handoff_after(Duration::from_millis(5)),
        );
        let stalled = Tape::new(false);
        let _release = Release(Arc::clone(&stalled));
        let healthy = Tape::new(true);
        hub.subscribe(body_only(&stalled), Subscription::new())
            .unwrap();
        hub.subscribe(body_only(&healthy), Subscription::new())
            .unwrap();

        publish_ticks(&hub, 1..=1);
        stalled.wait("the stalled write", |log| log.blocked == 1);
        // The healthy one is served by a new writer while the old one is
        // still stuck.
        healthy.wait("event 1", |log| log.flushes == 1);
        publish_ticks(&hub, 2..=3);
        healthy.wait("events 2 and 3", |log| {
            log.writes.concat().len() == 3 * tick(1).len()
        });
        let stats = hub.stats();
        assert_eq!(stats.handoffs, 1, "{stats:?}");
        // One writer, the supervisor, and the stalled one's own thread.
        assert_eq!(stats.threads, 3, "{stats:?}");

        // Released, it gets what waited in one write, and stays served.
        stalled.update(|log| log.open = true);
        stalled.wait("events 2 and 3", |log| log.writes.len() == 2);
        assert_eq!(stalled.lock().writes[1], (tick(2) + &tick(3)).as_bytes());
        publish_ticks(&hub, 4..=4);
        stalled.wait("event 4", |log| log.writes.len() == 3);
        healthy.wait("event 4", |log| {
            log.writes.concat().len() == 4 * tick(1).len()
        });
        assert_eq!(hub.stats().subscribers, 2);
        hub.stop();
        assert_eq!(hub.stats().threads, 0);
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

    /// Three streams that can be written and one whose first write blocks,
    /// each with events 1 and 2 queued or written; then `end` is called on
    /// the hub while the blocked write is let go a little later. Returns
    /// the tapes, the blocked one last.
    fn end_with_a_blocked_writer(hub: &Hub, end: fn(&Hub)) -> Vec<Arc<Tape>> {
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
        publish_ticks(hub, 1..=1);
        blocked.wait("the first write", |log| log.blocked == 1);
        publish_ticks(hub, 2..=2);

        // `stop` joins the blocked writer, so let it go a little later.
        let release = {
            let blocked = Arc::clone(&blocked);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                blocked.update(|log| log.open = true);
            })
        };
        end(hub);
        release.join().unwrap();

        assert_eq!(hub.stats().threads, 0);
        assert_eq!(hub.stats().subscribers, 0);
        // The blocked one got its queued event too, in one write after the first.
        assert_eq!(blocked.text(), tick(1) + &tick(2));
        assert_eq!(blocked.lock().writes.len(), 2);
        assert!(blocked.lock().dropped);

        assert_eq!(hub.publish(Event::new("tick").data("3")).unwrap(), 0);
        let mut all = tapes;
        all.push(blocked);
        all
    }

    fn check_ticks(tape: &Tape) -> crate::testing::Response {
        assert!(tape.lock().dropped);
        let response = crate::testing::decode_response(tape.text().as_bytes()).unwrap();
        let data: Vec<_> = response.events().iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["1", "2"]);
        response
    }

    #[test]
    fn stop_cuts_every_stream_after_what_was_queued_and_joins_threads() {
        let hub = Hub::new(Config::new());
        let tapes = end_with_a_blocked_writer(&hub, Hub::stop);
        for tape in &tapes[..3] {
            let response = check_ticks(tape);
            // No terminating chunk: the client sees the stream cut and reconnects.
            assert!(!response.finished, "{:?}", tape.text());
        }
        hub.stop(); // again: nothing to do
        hub.finish(); // nor this: the first call decided
        for tape in &tapes[..3] {
            assert!(!tape.text().ends_with("0\r\n\r\n"));
        }
    }

    #[test]
    fn finish_ends_every_stream_with_its_terminating_chunk() {
        let hub = Hub::new(Config::new());
        let tapes = end_with_a_blocked_writer(&hub, Hub::finish);
        for tape in &tapes[..3] {
            assert!(check_ticks(tape).finished);
        }
        // The blocked one's queued event and the end went out in one write.
        let blocked = &tapes[3];
        assert_eq!(blocked.lock().writes.last().unwrap(), tick(2).as_bytes());
        hub.stop(); // nothing to do: already finished
        hub.finish();
    }

    #[test]
    fn subscribing_to_a_stopped_hub_ends_the_stream_as_the_others_were() {
        for (end, finished) in [(Hub::stop as fn(&Hub), false), (Hub::finish, true)] {
            let hub = Hub::new(Config::new());
            end(&hub);
            let tape = Tape::new(true);
            let conn = SseResponse::new()
                .without_date()
                .start(Mock(Arc::clone(&tape)))
                .unwrap();
            let err = hub.subscribe(conn, Subscription::new()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::NotConnected);
            assert!(err.to_string().contains("stopped"), "{err}");
            assert_eq!(tape.text().ends_with("0\r\n\r\n"), finished);
            assert!(tape.text().starts_with("HTTP/1.1 200 OK\r\n"));
            assert!(tape.lock().dropped);
        }
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
        // Dropping joined the writer, which had cut the stream: a server
        // that exits lets its clients come back to the next one.
        assert!(tape.lock().dropped);
        assert!(tape.text().starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(!tape.text().ends_with("0\r\n\r\n"));
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

    /// The ids of what a recording writer received.
    fn ids_of(tape: &Tape) -> Vec<String> {
        let bytes = tape.lock().writes.concat();
        let response = crate::testing::decode_response(&bytes).unwrap();
        response
            .events()
            .iter()
            .map(|e| e.last_event_id.clone())
            .collect()
    }

    #[test]
    fn with_replay_the_hub_numbers_events_and_keeps_given_ids() {
        let hub = Hub::new(Config::new().replay(10));
        let tape = Tape::new(true);
        hub.subscribe(with_head(&tape), Subscription::new())
            .unwrap();
        hub.publish(Event::message("a")).unwrap();
        hub.publish(Event::message("b").id("mine")).unwrap();
        hub.publish_to("t", Event::message("c")).unwrap();
        hub.publish(Event::message("d")).unwrap();
        tape.wait("3 events", |log| ids_of_log(log) == 3);
        let epoch = hub.epoch();
        assert_eq!(
            ids_of(&tape),
            // One numbering for the hub: the topic's event took number 2.
            [format!("{epoch}-1"), "mine".into(), format!("{epoch}-3")]
        );

        // Without replay, events stay as they were published.
        let off = Hub::new(Config::new());
        let tape = Tape::new(true);
        off.subscribe(with_head(&tape), Subscription::new())
            .unwrap();
        off.publish(Event::message("a")).unwrap();
        tape.wait("the event", |log| ids_of_log(log) == 1);
        assert!(
            tape.text().ends_with("\r\ndata: a\n\n\r\n"),
            "{}",
            tape.text()
        );
    }

    #[test]
    fn epochs_differ_between_hubs_made_at_once() {
        let epochs: Vec<String> = thread::scope(|s| {
            let makers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..250)
                            .map(|_| Hub::new(Config::new()).epoch().to_string())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            makers.into_iter().flat_map(|m| m.join().unwrap()).collect()
        });
        let unique: std::collections::HashSet<_> = epochs.iter().collect();
        assert_eq!(unique.len(), epochs.len());
        assert!(epochs.iter().all(|e| e.len() == 16));
    }

    #[test]
    fn an_id_from_a_previous_process_takes_the_snapshot_path() {
        // The previous process: ids given by its hub, one of them kept by a
        // browser.
        let old = Hub::new(Config::new().replay(100));
        let tape = Tape::new(true);
        old.subscribe(with_head(&tape), Subscription::new())
            .unwrap();
        for n in 1..=6 {
            old.publish(Event::message(&n.to_string())).unwrap();
        }
        tape.wait("6 events", |log| ids_of_log(log) == 6);
        let kept = ids_of(&tape)[5].clone();
        drop(old);

        // The new process publishes more than that before the tab is back.
        let new = Hub::new(Config::new().replay(100));
        for n in 1..=12 {
            new.publish(Event::message(&format!("new {n}"))).unwrap();
        }
        let state = FormattedEvent::new(&Event::new("state").data("full")).unwrap();
        let tape = Tape::new(true);
        let sub = Subscription::new()
            .last_event_id(Some(&kept))
            .snapshot(state);
        assert_eq!(
            new.subscribe(with_head(&tape), sub).unwrap(),
            Replay::Unavailable
        );
        new.publish(Event::message("live")).unwrap();
        tape.wait("2 events", |log| ids_of_log(log) == 2);
        let response = crate::testing::decode_response(tape.text().as_bytes()).unwrap();
        let data: Vec<_> = response.events().iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["full", "live"]);
        assert!(!new.can_resume(&kept));
    }

    fn with_head(tape: &Arc<Tape>) -> SseConnection<Mock> {
        SseResponse::new()
            .without_date()
            .start(Mock(Arc::clone(tape)))
            .unwrap()
    }

    fn ids_of_log(log: &Log) -> usize {
        let bytes = log.writes.concat();
        crate::testing::decode_response(&bytes)
            .unwrap()
            .events()
            .len()
    }

    #[test]
    fn numbered_replay_has_no_gap_and_no_duplicate() {
        let hub = Arc::new(Hub::new(Config::new().replay(1000)));
        // A publisher keeps going while clients resume from ids they saw.
        let first = Tape::new(true);
        hub.subscribe(with_head(&first), Subscription::new())
            .unwrap();
        let publisher = {
            let hub = Arc::clone(&hub);
            thread::spawn(move || {
                for n in 1..=500 {
                    hub.publish(Event::message(&n.to_string())).unwrap();
                }
            })
        };
        first.wait("100 events", |log| ids_of_log(log) >= 100);
        let seen = ids_of(&first);
        let resumed = Tape::new(true);
        let at = seen.len() / 2;
        let sub = Subscription::new().last_event_id(Some(&seen[at - 1]));
        assert!(matches!(
            hub.subscribe(with_head(&resumed), sub).unwrap(),
            Replay::Replayed(_)
        ));
        publisher.join().unwrap();
        first.wait("500 events", |log| ids_of_log(log) == 500);
        resumed.wait("the rest", |log| ids_of_log(log) == 500 - at);
        let all = ids_of(&first);
        assert_eq!(ids_of(&resumed), all[at..]);
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), 500);
    }

    #[test]
    fn resume_with_replaces_the_ring_and_keeps_the_topics() {
        let hub = Hub::new(Config::new().replay(10));
        hub.publish(Event::message("in the ring").id("9")).unwrap();
        let event =
            |data: &str, id: &str| FormattedEvent::new(&Event::message(data).id(id)).unwrap();
        let missed = vec![
            (None, event("1", "1")),
            (Some("other".to_string()), event("2", "2")),
            (Some("mine".to_string()), event("3", "3")),
        ];
        let tape = Tape::new(true);
        let sub = Subscription::new()
            .topic("mine")
            .last_event_id(Some("0"))
            .snapshot(event("snapshot", "s"))
            .resume_with(missed);
        assert_eq!(
            hub.subscribe(with_head(&tape), sub).unwrap(),
            Replay::Replayed(2)
        );
        hub.publish(Event::message("live").id("10")).unwrap();
        tape.wait("3 events", |log| ids_of_log(log) == 3);
        assert_eq!(ids_of(&tape), ["1", "3", "10"]);
    }

    #[test]
    fn reset_forgets_the_ring_and_cuts_every_stream() {
        let hub = Hub::new(Config::new().replay(10));
        let tapes: Vec<_> = (0..2).map(|_| Tape::new(true)).collect();
        for tape in &tapes {
            let conn = SseResponse::new()
                .without_date()
                .start(Mock(Arc::clone(tape)))
                .unwrap();
            hub.subscribe(conn, Subscription::new()).unwrap();
        }
        hub.publish(Event::message("a")).unwrap();
        let id = format!("{}-1", hub.epoch());
        assert!(hub.can_resume(&id));
        assert_eq!(hub.reset(), 2);
        for tape in &tapes {
            tape.wait("the stream to be dropped", |log| log.dropped);
            assert!(!tape.text().ends_with("0\r\n\r\n"), "{}", tape.text());
        }
        assert!(!hub.can_resume(&id));
        let stats = hub.stats();
        assert_eq!((stats.subscribers, stats.reset), (0, 2), "{stats:?}");
        // The hub goes on, numbering where it was.
        let tape = Tape::new(true);
        hub.subscribe(with_head(&tape), Subscription::new())
            .unwrap();
        hub.publish(Event::message("b")).unwrap();
        tape.wait("the event", |log| ids_of_log(log) == 1);
        assert_eq!(ids_of(&tape), [format!("{}-2", hub.epoch())]);
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

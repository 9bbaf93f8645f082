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
//! The supervisor goes by elapsed time alone, on every platform: it does not
//! ask the system whether the writer is blocked in the kernel or merely
//! waiting for a CPU on a busy machine. Handing off one that was only
//! waiting costs a thread (which serves its one subscriber from then on,
//! and ends with its stream) and nothing else: no event is lost, reordered
//! or delayed by it. (Measured with `benches/hub_load.rs`, 1000 subscribers
//! at 100 events/s on two cores at a load average of 6: 1 to 6 such
//! hand-offs in a 3 s run, 5 in a 10 s run, and the same CPU per delivery,
//! 7.05 µs against 7.15 µs, as when Linux was asked which writers were
//! asleep in the kernel, which avoided them.) Threads are named `dstar-hub`
//! and get a deliberate stack size ([`Config::stack_size`]).
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
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crate::connection::SseConnection;
use crate::event::{Encode, FormattedEvent};

mod config;
mod replay;
mod shared;
mod stats;
mod subscriber;
mod subscription;
mod supervisor;
mod writer;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub use config::Config;
pub use stats::Stats;
pub use subscription::{Replay, Subscription};

use self::replay::new_epoch;
use self::shared::{Shared, State};
use self::stats::Counters;
use self::subscriber::{End, Message, Mode, Push, Queue, Sub};
use self::writer::{Run, Shard, Stream};

/// The name of every thread a hub starts.
pub const THREAD_NAME: &str = "dstar-hub";

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
                    compressed: 0,
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
        state.compressed += usize::from(compressed);
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
            (state.subscribers.len(), state.compressed)
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

/// Prefixes an error's message with what the hub was doing, keeping its
/// kind.
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

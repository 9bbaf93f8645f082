//! Fan-out across instances: each process's [`Hub`], fed from one Redis
//! stream (cargo feature `redis`).
//!
//! A Datastar app that runs as several instances behind a load balancer
//! needs a message posted to instance A to reach the streams held by
//! instance B, and a browser that reconnects to B to be resumed where it
//! left A. A [`Bridge`] does that with a Redis stream (`XADD`, `XREAD`,
//! `XRANGE`; Redis 5 or later), which keeps one log, in one order, with one
//! id space, for every instance: [`Bridge::publish`] appends an event to the
//! stream; every instance's bridge (a thread of its own) reads the stream
//! from the last entry it delivered and hands each entry to its local hub.
//!
//! ```no_run
//! use dstar::broadcast::{self, Hub, Subscription};
//! use dstar::redis_bridge::{Bridge, Config};
//! use dstar::{Event, SseConnection};
//! use std::sync::Arc;
//!
//! let hub = Arc::new(Hub::new(broadcast::Config::new().replay(100)));
//! let bridge = Bridge::start(Arc::clone(&hub), Config::new("redis://127.0.0.1/"))?;
//! // Publish through the bridge: every instance's subscribers get the
//! // event, this one's included, with the stream entry's id as its id.
//! let id = bridge.publish(Event::new("chat").data("hello"))?;
//! println!("added as {id}; {:?}", bridge.stats());
//! // In a request handler, subscribe through the bridge, with the
//! // request's `Last-Event-ID` (see "Resuming" below):
//! # let socket: std::net::TcpStream = todo!();
//! let conn = SseConnection::start_socket(socket)?;
//! bridge.subscribe(conn, Some("1733090000000-0"), Subscription::new)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Delivery and order
//!
//! **An instance delivers its own events only when it reads them back from
//! the stream.** Publishing does not write to the local hub: the local
//! subscribers get the event from the stream, like everyone else's. So
//! every instance delivers every event once, in the stream's order, and an
//! event is never delivered by an instance as a "local copy" and then again
//! from Redis.
//!
//! **Ids.** The entry id Redis gives an event (`<milliseconds>-<n>`) is its
//! SSE id, on every instance: unique, increasing, never reused (Redis makes
//! new ids from its clock and from the last id, so even a restart that lost
//! the end of the stream makes larger ids than the lost ones). An event
//! published through the bridge must therefore not have an id of its own:
//! one that does is refused.
//!
//! **Resuming.** A browser that reconnects sends the id of the last event
//! it saw. [`Bridge::subscribe`] resumes it on any instance: from the hub's
//! replay ring when the id is there, otherwise from the stream (`XRANGE`)
//! while Redis still holds that entry; only if neither has it does the
//! stream start with the snapshot. A restarted instance serves the same
//! history as the others. The replayed entries and the live ones join with
//! no gap and no duplicate: the bridge subscribes under the same lock it
//! delivers under, knowing the last entry it delivered.
//!
//! **State of your own.** An application that keeps state in step with the
//! events (the list a new tab is shown) records each event in
//! [`Config::deliver_with`], which runs under that lock, and renders its
//! snapshot in the closure passed to [`Bridge::subscribe`], which runs
//! under it too: a new stream never gets an event both in its snapshot and
//! live. [`Config::preload`] delivers the stream's newest entries when the
//! bridge starts, so a restarted instance rebuilds that state from Redis.
//!
//! # Outages
//!
//! **No gaps from short ones.** When the link to Redis breaks (Redis
//! restarted, a network cut, this process paused), the bridge reconnects
//! with a doubling delay ([`Config::reconnect_delay`]) and reads on from the
//! last entry it delivered: everything published meanwhile arrives, in
//! order. Interrupted reads (`EINTR`, which a process gets after it was
//! stopped and continued) are retried at once, without counting as an
//! outage.
//!
//! **Freezes are noticed.** The bridge reads with `XREAD BLOCK`
//! [`Config::block`] (1 s by default) on a socket whose read timeout is that
//! plus [`Config::timeout`] (1 s): a Redis that stops answering is noticed
//! within 2 s by default, and a publish waits at most [`Config::timeout`].
//!
//! **A gap is reported only when entries were lost:** trimmed away by the
//! stream's `MAXLEN` before this instance read them, or gone with a Redis
//! that restarted without persistence (the entry the bridge delivered last
//! is no longer in the stream). Then the bridge calls
//! [`Hub::reset`](crate::broadcast::Hub::reset) — the ring is forgotten and
//! every stream cut short, so every client reconnects and starts from its
//! snapshot — then [`Config::on_gap`], then delivers the newest entries
//! again as at start ([`Config::preload`]), and goes on from the newest.
//! Run Redis with `appendonly yes` (and `appendfsync always` if an event
//! acknowledged to a publisher must survive a crash of Redis itself) to
//! keep the stream across Redis restarts. The entry delivered last is
//! checked after every reconnection, and whenever a read returns a full
//! batch: a batch smaller than the `COUNT` asked for cannot follow a
//! trimmed entry, since Redis keeps at least `MAXLEN` entries and `COUNT`
//! is at most that.
//!
//! **Publishing says what happened.** While the bridge knows Redis is
//! unreachable (its read failed, or a publish did), [`Bridge::publish`]
//! fails at once with [`NotConnected`](io::ErrorKind::NotConnected) and
//! sends nothing; it is up again as soon as a read succeeds. An error
//! answer from Redis is [`InvalidData`](io::ErrorKind::InvalidData), and
//! nothing was added either. At most
//! [`Config::publishers`] publishes wait for Redis at a time, each for at
//! most [`Config::timeout`]; more fail with `NotConnected` at once, so
//! request threads do not pile up behind a slow Redis. A publish that timed
//! out or broke off may still have been added (Redis can run a command it
//! could not answer in time); if it was, every instance delivers it, once —
//! so do not publish it again on such an error unless a duplicate is
//! acceptable. An application that prefers delivery on this instance only
//! to none can publish to the hub directly (`bridge.hub().publish(..)`) on
//! `NotConnected`, which means the event was not sent: that is the only
//! local-only delivery, and it is explicit.
//!
//! # Checking what comes in
//!
//! The stream is shared, so anything can appear in it. An entry is handed
//! to the hub only if it is exactly what a bridge adds: a field `e` holding
//! an event, without id, that passes [`FormattedEvent::parse`] (which
//! accepts exactly the text this crate's encoder writes), and optionally a
//! field `t` with the topic. Anything else is skipped and counted in
//! [`Stats::malformed`], and never reaches a browser.
//!
//! ```text
//! XADD dstar MAXLEN ~ 10000 * t room-1 e "event: chat\ndata: hello\n\n"
//! ```
//!
//! # Threads and shutdown
//!
//! The bridge runs one thread, named [`THREAD_NAME`], which reads the
//! stream, delivers, and reconnects. [`Bridge::stop`] (also run on drop)
//! ends and joins it within about [`Config::block`], or
//! [`Config::timeout`] more if it is in the middle of connecting. Stopping
//! the bridge does not stop the hub.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use redis::Value;

use crate::broadcast::{Hub, Replay, Subscription};
use crate::connection::SseConnection;
use crate::event::{Encode, FormattedEvent};

/// The name of the thread a bridge runs.
pub const THREAD_NAME: &str = "dstar-redis";

/// The most entries one `XREAD` returns.
const BATCH: usize = 512;

/// The hooks run on the bridge thread, which owns them: `Send` is enough.
type DeliverWith = Box<dyn FnMut(&Received<'_>) + Send>;
type OnGap = Box<dyn FnMut(&Gap) + Send>;

/// Where a [`Bridge`] connects, and how it behaves.
///
/// ```
/// use dstar::redis_bridge::Config;
/// use std::time::Duration;
///
/// let config = Config::new("redis://127.0.0.1:6379/")
///     .stream("chat-room")
///     .max_len(50_000)
///     .preload(100)
///     .timeout(Duration::from_millis(500))
///     .block(Duration::from_secs(2))
///     .reconnect_delay(Duration::from_millis(50), Duration::from_secs(2))
///     .on_gap(|gap| eprintln!("events were lost: {}", gap.reason));
/// ```
pub struct Config {
    url: String,
    stream: String,
    max_len: usize,
    block: Duration,
    timeout: Duration,
    first_delay: Duration,
    max_delay: Duration,
    preload: usize,
    publishers: usize,
    deliver_with: Option<DeliverWith>,
    on_gap: Option<OnGap>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("address", &address_of(&self.url))
            .field("stream", &self.stream)
            .field("max_len", &self.max_len)
            .field("block", &self.block)
            .field("timeout", &self.timeout)
            .field("reconnect_delay", &(self.first_delay, self.max_delay))
            .field("preload", &self.preload)
            .field("publishers", &self.publishers)
            .field("deliver_with", &self.deliver_with.is_some())
            .field("on_gap", &self.on_gap.is_some())
            .finish()
    }
}

impl Config {
    /// Connect to the Redis server at `url` (as the `redis` crate reads it:
    /// `redis://[:password@]host[:port][/db]`, or `redis+unix:///path`), and
    /// use the stream `dstar`.
    pub fn new(url: impl Into<String>) -> Config {
        Config {
            url: url.into(),
            stream: "dstar".into(),
            max_len: 10_000,
            block: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            preload: 0,
            publishers: 4,
            deliver_with: None,
            on_gap: None,
        }
    }

    /// The stream's key (default `dstar`). Instances that share a stream
    /// share their events; use one stream per group of instances (or per
    /// hub, if a process runs several).
    pub fn stream(mut self, key: impl Into<String>) -> Config {
        self.stream = key.into();
        self
    }

    /// About how many entries the stream keeps (`XADD .. MAXLEN ~ n`; at
    /// least 1, default 10,000). Redis keeps at least this many, and trims
    /// in whole blocks, so a little more.
    ///
    /// It bounds how long an instance may be away, and how far back a
    /// browser can be resumed, before a [gap](self#outages): at 100 events
    /// a second the default is 100 s. Each entry costs Redis about the size
    /// of its event, plus some 20 bytes.
    pub fn max_len(mut self, entries: usize) -> Config {
        self.max_len = entries.max(1);
        self
    }

    /// How long one `XREAD` waits for new entries (at least 1 ms, default
    /// 1 s). With [`timeout`](Config::timeout), it bounds how long a frozen
    /// Redis goes unnoticed, and how long [`Bridge::stop`] takes; an idle
    /// bridge costs Redis one command per this long.
    pub fn block(mut self, wait: Duration) -> Config {
        self.block = wait.max(Duration::from_millis(1));
        self
    }

    /// How long connecting, publishing, or an answer beyond
    /// [`block`](Config::block) may take before it counts as failed (at
    /// least 1 ms; default 1 s).
    pub fn timeout(mut self, timeout: Duration) -> Config {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long to wait before trying to reconnect: `first` after the link
    /// is lost, doubling after each failed attempt up to `max` (defaults
    /// 100 ms and 5 s).
    ///
    /// Each wait is shortened by a random part of up to half, so that
    /// instances that lost Redis together do not all come back in the same
    /// millisecond.
    pub fn reconnect_delay(mut self, first: Duration, max: Duration) -> Config {
        self.first_delay = first.max(Duration::from_millis(1));
        self.max_delay = max.max(self.first_delay);
        self
    }

    /// How many of the stream's newest entries to deliver when the bridge
    /// starts (default 0), and again after a gap: to fill the hub's replay
    /// ring and the state an application keeps with
    /// [`deliver_with`](Config::deliver_with), so that a restarted instance
    /// shows what the others show. No stream is open yet when they are
    /// delivered at start.
    pub fn preload(mut self, entries: usize) -> Config {
        self.preload = entries;
        self
    }

    /// How many publishes may wait for Redis at one time (at least 1,
    /// default 4), each on a connection of its own; more fail at once.
    pub fn publishers(mut self, connections: usize) -> Config {
        self.publishers = connections.max(1);
        self
    }

    /// Called on the bridge thread after it has reset the hub for a
    /// [gap](self#outages), before it delivers anything else.
    ///
    /// Clear the state you keep with [`deliver_with`](Config::deliver_with)
    /// here: the newest entries are delivered again after it (see
    /// [`preload`](Config::preload)). Keep it short: delivery waits.
    pub fn on_gap(mut self, f: impl FnMut(&Gap) + Send + 'static) -> Config {
        self.on_gap = Some(Box::new(f));
        self
    }

    /// Replaces delivery: `f` is called on the bridge thread for every valid
    /// entry, in stream order, and decides what to do with it; it must call
    /// [`Received::deliver`] for the hub to get it.
    ///
    /// It runs under the lock [`Bridge::subscribe`] takes, so state you
    /// update here and render in `subscribe`'s closure is consistent with
    /// the stream a new subscriber gets.
    pub fn deliver_with(mut self, f: impl FnMut(&Received<'_>) + Send + 'static) -> Config {
        self.deliver_with = Some(Box::new(f));
        self
    }
}

/// A valid entry from the stream, on its way to the local hub; see
/// [`Config::deliver_with`].
#[derive(Debug)]
pub struct Received<'a> {
    hub: &'a Hub,
    topic: Option<&'a str>,
    event: &'a FormattedEvent,
}

impl Received<'_> {
    /// The topic it was published to, or `None` if it was published to
    /// everyone.
    pub fn topic(&self) -> Option<&str> {
        self.topic
    }

    /// The event, with the stream entry's id as its id.
    pub fn event(&self) -> &FormattedEvent {
        self.event
    }

    /// Publishes the event to the local hub, to the topic it was sent to;
    /// returns how many subscribers it was queued for (see
    /// [`Hub::publish`]).
    pub fn deliver(&self) -> io::Result<usize> {
        self.hub.publish_formatted(self.topic, self.event.clone())
    }
}

/// Entries this instance never delivered, as passed to [`Config::on_gap`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Gap {
    /// The id of the last entry delivered before the gap.
    pub after: String,
    /// What happened.
    pub reason: String,
}

/// A bridge's counters, from [`Bridge::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The last read from Redis succeeded, and no publish has failed since:
    /// publishing is attempted.
    pub connected: bool,
    /// How long the link has been down, if it is.
    pub disconnected_for: Option<Duration>,
    /// Events Redis confirmed it added.
    pub published: u64,
    /// Events certainly not added: the link was down, too many publishes
    /// were waiting, connecting failed, or Redis refused them.
    pub unsent: u64,
    /// Events whose publish timed out or broke off: Redis may have added
    /// them (and then every instance delivers them).
    pub uncertain: u64,
    /// Valid entries read from the stream, each handed to the hub once.
    pub received: u64,
    /// Entries skipped because they were not what a bridge adds.
    pub malformed: u64,
    /// Subscriptions resumed from entries read back from Redis (rather than
    /// from the hub's ring).
    pub resumed: u64,
    /// Times entries were lost to this instance (see [`Gap`]).
    pub gaps: u64,
    /// Times the bridge's reader connected again: after a lost link, or an
    /// interrupted read.
    pub reconnects: u64,
    /// Interrupted reads retried at once (on a new connection, from the
    /// last entry delivered), without taking the link down.
    pub retries: u64,
}

/// A hub's link to a Redis stream: what it publishes goes to the hubs of
/// every instance on that stream, this one's included.
///
/// Share it between request threads in an `Arc`; see the
/// [module docs](self) for how it behaves.
pub struct Bridge {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for Bridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridge")
            .field("address", &self.shared.address)
            .field("stream", &self.shared.stream)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Bridge {
    /// Connects to Redis, delivers the [preloaded](Config::preload) entries,
    /// and starts delivering what is added to the stream to `hub`.
    ///
    /// Returns once the bridge knows where it reads from, so that
    /// everything published from then on reaches `hub`. A hub must have at
    /// most one bridge, and should get events from nothing else (but the
    /// explicit local-only publishes described [above](self#outages)).
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) if the URL is not one
    /// the `redis` crate understands (without the crate's TLS features,
    /// `rediss://` is not); otherwise the error that kept the bridge from
    /// connecting or reading. The bridge does not retry a first
    /// connection: a wrong address should fail at startup.
    pub fn start(hub: Arc<Hub>, config: Config) -> io::Result<Bridge> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| redis_error(e, "dstar redis bridge: invalid Redis URL"))?;
        let address = client.get_connection_info().addr().to_string();
        let shared = Arc::new(Shared {
            hub,
            client,
            address,
            stream: config.stream,
            max_len: config.max_len,
            block: config.block,
            timeout: config.timeout,
            stopping: AtomicBool::new(false),
            link: Mutex::new(Link {
                stopped: false,
                up: false,
                lost_at: Instant::now(),
                error: "not connected yet".into(),
            }),
            wake: Condvar::new(),
            pool: Mutex::new(Pool {
                idle: Vec::new(),
                busy: 0,
            }),
            publishers: config.publishers,
            delivery: Mutex::new(EntryId::ZERO),
            delivered: Condvar::new(),
            counters: Counters::default(),
        });
        let reader = Reader {
            shared: Arc::clone(&shared),
            first_delay: config.first_delay,
            max_delay: config.max_delay,
            preload: config.preload,
            deliver_with: config.deliver_with,
            on_gap: config.on_gap,
        };
        let (started, start_result) = mpsc::sync_channel(1);
        let thread = thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || reader.run(started))
            .map_err(|e| context(e, "dstar redis bridge: cannot start its thread"))?;
        let ready = start_result.recv().unwrap_or_else(|_| {
            Err(io::Error::other(
                "dstar redis bridge: its thread ended before it was ready",
            ))
        });
        if let Err(e) = ready {
            let _ = thread.join();
            return Err(e);
        }
        Ok(Bridge {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Adds an event to the stream, for every subscriber of every instance's
    /// hub; returns the entry id Redis gave it, which is its SSE id.
    ///
    /// This instance's hub gets it when the bridge reads it back, in stream
    /// order (see [delivery](self#delivery-and-order)).
    ///
    /// # Errors
    ///
    /// - [`InvalidInput`](io::ErrorKind::InvalidInput): the event cannot be
    ///   formatted, or has an id of its own (the entry id is its id).
    ///   Nothing was sent.
    /// - [`NotConnected`](io::ErrorKind::NotConnected): the link to Redis is
    ///   down, [`Config::publishers`] publishes are already waiting,
    ///   connecting failed, or the bridge is stopped. Nothing was sent;
    ///   counted in [`Stats::unsent`].
    /// - [`InvalidData`](io::ErrorKind::InvalidData): Redis answered with an
    ///   error (the key holds something other than a stream, say) and added
    ///   nothing; counted in [`Stats::unsent`].
    /// - Any other kind ([`TimedOut`](io::ErrorKind::TimedOut), a broken
    ///   connection, an error from Redis): the event may or may not have
    ///   been added; if it was, every instance delivers it, once. Counted in
    ///   [`Stats::uncertain`].
    pub fn publish(&self, event: impl Encode) -> io::Result<String> {
        self.publish_formatted(None, &FormattedEvent::new(&event)?)
    }

    /// Adds an event for the subscribers of `topic` (see
    /// [`Subscription::topic`]) on every instance; like
    /// [`publish`](Bridge::publish) otherwise.
    pub fn publish_to(&self, topic: &str, event: impl Encode) -> io::Result<String> {
        self.publish_formatted(Some(topic), &FormattedEvent::new(&event)?)
    }

    /// Adds an event that is already formatted, for everyone (`None`) or for
    /// a topic; like [`publish`](Bridge::publish) otherwise.
    pub fn publish_formatted(
        &self,
        topic: Option<&str>,
        event: &FormattedEvent,
    ) -> io::Result<String> {
        if let Some(id) = event.id() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "dstar redis bridge: the event has an id ({id:?}); events published \
                     through the bridge take the stream entry's id"
                ),
            ));
        }
        let shared = &*self.shared;
        let max_len = shared.max_len.to_string();
        let added = shared.with_connection(Instant::now() + shared.timeout, |conn| {
            let mut xadd = redis::cmd("XADD");
            xadd.arg(&shared.stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(&max_len);
            xadd.arg("*");
            if let Some(topic) = topic {
                xadd.arg("t").arg(topic);
            }
            xadd.arg("e").arg(event.as_str());
            xadd.query::<String>(conn)
        });
        let counters = &shared.counters;
        match added {
            Ok(id) => {
                counters.published.fetch_add(1, Ordering::Relaxed);
                Ok(id)
            }
            Err(Failed::NotSent(e)) => {
                counters.unsent.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
            Err(Failed::Uncertain(e)) => {
                counters.uncertain.fetch_add(1, Ordering::Relaxed);
                Err(context(
                    e,
                    "dstar redis bridge: the event may have been added (if so, every \
                     instance delivers it)",
                ))
            }
        }
    }

    /// Hands a started stream to the hub, resumed after `last_event_id` (the
    /// request's `Last-Event-ID`) from the ring or, failing that, from the
    /// entries Redis still holds; returns how it started.
    ///
    /// `subscription` builds the subscription (topics, key, snapshot): it
    /// runs under the bridge's delivery lock, with nothing delivered
    /// meanwhile, so render the snapshot from the state you keep with
    /// [`Config::deliver_with`] there. The bridge sets the
    /// subscription's `Last-Event-ID` itself. A client that has seen an
    /// entry this instance has not delivered yet (it comes from a faster
    /// instance) is subscribed once this one has caught up, after at most
    /// [`Config::timeout`], or else from its snapshot.
    ///
    /// Reading from Redis happens before the lock is taken, and takes at
    /// most [`Config::timeout`]; if it fails, the stream starts with the
    /// snapshot.
    ///
    /// # Errors
    ///
    /// As [`Hub::subscribe`].
    pub fn subscribe<W>(
        &self,
        conn: SseConnection<W>,
        last_event_id: Option<&str>,
        subscription: impl FnOnce() -> Subscription,
    ) -> io::Result<Replay>
    where
        W: Write + Send + 'static,
    {
        let shared = &*self.shared;
        let hub = &shared.hub;
        let last = last_event_id.filter(|id| !id.is_empty());
        let wanted = last
            .and_then(EntryId::parse)
            .filter(|_| !last.is_some_and(|id| hub.can_resume(id)));
        let Some(wanted) = wanted else {
            // No id, one of the ring's, or none of the stream's: the hub
            // decides, under the delivery lock.
            let _delivery = lock(&shared.delivery);
            return hub.subscribe(conn, subscription().last_event_id(last));
        };
        let last = last.unwrap_or_default();
        let deadline = Instant::now() + shared.timeout;
        let Some(mut missed) = shared.entries_after(wanted, None, deadline) else {
            // Redis no longer holds it (or cannot say): the snapshot.
            let _delivery = lock(&shared.delivery);
            return hub.subscribe(conn, subscription().last_event_id(Some(last)));
        };
        let mut delivered = lock(&shared.delivery);
        while *delivered < wanted && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            delivered = shared
                .delivered
                .wait_timeout(delivered, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if *delivered < wanted {
            return hub.subscribe(conn, subscription().last_event_id(Some(last)));
        }
        // What the bridge delivered while `missed` was read, read again (a
        // short range) with nothing delivered meanwhile.
        let newest = missed.last().map_or(wanted, |entry| entry.id);
        if newest < *delivered {
            match shared.entries_after(newest, Some(*delivered), deadline + shared.timeout) {
                Some(more) => missed.extend(more),
                None => return hub.subscribe(conn, subscription().last_event_id(Some(last))),
            }
        }
        let up_to = *delivered;
        let missed = missed
            .into_iter()
            .filter(|entry| entry.id <= up_to)
            .filter_map(|entry| entry.decoded)
            .collect();
        shared.counters.resumed.fetch_add(1, Ordering::Relaxed);
        let sub = subscription().last_event_id(Some(last)).resume_with(missed);
        let replay = hub.subscribe(conn, sub);
        drop(delivered);
        replay
    }

    /// The local hub the bridge delivers to.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.shared.hub
    }

    /// The id of the last entry delivered to the hub, `0-0` before the
    /// first.
    pub fn last_delivered(&self) -> String {
        lock(&self.shared.delivery).to_string()
    }

    /// The bridge's counters, as of now.
    pub fn stats(&self) -> Stats {
        let (connected, disconnected_for) = {
            let link = self.shared.lock_link();
            (link.up, (!link.up).then(|| link.lost_at.elapsed()))
        };
        let c = &self.shared.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            connected,
            disconnected_for,
            published: get(&c.published),
            unsent: get(&c.unsent),
            uncertain: get(&c.uncertain),
            received: get(&c.received),
            malformed: get(&c.malformed),
            resumed: get(&c.resumed),
            gaps: get(&c.gaps),
            reconnects: get(&c.reconnects),
            retries: get(&c.retries),
        }
    }

    /// Closes the connections to Redis and joins the bridge thread. The hub
    /// keeps running. Later publishes fail with
    /// [`NotConnected`](io::ErrorKind::NotConnected); calling `stop` again
    /// does nothing.
    pub fn stop(&self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
        self.shared.lock_link().stopped = true;
        self.shared.wake.notify_all();
        let thread = lock(&self.thread).take();
        // A hook that stops the bridge (through an `Arc` it holds) is on
        // the bridge thread, which ends by itself once the hook returns.
        if let Some(thread) = thread.filter(|t| t.thread().id() != thread::current().id()) {
            // A panic in a hook has already been reported by the panic hook,
            // and the thread's guard marked the link down.
            let _ = thread.join();
        }
        lock(&self.shared.pool).idle.clear();
    }
}

/// A stream entry id, `<ms>-<seq>`, ordered as Redis orders them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct EntryId {
    ms: u64,
    seq: u64,
}

impl EntryId {
    const ZERO: EntryId = EntryId { ms: 0, seq: 0 };

    fn parse(id: &str) -> Option<EntryId> {
        let (ms, seq) = id.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(EntryId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The smallest id after this one.
    fn next(self) -> EntryId {
        match self.seq.checked_add(1) {
            Some(seq) => EntryId { ms: self.ms, seq },
            None => EntryId {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One entry read from the stream: its id, and its topic and event if it
/// is what a bridge adds.
struct Entry {
    id: EntryId,
    decoded: Option<(Option<String>, FormattedEvent)>,
}

/// What the bridge and its thread share.
struct Shared {
    hub: Arc<Hub>,
    client: redis::Client,
    /// `host:port` (or the socket path), for error messages: never the URL,
    /// which may hold a password.
    address: String,
    stream: String,
    max_len: usize,
    block: Duration,
    timeout: Duration,
    /// Set by `stop`; read by the thread after every read.
    stopping: AtomicBool,
    link: Mutex<Link>,
    /// Signalled by `stop`, to cut short a wait before reconnecting.
    wake: Condvar,
    /// Connections for publishing and for reading history.
    pool: Mutex<Pool>,
    publishers: usize,
    /// The last entry delivered to the hub. Held while delivering, and while
    /// subscribing, so that the two are ordered.
    delivery: Mutex<EntryId>,
    /// Signalled after every delivered batch.
    delivered: Condvar,
    counters: Counters,
}

/// Whether publishing is worth trying.
struct Link {
    stopped: bool,
    /// The last read succeeded and no publish failed since.
    up: bool,
    /// When it went down (or the bridge was created).
    lost_at: Instant,
    /// Why.
    error: String,
}

struct Pool {
    idle: Vec<redis::Connection>,
    /// Connections lent out now.
    busy: usize,
}

/// How a command on a pooled connection failed.
enum Failed {
    /// It was never sent.
    NotSent(io::Error),
    /// It was sent; it may have run.
    Uncertain(io::Error),
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    unsent: AtomicU64,
    uncertain: AtomicU64,
    received: AtomicU64,
    malformed: AtomicU64,
    resumed: AtomicU64,
    gaps: AtomicU64,
    reconnects: AtomicU64,
    retries: AtomicU64,
}

impl Shared {
    fn lock_link(&self) -> MutexGuard<'_, Link> {
        lock(&self.link)
    }

    /// A new connection, made within `timeout`, whose commands then wait
    /// at most that long for an answer too.
    fn connect(&self, timeout: Duration) -> io::Result<redis::Connection> {
        let what = || format!("dstar redis bridge: cannot connect to {}", self.address);
        let conn = self
            .client
            .get_connection_with_timeout(timeout)
            .map_err(|e| redis_error(e, &what()))?;
        // The crate clears the timeouts it connected with; keep them, so that
        // no command waits forever on a server that stopped answering.
        conn.set_read_timeout(Some(timeout))
            .and_then(|()| conn.set_write_timeout(Some(timeout)))
            .map_err(|e| redis_error(e, &what()))?;
        Ok(conn)
    }

    /// Runs one command on a pooled connection, if the link is up and a
    /// connection is free (or can be made) before `deadline`.
    fn with_connection<T>(
        &self,
        deadline: Instant,
        command: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, Failed> {
        let not_sent = |why: String| {
            Failed::NotSent(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("dstar redis bridge: {why}; the event was not sent"),
            ))
        };
        {
            let link = self.lock_link();
            if link.stopped {
                return Err(not_sent("stopped".into()));
            }
            if !link.up {
                return Err(not_sent(format!(
                    "no link to Redis at {} for {:.1?} ({})",
                    self.address,
                    link.lost_at.elapsed(),
                    link.error
                )));
            }
        }
        let pooled = {
            let mut pool = lock(&self.pool);
            if pool.busy >= self.publishers {
                return Err(not_sent(format!(
                    "{} commands are already waiting for Redis at {}",
                    pool.busy, self.address
                )));
            }
            pool.busy += 1;
            pool.idle.pop()
        };
        struct Lent<'a>(&'a Shared);
        impl Drop for Lent<'_> {
            fn drop(&mut self) {
                lock(&self.0.pool).busy -= 1;
            }
        }
        let _lent = Lent(self);
        let left = deadline.saturating_duration_since(Instant::now());
        let mut conn = match pooled {
            Some(conn) => conn,
            None => match self.connect(left.max(Duration::from_millis(1))) {
                Ok(conn) => conn,
                Err(e) => {
                    self.down(&e);
                    return Err(Failed::NotSent(io::Error::new(
                        io::ErrorKind::NotConnected,
                        format!("{e}; the event was not sent"),
                    )));
                }
            },
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(e) = conn.set_read_timeout(Some(left.max(Duration::from_millis(1)))) {
            return Err(Failed::NotSent(redis_error(e, "dstar redis bridge")));
        }
        match command(&mut conn) {
            Ok(value) => {
                lock(&self.pool).idle.push(conn);
                Ok(value)
            }
            Err(e) if !e.is_io_error() => {
                // An error answer: Redis did not run the command.
                lock(&self.pool).idle.push(conn);
                let what = format!("dstar redis bridge: Redis at {} refused", self.address);
                let e = redis_error(e, &what);
                Err(Failed::NotSent(io::Error::new(
                    io::ErrorKind::InvalidData,
                    e,
                )))
            }
            Err(e) => {
                // Not put back: a late answer may still be on its way. The
                // link is in doubt until the next read succeeds.
                let what = format!("dstar redis bridge: Redis at {} failed", self.address);
                let e = redis_error(e, &what);
                self.down(&e);
                Err(Failed::Uncertain(e))
            }
        }
    }

    /// The entries after `after`, up to `up_to` (or the end), if Redis
    /// still holds `after` itself (or `up_to` is given: the range is then
    /// known to be retained), read before `deadline`. Never more than
    /// `max_len` of them.
    fn entries_after(
        &self,
        after: EntryId,
        up_to: Option<EntryId>,
        deadline: Instant,
    ) -> Option<Vec<Entry>> {
        let (start, end) = match up_to {
            Some(up_to) => (after.next().to_string(), up_to.to_string()),
            None => (after.to_string(), "+".to_string()),
        };
        let count = self.max_len + 1;
        let value = self
            .with_connection(deadline, |conn| {
                redis::cmd("XRANGE")
                    .arg(&self.stream)
                    .arg(&start)
                    .arg(&end)
                    .arg("COUNT")
                    .arg(count)
                    .query::<Value>(conn)
            })
            .ok()?;
        let mut entries = parse_entries(&value)?;
        if up_to.is_none() {
            // The first must be `after` itself: otherwise it was trimmed, and
            // maybe entries after it too.
            if entries.first().map(|e| e.id) != Some(after) || entries.len() > self.max_len {
                return None;
            }
            entries.remove(0);
        }
        Some(entries)
    }

    /// Marks the link up after a successful read.
    fn up(&self) {
        let mut link = self.lock_link();
        link.up = true;
    }

    /// Marks the link down (if it is up), with why.
    fn down(&self, error: &io::Error) {
        // Shown inside messages that already say who is speaking.
        let error = error.to_string();
        let error = error.strip_prefix("dstar redis bridge: ").unwrap_or(&error);
        let mut link = self.lock_link();
        if link.up {
            link.up = false;
            link.lost_at = Instant::now();
        }
        link.error = error.to_string();
        drop(link);
        // Idle connections probably went the same way (Redis restarted, say):
        // replaced rather than used to fail once each.
        lock(&self.pool).idle.clear();
    }

    /// Waits `delay`, or less if the bridge is stopped; returns whether to
    /// go on.
    fn sleep(&self, delay: Duration) -> bool {
        let link = self.lock_link();
        let (link, _) = self
            .wake
            .wait_timeout_while(link, delay, |link| !link.stopped)
            .unwrap_or_else(PoisonError::into_inner);
        !link.stopped
    }
}

/// The bridge thread: reads, delivers, reconnects.
struct Reader {
    shared: Arc<Shared>,
    first_delay: Duration,
    max_delay: Duration,
    preload: usize,
    deliver_with: Option<DeliverWith>,
    on_gap: Option<OnGap>,
}

/// Marks the link down if the bridge thread ends for any reason, a
/// panicking hook included, so that publishing fails loudly instead of
/// sending events that no longer reach this instance.
struct Down<'a>(&'a Shared);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        self.0.down(&io::Error::other("the bridge thread ended"));
    }
}

impl Reader {
    fn run(mut self, started: mpsc::SyncSender<io::Result<()>>) {
        let shared = Arc::clone(&self.shared);
        let _down = Down(&shared);
        let mut conn = match self.connect(true) {
            Ok(conn) => {
                let _ = started.send(Ok(()));
                conn
            }
            Err(e) => {
                let _ = started.send(Err(e));
                return;
            }
        };
        loop {
            if shared.stopping.load(Ordering::Relaxed) {
                return;
            }
            let e = match self.read(&mut conn) {
                Ok(()) => {
                    shared.up();
                    continue;
                }
                Err(e) => e,
            };
            if shared.stopping.load(Ordering::Relaxed) {
                return;
            }
            let mut delay = self.first_delay;
            if e.kind() == io::ErrorKind::Interrupted {
                // The process was stopped and continued, say: Redis lost
                // nothing; read again at once, on a fresh connection, since
                // the old one may be half-way through an answer.
                shared.counters.retries.fetch_add(1, Ordering::Relaxed);
                delay = Duration::ZERO;
            } else {
                shared.down(&e);
            }
            conn = loop {
                if !delay.is_zero() && !shared.sleep(jittered(delay)) {
                    return;
                }
                match self.connect(false) {
                    Ok(conn) => break conn,
                    Err(e) if shared.stopping.load(Ordering::Relaxed) => {
                        drop(e);
                        return;
                    }
                    Err(e) => {
                        shared.down(&e);
                        delay = (delay * 2).clamp(self.first_delay, self.max_delay);
                    }
                }
            };
            shared.counters.reconnects.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Connects, and finds where to read from: at start, after the
    /// preloaded entries; afterwards, after the last entry delivered, if
    /// Redis still holds it, or else after a gap.
    fn connect(&mut self, first: bool) -> io::Result<redis::Connection> {
        let shared = Arc::clone(&self.shared);
        let mut conn = shared.connect(shared.timeout)?;
        let mut delivery = lock(&shared.delivery);
        if first {
            self.preload(&mut conn, &mut delivery)?;
        } else if *delivery != EntryId::ZERO && !self.holds(&mut conn, *delivery)? {
            self.gap(
                &mut conn,
                &mut delivery,
                "the stream no longer holds the entry delivered last: Redis \
                 restarted without its data, or the entries were trimmed",
            )?;
        }
        drop(delivery);
        conn.set_read_timeout(Some(shared.block + shared.timeout))
            .map_err(|e| redis_error(e, "dstar redis bridge"))?;
        shared.up();
        Ok(conn)
    }

    /// Whether the stream holds the entry `id`.
    fn holds(&self, conn: &mut redis::Connection, id: EntryId) -> io::Result<bool> {
        let id = id.to_string();
        let value = redis::cmd("XRANGE")
            .arg(&self.shared.stream)
            .arg(&id)
            .arg(&id)
            .query::<Value>(conn)
            .map_err(|e| self.lost(e))?;
        Ok(parse_entries(&value).is_some_and(|entries| !entries.is_empty()))
    }

    /// Delivers the newest `preload` entries, oldest first, and makes the
    /// newest entry the one to read after (`0-0` for an empty stream).
    fn preload(&mut self, conn: &mut redis::Connection, delivery: &mut EntryId) -> io::Result<()> {
        let value = redis::cmd("XREVRANGE")
            .arg(&self.shared.stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(self.preload.max(1))
            .query::<Value>(conn)
            .map_err(|e| self.lost(e))?;
        let mut entries = parse_entries(&value).ok_or_else(|| self.unexpected())?;
        entries.reverse();
        *delivery = entries.last().map_or(EntryId::ZERO, |e| e.id);
        if self.preload > 0 {
            for entry in &entries {
                self.deliver(entry);
            }
        }
        self.shared.delivered.notify_all();
        Ok(())
    }

    /// Resets the hub for entries it will never get, tells the application,
    /// and starts again from the newest entries.
    fn gap(
        &mut self,
        conn: &mut redis::Connection,
        delivery: &mut EntryId,
        reason: &str,
    ) -> io::Result<()> {
        let gap = Gap {
            after: delivery.to_string(),
            reason: reason.to_string(),
        };
        self.shared.counters.gaps.fetch_add(1, Ordering::Relaxed);
        self.shared.hub.reset();
        if let Some(on_gap) = &mut self.on_gap {
            on_gap(&gap);
        }
        self.preload(conn, delivery)
    }

    /// Reads once (waiting up to `block`), and delivers what came.
    fn read(&mut self, conn: &mut redis::Connection) -> io::Result<()> {
        let shared = Arc::clone(&self.shared);
        let after = *lock(&shared.delivery);
        let value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(BATCH.min(shared.max_len))
            .arg("BLOCK")
            .arg(shared.block.as_millis().max(1) as u64)
            .arg("STREAMS")
            .arg(&shared.stream)
            .arg(after.to_string())
            .query::<Value>(conn)
            .map_err(|e| self.lost(e))?;
        let entries = match &value {
            Value::Nil => return Ok(()),
            value => parse_read(value).ok_or_else(|| self.unexpected())?,
        };
        let full = entries.len() >= BATCH.min(shared.max_len);
        // A full batch may come after trimmed entries: check (see the
        // module docs on gaps).
        let trimmed = full && after != EntryId::ZERO && !self.holds(conn, after)?;
        let mut delivery = lock(&shared.delivery);
        if trimmed {
            return self.gap(
                conn,
                &mut delivery,
                "entries were trimmed from the stream (MAXLEN) before this instance read them",
            );
        }
        for entry in &entries {
            // Only this thread delivers; a gap handled since the read would
            // have moved past these.
            if entry.id <= *delivery {
                continue;
            }
            self.deliver(entry);
            *delivery = entry.id;
        }
        drop(delivery);
        shared.delivered.notify_all();
        Ok(())
    }

    /// Hands one entry on, or counts it as malformed.
    fn deliver(&mut self, entry: &Entry) {
        let counters = &self.shared.counters;
        let Some((topic, event)) = &entry.decoded else {
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let received = Received {
            hub: &self.shared.hub,
            topic: topic.as_deref(),
            event,
        };
        counters.received.fetch_add(1, Ordering::Relaxed);
        match &mut self.deliver_with {
            Some(deliver_with) => deliver_with(&received),
            // The hub takes any formatted event, and after it is stopped
            // publishing returns `Ok(0)`: there is no error to act on.
            None => {
                let _ = received.deliver();
            }
        }
    }

    fn lost(&self, e: redis::RedisError) -> io::Error {
        let what = format!(
            "dstar redis bridge: lost the link to {:?} at {}",
            self.shared.stream, self.shared.address
        );
        redis_error(e, &what)
    }

    fn unexpected(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "dstar redis bridge: {} answered with something other than stream entries \
                 (is {:?} a stream?)",
                self.shared.address, self.shared.stream
            ),
        )
    }
}

/// The entries of an `XREAD` answer for one stream.
fn parse_read(value: &Value) -> Option<Vec<Entry>> {
    // RESP2: [[key, entries]]; RESP3: {key: entries}.
    match value {
        Value::Array(streams) => match streams.as_slice() {
            [Value::Array(stream)] => match stream.as_slice() {
                [_key, entries] => parse_entries(entries),
                _ => None,
            },
            _ => None,
        },
        Value::Map(streams) => match streams.as_slice() {
            [(_key, entries)] => parse_entries(entries),
            _ => None,
        },
        _ => None,
    }
}

/// The entries of an `XRANGE` answer: `[[id, [field, value, ...]], ...]`.
fn parse_entries(value: &Value) -> Option<Vec<Entry>> {
    let Value::Array(entries) = value else {
        return None;
    };
    entries
        .iter()
        .map(|entry| {
            let Value::Array(parts) = entry else {
                return None;
            };
            let [id, fields] = parts.as_slice() else {
                return None;
            };
            let id = EntryId::parse(text(id)?)?;
            let decoded = match fields {
                Value::Array(fields) => decode_entry(id, fields),
                _ => None,
            };
            Some(Entry { id, decoded })
        })
        .collect()
}

/// An entry's topic and event, if its fields are exactly what a bridge
/// adds: `e`, the event without id, after an optional `t`, the topic.
fn decode_entry(id: EntryId, fields: &[Value]) -> Option<(Option<String>, FormattedEvent)> {
    let fields: Vec<&str> = fields.iter().map(text).collect::<Option<_>>()?;
    let (topic, event) = match fields.as_slice() {
        ["e", event] => (None, *event),
        ["t", topic, "e", event] => (Some(topic.to_string()), *event),
        _ => return None,
    };
    let event = FormattedEvent::parse(event.to_string()).ok()?;
    if event.id().is_some() {
        return None;
    }
    Some((topic, event.with_id(&id.to_string()).ok()?))
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(text) => Some(text),
        _ => None,
    }
}

/// `host:port` for a URL, without what else it says (a password).
fn address_of(url: &str) -> String {
    redis::Client::open(url)
        .map(|client| client.get_connection_info().addr().to_string())
        .unwrap_or_else(|_| "(invalid URL)".into())
}

/// Between half and all of `delay`, at random.
fn jittered(delay: Duration) -> Duration {
    // Each `RandomState` has fresh random keys: the hash of nothing is a
    // random number, with no dependency for it.
    let random = RandomState::new().build_hasher().finish();
    delay / 2 + delay.mul_f64((random % 1024) as f64 / 2048.0)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code here panics while holding these locks; a panicking hook
    // poisons the delivery lock, which holds only an id.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn context(err: io::Error, what: &str) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// An `io::Error` for a `redis` error: the I/O error's kind when there is
/// one, with `what` in front of the message.
fn redis_error(err: redis::RedisError, what: &str) -> io::Error {
    // The crate keeps an I/O error as the source, behind an `Arc`.
    type Shared = Arc<dyn std::error::Error + Send + Sync>;
    let io = std::error::Error::source(&err)
        .and_then(|source| source.downcast_ref::<Shared>())
        .and_then(|source| source.downcast_ref::<io::Error>());
    let kind = match io {
        Some(io) => io.kind(),
        None if err.kind() == redis::ErrorKind::InvalidClientConfig => io::ErrorKind::InvalidInput,
        None => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("{what}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(fields.iter().map(|f| bulk(f)).collect()),
        ])
    }

    #[test]
    fn entry_ids_parse_and_order_as_redis_orders_them() {
        let id = |s| EntryId::parse(s).unwrap();
        assert!(id("1-0") < id("1-1"));
        assert!(id("1-99") < id("2-0"));
        assert!(id("10-0") > id("9-5"));
        assert_eq!(id("1733-7").to_string(), "1733-7");
        assert_eq!(id("5-18446744073709551615").next(), id("6-0"));
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "a-1",
            "1-2-3",
            "+1-0",
            "1 -0",
            "99999999999999999999-0",
        ] {
            assert_eq!(EntryId::parse(bad), None, "{bad:?}");
        }
        // The hub's own ids are not stream ids.
        assert_eq!(EntryId::parse("3f9a0c1b2d4e5f60-17"), None);
    }

    #[test]
    fn entries_decode_with_the_entry_id_as_event_id() {
        let value = Value::Array(vec![
            entry("5-1", &["e", "event: chat\ndata: hi\n\n"]),
            entry("5-2", &["t", "room", "e", "data: x\n\n"]),
        ]);
        let entries = parse_entries(&value).unwrap();
        let (topic, event) = entries[0].decoded.clone().unwrap();
        assert_eq!(topic, None);
        assert_eq!(event.as_str(), "event: chat\nid: 5-1\ndata: hi\n\n");
        let (topic, event) = entries[1].decoded.clone().unwrap();
        assert_eq!(topic.as_deref(), Some("room"));
        assert_eq!(event.as_str(), "id: 5-2\ndata: x\n\n");
    }

    #[test]
    fn anything_else_is_malformed() {
        let bad: &[&[&str]] = &[
            &[],
            &["e"],
            &["x", "data: x\n\n"],
            &["e", "data: x\n\n", "t", "room"],
            &["e", "data: x\n\ndata: y\n\n"],
            &["e", "data: x\r\n\n"],
            &["e", "data: x\n"],
            &["e", "id: 7\ndata: x\n\n"],
            &["e", "event: x\nevent: y\ndata: z\n\n"],
            &["e", "retry: 0100\ndata: x\n\n"],
            &["e", ": comment\ndata: x\n\n"],
            &["t", "a", "t", "b", "e", "data: x\n\n"],
        ];
        for fields in bad {
            let value = Value::Array(vec![entry("1-1", fields)]);
            let entries = parse_entries(&value).unwrap();
            assert!(entries[0].decoded.is_none(), "{fields:?}");
        }
        let not_utf8 = Value::Array(vec![Value::Array(vec![
            bulk("1-1"),
            Value::Array(vec![
                bulk("e"),
                Value::BulkString(b"data: \xff\n\n".to_vec()),
            ]),
        ])]);
        assert!(parse_entries(&not_utf8).unwrap()[0].decoded.is_none());
        // Not entries at all.
        assert!(parse_entries(&Value::Int(3)).is_none());
        assert!(parse_entries(&Value::Array(vec![entry("nope", &["e", "data: x\n\n"])])).is_none());
    }

    #[test]
    fn xread_answers_parse_in_both_protocols() {
        let entries = Value::Array(vec![entry("1-1", &["e", "data: x\n\n"])]);
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("s"), entries.clone()])]);
        let resp3 = Value::Map(vec![(bulk("s"), entries)]);
        for value in [resp2, resp3] {
            let parsed = parse_read(&value).unwrap();
            assert_eq!(parsed.len(), 1);
            assert_eq!(parsed[0].id, EntryId { ms: 1, seq: 1 });
        }
        assert!(parse_read(&Value::Okay).is_none());
    }

    #[test]
    fn jitter_stays_between_half_and_all() {
        let delay = Duration::from_millis(100);
        for _ in 0..100 {
            let d = jittered(delay);
            assert!(d >= delay / 2 && d <= delay, "{d:?}");
        }
    }

    #[test]
    fn an_unreachable_server_fails_at_start() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let hub = Arc::new(Hub::default());
        let config = Config::new(format!("redis://:secret@127.0.0.1:{port}/"))
            .timeout(Duration::from_secs(1));
        assert!(!format!("{config:?}").contains("secret"));
        let err = Bridge::start(hub, config).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        let message = err.to_string();
        assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
        assert!(!message.contains("secret"), "{message}");

        let err = Bridge::start(Arc::new(Hub::default()), Config::new("nope://x")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    }
}

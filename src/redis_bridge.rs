//! Fan-out across instances: each process's [`Hub`], joined to the others
//! through one Redis pub/sub channel (cargo feature `redis`).
//!
//! A Datastar app that runs as several instances behind a load balancer
//! needs a message posted to instance A to reach the streams held by
//! instance B. A [`Bridge`] does that with Redis, which such deployments
//! usually run already: [`Bridge::publish`] formats the event once and sends
//! its text to the channel; every instance's bridge (a thread of its own)
//! receives it, checks it, and hands it to its local hub, which writes it to
//! that instance's subscribers.
//!
//! ```no_run
//! use dstar::broadcast::{self, Hub};
//! use dstar::redis_bridge::{Bridge, Config};
//! use dstar::Event;
//! use std::sync::Arc;
//!
//! let hub = Arc::new(Hub::new(broadcast::Config::new().replay(100)));
//! let bridge = Bridge::start(Arc::clone(&hub), Config::new("redis://127.0.0.1/"))?;
//! // Subscribe streams to `hub` as usual; publish through the bridge, and
//! // every instance's subscribers get the event, this one's included.
//! bridge.publish(Event::new("chat").data("hello").id("a-1"))?;
//! println!("{:?}", bridge.stats());
//! bridge.stop();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Delivery and order
//!
//! **An instance delivers its own events only when Redis sends them back.**
//! Publishing through the bridge does not write to the local hub; the local
//! subscribers get the event from the channel, like everyone else's. So each
//! event reaches each hub exactly once (Redis delivers a message once per
//! subscription, and each bridge holds one), and every instance delivers
//! the events in the same order: the order in which Redis, a single thread,
//! took the `PUBLISH`es. Delivering locally first and skipping our own
//! messages on the way back would save the local subscribers a round trip
//! to Redis (about 0.1 ms on one machine), but two instances publishing at
//! the same moment would then show their events in different orders, and
//! the instances' replay rings would differ.
//!
//! **Replay.** Events that come through the bridge go into the hub's replay
//! ring (see [`broadcast::Config::replay`](crate::broadcast::Config::replay))
//! like any other, so `Last-Event-ID` works for them. Since every instance
//! sees the same events in the same order, a browser that reconnects to
//! another instance can resume there too, provided **event ids are unique
//! across instances**: prefix them with an instance name, or take them from
//! a shared counter. A hub must have at most one bridge, or it would get
//! every event once per bridge.
//!
//! # When Redis goes away
//!
//! The bridge notices a lost subscription when Redis closes the connection,
//! or when a ping sent after [`Config::keepalive`] without traffic goes
//! unanswered for [`Config::timeout`]. It then reconnects, with a delay that
//! doubles from attempt to attempt (see [`Config::reconnect_delay`]).
//!
//! While it is not subscribed, Redis cannot deliver anything to this
//! instance, so events published meanwhile, here or elsewhere, would be
//! missing from its streams. The bridge says so instead of pretending:
//!
//! - [`Bridge::publish`] fails with [`NotConnected`](io::ErrorKind::NotConnected)
//!   rather than sending an event this instance would not deliver, and is
//!   counted in [`Stats::unsent`]. An event that failed to send might still
//!   have reached Redis (the connection can break after `PUBLISH` was sent
//!   and before its answer); it is never assumed delivered. The local hub
//!   keeps working: publish to it directly (`bridge.hub().publish(..)`) when
//!   local delivery is better than none.
//! - [`Stats`] shows the outage as it happens (`connected`,
//!   `disconnected_for`) and counts it (`gaps`, then `reconnects`).
//! - Once subscribed again, the bridge calls [`Config::on_gap`], before it
//!   delivers anything received after the gap. Events missed during the gap
//!   are missing from this instance's replay ring too, so a client that
//!   resumes across the gap would not be told about them. `on_gap` is the
//!   place to fix that: publish a full-state event to the local hub (with an
//!   id, so that it sits in the ring after the gap), or a notice.
//!
//! **Keeping up.** The bridge thread hands messages to the hub one at a
//! time, and publishing to a hub never blocks on a subscriber, so it keeps
//! up unless a [`Config::deliver_with`] hook is slow. Messages it has not
//! read yet wait in Redis, which closes a subscriber connection whose
//! backlog passes its `client-output-buffer-limit` for pub/sub (by default
//! 32 MB, or 8 MB for a minute); the bridge reports that as a gap too.
//!
//! # Checking what comes in
//!
//! The channel is shared, so anything can appear on it. A message is handed
//! to the hub only if it is exactly what a bridge sends (see below): its
//! event must pass [`FormattedEvent::parse`], which accepts exactly the text
//! this crate's encoder writes. Anything else is dropped and counted in
//! [`Stats::malformed`], and never reaches a browser.
//!
//! # Message format
//!
//! Each event is one pub/sub message, UTF-8 text: a header line, then the
//! event exactly as this crate formats it (its `id:` line is the event id):
//!
//! ```text
//! dstar/1 all\n            (for Bridge::publish: every subscriber)
//! dstar/1 topic <topic>\n  (for Bridge::publish_to: the topic's subscribers)
//! event: chat\n
//! id: a-1\n
//! data: hello\n
//! \n
//! ```
//!
//! A topic may contain anything but a line feed. The `1` is the format's
//! version: a future format will use another header, which this one drops
//! as malformed.
//!
//! # Threads and shutdown
//!
//! The bridge runs one thread, named [`THREAD_NAME`], which reads the
//! channel, delivers, and reconnects. [`Bridge::stop`] (also run on drop)
//! ends and joins it within about 0.1 s, or [`Config::timeout`] if it is in
//! the middle of connecting. Stopping the bridge does not stop the hub.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::broadcast::Hub;
use crate::event::{Encode, FormattedEvent};

/// The name of the thread a bridge runs.
pub const THREAD_NAME: &str = "dstar-redis";

/// How often the bridge thread looks up from the channel to see whether it
/// is asked to stop: the `redis` crate cannot be interrupted while it waits
/// for a message, so it waits at most this long at a time.
const POLL: Duration = Duration::from_millis(100);

const HEADER_ALL: &str = "dstar/1 all";
const HEADER_TOPIC: &str = "dstar/1 topic ";

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
///     .channel("chat-room")
///     .timeout(Duration::from_secs(1))
///     .keepalive(Duration::from_secs(5))
///     .reconnect_delay(Duration::from_millis(50), Duration::from_secs(2))
///     .on_gap(|gap| eprintln!("redis was unreachable for {:?}: {}", gap.duration, gap.error));
/// ```
pub struct Config {
    url: String,
    channel: String,
    timeout: Duration,
    keepalive: Duration,
    first_delay: Duration,
    max_delay: Duration,
    deliver_with: Option<DeliverWith>,
    on_gap: Option<OnGap>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: show where it points, not what it says.
        let address = redis::Client::open(self.url.as_str())
            .map(|client| client.get_connection_info().addr().to_string())
            .unwrap_or_else(|_| "(invalid URL)".into());
        f.debug_struct("Config")
            .field("address", &address)
            .field("channel", &self.channel)
            .field("timeout", &self.timeout)
            .field("keepalive", &self.keepalive)
            .field("reconnect_delay", &(self.first_delay, self.max_delay))
            .field("deliver_with", &self.deliver_with.is_some())
            .field("on_gap", &self.on_gap.is_some())
            .finish()
    }
}

impl Config {
    /// Connect to the Redis server at `url` (as the `redis` crate reads it:
    /// `redis://[:password@]host[:port][/db]`, or `redis+unix:///path`), and
    /// use the channel `dstar`.
    pub fn new(url: impl Into<String>) -> Config {
        Config {
            url: url.into(),
            channel: "dstar".into(),
            timeout: Duration::from_secs(2),
            keepalive: Duration::from_secs(10),
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            deliver_with: None,
            on_gap: None,
        }
    }

    /// The pub/sub channel (default `dstar`). Instances that share a channel
    /// share their events; use one channel per group of instances.
    pub fn channel(mut self, name: impl Into<String>) -> Config {
        self.channel = name.into();
        self
    }

    /// How long connecting, publishing, or answering a ping may take before
    /// it counts as failed (at least 1 ms; default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Config {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// After this long without a message, the bridge pings Redis to find
    /// out whether its subscription is still alive (at least 1 ms; default
    /// 10 s). Without it, a connection whose far end vanished without
    /// closing it (a host that lost power, a firewall that forgot it) would
    /// look like a quiet channel forever.
    pub fn keepalive(mut self, interval: Duration) -> Config {
        self.keepalive = interval.max(Duration::from_millis(1));
        self
    }

    /// How long to wait before trying to reconnect: `first` after the
    /// subscription is lost, doubling after each failed attempt up to `max`
    /// (defaults 100 ms and 5 s).
    ///
    /// Each wait is shortened by a random part of up to half, so that
    /// instances that lost Redis together do not all come back in the same
    /// millisecond.
    pub fn reconnect_delay(mut self, first: Duration, max: Duration) -> Config {
        self.first_delay = first.max(Duration::from_millis(1));
        self.max_delay = max.max(self.first_delay);
        self
    }

    /// Called on the bridge thread once it is subscribed again after losing
    /// its subscription, before anything received afterwards is delivered.
    ///
    /// Events published while it was gone did not reach this instance:
    /// publish a full-state event or a notice to the local hub here (see
    /// [the module docs](self#when-redis-goes-away)). Keep it short: the
    /// channel waits meanwhile.
    pub fn on_gap(mut self, f: impl FnMut(&Gap) + Send + 'static) -> Config {
        self.on_gap = Some(Box::new(f));
        self
    }

    /// Replaces delivery: `f` is called on the bridge thread for every valid
    /// message, in channel order, and decides what to do with it; it must
    /// call [`Received::deliver`] for the hub to get it.
    ///
    /// This is for applications that keep state in step with the events
    /// their hub delivers, such as the history a new subscriber is shown:
    /// take your lock, record the event, deliver it, and release the lock,
    /// and render snapshots and subscribe under the same lock (as the
    /// [broadcast](crate::broadcast#design) docs describe), so that a new
    /// stream never gets an event both in its snapshot and live.
    pub fn deliver_with(mut self, f: impl FnMut(&Received<'_>) + Send + 'static) -> Config {
        self.deliver_with = Some(Box::new(f));
        self
    }
}

/// A valid message from the channel, on its way to the local hub; see
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

    /// The event, exactly as it was published.
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

/// A stretch of time in which the bridge was not subscribed, as passed to
/// [`Config::on_gap`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Gap {
    /// From the moment the subscription was found lost to the moment it was
    /// back.
    pub duration: Duration,
    /// Why it was lost.
    pub error: String,
}

/// A bridge's counters, from [`Bridge::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The bridge is subscribed to its channel now.
    pub connected: bool,
    /// How long it has not been subscribed, if it is not.
    pub disconnected_for: Option<Duration>,
    /// Events sent to Redis.
    pub published: u64,
    /// Events that [`Bridge::publish`] did not send, or could not confirm
    /// it sent, because the bridge was not subscribed or Redis failed.
    pub unsent: u64,
    /// Valid messages received from the channel (this instance's own
    /// included), each handed to the hub once.
    pub received: u64,
    /// Messages dropped because they were not what a bridge sends.
    pub malformed: u64,
    /// Times the subscription was lost. Events published during each such
    /// gap did not reach this instance.
    pub gaps: u64,
    /// Times the subscription was established again after a gap.
    pub reconnects: u64,
}

/// A hub's link to a Redis pub/sub channel: what it publishes goes to the
/// hubs of every instance on that channel, this one's included.
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
            .field("channel", &self.shared.channel)
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
    /// Connects to Redis, subscribes to the channel, and starts delivering
    /// what arrives there to `hub`.
    ///
    /// Returns once the subscription is in place, so that everything
    /// published from then on reaches `hub`.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) if the URL is not one
    /// the `redis` crate understands (without the crate's TLS features,
    /// `rediss://` is not); otherwise the error that kept the bridge from
    /// connecting or subscribing. The bridge does not retry a first
    /// connection: a wrong address should fail at startup.
    pub fn start(hub: Arc<Hub>, config: Config) -> io::Result<Bridge> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| redis_error(e, "dstar redis bridge: invalid Redis URL"))?;
        let address = client.get_connection_info().addr().to_string();
        let shared = Arc::new(Shared {
            hub,
            client,
            address,
            channel: config.channel,
            timeout: config.timeout,
            stopping: AtomicBool::new(false),
            link: Mutex::new(Link {
                stopped: false,
                connected: false,
                generation: 0,
                lost_at: Instant::now(),
                error: String::new(),
                retry_error: None,
            }),
            wake: Condvar::new(),
            publisher: Mutex::new(Publisher {
                conn: None,
                generation: 0,
            }),
            counters: Counters::default(),
        });
        let listener = Listener {
            shared: Arc::clone(&shared),
            keepalive: config.keepalive,
            first_delay: config.first_delay,
            max_delay: config.max_delay,
            deliver_with: config.deliver_with,
            on_gap: config.on_gap,
        };
        let (started, start_result) = mpsc::sync_channel(1);
        let thread = thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || listener.run(started))
            .map_err(|e| context(e, "dstar redis bridge: cannot start its thread"))?;
        let subscribed = start_result.recv().unwrap_or_else(|_| {
            Err(io::Error::other(
                "dstar redis bridge: its thread ended before subscribing",
            ))
        });
        if let Err(e) = subscribed {
            let _ = thread.join();
            return Err(e);
        }
        Ok(Bridge {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Publishes an event to every subscriber of every instance's hub;
    /// returns how many bridges Redis passed it to (this one included).
    ///
    /// The event is formatted once, and delivered to this instance's hub
    /// when Redis sends it back, in channel order (see
    /// [delivery](self#delivery-and-order)).
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) for an event that
    /// cannot be formatted (nothing is sent);
    /// [`NotConnected`](io::ErrorKind::NotConnected) while the bridge is not
    /// subscribed, or after [`stop`](Bridge::stop); the error from Redis if
    /// publishing failed. In those last cases the event is counted in
    /// [`Stats::unsent`] and must not be taken as delivered anywhere.
    pub fn publish(&self, event: impl Encode) -> io::Result<usize> {
        self.publish_formatted(None, &FormattedEvent::new(&event)?)
    }

    /// Publishes an event to the subscribers of `topic` (see
    /// [`Subscription::topic`](crate::broadcast::Subscription::topic)) on
    /// every instance; like [`publish`](Bridge::publish) otherwise.
    ///
    /// A topic containing a line feed is refused with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput).
    pub fn publish_to(&self, topic: &str, event: impl Encode) -> io::Result<usize> {
        self.publish_formatted(Some(topic), &FormattedEvent::new(&event)?)
    }

    /// Publishes an event that is already formatted, to everyone (`None`)
    /// or to a topic; like [`publish`](Bridge::publish) otherwise.
    pub fn publish_formatted(
        &self,
        topic: Option<&str>,
        event: &FormattedEvent,
    ) -> io::Result<usize> {
        let message = encode_message(topic, event)?;
        let sent = self.shared.send(&message);
        let counter = match sent {
            Ok(_) => &self.shared.counters.published,
            Err(_) => &self.shared.counters.unsent,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        sent
    }

    /// The local hub the bridge delivers to.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.shared.hub
    }

    /// The bridge's counters, as of now.
    pub fn stats(&self) -> Stats {
        let (connected, disconnected_for) = {
            let link = self.shared.lock_link();
            let down = (!link.connected).then(|| link.lost_at.elapsed());
            (link.connected, down)
        };
        let c = &self.shared.counters;
        Stats {
            connected,
            disconnected_for,
            published: c.published.load(Ordering::Relaxed),
            unsent: c.unsent.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            gaps: c.gaps.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
        }
    }

    /// Unsubscribes, closes the connections to Redis, and joins the bridge
    /// thread. The hub keeps running. Later publishes fail with
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
        lock(&self.shared.publisher).conn = None;
    }
}

/// What the bridge and its thread share.
struct Shared {
    hub: Arc<Hub>,
    client: redis::Client,
    /// `host:port` (or the socket path), for error messages: never the URL,
    /// which may hold a password.
    address: String,
    channel: String,
    timeout: Duration,
    /// Set by `stop`; read by the thread after every message.
    stopping: AtomicBool,
    link: Mutex<Link>,
    /// Signalled by `stop`, to cut short a wait before reconnecting.
    wake: Condvar,
    publisher: Mutex<Publisher>,
    counters: Counters,
}

/// The state of the subscription.
struct Link {
    stopped: bool,
    connected: bool,
    /// Incremented at every successful subscription.
    generation: u64,
    /// When the subscription was last found lost (or the bridge created).
    lost_at: Instant,
    /// Why it was lost.
    error: String,
    /// Why the last attempt to get it back failed, if one did.
    retry_error: Option<String>,
}

/// The connection `PUBLISH` goes through: separate from the subscription,
/// since a subscribed connection accepts no other command.
struct Publisher {
    conn: Option<redis::Connection>,
    /// The subscription generation it was opened in. A connection opened
    /// before the subscription was lost probably went with it (Redis
    /// restarted, say), so it is replaced rather than used to fail once.
    generation: u64,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    unsent: AtomicU64,
    received: AtomicU64,
    malformed: AtomicU64,
    gaps: AtomicU64,
    reconnects: AtomicU64,
}

impl Shared {
    fn lock_link(&self) -> MutexGuard<'_, Link> {
        lock(&self.link)
    }

    fn connect(&self) -> io::Result<redis::Connection> {
        let what = || format!("dstar redis bridge: cannot connect to {}", self.address);
        let conn = self
            .client
            .get_connection_with_timeout(self.timeout)
            .map_err(|e| redis_error(e, &what()))?;
        // The crate clears the timeouts it connected with; keep them, so that
        // no command waits forever on a server that stopped answering.
        conn.set_read_timeout(Some(self.timeout))
            .and_then(|()| conn.set_write_timeout(Some(self.timeout)))
            .map_err(|e| redis_error(e, &what()))?;
        Ok(conn)
    }

    /// Sends one message with `PUBLISH`, if the subscription is up.
    fn send(&self, message: &[u8]) -> io::Result<usize> {
        let generation = {
            let link = self.lock_link();
            if link.stopped {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "dstar redis bridge: stopped; the event was not sent",
                ));
            }
            if !link.connected {
                let retry = match &link.retry_error {
                    Some(error) => format!("; reconnecting: {error}"),
                    None => String::new(),
                };
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    format!(
                        "dstar redis bridge: not subscribed for {:.1?}, so the event was \
                         not sent: {}{retry}",
                        link.lost_at.elapsed(),
                        link.error,
                    ),
                ));
            }
            link.generation
        };
        let mut publisher = lock(&self.publisher);
        let current = publisher.generation == generation;
        let mut conn = match publisher.conn.take() {
            Some(conn) if current => conn,
            _ => self.connect()?,
        };
        let published = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(message)
            .query::<usize>(&mut conn)
            .map_err(|e| {
                let what = format!(
                    "dstar redis bridge: cannot publish to {:?} at {}; \
                     the event may not have been sent",
                    self.channel, self.address
                );
                redis_error(e, &what)
            })?;
        // Kept only after a success: after a failure (a timeout, say) the
        // connection may still hold a late answer.
        publisher.conn = Some(conn);
        publisher.generation = generation;
        Ok(published)
    }

    /// Marks the subscription up; returns the gap it ends, if it is not the
    /// first.
    fn subscribed(&self, first: bool) -> Option<Gap> {
        let mut link = self.lock_link();
        link.connected = true;
        link.generation += 1;
        link.retry_error = None;
        let gap = Gap {
            duration: link.lost_at.elapsed(),
            error: std::mem::take(&mut link.error),
        };
        (!first).then_some(gap)
    }

    /// Marks the subscription down, and counts a gap if it was up and the
    /// bridge is not stopping; or, if it was down already, records why
    /// getting it back failed.
    fn lost(&self, error: &io::Error) {
        // Shown inside messages that already say who is speaking.
        let error = error.to_string();
        let error = error.strip_prefix("dstar redis bridge: ").unwrap_or(&error);
        let mut link = self.lock_link();
        if link.connected {
            link.connected = false;
            link.lost_at = Instant::now();
            link.error = error.to_string();
            if !link.stopped {
                self.counters.gaps.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            link.retry_error = Some(error.to_string());
        }
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

/// The bridge thread: subscribes, delivers, reconnects.
struct Listener {
    shared: Arc<Shared>,
    keepalive: Duration,
    first_delay: Duration,
    max_delay: Duration,
    deliver_with: Option<DeliverWith>,
    on_gap: Option<OnGap>,
}

/// How one subscription ended.
enum Ended {
    Stopped,
    /// It never started: connecting or subscribing failed.
    NotSubscribed(io::Error),
    Lost(io::Error),
}

/// Marks the subscription down if the bridge thread ends for any reason, a
/// panicking hook included, so that publishing fails loudly instead of
/// sending events that no longer reach this instance.
struct Down<'a>(&'a Shared);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let ended = io::Error::other("the bridge thread ended");
        self.0.lost(&ended);
    }
}

impl Listener {
    fn run(mut self, started: mpsc::SyncSender<io::Result<()>>) {
        let shared = Arc::clone(&self.shared);
        let _down = Down(&shared);
        let mut started = Some(started);
        let mut delay = self.first_delay;
        loop {
            match self.subscribe_and_listen(&mut started) {
                Ended::Stopped => return,
                Ended::NotSubscribed(e) => {
                    if let Some(started) = started.take() {
                        let _ = started.send(Err(e));
                        return;
                    }
                    shared.lost(&e);
                    if !shared.sleep(jittered(delay)) {
                        return;
                    }
                    delay = (delay * 2).min(self.max_delay);
                }
                Ended::Lost(e) => {
                    shared.lost(&e);
                    delay = self.first_delay;
                    if !shared.sleep(jittered(delay)) {
                        return;
                    }
                }
            }
        }
    }

    fn subscribe_and_listen(
        &mut self,
        started: &mut Option<mpsc::SyncSender<io::Result<()>>>,
    ) -> Ended {
        let shared = Arc::clone(&self.shared);
        if shared.stopping.load(Ordering::Relaxed) {
            return Ended::Stopped;
        }
        let mut conn = match shared.connect() {
            Ok(conn) => conn,
            Err(e) => return Ended::NotSubscribed(e),
        };
        let mut pubsub = conn.as_pubsub();
        if let Err(e) = pubsub
            .subscribe(&shared.channel)
            .and_then(|()| pubsub.set_read_timeout(Some(POLL)))
        {
            let what = format!(
                "dstar redis bridge: cannot subscribe to {:?} at {}",
                shared.channel, shared.address
            );
            return Ended::NotSubscribed(redis_error(e, &what));
        }

        let gap = shared.subscribed(started.is_some());
        if let Some(started) = started.take() {
            let _ = started.send(Ok(()));
        }
        if let Some(gap) = gap {
            shared.counters.reconnects.fetch_add(1, Ordering::Relaxed);
            if let Some(on_gap) = &mut self.on_gap {
                on_gap(&gap);
            }
        }

        let lost = |e: redis::RedisError| {
            let what = format!(
                "dstar redis bridge: lost the subscription to {:?} at {}",
                shared.channel, shared.address
            );
            Ended::Lost(redis_error(e, &what))
        };
        let mut quiet_since = Instant::now();
        loop {
            if shared.stopping.load(Ordering::Relaxed) {
                return Ended::Stopped;
            }
            match pubsub.get_message() {
                Ok(message) => {
                    quiet_since = Instant::now();
                    self.receive(message.get_payload_bytes());
                }
                Err(e) if e.is_timeout() => {
                    if quiet_since.elapsed() < self.keepalive {
                        continue;
                    }
                    // A subscribed connection answers PING too; the answer
                    // gets the whole timeout, not the stop-polling interval.
                    let pinged = pubsub
                        .set_read_timeout(Some(shared.timeout))
                        .and_then(|()| pubsub.ping::<redis::Value>())
                        .and_then(|_| pubsub.set_read_timeout(Some(POLL)));
                    if let Err(e) = pinged {
                        return lost(e);
                    }
                    quiet_since = Instant::now();
                }
                Err(e) => return lost(e),
            }
        }
    }

    /// Checks one message and hands it on, or drops and counts it.
    fn receive(&mut self, payload: &[u8]) {
        let counters = &self.shared.counters;
        let Ok((topic, event)) = decode_message(payload) else {
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let received = Received {
            hub: &self.shared.hub,
            topic,
            event: &event,
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
}

/// The message for one event; see [the format](self#message-format).
fn encode_message(topic: Option<&str>, event: &FormattedEvent) -> io::Result<Vec<u8>> {
    let mut message = Vec::with_capacity(HEADER_TOPIC.len() + 64 + event.as_str().len());
    match topic {
        None => message.extend_from_slice(HEADER_ALL.as_bytes()),
        Some(topic) if topic.contains('\n') => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("dstar redis bridge: a topic cannot contain a line feed: {topic:?}"),
            ));
        }
        Some(topic) => {
            message.extend_from_slice(HEADER_TOPIC.as_bytes());
            message.extend_from_slice(topic.as_bytes());
        }
    }
    message.push(b'\n');
    message.extend_from_slice(event.as_str().as_bytes());
    Ok(message)
}

/// Reads a message back: its topic and its event, if it is exactly what
/// [`encode_message`] writes.
fn decode_message(payload: &[u8]) -> io::Result<(Option<&str>, FormattedEvent)> {
    let invalid = |problem: &str| io::Error::new(io::ErrorKind::InvalidData, problem.to_string());
    let text = std::str::from_utf8(payload).map_err(|_| invalid("not UTF-8"))?;
    let (header, event) = text
        .split_once('\n')
        .ok_or_else(|| invalid("no header line"))?;
    let topic = match header.strip_prefix(HEADER_TOPIC) {
        Some(topic) => Some(topic),
        None if header == HEADER_ALL => None,
        None => return Err(invalid("not a dstar/1 header")),
    };
    let event = FormattedEvent::parse(event.to_string())?;
    Ok((topic, event))
}

/// Between half and all of `delay`, at random.
fn jittered(delay: Duration) -> Duration {
    // Each `RandomState` has fresh random keys: the hash of nothing is a
    // random number, with no dependency for it.
    let random = RandomState::new().build_hasher().finish();
    delay / 2 + delay.mul_f64((random % 1024) as f64 / 2048.0)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code here panics while holding these locks; a panicking hook holds
    // none of them.
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
    use crate::Event;

    fn formatted(event: Event<'_>) -> FormattedEvent {
        FormattedEvent::new(&event).unwrap()
    }

    #[test]
    fn messages_round_trip() {
        let events = [
            formatted(Event::new("chat").data("hello\nworld").id("a-1")),
            formatted(Event::message("")),
            formatted(Event::new("t").id("")),
            formatted(Event::new("t").retry(Duration::from_millis(2500)).data("x")),
            formatted(Event::default()),
        ];
        for event in &events {
            for topic in [None, Some("room-1"), Some(""), Some("a b\rc")] {
                let message = encode_message(topic, event).unwrap();
                let (got_topic, got) = decode_message(&message).unwrap();
                assert_eq!((got_topic, &got), (topic, event));
            }
        }
    }

    #[test]
    fn the_format_is_the_documented_one() {
        let event = formatted(Event::new("chat").data("hello").id("a-1"));
        let message = encode_message(Some("room"), &event).unwrap();
        assert_eq!(
            message,
            b"dstar/1 topic room\nevent: chat\nid: a-1\ndata: hello\n\n"
        );
        let message = encode_message(None, &event).unwrap();
        assert_eq!(
            message,
            b"dstar/1 all\nevent: chat\nid: a-1\ndata: hello\n\n"
        );
    }

    #[test]
    fn a_topic_with_a_line_feed_is_refused() {
        let event = formatted(Event::message("x"));
        let err = encode_message(Some("a\nb"), &event).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn anything_else_is_malformed() {
        let bad: &[&[u8]] = &[
            b"",
            b"dstar/1 all",
            b"dstar/1 all\n",
            b"dstar/2 all\ndata: x\n\n",
            b"dstar/1 everyone\ndata: x\n\n",
            b"data: x\n\n",
            b"dstar/1 all\ndata: x\n\ndata: y\n\n",
            b"dstar/1 all\ndata: x\r\n\n",
            b"dstar/1 all\ndata: x\n",
            b"dstar/1 all\nevent: x\nevent: y\ndata: z\n\n",
            b"dstar/1 all\ndata: \xff\n\n",
            b"dstar/1 all\nretry: 1000\ndata: x\n\n",
            b"dstar/1 all\nretry: 0500\ndata: x\n\n",
            b"dstar/1 all\nretry: 99999999999999999999999\ndata: x\n\n",
            b"dstar/1 all\nid: a\0b\ndata: x\n\n",
            b"dstar/1 all\n: comment\ndata: x\n\n",
        ];
        for message in bad {
            let err = decode_message(message).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{message:?}");
        }
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

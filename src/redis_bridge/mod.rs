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

#[cfg(doc)]
use crate::event::FormattedEvent;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crate::broadcast::Hub;

mod config;
mod entry;
mod publisher;
mod reader;
mod resume;
mod shared;
mod stats;

pub use config::Config;
pub use reader::{Gap, Received};
pub use stats::Stats;

use self::entry::EntryId;
use self::publisher::Pool;
use self::reader::Reader;
use self::shared::{Link, Shared};
use self::stats::Counters;

/// The name of the thread a bridge runs.
pub const THREAD_NAME: &str = "dstar-redis";

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
    use std::time::Duration;
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

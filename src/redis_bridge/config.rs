//! Where a bridge connects, and how it behaves.

#[cfg(doc)]
use super::Bridge;
use std::fmt;
use std::time::Duration;

use super::reader::{Gap, Received};

/// The hooks run on the bridge thread, which owns them: `Send` is enough.
pub(super) type DeliverWith = Box<dyn FnMut(&Received<'_>) + Send>;
pub(super) type OnGap = Box<dyn FnMut(&Gap) + Send>;

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
    pub(super) url: String,
    pub(super) stream: String,
    pub(super) max_len: usize,
    pub(super) block: Duration,
    pub(super) timeout: Duration,
    pub(super) first_delay: Duration,
    pub(super) max_delay: Duration,
    pub(super) preload: usize,
    pub(super) publishers: usize,
    pub(super) deliver_with: Option<DeliverWith>,
    pub(super) on_gap: Option<OnGap>,
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
    /// browser can be resumed, before a [gap](crate::redis_bridge#outages): at 100 events
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
    /// [gap](crate::redis_bridge#outages), before it delivers anything else.
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

/// `host:port` for a URL, without what else it says (a password).
pub(super) fn address_of(url: &str) -> String {
    redis::Client::open(url)
        .map(|client| client.get_connection_info().addr().to_string())
        .unwrap_or_else(|_| "(invalid URL)".into())
}

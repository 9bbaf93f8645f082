//! Publishing: `XADD` on a small pool of connections, and what a failed
//! command may or may not have done.

#[cfg(doc)]
use super::{Config, Stats};
#[cfg(doc)]
use crate::broadcast::Subscription;
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::event::{Encode, FormattedEvent};

use super::shared::Shared;
use super::{Bridge, context, lock, redis_error};

impl Bridge {
    /// Adds an event to the stream, for every subscriber of every instance's
    /// hub; returns the entry id Redis gave it, which is its SSE id.
    ///
    /// This instance's hub gets it when the bridge reads it back, in stream
    /// order (see [delivery](crate::redis_bridge#delivery-and-order)).
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
}

pub(super) struct Pool {
    pub(super) idle: Vec<redis::Connection>,
    /// Connections lent out now.
    pub(super) busy: usize,
}

/// How a command on a pooled connection failed.
pub(super) enum Failed {
    /// It was never sent.
    NotSent(io::Error),
    /// It was sent; it may have run.
    Uncertain(io::Error),
}

impl Shared {
    /// Runs one command on a pooled connection, if the link is up and a
    /// connection is free (or can be made) before `deadline`.
    pub(super) fn with_connection<T>(
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
}

//! The bridge thread: reads the stream (`XREAD`), delivers each entry to
//! the hub, reconnects, and notices gaps.

#[cfg(doc)]
use super::Config;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use redis::Value;

use crate::broadcast::Hub;
use crate::event::FormattedEvent;

use super::config::{DeliverWith, OnGap};
use super::entry::{Entry, EntryId, parse_entries, parse_read};
use super::shared::Shared;
use super::{lock, redis_error};

/// The most entries one `XREAD` returns.
pub(super) const BATCH: usize = 512;

/// A valid entry from the stream, on its way to the local hub; see
/// [`Config::deliver_with`].
#[derive(Debug)]
pub struct Received<'a> {
    pub(super) hub: &'a Hub,
    pub(super) topic: Option<&'a str>,
    pub(super) event: &'a FormattedEvent,
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

/// The bridge thread: reads, delivers, reconnects.
pub(super) struct Reader {
    pub(super) shared: Arc<Shared>,
    pub(super) first_delay: Duration,
    pub(super) max_delay: Duration,
    pub(super) preload: usize,
    pub(super) deliver_with: Option<DeliverWith>,
    pub(super) on_gap: Option<OnGap>,
}

/// Marks the link down if the bridge thread ends for any reason, a
/// panicking hook included, so that publishing fails loudly instead of
/// sending events that no longer reach this instance.
pub(super) struct Down<'a>(&'a Shared);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        self.0.down(&io::Error::other("the bridge thread ended"));
    }
}

impl Reader {
    pub(super) fn run(mut self, started: mpsc::SyncSender<io::Result<()>>) {
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
    pub(super) fn connect(&mut self, first: bool) -> io::Result<redis::Connection> {
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
    pub(super) fn holds(&self, conn: &mut redis::Connection, id: EntryId) -> io::Result<bool> {
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
    pub(super) fn preload(
        &mut self,
        conn: &mut redis::Connection,
        delivery: &mut EntryId,
    ) -> io::Result<()> {
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
    pub(super) fn gap(
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
    pub(super) fn read(&mut self, conn: &mut redis::Connection) -> io::Result<()> {
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
    pub(super) fn deliver(&mut self, entry: &Entry) {
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

    pub(super) fn lost(&self, e: redis::RedisError) -> io::Error {
        let what = format!(
            "dstar redis bridge: lost the link to {:?} at {}",
            self.shared.stream, self.shared.address
        );
        redis_error(e, &what)
    }

    pub(super) fn unexpected(&self) -> io::Error {
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

/// Between half and all of `delay`, at random.
pub(super) fn jittered(delay: Duration) -> Duration {
    // Each `RandomState` has fresh random keys: the hash of nothing is a
    // random number, with no dependency for it.
    let random = RandomState::new().build_hasher().finish();
    delay / 2 + delay.mul_f64((random % 1024) as f64 / 2048.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn jitter_stays_between_half_and_all() {
        let delay = Duration::from_millis(100);
        for _ in 0..100 {
            let d = jittered(delay);
            assert!(d >= delay / 2 && d <= delay, "{d:?}");
        }
    }
}

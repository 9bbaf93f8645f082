//! Resuming a browser on any instance: from the hub's ring, or from the
//! entries Redis still holds, joined to the live ones with no gap.

#[cfg(doc)]
use super::Config;
#[cfg(doc)]
use crate::broadcast::Hub;
use std::io::{self, Write};
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::Instant;

use redis::Value;

use crate::broadcast::{Replay, Subscription};
use crate::connection::SseConnection;

use super::entry::{Entry, EntryId, parse_entries};
use super::shared::Shared;
use super::{Bridge, lock};

impl Bridge {
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
}

impl Shared {
    /// The entries after `after`, up to `up_to` (or the end), if Redis
    /// still holds `after` itself (or `up_to` is given: the range is then
    /// known to be retained), read before `deadline`. Never more than
    /// `max_len` of them.
    pub(super) fn entries_after(
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
}

//! What the bridge and its thread share: the Redis client, the link's
//! state, the delivery position, the counters.

use std::io::{self};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::broadcast::Hub;

use super::entry::EntryId;
use super::publisher::Pool;
use super::stats::Counters;
use super::{lock, redis_error};

/// What the bridge and its thread share.
pub(super) struct Shared {
    pub(super) hub: Arc<Hub>,
    pub(super) client: redis::Client,
    /// `host:port` (or the socket path), for error messages: never the URL,
    /// which may hold a password.
    pub(super) address: String,
    pub(super) stream: String,
    pub(super) max_len: usize,
    pub(super) block: Duration,
    pub(super) timeout: Duration,
    /// Set by `stop`; read by the thread after every read.
    pub(super) stopping: AtomicBool,
    pub(super) link: Mutex<Link>,
    /// Signalled by `stop`, to cut short a wait before reconnecting.
    pub(super) wake: Condvar,
    /// Connections for publishing and for reading history.
    pub(super) pool: Mutex<Pool>,
    pub(super) publishers: usize,
    /// The last entry delivered to the hub. Held while delivering, and while
    /// subscribing, so that the two are ordered.
    pub(super) delivery: Mutex<EntryId>,
    /// Signalled after every delivered batch.
    pub(super) delivered: Condvar,
    pub(super) counters: Counters,
}

/// Whether publishing is worth trying.
pub(super) struct Link {
    pub(super) stopped: bool,
    /// The last read succeeded and no publish failed since.
    pub(super) up: bool,
    /// When it went down (or the bridge was created).
    pub(super) lost_at: Instant,
    /// Why.
    pub(super) error: String,
}

impl Shared {
    pub(super) fn lock_link(&self) -> MutexGuard<'_, Link> {
        lock(&self.link)
    }

    /// A new connection, made within `timeout`, whose commands then wait
    /// at most that long for an answer too.
    pub(super) fn connect(&self, timeout: Duration) -> io::Result<redis::Connection> {
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

    /// Marks the link up after a successful read.
    pub(super) fn up(&self) {
        let mut link = self.lock_link();
        link.up = true;
    }

    /// Marks the link down (if it is up), with why.
    pub(super) fn down(&self, error: &io::Error) {
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
    pub(super) fn sleep(&self, delay: Duration) -> bool {
        let link = self.lock_link();
        let (link, _) = self
            .wake
            .wait_timeout_while(link, delay, |link| !link.stopped)
            .unwrap_or_else(PoisonError::into_inner);
        !link.stopped
    }
}

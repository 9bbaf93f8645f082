//! A bridge's counters.

#[cfg(doc)]
use super::{Bridge, Gap};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

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

#[derive(Default)]
pub(super) struct Counters {
    pub(super) published: AtomicU64,
    pub(super) unsent: AtomicU64,
    pub(super) uncertain: AtomicU64,
    pub(super) received: AtomicU64,
    pub(super) malformed: AtomicU64,
    pub(super) resumed: AtomicU64,
    pub(super) gaps: AtomicU64,
    pub(super) reconnects: AtomicU64,
    pub(super) retries: AtomicU64,
}

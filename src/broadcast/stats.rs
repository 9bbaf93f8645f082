//! The hub's counters.

#[cfg(doc)]
use super::{Config, Hub};
use std::sync::atomic::{AtomicU64, AtomicUsize};

/// A snapshot of a hub's counters, from [`Hub::stats`].
///
/// Every subscriber that has left the hub is counted once, in `evicted`,
/// `disconnected`, `taken_over`, `reset`, or (at shutdown) none of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Subscribers now in the hub.
    pub subscribers: usize,
    /// Threads the hub runs: its shared writers, the supervisor, and one
    /// per subscriber that was handed a thread of its own and is still
    /// being written (none before the first subscription or after
    /// [`stop`](Hub::stop)).
    pub threads: usize,
    /// Subscriptions accepted since the hub started.
    pub subscribed: u64,
    /// Events published (each [`publish`](Hub::publish) or
    /// [`publish_to`](Hub::publish_to) counts once).
    pub published: u64,
    /// Events written to subscribers (one per subscriber that was sent it),
    /// including replayed and snapshot events.
    pub delivered: u64,
    /// Subscribers removed for being too slow: their queue was full, or a
    /// write blocked for longer than the write timeout.
    pub evicted: u64,
    /// Subscribers removed because their connection failed: the peer hung
    /// up, or a write failed.
    pub disconnected: u64,
    /// Subscribers replaced by a newer subscription with the same key.
    pub taken_over: u64,
    /// Stalled subscribers handed a thread of their own (see
    /// [`Config::handoff_after`]).
    pub handoffs: u64,
    /// Subscribers cut off by [`Hub::reset`].
    pub reset: u64,
    /// Subscribers now in the hub whose stream is
    /// [compressed](crate::compression): each holds a compressor of its own
    /// (a few hundred KiB). Read it before starting a stream to cap them:
    /// past your limit, start new streams with
    /// [`Compression::off`](crate::compression::Compression::off).
    pub compressed: usize,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) threads: AtomicUsize,
    pub(super) subscribed: AtomicU64,
    pub(super) published: AtomicU64,
    pub(super) delivered: AtomicU64,
    pub(super) evicted: AtomicU64,
    pub(super) disconnected: AtomicU64,
    pub(super) taken_over: AtomicU64,
    pub(super) handoffs: AtomicU64,
    pub(super) reset: AtomicU64,
}

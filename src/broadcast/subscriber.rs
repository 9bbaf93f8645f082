//! One subscriber: its bounded queue, where it is in being written, and
//! how the hub tells it to end.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::event::FormattedEvent;

use super::writer::Stream;

/// One published event, shared by every queue it is in.
pub(super) struct Message {
    pub(super) event: FormattedEvent,
    pub(super) topic: Option<Box<str>>,
}

/// One subscriber.
pub(super) struct Sub {
    pub(super) id: u64,
    /// The writer it belongs to.
    pub(super) shard: usize,
    pub(super) topics: Box<[Box<str>]>,
    pub(super) key: Option<String>,
    pub(super) queue: Mutex<Queue>,
    /// Signalled for a subscriber with a thread of its own, when its queue
    /// stops being empty or `end` is set.
    pub(super) ready: Condvar,
    /// Taken (and dropped) when the stream ends. Only the one thread that
    /// serves the subscriber at a time locks it.
    pub(super) stream: Mutex<Option<Box<dyn Stream>>>,
    /// When it was last written to, in `Shared::now` time.
    pub(super) last_write: AtomicU64,
    /// Whether its stream is compressed, for `Stats::compressed`.
    pub(super) compressed: bool,
}

pub(super) struct Queue {
    pub(super) events: VecDeque<Arc<Message>>,
    /// Set when the stream must end; the first reason given wins.
    pub(super) end: Option<End>,
    pub(super) mode: Mode,
}

/// Where a subscriber is, as far as being written goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// Nothing to write; not on a run queue.
    Idle,
    /// On its writer's run queue, or being written to.
    Scheduled,
    /// Written by a thread of its own, which waits on `Sub::ready`.
    Dedicated,
}

/// How the hub tells a writer to end a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum End {
    /// Write what is queued and the terminating chunk (takeover, `finish`).
    Finish,
    /// Write what is queued and end without the terminating chunk (`stop`).
    Cut,
    /// End the connection without another write (eviction).
    Drop,
}

pub(super) enum Push {
    Queued,
    Full,
    Leaving,
}

/// Why a subscriber left the hub by itself.
#[derive(Clone, Copy, Debug)]
pub(super) enum Left {
    TooSlow,
    Failed,
}

/// What became of a subscriber after a turn of writing.
pub(super) enum Outcome {
    /// Still open.
    Open,
    /// Ended: by the hub (`None`, already counted), or by its connection.
    Ended(Option<Left>),
}

impl Sub {
    pub(super) fn wants(&self, topic: Option<&str>) -> bool {
        match topic {
            None => true,
            Some(topic) => self.topics.iter().any(|t| **t == *topic),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues an event; the `bool` says whether the subscriber must be put
    /// on its writer's run queue.
    pub(super) fn push(&self, message: &Arc<Message>, capacity: usize) -> (Push, bool) {
        let mut queue = self.lock();
        if queue.end.is_some() {
            return (Push::Leaving, false);
        }
        if queue.events.len() >= capacity {
            queue.end = Some(End::Drop);
            return (Push::Full, self.signal(queue, true));
        }
        let was_empty = queue.events.is_empty();
        queue.events.push_back(Arc::clone(message));
        (Push::Queued, self.signal(queue, was_empty))
    }

    /// Tells the hub to end the stream; `true` if the subscriber must be put
    /// on its writer's run queue for that.
    pub(super) fn end(&self, end: End) -> bool {
        let mut queue = self.lock();
        queue.end.get_or_insert(end);
        self.signal(queue, true)
    }

    /// Makes sure whoever writes this subscriber will look at its queue.
    pub(super) fn signal(&self, mut queue: MutexGuard<'_, Queue>, wake: bool) -> bool {
        match queue.mode {
            Mode::Idle => {
                queue.mode = Mode::Scheduled;
                true
            }
            // Its writer looks at the queue again when it is done.
            Mode::Scheduled => false,
            Mode::Dedicated => {
                drop(queue);
                // Its thread only waits on an empty queue; notifying after
                // unlocking spares it waking only to wait for the lock.
                if wake {
                    self.ready.notify_one();
                }
                false
            }
        }
    }
}

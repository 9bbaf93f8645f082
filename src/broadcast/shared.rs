//! What the hub's parts share: the registry of subscribers (under one
//! lock), the writers' run queues, the counters, and the operations that
//! touch more than one of them.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle, Thread};
use std::time::Instant;

use super::config::Config;
use super::stats::Counters;
use super::subscriber::{End, Left, Message, Sub};
use super::supervisor::supervise;
use super::writer::{Shard, write_shard};
use super::{THREAD_NAME, context, join_all};

pub(super) struct Shared {
    pub(super) config: Config,
    /// The prefix of the ids the hub gives events.
    pub(super) epoch: Box<str>,
    /// The zero of the nanosecond times kept in atomics.
    pub(super) clock: Instant,
    pub(super) state: Mutex<State>,
    pub(super) shards: Box<[Shard]>,
    pub(super) counters: Counters,
    /// Set by `stop`, for the supervisor.
    pub(super) stopping: AtomicBool,
    /// The hub was stopped with `finish` rather than `stop`.
    pub(super) finishing: AtomicBool,
    pub(super) supervisor: OnceLock<Thread>,
    /// The supervisor is parked until a writer starts writing.
    pub(super) supervisor_idle: AtomicBool,
}

impl Shared {
    pub(super) fn lock_state(&self) -> MutexGuard<'_, State> {
        // Connections' panics are caught away from this lock, so it is
        // never poisoned by them; recover anyway rather than cascade.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn now(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    /// Starts the writers and the supervisor (on the first subscription).
    /// If one cannot be started, those already started are stopped again,
    /// so that a later subscription can try afresh.
    pub(super) fn start(self: &Arc<Self>, state: &mut State) -> io::Result<()> {
        let mut started = Vec::new();
        let mut spawned = Ok(());
        for index in 0..self.shards.len() {
            let shared = Arc::clone(self);
            match self.spawn(move || write_shard(shared, index, 0)) {
                Ok(handle) => started.push(handle),
                Err(e) => {
                    spawned = Err(context(e, "dstar hub: cannot start a writer thread"));
                    break;
                }
            }
        }
        if spawned.is_ok() {
            let shared = Arc::clone(self);
            match self.spawn(move || supervise(shared)) {
                Ok(handle) => {
                    let _ = self.supervisor.set(handle.thread().clone());
                    started.push(handle);
                }
                Err(e) => spawned = Err(context(e, "dstar hub: cannot start its supervisor")),
            }
        }
        if let Err(e) = spawned {
            // Their run queues are empty: told to stop, they leave at once.
            self.shards.iter().for_each(|s| s.lock().stopping = true);
            self.shards.iter().for_each(|s| s.ready.notify_all());
            join_all(started);
            self.shards.iter().for_each(|s| s.lock().stopping = false);
            return Err(e);
        }
        state.threads.extend(started);
        state.started = true;
        Ok(())
    }

    /// Starts a named thread with the configured stack, counted in
    /// `Stats::threads` while it runs.
    pub(super) fn spawn(
        self: &Arc<Self>,
        body: impl FnOnce() + Send + 'static,
    ) -> io::Result<JoinHandle<()>> {
        struct Running(Arc<Shared>);
        impl Drop for Running {
            fn drop(&mut self) {
                self.0.counters.threads.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.counters.threads.fetch_add(1, Ordering::Relaxed);
        let running = Running(Arc::clone(self));
        let spawned = thread::Builder::new()
            .name(THREAD_NAME.to_string())
            .stack_size(self.config.stack_size)
            .spawn(move || {
                let _running = running;
                body();
            });
        // On failure the closure, and `running` with it, is dropped.
        spawned
    }

    /// Takes a subscriber out of the registry and tells its writer how to
    /// end the stream; returns it if it was still registered.
    pub(super) fn remove(&self, state: &mut State, id: u64, end: End) -> Option<Arc<Sub>> {
        let sub = state.subscribers.remove(&id)?;
        state.compressed -= usize::from(sub.compressed);
        if let Some(key) = &sub.key
            && state.keys.get(key) == Some(&id)
        {
            state.keys.remove(key);
        }
        if sub.end(end) {
            self.schedule(sub.shard, vec![Arc::clone(&sub)]);
        }
        Some(sub)
    }

    /// Puts subscribers on their writer's run queue, and wakes it.
    pub(super) fn schedule(&self, index: usize, subs: Vec<Arc<Sub>>) {
        if subs.is_empty() {
            return;
        }
        let shard = &self.shards[index];
        shard.lock().queue.extend(subs);
        shard.ready.notify_one();
    }

    /// Removes a subscriber whose connection failed, and counts why. Does
    /// nothing if it was already removed (and counted) by an eviction, a
    /// takeover or `stop`.
    pub(super) fn leave(&self, sub: &Sub, why: Left) {
        let mut state = self.lock_state();
        if state
            .subscribers
            .get(&sub.id)
            .is_some_and(|s| std::ptr::eq(&**s, sub))
        {
            self.remove(&mut state, sub.id, End::Drop);
            let counter = match why {
                Left::TooSlow => &self.counters.evicted,
                Left::Failed => &self.counters.disconnected,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn count_delivered(&self, events: usize) {
        let delivered = &self.counters.delivered;
        delivered.fetch_add(events as u64, Ordering::Relaxed);
    }

    /// Tells the supervisor a write has started, if it is parked.
    pub(super) fn wake_supervisor(&self) {
        if self.supervisor_idle.load(Ordering::SeqCst)
            && let Some(supervisor) = self.supervisor.get()
        {
            supervisor.unpark();
        }
    }
}

pub(super) struct State {
    pub(super) stopped: bool,
    /// The writers and the supervisor are running.
    pub(super) started: bool,
    pub(super) next_id: u64,
    /// The number of the last event the hub gave an id.
    pub(super) next_event: u64,
    /// The writer the next subscriber joins: round robin.
    pub(super) next_shard: usize,
    pub(super) subscribers: HashMap<u64, Arc<Sub>>,
    /// How many of `subscribers` are compressed: counted as they come and
    /// go, so that `stats` (which servers poll) does not walk them all
    /// under the lock `publish` needs.
    pub(super) compressed: usize,
    /// Takeover keys, and the subscriber that holds each.
    pub(super) keys: HashMap<String, u64>,
    /// The most recent events, oldest first, for replay.
    pub(super) ring: VecDeque<Arc<Message>>,
    /// Every thread the hub started and has not joined.
    pub(super) threads: Vec<JoinHandle<()>>,
}

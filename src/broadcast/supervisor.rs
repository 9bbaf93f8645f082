//! The supervisor: hands a writer stuck in one write to a new thread.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;

use super::shared::Shared;
use super::writer::write_shard;

/// The supervisor: hands a writer whose current write has taken longer
/// than `handoff_after` to a new thread. Parked while no writer is writing.
pub(super) fn supervise(shared: Arc<Shared>) {
    let limit = shared.config.handoff_after;
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let mut busy = false;
        for index in 0..shared.shards.len() {
            let started = {
                let run = shared.shards[index].lock();
                run.writing.as_ref().map(|(_, since)| *since)
            };
            if let Some(since) = started {
                busy = true;
                // Whether the writer is blocked in the kernel or only waiting
                // for a CPU, its other subscribers have waited long enough;
                // a spurious hand-off costs a thread, nothing else.
                if since.elapsed() >= limit {
                    hand_off(&shared, index);
                }
            }
        }
        if busy {
            thread::park_timeout(limit / 2);
            continue;
        }
        // Park until a writer starts writing. A writer sets `writing` under
        // its lock and then reads the flag, so either the check below sees
        // it writing or the writer sees the flag and unparks.
        shared.supervisor_idle.store(true, Ordering::SeqCst);
        let writing = shared.shards.iter().any(|s| s.lock().writing.is_some());
        if !writing && !shared.stopping.load(Ordering::SeqCst) {
            thread::park();
        }
        shared.supervisor_idle.store(false, Ordering::SeqCst);
    }
}

pub(super) fn hand_off(shared: &Arc<Shared>, index: usize) {
    let mut state = shared.lock_state();
    if state.stopped {
        // `stop` joins the stuck thread anyway, once its write returns.
        return;
    }
    let shard = &shared.shards[index];
    let mut run = shard.lock();
    let stuck = match &run.writing {
        Some((sub, since)) if since.elapsed() >= shared.config.handoff_after => Arc::clone(sub),
        _ => return,
    };
    // Spawned under the writer's lock: the stuck thread cannot return from
    // its write and look at `owner` until the new thread owns the writer.
    let generation = run.owner + 1;
    let owner = Arc::clone(shared);
    let Ok(handle) = shared.spawn(move || write_shard(owner, index, generation)) else {
        // Out of threads: the writer waits for its write like a shared one
        // would, and the supervisor tries again on its next round.
        return;
    };
    run.owner = generation;
    run.writing = None;
    run.members.remove(&stuck.id);
    drop(run);
    state.threads.push(handle);
    shared.counters.handoffs.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broadcast::mock::*;
    use crate::broadcast::{Config, Hub, Subscription};
    use std::time::Duration;
    #[test]
    fn a_stalled_subscriber_is_handed_a_thread_and_its_writer_moves_on() {
        // One shared writer, so both subscribers share it.
        let hub = Hub::new(
            Config::new()
                .writers(1)
                .handoff_after(Duration::from_millis(5)),
        );
        let stalled = Tape::new(false);
        let _release = Release(Arc::clone(&stalled));
        let healthy = Tape::new(true);
        hub.subscribe(body_only(&stalled), Subscription::new())
            .unwrap();
        hub.subscribe(body_only(&healthy), Subscription::new())
            .unwrap();

        publish_ticks(&hub, 1..=1);
        stalled.wait("the stalled write", |log| log.blocked == 1);
        // The healthy one is served by a new writer while the old one is
        // still stuck.
        healthy.wait("event 1", |log| log.flushes == 1);
        publish_ticks(&hub, 2..=3);
        healthy.wait("events 2 and 3", |log| {
            log.writes.concat().len() == 3 * tick(1).len()
        });
        // The stalled one was handed off: the healthy one got events while
        // it was stuck. On a loaded machine the healthy one may have been
        // handed off too, after waiting 5 ms for a CPU; each hand-off leaves
        // a thread with its subscriber, both of which are still open.
        let stats = hub.stats();
        assert!(stats.handoffs >= 1, "{stats:?}");
        // One writer, the supervisor, and a thread per hand-off.
        assert_eq!(stats.threads as u64, 2 + stats.handoffs, "{stats:?}");

        // Released, it gets what waited in one write, and stays served.
        stalled.update(|log| log.open = true);
        stalled.wait("events 2 and 3", |log| log.writes.len() == 2);
        assert_eq!(stalled.lock().writes[1], (tick(2) + &tick(3)).as_bytes());
        publish_ticks(&hub, 4..=4);
        stalled.wait("event 4", |log| log.writes.len() == 3);
        healthy.wait("event 4", |log| {
            log.writes.concat().len() == 4 * tick(1).len()
        });
        assert_eq!(hub.stats().subscribers, 2);
        hub.stop();
        assert_eq!(hub.stats().threads, 0);
    }
}

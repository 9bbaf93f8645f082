//! Event ids (the hub's epoch) and how a subscription opens: replayed
//! from the ring, resumed from events the caller read, or with its snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::shared::State;
use super::subscriber::Message;
use super::subscription::{Replay, Subscription};

/// A hub's epoch: 64 bits, as 16 hex digits, different for every hub.
///
/// A process-wide counter keeps two hubs of one process apart even when
/// they are made in the same nanosecond; the process id and the time keep
/// processes apart, and `RandomState`'s keys (drawn from the system's
/// randomness once per thread, then varied per instance) make it
/// unpredictable and keep apart processes whose ids and clocks agree
/// (containers, a clock set back). Hashed together, not concatenated, so
/// that the id stays short.
pub(super) fn new_epoch() -> Box<str> {
    use std::hash::{BuildHasher, Hasher};
    static HUBS: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(HUBS.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    let since_1970 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(since_1970.as_nanos());
    format!("{:016x}", hasher.finish()).into_boxed_str()
}

impl State {
    /// The events a new subscription opens with, and how it started.
    pub(super) fn opening(&self, sub: &Subscription) -> (Vec<Arc<Message>>, Replay) {
        let wants = |m: &Message| match &m.topic {
            None => true,
            Some(topic) => sub.topics.contains(topic),
        };
        if let Some(missed) = &sub.resume_with {
            let missed: Vec<_> = missed
                .iter()
                .filter(|(topic, _)| match topic {
                    None => true,
                    Some(topic) => sub.topics.contains(topic),
                })
                .map(|(topic, event)| {
                    Arc::new(Message {
                        event: event.clone(),
                        topic: topic.clone(),
                    })
                })
                .collect();
            let n = missed.len();
            return (missed, Replay::Replayed(n));
        }
        let resumed = sub.last_event_id.as_deref().map(|last| {
            self.ring
                .iter()
                .rposition(|m| m.event.id() == Some(last))
                .map(|at| {
                    let missed: Vec<_> = self
                        .ring
                        .range(at + 1..)
                        .filter(|m| wants(m))
                        .cloned()
                        .collect();
                    let n = missed.len();
                    (missed, Replay::Replayed(n))
                })
        });
        match resumed {
            Some(Some(replayed)) => replayed,
            unresumed => {
                let snapshot = sub
                    .snapshot
                    .iter()
                    .map(|event| {
                        Arc::new(Message {
                            event: event.clone(),
                            topic: None,
                        })
                    })
                    .collect();
                let replay = match unresumed {
                    None => Replay::NotRequested,
                    _ => Replay::Unavailable,
                };
                (snapshot, replay)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broadcast::mock::*;
    use crate::broadcast::{Config, Hub, Replay, Subscription};
    use crate::{Event, FormattedEvent};
    use std::thread;
    #[test]
    fn replay_resumes_after_the_last_event_id_with_no_gap() {
        let hub = Hub::new(Config::new().replay(3));
        for n in 1..=5 {
            let id = n.to_string();
            hub.publish(Event::new("tick").data(&id).id(&id)).unwrap();
        }
        let state = FormattedEvent::new(&Event::new("state").data("full")).unwrap();
        let resume = |id: Option<&str>| {
            Subscription::new()
                .last_event_id(id)
                .snapshot(state.clone())
        };
        let live = || {
            hub.publish(Event::new("tick").data("6").id("6")).unwrap();
        };

        // The ring holds 3, 4, 5: resuming after 3 replays 4 and 5.
        let got = received(&hub, resume(Some("3")), live, 3);
        assert_eq!(got, ["4", "5", "6"]);
        // Now it holds 4, 5, 6.
        let got = received(&hub, resume(Some("6")), || {}, 0);
        assert!(got.is_empty(), "{got:?}");
        // 3 is gone, and an unknown id is no better: the snapshot instead.
        for gone in [Some("3"), Some("nope"), None, Some("")] {
            let got = received(&hub, resume(gone), || {}, 1);
            assert_eq!(got, ["full"], "{gone:?}");
        }
    }

    #[test]
    fn with_replay_the_hub_numbers_events_and_keeps_given_ids() {
        let hub = Hub::new(Config::new().replay(10));
        let tape = Tape::new(true);
        hub.subscribe(with_head(&tape), Subscription::new())
            .unwrap();
        hub.publish(Event::message("a")).unwrap();
        hub.publish(Event::message("b").id("mine")).unwrap();
        hub.publish_to("t", Event::message("c")).unwrap();
        hub.publish(Event::message("d")).unwrap();
        tape.wait("3 events", |log| events_in(log) == 3);
        let epoch = hub.epoch();
        assert_eq!(
            ids_of(&tape),
            // One numbering for the hub: the topic's event took number 2.
            [format!("{epoch}-1"), "mine".into(), format!("{epoch}-3")]
        );

        // Without replay, events stay as they were published.
        let off = Hub::new(Config::new());
        let tape = Tape::new(true);
        off.subscribe(with_head(&tape), Subscription::new())
            .unwrap();
        off.publish(Event::message("a")).unwrap();
        tape.wait("the event", |log| events_in(log) == 1);
        assert!(
            tape.text().ends_with("\r\ndata: a\n\n\r\n"),
            "{}",
            tape.text()
        );
    }

    #[test]
    fn epochs_differ_between_hubs_made_at_once() {
        let epochs: Vec<String> = thread::scope(|s| {
            let makers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..250)
                            .map(|_| Hub::new(Config::new()).epoch().to_string())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            makers.into_iter().flat_map(|m| m.join().unwrap()).collect()
        });
        let unique: std::collections::HashSet<_> = epochs.iter().collect();
        assert_eq!(unique.len(), epochs.len());
        assert!(epochs.iter().all(|e| e.len() == 16));
    }

    #[test]
    fn an_id_from_a_previous_process_takes_the_snapshot_path() {
        // The previous process: ids given by its hub, one of them kept by a
        // browser.
        let old = Hub::new(Config::new().replay(100));
        let tape = Tape::new(true);
        old.subscribe(with_head(&tape), Subscription::new())
            .unwrap();
        for n in 1..=6 {
            old.publish(Event::message(&n.to_string())).unwrap();
        }
        tape.wait("6 events", |log| events_in(log) == 6);
        let kept = ids_of(&tape)[5].clone();
        drop(old);

        // The new process publishes more than that before the tab is back.
        let new = Hub::new(Config::new().replay(100));
        for n in 1..=12 {
            new.publish(Event::message(&format!("new {n}"))).unwrap();
        }
        let state = FormattedEvent::new(&Event::new("state").data("full")).unwrap();
        let tape = Tape::new(true);
        let sub = Subscription::new()
            .last_event_id(Some(&kept))
            .snapshot(state);
        assert_eq!(
            new.subscribe(with_head(&tape), sub).unwrap(),
            Replay::Unavailable
        );
        new.publish(Event::message("live")).unwrap();
        tape.wait("2 events", |log| events_in(log) == 2);
        let response = crate::testing::decode_response(tape.text().as_bytes()).unwrap();
        let data: Vec<_> = response.events().iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["full", "live"]);
        assert!(!new.can_resume(&kept));
    }

    #[test]
    fn numbered_replay_has_no_gap_and_no_duplicate() {
        let hub = Arc::new(Hub::new(Config::new().replay(1000)));
        // A publisher keeps going while clients resume from ids they saw.
        let first = Tape::new(true);
        hub.subscribe(with_head(&first), Subscription::new())
            .unwrap();
        let publisher = {
            let hub = Arc::clone(&hub);
            thread::spawn(move || {
                for n in 1..=500 {
                    hub.publish(Event::message(&n.to_string())).unwrap();
                }
            })
        };
        first.wait("100 events", |log| events_in(log) >= 100);
        let seen = ids_of(&first);
        let resumed = Tape::new(true);
        let at = seen.len() / 2;
        let sub = Subscription::new().last_event_id(Some(&seen[at - 1]));
        assert!(matches!(
            hub.subscribe(with_head(&resumed), sub).unwrap(),
            Replay::Replayed(_)
        ));
        publisher.join().unwrap();
        first.wait("500 events", |log| events_in(log) == 500);
        resumed.wait("the rest", |log| events_in(log) == 500 - at);
        let all = ids_of(&first);
        assert_eq!(ids_of(&resumed), all[at..]);
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), 500);
    }

    #[test]
    fn resume_with_replaces_the_ring_and_keeps_the_topics() {
        let hub = Hub::new(Config::new().replay(10));
        hub.publish(Event::message("in the ring").id("9")).unwrap();
        let event =
            |data: &str, id: &str| FormattedEvent::new(&Event::message(data).id(id)).unwrap();
        let missed = vec![
            (None, event("1", "1")),
            (Some("other".to_string()), event("2", "2")),
            (Some("mine".to_string()), event("3", "3")),
        ];
        let tape = Tape::new(true);
        let sub = Subscription::new()
            .topic("mine")
            .last_event_id(Some("0"))
            .snapshot(event("snapshot", "s"))
            .resume_with(missed);
        assert_eq!(
            hub.subscribe(with_head(&tape), sub).unwrap(),
            Replay::Replayed(2)
        );
        hub.publish(Event::message("live").id("10")).unwrap();
        tape.wait("3 events", |log| events_in(log) == 3);
        assert_eq!(ids_of(&tape), ["1", "3", "10"]);
    }

    #[test]
    fn reset_forgets_the_ring_and_cuts_every_stream() {
        let hub = Hub::new(Config::new().replay(10));
        let tapes: Vec<_> = (0..2).map(|_| Tape::new(true)).collect();
        for tape in &tapes {
            let conn = with_head(tape);
            hub.subscribe(conn, Subscription::new()).unwrap();
        }
        hub.publish(Event::message("a")).unwrap();
        let id = format!("{}-1", hub.epoch());
        assert!(hub.can_resume(&id));
        assert_eq!(hub.reset(), 2);
        for tape in &tapes {
            tape.wait("the stream to be dropped", |log| log.dropped);
            assert!(!tape.text().ends_with("0\r\n\r\n"), "{}", tape.text());
        }
        assert!(!hub.can_resume(&id));
        let stats = hub.stats();
        assert_eq!((stats.subscribers, stats.reset), (0, 2), "{stats:?}");
        // The hub goes on, numbering where it was.
        let tape = Tape::new(true);
        hub.subscribe(with_head(&tape), Subscription::new())
            .unwrap();
        hub.publish(Event::message("b")).unwrap();
        tape.wait("the event", |log| events_in(log) == 1);
        assert_eq!(ids_of(&tape), [format!("{}-2", hub.epoch())]);
    }

    #[test]
    fn subscribe_says_how_the_stream_started() {
        let hub = Hub::new(Config::new().replay(2));
        hub.publish(Event::new("t").data("1").id("1")).unwrap();
        hub.publish(Event::new("t").data("2").id("2")).unwrap();
        let start = |id| {
            let tape = Tape::new(true);
            hub.subscribe(body_only(&tape), Subscription::new().last_event_id(id))
                .unwrap()
        };
        assert_eq!(start(None), Replay::NotRequested);
        assert_eq!(start(Some("1")), Replay::Replayed(1));
        assert_eq!(start(Some("2")), Replay::Replayed(0));
        assert_eq!(start(Some("0")), Replay::Unavailable);

        let off = Hub::new(Config::new());
        off.publish(Event::new("t").data("1").id("1")).unwrap();
        let tape = Tape::new(true);
        let replay = off
            .subscribe(
                body_only(&tape),
                Subscription::new().last_event_id(Some("1")),
            )
            .unwrap();
        assert_eq!(replay, Replay::Unavailable);
    }

    #[test]
    fn replay_only_includes_the_subscribers_topics() {
        let hub = Hub::new(Config::new().replay(10));
        hub.publish(Event::new("t").data("0").id("0")).unwrap();
        hub.publish_to("a", Event::new("t").data("a1").id("1"))
            .unwrap();
        hub.publish_to("b", Event::new("t").data("b2").id("2"))
            .unwrap();
        hub.publish(Event::new("t").data("all3").id("3")).unwrap();
        let sub = Subscription::new().topic("a").last_event_id(Some("0"));
        assert_eq!(received(&hub, sub, || {}, 2), ["a1", "all3"]);
    }
}

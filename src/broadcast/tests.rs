//! The hub's lifecycle: stopping, finishing, takeover, topics.

use super::mock::*;
use super::*;
use crate::Event;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Three streams that can be written and one whose first write blocks,
/// each with events 1 and 2 queued or written; then `end` is called on
/// the hub while the blocked write is let go a little later. Returns
/// the tapes, the blocked one last.
fn end_with_a_blocked_writer(hub: &Hub, end: fn(&Hub)) -> Vec<Arc<Tape>> {
    let tapes: Vec<_> = (0..3).map(|_| Tape::new(true)).collect();
    for tape in &tapes {
        let conn = with_head(tape);
        hub.subscribe(conn, Subscription::new()).unwrap();
    }
    let blocked = Tape::new(false);
    let _release = Release(Arc::clone(&blocked));
    hub.subscribe(body_only(&blocked), Subscription::new())
        .unwrap();
    publish_ticks(hub, 1..=1);
    blocked.wait("the first write", |log| log.blocked == 1);
    publish_ticks(hub, 2..=2);

    // `stop` joins the blocked writer, so let it go a little later.
    let release = {
        let blocked = Arc::clone(&blocked);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            blocked.update(|log| log.open = true);
        })
    };
    end(hub);
    release.join().unwrap();

    assert_eq!(hub.stats().threads, 0);
    assert_eq!(hub.stats().subscribers, 0);
    // The blocked one got its queued event too, in one write after the first.
    assert_eq!(blocked.text(), tick(1) + &tick(2));
    assert_eq!(blocked.lock().writes.len(), 2);
    assert!(blocked.lock().dropped);

    assert_eq!(hub.publish(Event::new("tick").data("3")).unwrap(), 0);
    let mut all = tapes;
    all.push(blocked);
    all
}

fn check_ticks(tape: &Tape) -> crate::testing::Response {
    assert!(tape.lock().dropped);
    let response = crate::testing::decode_response(tape.text().as_bytes()).unwrap();
    let data: Vec<_> = response.events().iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data, ["1", "2"]);
    response
}

#[test]
fn stop_cuts_every_stream_after_what_was_queued_and_joins_threads() {
    let hub = Hub::new(Config::new());
    let tapes = end_with_a_blocked_writer(&hub, Hub::stop);
    for tape in &tapes[..3] {
        let response = check_ticks(tape);
        // No terminating chunk: the client sees the stream cut and reconnects.
        assert!(!response.finished, "{:?}", tape.text());
    }
    hub.stop(); // again: nothing to do
    hub.finish(); // nor this: the first call decided
    for tape in &tapes[..3] {
        assert!(!tape.text().ends_with("0\r\n\r\n"));
    }
}

#[test]
fn finish_ends_every_stream_with_its_terminating_chunk() {
    let hub = Hub::new(Config::new());
    let tapes = end_with_a_blocked_writer(&hub, Hub::finish);
    for tape in &tapes[..3] {
        assert!(check_ticks(tape).finished);
    }
    // The blocked one's queued event and the end went out in one write.
    let blocked = &tapes[3];
    assert_eq!(blocked.lock().writes.last().unwrap(), tick(2).as_bytes());
    hub.stop(); // nothing to do: already finished
    hub.finish();
}

#[test]
fn subscribing_to_a_stopped_hub_ends_the_stream_as_the_others_were() {
    for (end, finished) in [(Hub::stop as fn(&Hub), false), (Hub::finish, true)] {
        let hub = Hub::new(Config::new());
        end(&hub);
        let tape = Tape::new(true);
        let conn = with_head(&tape);
        let err = hub.subscribe(conn, Subscription::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotConnected);
        assert!(err.to_string().contains("stopped"), "{err}");
        assert_eq!(tape.text().ends_with("0\r\n\r\n"), finished);
        assert!(tape.text().starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(tape.lock().dropped);
    }
}

#[test]
fn dropping_the_hub_stops_it() {
    let tape = Tape::new(true);
    {
        let hub = Hub::new(Config::new());
        let conn = with_head(&tape);
        hub.subscribe(conn, Subscription::new()).unwrap();
    }
    // Dropping joined the writer, which had cut the stream: a server
    // that exits lets its clients come back to the next one.
    assert!(tape.lock().dropped);
    assert!(tape.text().starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(!tape.text().ends_with("0\r\n\r\n"));
}

#[test]
fn a_newer_subscription_with_the_same_key_takes_over() {
    let hub = Hub::new(Config::new());
    let old = Tape::new(true);
    let new = Tape::new(true);
    hub.subscribe(with_head(&old), Subscription::new().key("tab"))
        .unwrap();
    hub.subscribe(with_head(&new), Subscription::new().key("other"))
        .unwrap();
    hub.subscribe(with_head(&new), Subscription::new().key("tab"))
        .unwrap();
    old.wait("the old stream to end", |log| log.dropped);
    assert!(old.text().ends_with("0\r\n\r\n"), "{}", old.text());
    let stats = hub.stats();
    assert_eq!((stats.subscribers, stats.taken_over), (2, 1), "{stats:?}");
    assert_eq!(hub.publish(Event::new("tick").data("1")).unwrap(), 2);
}

#[test]
fn topics_reach_only_their_subscribers() {
    let hub = Hub::new(Config::new());
    let (a, b, none) = (Tape::new(true), Tape::new(true), Tape::new(true));
    hub.subscribe(body_only(&a), Subscription::new().topic("a"))
        .unwrap();
    hub.subscribe(body_only(&b), Subscription::new().topic("b").topic("a"))
        .unwrap();
    hub.subscribe(body_only(&none), Subscription::new())
        .unwrap();
    assert_eq!(hub.publish_to("b", Event::message("to b")).unwrap(), 1);
    assert_eq!(hub.publish_to("a", Event::message("to a")).unwrap(), 2);
    assert_eq!(hub.publish_to("c", Event::message("to c")).unwrap(), 0);
    assert_eq!(hub.publish(Event::message("to all")).unwrap(), 3);
    let sent = |tape: &Tape, n| tape.wait("the events", |log| log.writes.concat().len() >= n);
    sent(&a, 26);
    sent(&b, 38);
    sent(&none, 14);
    assert_eq!(a.text(), "data: to a\n\ndata: to all\n\n");
    assert_eq!(b.text(), "data: to b\n\ndata: to a\n\ndata: to all\n\n");
    assert_eq!(none.text(), "data: to all\n\n");
    assert_eq!(hub.stats().published, 4);
}

#[test]
fn an_invalid_event_is_refused_before_anything_is_queued() {
    let hub = Hub::new(Config::new());
    let tape = Tape::new(true);
    hub.subscribe(body_only(&tape), Subscription::new())
        .unwrap();
    let err = hub.publish(Event::new("bad\ntype").data("x")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(hub.stats().published, 0);
    hub.stop();
    assert!(tape.lock().writes.is_empty());
}

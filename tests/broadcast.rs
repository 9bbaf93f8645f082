//! The broadcast hub over real sockets on 127.0.0.1.
//!
//! Every socket has read and write timeouts, so a failure shows up as an
//! error within seconds instead of a hang. Nothing here asserts how fast
//! something happens; waits are bounded generously, and only to turn a hang
//! into a failure.

mod broadcast_support;

use broadcast_support::{Client, Server, wait_until};
use dstar::broadcast::{Config, Hub, Replay, Subscription};
use dstar::{Event, FormattedEvent};
use std::time::{Duration, Instant};

fn ticks(hub: &Hub, range: std::ops::RangeInclusive<usize>) {
    for n in range {
        let n = n.to_string();
        hub.publish(Event::new("tick").data(&n).id(&n)).unwrap();
    }
}

fn numbers(range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|n| n.to_string()).collect()
}

#[test]
fn every_subscriber_receives_every_event_in_order() {
    let server = Server::new();
    let hub = Hub::new(Config::new());
    let mut clients: Vec<Client> = (0..16)
        .map(|_| server.subscribe(&hub, Subscription::new()))
        .collect();
    assert_eq!(hub.stats().subscribers, 16);

    ticks(&hub, 1..=300);
    for client in &mut clients {
        client.wait_for_events(300);
        assert_eq!(client.data(), numbers(1..=300));
        assert!(client.events.iter().all(|e| e.event_type == "tick"));
    }
    let stats = hub.stats();
    assert_eq!(stats.published, 300);
    wait_until("every delivery to be counted", || {
        hub.stats().delivered == 16 * 300
    });
    assert_eq!((stats.evicted, stats.disconnected), (0, 0), "{stats:?}");
}

/// Publishes large events in lockstep with the readers (each event is read
/// by all of them before the next is published) until the hub evicts the
/// subscriber that never reads. Returns how many events were published.
fn publish_until_evicted(hub: &Hub, readers: &mut [Client]) -> usize {
    let padding = "x".repeat(64 * 1024);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    while hub.stats().evicted == 0 {
        assert!(
            Instant::now() < deadline,
            "the subscriber that never reads was not evicted after {n} events: {:?}",
            hub.stats()
        );
        n += 1;
        let id = n.to_string();
        let data = format!("{n} {padding}");
        hub.publish(Event::new("big").data(&data).id(&id)).unwrap();
        // The readers' receive timeout (10 s) bounds the delay: a reader
        // held up behind the stalled one would fail here.
        for reader in readers.iter_mut() {
            reader.wait_for_events(n);
        }
    }
    n
}

fn check_readers_got(readers: &[Client], published: usize) {
    for reader in readers {
        let firsts: Vec<String> = reader
            .data()
            .iter()
            .map(|d| d.split(' ').next().unwrap().to_string())
            .collect();
        assert_eq!(firsts, numbers(1..=published));
    }
}

/// The evicted stream: closed without its terminating chunk once its
/// writer returns, which it does when the client reads what is buffered.
fn check_cut_short(mut stalled: Client) {
    stalled.read_to_end();
    assert!(stalled.eof);
    assert!(
        !stalled.finished,
        "an evicted stream is cut short, not finished"
    );
    assert!(!stalled.events.is_empty());
}

#[test]
fn a_subscriber_with_a_full_queue_is_evicted_and_never_delays_the_others() {
    let server = Server::new();
    // A write timeout far longer than the readers' receive timeout: if the
    // stalled writer held anyone up, the readers would time out first. One
    // shared writer thread, so the stalled subscriber shares it with them.
    let hub = Hub::new(
        Config::new()
            .queue_capacity(8)
            .write_timeout(Duration::from_secs(60))
            .writers(1),
    );
    let stalled = server.subscribe(&hub, Subscription::new());
    let mut readers: Vec<Client> = (0..3)
        .map(|_| server.subscribe(&hub, Subscription::new()))
        .collect();

    let published = publish_until_evicted(&hub, &mut readers);

    let stats = hub.stats();
    assert_eq!((stats.evicted, stats.subscribers), (1, 3), "{stats:?}");
    // Its blocked write was handed a thread of its own, so the readers' went
    // on. (A reader's large write may be handed off too if it waits long
    // for its reader on a busy machine.)
    assert!(stats.handoffs >= 1, "{stats:?}");
    check_readers_got(&readers, published);
    // The readers keep receiving after the eviction.
    hub.publish(Event::new("big").data("after")).unwrap();
    for reader in &mut readers {
        reader.wait_for_events(published + 1);
        assert_eq!(reader.data().last().unwrap(), "after");
    }
    check_cut_short(stalled);
}

#[test]
fn a_subscriber_whose_write_times_out_is_evicted() {
    let server = Server::new();
    let hub = Hub::new(
        Config::new()
            .queue_capacity(1_000_000)
            .write_timeout(Duration::from_millis(200)),
    );
    let stalled = server.subscribe(&hub, Subscription::new());
    let mut readers = vec![server.subscribe(&hub, Subscription::new())];

    let published = publish_until_evicted(&hub, &mut readers);

    wait_until("the evicted subscriber to leave", || {
        hub.stats().subscribers == 1
    });
    let stats = hub.stats();
    assert_eq!((stats.evicted, stats.disconnected), (1, 0), "{stats:?}");
    check_readers_got(&readers, published);
    check_cut_short(stalled);
}

#[test]
fn a_client_that_disconnects_is_pruned_by_the_next_heartbeat() {
    let server = Server::new();
    let hub = Hub::new(Config::new().heartbeat(Duration::from_millis(200)));
    let mut staying = server.subscribe(&hub, Subscription::new());
    let leaving = server.subscribe(&hub, Subscription::new());
    assert_eq!(hub.stats().subscribers, 2);

    // Nothing is published: only a heartbeat can notice.
    let hung_up = Instant::now();
    drop(leaving);
    wait_until("the closed client to be pruned", || {
        hub.stats().subscribers == 1
    });
    let noticed = hung_up.elapsed();
    let stats = hub.stats();
    assert_eq!((stats.disconnected, stats.evicted), (1, 0), "{stats:?}");
    eprintln!("pruned {noticed:?} after the client hung up (heartbeat 200 ms)");

    // The one that stayed gets heartbeats (comments), and events.
    staying.read_until(|client| client.comments > 0);
    ticks(&hub, 1..=1);
    staying.wait_for_events(1);
}

#[test]
fn a_newer_subscription_with_the_same_key_finishes_the_older_one() {
    let server = Server::new();
    let hub = Hub::new(Config::new());
    let mut old = server.subscribe(&hub, Subscription::new().key("tab-1"));
    let mut other = server.subscribe(&hub, Subscription::new().key("tab-2"));
    ticks(&hub, 1..=2);
    old.wait_for_events(2);

    let mut new = server.subscribe(&hub, Subscription::new().key("tab-1"));
    old.read_to_end();
    assert!(old.finished, "the older stream ends with its last chunk");
    assert_eq!(old.data(), numbers(1..=2));

    ticks(&hub, 3..=3);
    new.wait_for_events(1);
    other.wait_for_events(3);
    assert_eq!(new.data(), ["3"]);
    assert_eq!(other.data(), numbers(1..=3));
    let stats = hub.stats();
    assert_eq!((stats.subscribers, stats.taken_over), (2, 1), "{stats:?}");
}

/// What a thread holding a clone of a stream's socket reads from it: the
/// end (`Ok(0)`) once the hub has shut the socket down.
fn read_kept(mut kept: std::net::TcpStream) -> std::io::Result<usize> {
    std::io::Read::read(&mut kept, &mut [0u8; 16])
}

#[test]
fn stop_cuts_every_stream_so_clients_reconnect_even_if_the_application_holds_the_socket() {
    let server = Server::new();
    let hub = Hub::new(Config::new());
    let mut plain = server.subscribe(&hub, Subscription::new());
    let (mut held, kept) = server.subscribe_keeping_socket(&hub, Subscription::new());
    ticks(&hub, 1..=2);
    held.wait_for_events(2);
    hub.stop();
    for client in [&mut plain, &mut held] {
        // The end arrives now, not when the clone is dropped (or, before
        // sockets were shut down, only at the client's read timeout).
        client.read_to_end();
        assert!(!client.finished, "a stopped stream is cut, not finished");
        assert_eq!(client.data(), numbers(1..=2));
    }
    // The application's own reads on the socket end as well.
    assert_eq!(read_kept(kept).unwrap(), 0);
}

#[test]
fn finish_ends_every_stream_with_its_last_chunk_and_closes_it() {
    let server = Server::new();
    let hub = Hub::new(Config::new());
    let (mut held, kept) = server.subscribe_keeping_socket(&hub, Subscription::new());
    ticks(&hub, 1..=1);
    held.wait_for_events(1);
    hub.finish();
    held.read_to_end();
    assert!(
        held.finished,
        "a finished stream ends with its terminating chunk"
    );
    assert_eq!(held.data(), ["1"]);
    assert_eq!(read_kept(kept).unwrap(), 0);
}

#[test]
fn a_reconnecting_client_gets_what_it_missed_after_its_last_event_id() {
    let server = Server::new();
    let hub = Hub::new(Config::new().replay(100));
    let mut first = server.subscribe(&hub, Subscription::new());
    ticks(&hub, 1..=5);
    first.wait_for_events(5);
    let last_seen = first.events.last().unwrap().last_event_id.clone();
    assert_eq!(last_seen, "5");
    drop(first);

    ticks(&hub, 6..=8); // published while it was away
    let snapshot = FormattedEvent::new(&Event::new("state").data("everything")).unwrap();
    let (mut back, replay) = server.subscribe_with(
        &hub,
        Subscription::new()
            .last_event_id(Some(&last_seen))
            .snapshot(snapshot.clone()),
    );
    assert_eq!(replay, Replay::Replayed(3));
    ticks(&hub, 9..=9);
    back.wait_for_events(4);
    assert_eq!(back.data(), numbers(6..=9));

    // An id the hub does not know gets the snapshot, then live events.
    let (mut lost, replay) = server.subscribe_with(
        &hub,
        Subscription::new()
            .last_event_id(Some("from-another-server"))
            .snapshot(snapshot),
    );
    assert_eq!(replay, Replay::Unavailable);
    ticks(&hub, 10..=10);
    lost.wait_for_events(2);
    assert_eq!(lost.data(), ["everything", "10"]);
}

//! Stopping (or dropping) a hub leaves no thread running.
//!
//! Everywhere, the hub's own count (`Stats::threads`) must fall to zero when
//! it stops. On Linux the test also asks the system, in /proc/self/task,
//! that the threads are gone and that they were named after the hub; so
//! this binary holds one test only: nothing else may start or end threads
//! while it counts.

mod broadcast_support;

use broadcast_support::{Server, wait_until};
use dstar::Event;
use dstar::broadcast::{Config, Hub, Subscription, THREAD_NAME};
use std::time::Duration;

/// The names of this process's threads, where the system lists them
/// (Linux); `None` elsewhere.
#[cfg(target_os = "linux")]
fn thread_names() -> Option<Vec<String>> {
    let mut names = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("list /proc/self/task") {
        let comm = task.unwrap().path().join("comm");
        // A thread that ended between listing and reading has no comm.
        if let Ok(name) = std::fs::read_to_string(comm) {
            names.push(name.trim_end().to_string());
        }
    }
    Some(names)
}

#[cfg(not(target_os = "linux"))]
fn thread_names() -> Option<Vec<String>> {
    None
}

/// How many threads the process has, where the system says.
fn thread_count() -> Option<usize> {
    thread_names().map(|names| names.len())
}

/// How many of them are the hub's, where the system says.
fn hub_threads() -> Option<usize> {
    thread_names().map(|names| names.iter().filter(|n| *n == THREAD_NAME).count())
}

/// Waits until the system lists the hub's threads, and only those, under
/// the hub's name (where it lists threads).
fn named_as_the_hub_counts(hub: &Hub) {
    if hub_threads().is_some() {
        wait_until("the hub's threads to name themselves", || {
            hub_threads() == Some(hub.stats().threads)
        });
    }
}

/// Checks that only the threads there were `before` are left. Every writer
/// has been joined, so none runs; a joined thread can still be listed for
/// a moment while the kernel tears it down, hence the (bounded) wait.
fn all_gone(before: Option<usize>) {
    if let Some(before) = before {
        wait_until("the joined threads to leave /proc", || {
            hub_threads() == Some(0) && thread_count() == Some(before)
        });
    }
}

#[test]
fn stopping_or_dropping_the_hub_cuts_every_stream_and_joins_every_thread() {
    let before = thread_count();
    let server = Server::new();

    // Stop: every stream cut, every thread joined.
    let hub = Hub::new(Config::new().heartbeat(Duration::from_millis(50)));
    let mut clients: Vec<_> = (0..20)
        .map(|n| server.subscribe(&hub, Subscription::new().key(format!("tab-{}", n % 15))))
        .collect();
    // Some threads leave by themselves (taken over, hung up) before the stop.
    drop(clients.pop());
    hub.publish(Event::new("tick").data("1")).unwrap();
    // 20 streams, 5 taken over, 1 hung up.
    wait_until("the takeovers and the hang-up", || {
        hub.stats().subscribers == 14
    });
    // The hub's threads, and only those, are named after it.
    assert!(hub.stats().threads > 0);
    named_as_the_hub_counts(&hub);

    hub.stop();
    assert_eq!(hub.stats().threads, 0);
    all_gone(before);
    let mut finished = 0;
    for client in &mut clients {
        client.read_to_end();
        finished += usize::from(client.finished);
    }
    // 15 keys: the 5 streams taken over were finished, by the takeover; the
    // 14 the stop found were cut, for their clients to reconnect.
    assert_eq!(finished, 5);
    assert_eq!(hub.stats().taken_over, 5);

    // Drop: the same, without calling stop.
    let hub = Hub::new(Config::new());
    let mut clients: Vec<_> = (0..5)
        .map(|_| server.subscribe(&hub, Subscription::new()))
        .collect();
    hub.publish(Event::new("tick").data("2")).unwrap();
    named_as_the_hub_counts(&hub);
    assert!(hub.stats().threads > 0);
    drop(hub);
    all_gone(before);
    for client in &mut clients {
        client.read_to_end();
        assert!(!client.finished);
        assert_eq!(client.data(), ["2"]);
    }
}

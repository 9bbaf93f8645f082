//! The Redis bridge against a real `redis-server`, with real SSE sockets on
//! 127.0.0.1.
//!
//! Each test starts its own `redis-server` (Debian package `redis-server`)
//! on a free loopback port, without persistence, and kills it when it ends,
//! however it ends. Without `redis-server` installed the tests are skipped
//! with a message, except under `CI=true`, where they fail.
//!
//! Every socket has read and write timeouts, and every wait is bounded, so a
//! failure shows up within seconds instead of a hang.
#![cfg(feature = "redis")]

mod broadcast_support;

use broadcast_support::{Client, Server, wait_until};
use dstar::Event;
use dstar::broadcast::{self, Hub, Subscription};
use dstar::redis_bridge::{Bridge, Config, Gap, Stats};
use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// A `redis-server` child process, killed on drop.
struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free port; `None` (after saying why) if
    /// `redis-server` is not installed and this is not CI.
    fn start() -> Option<RedisServer> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            let message = "redis-server is not installed (Debian: apt-get install redis-server)";
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{message}; CI must install it"
            );
            eprintln!("SKIPPED: {message}");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("find a free port")
            .port();
        let mut server = RedisServer { port, child: None };
        server.run();
        Some(server)
    }

    /// Starts the server process (again) on its port, and waits until it
    /// answers.
    fn run(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let client = redis::Client::open(self.url()).unwrap();
        wait_until("redis-server to answer", || {
            client
                .get_connection_with_timeout(Duration::from_secs(1))
                .and_then(|mut conn| redis::cmd("PING").query::<String>(&mut conn))
                .is_ok()
        });
    }

    /// Kills the process (as a crash would: no goodbye to the clients).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends the process a signal, by pid: `STOP` freezes it, `CONT` thaws.
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A bridge config for this server, with short delays for tests.
    fn config(&self, channel: &str) -> Config {
        Config::new(self.url())
            .channel(channel)
            .timeout(Duration::from_secs(2))
            .reconnect_delay(Duration::from_millis(10), Duration::from_millis(100))
    }

    /// Publishes raw bytes to a channel, as any other Redis client could.
    fn publish_raw(&self, channel: &str, payload: &[u8]) -> usize {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query(&mut conn)
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            // A frozen server cannot die until it is thawed.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}

/// One app instance: a hub with replay, its bridge, and a listener to
/// subscribe clients with.
struct Instance {
    hub: Arc<Hub>,
    bridge: Bridge,
    server: Server,
}

impl Instance {
    fn start(config: Config) -> Instance {
        let hub = Arc::new(Hub::new(broadcast::Config::new().replay(100)));
        let bridge = Bridge::start(Arc::clone(&hub), config).expect("start the bridge");
        Instance {
            hub,
            bridge,
            server: Server::new(),
        }
    }

    fn client(&self, sub: Subscription) -> Client {
        self.server.subscribe(&self.hub, sub)
    }

    fn wait_for_stats(&self, what: &str, done: impl Fn(&Stats) -> bool) {
        wait_until(what, || done(&self.bridge.stats()));
    }
}

fn ids(client: &Client) -> Vec<String> {
    client
        .events
        .iter()
        .map(|e| e.last_event_id.clone())
        .collect()
}

#[test]
fn two_instances_see_each_others_events_in_the_same_order() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Instance::start(redis.config("order"));
    // B keeps its own record of what it delivered, as an app would.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let b = Instance::start(redis.config("order").deliver_with({
        let seen = Arc::clone(&seen);
        move |received| {
            assert_eq!(received.topic(), None);
            let id = received.event().id().unwrap_or_default().to_string();
            seen.lock().unwrap().push(id);
            received.deliver().unwrap();
        }
    }));
    let mut on_a = a.client(Subscription::new());
    let mut on_b = b.client(Subscription::new());

    // Both publish at once: each instance's own events stay in its order,
    // and both instances deliver the same interleaving.
    const EACH: usize = 50;
    thread::scope(|s| {
        for (name, instance) in [("a", &a), ("b", &b)] {
            s.spawn(move || {
                for n in 1..=EACH {
                    let id = format!("{name}-{n}");
                    let sent = instance
                        .bridge
                        .publish(Event::new("chat").data(&id).id(&id))
                        .unwrap();
                    assert_eq!(sent, 2, "both bridges are subscribed");
                }
            });
        }
    });
    on_a.wait_for_events(2 * EACH);
    on_b.wait_for_events(2 * EACH);
    let order = ids(&on_a);
    assert_eq!(ids(&on_b), order);
    for name in ["a", "b"] {
        let own: Vec<_> = order.iter().filter(|id| id.starts_with(name)).collect();
        let expected: Vec<_> = (1..=EACH).map(|n| format!("{name}-{n}")).collect();
        assert_eq!(own, expected.iter().collect::<Vec<_>>());
    }
    assert_eq!(*seen.lock().unwrap(), order);

    // Replay works for events that came through Redis, and since both
    // rings hold the same sequence, a tab can resume on either instance.
    let resume_from = &order[2 * EACH - 11];
    for instance in [&a, &b] {
        let mut resumed = instance.client(Subscription::new().last_event_id(Some(resume_from)));
        resumed.wait_for_events(10);
        assert_eq!(ids(&resumed), order[2 * EACH - 10..]);
    }

    for instance in [&a, &b] {
        let stats = instance.bridge.stats();
        assert!(stats.connected, "{stats:?}");
        assert_eq!(stats.published, EACH as u64, "{stats:?}");
        assert_eq!(stats.received, 2 * EACH as u64, "{stats:?}");
        assert_eq!((stats.unsent, stats.malformed), (0, 0), "{stats:?}");
        assert_eq!((stats.gaps, stats.reconnects), (0, 0), "{stats:?}");
    }
}

#[test]
fn topics_reach_their_subscribers_on_every_instance() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Instance::start(redis.config("topics"));
    let b = Instance::start(redis.config("topics"));
    let mut room_on_b = b.client(Subscription::new().topic("room"));
    let mut lobby_on_b = b.client(Subscription::new());
    let mut room_on_a = a.client(Subscription::new().topic("room"));

    a.bridge
        .publish_to("room", Event::message("to the room").id("1"))
        .unwrap();
    a.bridge
        .publish(Event::message("to everyone").id("2"))
        .unwrap();
    room_on_a.wait_for_events(2);
    room_on_b.wait_for_events(2);
    lobby_on_b.wait_for_events(1);
    assert_eq!(room_on_b.data(), ["to the room", "to everyone"]);
    assert_eq!(room_on_a.data(), ["to the room", "to everyone"]);
    assert_eq!(lobby_on_b.data(), ["to everyone"]);

    let err = a
        .bridge
        .publish_to("a\nb", Event::message("x"))
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn a_restarted_server_is_reconnected_and_the_gap_reported() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (gaps, gap_reported) = mpsc::channel::<Gap>();
    let a = Instance::start(
        redis
            .config("restart")
            .on_gap(move |gap| gaps.send(gap.clone()).unwrap()),
    );
    let b = Instance::start(redis.config("restart"));
    let mut on_a = a.client(Subscription::new());
    let mut on_b = b.client(Subscription::new());

    a.bridge.publish(Event::message("before").id("1")).unwrap();
    on_a.wait_for_events(1);
    on_b.wait_for_events(1);

    redis.kill();
    a.wait_for_stats("A to notice", |s| !s.connected);
    b.wait_for_stats("B to notice", |s| !s.connected);
    let stats = a.bridge.stats();
    assert_eq!((stats.gaps, stats.reconnects), (1, 0), "{stats:?}");
    assert!(stats.disconnected_for.is_some(), "{stats:?}");

    // Publishing through Redis fails loudly, and is counted ...
    let err = a
        .bridge
        .publish(Event::message("lost").id("2"))
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
    assert!(err.to_string().contains("not sent"), "{err}");
    assert_eq!(a.bridge.stats().unsent, 1);
    // ... while the local hub keeps working.
    assert_eq!(a.hub.publish(Event::message("local").id("3")).unwrap(), 1);
    on_a.wait_for_events(2);

    // Stay down for a few reconnection attempts.
    thread::sleep(Duration::from_millis(300));
    redis.run();
    a.wait_for_stats("A to reconnect", |s| s.connected);
    b.wait_for_stats("B to reconnect", |s| s.connected);
    let gap = gap_reported
        .recv_timeout(Duration::from_secs(10))
        .expect("on_gap is called");
    assert!(gap.duration >= Duration::from_millis(300), "{gap:?}");
    assert!(gap.error.contains("lost the subscription"), "{gap:?}");

    // The publisher connection died with the old server; the first publish
    // after the reconnect goes through a new one.
    b.bridge.publish(Event::message("after").id("4")).unwrap();
    on_a.wait_for_events(3);
    on_b.wait_for_events(2);
    assert_eq!(on_a.data(), ["before", "local", "after"]);
    assert_eq!(on_b.data(), ["before", "after"]);
    for instance in [&a, &b] {
        let stats = instance.bridge.stats();
        assert_eq!((stats.gaps, stats.reconnects), (1, 1), "{stats:?}");
        assert_eq!(stats.disconnected_for, None, "{stats:?}");
    }
}

#[test]
fn a_frozen_server_is_noticed_by_the_keepalive_ping() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let config = redis
        .config("frozen")
        .keepalive(Duration::from_millis(100))
        .timeout(Duration::from_millis(500));
    let a = Instance::start(config);
    let mut on_a = a.client(Subscription::new());

    // A frozen server keeps its sockets open: only a ping finds it out.
    redis.signal("STOP");
    a.wait_for_stats("the bridge to notice", |s| !s.connected);
    let err = a.bridge.publish(Event::message("lost")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");

    redis.signal("CONT");
    a.wait_for_stats("the bridge to reconnect", |s| s.connected);
    a.bridge.publish(Event::message("back").id("1")).unwrap();
    on_a.wait_for_events(1);
    assert_eq!(on_a.data(), ["back"]);
    // A ping that a loaded machine answers late counts as a gap too, so
    // there may be more than the one made here.
    let stats = a.bridge.stats();
    assert!(
        stats.gaps >= 1 && stats.reconnects == stats.gaps,
        "{stats:?}"
    );
}

#[test]
fn malformed_messages_are_dropped_and_counted() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Instance::start(redis.config("malformed"));
    let mut on_a = a.client(Subscription::new());

    let bad: &[&[u8]] = &[
        b"hello",
        b"",
        b"\xff\xfe",
        // An event that would inject a second event into every stream.
        b"dstar/1 all\ndata: x\n\nevent: injected\ndata: y\n\n",
        b"dstar/1 all\ndata: x\r\nid: 9\n\n",
        b"dstar/1 all\ndata: not terminated\n",
        b"dstar/9 all\ndata: future format\n\n",
        b"dstar/1 all\nretry: 1000\ndata: not as formatted\n\n",
    ];
    for payload in bad {
        assert_eq!(redis.publish_raw("malformed", payload), 1);
    }
    // The documented format, written by hand, is accepted.
    let good = b"dstar/1 all\nevent: note\nid: 1\ndata: by hand\n\n";
    assert_eq!(redis.publish_raw("malformed", good), 1);
    a.bridge
        .publish(Event::message("by the bridge").id("2"))
        .unwrap();

    on_a.wait_for_events(2);
    assert_eq!(on_a.data(), ["by hand", "by the bridge"]);
    assert_eq!(on_a.events[0].event_type, "note");
    let stats = a.bridge.stats();
    assert_eq!(stats.malformed, bad.len() as u64, "{stats:?}");
    assert_eq!(stats.received, 2, "{stats:?}");
    assert!(stats.connected, "{stats:?}");
}

#[test]
fn stop_joins_the_thread_and_leaves_the_hub_running() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Instance::start(redis.config("stop"));
    let mut on_a = a.client(Subscription::new());
    let started = Instant::now();
    a.bridge.stop();
    // The thread looks up from the channel every 0.1 s.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let err = a.bridge.publish(Event::message("x")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
    let stats = a.bridge.stats();
    assert!(!stats.connected, "{stats:?}");
    assert_eq!(stats.gaps, 0, "stopping is not a gap: {stats:?}");
    a.bridge.stop(); // again: nothing to do

    assert_eq!(a.hub.publish(Event::message("still here")).unwrap(), 1);
    on_a.wait_for_events(1);
    assert_eq!(on_a.data(), ["still here"]);
}

/// Reads one command (an array of bulk strings) as a Redis server would.
fn read_command(reader: &mut impl BufRead) -> io::Result<Vec<String>> {
    let mut line = String::new();
    let mut header = |reader: &mut dyn BufRead, kind: char| -> io::Result<usize> {
        line.clear();
        reader.read_line(&mut line)?;
        line.trim_end()
            .strip_prefix(kind)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| io::Error::other(format!("not a command: {line:?}")))
    };
    let n = header(reader, '*')?;
    (0..n)
        .map(|_| {
            let len = header(reader, '$')?;
            let mut arg = vec![0; len + 2];
            reader.read_exact(&mut arg)?;
            Ok(String::from_utf8_lossy(&arg[..len]).into_owned())
        })
        .collect()
}

#[test]
fn a_message_split_across_read_timeouts_arrives_whole() {
    // A stand-in for Redis that sends one message in two parts, further
    // apart than the 0.1 s read timeout the bridge thread waits with, so
    // that a read times out in the middle of the message.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/", listener.local_addr().unwrap());
    let fake = thread::spawn(move || -> io::Result<()> {
        let (socket, _) = listener.accept()?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut reader = BufReader::new(socket.try_clone()?);
        let mut socket = socket;
        // Connection setup (`CLIENT SETINFO`), then the subscription.
        while read_command(&mut reader)?[0] != "SUBSCRIBE" {
            socket.write_all(b"+OK\r\n")?;
        }
        socket.write_all(b"*3\r\n$9\r\nsubscribe\r\n$5\r\nsplit\r\n:1\r\n")?;
        let payload = "dstar/1 all\nevent: note\nid: 1\ndata: sent in two parts\n\n";
        let message = format!(
            "*3\r\n$7\r\nmessage\r\n$5\r\nsplit\r\n${}\r\n{payload}\r\n",
            payload.len()
        );
        let (first, second) = message.split_at(message.len() / 2);
        socket.write_all(first.as_bytes())?;
        thread::sleep(Duration::from_millis(350));
        socket.write_all(second.as_bytes())?;
        // Until the bridge unsubscribes or hangs up.
        let _ = read_command(&mut reader);
        Ok(())
    });

    let a = Instance::start(Config::new(url).channel("split"));
    let mut on_a = a.client(Subscription::new());
    on_a.wait_for_events(1);
    assert_eq!(on_a.data(), ["sent in two parts"]);
    let stats = a.bridge.stats();
    assert_eq!((stats.received, stats.malformed), (1, 0), "{stats:?}");
    assert_eq!(stats.gaps, 0, "{stats:?}");
    a.bridge.stop();
    fake.join().unwrap().unwrap();
}

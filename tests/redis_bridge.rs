//! The Redis bridge against a real `redis-server`, with real SSE sockets on
//! 127.0.0.1, and the faults a deployment meets: Redis killed and restarted,
//! Redis frozen, an instance paused, an instance killed and its tabs resumed
//! elsewhere, entries trimmed.
//!
//! Each test starts its own `redis-server` (Debian package `redis-server`)
//! on a free loopback port, in a directory of its own (with an append-only
//! file when the test needs the data to survive a restart), and kills it
//! when it ends, however it ends. Without `redis-server` installed the tests
//! are skipped with a message, except under `CI=true`, where they fail.
//!
//! Every socket has read and write timeouts, and every wait is bounded, so a
//! failure shows up within seconds instead of a hang. Time limits asserted
//! here are generous caps, not measurements.
//!
//! Unix only: the faults are made with signals (`kill -STOP`, `-CONT`,
//! `-KILL`, a `SIGUSR1` handler), and interrupting one thread of another
//! process (`tgkill`, the thread found in /proc) is Linux only.
#![cfg(all(unix, feature = "redis"))]

mod broadcast_support;
mod redis_support;

use broadcast_support::{Client, Server, wait_until};
use dstar::broadcast::{self, Hub, Replay, Subscription};
use dstar::redis_bridge::{Bridge, Config, Gap, Stats};
use dstar::{Event, FormattedEvent};
use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// A `redis-server` child process, killed on drop.
struct RedisServer {
    port: u16,
    dir: PathBuf,
    persistent: bool,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free port, keeping its data in an append-only file
    /// (synced at every write) if `persistent`; `None` (after saying why) if
    /// `redis-server` is not installed and this is not CI.
    fn start(persistent: bool) -> Option<RedisServer> {
        if !redis_support::redis_server_installed() {
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("find a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("dstar-redis-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        let mut server = RedisServer {
            port,
            dir,
            persistent,
            child: None,
        };
        server.run();
        Some(server)
    }

    /// Starts the server process (again) on its port, and waits until it
    /// answers.
    fn run(&mut self) {
        let aof = if self.persistent { "yes" } else { "no" };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", aof, "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
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

    /// Sends the process a signal: `STOP` freezes it, `CONT` thaws.
    fn signal(&self, signal: &str) {
        send_signal(self.child.as_ref().expect("running"), signal);
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A bridge config for this server, with short delays for tests.
    fn config(&self, stream: &str) -> Config {
        Config::new(self.url())
            .stream(stream)
            .block(Duration::from_millis(100))
            .timeout(Duration::from_millis(500))
            .reconnect_delay(Duration::from_millis(10), Duration::from_millis(100))
    }

    fn command<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        cmd.query(&mut conn).unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A frozen server cannot die until it is thawed.
            send_signal(child, "CONT");
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn send_signal(child: &Child, signal: &str) {
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}");
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
        let hub = Arc::new(Hub::new(broadcast::Config::new().replay(1000)));
        let bridge = Bridge::start(Arc::clone(&hub), config).expect("start the bridge");
        Instance {
            hub,
            bridge,
            server: Server::new(),
        }
    }

    /// A client subscribed through the bridge, with a snapshot event
    /// (`snapshot`) for when it is not resumed.
    fn client(&self, last_event_id: Option<&str>) -> (Client, Replay) {
        self.server.subscribe_by(|conn| {
            self.bridge.subscribe(conn, last_event_id, || {
                Subscription::new().snapshot(snapshot())
            })
        })
    }

    fn wait_for_stats(&self, what: &str, done: impl Fn(&Stats) -> bool) {
        wait_until(what, || done(&self.bridge.stats()));
    }
}

fn snapshot() -> FormattedEvent {
    FormattedEvent::new(&Event::new("snapshot").data("full state")).unwrap()
}

fn ids(client: &Client) -> Vec<String> {
    client
        .events
        .iter()
        .map(|e| e.last_event_id.clone())
        .collect()
}

/// Asserts every id appears once.
fn assert_unique(ids: &[String]) {
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "duplicates in {ids:?}");
}

/// Publishes `n` messages through `bridge`, named `<name>-<k>`; returns the
/// entry ids of those Redis confirmed, and the names of those whose outcome
/// is unknown.
fn publish_many(bridge: &Bridge, name: &str, n: usize, pause: Duration) -> Published {
    let mut published = Published::default();
    for k in 1..=n {
        let data = format!("{name}-{k}");
        let start = Instant::now();
        match bridge.publish(Event::message(&data)) {
            Ok(id) => published.acked.push((id, data)),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => published.unsent.push(data),
            Err(_) => published.uncertain.push(data),
        }
        published.slowest = published.slowest.max(start.elapsed());
        thread::sleep(pause);
    }
    published
}

#[derive(Default, Debug)]
struct Published {
    acked: Vec<(String, String)>,
    unsent: Vec<String>,
    uncertain: Vec<String>,
    slowest: Duration,
}

/// Checks a fault's outcome: every client has the same events, in the same
/// order, each once, every acknowledged one among them with the id Redis
/// gave it, and none that was certainly not sent.
fn assert_one_log(clients: &[&Client], published: &[&Published]) {
    let first = clients[0];
    let log: Vec<(String, String)> = first
        .events
        .iter()
        .map(|e| (e.last_event_id.clone(), e.data.clone()))
        .collect();
    assert_unique(&ids(first));
    for (n, client) in clients.iter().enumerate().skip(1) {
        let theirs: Vec<_> = client
            .events
            .iter()
            .map(|e| (e.last_event_id.clone(), e.data.clone()))
            .collect();
        assert_eq!(theirs, log, "client {n} differs from client 0");
    }
    let delivered: HashSet<&(String, String)> = log.iter().collect();
    let data: Vec<&str> = log.iter().map(|(_, d)| d.as_str()).collect();
    for published in published {
        for acked in &published.acked {
            assert!(
                delivered.contains(acked),
                "acknowledged {acked:?} is missing"
            );
        }
        for unsent in &published.unsent {
            assert!(!data.contains(&unsent.as_str()), "{unsent} was not sent");
        }
        for maybe in &published.uncertain {
            assert!(data.iter().filter(|d| **d == maybe).count() <= 1);
        }
    }
}

#[test]
fn two_instances_deliver_one_log_with_the_entry_ids_as_event_ids() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let a = Instance::start(redis.config("order"));
    // B keeps its own record of what it delivered, as an app would.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let b = Instance::start(redis.config("order").deliver_with({
        let seen = Arc::clone(&seen);
        move |received| {
            let id = received.event().id().unwrap_or_default().to_string();
            seen.lock().unwrap().push(id);
            received.deliver().unwrap();
        }
    }));
    let (mut on_a, replay) = a.client(None);
    assert_eq!(replay, Replay::NotRequested);
    let (mut on_b, _) = b.client(None);

    // Both publish at once: both instances deliver the same interleaving.
    const EACH: usize = 50;
    let (from_a, from_b) = thread::scope(|s| {
        let pa = s.spawn(|| publish_many(&a.bridge, "a", EACH, Duration::ZERO));
        let pb = s.spawn(|| publish_many(&b.bridge, "b", EACH, Duration::ZERO));
        (pa.join().unwrap(), pb.join().unwrap())
    });
    assert_eq!((from_a.acked.len(), from_b.acked.len()), (EACH, EACH));
    on_a.wait_for_events(1 + 2 * EACH);
    on_b.wait_for_events(1 + 2 * EACH);
    assert_eq!(on_a.data()[0], "full state");
    on_a.events.remove(0);
    on_b.events.remove(0);
    assert_one_log(&[&on_a, &on_b], &[&from_a, &from_b]);
    assert_eq!(*seen.lock().unwrap(), ids(&on_a));
    // The stream's order is the ids' order.
    let mut sorted = ids(&on_a);
    sorted.sort_by_key(|id| {
        let (ms, seq) = id.split_once('-').unwrap();
        (ms.parse::<u64>().unwrap(), seq.parse::<u64>().unwrap())
    });
    assert_eq!(sorted, ids(&on_a));

    // Topics, on every instance.
    let (mut room_on_b, _) = b.server.subscribe_by(|conn| {
        b.bridge
            .subscribe(conn, None, || Subscription::new().topic("room"))
    });
    a.bridge
        .publish_to("room", Event::message("to the room"))
        .unwrap();
    room_on_b.wait_for_events(1);
    assert_eq!(room_on_b.data(), ["to the room"]);
    a.wait_for_stats("A to read it", |s| s.received == 2 * EACH as u64 + 1);

    // The entry id is the event id: an event may not bring its own.
    let err = a.bridge.publish(Event::message("x").id("7")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");

    for instance in [&a, &b] {
        let stats = instance.bridge.stats();
        assert!(stats.connected, "{stats:?}");
        assert_eq!(stats.received, 2 * EACH as u64 + 1, "{stats:?}");
        assert_eq!((stats.unsent, stats.uncertain), (0, 0), "{stats:?}");
        assert_eq!((stats.malformed, stats.gaps), (0, 0), "{stats:?}");
    }
}

#[test]
fn a_tab_resumes_on_another_instance_and_on_a_restarted_one() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let a = Instance::start(redis.config("resume"));
    let b = Instance::start(redis.config("resume"));
    let (mut on_a, _) = a.client(None);
    let first = publish_many(&a.bridge, "m", 30, Duration::ZERO);
    on_a.wait_for_events(31);
    on_a.events.remove(0);
    let seen = ids(&on_a);
    let kept = seen[9].clone();

    // A dies; its tab comes back to B, which has the id in its ring.
    drop(a);
    let (mut on_b, replay) = b.client(Some(&kept));
    assert_eq!(replay, Replay::Replayed(20));

    // A new instance, with an empty ring, resumes the same tab from Redis.
    let c = Instance::start(redis.config("resume"));
    let (mut on_c, replay) = c.client(Some(&kept));
    assert_eq!(replay, Replay::Replayed(20));
    assert_eq!(c.bridge.stats().resumed, 1);

    // And both then get the live events, with no gap and no duplicate.
    let more = publish_many(&b.bridge, "n", 10, Duration::ZERO);
    on_b.wait_for_events(30);
    on_c.wait_for_events(30);
    assert_one_log(&[&on_b, &on_c], &[&more]);
    assert_eq!(ids(&on_b)[..20], seen[10..]);
    let acked: Vec<_> = first.acked.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(acked, seen);

    // An id from another process's hub, or one Redis no longer has, takes
    // the snapshot path.
    let stranger = Hub::new(broadcast::Config::new().replay(10));
    for stale in [format!("{}-3", stranger.epoch()), "1-1".to_string()] {
        let (mut client, replay) = c.client(Some(&stale));
        assert_eq!(replay, Replay::Unavailable, "{stale}");
        client.wait_for_events(1);
        assert_eq!(client.data(), ["full state"]);
    }
}

#[test]
fn a_redis_killed_and_restarted_with_its_data_loses_nothing() {
    let Some(mut redis) = RedisServer::start(true) else {
        return;
    };
    let instances: Vec<_> = (0..3)
        .map(|_| Instance::start(redis.config("crash")))
        .collect();
    let mut clients: Vec<_> = instances.iter().map(|i| i.client(None).0).collect();

    let published: Vec<Published> = thread::scope(|s| {
        let publishers: Vec<_> = instances
            .iter()
            .enumerate()
            .map(|(n, instance)| {
                s.spawn(move || {
                    publish_many(
                        &instance.bridge,
                        &format!("p{n}"),
                        60,
                        Duration::from_millis(10),
                    )
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(200));
        redis.kill();
        // While Redis is away, a publish fails at once and sends nothing.
        instances[0].wait_for_stats("the outage to be noticed", |s| !s.connected);
        let start = Instant::now();
        let err = instances[0]
            .bridge
            .publish(Event::message("during the outage"))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
        assert!(start.elapsed() < Duration::from_millis(500));
        thread::sleep(Duration::from_millis(300));
        redis.run();
        publishers.into_iter().map(|p| p.join().unwrap()).collect()
    });
    for instance in &instances {
        instance.wait_for_stats("the link back", |s| s.connected);
    }
    // One more after the restart, so every instance has read everything.
    let last = publish_many(&instances[0].bridge, "last", 1, Duration::ZERO);
    assert_eq!(last.acked.len(), 1);
    let last_id = &last.acked[0].0;
    for client in &mut clients {
        client.read_until(|c| c.events.last().is_some_and(|e| &e.last_event_id == last_id));
        client.events.remove(0);
    }
    let refs: Vec<&Client> = clients.iter().collect();
    let all: Vec<&Published> = published.iter().chain([&last]).collect();
    assert_one_log(&refs, &all);
    assert!(clients[0].data().iter().all(|d| d != "during the outage"));
    let acked: usize = published.iter().map(|p| p.acked.len()).sum();
    assert!(acked > 0, "{published:?}");
    for p in &published {
        assert!(p.slowest < Duration::from_secs(3), "{p:?}");
    }
    for instance in &instances {
        let stats = instance.bridge.stats();
        assert_eq!(stats.gaps, 0, "the data survived: {stats:?}");
        assert!(stats.reconnects >= 1, "{stats:?}");
    }
}

#[test]
fn a_frozen_redis_fails_publishes_fast_and_a_late_add_is_delivered_once() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let a = Instance::start(redis.config("freeze"));
    let b = Instance::start(redis.config("freeze"));
    let (mut on_a, _) = a.client(None);
    let (mut on_b, _) = b.client(None);
    let before = publish_many(&a.bridge, "before", 5, Duration::ZERO);

    redis.signal("STOP");
    // Many request threads at once: every publish returns within about the
    // timeout, none waits behind the others.
    let frozen: Vec<(Result<String, io::Error>, Duration)> = thread::scope(|s| {
        let threads: Vec<_> = (0..8)
            .map(|n| {
                let bridge = &a.bridge;
                s.spawn(move || {
                    let start = Instant::now();
                    let sent = bridge.publish(Event::message(&format!("frozen-{n}")));
                    (sent, start.elapsed())
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut uncertain = Vec::new();
    for (n, (sent, took)) in frozen.iter().enumerate() {
        assert!(*took < Duration::from_secs(3), "publish {n} took {took:?}");
        let err = sent.as_ref().expect_err("Redis is frozen");
        if err.kind() != io::ErrorKind::NotConnected {
            assert!(err.to_string().contains("may have been added"), "{err}");
            uncertain.push(format!("frozen-{n}"));
        }
    }
    // At most one per pooled connection was sent, and its outcome is unknown.
    assert!(!uncertain.is_empty() && uncertain.len() <= 4, "{frozen:?}");
    // The freeze is noticed by the readers too, within block + timeout.
    a.wait_for_stats("A to notice", |s| !s.connected);
    b.wait_for_stats("B to notice", |s| !s.connected);
    let start = Instant::now();
    let err = b.bridge.publish(Event::message("fast fail")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
    assert!(start.elapsed() < Duration::from_millis(500));
    thread::sleep(Duration::from_millis(500));

    redis.signal("CONT");
    a.wait_for_stats("A to recover", |s| s.connected);
    b.wait_for_stats("B to recover", |s| s.connected);
    let after = publish_many(&b.bridge, "after", 5, Duration::ZERO);
    assert_eq!(after.acked.len(), 5);
    let last_id = after.acked[4].0.clone();
    for client in [&mut on_a, &mut on_b] {
        client.read_until(|c| c.events.last().is_some_and(|e| e.last_event_id == last_id));
        client.events.remove(0);
    }
    let late = Published {
        uncertain,
        ..Published::default()
    };
    assert_one_log(&[&on_a, &on_b], &[&before, &after, &late]);
    // The adds Redis took after thawing were delivered, once, everywhere;
    // no local copy was ever shown.
    let data = on_a.data();
    let delivered_late = late.uncertain.iter().filter(|d| data.contains(d)).count();
    assert_eq!(data.len(), 10 + delivered_late, "{data:?}");
    // Redis ran the add it had not answered in time once it was thawed (it
    // was in its socket buffer): delivered after all, and only once.
    assert!(delivered_late >= 1, "{data:?}");
    assert!(data.iter().all(|d| !d.starts_with("fast")));
}

#[test]
fn a_redis_restarted_without_its_data_is_a_gap_and_tabs_start_again() {
    let Some(mut redis) = RedisServer::start(false) else {
        return;
    };
    let (gaps, gap_reported) = mpsc::channel::<Gap>();
    let a = Instance::start(
        redis
            .config("vanish")
            .on_gap(move |gap| gaps.send(gap.clone()).unwrap()),
    );
    let (mut on_a, _) = a.client(None);
    publish_many(&a.bridge, "m", 3, Duration::ZERO);
    on_a.wait_for_events(4);
    let kept = on_a.events[3].last_event_id.clone();

    redis.kill();
    redis.run();
    let gap = gap_reported
        .recv_timeout(Duration::from_secs(10))
        .expect("on_gap is called");
    assert_eq!(gap.after, kept);
    assert!(gap.reason.contains("no longer holds"), "{gap:?}");
    // The tab's stream was cut (so it reconnects), and it gets the snapshot.
    on_a.read_to_end();
    assert!(!on_a.finished);
    let (mut again, replay) = a.client(Some(&kept));
    assert_eq!(replay, Replay::Unavailable);
    a.wait_for_stats("the link back", |s| s.connected);
    let new = publish_many(&a.bridge, "new", 2, Duration::ZERO);
    assert_eq!(new.acked.len(), 2, "{new:?}");
    again.wait_for_events(3);
    assert_eq!(again.data(), ["full state", "new-1", "new-2"]);
    // The new ids are larger than the lost ones.
    assert!(new.acked[0].0 > kept, "{new:?} after {kept}");
    assert_eq!(a.bridge.stats().gaps, 1);
}

#[test]
fn entries_trimmed_before_an_instance_read_them_are_a_gap() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    // A's delivery is held up while B publishes far more than the stream
    // keeps.
    let (hold, held) = mpsc::channel::<()>();
    let held = Mutex::new(Some(held));
    let (gaps, gap_reported) = mpsc::channel::<Gap>();
    let a = Instance::start(
        redis
            .config("trim")
            .max_len(10)
            .deliver_with(move |received| {
                if let Some(held) = held.lock().unwrap().take() {
                    let _ = held.recv_timeout(Duration::from_secs(10));
                }
                received.deliver().unwrap();
            })
            .on_gap(move |gap| gaps.send(gap.clone()).unwrap()),
    );
    let b = Instance::start(redis.config("trim").max_len(10));
    let (mut on_a, _) = a.client(None);
    let (mut on_b, _) = b.client(None);
    // B must keep up for this test, so the publisher waits for it every
    // fifth entry: B is never more than 5 behind, and Redis keeps at least
    // 10. (Published flat out, a B thread starved for a few ms on a loaded
    // machine fell behind what the stream keeps, saw a trimmed gap of its
    // own, rightly, and cut on_b's stream.) A, held, falls behind anyway.
    let mut acked = Vec::new();
    for k in 1..=300 {
        let id = b.bridge.publish(Event::message(&format!("m-{k}"))).unwrap();
        if k % 5 == 0 {
            wait_until("B to keep up", || b.bridge.last_delivered() == id);
        }
        acked.push(id);
    }
    assert_eq!(acked.len(), 300);
    let length: usize = redis.command(redis::cmd("XLEN").arg("trim"));
    assert!(length < 300, "trimmed to {length}");
    on_b.wait_for_events(301);
    hold.send(()).unwrap();

    let gap = gap_reported
        .recv_timeout(Duration::from_secs(10))
        .expect("on_gap is called");
    assert!(gap.reason.contains("trimmed"), "{gap:?}");
    on_a.read_to_end();
    assert!(!on_a.finished);
    // Nothing after the gap was delivered to the cut stream: at most the
    // first read's entries (the cut may drop what was still queued).
    let got = on_a.data();
    assert_eq!(got[0], "full state");
    let expected: Vec<String> = (1..got.len()).map(|k| format!("m-{k}")).collect();
    assert_eq!(got[1..], expected, "{got:?}");
    assert!(got.len() <= 11, "{got:?}");
    assert_eq!(a.bridge.stats().gaps, 1);
    // B, which kept up, saw no gap.
    assert_eq!(b.bridge.stats().gaps, 0);
}

#[test]
fn malformed_entries_are_skipped_and_counted() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let a = Instance::start(redis.config("junk"));
    let (mut on_a, _) = a.client(None);
    let bad: &[&[&str]] = &[
        &["e", "data: two\n\ndata: events\n\n"],
        &["e", "id: 7\ndata: own id\n\n"],
        &["e", "data: x\r\n\n"],
        &["x", "data: x\n\n"],
        &["e", "data: x\n\n", "t", "topic last"],
    ];
    for fields in bad {
        let mut xadd = redis::cmd("XADD");
        xadd.arg("junk").arg("*");
        for field in *fields {
            xadd.arg(*field);
        }
        let _: String = redis.command(&xadd);
    }
    a.bridge.publish(Event::message("good")).unwrap();
    on_a.wait_for_events(2);
    assert_eq!(on_a.data(), ["full state", "good"]);
    let stats = a.bridge.stats();
    assert_eq!((stats.received, stats.malformed), (1, 5), "{stats:?}");

    // The key replaced by something that is not a stream: Redis refuses the
    // add (or the bridge already knows its reads fail): not sent, either way.
    let _: () = redis.command(redis::cmd("DEL").arg("junk"));
    let _: () = redis.command(redis::cmd("SET").arg("junk").arg("a string"));
    let err = a.bridge.publish(Event::message("refused")).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::InvalidData | io::ErrorKind::NotConnected
        ),
        "{err}"
    );
    let stats = a.bridge.stats();
    assert_eq!((stats.unsent, stats.uncertain), (1, 0), "{stats:?}");
}

#[test]
fn a_stopped_bridge_refuses_to_publish_and_leaves_the_hub_running() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let a = Instance::start(redis.config("stop"));
    let start = Instant::now();
    a.bridge.stop();
    assert!(start.elapsed() < Duration::from_secs(3));
    a.bridge.stop();
    let err = a.bridge.publish(Event::message("x")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
    let (mut on_a, _) = a.client(None);
    a.hub.publish(Event::message("still here")).unwrap();
    on_a.wait_for_events(2);
    assert_eq!(on_a.data(), ["full state", "still here"]);
}

/// The name of the test that runs as a separate instance process.
const CHILD: &str = "instance_process";

/// Not a test on its own: the body of an instance process that the test
/// below starts (this test binary, run again), so that it can be paused and
/// killed. It prints every id it delivers.
#[test]
fn instance_process() {
    let Ok(url) = std::env::var("DSTAR_REDIS_CHILD_URL") else {
        return;
    };
    let stream = std::env::var("DSTAR_REDIS_CHILD_STREAM").unwrap();
    let hub = Arc::new(Hub::new(broadcast::Config::new().replay(1000)));
    let config = Config::new(url)
        .stream(stream)
        .block(Duration::from_millis(100))
        .timeout(Duration::from_millis(500))
        .reconnect_delay(Duration::from_millis(10), Duration::from_millis(100))
        .deliver_with(|received| {
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "delivered {}", received.event().id().unwrap());
            let _ = out.flush();
            received.deliver().unwrap();
        });
    // SIGUSR1 interrupts a blocked read (`EINTR`) instead of killing.
    extern "C" fn ignore(_: libc::c_int) {}
    // SAFETY: a handler that does nothing, installed before any thread
    // that could receive the signal starts; no SA_RESTART, so that blocked
    // reads fail with EINTR.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
            0
        );
    }
    let bridge = Bridge::start(hub, config).unwrap();
    println!("ready");
    // Until killed, or at most a minute: say when reads were retried.
    let mut retries = 0;
    for _ in 0..3000 {
        thread::sleep(Duration::from_millis(20));
        let stats = bridge.stats();
        if stats.retries != retries {
            retries = stats.retries;
            println!(
                "retries {retries} reconnects {} gaps {}",
                stats.reconnects, stats.gaps
            );
        }
    }
}

/// A separate instance process and the ids it prints.
struct ChildInstance {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Lines other than ids, as they came.
    other: Vec<String>,
}

impl ChildInstance {
    fn start(redis: &RedisServer, stream: &str) -> ChildInstance {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", CHILD, "--nocapture", "--test-threads=1"])
            .env("DSTAR_REDIS_CHILD_URL", redis.url())
            .env("DSTAR_REDIS_CHILD_STREAM", stream)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the instance process");
        let stdout = child.stdout.take().unwrap();
        let (lines, received) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        let instance = ChildInstance {
            child,
            lines: received,
            other: Vec::new(),
        };
        instance.wait_for("ready");
        instance
    }

    fn wait_for(&self, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                // libtest's "test instance_process ... " may come first.
                Ok(got) if got.ends_with(line) => return,
                Ok(_) => {}
                Err(e) => panic!("waiting for {line:?} from the instance: {e}"),
            }
        }
    }

    /// The next `n` ids it delivers.
    fn delivered(&mut self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut ids = Vec::new();
        while ids.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => match line.split_once("delivered ") {
                    Some((_, id)) => ids.push(id.to_string()),
                    None => self.other.push(line),
                },
                Err(e) => panic!("after {} of {n} ids from the instance: {e}", ids.len()),
            }
        }
        ids
    }
}

impl Drop for ChildInstance {
    fn drop(&mut self) {
        send_signal(&self.child, "CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGUSR1 to the instance process's bridge thread, found by name
/// in /proc.
#[cfg(target_os = "linux")]
fn interrupt_bridge_thread(child: &Child) {
    let pid = child.id();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the process's threads");
    let tid = tasks
        .filter_map(|task| {
            let task = task.ok()?.path();
            let name = std::fs::read_to_string(task.join("comm")).ok()?;
            let tid: i64 = task.file_name()?.to_str()?.parse().ok()?;
            (name.trim() == dstar::redis_bridge::THREAD_NAME).then_some(tid)
        })
        .next()
        .expect("the bridge thread");
    // SAFETY: tgkill takes plain integers; it signals one thread of the
    // child, which handles SIGUSR1.
    let sent = unsafe { libc::syscall(libc::SYS_tgkill, pid as i64, tid, libc::SIGUSR1) };
    assert_eq!(sent, 0, "tgkill");
}

#[test]
#[cfg(target_os = "linux")]
fn an_interrupted_read_is_retried_not_taken_for_a_lost_link() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let a = Instance::start(redis.config("eintr"));
    let mut instance = ChildInstance::start(&redis, "eintr");
    let mut published = Vec::new();
    for n in 0..20 {
        // The bridge thread is blocked in XREAD most of the time.
        thread::sleep(Duration::from_millis(30));
        interrupt_bridge_thread(&instance.child);
        published.extend(publish_many(&a.bridge, &format!("m{n}"), 5, Duration::ZERO).acked);
    }
    assert_eq!(published.len(), 100);
    let ids_sent: Vec<String> = published.into_iter().map(|(id, _)| id).collect();
    assert_eq!(instance.delivered(100), ids_sent);
    // Give its stats line a moment, then read it.
    publish_many(&a.bridge, "last", 1, Duration::ZERO);
    instance.delivered(1);
    thread::sleep(Duration::from_millis(100));
    while let Ok(line) = instance.lines.try_recv() {
        instance.other.push(line);
    }
    let stats = instance
        .other
        .iter()
        .rev()
        .find_map(|line| line.split_once("retries ").map(|(_, s)| s.to_string()))
        .expect("reads were interrupted and retried");
    let numbers: Vec<u64> = stats
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let [retries, _reconnects, gaps] = numbers[..] else {
        panic!("{stats:?}");
    };
    // Each retry reads on, at once, from the last id: none was an outage,
    // none lost anything.
    assert!(retries >= 1, "{stats}");
    assert_eq!(gaps, 0, "{stats}");
}

#[test]
fn a_paused_instance_catches_up_and_a_killed_one_is_resumed_elsewhere() {
    let Some(redis) = RedisServer::start(false) else {
        return;
    };
    let a = Instance::start(redis.config("pause"));
    let (mut on_a, _) = a.client(None);
    let mut paused = ChildInstance::start(&redis, "pause");

    // Paused for a while (SIGSTOP, then SIGCONT) while 300 are published.
    send_signal(&paused.child, "STOP");
    let during = publish_many(&a.bridge, "during", 300, Duration::from_millis(5));
    thread::sleep(Duration::from_millis(500));
    send_signal(&paused.child, "CONT");
    let after = publish_many(&a.bridge, "after", 200, Duration::ZERO);
    assert_eq!((during.acked.len(), after.acked.len()), (300, 200));
    let got = paused.delivered(500);
    on_a.wait_for_events(501);
    on_a.events.remove(0);
    assert_eq!(
        got,
        ids(&on_a),
        "the paused instance lost or reordered events"
    );
    assert_unique(&got);

    // Killed (as a crash would) in the middle of the stream: its tab resumes
    // on A, from the last id it got.
    send_signal(&paused.child, "KILL");
    drop(paused);
    let kept = got[249].clone();
    let (mut resumed, replay) = a.client(Some(&kept));
    assert_eq!(replay, Replay::Replayed(250));
    resumed.wait_for_events(250);
    assert_eq!(ids(&resumed), got[250..]);

    // A restarted instance process delivers from where the stream is now.
    let mut restarted = ChildInstance::start(&redis, "pause");
    let more = publish_many(&a.bridge, "more", 3, Duration::ZERO);
    let ids_more: Vec<_> = more.acked.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(restarted.delivered(3), ids_more);
}

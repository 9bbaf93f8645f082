//! Publish→delivery latency through a Redis stream between two instances,
//! beside the local hub alone and bare Redis pub/sub, at fixed event rates,
//! in the same run; then what Redis spends per 10,000 retained events.
//!
//! ```text
//! cargo bench --features redis --bench redis_latency
//! cargo bench --features redis --bench redis_latency -- --rates 100,1000 --seconds 10
//! ```
//!
//! Needs `redis-server` (Debian package `redis-server`): the bench starts its
//! own on a free loopback port, without persistence, and kills it at the
//! end; or set `REDIS_URL` to use a running one.
//!
//! Two instances, A and B, each a hub with its own bridge and its own Redis
//! connections, share the Redis stream; they live in this one process, but
//! share nothing else: what passes between them goes through Redis over
//! loopback TCP. For each rate the bench measures, one after the other:
//!
//! - **local hub**: `Hub::publish` on A, read by a subscriber of A;
//! - **redis stream**: `Bridge::publish` on A (`XADD`), read by a subscriber
//!   of B (another instance) and by a subscriber of A (the publisher's own
//!   instance, which also gets its events back from Redis, by `XREAD`);
//! - **pub/sub, bare**: `PUBLISH` on one connection, received on a
//!   subscribed one — no hub, no SSE: the floor a pub/sub bridge could
//!   reach, to say what streams cost beside it.
//!
//! Memory: 10,000 events (as small as the stamps, and a 200-byte
//! `datastar-patch-elements`) added to a fresh stream with the bridge's
//! `XADD`, measured with `MEMORY USAGE` and `INFO memory`'s `used_memory`.
//!
//! Every subscriber is a real SSE response on a loopback socket, read by a
//! thread of its own. Each event carries the time just before the publish
//! call; the reader takes the difference when its read returns. Events are
//! published at a fixed pace (`--rates`, events per second) for `--seconds`
//! (default 10) after 50 warm-up events. "publish call" is how long the
//! publish call itself took, which for the bridge is a round trip to Redis.
//! Everything shares this machine's cores with redis-server, so the figures
//! include scheduling; only the comparison in one run means much.

use dstar::broadcast::{Config, Hub, Subscription};
use dstar::redis_bridge::{self, Bridge};
use dstar::{Event, SseConnection};
use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const WARM_UP: usize = 50;
const TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> io::Result<()> {
    let mut rates = vec![100u64, 1000];
    let mut seconds = 10u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().expect("a value after the option");
        match arg.as_str() {
            "--rates" => {
                rates = value()
                    .split(',')
                    .map(|r| r.parse().expect("--rates R[,R...]"))
                    .collect()
            }
            "--seconds" => seconds = value().parse().expect("--seconds S"),
            // `cargo bench` passes this to every bench target.
            "--bench" => {}
            other => panic!("unknown option {other:?}"),
        }
    }

    let (url, _server) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => match RedisServer::start() {
            Some(server) => (server.url(), Some(server)),
            None => {
                println!("redis_latency: redis-server is not installed; nothing measured");
                return Ok(());
            }
        },
    };

    let a = Instance::start(&url)?;
    let b = Instance::start(&url)?;
    let base = Instant::now();
    println!(
        "redis_latency: publish→delivery over loopback SSE; {} cores; {}",
        thread::available_parallelism().map_or(0, |n| n.get()),
        redis_version()
    );
    println!(
        "{:<7} {:<29} {:>6} {:>9} {:>9} {:>9} {:>14}",
        "rate", "path", "events", "p50", "p99", "max", "publish call"
    );
    for &rate in &rates {
        let events = (rate * seconds) as usize;
        let local = run(base, rate, events, &[&a.hub], |event| {
            a.hub.publish(event).map(drop)
        })?;
        report(rate, "local hub (A→A)", &local[0], &local.calls);
        let redis = run(base, rate, events, &[&b.hub, &a.hub], |event| {
            a.bridge.publish(event).map(drop)
        })?;
        report(
            rate,
            "stream (A→B, other instance)",
            &redis[0],
            &redis.calls,
        );
        report(rate, "stream (A→A, own instance)", &redis[1], &redis.calls);
        let (latencies, calls) = pubsub(&url, base, rate, events)?;
        report(rate, "pub/sub, bare (no hub)", &latencies, &calls);
    }
    let stats = (a.bridge.stats(), b.bridge.stats());
    assert_eq!((stats.0.gaps, stats.1.gaps), (0, 0), "{stats:?}");
    memory(&url)?;
    Ok(())
}

fn connect(url: &str) -> io::Result<redis::Connection> {
    let conn = redis::Client::open(url)
        .and_then(|c| c.get_connection_with_timeout(TIMEOUT))
        .map_err(io::Error::other)?;
    conn.set_read_timeout(Some(TIMEOUT))
        .map_err(io::Error::other)?;
    Ok(conn)
}

/// Bare pub/sub: the same pace and stamps, `PUBLISH` to a subscribed
/// connection read on a thread of its own.
fn pubsub(
    url: &str,
    base: Instant,
    rate: u64,
    events: usize,
) -> io::Result<(Vec<Duration>, Vec<Duration>)> {
    let (ready, is_ready) = std::sync::mpsc::channel();
    let mut sub = connect(url)?;
    let reader = thread::spawn(move || -> io::Result<Vec<Duration>> {
        let mut pubsub = sub.as_pubsub();
        pubsub
            .subscribe("dstar-bench-pubsub")
            .map_err(io::Error::other)?;
        let _ = ready.send(());
        let mut latencies = Vec::with_capacity(events);
        while latencies.len() < events {
            let message = pubsub.get_message().map_err(io::Error::other)?;
            let now = base.elapsed();
            let payload: String = message.get_payload().map_err(io::Error::other)?;
            if let Ok(sent) = payload.parse::<u128>() {
                latencies.push(now.saturating_sub(Duration::from_nanos(sent as u64)));
            }
        }
        Ok(latencies)
    });
    is_ready.recv_timeout(TIMEOUT).map_err(io::Error::other)?;
    let mut conn = connect(url)?;
    let publish = |payload: &str| -> io::Result<()> {
        redis::cmd("PUBLISH")
            .arg("dstar-bench-pubsub")
            .arg(payload)
            .query::<usize>(&mut conn)
            .map(drop)
            .map_err(io::Error::other)
    };
    let calls = publish_paced(base, rate, events, publish)?;
    let latencies = reader.join().expect("reader thread")?;
    Ok((latencies, calls))
}

/// What Redis spends on 10,000 retained entries, for two sizes of event.
fn memory(url: &str) -> io::Result<()> {
    let mut conn = connect(url)?;
    let used = |conn: &mut redis::Connection| -> io::Result<i64> {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query(conn)
            .map_err(io::Error::other)?;
        Ok(info
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0))
    };
    let stamp = dstar::FormattedEvent::new(&Event::message("1733090000123456789"))?;
    let html = format!("<li id=\"m-1\"><b>guest</b>: {}</li>", "x".repeat(150));
    let patch = dstar::FormattedEvent::new(
        &dstar::datastar::PatchElements::new(&html).selector("#messages"),
    )?;
    println!("\nredis memory per 10,000 retained events (XADD MAXLEN ~ 10000):");
    for (name, event) in [("stamp", &stamp), ("patch", &patch)] {
        let key = format!("dstar-bench-memory-{name}");
        let _: () = redis::cmd("DEL")
            .arg(&key)
            .query(&mut conn)
            .map_err(io::Error::other)?;
        let before = used(&mut conn)?;
        for _ in 0..10_000 {
            let _: String = redis::cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(10_000)
                .arg("*")
                .arg("e")
                .arg(event.as_str())
                .query(&mut conn)
                .map_err(io::Error::other)?;
        }
        let after = used(&mut conn)?;
        let usage: i64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .arg("SAMPLES")
            .arg(0)
            .query(&mut conn)
            .map_err(io::Error::other)?;
        println!(
            "  {name:<6} event of {:>3} bytes: MEMORY USAGE {:.0} KiB ({:.0} B/entry), used_memory +{:.0} KiB",
            event.as_str().len(),
            usage as f64 / 1024.0,
            usage as f64 / 10_000.0,
            (after - before) as f64 / 1024.0,
        );
        let _: () = redis::cmd("DEL")
            .arg(&key)
            .query(&mut conn)
            .map_err(io::Error::other)?;
    }
    Ok(())
}

struct Instance {
    hub: Arc<Hub>,
    bridge: Bridge,
}

impl Instance {
    fn start(url: &str) -> io::Result<Instance> {
        let hub = Arc::new(Hub::new(Config::new()));
        let config = redis_bridge::Config::new(url).stream("dstar-bench");
        let bridge = Bridge::start(Arc::clone(&hub), config)?;
        Ok(Instance { hub, bridge })
    }
}

/// What one measurement gives: each subscriber's latencies, and the
/// publish calls' durations.
struct Samples {
    latencies: Vec<Vec<Duration>>,
    calls: Vec<Duration>,
}

impl std::ops::Index<usize> for Samples {
    type Output = Vec<Duration>;
    fn index(&self, i: usize) -> &Vec<Duration> {
        &self.latencies[i]
    }
}

/// Subscribes a reader to each hub, publishes `events` events at `rate`
/// per second through `publish`, and collects what the readers measured.
fn run(
    base: Instant,
    rate: u64,
    events: usize,
    hubs: &[&Hub],
    publish: impl Fn(Event<'_>) -> io::Result<()>,
) -> io::Result<Samples> {
    let readers: Vec<_> = hubs
        .iter()
        .map(|hub| subscribe(hub, base, events))
        .collect::<io::Result<_>>()?;
    let calls = publish_paced(base, rate, events, |stamp| publish(Event::message(stamp)))?;
    let latencies = readers
        .into_iter()
        .map(|reader| reader.join().expect("reader thread"))
        .collect::<io::Result<_>>()?;
    Ok(Samples { latencies, calls })
}

/// Publishes a few warm-up messages, then `events` stamps (nanoseconds since
/// `base`) at `rate` per second; returns how long each publish call took.
fn publish_paced(
    base: Instant,
    rate: u64,
    events: usize,
    mut publish: impl FnMut(&str) -> io::Result<()>,
) -> io::Result<Vec<Duration>> {
    for _ in 0..WARM_UP {
        publish("warm-up")?;
        thread::sleep(Duration::from_millis(1));
    }
    let period = Duration::from_secs(1) / rate as u32;
    let start = Instant::now();
    let mut calls = Vec::with_capacity(events);
    for n in 0..events {
        let due = start + period * n as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let sent = base.elapsed();
        publish(&sent.as_nanos().to_string())?;
        calls.push(base.elapsed() - sent);
    }
    Ok(calls)
}

/// Subscribes a loopback SSE stream to `hub`, and reads it on a thread that
/// returns the latency of each of the next `events` stamped events.
fn subscribe(
    hub: &Hub,
    base: Instant,
    events: usize,
) -> io::Result<JoinHandle<io::Result<Vec<Duration>>>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    let (socket, _) = listener.accept()?;
    socket.set_nodelay(true)?;
    client.set_read_timeout(Some(TIMEOUT))?;
    hub.subscribe(SseConnection::start_socket(socket)?, Subscription::new())?;
    Ok(thread::spawn(move || {
        let mut latencies = Vec::with_capacity(events);
        let mut pending = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while latencies.len() < events {
            let n = client.read(&mut buf).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("after {} of {events} events: {e}", latencies.len()),
                )
            })?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let now = base.elapsed();
            pending.extend_from_slice(&buf[..n]);
            // Whole lines only; chunk-size lines and warm-ups do not parse.
            let Some(end) = pending.iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            for line in pending[..end].split(|&b| b == b'\n') {
                let stamp = line
                    .strip_prefix(b"data: ")
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .and_then(|s| s.parse::<u128>().ok());
                if let Some(sent) = stamp {
                    let sent = Duration::from_nanos(sent as u64);
                    latencies.push(now.saturating_sub(sent));
                }
            }
            pending.drain(..=end);
        }
        Ok(latencies)
    }))
}

fn report(rate: u64, path: &str, latencies: &[Duration], calls: &[Duration]) {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let mut calls = calls.to_vec();
    calls.sort();
    println!(
        "{:<7} {:<29} {:>6} {:>9} {:>9} {:>9} {:>14}",
        format!("{rate}/s"),
        path,
        sorted.len(),
        show(percentile(&sorted, 50)),
        show(percentile(&sorted, 99)),
        show(sorted.last().copied().unwrap_or_default()),
        show(percentile(&calls, 50)),
    );
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn show(d: Duration) -> String {
    format!("{:.0}µs", d.as_secs_f64() * 1e6)
}

fn redis_version() -> String {
    Command::new("redis-server")
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|v| {
            v.split_whitespace()
                .find(|w| w.starts_with("v="))
                .map(str::to_string)
        })
        .map_or_else(|| "redis-server ?".into(), |v| format!("redis-server {v}"))
}

/// A `redis-server` child process, killed on drop.
struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    fn start() -> Option<RedisServer> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        let server = RedisServer { port, child };
        let deadline = Instant::now() + TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            thread::sleep(Duration::from_millis(10));
        }
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Compressed streams on the repeated-morph workload: a 40-row, ~4.3 KB
//! table re-sent as a Datastar `patch-elements` event with one score
//! changed each time, 500 times.
//!
//! For identity, gzip, brotli and zstd, in one run: bytes per event and
//! ratio against identity, with the window kept for the whole stream (what
//! dstar does) and with the compressor restarted for every event (what a
//! server that compresses each response separately gets); CPU µs per event
//! (formatting included, so identity is the baseline); memory per idle
//! stream after the workload (heap bytes in use, from `mallinfo2`, which
//! also counts the C zstd library's allocations). zstd *is* the C reference
//! library; there is no C brotli or zlib among the dev-dependencies.
//!
//! `cargo bench --bench compression --features brotli,gzip,zstd`, with
//! - `-- --events N` to change the count,
//! - `-- --sweep` to compare quality/level and window settings (how the
//!   defaults were chosen),
//! - `-- --hub` to measure CPU per delivery through a hub with 1,000
//!   in-memory subscribers, with and without compression.
//!
//! Only the ratios mean anything on a shared machine.

use dstar::SseConnection;
use dstar::broadcast::{Config, Hub, Subscription};
use dstar::compression::{Compression, Encoding};
use dstar::datastar::PatchElements;
use dstar::testing::ContentDecoder;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const ROWS: usize = 40;

/// The table after `step` updates: row `step * 7 % ROWS` has a new score.
fn table(scores: &mut [u32; ROWS], step: usize) -> String {
    if step > 0 {
        let row = step * 7 % ROWS;
        scores[row] = scores[row].wrapping_mul(31).wrapping_add(step as u32) % 100_000;
    }
    let mut html = String::from("<table id=\"leaderboard\" class=\"scores\"><tbody>");
    for (i, score) in scores.iter().enumerate() {
        write!(
            html,
            "<tr id=\"row-{i}\"><td class=\"rank\">{}</td><td class=\"name\">Player {i:02}</td>\
             <td class=\"score\">{score}</td></tr>",
            i + 1
        )
        .unwrap();
    }
    html.push_str("</tbody></table>");
    html
}

fn workload(events: usize) -> Vec<String> {
    let mut scores: [u32; ROWS] = std::array::from_fn(|i| 1000 + 37 * i as u32);
    (0..events).map(|step| table(&mut scores, step)).collect()
}

fn connection(encoding: Option<Encoding>, settings: &Compression) -> SseConnection<Vec<u8>> {
    match encoding {
        None => SseConnection::body_only(Vec::with_capacity(1 << 20)),
        Some(e) => {
            SseConnection::body_only_compressed(Vec::with_capacity(1 << 20), e, settings).unwrap()
        }
    }
}

struct Row {
    bytes_per_event: f64,
    us_per_event: f64,
}

/// One stream for the whole workload; median of three runs.
fn persistent(encoding: Option<Encoding>, settings: &Compression, html: &[String]) -> Row {
    let mut runs = Vec::new();
    let mut bytes = 0;
    for _ in 0..3 {
        let mut sse = connection(encoding, settings);
        let start = Instant::now();
        for h in html {
            sse.send_event(PatchElements::new(h)).unwrap();
        }
        runs.push(start.elapsed().as_secs_f64());
        let out = sse.finish().unwrap();
        check(encoding, &out, html.len());
        bytes = out.len();
    }
    runs.sort_by(f64::total_cmp);
    Row {
        bytes_per_event: bytes as f64 / html.len() as f64,
        us_per_event: runs[1] * 1e6 / html.len() as f64,
    }
}

/// A new compressor for every event.
fn restarted(encoding: Option<Encoding>, settings: &Compression, html: &[String]) -> Row {
    let mut bytes = 0;
    let start = Instant::now();
    for h in html {
        let mut sse = connection(encoding, settings);
        sse.send_event(PatchElements::new(h)).unwrap();
        bytes += sse.finish().unwrap().len();
    }
    Row {
        bytes_per_event: bytes as f64 / html.len() as f64,
        us_per_event: start.elapsed().as_secs_f64() * 1e6 / html.len() as f64,
    }
}

/// The output decodes to the events sent.
fn check(encoding: Option<Encoding>, out: &[u8], events: usize) {
    let mut decoder = ContentDecoder::new(encoding.map(Encoding::token)).unwrap();
    decoder.push(out).unwrap();
    decoder.finish().unwrap();
    let got = dstar::testing::parse_event_stream(decoder.decoded()).events;
    assert_eq!(got.len(), events);
}

/// Heap bytes in use (malloc's view: Rust's allocations and C's).
fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let info = unsafe { libc::mallinfo2() };
    info.uordblks + info.hblkhd
}

/// Bytes of heap per stream that has run the workload and is now idle.
fn memory_per_stream(encoding: Option<Encoding>, settings: &Compression, html: &[String]) -> f64 {
    const STREAMS: usize = 40;
    let before = heap_in_use();
    let streams: Vec<_> = (0..STREAMS)
        .map(|_| {
            let mut sse = SseConnection::body_only(io::sink());
            if let Some(e) = encoding {
                sse = SseConnection::body_only_compressed(io::sink(), e, settings).unwrap();
            }
            for h in &html[..html.len().min(50)] {
                sse.send_event(PatchElements::new(h)).unwrap();
            }
            sse
        })
        .collect();
    let after = heap_in_use();
    drop(streams);
    after.saturating_sub(before) as f64 / STREAMS as f64
}

fn name(encoding: Option<Encoding>) -> &'static str {
    encoding.map_or("identity", Encoding::token)
}

fn main() {
    let mut events = 500;
    let (mut sweep, mut hub) = (false, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => events = args.next().and_then(|n| n.parse().ok()).unwrap_or(events),
            "--sweep" => sweep = true,
            "--hub" => hub = true,
            _ => {}
        }
    }
    let html = workload(events);
    let event_len = dstar::format_event(&PatchElements::new(&html[0]))
        .unwrap()
        .len();
    println!(
        "repeated morph: {events} events of {event_len} bytes ({} B of HTML), one cell changed per event",
        html[0].len()
    );
    if sweep {
        return run_sweep(&html);
    }
    if hub {
        return run_hub(&html);
    }
    let settings = Compression::new();
    let identity = persistent(None, &settings, &html);
    println!(
        "\n{:<9} {:>12} {:>8} {:>10} {:>14} {:>9} {:>11}",
        "coding", "bytes/event", "ratio", "µs/event", "restarted B/ev", "ratio", "idle KiB"
    );
    let identity_memory = memory_per_stream(None, &settings, &html);
    for encoding in [
        None,
        Some(Encoding::Gzip),
        Some(Encoding::Brotli),
        Some(Encoding::Zstd),
    ] {
        let kept = persistent(encoding, &settings, &html);
        let fresh = restarted(encoding, &settings, &html);
        let memory = memory_per_stream(encoding, &settings, &html);
        println!(
            "{:<9} {:>12.1} {:>7.1}× {:>10.2} {:>14.1} {:>8.1}× {:>11.1}",
            name(encoding),
            kept.bytes_per_event,
            identity.bytes_per_event / kept.bytes_per_event,
            kept.us_per_event,
            fresh.bytes_per_event,
            identity.bytes_per_event / fresh.bytes_per_event,
            (memory
                - if encoding.is_some() {
                    identity_memory
                } else {
                    0.0
                })
                / 1024.0,
        );
    }
    println!(
        "\n(idle KiB: heap per stream after 50 events; for a coding, beyond what an identity stream holds)"
    );
}

fn run_sweep(html: &[String]) {
    let identity = persistent(None, &Compression::new(), html).bytes_per_event;
    let base = memory_per_stream(None, &Compression::new(), html);
    let row = |label: String, encoding: Encoding, settings: Compression| {
        let r = persistent(Some(encoding), &settings, html);
        let memory = memory_per_stream(Some(encoding), &settings, html) - base;
        println!(
            "{label:<22} {:>8.1} B/ev {:>7.1}× {:>8.2} µs/ev {:>8.1} KiB",
            r.bytes_per_event,
            identity / r.bytes_per_event,
            r.us_per_event,
            memory / 1024.0
        );
    };
    for quality in [2, 3, 4, 5, 6] {
        for window in [15, 16, 17, 18] {
            let settings = Compression::new().brotli(quality, window);
            row(
                format!("br q{quality} w{window}"),
                Encoding::Brotli,
                settings,
            );
        }
    }
    for level in [1, 2, 3, 5] {
        for window in [15, 16, 17, 18] {
            let settings = Compression::new().zstd(level, window);
            row(format!("zstd l{level} w{window}"), Encoding::Zstd, settings);
        }
    }
    for level in [1, 6, 9] {
        let settings = Compression::new().gzip(level);
        row(format!("gzip l{level}"), Encoding::Gzip, settings);
    }
}

/// Counts what it is given and keeps nothing.
struct Counter(Arc<AtomicU64>);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn run_hub(html: &[String]) {
    const SUBSCRIBERS: usize = 1000;
    let events = (html.len() - 1).min(100);
    println!("\nhub: {SUBSCRIBERS} in-memory subscribers, {events} events each\n");
    println!(
        "{:<9} {:>14} {:>12} {:>14} {:>16}",
        "coding", "CPU µs/deliv.", "bytes/deliv.", "KiB/subscriber", "format+publish µs"
    );
    let settings = Compression::new();
    for encoding in [
        None,
        Some(Encoding::Gzip),
        Some(Encoding::Brotli),
        Some(Encoding::Zstd),
    ] {
        let hub = Hub::new(Config::new().queue_capacity(events + 10));
        let written = Arc::new(AtomicU64::new(0));
        let before_memory = heap_in_use();
        for _ in 0..SUBSCRIBERS {
            let writer = Counter(Arc::clone(&written));
            let conn = match encoding {
                None => SseConnection::body_only(writer),
                Some(e) => SseConnection::body_only_compressed(writer, e, &settings).unwrap(),
            };
            hub.subscribe(conn, Subscription::new()).unwrap();
        }
        // One warm-up event, so every compressor has its tables and window.
        hub.publish(PatchElements::new(&html[0])).unwrap();
        wait_delivered(&hub, SUBSCRIBERS as u64);
        let memory = heap_in_use().saturating_sub(before_memory);
        written.store(0, Ordering::Relaxed);
        let cpu = cpu_time();
        let mut publishing = Duration::ZERO;
        for h in &html[1..=events] {
            let start = Instant::now();
            hub.publish(PatchElements::new(h)).unwrap();
            publishing += start.elapsed();
            // Keep the queues short, as a live stream's are.
            wait_delivered(&hub, hub.stats().published * SUBSCRIBERS as u64);
        }
        let cpu = cpu_time() - cpu;
        let deliveries = (events * SUBSCRIBERS) as f64;
        println!(
            "{:<9} {:>14.2} {:>12.1} {:>14.1} {:>16.1}",
            name(encoding),
            cpu.as_secs_f64() * 1e6 / deliveries,
            written.load(Ordering::Relaxed) as f64 / deliveries,
            memory as f64 / SUBSCRIBERS as f64 / 1024.0,
            publishing.as_secs_f64() * 1e6 / events as f64,
        );
        hub.stop();
    }
    println!(
        "\n(KiB/subscriber: heap per subscriber after one event, connection and hub state included)"
    );
}

fn wait_delivered(hub: &Hub, target: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while hub.stats().delivered < target {
        assert!(Instant::now() < deadline, "the hub did not deliver in time");
        std::thread::sleep(Duration::from_micros(200));
    }
}

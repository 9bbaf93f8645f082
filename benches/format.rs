//! Formatting and framing cost per event, against three baselines measured in
//! the same run: hand-written `extend_from_slice` of the same bytes knowing
//! the lines in advance (the floor: no validation, no line scanning); the
//! same by hand but splitting the text at `\n` per event, as a hand-written
//! framer that is given text must (two `memchr` passes: the size, then the
//! bytes; no CR handling, no validation); and the official `datastar` 0.4
//! crate (formatting only; it leaves chunked framing to the HTTP server).
//!
//! `cargo bench --bench format` (add `-- --events N` to change the count).
//! Only the ratios mean anything: this machine is noisy.

use datastar::prelude::{
    DatastarEvent, PatchElements as PeerPatchElements, PatchSignals as PeerPatchSignals,
};
use dstar::SseResponse;
use dstar::datastar::{PatchElements, PatchSignals, Signals};
use std::hint::black_box;
use std::io::{self, Write};
use std::time::Instant;

/// Rounds per shape. Every round runs each contender once, one after the
/// other, so that a ratio is taken between runs a few milliseconds apart:
/// this machine's speed drifts by half from one second to the next.
const ROUNDS: usize = 9;

/// Runs `f` `events` times; returns the nanoseconds per event.
fn round(events: usize, buf: &mut Vec<u8>, f: &mut impl FnMut(&mut Vec<u8>)) -> f64 {
    buf.clear();
    let start = Instant::now();
    for _ in 0..events {
        f(buf);
        // A connection writes its queue out at 8 KiB; so does this.
        if buf.len() >= 8 * 1024 {
            buf.clear();
        }
    }
    black_box(&buf);
    start.elapsed().as_secs_f64() * 1e9 / events.max(1) as f64
}

/// The chunk size line, as a hand-written framer makes it per event.
#[inline(always)]
fn push_size_line(buf: &mut Vec<u8>, size: usize) {
    let mut hex = [0u8; 18];
    let mut at = 16;
    let mut n = size;
    loop {
        at -= 1;
        hex[at] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    hex[16..].copy_from_slice(b"\r\n");
    buf.extend_from_slice(&hex[at..]);
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The issue's small signals: a 64-byte JSON object.
const SIGNALS: &str = r#"{"count":42,"user":{"name":"ann","mail":"a@example.org"},"on":1}"#;

/// The shapes of the issue: a ~200-byte one-line element, a small signals
/// patch, a five-line element.
struct Shape {
    name: &'static str,
    event_type: &'static str,
    prefix: &'static str,
    text: String,
    /// Signals given as `Signals`, checked once before the run.
    checked: bool,
}

fn shapes() -> Vec<Shape> {
    let one_line = format!(
        "<div id=\"feed-item-42\" class=\"item unread\">{}</div>",
        "Hello from a blocking Rust server! ".repeat(4)
    );
    let five_lines = [
        "<ul id=\"list\">",
        "  <li class=\"a\">first item of the list</li>",
        "  <li class=\"b\">second item of the list</li>",
        "  <li class=\"c\">third item of the list</li>",
        "</ul>",
    ]
    .join("\n");
    vec![
        Shape {
            name: "one-line element (~200 B)",
            event_type: "datastar-patch-elements",
            prefix: "elements ",
            text: one_line,
            checked: false,
        },
        Shape {
            name: "small signals (64 B)",
            event_type: "datastar-patch-signals",
            prefix: "signals ",
            text: SIGNALS.to_string(),
            checked: false,
        },
        Shape {
            name: "five-line element",
            event_type: "datastar-patch-elements",
            prefix: "elements ",
            text: five_lines,
            checked: false,
        },
        Shape {
            name: "64-B signals, pre-checked",
            event_type: "datastar-patch-signals",
            prefix: "signals ",
            text: SIGNALS.to_string(),
            checked: true,
        },
    ]
}

/// Takes the connection's write-outs and drops them, as the baselines clear
/// their buffer.
struct Discard;

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        black_box(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn main() {
    let mut events = 2_700_000;
    // `--only dstar` runs one contender and `--shape 2` one shape, for a profiler.
    let mut only = None;
    let mut only_shape = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => events = args.next().and_then(|n| n.parse().ok()).unwrap_or(events),
            "--only" => only = args.next(),
            "--shape" => only_shape = args.next().and_then(|n| n.parse::<usize>().ok()),
            _ => {}
        }
    }
    let runs = |name: &str| only.as_deref().is_none_or(|o| o == name);
    println!(
        "{} events per contender per round, {ROUNDS} interleaved rounds; medians, and ratios are medians of per-round ratios\n",
        events / ROUNDS
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>10} {:>9} {:>11} {:>11} {:>14}",
        "shape",
        "by hand",
        "hand+split",
        "dstar",
        "datastar",
        "MB/s",
        "dstar/hand",
        "dstar/split",
        "datastar/dstar"
    );
    for (index, shape) in shapes().into_iter().enumerate() {
        if only_shape.is_some_and(|only| only != index) {
            continue;
        }
        // By hand: the same framed bytes, knowing the lines in advance (no
        // scanning, no validation); only the size line is made per event.
        let lines: Vec<&str> = shape.text.lines().collect();
        let event_line = format!("event: {}\n", shape.event_type);
        let data_prefix = format!("data: {}", shape.prefix);
        let payload: usize = event_line.len()
            + lines
                .iter()
                .map(|l| data_prefix.len() + l.len() + 1)
                .sum::<usize>()
            + 1;
        let mut hand = |buf: &mut Vec<u8>| {
            push_size_line(buf, black_box(payload));
            buf.extend_from_slice(event_line.as_bytes());
            for line in &lines {
                buf.extend_from_slice(data_prefix.as_bytes());
                buf.extend_from_slice(line.as_bytes());
                buf.push(b'\n');
            }
            buf.extend_from_slice(b"\n\r\n");
        };

        // By hand, splitting per event: a pass for the size, a pass to copy.
        let text = shape.text.as_str();
        let mut split = |buf: &mut Vec<u8>| {
            let text = black_box(text);
            let size = event_line.len()
                + text
                    .split('\n')
                    .map(|l| data_prefix.len() + l.len() + 1)
                    .sum::<usize>()
                + 1;
            push_size_line(buf, size);
            buf.extend_from_slice(event_line.as_bytes());
            for line in text.split('\n') {
                buf.extend_from_slice(data_prefix.as_bytes());
                buf.extend_from_slice(line.as_bytes());
                buf.push(b'\n');
            }
            buf.extend_from_slice(b"\n\r\n");
        };

        // dstar: validated, split and framed into the connection's own
        // buffer, which it writes out (here: drops) at 8 KiB.
        // The Datastar builders users call; the signals one also checks that
        // its text is well-formed JSON, which datastar 0.4 does not.
        let mut sse = SseResponse::new().start(Discard).unwrap();
        let signals = shape.event_type == "datastar-patch-signals";
        let checked = Signals::new(if shape.checked { &shape.text } else { "{}" }).unwrap();
        let mut ours = |_: &mut Vec<u8>| {
            if shape.checked {
                sse.queue_event(PatchSignals::checked(checked)).unwrap();
            } else if signals {
                sse.queue_event(PatchSignals::new(&shape.text)).unwrap();
            } else {
                sse.queue_event(PatchElements::new(&shape.text)).unwrap();
            }
        };

        // datastar 0.4: owned strings in, Display out.
        let mut peer = |buf: &mut Vec<u8>| {
            let event: DatastarEvent = if shape.event_type == "datastar-patch-signals" {
                PeerPatchSignals::new(shape.text.as_str()).into_datastar_event()
            } else {
                PeerPatchElements::new(shape.text.as_str()).into_datastar_event()
            };
            let _ = write!(buf, "{event}");
        };

        let mut bytes = Vec::new();
        hand(&mut bytes);
        let bytes = bytes.len();
        let count = |name: &str| if runs(name) { events / ROUNDS } else { 0 };
        let mut buf = Vec::with_capacity(1 << 17);
        let mut times: [Vec<f64>; 4] = Default::default();
        for _ in 0..ROUNDS {
            times[0].push(round(count("hand"), &mut buf, &mut hand));
            times[1].push(round(count("split"), &mut buf, &mut split));
            times[2].push(round(count("dstar"), &mut buf, &mut ours));
            times[3].push(round(count("datastar"), &mut buf, &mut peer));
        }
        let ratio =
            |a: usize, b: usize| median((0..ROUNDS).map(|r| times[a][r] / times[b][r]).collect());
        let ns = |a: usize| median(times[a].clone());
        println!(
            "{:<28} {:>8.1}ns {:>8.1}ns {:>8.1}ns {:>8.1}ns {:>9.0} {:>10.2}x {:>10.2}x {:>13.2}x",
            shape.name,
            ns(0),
            ns(1),
            ns(2),
            ns(3),
            bytes as f64 / ns(2) * 1e3,
            ratio(2, 0),
            ratio(2, 1),
            ratio(3, 2),
        );
    }
}

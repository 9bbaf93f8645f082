//! The streaming benchmark's endpoint, served by dstar: the adapter that lets
//! `../shared/peers/scripts/bench.py` measure dstar beside the reference
//! servers of `../shared/peers` (README, "Benchmarks").
//!
//! `GET /stream?n=N&size=S[&hold=SECS]` answers with N `datastar-patch-elements`
//! events, each `<div id="x">` + `abc…z` filler + `</div>`, S bytes of HTML
//! (as `peer-raw` makes it), then ends the response. `hold=SECS` sends
//! max(N, 1) events, then keeps the response open until the client leaves or
//! SECS (at most 3600) pass.
//!
//! `--batch 1` (the default) sends each event with `send_event`: one write
//! per event, like `peer-raw --batch 1`. `--batch K` queues K events with
//! `queue_event` and then flushes: one write per K events.
//!
//! ```sh
//! cargo run --release --example peer_stream -- --port 7403 [--batch 16]
//! ```

use dstar::SseResponse;
use dstar::datastar::PatchElements;
use dstar::request::{Request, RequestReader};
use dstar::response;
use std::io::{self, Read};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

const USAGE: &str = "usage: peer_stream [--port PORT (7403)] [--batch K (1)]";

fn main() {
    let (mut port, mut batch) = (7403u16, 1usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        let ok = match (arg.as_str(), value.as_deref()) {
            ("--port", Some(v)) => v.parse().map(|p| port = p).is_ok(),
            ("--batch", Some(v)) => v.parse().map(|b| batch = b).is_ok(),
            _ => false,
        };
        if !ok || batch == 0 {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap_or_else(|e| {
        eprintln!("peer_stream: bind 127.0.0.1:{port}: {e}");
        std::process::exit(1);
    });
    eprintln!("peer_stream: http://127.0.0.1:{port}/stream (batch {batch})");
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                thread::spawn(move || {
                    if let Err(e) = serve(stream, batch)
                        && !matches!(
                            e.kind(),
                            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                        )
                    {
                        eprintln!("peer_stream: connection ended: {e}");
                    }
                });
            }
            Err(e) => eprintln!("peer_stream: accept: {e}"),
        }
    }
}

fn serve(stream: TcpStream, batch: usize) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = RequestReader::new(&stream);
    loop {
        let request = match reader.next_request() {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(e) => return response::write_error(&mut &stream, &e),
        };
        match (request.method(), request.path()) {
            ("GET", "/stream") => stream_events(&request, &stream, batch)?,
            _ => response::write_not_found(&mut &stream, &request)?,
        }
    }
}

/// `<div id="x">` + `abc…z` repeated + `</div>`, `size` bytes (at least 18).
fn element_html(size: usize) -> String {
    const OPEN: &str = "<div id=\"x\">";
    const CLOSE: &str = "</div>";
    let filler = size.saturating_sub(OPEN.len() + CLOSE.len());
    let mut html = String::with_capacity(size.max(OPEN.len() + CLOSE.len()));
    html.push_str(OPEN);
    html.extend((0..filler).map(|i| char::from(b'a' + (i % 26) as u8)));
    html.push_str(CLOSE);
    html
}

fn param(request: &Request, name: &str, default: u64) -> u64 {
    request
        .query_param(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn stream_events(request: &Request, stream: &TcpStream, batch: usize) -> io::Result<()> {
    let size = param(request, "size", 200).min(16 << 20) as usize;
    let hold = param(request, "hold", 0).min(3600);
    let mut left = param(request, "n", 1000);
    if hold > 0 {
        left = left.max(1);
    }
    let html = element_html(size);
    let event = PatchElements::new(&html);
    let mut sse = SseResponse::for_request(request).start_socket(stream)?;
    if batch == 1 {
        for _ in 0..left {
            sse.send_event(event)?;
        }
    } else {
        while left > 0 {
            let burst = left.min(batch as u64);
            for _ in 0..burst {
                sse.queue_event(event)?;
            }
            sse.flush()?;
            left -= burst;
        }
    }
    if hold > 0 {
        // Idle until the client goes away or the hold time passes.
        stream.set_read_timeout(Some(Duration::from_secs(hold)))?;
        let mut scratch = [0u8; 1024];
        match (&*stream).read(&mut scratch) {
            Ok(_) => return Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
        stream.set_read_timeout(None)?;
    }
    sse.finish().map(drop)
}

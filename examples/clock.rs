//! A live clock: a blocking `std::net` server, one thread per connection,
//! streaming the time to a Datastar page once a second.
//!
//! ```text
//! cargo run --example clock            # then open http://127.0.0.1:8080/
//! cargo run --example clock -- 0.0.0.0:3000
//! ```
//!
//! The page loads the Datastar client from `$DATASTAR_CLIENT_URL` (default: its
//! CDN, see [`client_url`]) and opens the stream with
//! `data-init="@get('/clock')"`; each event patches `<span id="clock">`.

use dstar::SseResponse;
use dstar::datastar::{PatchElements, client_url};
use dstar::request::{Request, RequestReader};
use dstar::response;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <link rel="icon" href="data:,">
  <title>dstar clock</title>
  <script type="module" src="CLIENT_URL"></script>
  <style>body { font: 2rem system-ui, sans-serif; margin: 3rem; }</style>
</head>
<body>
  <p>It is <span id="clock" data-init="@get('/clock')">…</span> UTC.</p>
</body>
</html>
"#;

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let page: Arc<str> = PAGE.replace("CLIENT_URL", &client_url()?).into();
    let listener = TcpListener::bind(&addr)?;
    println!("clock: serving on http://{}/", listener.local_addr()?);
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let page = Arc::clone(&page);
                thread::spawn(move || {
                    if let Err(e) = serve(stream, &page) {
                        eprintln!("clock: connection ended: {e}");
                    }
                });
            }
            Err(e) => eprintln!("clock: accept failed: {e}"),
        }
    }
    Ok(())
}

/// Serves one connection: pages on keep-alive, until it turns into a stream.
fn serve(stream: TcpStream, page: &str) -> io::Result<()> {
    // Nagle's algorithm holds a small write back until the previous one is
    // acknowledged, and every event is a small write: without this a stream
    // measured at 2 ms per event became 47 ms.
    stream.set_nodelay(true)?;
    // A client that stops sending halfway through a request, or stops
    // reading its stream, must not hold this thread forever.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;

    let mut reader = RequestReader::new(&stream);
    loop {
        let request = match reader.next_request() {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(e) => return response::write_error(&mut &stream, &e),
        };
        match (request.method(), request.path()) {
            ("GET" | "HEAD", "/") => response::write_html(&mut &stream, page, &request)?,
            ("GET", "/clock") => return stream_clock(&request, &stream),
            _ => response::write_not_found(&mut &stream, &request)?,
        }
    }
}

/// Sends the time every second until the client goes away.
fn stream_clock(request: &Request, stream: &TcpStream) -> io::Result<()> {
    // Chunked for HTTP/1.1; an HTTP/1.0 client (or a proxy speaking 1.0 to
    // us, as nginx does by default) gets a body ended by closing instead.
    let mut sse = SseResponse::for_request(request).start_socket(stream)?;
    let mut html = String::new();
    loop {
        html.clear();
        html.push_str("<span id=\"clock\">");
        html.push_str(&time_of_day(SystemTime::now()));
        html.push_str("</span>");
        if let Err(e) = sse.send_event(PatchElements::new(&html)) {
            // The first write after the client left can still succeed; the
            // next one fails, so the thread ends within two ticks.
            println!("clock: client left ({e})");
            return Ok(());
        }
        thread::sleep(Duration::from_secs(1));
    }
}

/// `HH:MM:SS` in UTC: std has no time zones, and the clock is a demo.
fn time_of_day(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

//! Server-Sent Events from a [`tiny_http`] server, written by dstar.
//!
//! ```text
//! cargo run --example tiny_http            # then open http://127.0.0.1:8080/
//! cargo run --example tiny_http -- 0.0.0.0:3000
//! ```
//!
//! tiny_http can stream a response whose body is a `Read`, but it copies that
//! body through a chunked encoder with an 8 KiB buffer and flushes only at
//! the end: a small event sits in the buffer until 8 KiB more follow, which
//! for a live stream means seconds or never. [`Request::into_writer`] hands
//! over the connection's writer instead, and an [`SseConnection`] writes the
//! response head and each event itself, flushing every one. (That writer is
//! the raw connection: whatever is written is the whole response, head
//! included, which is exactly what `SseConnection` writes.)
//!
//! The page has a clock (a stream that runs until the tab closes) and a
//! button whose Datastar action is answered with one event. That answer is
//! known in full, so it goes out as an ordinary tiny_http response with a
//! `Content-Length`: tiny_http then decides, as for any response, whether
//! the connection carries the next request, HTTP/1.0 keep-alive included.
//! (A stream written through `into_writer` is out of tiny_http's sight, so
//! only streams that run until the client leaves are written that way.)
//!
//! Routes match the path only ([`split_target`]): Datastar adds the page's
//! signals to every `GET` as a query, `/clock?datastar=%7B%7D`.
//!
//! [`Request::into_writer`]: tiny_http::Request::into_writer

use std::io::{self, Write};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dstar::datastar::{PatchElements, PatchSignals, client_url};
use dstar::request::split_target;
use dstar::{SseConnection, SseResponse, format_event};
use tiny_http::{HTTPVersion, Header, Method, Request, Response, Server};

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <link rel="icon" href="data:,">
  <title>dstar on tiny_http</title>
  <script type="module" src="CLIENT_URL"></script>
  <style>body { font: 1.5rem system-ui, sans-serif; margin: 3rem; }</style>
</head>
<body data-signals='{"clicks": 0}'>
  <p>It is <span id="clock" data-init="@get('/clock')">…</span> UTC.</p>
  <p><button data-on:click="@post('/click')">Click</button>
     clicked <span data-text="$clicks">0</span> times.</p>
</body>
</html>
"#;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    // The Datastar client: `$DATASTAR_CLIENT_URL`, or its CDN.
    let page: Arc<str> = PAGE.replace("CLIENT_URL", &client_url()?).into();
    let server = Server::http(&addr)?;
    let local = server.server_addr().to_ip().ok_or("not an IP address")?;
    println!(
        "tiny_http + dstar: serving on http://{local}/ (port {})",
        local.port()
    );
    for request in server.incoming_requests() {
        // tiny_http hands requests out one at a time; a stream holds its
        // thread for as long as the tab is open, so each gets its own.
        let page = Arc::clone(&page);
        thread::spawn(move || {
            if let Err(e) = handle(request, &page) {
                eprintln!("tiny_http example: request ended: {e}");
            }
        });
    }
    Ok(())
}

fn handle(request: Request, page: &str) -> io::Result<()> {
    let path = split_target(request.url()).0.to_owned();
    match (request.method(), path.as_str()) {
        (Method::Get, "/") => {
            let html = header("Content-Type", "text/html; charset=utf-8");
            request.respond(Response::from_string(page).with_header(html))
        }
        (Method::Get, "/clock") => {
            let mut sse = start_sse(request)?;
            loop {
                let html = format!("<span id=\"clock\">{}</span>", time_of_day());
                if let Err(e) = sse.send_event(PatchElements::new(&html)) {
                    // The tab went away: the first write after that may still
                    // succeed, the next one fails.
                    println!("tiny_http example: clock stream closed ({e})");
                    return Ok(());
                }
                thread::sleep(Duration::from_secs(1));
            }
        }
        (Method::Post, "/click") => {
            let mut request = request;
            let mut body = String::new();
            io::Read::read_to_string(request.as_reader(), &mut body)?;
            let clicks = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|signals| signals["clicks"].as_i64())
                .unwrap_or(0);
            let event = format_event(&PatchSignals::new(&format!(
                "{{\"clicks\":{}}}",
                clicks + 1
            )))?;
            let response = Response::from_string(event)
                .with_header(header("Content-Type", "text/event-stream"))
                .with_header(header("Cache-Control", "no-cache"));
            request.respond(response)
        }
        _ => request.respond(Response::empty(404)),
    }
}

/// Takes the connection from tiny_http and starts an event stream on it:
/// chunked for HTTP/1.1, ended by closing the connection for HTTP/1.0, which
/// has no chunked coding.
fn start_sse(request: Request) -> io::Result<SseConnection<Box<dyn Write + Send>>> {
    let http10 = *request.http_version() == HTTPVersion(1, 0);
    let response = if http10 {
        SseResponse::new().close_delimited()
    } else {
        SseResponse::new()
    };
    // tiny_http keeps the socket to itself, so neither TCP_NODELAY nor a
    // write timeout can be set here: each event is flushed at once, but a
    // client that stops reading holds this thread until the kernel gives up.
    response.start(request.into_writer())
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name, value).expect("a valid header")
}

/// `HH:MM:SS` in UTC: std has no time zones.
fn time_of_day() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

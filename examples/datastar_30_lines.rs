use dstar::datastar::{ElementPatchMode::Append, PatchElements, PatchSignals, client_url};
use dstar::{SseResponse, request::RequestReader, response};
use std::{net::TcpListener, thread, time::Duration};

const PAGE: &str = r#"<!doctype html>
<link rel="icon" href="data:,">
<script type="module" src="CLIENT_URL"></script>
<body data-signals="{count: 0}">
  <button data-on:click="@post('/click')">Clicked <span data-text="$count"></span> times</button>
  <ul id="log"></ul>
</body>"#;

fn main() -> std::io::Result<()> {
    let page = PAGE.replace("CLIENT_URL", &client_url()?); // $DATASTAR_CLIENT_URL or the CDN
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:8080".into());
    for stream in TcpListener::bind(addr)?.incoming() {
        let (stream, page) = (stream?, page.clone());
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        thread::spawn(move || -> std::io::Result<()> {
            let mut requests = RequestReader::new(&stream);
            loop {
                let request = match requests.next_request() {
                    Ok(Some(request)) => request,
                    Ok(None) => return Ok(()),
                    Err(err) => return response::write_error(&mut &stream, &err),
                };
                if request.path() != "/click" {
                    response::write_html(&mut &stream, &page, &request)?;
                    continue;
                }
                // The button POSTs the page's signals as JSON: {"count":3}.
                let signals = request.signals().ok().flatten().unwrap_or_default();
                let json: serde_json::Value = serde_json::from_str(&signals).unwrap_or_default();
                let count = json["count"].as_u64().unwrap_or(0) + 1;
                let item = format!("<li>click {count}</li>");
                let mut sse = SseResponse::for_request(&request).start(&stream)?;
                sse.send_event(PatchSignals::new(&format!(r#"{{"count":{count}}}"#)))?
                    .send_event(PatchElements::new(&item).selector("#log").mode(Append))?;
                sse.finish()?;
            }
        });
    }
    Ok(())
}

//! Datastar events stream the caller's strings into the connection's buffer: once the buffer
//! has grown to fit, sending any of them allocates nothing.

use allocation_counter::measure;
use dstar::SseConnection;
use dstar::datastar::{
    ConsoleLevel, ConsoleLog, DispatchEvent, ElementPatchMode, ExecuteScript, Namespace,
    PatchElements, PatchSignals, Prefetch, Redirect, RemoveSignals, ReplaceUrl,
};
use std::io;
use std::time::Duration;

#[test]
fn steady_state_datastar_sends_allocate_nothing() {
    let html = format!("<ul id=\"feed\">\n{}\r\n</ul>", "<li>x</li>".repeat(20));
    let signals = "{\"user\": {\"name\": \"Ann\", \"tags\": [1, 2, 3]},\n \"open\": true}";
    let attributes = [("type", "module"), ("nonce", "a\"b&c")];
    let paths = ["user.name", "user.email", "draft", "a.b.c"];
    let urls = ["/next", "https://example.com/x?y=\"z\""];
    let mut sse = SseConnection::start(io::sink()).unwrap();
    let round = |sse: &mut SseConnection<io::Sink>| {
        sse.send_event(
            PatchElements::new(&html)
                .selector("#feed")
                .mode(ElementPatchMode::Inner)
                .namespace(Namespace::Svg)
                .use_view_transition(true)
                .view_transition_selector("#feed")
                .id("1")
                .retry(Duration::from_secs(3)),
        )
        .unwrap()
        .send_event(PatchElements::remove("#gone"))
        .unwrap()
        .send_event(PatchSignals::new(signals).only_if_missing(true))
        .unwrap()
        .send_event(RemoveSignals::new(&paths))
        .unwrap()
        .send_event(
            ExecuteScript::new("a('</script>');\nb()")
                .attributes(&attributes)
                .auto_remove(false),
        )
        .unwrap()
        .send_event(Redirect::new("/account?tab=<keys>"))
        .unwrap()
        .send_event(ConsoleLog::new("disk\u{2028}full").level(ConsoleLevel::Warn))
        .unwrap()
        .send_event(
            DispatchEvent::new("saved")
                .detail("{\"id\": \"</script>\"}")
                .selector("#editor"),
        )
        .unwrap()
        .send_event(ReplaceUrl::new("/search?q=sse"))
        .unwrap()
        .send_event(Prefetch::new(&urls))
        .unwrap();
    };
    // Warm up: the buffer grows to fit the largest event.
    round(&mut sse);
    let steady = measure(|| {
        for _ in 0..2_000 {
            round(&mut sse);
        }
    });
    assert_eq!(
        steady.count_total, 0,
        "allocations in 2,000 steady-state rounds"
    );
}

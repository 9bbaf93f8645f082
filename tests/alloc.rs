//! Once its buffer has grown to fit, sending an event allocates nothing.
//!
//! `allocation_counter` replaces the global allocator in this test binary
//! and counts the allocations of the calling thread only.

use allocation_counter::measure;
use dstar::{Event, FormattedEvent, SseConnection, write_event};
use std::io;
use std::time::Duration;

#[test]
fn steady_state_sends_allocate_nothing() {
    let html = format!("<div id=\"feed\">{}</div>", "x".repeat(180));
    let lines = ["first line", "second\r\nand third"];
    let formatted = FormattedEvent::new(&Event::new("tick").data("shared")).unwrap();
    let mut sse = SseConnection::start(io::sink()).unwrap();
    let mut buf = Vec::new();
    let round = |sse: &mut SseConnection<io::Sink>, buf: &mut Vec<u8>| {
        sse.send_event(Event::new("datastar-patch-elements").data(html.as_str()))
            .unwrap();
        sse.send_event(
            Event::new("multi")
                .data(&lines)
                .id("42")
                .retry(Duration::from_secs(2)),
        )
        .unwrap();
        sse.queue_event(Event::message("a")).unwrap();
        sse.queue_event(Event::message("b")).unwrap();
        sse.flush().unwrap();
        sse.send_formatted(&formatted).unwrap();
        sse.check_connection().unwrap();
        buf.clear();
        write_event(buf, &Event::new("t").data(html.as_str())).unwrap();
    };
    // Warm up: the buffers grow to fit the largest event.
    round(&mut sse, &mut buf);
    let steady = measure(|| {
        for _ in 0..10_000 {
            round(&mut sse, &mut buf);
        }
    });
    assert_eq!(
        steady.count_total, 0,
        "allocations in 10,000 steady-state rounds"
    );

    // A refused event allocates its error message, keeps nothing, and
    // leaves the steady state as it was.
    let refused = measure(|| {
        assert!(sse.send_event(Event::new("bad\n").data("x")).is_err());
    });
    assert_eq!(refused.bytes_current, 0, "{refused:?}");
    let after = measure(|| round(&mut sse, &mut buf));
    assert_eq!(after.count_total, 0);
}

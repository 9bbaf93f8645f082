//! A compressed stream, once its buffers and the compressor's tables have
//! grown to fit, allocates nothing per event either.
//!
//! `allocation_counter` replaces the global allocator in this test binary
//! and counts the allocations of the calling thread only (zstd's C library
//! allocates with malloc, outside it; it allocates its context up front).
#![cfg(any(feature = "brotli", feature = "gzip", feature = "zstd"))]

use allocation_counter::measure;
use dstar::compression::{Compression, Encoding};
use dstar::{Event, FormattedEvent, SseConnection, SseResponse};
use std::io;
use std::time::Duration;

#[test]
fn steady_state_compressed_sends_allocate_nothing() {
    for encoding in Encoding::ALL.into_iter().filter(|e| e.is_available()) {
        let rows: String = (0..40)
            .map(|i| {
                format!(
                    "<tr id=\"row-{i}\"><td class=\"rank\">{}</td><td class=\"name\">Player {i:02}</td>\
                     <td class=\"score\">{}</td></tr>",
                    i + 1,
                    1000 + i * 37
                )
            })
            .collect();
        let formatted = FormattedEvent::new(&Event::new("tick").data("shared")).unwrap();
        let mut sse = SseResponse::new()
            .accept_encoding(encoding.token())
            .compression(Compression::new())
            .start(io::sink())
            .unwrap();
        assert_eq!(sse.content_encoding(), Some(encoding));
        let mut n = 0u32;
        let mut round = |sse: &mut SseConnection<io::Sink>| {
            n += 1;
            // The same table with one cell changed, as a morph stream sends.
            let html = rows.replacen(">1000<", &format!(">{:04}<", n % 10_000), 1);
            let event = Event::new("datastar-patch-elements").data(html.as_str());
            // Formatting the HTML above allocates; only the sends are measured.
            let measured = measure(|| {
                sse.send_event(event).unwrap();
                sse.send_event(
                    Event::new("multi")
                        .data(&["first", "second\r\nthird"])
                        .id("42")
                        .retry(Duration::from_secs(2)),
                )
                .unwrap();
                sse.queue_event(Event::message("a")).unwrap();
                sse.queue_event(Event::message("b")).unwrap();
                sse.flush().unwrap();
                sse.send_all([Event::message("c"), Event::message("d")])
                    .unwrap();
                sse.send_formatted(&formatted).unwrap();
                sse.send_comment("note").unwrap();
                sse.check_connection().unwrap();
            });
            measured.count_total
        };
        // Warm up: the buffers and the compressor's tables grow to fit.
        for _ in 0..50 {
            round(&mut sse);
        }
        let steady: u64 = (0..500).map(|_| round(&mut sse)).sum();
        assert_eq!(
            steady, 0,
            "{encoding}: allocations in 500 steady-state rounds"
        );
    }
}

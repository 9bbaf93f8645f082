//! Fuzzes request reading and signals over arbitrary bytes.
//!
//! The first bytes of the input pick the limits and how the stream splits its reads, so the
//! fuzzer explores small limits (where every boundary is close) and every way a request can be
//! cut across reads. The rest is what the client sends, read request after request as a
//! keep-alive connection would.
//!
//! Checked on every input: nothing panics, every request stays within the limits, every
//! rejection carries a 4xx or 5xx status, and signals accepted as JSON are JSON to serde_json
//! as well.
//!
//! Run it from the repository root with `cargo +nightly fuzz run request` (cargo-fuzz needs a
//! nightly compiler for the sanitizers); `cargo check` inside `fuzz/` works on stable.

#![no_main]

use std::hint::black_box;
use std::io::{self, Read, Write};

use dstar::request::{Limits, RequestReader};
use libfuzzer_sys::fuzz_target;

/// A client connection: reads hand out the input in the sizes `splits` cycles through;
/// writes (the `100 Continue` interim response) are dropped.
struct Client<'a> {
    input: &'a [u8],
    splits: &'a [u8],
    reads: usize,
}

impl Read for Client<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let split = match self.splits {
            [] => usize::MAX,
            splits => usize::from(splits[self.reads % splits.len()]).max(1),
        };
        self.reads += 1;
        let n = buf.len().min(split).min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Client<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let [head, headers, body, split_count, rest @ ..] = data else {
        return;
    };
    let limits = Limits::default()
        .max_head(usize::from(*head) * 8)
        .max_headers(usize::from(*headers % 32))
        .max_body(usize::from(*body) * 8)
        .request_timeout(None);
    let (splits, input) = rest.split_at(usize::from(*split_count % 8).min(rest.len()));

    let client = Client {
        input,
        splits,
        reads: 0,
    };
    let mut reader = RequestReader::with_limits(client, limits);
    // Every request takes at least one byte, so this many rounds always reach the end.
    for _ in 0..=input.len() {
        let request = match reader.next_request() {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(err) => {
                assert!((400..600).contains(&err.status()), "{err}");
                assert!(reader.next_request().unwrap().is_none());
                break;
            }
        };
        assert!(request.body().len() <= limits.max_body);
        assert!(request.headers().len() <= limits.max_headers);
        assert!(reader.buffered().len() <= limits.max_head);

        // Accessors slice the stored head; any out-of-range span would panic here.
        black_box((
            request.method(),
            request.target(),
            request.path(),
            request.query(),
        ));
        black_box((
            request.is_datastar_request(),
            request.last_event_id(),
            request.keep_alive(),
        ));
        for (name, _) in request.query_params() {
            assert!(request.query_param(&name).is_some());
        }
        for (name, _) in request.headers() {
            assert!(request.header_bytes(name).is_some());
        }
        match request.signals() {
            Ok(Some(text)) => {
                // Accepted JSON is JSON to serde_json too.
                let parsed = serde_json::from_str::<serde::de::IgnoredAny>(&text);
                assert!(parsed.is_ok(), "{text:?}: {parsed:?}");
                let _ = request.signals_as::<serde_json::Value>();
            }
            Ok(None) => {}
            Err(err) => assert_eq!(err.status(), 400),
        }
    }
});

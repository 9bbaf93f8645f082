//! Compressed event streams: brotli, zstd and gzip, flushed after every
//! event, with one window for the whole stream.
//!
//! A Datastar page fed by a long-lived stream gets the same HTML again and
//! again with small changes. A compressor whose window lives as long as the
//! stream, flushed after each event, codes every re-render against the
//! previous ones, so a 4.3 KB table with one changed cell costs a few dozen
//! bytes on the wire instead of 4.3 KB (see the README for measurements).
//!
//! Compression is opt-in, per response: give the [`SseResponse`] a
//! [`Compression`] and the request's `Accept-Encoding` (which
//! [`SseResponse::for_request`] records), and the connection negotiates a
//! coding when it starts. Each event, comment and heartbeat is then
//! compressed and flushed into its own chunk, in one write, so the browser
//! can decode it the moment it arrives; [`SseConnection::finish`] ends the
//! compressed stream before the terminating chunk.
//!
//! ```
//! use dstar::compression::{Compression, Encoding};
//! use dstar::{Event, Request, SseResponse, testing};
//!
//! let request = Request::parse(
//!     b"GET /feed HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n\r\n",
//! )?;
//! let mut sse = SseResponse::for_request(&request)
//!     .compression(Compression::new())
//!     .start(Vec::new())?;
//! // Whichever codec this build has (the `brotli`, `zstd` and `gzip`
//! // features); with none of them, the stream is simply not compressed.
//! let encoding: Option<Encoding> = sse.content_encoding();
//! sse.send_event(Event::new("greeting").data("hello"))?;
//! let bytes = sse.finish()?;
//!
//! let response = testing::decode_response(&bytes).unwrap(); // decodes the body too
//! assert_eq!(response.header("content-encoding"), encoding.map(Encoding::token));
//! assert_eq!(response.events()[0].data, "hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Choosing a coding
//!
//! [`negotiate`] follows RFC 9110 §12.5.3: the client's weights first, then
//! the order of [`Compression::prefer`]. A client that sends no
//! `Accept-Encoding`, or accepts none of the codings this build has, gets
//! the identity coding: the same bytes as without compression. Whenever the
//! choice depended on the header, the response says `Vary: Accept-Encoding`.
//!
//! # Memory and CPU
//!
//! Every compressed stream holds its own compressor, so memory grows with
//! the number of streams: at the defaults about 200–300 KiB per stream (see
//! [`Compression`] for each codec). A server with many idle subscribers can
//! read how many compressed streams its hub holds
//! ([`Stats::compressed`](crate::broadcast::Stats::compressed)) and start
//! new ones with [`Compression::off`] past a limit of its choosing.
//!
//! [`SseResponse`]: crate::SseResponse
//! [`SseResponse::for_request`]: crate::SseResponse::for_request
//! [`SseConnection::finish`]: crate::SseConnection::finish

use std::fmt;
use std::io;

#[cfg(feature = "brotli")]
mod codec_brotli;
#[cfg(feature = "gzip")]
mod codec_gzip;
#[cfg(feature = "zstd")]
mod codec_zstd;
pub(crate) mod decode;
mod negotiate;

pub use negotiate::negotiate;

/// A content coding dstar can compress a stream with.
///
/// Every coding exists in every build, so code that names one compiles
/// whatever features are on; only those whose feature is enabled
/// ([`is_available`](Encoding::is_available)) are ever negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// `br` (RFC 7932), feature `brotli`: pure Rust.
    Brotli,
    /// `zstd` (RFC 8878), feature `zstd`: the C library, built with `cc`.
    Zstd,
    /// `gzip` (RFC 1952), feature `gzip`: pure Rust (miniz_oxide).
    Gzip,
}

impl Encoding {
    /// Every coding, in the default preference order (see
    /// [`Compression::new`]).
    pub const ALL: [Encoding; 3] = [Encoding::Zstd, Encoding::Brotli, Encoding::Gzip];

    /// The token of the coding, as in `Content-Encoding`: `br`, `zstd`,
    /// `gzip`.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
            Encoding::Gzip => "gzip",
        }
    }

    /// The coding a token names, compared without case (`x-gzip` is
    /// `gzip`); `None` for any other token, including `identity`.
    ///
    /// ```
    /// use dstar::compression::Encoding;
    /// assert_eq!(Encoding::from_token("BR"), Some(Encoding::Brotli));
    /// assert_eq!(Encoding::from_token("deflate"), None);
    /// ```
    pub fn from_token(token: &str) -> Option<Encoding> {
        let token = token.trim_matches([' ', '\t']);
        [
            ("br", Encoding::Brotli),
            ("zstd", Encoding::Zstd),
            ("gzip", Encoding::Gzip),
            ("x-gzip", Encoding::Gzip),
        ]
        .into_iter()
        .find(|(name, _)| token.eq_ignore_ascii_case(name))
        .map(|(_, encoding)| encoding)
    }

    /// Whether this build can compress with it (its cargo feature is on).
    pub fn is_available(self) -> bool {
        match self {
            Encoding::Brotli => cfg!(feature = "brotli"),
            Encoding::Zstd => cfg!(feature = "zstd"),
            Encoding::Gzip => cfg!(feature = "gzip"),
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// Which codings a response may use, in which order, and how hard each
/// one works.
///
/// The defaults were chosen on a repeated-morph workload (a 4.2 KB,
/// 40-row table re-sent 500 times with one cell changed;
/// `benches/compression.rs`, figures from a shared 2-core machine):
///
/// | coding | default | bytes per event (of 4245) | CPU per event | memory per stream |
/// |---|---|---|---|---|
/// | zstd | level 3, window 2^16 | 31 (138×) | 4–6 µs | 250 KiB |
/// | brotli | quality 5, window 2^16 | 21 (201×) | 45–90 µs | 298 KiB |
/// | gzip | level 6, window 2^15 (fixed) | 61 (69×) | 23–45 µs | 316 KiB |
///
/// A window must hold the previous render for the next one to be coded
/// against it: 2^16 (64 KiB) holds fifteen copies of that table. A larger
/// window pays when one event's HTML repeats what was sent more than
/// 64 KiB earlier (a large page re-rendered whole), and costs its size
/// again in memory per stream, or more: zstd at 2^17 gives 154× for
/// 378 KiB; brotli above 2^16 (or below quality 5) switches to hashers
/// of 0.4–2.7 MiB that find the previous render less often (50–102×).
///
/// ```
/// use dstar::compression::{Compression, Encoding};
///
/// let settings = Compression::new()
///     .prefer(&[Encoding::Zstd, Encoding::Brotli]) // gzip never
///     .brotli(4, 17)
///     .zstd(5, 17);
/// # if Encoding::Zstd.is_available() {
/// assert_eq!(settings.negotiate(Some("gzip, br, zstd")), Some(Encoding::Zstd));
/// assert_eq!(settings.negotiate(Some("gzip")), None);
/// # }
/// assert_eq!(Compression::off().negotiate(Some("gzip, br, zstd")), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compression {
    preference: [Option<Encoding>; 3],
    brotli_quality: u32,
    brotli_window_log: u32,
    zstd_level: i32,
    zstd_window_log: u32,
    gzip_level: u32,
}

impl Default for Compression {
    fn default() -> Self {
        Compression::new()
    }
}

impl Compression {
    /// Every coding this build has, preferred in the order of
    /// [`Encoding::ALL`], at the default settings.
    ///
    /// zstd comes first because it costs a fifth of brotli's CPU per event
    /// for a few more bytes; brotli next, since Safari has no zstd; gzip
    /// last, for old clients.
    pub const fn new() -> Self {
        Compression {
            preference: [
                Some(Encoding::Zstd),
                Some(Encoding::Brotli),
                Some(Encoding::Gzip),
            ],
            brotli_quality: 5,
            brotli_window_log: 16,
            zstd_level: 3,
            zstd_window_log: 16,
            gzip_level: 6,
        }
    }

    /// No coding at all: the response is not compressed and carries no
    /// `Vary`. For one response among compressed ones.
    pub const fn off() -> Self {
        let mut off = Compression::new();
        off.preference = [None; 3];
        off
    }

    /// The codings to offer, best first; codings left out are never used,
    /// and a coding listed twice counts once. Among codings the client
    /// weighs alike (browsers weigh all alike), the first one wins.
    pub fn prefer(mut self, order: &[Encoding]) -> Self {
        self.preference = [None; 3];
        let mut slots = self.preference.iter_mut();
        for (i, &encoding) in order.iter().enumerate() {
            if order[..i].contains(&encoding) {
                continue;
            }
            if let Some(slot) = slots.next() {
                *slot = Some(encoding);
            }
        }
        self
    }

    /// Brotli's quality (0–11, default 5) and window (`window_log`
    /// 10–24: 2^window_log bytes, default 16).
    ///
    /// Quality 5 and up match against a chain of earlier positions, which
    /// is what finds the previous render; below 5 brotli hashes single
    /// positions into tables that cost 256–512 KiB per stream.
    pub fn brotli(mut self, quality: u32, window_log: u32) -> Self {
        self.brotli_quality = quality.min(11);
        self.brotli_window_log = window_log.clamp(10, 24);
        self
    }

    /// Zstandard's level (1–19, default 3) and window (`window_log`
    /// 10–23, default 16). Its hash tables are sized to the window, so
    /// memory follows the window. 2^23 (8 MiB) is the most RFC 8878 asks
    /// every decoder to support, and what browsers accept.
    pub fn zstd(mut self, level: i32, window_log: u32) -> Self {
        self.zstd_level = level.clamp(1, 19);
        self.zstd_window_log = window_log.clamp(10, 23);
        self
    }

    /// Gzip's level (1–9, default 6). Its window is always 32 KiB, the
    /// most deflate allows.
    pub fn gzip(mut self, level: u32) -> Self {
        self.gzip_level = level.clamp(1, 9);
        self
    }

    /// The codings offered, best first, that this build has.
    pub fn preference(&self) -> impl Iterator<Item = Encoding> + '_ {
        self.preference
            .iter()
            .flatten()
            .copied()
            .filter(|e| e.is_available())
    }

    /// Whether any coding is offered that this build has: whether a
    /// response's coding depends on `Accept-Encoding` at all.
    pub fn is_enabled(&self) -> bool {
        self.preference().next().is_some()
    }

    /// The coding to answer a request with this `Accept-Encoding` (see
    /// [`negotiate`]); `None` for the identity coding.
    pub fn negotiate(&self, accept_encoding: Option<&str>) -> Option<Encoding> {
        let mut order = [Encoding::Brotli; 3];
        let mut len = 0;
        for encoding in self.preference() {
            order[len] = encoding;
            len += 1;
        }
        negotiate(accept_encoding, &order[..len])
    }
}

/// The `Accept-Encoding` of a request: every field of that name joined
/// with `, ` (RFC 9110 §5.3), or `None` if there is none.
pub(crate) fn accept_encoding_of(request: &crate::Request) -> Option<String> {
    let mut joined: Option<String> = None;
    for (name, value) in request.headers() {
        if !name.eq_ignore_ascii_case("accept-encoding") {
            continue;
        }
        let value = String::from_utf8_lossy(value);
        match &mut joined {
            None => joined = Some(value.into_owned()),
            Some(joined) => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
        }
    }
    joined
}

/// After a write, an input buffer that grew past this (for a very large
/// event) shrinks back to it, as the connection's own queue does.
const MAX_RETAINED: usize = 16 * 1024;

/// The compressor of one stream: its codec state, whose window persists
/// from event to event, and a buffer each event is formatted into first.
pub(crate) struct Compressor {
    encoding: Encoding,
    input: Vec<u8>,
    codec: Codec,
}

enum Codec {
    #[cfg(feature = "brotli")]
    Brotli(Box<codec_brotli::Brotli>),
    #[cfg(feature = "zstd")]
    Zstd(codec_zstd::Zstd),
    #[cfg(feature = "gzip")]
    Gzip(codec_gzip::Gzip),
    /// A build without codecs has no compressor to make.
    #[cfg(not(any(feature = "brotli", feature = "zstd", feature = "gzip")))]
    #[allow(dead_code)]
    None(std::convert::Infallible),
}

/// Why compressing an event failed.
pub(crate) enum Failure {
    /// The event itself was refused (the formatting closure failed):
    /// nothing reached the compressor.
    Refused(io::Error),
    /// The codec failed; the stream cannot go on.
    Codec(io::Error),
}

impl Compressor {
    /// A compressor for `encoding` at these settings, or an error of kind
    /// [`Unsupported`](io::ErrorKind::Unsupported) if this build lacks it.
    pub(crate) fn new(encoding: Encoding, settings: &Compression) -> io::Result<Compressor> {
        Ok(Compressor {
            encoding,
            input: Vec::new(),
            codec: Codec::new(encoding, settings)?,
        })
    }

    /// The coding it writes.
    pub(crate) fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Formats one piece of the stream with `write`, then compresses and
    /// flushes it onto the end of `out`, so that a decoder given `out` can
    /// output every byte of it.
    ///
    /// If `write` fails, the codec is not touched and `out` is unchanged.
    pub(crate) fn compress(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
        out: &mut Vec<u8>,
    ) -> Result<(), Failure> {
        self.input.clear();
        write(&mut self.input).map_err(Failure::Refused)?;
        let result = self.codec.compress_flush(&self.input, out);
        self.input.clear();
        self.input.shrink_to(MAX_RETAINED);
        result.map_err(Failure::Codec)
    }

    /// Ends the compressed stream onto the end of `out` (brotli's and
    /// zstd's last block, gzip's trailer).
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.codec.finish(out)
    }
}

impl Codec {
    fn new(encoding: Encoding, settings: &Compression) -> io::Result<Codec> {
        let _ = settings;
        match encoding {
            #[cfg(feature = "brotli")]
            Encoding::Brotli => Ok(Codec::Brotli(Box::new(codec_brotli::Brotli::new(
                settings.brotli_quality,
                settings.brotli_window_log,
            )))),
            #[cfg(feature = "zstd")]
            Encoding::Zstd => Ok(Codec::Zstd(codec_zstd::Zstd::new(
                settings.zstd_level,
                settings.zstd_window_log,
            )?)),
            #[cfg(feature = "gzip")]
            Encoding::Gzip => Ok(Codec::Gzip(codec_gzip::Gzip::new(settings.gzip_level))),
            #[allow(unreachable_patterns)]
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("dstar was built without the {encoding} coding"),
            )),
        }
    }

    fn compress_flush(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let _ = (input, &out);
        match self {
            #[cfg(feature = "brotli")]
            Codec::Brotli(c) => c.compress_flush(input, out),
            #[cfg(feature = "zstd")]
            Codec::Zstd(c) => c.compress_flush(input, out),
            #[cfg(feature = "gzip")]
            Codec::Gzip(c) => c.compress_flush(input, out),
            #[cfg(not(any(feature = "brotli", feature = "zstd", feature = "gzip")))]
            Codec::None(never) => match *never {},
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let _ = &out;
        match self {
            #[cfg(feature = "brotli")]
            Codec::Brotli(c) => c.finish(out),
            #[cfg(feature = "zstd")]
            Codec::Zstd(c) => c.finish(out),
            #[cfg(feature = "gzip")]
            Codec::Gzip(c) => c.finish(out),
            #[cfg(not(any(feature = "brotli", feature = "zstd", feature = "gzip")))]
            Codec::None(never) => match *never {},
        }
    }
}

/// An error from a codec: the stream it was writing cannot go on.
#[cfg(any(feature = "brotli", feature = "zstd", feature = "gzip"))]
fn codec_error(encoding: Encoding, what: impl fmt::Display) -> io::Error {
    io::Error::other(format!("dstar: the {encoding} compressor failed: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefer_keeps_the_first_of_each_and_at_most_three() {
        let c = Compression::new().prefer(&[
            Encoding::Gzip,
            Encoding::Gzip,
            Encoding::Brotli,
            Encoding::Gzip,
        ]);
        assert_eq!(
            c.preference,
            [Some(Encoding::Gzip), Some(Encoding::Brotli), None]
        );
        assert!(!Compression::off().is_enabled());
        assert_eq!(
            Compression::new()
                .prefer(&[])
                .negotiate(Some("br, gzip, zstd")),
            None
        );
    }

    #[test]
    fn tokens() {
        for encoding in Encoding::ALL {
            assert_eq!(Encoding::from_token(encoding.token()), Some(encoding));
            assert_eq!(encoding.to_string(), encoding.token());
        }
        assert_eq!(Encoding::from_token("X-GZIP"), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_token("identity"), None);
        assert_eq!(Encoding::from_token("*"), None);
    }

    #[test]
    fn accept_encoding_fields_are_joined() {
        let request = crate::Request::parse(
            b"GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br;q=0\r\naccept-encoding: gzip\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            accept_encoding_of(&request).as_deref(),
            Some("br;q=0, gzip")
        );
        let none = crate::Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(accept_encoding_of(&none), None);
    }
}

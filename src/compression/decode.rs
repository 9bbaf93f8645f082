//! Decoding compressed bodies, for [`testing`](crate::testing): the
//! decoders of the same crates the encoders come from, fed chunk by chunk
//! the way a browser's are.

use crate::testing::DecodeError;

/// Decodes a body in the coding its `Content-Encoding` names, as its
/// pieces arrive: after each [`push`](ContentDecoder::push), everything
/// that can be decoded from the bytes so far has been.
///
/// `identity` (or no `Content-Encoding`) passes bytes through, so a test
/// can use one decoder whatever the response says. `br`, `zstd` and `gzip`
/// need their cargo feature (`brotli`, `zstd`, `gzip`); anything else is
/// an error.
///
/// ```
/// use dstar::compression::Compression;
/// use dstar::testing::{self, ContentDecoder};
/// use dstar::{Event, SseResponse};
///
/// let sse = SseResponse::new().accept_encoding("br, gzip, zstd").compression(Compression::new());
/// let mut sse = sse.start(Vec::new())?;
/// sse.send_event(Event::message("one"))?;
/// sse.send_event(Event::message("two"))?;
/// let bytes = sse.finish()?;
///
/// let response = testing::decode_response(&bytes).unwrap();
/// let mut decoder = ContentDecoder::new(response.header("content-encoding")).unwrap();
/// // After every chunk, the events sent so far, and no more.
/// for (i, chunk) in response.chunks.iter().enumerate() {
///     decoder.push(chunk).unwrap();
///     let events = testing::parse_event_stream(decoder.decoded()).events;
///     assert_eq!(events.len(), (i + 1).min(2));
/// }
/// decoder.finish().unwrap(); // the compressed stream was ended
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ContentDecoder {
    codec: Codec,
    decoded: Vec<u8>,
    finished: bool,
    /// Bytes pushed so far, for error offsets.
    consumed: usize,
}

enum Codec {
    Identity,
    #[cfg(feature = "brotli")]
    Brotli(Box<brotli::BrotliState<StdAlloc, StdAlloc, StdAlloc>>),
    #[cfg(feature = "zstd")]
    Zstd(zstd::zstd_safe::DCtx<'static>),
    #[cfg(feature = "gzip")]
    Gzip(Box<flate2::write::GzDecoder<Vec<u8>>>),
}

#[cfg(feature = "brotli")]
type StdAlloc = brotli::enc::StandardAlloc;

impl std::fmt::Debug for ContentDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentDecoder")
            .field("decoded", &self.decoded.len())
            .field("finished", &self.finished)
            .finish()
    }
}

impl ContentDecoder {
    /// A decoder for this `Content-Encoding` value (`None`: identity).
    pub fn new(content_encoding: Option<&str>) -> Result<ContentDecoder, DecodeError> {
        let token = content_encoding
            .unwrap_or("identity")
            .trim_matches([' ', '\t']);
        let unsupported = |why: &str| DecodeError {
            offset: 0,
            message: format!("Content-Encoding {token:?}: {why}"),
        };
        let codec = if token.eq_ignore_ascii_case("identity") || token.is_empty() {
            Codec::Identity
        } else {
            match super::Encoding::from_token(token) {
                #[cfg(feature = "brotli")]
                Some(super::Encoding::Brotli) => Codec::Brotli(Box::new(brotli::BrotliState::new(
                    StdAlloc::default(),
                    StdAlloc::default(),
                    StdAlloc::default(),
                ))),
                #[cfg(feature = "zstd")]
                Some(super::Encoding::Zstd) => Codec::Zstd(
                    zstd::zstd_safe::DCtx::try_create()
                        .ok_or_else(|| unsupported("cannot allocate a zstd decoder"))?,
                ),
                #[cfg(feature = "gzip")]
                Some(super::Encoding::Gzip) => {
                    Codec::Gzip(Box::new(flate2::write::GzDecoder::new(Vec::new())))
                }
                #[allow(unreachable_patterns)]
                Some(encoding) => {
                    return Err(unsupported(&format!(
                        "decoding it needs dstar's `{}` feature",
                        match encoding {
                            super::Encoding::Brotli => "brotli",
                            super::Encoding::Zstd => "zstd",
                            super::Encoding::Gzip => "gzip",
                        }
                    )));
                }
                None => return Err(unsupported("not a coding dstar can decode")),
            }
        };
        Ok(ContentDecoder {
            finished: matches!(codec, Codec::Identity),
            codec,
            decoded: Vec::new(),
            consumed: 0,
        })
    }

    /// Decodes the next piece of the body; returns what it added to
    /// [`decoded`](ContentDecoder::decoded).
    ///
    /// Corrupt input, and bytes after the end of a brotli or gzip stream,
    /// are errors.
    pub fn push(&mut self, bytes: &[u8]) -> Result<&[u8], DecodeError> {
        let before = self.decoded.len();
        let at = self.consumed;
        self.consumed += bytes.len();
        #[allow(unused_variables)]
        let error = |message: String| DecodeError {
            offset: at,
            message,
        };
        match &mut self.codec {
            Codec::Identity => self.decoded.extend_from_slice(bytes),
            #[cfg(feature = "brotli")]
            Codec::Brotli(state) => {
                use brotli::BrotliResult;
                if self.finished && !bytes.is_empty() {
                    return Err(error("bytes after the end of the brotli stream".into()));
                }
                let (mut avail_in, mut in_offset, mut total) = (bytes.len(), 0, 0);
                let mut buf = [0u8; 4096];
                loop {
                    let (mut avail_out, mut out_offset) = (buf.len(), 0);
                    let result = brotli::BrotliDecompressStream(
                        &mut avail_in,
                        &mut in_offset,
                        bytes,
                        &mut avail_out,
                        &mut out_offset,
                        &mut buf,
                        &mut total,
                        state,
                    );
                    self.decoded.extend_from_slice(&buf[..out_offset]);
                    match result {
                        BrotliResult::NeedsMoreOutput => continue,
                        BrotliResult::NeedsMoreInput => break,
                        BrotliResult::ResultSuccess => {
                            self.finished = true;
                            if avail_in > 0 {
                                return Err(error(
                                    "bytes after the end of the brotli stream".into(),
                                ));
                            }
                            break;
                        }
                        BrotliResult::ResultFailure => {
                            return Err(error("corrupt brotli stream".into()));
                        }
                    }
                }
            }
            #[cfg(feature = "zstd")]
            Codec::Zstd(dctx) => {
                use zstd::zstd_safe::{InBuffer, OutBuffer};
                let mut input = InBuffer::around(bytes);
                loop {
                    self.decoded.reserve(16 * 1024);
                    let pos = self.decoded.len();
                    let mut out = OutBuffer::around_pos(&mut self.decoded, pos);
                    let hint = dctx
                        .decompress_stream(&mut out, &mut input)
                        .map_err(|code| {
                            error(format!(
                                "corrupt zstd stream: {}",
                                zstd::zstd_safe::get_error_name(code)
                            ))
                        })?;
                    let full = out.pos() == out.capacity();
                    // 0: a frame is complete; another may follow.
                    self.finished = hint == 0;
                    if input.pos == bytes.len() && !full {
                        break;
                    }
                }
            }
            #[cfg(feature = "gzip")]
            Codec::Gzip(decoder) => {
                use std::io::Write;
                if self.finished && !bytes.is_empty() {
                    return Err(error("bytes after the end of the gzip stream".into()));
                }
                let mut rest = bytes;
                while !rest.is_empty() {
                    match decoder.write(rest) {
                        Ok(0) => {
                            return Err(error("bytes after the end of the gzip stream".into()));
                        }
                        Ok(n) => rest = &rest[n..],
                        Err(e) => return Err(error(format!("corrupt gzip stream: {e}"))),
                    }
                }
                decoder
                    .flush()
                    .map_err(|e| error(format!("corrupt gzip stream: {e}")))?;
                self.decoded.append(decoder.get_mut());
            }
        }
        Ok(&self.decoded[before..])
    }

    /// Everything decoded so far.
    pub fn decoded(&self) -> &[u8] {
        &self.decoded
    }

    /// Says the body is over: `Ok` if the coded stream was ended properly
    /// (brotli's last block, a complete zstd frame, gzip's trailer with a
    /// matching CRC and length; always for identity), an error if it was
    /// cut short. Call it after the last [`push`](ContentDecoder::push).
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        #[cfg(feature = "gzip")]
        if let Codec::Gzip(decoder) = &mut self.codec
            && !self.finished
        {
            // The trailer is checked once the decoder is told the input is
            // over.
            if decoder.try_finish().is_ok() {
                self.decoded.append(decoder.get_mut());
                self.finished = true;
            }
        }
        if self.finished {
            Ok(())
        } else {
            Err(DecodeError {
                offset: self.consumed,
                message: "the compressed stream was cut short: it has no end".into(),
            })
        }
    }
}

//! Reading a chunked request body (RFC 9112 §7.1), strictly and within bounds.
//!
//! The decoder is incremental: it takes whatever part of the body is buffered, uses the lines
//! that have fully arrived and leaves the rest for the next read, so a body split anywhere
//! decodes the same. Every line ends in CRLF, chunk sizes are bare hexadecimal that must fit in
//! 64 bits, extensions must follow the grammar, and trailer fields must be well-formed; the
//! extensions and trailers are read and discarded. The request reader turns a [`ChunkError`]
//! into the request error a client is answered with.

use crate::http::{snippet, syntax};

/// Hex digits a chunk size may have once leading zeros are set aside: 16 fill 64 bits.
const MAX_CHUNK_SIZE_DIGITS: usize = 16;
/// The smallest step a body buffer grows by, so small bodies take one allocation.
pub(crate) const BODY_STEP: usize = 16 * 1024;

/// Why a chunked body could not be decoded.
#[derive(Debug)]
pub(crate) struct ChunkError {
    pub(crate) kind: ChunkErrorKind,
    pub(crate) message: String,
}

/// The three ways a chunked body fails, which a server answers differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkErrorKind {
    /// The framing is malformed (400).
    Malformed,
    /// The body, or its leading zeros and extensions, is over its limit (413).
    BodyTooLarge,
    /// The trailer section, with the extensions before it, is over its limit (431).
    TrailersTooLarge,
}

impl ChunkError {
    fn new(kind: ChunkErrorKind, message: impl Into<String>) -> Self {
        ChunkError {
            kind,
            message: message.into(),
        }
    }
}

/// Decodes a chunked body (RFC 9112 §7.1) incrementally from whatever part of it is buffered.
pub(crate) struct ChunkedDecoder {
    state: ChunkState,
    max_body: usize,
    /// What is left of `max_head` for leading zeros, extensions and trailer fields.
    budget: usize,
    max_head: usize,
    /// How much of a line that has not fully arrived was already searched for its end, so a
    /// line dripping in byte by byte is scanned once rather than once per byte.
    scanned: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data, with this many bytes to go.
    Data(usize),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// Expecting a trailer field or the empty line that ends the body.
    Trailer,
    Done,
}

impl ChunkedDecoder {
    /// A decoder for a body of at most `max_body` bytes, whose leading zeros, extensions and
    /// trailer fields take at most `max_head` bytes in all.
    pub(crate) fn new(max_body: usize, max_head: usize) -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
            max_body,
            budget: max_head,
            max_head,
            scanned: 0,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes as much of `input` as possible, appending chunk data to `body`, and returns
    /// how many bytes it used. Lines are only used whole, so the rest waits for more input.
    pub(crate) fn decode(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<usize, ChunkError> {
        let mut used = 0;
        loop {
            let rest = &input[used..];
            match self.state {
                ChunkState::Size => {
                    let Some(line) = self.take_line(rest)? else {
                        return Ok(used);
                    };
                    used += line.len() + 2;
                    let size = self.chunk_size(line, body.len())?;
                    self.state = if size == 0 {
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(remaining) => {
                    if rest.is_empty() {
                        return Ok(used);
                    }
                    let take = remaining.min(rest.len());
                    append_bounded(body, &rest[..take], self.max_body);
                    used += take;
                    self.state = if take == remaining {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(remaining - take)
                    };
                }
                ChunkState::DataEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        used += 2;
                        self.state = ChunkState::Size;
                    }
                    [] | [b'\r'] => return Ok(used),
                    _ => return Err(bad_chunk("chunk data is not followed by CRLF")),
                },
                ChunkState::Trailer => {
                    let Some(line) = self.take_line(rest)? else {
                        return Ok(used);
                    };
                    used += line.len() + 2;
                    if line.is_empty() {
                        self.state = ChunkState::Done;
                        return Ok(used);
                    }
                    if !self.charge(line.len() + 2) {
                        return Err(self.trailers_too_large());
                    }
                    check_trailer_field(line)?;
                }
                ChunkState::Done => return Ok(used),
            }
        }
    }

    /// Splits off the CRLF-terminated line `input` starts with, or returns `None` if it has not
    /// fully arrived. Chunked framing is read strictly: a bare LF, or a CR not followed by LF,
    /// is an error.
    fn take_line<'a>(&mut self, input: &'a [u8]) -> Result<Option<&'a [u8]>, ChunkError> {
        let from = self.scanned.min(input.len());
        let Some(offset) = input[from..].iter().position(|&b| b == b'\r' || b == b'\n') else {
            self.scanned = input.len();
            return Ok(None);
        };
        let end = from + offset;
        match (input[end], input.get(end + 1)) {
            (b'\r', Some(b'\n')) => {
                self.scanned = 0;
                Ok(Some(&input[..end]))
            }
            (b'\r', None) => {
                self.scanned = end;
                Ok(None)
            }
            (b'\r', Some(_)) => Err(bad_chunk("CR without LF in chunked framing")),
            _ => Err(bad_chunk("bare LF in chunked framing")),
        }
    }

    /// The error for a line that does not fit in the buffer.
    pub(crate) fn line_too_long(&self) -> ChunkError {
        match self.state {
            ChunkState::Trailer => self.trailers_too_large(),
            _ => ChunkError::new(
                ChunkErrorKind::BodyTooLarge,
                format!(
                    "a chunk-size line is longer than the {}-byte buffer",
                    self.max_head
                ),
            ),
        }
    }

    fn trailers_too_large(&self) -> ChunkError {
        ChunkError::new(
            ChunkErrorKind::TrailersTooLarge,
            format!(
                "chunk extensions and trailer fields are larger than the {}-byte limit",
                self.max_head
            ),
        )
    }

    fn charge(&mut self, bytes: usize) -> bool {
        match self.budget.checked_sub(bytes) {
            Some(left) => {
                self.budget = left;
                true
            }
            None => false,
        }
    }

    /// Parses `chunk-size [ chunk-ext ]` and checks the chunk fits in the body limit.
    fn chunk_size(&mut self, line: &[u8], body_len: usize) -> Result<usize, ChunkError> {
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 {
            return Err(bad_chunk(format!(
                "chunk size \"{}\" is not hexadecimal",
                snippet(line)
            )));
        }
        let zeros = line[..digits].iter().take_while(|&&b| b == b'0').count();
        let significant = &line[zeros..digits];
        if significant.len() > MAX_CHUNK_SIZE_DIGITS {
            return Err(bad_chunk("chunk size does not fit in 64 bits"));
        }
        let extensions = &line[digits..];
        check_chunk_extensions(extensions)?;
        // Leading zeros and extensions carry no data, so they are what could be sent in bulk
        // for free; they draw on the same budget as trailers.
        let padding = if significant.is_empty() {
            zeros - 1
        } else {
            zeros
        };
        if !self.charge(padding + extensions.len()) {
            return Err(ChunkError::new(
                ChunkErrorKind::BodyTooLarge,
                format!(
                    "chunk extensions are larger than the {}-byte limit",
                    self.max_head
                ),
            ));
        }
        let size = significant
            .iter()
            .fold(0u64, |size, &digit| size << 4 | u64::from(hex_value(digit)));
        let room = self.max_body - body_len;
        match usize::try_from(size) {
            Ok(size) if size <= room => Ok(size),
            _ => Err(ChunkError::new(
                ChunkErrorKind::BodyTooLarge,
                format!(
                    "chunked request body is larger than the {}-byte limit",
                    self.max_body
                ),
            )),
        }
    }
}

fn bad_chunk(message: impl Into<String>) -> ChunkError {
    ChunkError::new(ChunkErrorKind::Malformed, message)
}

/// Checks what follows the chunk size is `*( BWS ";" BWS ext-name [ BWS "=" BWS ext-value ] )`
/// (RFC 9112 §7.1.1).
fn check_chunk_extensions(extensions: &[u8]) -> Result<(), ChunkError> {
    if syntax::chunk_extensions_are_valid(extensions) {
        Ok(())
    } else {
        Err(bad_chunk(format!(
            "chunk extension \"{}\" is malformed",
            snippet(extensions)
        )))
    }
}

/// Checks a trailer field line is `name: value`; trailers are discarded, but they must still
/// be well-formed so nothing odd slips through unread.
fn check_trailer_field(line: &[u8]) -> Result<(), ChunkError> {
    if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(bad_chunk("obsolete line folding in a trailer field"));
    }
    let colon = line.iter().position(|&b| b == b':');
    let well_formed = colon.is_some_and(|colon| {
        colon > 0
            && line[..colon].iter().all(|&b| syntax::is_tchar(b))
            && line[colon + 1..]
                .iter()
                .all(|&b| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80)
    });
    if well_formed {
        Ok(())
    } else {
        Err(bad_chunk(format!(
            "trailer field \"{}\" is malformed",
            snippet(line)
        )))
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// Appends to a body whose final size is at most `max`, growing its storage by doubling but
/// never past `max`.
pub(crate) fn append_bounded(body: &mut Vec<u8>, bytes: &[u8], max: usize) {
    let needed = body.len() + bytes.len();
    if needed > body.capacity() {
        let target = max.min(body.capacity().saturating_mul(2).max(needed).max(BODY_STEP));
        body.reserve_exact(target.max(needed) - body.len());
    }
    body.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request reader's default limits: a 1 MiB body, a 64 KiB head.
    fn default_decoder() -> ChunkedDecoder {
        ChunkedDecoder::new(1024 * 1024, 64 * 1024)
    }

    fn decode_chunked(input: &[u8]) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut decoder = default_decoder();
        let mut body = Vec::new();
        let used = decoder.decode(input, &mut body)?;
        assert!(decoder.is_done(), "incomplete: {input:?}");
        Ok((body, used))
    }

    #[test]
    fn chunked_decoder_handles_every_split_point() {
        let input = b"5;name=value;x=\"q\\\"s\"\r\nhello\r\n0006\r\n world\r\n0\r\nTrailer: yes\r\n\r\nNEXT";
        let (body, used) = decode_chunked(input).unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(&input[used..], b"NEXT");

        // Fed in two pieces split anywhere, the decoder must reach the same result.
        for split in 0..input.len() {
            let mut decoder = default_decoder();
            let mut body = Vec::new();
            let used = decoder.decode(&input[..split], &mut body).unwrap();
            let rest = [&input[used..split], &input[split..]].concat();
            let more = decoder.decode(&rest, &mut body).unwrap();
            assert!(decoder.is_done(), "split at {split}");
            assert_eq!(body, b"hello world", "split at {split}");
            assert_eq!(&rest[more..], b"NEXT", "split at {split}");
        }
    }

    #[test]
    fn chunk_sizes_are_strict() {
        let refused: &[&[u8]] = &[
            b"\r\n",
            b"x\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"+5\r\nhello\r\n0\r\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\rhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5;\r\nhello\r\n0\r\n\r\n",
            b"5;a=\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"open\r\nhello\r\n0\r\n\r\n",
            b"5;a b\r\nhello\r\n0\r\n\r\n",
            b"5;a=b c\r\nhello\r\n0\r\n\r\n",
            b"5,a\r\nhello\r\n0\r\n\r\n",
            b"10000000000000000\r\n",
            b"0\r\nBad Name: x\r\n\r\n",
            b"0\r\n folded\r\n\r\n",
            b"0\r\nno-colon\r\n\r\n",
            b"0\r\nx: a\x01b\r\n\r\n",
            b"0\r\nx: y\n\r\n",
        ];
        for input in refused {
            let mut decoder = default_decoder();
            let result = decoder.decode(input, &mut Vec::new());
            let err = result.expect_err(&String::from_utf8_lossy(input));
            // Malformed is what the request reader answers with 400.
            assert_eq!(
                err.kind,
                ChunkErrorKind::Malformed,
                "{:?}: {}",
                String::from_utf8_lossy(input),
                err.message
            );
        }

        let accepted: &[&[u8]] = &[
            b"5 ;a\r\nhello\r\n0\r\n\r\n",
            b"5\t; a = b\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"\"\r\nhello\r\n0\r\n\r\n",
            b"A\r\nhellohello\r\n0\r\n\r\n",
            b"a\r\nhellohello\r\n000\r\n\r\n",
            b"0000000000000000000005\r\nhello\r\n0\r\n\r\n",
        ];
        for input in accepted {
            let (body, _) = decode_chunked(input).unwrap_or_else(|err| {
                panic!("{:?}: {}", String::from_utf8_lossy(input), err.message)
            });
            assert!(body.starts_with(b"hello"));
        }
    }

    #[test]
    fn chunked_limits_hold_before_data_arrives() {
        let fresh = || ChunkedDecoder::new(10, 32);
        let mut decoder = fresh();
        // The size alone is over the limit: refused before a single data byte is read.
        let err = decoder.decode(b"b\r\n", &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind, ChunkErrorKind::BodyTooLarge);

        // Many small chunks add up.
        let mut decoder = fresh();
        let err = decoder
            .decode(b"6\r\nabcdef\r\n5\r\nghijk\r\n", &mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind, ChunkErrorKind::BodyTooLarge);

        // Extensions and trailers share the 32-byte budget.
        let ext = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(40));
        let mut decoder = fresh();
        let err = decoder.decode(ext.as_bytes(), &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind, ChunkErrorKind::BodyTooLarge); // 413
        let trailers = b"0\r\nA: 0123456789\r\nB: 0123456789\r\nC: 01234567\r\n\r\n";
        let mut decoder = fresh();
        let err = decoder.decode(trailers, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind, ChunkErrorKind::TrailersTooLarge); // 431
    }
}

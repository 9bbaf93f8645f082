//! HTTP/1.1 chunked transfer coding (RFC 9112 §7.1), written in place.
//!
//! A chunk is `<size in hex>\r\n<payload>\r\n`, and the body ends with the
//! last chunk `0\r\n\r\n`. The size comes first but is only known once the
//! payload is written, so [`begin`] leaves room for it and [`end`] fills it
//! in. The room is a guess (the width of the previous chunk's size, since the
//! events of one stream tend to be alike); a wrong guess costs one move of the
//! payload, never a leading zero on the wire.

/// The terminating chunk: an empty chunk and an empty trailer section.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// A chunk being written: where its size line starts and how wide it is.
#[derive(Debug)]
pub(crate) struct Chunk {
    start: usize,
    width: usize,
}

/// Starts a chunk at the end of `buf`, leaving `width` hex digits for its size.
#[inline]
pub(crate) fn begin(buf: &mut Vec<u8>, width: usize) -> Chunk {
    let width = width.clamp(1, MAX_WIDTH);
    let start = buf.len();
    // A fixed-size copy compiles to two stores; `end` overwrites the bytes.
    buf.extend_from_slice(&[0; MAX_WIDTH + 2]);
    buf.truncate(start + width + 2);
    Chunk { start, width }
}

/// Ends the chunk: writes its size and the CRLF after its payload.
///
/// Returns the width of the size, to use as the next guess. An empty payload
/// is removed along with its size line, because an empty chunk would end the
/// whole body.
#[inline]
pub(crate) fn end(buf: &mut Vec<u8>, chunk: Chunk) -> usize {
    let payload_start = chunk.start + chunk.width + 2;
    let len = buf.len() - payload_start;
    if len == 0 {
        buf.truncate(chunk.start);
        return chunk.width;
    }
    let width = hex_width(len);
    if width < chunk.width {
        let shift = chunk.width - width;
        buf.copy_within(payload_start.., payload_start - shift);
        buf.truncate(buf.len() - shift);
    } else if width > chunk.width {
        let shift = width - chunk.width;
        let end = buf.len();
        buf.resize(end + shift, 0);
        buf.copy_within(payload_start..end, payload_start + shift);
    }
    write_hex(&mut buf[chunk.start..chunk.start + width], len);
    buf[chunk.start + width] = b'\r';
    buf[chunk.start + width + 1] = b'\n';
    buf.extend_from_slice(b"\r\n");
    width
}

/// 16 hex digits hold any `usize` on a 64-bit target.
const MAX_WIDTH: usize = 16;

/// The longest size line: [`MAX_WIDTH`] digits and CRLF.
pub(crate) const MAX_SIZE_LINE: usize = MAX_WIDTH + 2;

/// Appends `payload` (not empty) as one chunk, its size line written
/// directly: for payloads whose length is known before they are written,
/// such as an event formatted once for many connections.
#[inline]
pub(crate) fn write_chunk(buf: &mut Vec<u8>, payload: &[u8]) {
    debug_assert!(!payload.is_empty(), "an empty chunk would end the body");
    let mut size = [0; MAX_SIZE_LINE];
    let size = size_line(&mut size, payload.len());
    buf.reserve(size.len() + payload.len() + 2);
    buf.extend_from_slice(size);
    buf.extend_from_slice(payload);
    buf.extend_from_slice(b"\r\n");
}

/// The size line of a chunk of `len` bytes (`len > 0`), made at the end of
/// `out`: for a payload whose length is known before it is written, so no
/// room has to be guessed and patched.
#[inline]
pub(crate) fn size_line(out: &mut [u8; MAX_SIZE_LINE], len: usize) -> &[u8] {
    let width = hex_width(len);
    let start = MAX_WIDTH - width;
    write_hex(&mut out[start..MAX_WIDTH], len);
    out[MAX_WIDTH] = b'\r';
    out[MAX_WIDTH + 1] = b'\n';
    &out[start..]
}

fn hex_width(n: usize) -> usize {
    let bits = usize::BITS - n.leading_zeros();
    (bits as usize).div_ceil(4).max(1)
}

fn write_hex(out: &mut [u8], mut n: usize) {
    for digit in out.iter_mut().rev() {
        *digit = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payload: &[u8], guess: usize) -> (Vec<u8>, usize) {
        let mut buf = b"head".to_vec();
        let chunk = begin(&mut buf, guess);
        buf.extend_from_slice(payload);
        let width = end(&mut buf, chunk);
        (buf, width)
    }

    #[test]
    fn size_line_is_exact_whatever_the_guess() {
        for len in [1usize, 9, 15, 16, 17, 255, 256, 4095, 4096, 70_000] {
            let payload = vec![b'x'; len];
            let expected = [
                b"head".as_slice(),
                format!("{len:x}\r\n").as_bytes(),
                &payload,
                b"\r\n",
            ]
            .concat();
            for guess in [0, 1, 2, 3, 4, 8, 16, 40] {
                let (buf, width) = framed(&payload, guess);
                assert_eq!(buf, expected, "len {len} guess {guess}");
                assert_eq!(width, format!("{len:x}").len());
            }
        }
    }

    #[test]
    fn an_empty_chunk_is_never_written() {
        let (buf, _) = framed(b"", 2);
        assert_eq!(buf, b"head");
    }

    #[test]
    fn size_lines_are_exact() {
        for len in [
            1usize,
            9,
            15,
            16,
            17,
            255,
            256,
            4095,
            4096,
            70_000,
            usize::MAX,
        ] {
            let mut out = [0; MAX_SIZE_LINE];
            assert_eq!(size_line(&mut out, len), format!("{len:x}\r\n").as_bytes());
        }
    }

    #[test]
    fn known_length_chunks_match_guessed_ones() {
        for len in [1usize, 15, 16, 255, 256, 70_000] {
            let payload = vec![b'x'; len];
            let mut direct = b"head".to_vec();
            write_chunk(&mut direct, &payload);
            assert_eq!(direct, framed(&payload, 2).0);
        }
    }

    #[test]
    fn hex_widths() {
        assert_eq!(hex_width(0), 1);
        assert_eq!(hex_width(0xf), 1);
        assert_eq!(hex_width(0x10), 2);
        assert_eq!(hex_width(usize::MAX), 16);
    }
}

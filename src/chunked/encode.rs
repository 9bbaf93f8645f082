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
    buf.reserve(MAX_SIZE_LINE + payload.len() + 2);
    push_size_line(buf, payload.len());
    buf.extend_from_slice(payload);
    buf.extend_from_slice(b"\r\n");
}

/// Appends the size line of a chunk of `len` bytes (`len > 0`) and returns
/// the width of its size: for a payload whose length is known before it is
/// written.
///
/// A size of up to six digits (16 MiB; every event in practice) is built in
/// a register and stored as one word, then cut to length. Built byte by byte
/// in memory and copied, as larger ones are, it would be read back right
/// after the byte stores, which stalls the store-to-load forwarding: that
/// stall cost more than the rest of a one-line event's framing.
#[inline]
pub(crate) fn push_size_line(buf: &mut Vec<u8>, len: usize) -> usize {
    let width = hex_width(len);
    let start = buf.len();
    if width <= 6 {
        let line = hex_digits(len as u64, width)
            | u64::from(b'\r') << (8 * width)
            | u64::from(b'\n') << (8 * width + 8);
        buf.extend_from_slice(&line.to_le_bytes());
    } else {
        let mut line = [0; MAX_SIZE_LINE];
        write_hex(&mut line[..width], len);
        line[width] = b'\r';
        line[width + 1] = b'\n';
        buf.extend_from_slice(&line);
    }
    buf.truncate(start + width + 2);
    width
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The `width` (1–6) hex digits of `n`, most significant first, as the
/// low bytes of a little-endian word: each nibble is spread to a byte of
/// its own, the bytes are put in writing order, and the digits made ASCII,
/// all without a loop or a branch.
#[inline]
fn hex_digits(n: u64, width: usize) -> u64 {
    const BYTES: u64 = 0x0101_0101_0101_0101;
    let mut x = (n | n << 16) & 0x0000_ffff_0000_ffff;
    x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
    x = (x | x << 4) & 0x0f0f_0f0f_0f0f_0f0f;
    // Nibble k (from the least significant) is now byte k: reverse them.
    x = x.swap_bytes() >> (8 * (8 - width));
    // A nibble of 10 or more carries into bit 4 when 6 is added.
    let letters = ((x + 6 * BYTES) >> 4) & BYTES;
    let digits = x + b'0' as u64 * BYTES + letters * u64::from(b'a' - b'0' - 10);
    digits & (u64::MAX >> (64 - 8 * width))
}

#[inline]
fn hex_width(n: usize) -> usize {
    let bits = usize::BITS - n.leading_zeros();
    (bits as usize).div_ceil(4).max(1)
}

fn write_hex(out: &mut [u8], mut n: usize) {
    for digit in out.iter_mut().rev() {
        *digit = HEX_DIGITS[n & 0xf];
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
            let mut out = b"head".to_vec();
            let width = push_size_line(&mut out, len);
            assert_eq!(out, format!("head{len:x}\r\n").as_bytes());
            assert_eq!(width, format!("{len:x}").len());
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
    fn hex_digits_match_format() {
        for n in (1u64..=0x1100).chain([0xabcdef, 0xfffff, 0x100000, 0xffffff, 0x9a0f5]) {
            let width = hex_width(n as usize);
            let digits = hex_digits(n, width).to_le_bytes();
            assert_eq!(&digits[..width], format!("{n:x}").as_bytes(), "{n:x}");
            assert!(digits[width..].iter().all(|&b| b == 0), "{n:x}");
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

//! Gzip (RFC 1952): raw deflate from `flate2` (its pure-Rust miniz_oxide
//! backend), with the header, CRC-32 and length written here, so that the
//! output lands in the connection's queue without a copy.

use std::io;

use flate2::{Compress, Crc, FlushCompress, Status};

use super::{Encoding, codec_error};

/// ID1 ID2, CM = deflate, no flags, no mtime, XFL 0, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

pub(super) struct Gzip {
    deflate: Compress,
    crc: Crc,
    started: bool,
}

impl Gzip {
    pub(super) fn new(level: u32) -> Gzip {
        Gzip {
            deflate: Compress::new(flate2::Compression::new(level), false),
            crc: Crc::new(),
            started: false,
        }
    }

    /// A sync flush (`Z_SYNC_FLUSH`): the deflate block is ended and
    /// byte-aligned, so every byte of `input` decodes from what is appended.
    pub(super) fn compress_flush(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        self.start(out);
        self.crc.update(input);
        self.run(input, FlushCompress::Sync, out)
    }

    /// The final deflate block, then the CRC-32 and length of the input.
    pub(super) fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.start(out);
        self.run(&[], FlushCompress::Finish, out)?;
        out.extend_from_slice(&self.crc.sum().to_le_bytes());
        out.extend_from_slice(&self.crc.amount().to_le_bytes());
        Ok(())
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            out.extend_from_slice(&HEADER);
            self.started = true;
        }
    }

    fn run(&mut self, mut input: &[u8], flush: FlushCompress, out: &mut Vec<u8>) -> io::Result<()> {
        let mut room = input.len() / 2 + 64;
        loop {
            out.reserve(room);
            let before = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(input, out, flush)
                .map_err(|e| codec_error(Encoding::Gzip, e))?;
            let taken = (self.deflate.total_in() - before) as usize;
            input = &input[taken..];
            // Done once all input is in and the output did not fill up
            // (deflate stops early only when it runs out of room).
            let done = match flush {
                FlushCompress::Finish => status == Status::StreamEnd,
                _ => input.is_empty() && out.len() < out.capacity(),
            };
            if done {
                return Ok(());
            }
            if status == Status::BufError && out.len() < out.capacity() {
                return Err(codec_error(Encoding::Gzip, "deflate made no progress"));
            }
            room = room.saturating_mul(2);
        }
    }
}

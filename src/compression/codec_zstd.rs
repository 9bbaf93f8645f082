//! Zstandard through `zstd-safe`'s streaming context (the C library),
//! writing straight into the connection's queue.

use std::io;

use zstd::zstd_safe::{self, CCtx, CParameter, InBuffer, OutBuffer};

use super::{Encoding, codec_error};

/// The largest block zstd codes at once.
const MAX_BLOCK: u32 = 16 * 1024;

pub(super) struct Zstd {
    cctx: CCtx<'static>,
}

fn error(code: zstd_safe::ErrorCode) -> io::Error {
    codec_error(Encoding::Zstd, zstd_safe::get_error_name(code))
}

impl Zstd {
    pub(super) fn new(level: i32, window_log: u32) -> io::Result<Zstd> {
        let mut cctx = CCtx::try_create()
            .ok_or_else(|| codec_error(Encoding::Zstd, "cannot allocate a context"))?;
        // The hash and chain tables default to the level's sizes (2^17 and
        // 2^16 entries of 4 bytes at level 3), which would dwarf a small
        // window; an eighth of the window's positions find the same matches
        // on the repeated-morph workload (measured: the same bytes per
        // event at 2^13 entries as at 2^15, for a 2^16 window).
        let table_log = window_log.saturating_sub(3).max(6);
        for param in [
            CParameter::CompressionLevel(level),
            CParameter::WindowLog(window_log),
            CParameter::HashLog(table_log),
            CParameter::ChainLog(table_log),
            CParameter::ChecksumFlag(false),
            // Its staging buffers are sized by the largest block (128 KiB by
            // default): 16 KiB blocks cost nothing in ratio here (an event
            // is flushed as its own block anyway, and larger ones are split)
            // and save about 250 KiB per stream.
            CParameter::MaxBlockSize(MAX_BLOCK),
        ] {
            cctx.set_parameter(param).map_err(error)?;
        }
        Ok(Zstd { cctx })
    }

    /// `ZSTD_e_flush`: the block is ended, so every byte of `input` decodes
    /// from what is appended.
    pub(super) fn compress_flush(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let mut input = InBuffer::around(input);
        let mut room = input.src.len() / 2 + 64;
        loop {
            out.reserve(room);
            let pos = out.len();
            let mut buffer = OutBuffer::around_pos(out, pos);
            let left = self
                .cctx
                .compress_stream2(
                    &mut buffer,
                    &mut input,
                    zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_flush,
                )
                .map_err(error)?;
            if left == 0 && input.pos == input.src.len() {
                return Ok(());
            }
            room = room.saturating_mul(2);
        }
    }

    /// `ZSTD_e_end`: the frame's last block.
    pub(super) fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let mut room = 64;
        loop {
            out.reserve(room);
            let pos = out.len();
            let mut buffer = OutBuffer::around_pos(out, pos);
            if self.cctx.end_stream(&mut buffer).map_err(error)? == 0 {
                return Ok(());
            }
            room = room.saturating_mul(2);
        }
    }
}

//! Brotli through the `brotli` crate's streaming encoder, called directly
//! so that the output lands in the connection's queue without a copy.

use std::io;

use brotli::enc::StandardAlloc;
use brotli::enc::encode::{
    BrotliEncoderDestroyInstance, BrotliEncoderOperation, BrotliEncoderParameter,
    BrotliEncoderStateStruct,
};
use brotli::interface;

use super::{Encoding, codec_error};

pub(super) struct Brotli {
    state: BrotliEncoderStateStruct<StandardAlloc>,
}

impl Brotli {
    pub(super) fn new(quality: u32, window_log: u32) -> Brotli {
        let mut state = BrotliEncoderStateStruct::new(StandardAlloc::default());
        state.set_parameter(BrotliEncoderParameter::BROTLI_PARAM_QUALITY, quality);
        state.set_parameter(BrotliEncoderParameter::BROTLI_PARAM_LGWIN, window_log);
        // Events are text; the mode only tunes the literal context model.
        state.set_parameter(
            BrotliEncoderParameter::BROTLI_PARAM_MODE,
            brotli::enc::backward_references::BrotliEncoderMode::BROTLI_MODE_TEXT as u32,
        );
        // At quality 5 and up with a window of 2^16 or less, brotli 9.1
        // asks for its "forgetful chain" hasher, which this port leaves out
        // and replaces with the bucketed longest-match hasher (H6) sized by
        // these fields. Left at their defaults that is 2^15 buckets of 2^8
        // positions, 32 MiB per stream; 2^9 buckets of 16 positions (32 KiB)
        // still find the previous render on the repeated-morph workload
        // (200x, the same as the 32 MiB table), so a stream stays under
        // 300 KiB. Other qualities and windows choose their own hasher.
        state.params.hasher.bucket_bits = 9;
        state.params.hasher.block_bits = 4;
        state.params.hasher.hash_len = 5;
        state.params.hasher.num_last_distances_to_check = 16;
        Brotli { state }
    }

    /// `BROTLI_OPERATION_FLUSH`: all of `input` is coded and every byte of
    /// it can be decoded from what is appended.
    pub(super) fn compress_flush(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        self.run(BrotliEncoderOperation::BROTLI_OPERATION_FLUSH, input, out)
    }

    /// `BROTLI_OPERATION_FINISH`: the last meta-block.
    pub(super) fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.run(BrotliEncoderOperation::BROTLI_OPERATION_FINISH, &[], out)
    }

    fn run(
        &mut self,
        op: BrotliEncoderOperation,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        let finishing = matches!(op, BrotliEncoderOperation::BROTLI_OPERATION_FINISH);
        let mut avail_in = input.len();
        let mut in_offset = 0;
        // Flushed output is rarely larger than the input; more is asked
        // for in the (incompressible) case that it is.
        let mut room = input.len() / 2 + 64;
        loop {
            let start = out.len();
            out.resize(start + room, 0);
            let mut avail_out = room;
            let mut out_offset = start;
            let ok = self.state.compress_stream(
                op,
                &mut avail_in,
                input,
                &mut in_offset,
                &mut avail_out,
                out,
                &mut out_offset,
                &mut None,
                &mut |_: &mut interface::PredictionModeContextMap<interface::InputReferenceMut>,
                      _: &mut [interface::StaticCommand],
                      _: interface::InputPair,
                      _: &mut StandardAlloc| (),
            );
            out.truncate(out_offset);
            if !ok {
                return Err(codec_error(
                    Encoding::Brotli,
                    "the encoder refused its input",
                ));
            }
            let done = if finishing {
                self.state.is_finished()
            } else {
                avail_in == 0 && !self.state.has_more_output()
            };
            if done {
                return Ok(());
            }
            room = room.saturating_mul(2);
        }
    }
}

impl Drop for Brotli {
    fn drop(&mut self) {
        BrotliEncoderDestroyInstance(&mut self.state);
    }
}

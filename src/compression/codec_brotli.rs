//! Brotli through the `brotli` crate's streaming encoder, called directly
//! so that the output lands in the connection's queue without a copy.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::io;

use brotli::enc::combined_alloc::BrotliAlloc;
use brotli::enc::encode::{
    BrotliEncoderDestroyInstance, BrotliEncoderOperation, BrotliEncoderParameter,
    BrotliEncoderStateStruct,
};
use brotli::enc::{Allocator, SliceWrapper, SliceWrapperMut};
use brotli::interface;

use super::{Encoding, codec_error};

pub(super) struct Brotli {
    state: BrotliEncoderStateStruct<Pool>,
}

/// The most the pool keeps, in bytes: what one flush of an ordinary event
/// needs as scratch (histograms, block splits, Huffman trees: under 20 KiB
/// for a 4 KB event). Beyond it freed blocks go back to the global
/// allocator, so a very large event leaves no large pool behind.
const MAX_POOLED_BYTES: usize = 24 * 1024;

/// At most this many free blocks are kept per element type.
const MAX_POOLED_BLOCKS: usize = 16;

/// The encoder's allocator: it keeps the blocks the encoder frees and
/// hands them out again, so that once a stream has warmed up, flushing an
/// event takes nothing from the global allocator. (Brotli allocates and
/// frees its per-meta-block scratch on every flush; with the standard
/// allocator that is a dozen allocations per event.)
#[derive(Default)]
struct Pool {
    /// Free blocks by element type: each value is a `Vec<Box<[T]>>`.
    free: HashMap<TypeId, Box<dyn Any + Send>>,
    /// The bytes of all the free blocks.
    pooled: usize,
}

/// A block from the pool: `len` elements of a buffer that may be longer.
struct Block<T> {
    buf: Box<[T]>,
    len: usize,
}

impl<T> Default for Block<T> {
    fn default() -> Self {
        Block {
            buf: Box::new([]),
            len: 0,
        }
    }
}

impl<T> SliceWrapper<T> for Block<T> {
    fn slice(&self) -> &[T] {
        &self.buf[..self.len]
    }
}

impl<T> SliceWrapperMut<T> for Block<T> {
    fn slice_mut(&mut self) -> &mut [T] {
        &mut self.buf[..self.len]
    }
}

impl<T: Clone + Default + Send + 'static> Allocator<T> for Pool {
    type AllocatedMemory = Block<T>;

    fn alloc_cell(&mut self, len: usize) -> Block<T> {
        if len == 0 {
            return Block::default();
        }
        if let Some(free) = self
            .free
            .get_mut(&TypeId::of::<T>())
            .and_then(|list| list.downcast_mut::<Vec<Box<[T]>>>())
        {
            // The smallest free block that fits.
            let fit = (0..free.len())
                .filter(|&i| free[i].len() >= len)
                .min_by_key(|&i| free[i].len());
            if let Some(i) = fit {
                let mut buf = free.swap_remove(i);
                self.pooled -= std::mem::size_of_val(&*buf);
                // As fresh as the standard allocator's.
                buf[..len].fill(T::default());
                return Block { buf, len };
            }
        }
        Block {
            buf: vec![T::default(); len].into_boxed_slice(),
            len,
        }
    }

    fn free_cell(&mut self, block: Block<T>) {
        let bytes = std::mem::size_of_val(&*block.buf);
        if block.buf.is_empty() || self.pooled + bytes > MAX_POOLED_BYTES {
            return;
        }
        let free = self
            .free
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(Vec::<Box<[T]>>::new()));
        if let Some(free) = free.downcast_mut::<Vec<Box<[T]>>>()
            && free.len() < MAX_POOLED_BLOCKS
        {
            free.push(block.buf);
            self.pooled += bytes;
        }
    }
}

impl BrotliAlloc for Pool {}

impl Brotli {
    pub(super) fn new(quality: u32, window_log: u32) -> Brotli {
        let mut state = BrotliEncoderStateStruct::new(Pool::default());
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
        // positions, 32 MiB per stream; 2^8 buckets of 16 positions (16 KiB)
        // still find the previous render on the repeated-morph workload
        // (200x, the same as the 32 MiB table), so a stream stays under
        // 300 KiB. Other qualities and windows choose their own hasher.
        state.params.hasher.bucket_bits = 8;
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
                      _: &mut Pool| (),
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

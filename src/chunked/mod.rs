//! HTTP/1.1 chunked transfer coding (RFC 9112 §7.1), both ways: [`encode`]
//! frames the events a connection writes, [`decode`] reads the chunked body
//! of a request.

pub(crate) mod decode;
mod encode;

pub(crate) use encode::{LAST_CHUNK, MAX_SIZE_LINE, begin, end, push_size_line, write_chunk};

//! The event stream that answers a request: framed for its HTTP version, and deciding whether
//! the connection carries another request. It lives on the request side so that the connection
//! module, which writes streams, never depends on how requests are read.

use super::{Request, Version};
use crate::connection::SseResponse;

impl SseResponse {
    /// The default head, framed for the client that sent `request`: chunked
    /// for HTTP/1.1, [close-delimited](SseResponse::close_delimited) for
    /// HTTP/1.0, which has no chunked coding.
    ///
    /// The response also decides whether the connection may carry another
    /// request once it is [finished](crate::SseConnection::finish): when it starts
    /// a body that ends with the connection (HTTP/1.0), or the client asked
    /// for `Connection: close`, the head says `Connection: close` and the
    /// request is marked (see [`Request::keep_alive`]), so the
    /// [`RequestReader`](crate::RequestReader) that read it returns
    /// `Ok(None)` rather than wait for a request that will never come.
    ///
    /// ```
    /// use dstar::{Request, SseResponse};
    ///
    /// let old = Request::parse(b"GET /events HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")?;
    /// let sse = SseResponse::for_request(&old).start(Vec::new())?;
    /// let head = String::from_utf8(sse.into_inner()).unwrap();
    /// assert!(head.contains("Connection: close\r\n"));
    /// assert!(!head.contains("Transfer-Encoding"));
    /// assert!(!old.keep_alive()); // the stream ends with the connection
    ///
    /// let new = Request::parse(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")?;
    /// let sse = SseResponse::for_request(&new).start(Vec::new())?;
    /// assert!(sse.finish()?.ends_with(b"0\r\n\r\n"));
    /// assert!(new.keep_alive()); // finished, the connection carries the next request
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// It also keeps the request's `Accept-Encoding`, for
    /// [`compression`](SseResponse::compression) to negotiate with.
    pub fn for_request(request: &Request) -> Self {
        let mut response = SseResponse::new();
        if request.version() == Version::Http10 {
            response = response.close_delimited();
        }
        response.answering(
            request.keep_alive(),
            request.closing_flag(),
            request.accept_encoding(),
        )
    }
}

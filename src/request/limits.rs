//! The bounds on what a client may send, and how slowly.

use std::time::Duration;

/// Bounds on what a client may send, and how slowly.
///
/// The defaults suit a Datastar server: requests are small, and signals are bounded to the same
/// 1 MiB the body is. Adjust them with the builder methods, which share the fields' names:
///
/// ```
/// use std::time::Duration;
/// use dstar::request::Limits;
///
/// let limits = Limits::default()
///     .max_body(64 * 1024)
///     .request_timeout(Some(Duration::from_secs(10)));
/// assert_eq!(limits.max_body, 64 * 1024);
/// assert_eq!(limits.max_head, 64 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The most bytes the request head (request line and header fields) may take, and the most
    /// the reader ever buffers. A chunked body's extensions and trailer fields count against the
    /// same budget, in total. Over it: 431 Request Header Fields Too Large. Default: 64 KiB.
    pub max_head: usize,
    /// The most header fields a request may carry. Over it: 431. Default: 100.
    pub max_headers: usize,
    /// The most bytes a body may decode to, whether framed by `Content-Length` or chunked.
    /// Over it: 413 Content Too Large, refused before the body is read when the length is
    /// declared up front. Default: 1 MiB.
    pub max_body: usize,
    /// How long one request may take to arrive in full, head and body, counted from its first
    /// byte; `None` for no limit. Checked before every read, so it catches clients that drip
    /// bytes slowly; see the [module documentation](crate::request#timeouts) for how it works
    /// with the socket's read timeout. Over it: 408 Request Timeout. Default: 30 seconds.
    pub request_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 64 * 1024,
            max_headers: 100,
            max_body: 1024 * 1024,
            request_timeout: Some(Duration::from_secs(30)),
        }
    }
}

impl Limits {
    /// Sets [`max_head`](Limits#structfield.max_head), the size limit of the request head.
    #[must_use]
    pub fn max_head(mut self, bytes: usize) -> Self {
        self.max_head = bytes;
        self
    }

    /// Sets [`max_headers`](Limits#structfield.max_headers), the limit on header fields.
    #[must_use]
    pub fn max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }

    /// Sets [`max_body`](Limits#structfield.max_body), the size limit of the decoded body.
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Sets [`request_timeout`](Limits#structfield.request_timeout), the deadline for a whole
    /// request.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }
}

//! The HTTP versions this crate speaks.

use std::fmt;

/// The HTTP version of a request.
///
/// ```
/// use dstar::request::{Request, Version};
///
/// let request = Request::parse(b"GET / HTTP/1.0\r\n\r\n")?;
/// assert_eq!(request.version(), Version::Http10);
/// assert_eq!(request.version().to_string(), "HTTP/1.0");
/// # Ok::<(), dstar::RequestError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Version {
    /// HTTP/1.0: connections close after each response unless the client asks otherwise.
    Http10,
    /// HTTP/1.1: connections stay open unless either side says `Connection: close`.
    Http11,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        })
    }
}

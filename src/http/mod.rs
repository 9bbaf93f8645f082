//! HTTP syntax shared by every side of the crate: the token and chunk
//! grammar, status codes, the `Date` format and the protocol versions.
//!
//! It depends on nothing but `std` (and the decimal writer of
//! [`event`](crate::event)), so the request reader, the response writers,
//! the event-stream connection and the test decoder can all use it without
//! depending on one another. What is public here is re-exported where users
//! have always found it: [`reason_phrase`] as `dstar::response::reason_phrase`,
//! [`Version`] as `dstar::request::Version`.

mod date;
mod status;
pub(crate) mod syntax;
mod version;

pub(crate) use date::push_http_date;
pub use status::reason_phrase;
pub(crate) use status::{forbids_content, is_informational};
pub use version::Version;

/// A short, escaped excerpt of client-sent bytes for an error message, which may end up in a
/// response body or a log.
pub(crate) fn snippet(bytes: &[u8]) -> String {
    const MAX: usize = 40;
    let shown = bytes.get(..MAX).unwrap_or(bytes);
    let mut text = shown.escape_ascii().to_string();
    if bytes.len() > MAX {
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_are_escaped_and_short() {
        assert_eq!(snippet(b"a\r\n\xff"), "a\\r\\n\\xff");
        assert_eq!(snippet(&[b'x'; 50]), format!("{}...", "x".repeat(40)));
    }
}

//! Status codes (RFC 9110 §15): their reason phrases, and which of them may
//! carry content.

/// The standard reason phrase for a status code, or `""` for codes without one here.
///
/// ```
/// assert_eq!(dstar::response::reason_phrase(431), "Request Header Fields Too Large");
/// ```
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Whether `status` is an interim response (1xx, RFC 9110 §15.2), which
/// only ever precedes the final response and has no content.
pub(crate) fn is_informational(status: u16) -> bool {
    (100..200).contains(&status)
}

/// Whether a final response with `status` must not carry content:
/// 204 No Content (RFC 9110 §15.3.5), 205 Reset Content (§15.3.6) and
/// 304 Not Modified (§15.4.5).
pub(crate) fn forbids_content(status: u16) -> bool {
    matches!(status, 204 | 205 | 304)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_without_content() {
        for status in [100, 101, 103, 199] {
            assert!(is_informational(status), "{status}");
        }
        for status in [99, 200, 204, 304] {
            assert!(!is_informational(status), "{status}");
        }
        for status in [204, 205, 304] {
            assert!(forbids_content(status), "{status}");
        }
        for status in [200, 201, 206, 301, 303, 404] {
            assert!(!forbids_content(status), "{status}");
        }
    }
}

//! Parsing a request head: the request line and header fields (with httparse), then the rules
//! RFC 9112 adds around them — one valid `Host`, a body framing no proxy could read differently,
//! and the `Expect` and `Connection` fields.

use super::message::{HeaderSpan, Span};
use super::{Limits, Request, RequestError, RequestErrorKind};
use crate::http::{Version, snippet, syntax};

/// How a request body is delimited.
pub(super) enum Framing {
    Length(usize),
    Chunked,
}

impl Request {
    /// Checks the `Host` rules of RFC 9112 §3.2.
    pub(super) fn check_host(&self) -> Result<(), RequestError> {
        let mut hosts = self.header_values("host");
        match (hosts.next(), hosts.count()) {
            (None, _) if self.version == Version::Http10 => Ok(()),
            (None, _) => Err(RequestError::new(
                RequestErrorKind::BadHost,
                "HTTP/1.1 request has no Host header",
            )),
            (Some(host), 0) if host.iter().all(|&b| is_host_byte(b)) => Ok(()),
            (Some(host), 0) => Err(RequestError::new(
                RequestErrorKind::BadHost,
                format!("Host header \"{}\" is not a valid host", snippet(host)),
            )),
            (Some(_), more) => Err(RequestError::new(
                RequestErrorKind::BadHost,
                format!("request has {} Host headers", more + 1),
            )),
        }
    }

    /// Works out how the body is framed (RFC 9112 §6.3), refusing anything ambiguous.
    pub(super) fn framing(&self, limits: &Limits) -> Result<Framing, RequestError> {
        let has_transfer_encoding = self.header_values("transfer-encoding").next().is_some();
        let lengths = self.header_values("content-length").count();
        if has_transfer_encoding {
            if self.version == Version::Http10 {
                return Err(RequestError::new(
                    RequestErrorKind::BadTransferEncoding,
                    "HTTP/1.0 request has a Transfer-Encoding header",
                ));
            }
            if lengths > 0 {
                return Err(RequestError::new(
                    RequestErrorKind::BadTransferEncoding,
                    "request has both Transfer-Encoding and Content-Length",
                ));
            }
            check_transfer_codings(self.header_values("transfer-encoding"))?;
            return Ok(Framing::Chunked);
        }
        match lengths {
            0 => Ok(Framing::Length(0)),
            1 => {
                let value = self
                    .header_values("content-length")
                    .next()
                    .unwrap_or_default();
                parse_content_length(value, limits.max_body).map(Framing::Length)
            }
            n => Err(RequestError::new(
                RequestErrorKind::BadContentLength,
                format!("request has {n} Content-Length headers"),
            )),
        }
    }

    /// Whether the client waits for `100 Continue` before sending the body.
    pub(super) fn expects_continue(&self) -> Result<bool, RequestError> {
        // RFC 9110 §10.1.1: a 100-continue expectation in an HTTP/1.0 request is ignored.
        if self.version == Version::Http10 {
            return Ok(false);
        }
        let mut expectations = self.header_values("expect");
        match (expectations.next(), expectations.next()) {
            (None, _) => Ok(false),
            (Some(value), None) if value.eq_ignore_ascii_case(b"100-continue") => Ok(true),
            (Some(value), _) => Err(RequestError::new(
                RequestErrorKind::ExpectationFailed,
                format!(
                    "expectation \"{}\" is not supported, only 100-continue",
                    snippet(value)
                ),
            )),
        }
    }

    pub(super) fn wants_keep_alive(&self) -> bool {
        let (mut close, mut keep_alive) = (false, false);
        for value in self.header_values("connection") {
            for option in value.split(|&b| b == b',') {
                let option = option.trim_ascii();
                close |= option.eq_ignore_ascii_case(b"close");
                keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        match self.version {
            Version::Http11 => !close,
            Version::Http10 => keep_alive && !close,
        }
    }
}

/// Whether `bytes` holds the empty line that ends a head, with either line ending.
pub(super) fn has_blank_line(bytes: &[u8]) -> bool {
    bytes
        .windows(2)
        .enumerate()
        .any(|(i, pair)| pair == b"\n\n" || (pair == b"\n\r" && bytes.get(i + 2) == Some(&b'\n')))
}

/// The parts of a complete head, as spans into the buffer it was parsed from.
pub(super) struct Head {
    pub(super) len: usize,
    pub(super) method: Span,
    pub(super) target: Span,
    pub(super) version: Version,
    pub(super) headers: Vec<HeaderSpan>,
}

pub(super) fn parse_head(data: &[u8], max_headers: usize) -> Result<Option<Head>, RequestError> {
    let mut slots = vec![httparse::EMPTY_HEADER; max_headers];
    let mut parsed = httparse::Request::new(&mut slots);
    let len = match parsed.parse(data) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(RequestError::new(
                RequestErrorKind::TooManyHeaders,
                format!("request has more than {max_headers} header fields"),
            ));
        }
        Err(httparse::Error::Version) => return Err(version_error(data)),
        Err(err) => {
            return Err(RequestError::new(
                RequestErrorKind::MalformedHead,
                format!("malformed request head: {err}"),
            ));
        }
    };
    let (Some(method), Some(target), Some(minor)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(RequestError::new(
            RequestErrorKind::MalformedHead,
            "malformed request head: incomplete request line",
        ));
    };
    let span = |part: &[u8]| {
        let start = part.as_ptr().addr() - data.as_ptr().addr();
        Span {
            start,
            end: start + part.len(),
        }
    };
    Ok(Some(Head {
        len,
        method: span(method.as_bytes()),
        target: span(target.as_bytes()),
        version: if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        },
        headers: parsed
            .headers
            .iter()
            .map(|header| HeaderSpan {
                name: span(header.name.as_bytes()),
                value: span(header.value),
            })
            .collect(),
    }))
}

/// httparse reports any bad version the same way; tell a well-formed but unsupported one
/// (`HTTP/2.0`, say) apart, since it deserves 505 rather than 400.
fn version_error(data: &[u8]) -> RequestError {
    let line = data
        .split(|&b| b == b'\n')
        .find(|line| !line.is_empty() && *line != b"\r")
        .unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // Only a request line of exactly three parts has a version to speak of: with a space in the
    // target, httparse takes part of the target for the version.
    let mut parts = line.split(|&b| b == b' ');
    let version = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some(version), None) => version,
        _ => b"",
    };
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit()
                && minor.is_ascii_digit()
                && !(*major == b'1' && (*minor == b'0' || *minor == b'1')) =>
        {
            RequestError::new(
                RequestErrorKind::UnsupportedVersion,
                format!(
                    "HTTP/{}.{} is not supported, only HTTP/1.0 and HTTP/1.1",
                    *major as char, *minor as char
                ),
            )
        }
        _ => RequestError::new(
            RequestErrorKind::MalformedHead,
            "malformed request head: invalid HTTP version",
        ),
    }
}

/// Checks that the transfer codings, across all `Transfer-Encoding` fields, are exactly
/// `chunked` (RFC 9112 §6.1, §6.3).
fn check_transfer_codings<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<(), RequestError> {
    let bad = |message: String| RequestError::new(RequestErrorKind::BadTransferEncoding, message);
    let mut codings = Vec::new();
    for value in values {
        for element in value.split(|&b| b == b',') {
            let element = element.trim_ascii();
            // RFC 9110 §5.6.1: empty list elements are allowed and mean nothing.
            if element.is_empty() {
                continue;
            }
            let name = element
                .split(|&b| b == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            if name.is_empty() || !name.iter().all(|&b| syntax::is_tchar(b)) {
                return Err(bad(format!(
                    "Transfer-Encoding \"{}\" is malformed",
                    snippet(value)
                )));
            }
            codings.push((name, element.len() != name.len()));
        }
    }
    let Some((&(last, last_has_parameters), earlier)) = codings.split_last() else {
        return Err(bad("Transfer-Encoding is empty".into()));
    };
    if !last.eq_ignore_ascii_case(b"chunked") {
        return Err(bad(format!(
            "the final transfer coding is \"{}\", not chunked, so the body has no reliable length",
            snippet(last)
        )));
    }
    if last_has_parameters {
        return Err(bad("the chunked transfer coding takes no parameters".into()));
    }
    for &(name, _) in earlier {
        if name.eq_ignore_ascii_case(b"chunked") {
            return Err(bad("chunked is applied more than once".into()));
        }
    }
    if let Some(&(name, _)) = earlier.first() {
        return Err(RequestError::new(
            RequestErrorKind::UnsupportedTransferEncoding,
            format!(
                "transfer coding \"{}\" is not supported, only chunked",
                snippet(name)
            ),
        ));
    }
    Ok(())
}

fn parse_content_length(value: &[u8], max_body: usize) -> Result<usize, RequestError> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(RequestError::new(
            RequestErrorKind::BadContentLength,
            format!(
                "Content-Length \"{}\" is not a decimal number",
                snippet(value)
            ),
        ));
    }
    let too_large = || {
        RequestError::new(
            RequestErrorKind::BodyTooLarge,
            format!(
                "Content-Length {} is larger than the {max_body}-byte limit",
                snippet(value)
            ),
        )
    };
    let mut length: usize = 0;
    for digit in value {
        length = length
            .checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(digit - b'0')))
            .ok_or_else(too_large)?;
    }
    if length > max_body {
        return Err(too_large());
    }
    Ok(length)
}

/// Bytes of `uri-host [ ":" port ]` (RFC 3986): reg-name, IP literals and percent-escapes.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%:[]".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_errors_distinguish_unsupported_from_malformed() {
        let cases: &[(&[u8], u16)] = &[
            (b"GET / HTTP/2.0\r\n\r\n", 505),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
            (b"\r\nGET / HTTP/0.9\r\nHost: x\r\n\r\n", 505),
            (b"GET / HTTP/1.1x\r\n\r\n", 400),
            (b"GET / FTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/11\r\n\r\n", 400),
            (b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            (b"GET /a HTTP/2.0 x\r\nHost: x\r\n\r\n", 400),
        ];
        for &(input, status) in cases {
            let err = Request::parse(input).unwrap_err();
            assert_eq!(
                err.status(),
                status,
                "{:?}: {err}",
                String::from_utf8_lossy(input)
            );
        }
    }
}

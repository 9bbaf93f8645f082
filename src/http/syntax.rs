//! Small pieces of HTTP grammar (RFC 9110, RFC 9112) shared by the request
//! reader, the chunked decoder, the response heads and the test decoder.

/// `tchar` (RFC 9110 §5.6.2): the bytes of a token, such as a field name.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether what follows a chunk size is
/// `*( BWS ";" BWS ext-name [ BWS "=" BWS ext-value ] )` (RFC 9112 §7.1.1).
pub(crate) fn chunk_extensions_are_valid(mut rest: &[u8]) -> bool {
    fn whitespace(bytes: &[u8]) -> usize {
        bytes
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count()
    }
    fn token(bytes: &[u8]) -> usize {
        bytes.iter().take_while(|&&b| is_tchar(b)).count()
    }
    while !rest.is_empty() {
        rest = &rest[whitespace(rest)..];
        let Some(after_semicolon) = rest.strip_prefix(b";") else {
            return false;
        };
        rest = &after_semicolon[whitespace(after_semicolon)..];
        let name = token(rest);
        if name == 0 {
            return false;
        }
        rest = &rest[name..];
        let before_equals = whitespace(rest);
        if let Some(after_equals) = rest[before_equals..].strip_prefix(b"=") {
            rest = &after_equals[whitespace(after_equals)..];
            let value = if rest.first() == Some(&b'"') {
                quoted_string_len(rest)
            } else {
                Some(token(rest)).filter(|&len| len > 0)
            };
            match value {
                Some(len) => rest = &rest[len..],
                None => return false,
            }
        }
    }
    true
}

/// The length of the quoted-string `bytes` starts with, or `None` if it is malformed.
fn quoted_string_len(bytes: &[u8]) -> Option<usize> {
    let mut i = 1;
    loop {
        match *bytes.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match *bytes.get(i + 1)? {
                b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => i += 2,
                _ => return None,
            },
            b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => i += 1,
            _ => return None,
        }
    }
}

/// Appends `n` in decimal.
pub(crate) fn push_decimal(buf: &mut Vec<u8>, n: u128) {
    buf.extend_from_slice(decimal(&mut [0u8; 39], n));
}

/// `n` in decimal, written at the end of `digits`.
pub(crate) fn decimal(digits: &mut [u8; 39], mut n: u128) -> &[u8] {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &digits[at..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_extensions() {
        for good in [
            &b""[..],
            b";a",
            b" ; a = b",
            b";a=\"q\\\"x\";b",
            b"\t;a\t=\tb",
        ] {
            assert!(chunk_extensions_are_valid(good), "{good:?}");
        }
        for bad in [
            &b";"[..],
            b"a",
            b";a=",
            b";a=\"open",
            b";a b",
            b";=b",
            b";a=\"\x01\"",
        ] {
            assert!(!chunk_extensions_are_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn tokens() {
        assert!(b"X-Accel-Buffering".iter().all(|&b| is_tchar(b)));
        assert!(!is_tchar(b' ') && !is_tchar(b':') && !is_tchar(b'"') && !is_tchar(0xe9));
    }

    #[test]
    fn decimals() {
        for n in [0u128, 7, 10, 999, 1000, u64::MAX as u128, u128::MAX] {
            let mut buf = Vec::new();
            push_decimal(&mut buf, n);
            assert_eq!(buf, n.to_string().as_bytes());
        }
    }
}

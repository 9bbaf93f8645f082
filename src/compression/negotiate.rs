//! Choosing a content coding from a request's `Accept-Encoding`
//! (RFC 9110 §12.5.3).
//!
//! The header is read leniently: an element that does not parse (a bad
//! `q`, a stray `;`, a token with odd bytes) is ignored rather than failing
//! the request, since a client that sends garbage still deserves an answer,
//! and the safe answer for anything unclear is the identity coding.

use super::Encoding;

/// A parsed weight in thousandths: `q=0.5` is 500, no `q` is 1000.
type Weight = u16;

const FULL: Weight = 1000;

/// Picks the coding to answer with: the acceptable coding (weight above 0)
/// the client weighs highest, ties broken by `preference` (the server's
/// order); `None` for the identity coding.
///
/// - No header at all, or an empty one, gets the identity coding: a client
///   that says nothing about codings may be a tool that cannot decode any.
/// - A coding named with `q=0` is refused; so is every coding not named,
///   unless `*` gives it a weight.
/// - `identity` wins only when the client weighs it strictly higher than
///   every coding we could send (`identity;q=1, br;q=0.5`). When the client
///   refuses `identity` too and accepts nothing we have, the identity coding
///   is sent anyway, as RFC 9110 allows ("disregard the header field"),
///   rather than failing a stream.
/// - Codings and `q` are matched without case; `x-gzip` counts as `gzip`
///   (RFC 9110 §8.4.1.3).
/// - Only codings compiled into this build ([`Encoding::is_available`]) are
///   considered; the first mention of a coding counts.
///
/// ```
/// use dstar::compression::{Encoding, negotiate};
///
/// let ours = [Encoding::Brotli, Encoding::Gzip];
/// # if Encoding::Brotli.is_available() && Encoding::Gzip.is_available() {
/// assert_eq!(negotiate(Some("gzip, deflate, br, zstd"), &ours), Some(Encoding::Brotli));
/// assert_eq!(negotiate(Some("br;q=0.5, gzip"), &ours), Some(Encoding::Gzip));
/// assert_eq!(negotiate(Some("br;q=0, *"), &ours), Some(Encoding::Gzip));
/// # }
/// assert_eq!(negotiate(Some("identity"), &ours), None);
/// assert_eq!(negotiate(None, &ours), None);
/// ```
pub fn negotiate(accept_encoding: Option<&str>, preference: &[Encoding]) -> Option<Encoding> {
    negotiate_among(accept_encoding, preference, Encoding::is_available)
}

/// [`negotiate`], with `available` saying which codings this build has.
pub(crate) fn negotiate_among(
    accept_encoding: Option<&str>,
    preference: &[Encoding],
    available: impl Fn(Encoding) -> bool,
) -> Option<Encoding> {
    let header = accept_encoding?;
    // The weight of each coding's first mention, by `Encoding as usize`.
    let mut named: [Option<Weight>; Encoding::ALL.len()] = [None; Encoding::ALL.len()];
    let mut identity: Option<Weight> = None;
    let mut star: Option<Weight> = None;
    for element in header.split(',') {
        let Some((coding, weight)) = parse_element(element) else {
            continue;
        };
        if coding.eq_ignore_ascii_case("identity") {
            identity.get_or_insert(weight);
        } else if coding == "*" {
            star.get_or_insert(weight);
        } else if let Some(encoding) = Encoding::from_token(coding) {
            named[encoding as usize].get_or_insert(weight);
        }
    }
    let mut best: Option<(Encoding, Weight)> = None;
    for &encoding in preference {
        if !available(encoding) {
            continue;
        }
        let weight = named[encoding as usize].or(star).unwrap_or(0);
        // Strictly greater: among equal weights the earlier preference wins.
        if weight > 0 && best.is_none_or(|(_, w)| weight > w) {
            best = Some((encoding, weight));
        }
    }
    let (encoding, weight) = best?;
    match identity.or(star) {
        Some(identity) if identity > weight => None,
        _ => Some(encoding),
    }
}

/// `coding *( OWS ";" OWS param )`, where the one parameter that counts is
/// `q`. `None` for anything that does not parse.
fn parse_element(element: &str) -> Option<(&str, Weight)> {
    let mut parts = element.split(';');
    let coding = parts.next()?.trim_matches([' ', '\t']);
    if coding.is_empty() || !(coding == "*" || coding.bytes().all(crate::syntax::is_tchar)) {
        return None;
    }
    let mut weight = FULL;
    for param in parts {
        let (name, value) = param.split_once('=')?;
        let name = name.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("q") {
            weight = parse_qvalue(value.trim_matches([' ', '\t']))?;
        } else if name.is_empty() || !name.bytes().all(crate::syntax::is_tchar) {
            return None;
        }
        // Other parameters are not defined for Accept-Encoding; a
        // well-formed one is ignored.
    }
    Some((coding, weight))
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in
/// thousandths.
fn parse_qvalue(value: &str) -> Option<Weight> {
    let (int, frac) = match value.split_once('.') {
        Some((int, frac)) => (int, frac),
        None => (value, ""),
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: Weight = 0;
    for (i, digit) in frac.bytes().enumerate() {
        thousandths += Weight::from(digit - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(FULL),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::{Brotli, Gzip, Zstd};

    /// Negotiation as if every coding were compiled in, so the table does
    /// not depend on the features of the test run.
    fn pick(header: Option<&str>, preference: &[Encoding]) -> Option<Encoding> {
        super::negotiate_among(header, preference, |_| true)
    }

    #[test]
    fn qvalues() {
        for (text, weight) in [
            ("0", Some(0)),
            ("0.", Some(0)),
            ("0.5", Some(500)),
            ("0.05", Some(50)),
            ("0.001", Some(1)),
            ("0.999", Some(999)),
            ("1", Some(1000)),
            ("1.", Some(1000)),
            ("1.000", Some(1000)),
            ("1.001", None),
            ("0.0001", None),
            ("2", None),
            ("-0", None),
            ("+1", None),
            (".5", None),
            ("", None),
            ("0.5x", None),
            ("1e0", None),
            ("0,5", None),
            ("٠.5", None),
        ] {
            assert_eq!(parse_qvalue(text), weight, "{text:?}");
        }
    }

    #[test]
    fn negotiation_table() {
        let all = [Brotli, Zstd, Gzip];
        let rows: &[(Option<&str>, &[Encoding], Option<Encoding>)] = &[
            // Nothing said: identity.
            (None, &all, None),
            (Some(""), &all, None),
            (Some("   "), &all, None),
            (Some(","), &all, None),
            // What browsers send: the server's order decides.
            (Some("gzip, deflate, br, zstd"), &all, Some(Brotli)),
            (
                Some("gzip, deflate, br, zstd"),
                &[Zstd, Brotli, Gzip],
                Some(Zstd),
            ),
            (
                Some("gzip, deflate, br"),
                &[Zstd, Brotli, Gzip],
                Some(Brotli),
            ),
            (Some("gzip, deflate"), &all, Some(Gzip)),
            (Some("deflate"), &all, None),
            (Some("compress, deflate, exi"), &all, None),
            // The client's weights beat the server's order.
            (Some("br;q=0.5, gzip"), &all, Some(Gzip)),
            (Some("br;q=0.5, gzip;q=0.6, zstd;q=0.4"), &all, Some(Gzip)),
            (Some("br;q=0.5, gzip;q=0.5"), &all, Some(Brotli)),
            (Some("br;q=0.5, gzip;q=0.5"), &[Gzip, Brotli], Some(Gzip)),
            (Some("br;q=0.001"), &all, Some(Brotli)),
            // Refusals.
            (Some("br;q=0"), &all, None),
            (Some("br;q=0, gzip"), &all, Some(Gzip)),
            (Some("br;q=0.000, gzip;q=0"), &all, None),
            (Some("*;q=0"), &all, None),
            (Some("*;q=0, gzip"), &all, Some(Gzip)),
            // The wildcard covers what is not named, and only that.
            (Some("*"), &all, Some(Brotli)),
            (Some("*"), &[Gzip], Some(Gzip)),
            (Some("br;q=0, *"), &all, Some(Zstd)),
            (Some("*;q=0.3, gzip;q=0.5"), &all, Some(Gzip)),
            (Some("*;q=0.6, gzip;q=0.5"), &all, Some(Brotli)),
            // identity: wins only when weighed strictly higher.
            (Some("identity"), &all, None),
            (Some("identity, br"), &all, Some(Brotli)),
            (Some("identity;q=1, br;q=0.5"), &all, None),
            (Some("identity;q=0.5, br;q=0.5"), &all, Some(Brotli)),
            (Some("identity;q=0, br"), &all, Some(Brotli)),
            // Refusing identity and everything we have still gets identity.
            (Some("identity;q=0, deflate"), &all, None),
            (Some("identity;q=0, *;q=0"), &all, None),
            (Some("*;q=0.5"), &all, Some(Brotli)),
            // Case, whitespace, x-gzip.
            (Some("BR"), &all, Some(Brotli)),
            (Some("Gzip;Q=0.5"), &all, Some(Gzip)),
            (Some("x-gzip"), &all, Some(Gzip)),
            (
                Some("  br \t ;  q=0.8  ,\tgzip ; q = 0.9 "),
                &all,
                Some(Gzip),
            ),
            (Some("ZSTD"), &all, Some(Zstd)),
            // The first mention counts.
            (Some("br;q=0, br"), &all, None),
            (Some("br, br;q=0"), &all, Some(Brotli)),
            // Garbage is ignored, element by element, never a panic.
            (Some("br;q=2"), &all, None),
            (Some("br;q=abc, gzip"), &all, Some(Gzip)),
            (Some("br;q=, gzip"), &all, Some(Gzip)),
            (Some("br;q"), &all, None),
            (Some("br;;q=1"), &all, None),
            (Some("br;level=5"), &all, Some(Brotli)),
            (Some("br;=5, gzip"), &all, Some(Gzip)),
            (Some("b r, gzip"), &all, Some(Gzip)),
            (Some("\"br\", gzip"), &all, Some(Gzip)),
            (Some("br;q=0.5;q=0"), &all, None),
            (Some(";q=1"), &all, None),
            (Some("brotli"), &all, None),
            (Some("bré, gzip"), &all, Some(Gzip)),
            (Some("\u{0}br"), &all, None),
            // No preference list: nothing to offer.
            (Some("br, gzip, zstd"), &[], None),
        ];
        for (header, preference, expected) in rows {
            assert_eq!(
                pick(*header, preference),
                *expected,
                "Accept-Encoding: {header:?}, preference {preference:?}"
            );
        }
    }

    proptest::proptest! {
        /// Whatever the header, no panic, and only a coding on offer that
        /// the client named (or covered with `*`) comes out.
        #[test]
        fn any_header_gives_an_offered_coding_the_client_named(
            header in "[ -~\\t\u{80}-\u{10ffff}]{0,60}|((br|gzip|zstd|x-gzip|identity|\\*|BR|deflate)(;q=[01](\\.[0-9]{0,4})?)?, ?){0,5}",
            order in proptest::sample::subsequence(vec![Brotli, Zstd, Gzip], 0..=3),
        ) {
            let chosen = pick(Some(&header), &order);
            if let Some(encoding) = chosen {
                proptest::prop_assert!(order.contains(&encoding));
                let lower = header.to_ascii_lowercase();
                proptest::prop_assert!(
                    lower.contains(encoding.token()) || lower.contains('*'),
                    "{:?} from {:?}", encoding, header
                );
            }
        }
    }

    #[test]
    fn unavailable_codings_are_never_chosen() {
        let only_gzip = |e: Encoding| e == Gzip;
        let negotiate = super::negotiate_among;
        assert_eq!(
            negotiate(Some("br, gzip"), &[Brotli, Gzip], only_gzip),
            Some(Gzip)
        );
        assert_eq!(negotiate(Some("br"), &[Brotli, Gzip], only_gzip), None);
        assert_eq!(negotiate(Some("*"), &[Brotli, Zstd], only_gzip), None);
    }
}

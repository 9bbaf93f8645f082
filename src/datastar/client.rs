//! Where pages load the Datastar browser client from.

use std::borrow::Cow;
use std::env::{self, VarError};
use std::io;

use crate::event::invalid_input;

/// The Datastar browser client this crate is tested against: the v1.0.1 bundle on the jsDelivr
/// CDN. It is the default of [`client_url`].
pub const CLIENT_URL: &str =
    "https://cdn.jsdelivr.net/gh/starfederation/datastar@1.0.1/bundles/datastar.js";

/// The environment variable [`client_url`] reads, `DATASTAR_CLIENT_URL`: set it to load the
/// client from somewhere else (a copy served by your own server, an intranet mirror, a
/// CSP-approved origin).
pub const CLIENT_URL_VAR: &str = "DATASTAR_CLIENT_URL";

/// The URL of the Datastar client for a page's `<script type="module" src="…">`:
/// `$DATASTAR_CLIENT_URL` when it is set and not empty, [`CLIENT_URL`] otherwise.
///
/// The value is ready for a double-quoted HTML attribute. A URL is refused with
/// [`io::ErrorKind::InvalidInput`] unless it consists of the characters RFC 3986 allows in a
/// URL (letters, digits, `-._~:/?#[]@!$&'()*+,;=` and `%`), so it can hold no quote, angle
/// bracket or white space; the one it may hold that HTML would read as markup, `&`, is written
/// `&amp;`, which the browser turns back into `&`.
///
/// Each example in this repository takes its page's client from here, which is how the browser
/// tests run them against a local copy of the client:
///
/// ```
/// let page = r#"<script type="module" src="CLIENT_URL"></script>"#
///     .replace("CLIENT_URL", &dstar::datastar::client_url()?);
/// # if std::env::var_os("DATASTAR_CLIENT_URL").is_none() {
/// assert_eq!(
///     page,
///     r#"<script type="module" src="https://cdn.jsdelivr.net/gh/starfederation/datastar@1.0.1/bundles/datastar.js"></script>"#
/// );
/// # }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn client_url() -> io::Result<Cow<'static, str>> {
    match env::var(CLIENT_URL_VAR) {
        Err(VarError::NotPresent) => Ok(Cow::Borrowed(CLIENT_URL)),
        Err(VarError::NotUnicode(_)) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{CLIENT_URL_VAR} is not valid UTF-8"),
        )),
        Ok(url) if url.is_empty() => Ok(Cow::Borrowed(CLIENT_URL)),
        Ok(url) => attribute_url(&url).map(Cow::Owned),
    }
}

/// `url` checked to hold only URL characters, with `&` escaped for an HTML attribute.
fn attribute_url(url: &str) -> io::Result<String> {
    if let Some(bad) = url.chars().find(|&c| !is_url_char(c)) {
        let problem = format!("holds {bad:?}, which a URL cannot contain unencoded");
        return Err(invalid_input(CLIENT_URL_VAR, url, &problem));
    }
    Ok(url.replace('&', "&amp;"))
}

fn is_url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_checked_and_made_safe_for_an_attribute() {
        assert_eq!(
            attribute_url("http://127.0.0.1:9000/js/datastar.js?v=1&x=2").unwrap(),
            "http://127.0.0.1:9000/js/datastar.js?v=1&amp;x=2"
        );
        assert_eq!(
            attribute_url("/static/datastar.js").unwrap(),
            "/static/datastar.js"
        );
        for bad in [
            "a\"b", "a<b", "a>b", "a b", "a\nb", "a`b", "é", "a\\b", "{x}",
        ] {
            let err = attribute_url(bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            assert!(err.to_string().contains(CLIENT_URL_VAR), "{err}");
        }
    }

    #[test]
    fn the_default_is_a_pinned_v1_release() {
        assert!(CLIENT_URL.starts_with("https://cdn.jsdelivr.net/gh/starfederation/datastar@1.0."));
        assert_eq!(attribute_url(CLIENT_URL).unwrap(), CLIENT_URL);
    }
}

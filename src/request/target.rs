//! The request target: the path to route on, and the query.

/// Splits a request target into the path to route on and the query, as
/// [`Request::path`] and [`Request::query`] do: for servers that hand you the
/// target as a string, such as tiny_http's `Request::url()`.
///
/// Route on the path, never on the whole target: Datastar sends the page's
/// signals in the query of every `GET` (`/feed?datastar=%7B%7D`). Both parts
/// stay percent-encoded; a target in absolute form
/// (`http://example.com/a?b`) loses its scheme and authority.
///
/// ```
/// use dstar::request::split_target;
///
/// assert_eq!(split_target("/clock?datastar=%7B%7D"), ("/clock", Some("datastar=%7B%7D")));
/// assert_eq!(split_target("/clock"), ("/clock", None));
/// assert_eq!(split_target("/a?"), ("/a", Some("")));
/// assert_eq!(split_target("http://example.com/a%20b?c=d"), ("/a%20b", Some("c=d")));
/// ```
///
/// [`Request::path`]: crate::Request::path
/// [`Request::query`]: crate::Request::query
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    (strip_scheme_and_authority(path), query)
}

/// Drops `scheme://authority` from a target in absolute form.
fn strip_scheme_and_authority(target: &str) -> &str {
    let Some((scheme, rest)) = target.split_once("://") else {
        return target;
    };
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme {
        return target;
    }
    rest.find('/').map_or("/", |slash| &rest[slash..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_form_targets_route_by_path() {
        assert_eq!(strip_scheme_and_authority("http://a.b/c/d"), "/c/d");
        assert_eq!(strip_scheme_and_authority("HTTPS://a.b"), "/");
        assert_eq!(strip_scheme_and_authority("/x://y"), "/x://y");
        assert_eq!(strip_scheme_and_authority("*"), "*");
        assert_eq!(strip_scheme_and_authority("1http://a/b"), "1http://a/b");
    }
}

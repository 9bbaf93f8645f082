//! Datastar's signals: the page's state, sent along with every request.

use std::borrow::Cow;

use super::{Request, RequestError, RequestErrorKind};
use crate::{json, percent};

impl Request {
    /// The Datastar signals the request carries, as JSON text checked to be well-formed.
    ///
    /// Datastar sends them, for `GET` and `DELETE`, URL-encoded in the `datastar` query
    /// parameter, and for every other method as the body. A missing parameter or an empty body
    /// means the request has no signals: `Ok(None)`. Text that is not well-formed JSON
    /// (RFC 8259, at most 127 levels deep), not UTF-8 or not validly percent-encoded is an
    /// [`RequestErrorKind::BadSignals`] error, answered with 400.
    ///
    /// ```
    /// use dstar::request::Request;
    ///
    /// let get = Request::parse(b"GET /?datastar=%7B%22count%22%3A1%7D HTTP/1.1\r\nHost: x\r\n\r\n")?;
    /// assert_eq!(get.signals()?.as_deref(), Some(r#"{"count":1}"#));
    ///
    /// let post = Request::parse(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n{\"count\":2}")?;
    /// assert_eq!(post.signals()?.as_deref(), Some(r#"{"count":2}"#));
    ///
    /// let none = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
    /// assert_eq!(none.signals()?, None);
    ///
    /// let broken = Request::parse(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"count\":}")?;
    /// let err = broken.signals().unwrap_err();
    /// assert_eq!(err.status(), 400);
    /// assert_eq!(err.to_string(), "signals are not valid JSON: invalid JSON at byte 9: expected a JSON value");
    /// # Ok::<(), dstar::request::RequestError>(())
    /// ```
    pub fn signals(&self) -> Result<Option<Cow<'_, str>>, RequestError> {
        let text = if self.signals_in_query() {
            let Some(raw) = self.raw_query_param("datastar") else {
                return Ok(None);
            };
            percent::decode_strict(raw).map_err(|err| {
                RequestError::new(
                    RequestErrorKind::BadSignals,
                    format!("the datastar query parameter is malformed: {err}"),
                )
            })?
        } else {
            let text = std::str::from_utf8(&self.body).map_err(|err| {
                RequestError::new(
                    RequestErrorKind::BadSignals,
                    format!(
                        "signals are not UTF-8: invalid byte at offset {}",
                        err.valid_up_to()
                    ),
                )
            })?;
            Cow::Borrowed(text)
        };
        if text.is_empty() {
            return Ok(None);
        }
        json::validate(&text).map_err(|err| {
            RequestError::new(
                RequestErrorKind::BadSignals,
                format!("signals are not valid JSON: {err}"),
            )
        })?;
        Ok(Some(text))
    }

    /// The signals deserialized into `T`; `Ok(None)` when the request has none.
    ///
    /// The text is found and checked as by [`signals`](Request::signals); a value that does not
    /// fit `T` is an [`RequestErrorKind::BadSignals`] error carrying serde_json's explanation.
    ///
    /// ```
    /// use dstar::request::Request;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Signals {
    ///     count: u32,
    /// }
    ///
    /// let request = Request::parse(b"GET /?datastar=%7B%22count%22%3A5%7D HTTP/1.1\r\nHost: x\r\n\r\n")?;
    /// let signals: Signals = request.signals_as()?.unwrap_or(Signals { count: 0 });
    /// assert_eq!(signals.count, 5);
    /// # Ok::<(), dstar::request::RequestError>(())
    /// ```
    #[cfg(feature = "serde")]
    pub fn signals_as<T: serde::de::DeserializeOwned>(&self) -> Result<Option<T>, RequestError> {
        let Some(text) = self.signals()? else {
            return Ok(None);
        };
        serde_json::from_str(&text).map(Some).map_err(|err| {
            RequestError::new(
                RequestErrorKind::BadSignals,
                format!("signals do not have the expected shape: {err}"),
            )
        })
    }

    fn signals_in_query(&self) -> bool {
        matches!(self.method(), "GET" | "DELETE")
    }
}

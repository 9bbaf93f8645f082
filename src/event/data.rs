//! Data lines: [`DataWriter`] and [`Lines`], which only ever write whole `data:` lines.

use std::io;

use super::validate::{check_single_line, find_line_break, skip_line_break};

/// Writes the data lines of one event into a buffer.
///
/// Every method produces whole `data:` lines: text is split at CR, LF and
/// CRLF, and single-line values that contain a line break are refused.
#[derive(Debug)]
pub struct DataWriter<'b> {
    pub(super) buf: &'b mut Vec<u8>,
}

impl DataWriter<'_> {
    /// Writes `text` as data: one `data:` line per line of text.
    ///
    /// An empty text is one empty `data:` line.
    pub fn text(&mut self, text: &str) {
        self.write_lines(b"", text.as_bytes());
    }

    /// Writes each line of `text` as `data: {prefix}{line}`.
    ///
    /// This is how Datastar's `elements <html>` lines are made. Refused with
    /// [`io::ErrorKind::InvalidInput`] if `prefix` contains a line break.
    pub fn prefixed(&mut self, prefix: &str, text: &str) -> io::Result<()> {
        check_single_line("data line prefix", prefix)?;
        self.write_lines(prefix.as_bytes(), text.as_bytes());
        Ok(())
    }

    /// Writes one line, `data: {prefix}{value}`, for a value that is a single
    /// line by nature (a CSS selector, a mode, a flag).
    ///
    /// Refused with [`io::ErrorKind::InvalidInput`] if either part contains
    /// CR or LF: splitting it would change its meaning.
    pub fn line(&mut self, prefix: &str, value: &str) -> io::Result<()> {
        check_single_line("data line prefix", prefix)?;
        check_single_line("single-line value", value)?;
        self.checked_line(prefix, value);
        Ok(())
    }

    /// Starts a run of data lines that each begin with `prefix`, for text that
    /// arrives in pieces; see [`Lines`].
    ///
    /// Refused with [`io::ErrorKind::InvalidInput`] if `prefix` contains a
    /// line break.
    pub fn lines<'p>(&mut self, prefix: &'p str) -> io::Result<Lines<'_, 'p>> {
        check_single_line("data line prefix", prefix)?;
        Ok(self.start_lines(prefix))
    }

    /// [`line`](DataWriter::line) for the crate's own constant prefixes and
    /// values already checked (or constant): nothing is scanned again. Debug
    /// builds check anyway, and the tests of every caller run in them.
    #[inline]
    pub(crate) fn checked_line(&mut self, prefix: &str, value: &str) {
        debug_assert!(find_line_break(prefix.as_bytes()).is_none());
        debug_assert!(find_line_break(value.as_bytes()).is_none());
        let buf = &mut *self.buf;
        buf.reserve(DATA.len() + prefix.len() + value.len() + 1);
        buf.extend_from_slice(DATA);
        buf.extend_from_slice(prefix.as_bytes());
        buf.extend_from_slice(value.as_bytes());
        buf.push(b'\n');
    }

    /// [`prefixed`](DataWriter::prefixed) for one of the crate's constant
    /// prefixes, which is not scanned again (debug builds check it).
    #[inline]
    pub(crate) fn constant_prefixed(&mut self, prefix: &'static str, text: &str) {
        debug_assert!(find_line_break(prefix.as_bytes()).is_none());
        self.write_lines(prefix.as_bytes(), text.as_bytes());
    }

    /// [`lines`](DataWriter::lines) for one of the crate's constant prefixes.
    pub(crate) fn constant_lines(&mut self, prefix: &'static str) -> Lines<'_, 'static> {
        debug_assert!(find_line_break(prefix.as_bytes()).is_none());
        self.start_lines(prefix)
    }

    /// [`lines`](DataWriter::lines) for a prefix known to be one line.
    fn start_lines<'p>(&mut self, prefix: &'p str) -> Lines<'_, 'p> {
        self.buf.extend_from_slice(DATA);
        self.buf.extend_from_slice(prefix.as_bytes());
        Lines {
            buf: self.buf,
            prefix: prefix.as_bytes(),
            after_cr: false,
        }
    }

    #[inline]
    fn write_lines(&mut self, prefix: &[u8], text: &[u8]) {
        write_lines(self.buf, DATA, prefix, text, find_line_break(text));
    }
}

/// Writes each line of `text` as `{data}{prefix}{line}\n`, given where its
/// first line break is (`first_break`, from a scan the caller made anyway):
/// each stretch of text is scanned once and copied once.
#[inline]
pub(super) fn write_lines(
    buf: &mut Vec<u8>,
    data: &[u8],
    prefix: &[u8],
    mut text: &[u8],
    first_break: Option<usize>,
) {
    // One reservation for text without line breaks; with them, a reservation
    // for all but the repeated line starts.
    buf.reserve(data.len() + prefix.len() + text.len() + 1);
    let mut at = first_break;
    loop {
        buf.extend_from_slice(data);
        buf.extend_from_slice(prefix);
        match at {
            None => {
                buf.extend_from_slice(text);
                buf.push(b'\n');
                return;
            }
            Some(end) => {
                buf.extend_from_slice(&text[..end]);
                buf.push(b'\n');
                text = skip_line_break(text, end);
                at = find_line_break(text);
            }
        }
    }
}

/// A run of `data:` lines sharing a prefix, fed text piece by piece.
///
/// Line breaks inside the pieces start new lines, exactly as if the pieces had
/// been one string: a CR at the end of one piece and an LF at the start of the
/// next are one break. The last line is ended when the `Lines` is dropped.
///
/// ```
/// use dstar::event::{format_event, DataWriter, Encode, EventMeta};
/// use std::io;
///
/// struct Quote<'a>(&'a str);
/// impl Encode for Quote<'_> {
///     fn meta(&self) -> EventMeta<'_> { EventMeta::new("quote") }
///     fn encode_data(&self, data: &mut DataWriter<'_>) -> io::Result<()> {
///         data.lines("> ")?.push("\u{201c}").push(self.0).push("\u{201d}");
///         Ok(())
///     }
/// }
/// assert_eq!(
///     format_event(&Quote("to be\r\nor not")).unwrap(),
///     "event: quote\ndata: > \u{201c}to be\ndata: > or not\u{201d}\n\n"
/// );
/// ```
#[derive(Debug)]
pub struct Lines<'b, 'p> {
    buf: &'b mut Vec<u8>,
    prefix: &'p [u8],
    /// The last byte pushed was a CR, so an LF that comes next belongs to it.
    after_cr: bool,
}

impl Lines<'_, '_> {
    /// Appends a piece of text, starting a new line at each line break.
    pub fn push(&mut self, piece: &str) -> &mut Self {
        let mut text = piece.as_bytes();
        if text.is_empty() {
            // An empty piece changes nothing: a CR before it still pairs
            // with an LF after it.
            return self;
        }
        if self.after_cr && text[0] == b'\n' {
            text = &text[1..];
        }
        // Also cleared when the piece was only the LF that completed a CRLF,
        // so that the next piece's LF is a break of its own.
        self.after_cr = text.last() == Some(&b'\r');
        if text.is_empty() {
            return self;
        }
        self.buf.reserve(text.len());
        while let Some(at) = find_line_break(text) {
            self.buf.extend_from_slice(&text[..at]);
            self.buf.push(b'\n');
            self.buf.extend_from_slice(DATA);
            self.buf.extend_from_slice(self.prefix);
            text = skip_line_break(text, at);
        }
        self.buf.extend_from_slice(text);
        self
    }
}

impl Drop for Lines<'_, '_> {
    fn drop(&mut self) {
        self.buf.push(b'\n');
    }
}

const DATA: &[u8] = b"data: ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_join_pieces_and_treat_split_crlf_as_one_break() {
        let mut buf = Vec::new();
        {
            let mut data = DataWriter { buf: &mut buf };
            data.lines("p ")
                .unwrap()
                .push("a\r")
                .push("\nb")
                .push("")
                .push("\r")
                .push("")
                .push("\n")
                .push("c\n");
        }
        // As one text: "a\r\nb\r\nc\n".
        assert_eq!(buf, b"data: p a\ndata: p b\ndata: p c\ndata: p \n");
    }

    fn pushed(pieces: &[&str]) -> Vec<u8> {
        let mut buf = Vec::new();
        {
            let mut data = DataWriter { buf: &mut buf };
            let mut lines = data.lines("p ").unwrap();
            for piece in pieces {
                lines.push(piece);
            }
        }
        buf
    }

    #[test]
    fn an_lf_after_a_split_crlf_is_a_break_of_its_own() {
        // "\r\n\n": a CRLF, then an LF; three lines, the last two empty.
        assert_eq!(pushed(&["\r", "\n", "\n"]), pushed(&["\r\n\n"]));
        assert_eq!(
            pushed(&["\r", "\n", "\n"]),
            b"data: p \ndata: p \ndata: p \n"
        );
        assert_eq!(
            pushed(&["a\r", "\n", "\nb"]),
            b"data: p a\ndata: p \ndata: p b\n"
        );
    }

    proptest::proptest! {
        /// However a text is cut into pieces, it makes the same lines.
        #[test]
        fn any_split_of_a_text_gives_the_same_lines(
            parts in proptest::collection::vec(
                proptest::sample::select(vec!["\r", "\n", "\r\n", "a", "", "b\r", "\nc"]),
                0..12,
            ),
            cuts in proptest::collection::vec(proptest::bool::ANY, 12),
        ) {
            let text = parts.concat();
            // Join neighbouring parts where `cuts` says not to cut.
            let mut pieces = vec![String::new()];
            for (part, cut) in parts.iter().zip(&cuts) {
                if *cut {
                    pieces.push(String::new());
                }
                pieces.last_mut().unwrap().push_str(part);
            }
            let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
            proptest::prop_assert_eq!(pushed(&pieces), pushed(&[text.as_str()]));
        }
    }

    #[test]
    fn prefixes_and_single_line_values_are_checked() {
        let mut buf = Vec::new();
        let mut data = DataWriter { buf: &mut buf };
        assert!(data.prefixed("x\n", "y").is_err());
        assert!(data.lines("x\r").is_err());
        assert!(data.line("mode ", "inner\r").is_err());
        data.line("mode ", "inner").unwrap();
        data.prefixed("elements ", "<a>\n</a>").unwrap();
        assert_eq!(
            buf,
            b"data: mode inner\ndata: elements <a>\ndata: elements </a>\n"
        );
    }
}

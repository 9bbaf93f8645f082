//! The checks that keep user text from breaking framing, and the line-break scan.

use std::io;

/// Refuses an event type that would end its own line.
pub fn check_event_type(event_type: &str) -> io::Result<()> {
    check_single_line("event type", event_type)
}

/// Refuses an event id that would end its own line, or that a browser would
/// ignore because it contains NUL.
pub fn check_id(id: &str) -> io::Result<()> {
    check_single_line("event id", id)?;
    if id.as_bytes().contains(&0) {
        return Err(invalid_input(
            "event id",
            id,
            "contains NUL, which browsers ignore",
        ));
    }
    Ok(())
}

/// Refuses a value that contains CR or LF.
///
/// `what` names the value in the error message.
pub(crate) fn check_single_line(what: &'static str, value: &str) -> io::Result<()> {
    if find_line_break(value.as_bytes()).is_some() {
        return Err(invalid_input(
            what,
            value,
            "contains a line break (CR or LF)",
        ));
    }
    Ok(())
}

pub(crate) fn invalid_input(what: &str, value: &str, problem: &str) -> io::Error {
    const SHOWN: usize = 40;
    let shown = match value.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{:?}...", &value[..end]),
        None => format!("{value:?}"),
    };
    crate::error::Refused::error(format!("{what} {shown} {problem}"))
}

/// Returns the index of the first CR or LF in `text`.
///
/// This scan runs over every byte of every event, so it is written for
/// speed in safe code: blocks of 64 bytes (32 for shorter text) are tested
/// with a branch-free fold that the compiler turns into SIMD compares, and
/// only a block with a hit is searched ([`find_in_block`]). A tail shorter
/// than a block is covered by one last block that overlaps bytes already
/// known to be clean.
#[inline]
pub(crate) fn find_line_break(text: &[u8]) -> Option<usize> {
    match text.len() {
        64.. => find_in_blocks::<64>(text),
        32.. => find_in_blocks::<32>(text),
        8.. => {
            let (words, _) = text.as_chunks::<8>();
            find_in_words(words).or_else(|| {
                let last = text.len() - 8;
                let word = text[last..].first_chunk::<8>()?;
                find_in_words(std::slice::from_ref(word)).map(|at| last + at)
            })
        }
        _ => text.iter().position(|&b| b == b'\n' || b == b'\r'),
    }
}

/// [`find_line_break`] for text of at least `N` bytes.
#[inline(always)]
fn find_in_blocks<const N: usize>(text: &[u8]) -> Option<usize> {
    let (blocks, tail) = text.as_chunks::<N>();
    for (k, block) in blocks.iter().enumerate() {
        if has_break(block) {
            return find_in_block(block).map(|at| k * N + at);
        }
    }
    if tail.is_empty() {
        return None;
    }
    let last = text.len() - N;
    let block = text[last..].first_chunk::<N>()?;
    if !has_break(block) {
        return None;
    }
    find_in_block(block).map(|at| last + at)
}

/// Whether a block holds CR or LF; written without early exit (an `any`
/// would stop at each byte) so that it compiles to vector compares. CR and
/// LF are folded apart: folded together, the compiler widens every byte to
/// test both at once, which takes twice the instructions.
#[inline(always)]
fn has_break<const N: usize>(block: &[u8; N]) -> bool {
    let lf = block.iter().fold(0u8, |hit, &b| hit | u8::from(b == b'\n'));
    let cr = block.iter().fold(0u8, |hit, &b| hit | u8::from(b == b'\r'));
    lf | cr != 0
}

/// Where the break in a block with one is: the first 16 bytes with a break
/// are found with vector tests, then searched a word at a time.
#[inline(always)]
fn find_in_block<const N: usize>(block: &[u8; N]) -> Option<usize> {
    let (pieces, _) = block.as_chunks::<16>();
    let mut at = 0;
    for piece in pieces {
        if has_break(piece) {
            return find_in_words(piece.as_chunks::<8>().0).map(|k| at + k);
        }
        at += 16;
    }
    None
}

/// A word at a time: a byte equal to CR or LF makes the matching byte of
/// `word ^ pattern` zero, and `(x - 0x01..) & !x & 0x80..` flags zero bytes.
/// The flag of the lowest zero byte is exact (borrows only run upwards), and
/// that is the only one read.
#[inline(always)]
fn find_in_words(words: &[[u8; 8]]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const LFS: u64 = u64::from_ne_bytes([b'\n'; 8]);
    const CRS: u64 = u64::from_ne_bytes([b'\r'; 8]);
    for (k, word) in words.iter().enumerate() {
        let word = u64::from_le_bytes(*word);
        let lf = word ^ LFS;
        let cr = word ^ CRS;
        let found = (lf.wrapping_sub(ONES) & !lf | cr.wrapping_sub(ONES) & !cr) & HIGHS;
        if found != 0 {
            return Some(k * 8 + (found.trailing_zeros() / 8) as usize);
        }
    }
    None
}

/// Returns the text after the line break at `at` (CRLF is one break).
pub(crate) fn skip_line_break(text: &[u8], at: usize) -> &[u8] {
    if text[at] == b'\r' && text.get(at + 1) == Some(&b'\n') {
        &text[at + 2..]
    } else {
        &text[at + 1..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_line_break_agrees_with_a_plain_scan() {
        let mut cases: Vec<Vec<u8>> = vec![vec![], b"\n".to_vec(), b"\r".to_vec()];
        // Every position of a break within and around a word boundary, with
        // neighbours that look like CR/LF to a sloppy bit trick.
        for len in (0..80).chain([95, 96, 97, 200, 221]) {
            for at in 0..len {
                for brk in [b'\n', b'\r'] {
                    for fill in [b'a', 0x0b, 0x0c, 0x8a, 0x8d, 0x00, 0xff, 0x09] {
                        let mut v = vec![fill; len];
                        v[at] = brk;
                        cases.push(v);
                    }
                }
            }
            cases.push(vec![b'x'; len]);
        }
        for case in cases {
            let expected = case.iter().position(|&b| b == b'\n' || b == b'\r');
            assert_eq!(find_line_break(&case), expected, "{case:?}");
        }
    }

    #[test]
    fn error_messages_name_the_value_and_stay_short() {
        let err = check_id(&format!("{}\n", "x".repeat(100))).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("event id \"xxxx"), "{message}");
        assert!(message.contains("line break"), "{message}");
        assert!(message.len() < 120, "{message}");
    }
}

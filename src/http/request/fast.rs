//! The header fields of an ordinary head in one pass: `Name: value CRLF` lines of
//! tokens and visible ASCII, then the empty line. httparse, the field-size check and
//! the bare-LF scan each went over the head again (with the request line, which
//! httparse parses a second time), about 700 of a hello request's 17.5k instructions.
//!
//! Only heads the full path would take as they are come through here; anything else
//! (a partial head, a bare LF, obsolete folding, whitespace before a colon, an empty
//! value, a byte outside visible ASCII, a field or head over the limits) gives `None`
//! and the full path (`parse_fields` and its diagnosis) decides, so a refusal reads as
//! it always did. A field's spans are exactly httparse's for the same bytes: the name,
//! and the value without the blanks around it (the tests hold the two to each other).

use super::{check_head_size, Fields, Limits, Span};
use crate::http::is_token_byte;

/// The fields of `buf[start..]` into `out` (emptied first), with the head's length
/// (through its empty line), or `None` for the full path to decide.
pub(super) fn fields(buf: &[u8], start: usize, limits: &Limits, out: &mut Fields) -> Option<usize> {
    out.clear();
    let mut at = start;
    loop {
        // The empty line ends the head.
        match buf.get(at..at + 2)? {
            b"\r\n" => break,
            _ if out.len() == limits.fields => return None,
            _ => {}
        }
        let name_start = at;
        let name_end = at + buf[at..].iter().position(|&b| !is_token_byte(b))?;
        if name_end == name_start || buf[name_end] != b':' {
            return None;
        }
        // The value's line up to its CR: blanks and visible ASCII only.
        let line = &buf[name_end + 1..];
        let cr = first_unplain(line)?;
        if line[cr] != b'\r' || *line.get(cr + 1)? != b'\n' {
            return None;
        }
        let value = line[..cr].trim_ascii();
        if value.is_empty() {
            return None;
        }
        at = name_end + 1 + cr + 2;
        // Gunicorn's measure: the whole line, its CRLF included.
        if at - name_start > limits.field_size {
            return None;
        }
        out.push((
            Span::within(buf, &buf[name_start..name_end]),
            Span::within(buf, value),
        ));
    }
    let consumed = at + 2;
    check_head_size(consumed, limits).ok()?;
    Some(consumed)
}

/// Where the first byte outside [`PLAIN_VALUE`] is in `bytes` (a value's CR, usually).
/// Eight bytes a step: a byte-by-byte look-up was ~8 instructions a byte, the largest
/// part of parsing a head whose values are a few dozen bytes.
pub(super) fn first_unplain(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        // A byte below 0x20 (a control byte: CR, tab...) or from 0x7f up sets its high
        // bit here. Borrows and carries only run towards later bytes, so the lowest set
        // bit is the first such byte, whatever the ones above it say.
        let below_space = word.wrapping_sub(ONES * 0x20) & !word;
        let from_del = word.wrapping_add(ONES) | word;
        let flagged = (below_space | from_del) & HIGH;
        if flagged == 0 {
            at += 8;
            continue;
        }
        let i = at + (flagged.trailing_zeros() / 8) as usize;
        if bytes[i] != b'\t' {
            return Some(i);
        }
        // A tab is plain: on from the byte after it.
        at = i + 1;
    }
    bytes[at..]
        .iter()
        .position(|&b| !PLAIN_VALUE[usize::from(b)])
        .map(|i| at + i)
}

/// Tab, space and visible ASCII: what a value of an ordinary head is made of (so its
/// only whitespace is what `trim_ascii` and httparse both trim: tab and space).
static PLAIN_VALUE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        table[b] = true;
        b += 1;
    }
    table[b'\t' as usize] = true;
    table
};

#[cfg(test)]
mod tests {
    use super::super::{bare_lf, check_field_sizes, line, parse_fields, FieldsParse};
    use super::*;

    /// Where the fast path takes a head, the full path takes it the same way: the same
    /// length, the same spans, and none of its checks refusing it.
    fn agrees(buf: &[u8], limits: &Limits) -> bool {
        let Ok(Some(line_end)) = line::find_end(buf, limits) else {
            return false;
        };
        let mut fast = Vec::new();
        let Some(n) = fields(buf, line_end + 2, limits, &mut fast) else {
            return false;
        };
        let mut full = Vec::new();
        match parse_fields(buf, limits, &mut full) {
            Ok(FieldsParse::Complete(m)) => assert_eq!(m, n, "{:?}", String::from_utf8_lossy(buf)),
            _ => panic!("full path refused {:?}", String::from_utf8_lossy(buf)),
        }
        let spans = |f: &Fields| -> Vec<(Vec<u8>, Vec<u8>)> {
            f.iter()
                .map(|&(a, b)| (a.of(buf).to_vec(), b.of(buf).to_vec()))
                .collect()
        };
        assert_eq!(
            spans(&fast),
            spans(&full),
            "{:?}",
            String::from_utf8_lossy(buf)
        );
        // The spans are the same places, not only the same bytes.
        for (a, b) in fast.iter().zip(&full) {
            assert_eq!(
                (a.0.start, a.1.start, a.1.end),
                (b.0.start, b.1.start, b.1.end)
            );
        }
        assert!(bare_lf(&buf[..n]).is_none());
        assert!(check_head_size(n, limits).is_ok());
        let mut hp = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; 128];
        let mut req = httparse::Request::new(&mut []);
        if let Ok(httparse::Status::Complete(_)) = req.parse_with_uninit_headers(buf, &mut hp) {
            assert!(check_field_sizes(buf, req.headers, n, limits).is_ok());
        }
        true
    }

    /// The word-at-a-time scan finds what the table finds, one byte at a time: every
    /// byte value at every place in lines of 1 to 20 bytes, after plain bytes, tabs and
    /// high plain bytes (`~`, whose carries are next to DEL's).
    #[test]
    fn the_word_scan_finds_the_first_unplain_byte_as_the_table_does() {
        let by_table = |bytes: &[u8]| bytes.iter().position(|&b| !PLAIN_VALUE[usize::from(b)]);
        for len in 1..=20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    for fill in [b'a', b'\t', b'~', b' '] {
                        let mut line = vec![fill; len];
                        line[at] = b;
                        assert_eq!(first_unplain(&line), by_table(&line), "{line:?}");
                        // Another unplain byte after it changes nothing.
                        line.push(b'\r');
                        assert_eq!(first_unplain(&line), by_table(&line), "{line:?}");
                    }
                }
            }
        }
        assert_eq!(first_unplain(b""), None);
        assert_eq!(first_unplain(b"text/html;\tq=0.9\r\n"), Some(16));
    }

    #[test]
    fn ordinary_heads_take_the_fast_path_as_the_full_path_would() {
        let l = Limits::default();
        for head in [
            &b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET /a?b HTTP/1.0\r\nHost:x\r\nAccept: */*\r\nUser-Agent: a b\t c \t \r\n\r\n",
            b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            b"GET / HTTP/1.1\r\nX:\t \tv\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        ] {
            assert!(agrees(head, &l), "{:?}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn anything_unusual_is_left_to_the_full_path() {
        let l = Limits::default();
        for head in [
            &b"GET / HTTP/1.1\r\nHost: localhost\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r",
            b"GET / HTTP/1.1\r\nHost: local\nhost\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: localhost\n\r\n",
            b"GET / HTTP/1.1\r\nHost : localhost\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost:  \r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: caf\xc3\xa9\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",
            b"GET / HTTP/1.1\r\n: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nA b: c\r\n\r\n",
            b"GET / HTTP/1.1\r\n\n",
        ] {
            let line_end = line::find_end(head, &l).unwrap().unwrap();
            assert_eq!(
                fields(head, line_end + 2, &l, &mut Vec::new()),
                None,
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn heads_over_the_limits_are_left_to_the_full_path() {
        let head = b"GET / HTTP/1.1\r\nA: 1\r\nBb: 22\r\n\r\n";
        let end = 14;
        let mut l = Limits::default();
        assert_eq!(fields(head, end + 2, &l, &mut Vec::new()), Some(head.len()));
        l.fields = 1;
        assert_eq!(fields(head, end + 2, &l, &mut Vec::new()), None);
        l.fields = 2;
        l.field_size = 7; // "Bb: 22\r\n" is 8
        assert_eq!(fields(head, end + 2, &l, &mut Vec::new()), None);
        l.field_size = 8;
        assert!(agrees(head, &l));
    }

    /// Every head made of a small alphabet of the bytes that matter, up to a length:
    /// wherever the fast path answers, the full path answers the same.
    #[test]
    fn the_fast_path_agrees_with_the_full_path_on_every_small_head() {
        let alphabet: &[u8] = b"a:- \t\r\n\x01\x80";
        let l = Limits::default();
        let prefix = b"GET / HTTP/1.1\r\n";
        let mut taken = 0;
        let mut tail = Vec::new();
        for len in 0..=6u32 {
            for mut code in 0..(alphabet.len() as u64).pow(len) {
                tail.clear();
                for _ in 0..len {
                    tail.push(alphabet[(code % alphabet.len() as u64) as usize]);
                    code /= alphabet.len() as u64;
                }
                let mut head = prefix.to_vec();
                head.extend_from_slice(&tail);
                head.extend_from_slice(b"\r\n\r\n");
                taken += usize::from(agrees(&head, &l));
                // And cut short, where the full path has to wait or answer the same.
                agrees(&head[..head.len() - 1], &l);
            }
        }
        assert!(taken > 100, "{taken}");
    }
}

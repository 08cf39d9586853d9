//! Cleartext HTTP/2 (h2c): the pure decisions, as Gunicorn 27 makes them
//! (`gunicorn/http2/negotiation.py`): whether bytes are the client's connection
//! preface (prior knowledge, RFC 9113 §3.4), whether an HTTP/1.1 request is a
//! well-formed `Upgrade: h2c` (RFC 7540 §3.2), and the HEADERS frame that opens
//! stream 1 for an upgraded request (see [`crate::worker::h2conn`]). The worker does
//! the I/O (`worker/conn/h2c.rs`).

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

use super::request::Head;

/// The client's connection preface.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The budget for the whole preface, from its first bytes (`H2C_PREFACE_TIMEOUT`).
pub const PREFACE_TIMEOUT_MS: u64 = 1000;

/// Largest HTTP/1 body of an upgrade request (`H2C_UPGRADE_BODY_LIMIT`): it is held
/// in memory until stream 1 is served.
pub const UPGRADE_BODY_LIMIT: u64 = 65536;

/// The answer to an accepted upgrade, before the server's SETTINGS.
pub const UPGRADE_101: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";

/// How far bytes go toward the preface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preface {
    /// The whole preface is there.
    Match,
    /// A prefix of it: more may come.
    Partial,
    /// A byte differs: this is not HTTP/2.
    Mismatch,
}

/// Compares buffered bytes with the preface (Gunicorn's `preface_match`).
pub fn preface_match(buf: &[u8]) -> Preface {
    if buf.len() >= PREFACE.len() {
        if buf.starts_with(PREFACE) {
            Preface::Match
        } else {
            Preface::Mismatch
        }
    } else if PREFACE.starts_with(buf) {
        Preface::Partial
    } else {
        Preface::Mismatch
    }
}

/// Gunicorn's log text for a peer that should have sent the preface and did not:
/// `Expected HTTP/2 connection preface, got b'…'` (at most the preface's length of
/// bytes, as Gunicorn reads no more).
pub fn preface_error(got: &[u8]) -> String {
    let got = &got[..got.len().min(PREFACE.len())];
    format!(
        "Expected HTTP/2 connection preface, got {}",
        python_bytes_repr(got)
    )
}

/// Python's `repr()` of a `bytes` object.
pub fn python_bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = format!("b{quote}");
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if char::from(b) == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote);
    out
}

/// The `HTTP2-Settings` payload when `head` is a well-formed h2c upgrade request
/// (Gunicorn's `upgrade_settings`): `Upgrade` exactly `h2c`, exactly one
/// `HTTP2-Settings`, `Connection` naming `upgrade` and `http2-settings`, HTTP/1.1,
/// `Content-Length` at most [`UPGRADE_BODY_LIMIT`], and valid settings. `None`: serve
/// the request as HTTP/1, no error.
pub fn upgrade_settings(head: &Head) -> Option<Vec<u8>> {
    let mut upgrade = None;
    let mut settings = Vec::new();
    let mut connection = String::new();
    let mut length_ok = true;
    for (name, value) in head.fields() {
        let value = String::from_utf8_lossy(value);
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade = Some(value.trim().to_ascii_lowercase());
        } else if name.eq_ignore_ascii_case("http2-settings") {
            settings.push(value.trim().to_string());
        } else if name.eq_ignore_ascii_case("connection") {
            connection = value.to_ascii_lowercase();
        } else if name.eq_ignore_ascii_case("content-length") {
            length_ok = value
                .trim()
                .parse::<u64>()
                .is_ok_and(|n| n <= UPGRADE_BODY_LIMIT);
        }
    }
    if upgrade.as_deref() != Some("h2c") || settings.len() != 1 {
        return None;
    }
    let tokens: Vec<&str> = connection.split(',').map(str::trim).collect();
    if !tokens.contains(&"http2-settings") || !tokens.contains(&"upgrade") {
        return None;
    }
    if head.minor_version < 1 || !length_ok {
        return None;
    }
    decode_settings(&settings[0])
}

/// Decodes a base64url `HTTP2-Settings` value and checks its values
/// (Gunicorn's `_settings_payload_valid`): whole 6-byte entries, ENABLE_PUSH 0 or 1,
/// INITIAL_WINDOW_SIZE ≤ 2^31-1, MAX_FRAME_SIZE in 16384..=16777215.
pub fn decode_settings(text: &str) -> Option<Vec<u8>> {
    let engine = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let raw = engine.decode(text).ok()?;
    if raw.len() % 6 != 0 {
        return None;
    }
    for entry in raw.chunks_exact(6) {
        let code = u16::from_be_bytes([entry[0], entry[1]]);
        let value = u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]);
        let bad = match code {
            2 => value > 1,
            4 => value > i32::MAX as u32,
            5 => !(16384..=16_777_215).contains(&value),
            _ => false,
        };
        if bad {
            return None;
        }
    }
    Some(raw)
}

/// A HEADERS frame for stream 1 (END_STREAM, END_HEADERS) carrying `pseudo` as HPACK
/// literals *without indexing*, so the server's decoder table stays as the client's
/// encoder assumes (it never sent this frame). `None` when the block exceeds
/// `max_frame` (then the request is not upgraded).
pub fn stream1_headers(pseudo: &[(&str, &str)], max_frame: u32) -> Option<Vec<u8>> {
    let mut block = Vec::new();
    for (name, value) in pseudo {
        block.push(0x00);
        hpack_string(&mut block, name.as_bytes());
        hpack_string(&mut block, value.as_bytes());
    }
    if block.len() > max_frame as usize {
        return None;
    }
    let len = block.len() as u32;
    let mut frame = len.to_be_bytes()[1..].to_vec();
    frame.push(0x1); // HEADERS
    frame.push(0x1 | 0x4); // END_STREAM | END_HEADERS
    frame.extend_from_slice(&1u32.to_be_bytes());
    frame.extend_from_slice(&block);
    Some(frame)
}

/// An HPACK string literal, not Huffman-coded (RFC 7541 §5.2), with its 7-bit-prefix
/// length (§5.1).
fn hpack_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut n = bytes.len();
    if n < 127 {
        out.push(n as u8);
    } else {
        out.push(127);
        n -= 127;
        while n >= 128 {
            out.push((n % 128) as u8 | 0x80);
            n /= 128;
        }
        out.push(n as u8);
    }
    out.extend_from_slice(bytes);
}

/// Where, in bytes the client sent after the 101, stream 1's HEADERS go: after the
/// preface and the client's first frame (its SETTINGS, which h2 must read first).
/// `None` until all of those have arrived.
pub fn after_first_frame(buf: &[u8]) -> Option<usize> {
    let header = buf.get(PREFACE.len()..PREFACE.len() + 9)?;
    let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    let end = PREFACE.len() + 9 + len;
    (buf.len() >= end).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{parse_head, Limits};

    fn head(text: &str) -> Head {
        parse_head(text.as_bytes(), &Limits::default())
            .unwrap()
            .unwrap()
            .0
    }

    const UPGRADE: &str = "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                           Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n";

    #[test]
    fn the_preface_matches_whole_partial_or_not_at_all() {
        assert_eq!(preface_match(PREFACE), Preface::Match);
        let mut more = PREFACE.to_vec();
        more.extend_from_slice(b"\0\0\0\x04");
        assert_eq!(preface_match(&more), Preface::Match);
        assert_eq!(preface_match(b""), Preface::Partial);
        assert_eq!(preface_match(b"PRI * HTTP/2"), Preface::Partial);
        assert_eq!(preface_match(b"GET / HTTP/1.1\r\n"), Preface::Mismatch);
        assert_eq!(preface_match(b"PRX"), Preface::Mismatch);
        assert_eq!(
            preface_match(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\r"),
            Preface::Mismatch
        );
    }

    #[test]
    fn the_log_text_is_gunicorns_with_pythons_repr() {
        assert_eq!(
            preface_error(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            "Expected HTTP/2 connection preface, got b'GET / HTTP/1.1\\r\\nHost: a\\r'"
        );
        assert_eq!(python_bytes_repr(b""), "b''");
        assert_eq!(python_bytes_repr(b"it's"), "b\"it's\"");
        assert_eq!(python_bytes_repr(b"'\"\\\0\xff"), "b'\\'\"\\\\\\x00\\xff'");
    }

    #[test]
    fn a_well_formed_upgrade_gives_its_settings() {
        let settings = upgrade_settings(&head(&format!("{UPGRADE}\r\n"))).unwrap();
        assert_eq!(settings.len(), 18);
        let small_body = format!("{UPGRADE}Content-Length: 65536\r\n\r\n");
        assert!(upgrade_settings(&head(&small_body)).is_some());
        let lower = UPGRADE.replace("Upgrade: h2c", "upgrade:  H2C ");
        assert!(upgrade_settings(&head(&format!("{lower}\r\n"))).is_some());
    }

    #[test]
    fn anything_else_stays_http1() {
        let cases = [
            UPGRADE.replace("h2c\r", "h2\r"),
            UPGRADE.replace("Upgrade, HTTP2-Settings", "Upgrade"),
            UPGRADE.replace("Connection: Upgrade, ", "Connection: "),
            UPGRADE.replace("HTTP/1.1", "HTTP/1.0"),
            format!("{UPGRADE}HTTP2-Settings: AAMAAABk\r\n"),
            UPGRADE.replace("HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n", ""),
            format!("{UPGRADE}Content-Length: 65537\r\n"),
            UPGRADE.replace("AAMAAABkAAQAoAAAAAIAAAAA", "AAMAAABkAAQ"),
            UPGRADE.replace("AAMAAABkAAQAoAAAAAIAAAAA", "AAM!AABk"),
        ];
        for case in cases {
            assert_eq!(
                upgrade_settings(&head(&format!("{case}\r\n"))),
                None,
                "{case}"
            );
        }
    }

    #[test]
    fn settings_values_are_checked() {
        let b64 = |raw: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(decode_settings(""), Some(Vec::new()));
        assert!(decode_settings(&b64(&[0, 2, 0, 0, 0, 1])).is_some());
        assert!(decode_settings(&b64(&[0, 2, 0, 0, 0, 2])).is_none());
        assert!(decode_settings(&b64(&[0, 4, 0x7f, 0xff, 0xff, 0xff])).is_some());
        assert!(decode_settings(&b64(&[0, 4, 0x80, 0, 0, 0])).is_none());
        assert!(decode_settings(&b64(&[0, 5, 0, 0, 0x40, 0])).is_some());
        assert!(decode_settings(&b64(&[0, 5, 0, 0, 0x3f, 0xff])).is_none());
        assert!(decode_settings(&b64(&[0, 5, 1, 0, 0, 0])).is_none());
        assert!(decode_settings(&b64(&[0, 9, 0xff, 0xff, 0xff, 0xff])).is_some());
        // Padded, and with `+`/`/` (not base64url): Python's b64decode(validate=True).
        assert!(decode_settings("AAIAAAAB").is_some());
        assert!(decode_settings("AAIAAA+B").is_none());
    }

    #[test]
    fn stream1_headers_are_literals_without_indexing() {
        let frame = stream1_headers(&[(":method", "GET"), (":path", "/")], 16384).unwrap();
        assert_eq!(&frame[..9], &[0, 0, 22, 1, 5, 0, 0, 0, 1]);
        assert_eq!(&frame[9..], b"\0\x07:method\x03GET\0\x05:path\x01/");
        let long = "/".repeat(300);
        let frame = stream1_headers(&[(":path", &long)], 16384).unwrap();
        assert_eq!(&frame[9..19], b"\0\x05:path\x7f\xad\x01");
        assert!(stream1_headers(&[(":path", &"/".repeat(20000))], 16384).is_none());
    }

    #[test]
    fn stream1_goes_after_the_clients_first_frame() {
        let mut bytes = PREFACE.to_vec();
        assert_eq!(after_first_frame(&bytes), None);
        bytes.extend_from_slice(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0]);
        assert_eq!(after_first_frame(&bytes), None);
        bytes.extend_from_slice(&[0, 100, 0, 0]);
        assert_eq!(after_first_frame(&bytes), Some(39));
    }
}

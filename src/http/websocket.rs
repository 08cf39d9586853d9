//! WebSocket (RFC 6455) without Python: the opening handshake's checks and answer,
//! frame parsing (a pure function of bytes, fuzzable), message reassembly with UTF-8
//! validation, close-frame rules, and frame writing. No extensions are negotiated, so
//! any RSV bit is a protocol error.

use base64::Engine;

/// The GUID of RFC 6455 §1.3, appended to the client's key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why the connection must be closed, with the close code to send (RFC 6455 §7.4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsError {
    pub code: u16,
    pub reason: &'static str,
}

const fn protocol(reason: &'static str) -> WsError {
    WsError { code: 1002, reason }
}

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// One frame from the client, unmasked.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// `Sec-WebSocket-Accept` for the client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut input = key.trim().as_bytes().to_vec();
    input.extend_from_slice(GUID.as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// Whether a request head asks for a WebSocket (RFC 6455 §4.2.1): GET, HTTP/1.1,
/// `Upgrade: websocket`, `Connection` with the `upgrade` token.
pub fn is_upgrade(
    method: &str,
    minor_version: u8,
    upgrade: Option<&[u8]>,
    connection: &[&[u8]],
) -> bool {
    let has_token = |v: &[u8], token: &str| {
        v.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    };
    method == "GET"
        && minor_version == 1
        && upgrade.is_some_and(|u| has_token(u, "websocket"))
        && connection.iter().any(|c| has_token(c, "upgrade"))
}

/// Checks the handshake's key and version; the error is the reason for a 400.
pub fn check_handshake(key: Option<&[u8]>, version: Option<&[u8]>) -> Result<String, &'static str> {
    if version.map(<[u8]>::trim_ascii) != Some(b"13") {
        return Err("Sec-WebSocket-Version must be 13");
    }
    let key = key.ok_or("no Sec-WebSocket-Key")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(key.trim_ascii())
        .map_err(|_| "Sec-WebSocket-Key is not base64")?;
    if decoded.len() != 16 {
        return Err("Sec-WebSocket-Key must be 16 bytes");
    }
    Ok(accept_key(std::str::from_utf8(key).unwrap_or_default()))
}

/// Parses one frame from the start of `buf`: `Ok(None)` when more bytes are needed,
/// else the frame and how many bytes it took. `max_payload` bounds one frame's
/// payload (1009 beyond it).
pub fn parse_frame(buf: &[u8], max_payload: u64) -> Result<Option<(Frame, usize)>, WsError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    let fin = b0 & 0x80 != 0;
    if b0 & 0x70 != 0 {
        return Err(protocol("reserved bits set without an extension"));
    }
    let opcode = b0 & 0x0f;
    if !matches!(
        opcode,
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
    ) {
        return Err(protocol("reserved opcode"));
    }
    if b1 & 0x80 == 0 {
        return Err(protocol("client frames must be masked"));
    }
    let (len, mut at) = match b1 & 0x7f {
        126 if buf.len() < 4 => return Ok(None),
        126 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() < 10 => return Ok(None),
        127 => {
            let len = u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes"));
            if len >> 63 != 0 {
                return Err(protocol("payload length with its top bit set"));
            }
            (len, 10)
        }
        n => (u64::from(n), 2),
    };
    if opcode >= OP_CLOSE && (!fin || len > 125) {
        return Err(protocol("control frames are single and at most 125 bytes"));
    }
    if len > max_payload {
        return Err(WsError {
            code: 1009,
            reason: "message too big",
        });
    }
    if buf.len() < at + 4 {
        return Ok(None);
    }
    let mask: [u8; 4] = buf[at..at + 4].try_into().expect("4 bytes");
    at += 4;
    let end = at + len as usize;
    if buf.len() < end {
        return Ok(None);
    }
    let payload = buf[at..end]
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    Ok(Some((
        Frame {
            fin,
            opcode,
            payload,
        },
        end,
    )))
}

/// A complete message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    /// The client's close frame: its code (1005 when it gave none) and reason.
    Close(u16, String),
}

/// Reassembles fragmented messages; validates text as UTF-8 as fragments arrive (so
/// an invalid sequence fails fast) and close frames' codes and reasons.
#[derive(Default)]
pub struct Assembler {
    /// The opcode and bytes of a fragmented message in progress.
    partial: Option<(u8, Vec<u8>)>,
    max_message: u64,
}

impl Assembler {
    pub fn new(max_message: u64) -> Assembler {
        Assembler {
            partial: None,
            max_message,
        }
    }

    /// Takes one frame: a complete message, `None` for a fragment, or the error that
    /// ends the connection.
    pub fn push(&mut self, frame: Frame) -> Result<Option<Message>, WsError> {
        match frame.opcode {
            OP_PING => Ok(Some(Message::Ping(frame.payload))),
            OP_PONG => Ok(Some(Message::Pong)),
            OP_CLOSE => close_message(&frame.payload).map(Some),
            OP_CONTINUATION => {
                let Some((opcode, mut data)) = self.partial.take() else {
                    return Err(protocol("continuation frame without a message"));
                };
                data.extend_from_slice(&frame.payload);
                self.data(opcode, data, frame.fin)
            }
            opcode => {
                if self.partial.is_some() {
                    return Err(protocol("new message inside a fragmented one"));
                }
                self.data(opcode, frame.payload, frame.fin)
            }
        }
    }

    fn data(&mut self, opcode: u8, data: Vec<u8>, fin: bool) -> Result<Option<Message>, WsError> {
        if data.len() as u64 > self.max_message {
            return Err(WsError {
                code: 1009,
                reason: "message too big",
            });
        }
        if opcode == OP_TEXT {
            check_utf8_prefix(&data, fin)?;
        }
        if !fin {
            self.partial = Some((opcode, data));
            return Ok(None);
        }
        Ok(Some(match opcode {
            OP_TEXT => Message::Text(String::from_utf8(data).expect("checked above")),
            _ => Message::Binary(data),
        }))
    }
}

const INVALID_UTF8: WsError = WsError {
    code: 1007,
    reason: "text is not valid UTF-8",
};

/// Text so far is valid UTF-8, or (not final) a valid prefix cut inside a character.
fn check_utf8_prefix(data: &[u8], fin: bool) -> Result<(), WsError> {
    match std::str::from_utf8(data) {
        Ok(_) => Ok(()),
        Err(e) if !fin && e.error_len().is_none() => Ok(()),
        Err(_) => Err(INVALID_UTF8),
    }
}

/// A close frame's payload: empty (1005), or a valid code and a UTF-8 reason.
fn close_message(payload: &[u8]) -> Result<Message, WsError> {
    match payload.len() {
        0 => Ok(Message::Close(1005, String::new())),
        1 => Err(protocol("close frame with a one-byte payload")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !valid {
                return Err(protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(&payload[2..]).map_err(|_| INVALID_UTF8)?;
            Ok(Message::Close(code, reason.to_string()))
        }
    }
}

/// Appends one unmasked server frame.
pub fn write_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= 0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// Appends a close frame with `code` and `reason` (cut to fit 125 bytes on a char
/// boundary).
pub fn write_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    write_frame(out, OP_CLOSE, &payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut out = vec![b0];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn the_rfc_example_key_gives_the_rfc_accept() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert!(check_handshake(Some(b"dGhlIHNhbXBsZSBub25jZQ=="), Some(b"13")).is_ok());
        assert!(check_handshake(Some(b"short"), Some(b"13")).is_err());
        assert!(check_handshake(Some(b"dGhlIHNhbXBsZSBub25jZQ=="), Some(b"8")).is_err());
        assert!(check_handshake(None, Some(b"13")).is_err());
    }

    #[test]
    fn upgrade_requests_are_recognised() {
        assert!(is_upgrade(
            "GET",
            1,
            Some(b"WebSocket"),
            &[b"keep-alive, Upgrade"]
        ));
        assert!(!is_upgrade("POST", 1, Some(b"websocket"), &[b"upgrade"]));
        assert!(!is_upgrade("GET", 0, Some(b"websocket"), &[b"upgrade"]));
        assert!(!is_upgrade("GET", 1, None, &[b"upgrade"]));
        assert!(!is_upgrade("GET", 1, Some(b"websocket"), &[b"keep-alive"]));
    }

    #[test]
    fn frames_parse_whole_and_ask_for_more_when_cut() {
        for len in [0usize, 5, 125, 126, 300, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let bytes = client_frame(0x82, &payload);
            let (frame, used) = parse_frame(&bytes, 1 << 20).unwrap().unwrap();
            assert_eq!(
                (frame.fin, frame.opcode, used),
                (true, OP_BINARY, bytes.len())
            );
            assert_eq!(frame.payload, payload);
            for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
                assert_eq!(
                    parse_frame(&bytes[..cut], 1 << 20).unwrap(),
                    None,
                    "len {len} cut {cut}"
                );
            }
        }
    }

    #[test]
    fn protocol_violations_name_their_close_code() {
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (client_frame(0x80 | 0x40 | OP_TEXT, b"x"), 1002),
            (client_frame(0x80 | 0x3, b"x"), 1002),
            (client_frame(OP_PING, b"x"), 1002),
            (client_frame(0x80 | OP_PING, &[0u8; 126]), 1002),
            (vec![0x81, 0x01, b'x'], 1002),
            (client_frame(0x82, &[0u8; 2000]), 1009),
        ];
        for (bytes, code) in cases {
            assert_eq!(
                parse_frame(&bytes, 1000).unwrap_err().code,
                code,
                "{bytes:x?}"
            );
        }
    }

    #[test]
    fn fragments_reassemble_with_interleaved_control_frames() {
        let mut a = Assembler::new(1 << 20);
        let frame = |fin: bool, opcode: u8, p: &[u8]| Frame {
            fin,
            opcode,
            payload: p.to_vec(),
        };
        assert_eq!(a.push(frame(false, OP_TEXT, b"Hel")).unwrap(), None);
        assert_eq!(
            a.push(frame(true, OP_PING, b"p")).unwrap(),
            Some(Message::Ping(b"p".to_vec()))
        );
        assert_eq!(
            a.push(frame(true, OP_CONTINUATION, b"lo")).unwrap(),
            Some(Message::Text("Hello".into()))
        );
        assert_eq!(
            a.push(frame(true, OP_CONTINUATION, b"x")).unwrap_err().code,
            1002
        );
        let mut a = Assembler::new(1 << 20);
        a.push(frame(false, OP_BINARY, b"a")).unwrap();
        assert_eq!(a.push(frame(true, OP_TEXT, b"b")).unwrap_err().code, 1002);
    }

    #[test]
    fn text_must_be_utf8_and_fails_fast() {
        let mut a = Assembler::new(1 << 20);
        let euro = "€".as_bytes();
        let frame = |fin: bool, opcode: u8, p: &[u8]| Frame {
            fin,
            opcode,
            payload: p.to_vec(),
        };
        // A character cut between fragments is fine...
        assert_eq!(a.push(frame(false, OP_TEXT, &euro[..1])).unwrap(), None);
        assert_eq!(
            a.push(frame(true, OP_CONTINUATION, &euro[1..])).unwrap(),
            Some(Message::Text("€".into()))
        );
        // ...an impossible byte fails at once, before the message ends.
        assert_eq!(
            a.push(frame(false, OP_TEXT, &[0xce, 0xba, 0xff]))
                .unwrap_err()
                .code,
            1007
        );
        assert_eq!(
            a.push(frame(true, OP_TEXT, &euro[..2])).unwrap_err().code,
            1007
        );
    }

    #[test]
    fn close_frames_carry_valid_codes_and_utf8_reasons() {
        assert_eq!(
            close_message(b"").unwrap(),
            Message::Close(1005, String::new())
        );
        assert_eq!(
            close_message(&[0x03, 0xe8, b'o', b'k']).unwrap(),
            Message::Close(1000, "ok".into())
        );
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            assert_eq!(
                close_message(&code.to_be_bytes()).unwrap_err().code,
                1002,
                "{code}"
            );
        }
        assert_eq!(close_message(&[0x03]).unwrap_err().code, 1002);
        assert_eq!(close_message(&[0x03, 0xe8, 0xff]).unwrap_err().code, 1007);
    }

    #[test]
    fn server_frames_are_unmasked_with_the_shortest_length() {
        let mut out = Vec::new();
        write_frame(&mut out, OP_TEXT, b"hi");
        assert_eq!(out, [0x81, 2, b'h', b'i']);
        out.clear();
        write_frame(&mut out, OP_BINARY, &[0u8; 200]);
        assert_eq!(&out[..4], &[0x82, 126, 0, 200]);
        out.clear();
        write_close(&mut out, 1000, &"é".repeat(100));
        assert_eq!(out[1] as usize, out.len() - 2);
        assert!(out.len() - 2 <= 125);
    }
}

//! HTTP/1.x on the wire (and the HTTP/2 glue, [`h2`]): request heads ([`request`]), bodies ([`body`]), response
//! framing ([`response`]) and the errors that carry their status ([`HttpError`]);
//! behind a proxy, the PROXY protocol header ([`proxy_protocol`]) and what a trusted
//! front end's headers mean ([`forwarded`]); the target and header bytes as text
//! ([`target`]).

pub mod body;
mod error;
pub mod forwarded;
pub mod h2;
pub mod h2c;
pub mod proxy_protocol;
pub mod request;
pub mod response;
pub mod target;
pub mod uwsgi;
pub mod websocket;

pub use error::HttpError;

/// `n` in decimal ASCII, written at the end of `buf`: the digits are the returned
/// slice. For the hot paths that format numbers (a computed Content-Length, a port)
/// without the formatting machinery.
pub fn decimal(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    let mut rest = n;
    loop {
        at -= 1;
        buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    &buf[at..]
}

/// RFC 9110 §5.6.2 `tchar`: the bytes of methods, field names and other tokens.
/// A table: every byte of every response header name is checked, and a search of the
/// punctuation list for each `-` showed in the profile.
pub fn is_token_byte(b: u8) -> bool {
    TOKEN_BYTES[usize::from(b)]
}

static TOKEN_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric();
        b += 1;
    }
    let punctuation = b"!#$%&'*+-.^_`|~";
    let mut i = 0;
    while i < punctuation.len() {
        table[punctuation[i] as usize] = true;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    #[test]
    fn token_bytes_are_tchar() {
        for b in 0..=255u8 {
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(super::is_token_byte(b), tchar, "byte {b:#04x}");
        }
    }
}

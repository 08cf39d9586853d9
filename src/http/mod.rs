//! HTTP/1.x on the wire (and the HTTP/2 glue, [`h2`]): request heads ([`request`]), bodies ([`body`]), response
//! framing ([`response`]) and the errors that carry their status ([`HttpError`]);
//! behind a proxy, the PROXY protocol header ([`proxy_protocol`]) and what a trusted
//! front end's headers mean ([`forwarded`]).

pub mod body;
mod error;
pub mod forwarded;
pub mod h2;
pub mod h2c;
pub mod proxy_protocol;
pub mod request;
pub mod response;
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
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

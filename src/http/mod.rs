//! HTTP/1.x on the wire: request heads ([`request`]), bodies ([`body`]), response
//! framing ([`response`]) and the errors that carry their status ([`HttpError`]).

pub mod body;
mod error;
pub mod forwarded;
pub mod proxy_protocol;
pub mod request;
pub mod response;

pub use error::HttpError;

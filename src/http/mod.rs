//! HTTP/1.x on the wire: request heads ([`request`]), bodies ([`body`]), response
//! framing ([`response`]) and the errors that carry their status ([`HttpError`]);
//! behind a proxy, the PROXY protocol header ([`proxy_protocol`]) and what a trusted
//! front end's headers mean ([`forwarded`]).

pub mod body;
mod error;
pub mod forwarded;
pub mod proxy_protocol;
pub mod request;
pub mod response;
pub mod uwsgi;
pub mod websocket;

pub use error::HttpError;

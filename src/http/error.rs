//! Request errors carry the status they are answered with.

/// Why a request cannot be served; each maps to one HTTP status, and the connection is
/// closed after the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("Bad Request: {0}")]
    BadRequest(String),
    #[error("Request Line is too large ({0} > {1})")]
    RequestLineTooLong(usize, usize),
    #[error("Request Header Fields Too Large: {0}")]
    HeadersTooLarge(String),
    #[error("Payload Too Large: {0}")]
    PayloadTooLarge(String),
    #[error("Expectation Failed: {0}")]
    ExpectationFailed(String),
    #[error("Not Implemented: {0}")]
    NotImplemented(String),
    /// A peer not in `--proxy-allow-from` sent a PROXY header.
    #[error("{0}")]
    Forbidden(String),
}

impl HttpError {
    /// The status code and reason phrase of the answer.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            HttpError::BadRequest(_) => (400, "Bad Request"),
            HttpError::RequestLineTooLong(..) => (414, "Request-URI Too Long"),
            HttpError::HeadersTooLarge(_) => (431, "Request Header Fields Too Large"),
            HttpError::PayloadTooLarge(_) => (413, "Payload Too Large"),
            HttpError::ExpectationFailed(_) => (417, "Expectation Failed"),
            HttpError::NotImplemented(_) => (501, "Not Implemented"),
            HttpError::Forbidden(_) => (403, "Forbidden"),
        }
    }

    pub(crate) fn bad(msg: impl Into<String>) -> HttpError {
        HttpError::BadRequest(msg.into())
    }
}

//! Heads of requests that arrive already split into method, target and fields
//! (HTTP/2 streams): the HTTP/1 parser's policy, applied through the same functions.

use super::{
    apply_field_rules, check_head_size, content_length, expects_continue, fields, line, too_many,
    BodyFraming, Head, Limits, Span, ValuesChecked,
};
use crate::http::HttpError;

impl Head {
    /// A head from a request that came already split into method, target and fields
    /// (an HTTP/2 stream, see [`crate::http::h2`]), through the same checks an HTTP/1
    /// head gets: the method and target rules and `--limit-request-line` (on `:path`,
    /// as Gunicorn applies it), the field count and size limits (a field counts
    /// `len(name) + len(value) + 2`, as in Gunicorn's `HTTP2Request`), and
    /// [`apply_field_rules`] — control bytes, singletons, `_` names per `--header-map`
    /// and `--forwarder-headers`, trimming — then Expect and the body limit for a
    /// declared Content-Length. Framing is the stream's: no body framing, keep-alive.
    pub fn from_fields(
        method: &str,
        target: &str,
        fields: &[(&[u8], &[u8])],
        limits: &Limits,
    ) -> Result<Head, HttpError> {
        let mut head = Head::empty();
        head.fill_from_fields(method, target, fields, limits)?;
        Ok(head)
    }

    /// [`Head::from_fields`] into this head, whose buffers are reused (a head from
    /// [`super::spare_head`]); after an `Err` what it holds is meaningless.
    pub fn fill_from_fields(
        &mut self,
        method: &str,
        target: &str,
        fields: &[(&[u8], &[u8])],
        limits: &Limits,
    ) -> Result<(), HttpError> {
        line::check_method(method.as_bytes(), limits)?;
        let line_max = limits.request_line.unwrap_or(line::UNLIMITED_LINE_CAP);
        if target.len() > line_max {
            return Err(HttpError::RequestLineTooLong(target.len(), line_max));
        }
        if target.is_empty()
            || !target.bytes().all(line::is_target_byte)
            || !line::target_form_allowed(method, target)
        {
            return Err(HttpError::bad(format!(
                "Invalid path '{}'",
                &target[..target.len().min(200)]
            )));
        }
        if fields.len() > limits.fields {
            return Err(too_many(limits));
        }
        let mut size = method.len() + target.len();
        for (name, value) in fields {
            if name.is_empty() || !name.iter().all(|&b| crate::http::is_token_byte(b)) {
                return Err(HttpError::bad(format!(
                    "Invalid header name '{}'",
                    fields::lossy(name)
                )));
            }
            if name.len() + value.len() + 2 > limits.field_size {
                return Err(HttpError::HeadersTooLarge(format!(
                    "header {} is too large",
                    fields::lossy(name)
                )));
            }
            size += name.len() + value.len() + 4;
        }
        check_head_size(size, limits)?;
        let mut raw = std::mem::take(&mut self.raw);
        raw.clear();
        raw.reserve(size);
        let mut spans = std::mem::take(&mut self.fields);
        spans.clear();
        let mut span = |bytes: &[u8]| {
            let start = raw.len() as u32;
            raw.extend_from_slice(bytes);
            Span {
                start,
                end: raw.len() as u32,
            }
        };
        let method_span = span(method.as_bytes());
        let target_span = span(target.as_bytes());
        spans.extend(fields.iter().map(|(n, v)| (span(n), span(v))));
        if limits.casefold_method {
            raw[..method.len()].make_ascii_uppercase();
        }
        *self = Head {
            raw,
            method: method_span,
            target: target_span,
            minor_version: 1,
            fields: spans,
            body: BodyFraming::None,
            keep_alive: true,
            client_closes: false,
            expect_continue: false,
            forwarded_https: None,
            uwsgi: false,
            http2: true,
            host: super::HostField::Unknown,
            name_lengths: u64::MAX,
        };
        apply_field_rules(self, limits, ValuesChecked::No)?;
        if let (Some(value), Some(max)) = (self.header("content-length"), limits.body) {
            let n = content_length(value)?;
            if n > max {
                return Err(HttpError::PayloadTooLarge(format!(
                    "Content-Length {n} is over the limit of {max} bytes"
                )));
            }
        }
        self.expect_continue = expects_continue(self)?;
        Ok(())
    }
}

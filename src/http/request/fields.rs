//! Header field lines httparse refuses for good reasons, named precisely, and — only
//! when a `--permit-obsolete-folding` / `--strip-header-spaces` switch allows it —
//! rewritten into a copy httparse accepts.

use super::line::is_token_byte;
use super::Limits;
use crate::http::HttpError;

/// What to do with a head httparse refused.
pub enum Repair {
    /// The head is not complete yet; the problem may be an allowed fold.
    NeedMore,
    /// The rewritten head (request line, unfolded fields, final CRLF) and the length
    /// of the original head it replaces.
    Rewritten(Vec<u8>, usize),
}

/// Explains `err` (httparse's verdict on the head starting at `buf`, whose request
/// line ends at `line_end`) as a Gunicorn-style error, or repairs the head when a
/// permit switch covers every problem in it.
pub fn diagnose(
    buf: &[u8],
    line_end: usize,
    limits: &Limits,
    err: httparse::Error,
) -> Result<Repair, HttpError> {
    let mut pos = line_end + 2;
    let mut repair = false;
    // Where the logical field in progress (a line and its folds) started: Gunicorn
    // measures a folded field with its folds, as sent.
    let mut field_start: Option<usize> = None;
    loop {
        let Some(len) = find_crlf(&buf[pos..]) else {
            // The line in progress: a fold or a spaced name may still be allowed.
            return match partial_line(&buf[pos..], limits) {
                Partial::Allowed => Ok(Repair::NeedMore),
                Partial::Fold if pos != line_end + 2 => Err(fold_error(&buf[pos..])),
                _ if repair => Ok(Repair::NeedMore),
                _ => Err(from_httparse(err)),
            };
        };
        let field = &buf[pos..pos + len];
        if field.is_empty() {
            break;
        }
        repair |= check_line(field, pos == line_end + 2, limits)?;
        if field[0] != b' ' && field[0] != b'\t' {
            check_field_size(buf, field_start, pos, limits)?;
            field_start = Some(pos);
        }
        pos += len + 2;
    }
    check_field_size(buf, field_start, pos, limits)?;
    if !repair {
        return Err(from_httparse(err));
    }
    Ok(Repair::Rewritten(rewrite(buf, line_end, pos), pos + 2))
}

/// The field that started at `start` and ends where `end` begins (its folds and
/// CRLFs included) within `--limit-request-field_size`.
fn check_field_size(
    buf: &[u8],
    start: Option<usize>,
    end: usize,
    limits: &Limits,
) -> Result<(), HttpError> {
    match start {
        Some(start) if end - start > limits.field_size => {
            let name = buf[start..end]
                .split(|&b| b == b':')
                .next()
                .unwrap_or_default();
            Err(HttpError::HeadersTooLarge(format!(
                "header {} is too large",
                lossy(name)
            )))
        }
        _ => Ok(()),
    }
}

/// One complete field line: `Ok(true)` when it needs a permitted repair (a fold, a
/// name with spaces before its colon), an error when it is wrong in any other way.
/// At least as strict as httparse, so a verdict never changes as more bytes arrive.
fn check_line(field: &[u8], first: bool, limits: &Limits) -> Result<bool, HttpError> {
    if field[0] == b' ' || field[0] == b'\t' {
        return if limits.permit_obsolete_folding && !first {
            Ok(true)
        } else {
            Err(fold_error(field))
        };
    }
    let Some(colon) = field.iter().position(|&b| b == b':') else {
        return Err(HttpError::bad(format!(
            "Invalid header: no colon in '{}'",
            lossy(field)
        )));
    };
    let name = &field[..colon];
    let trimmed = trim_end_ws(name);
    let spaced = trimmed.len() != name.len();
    if spaced && !limits.strip_header_spaces {
        return Err(HttpError::bad(format!(
            "Invalid header name '{}': whitespace before the colon",
            lossy(name)
        )));
    }
    if trimmed.is_empty() || !trimmed.iter().all(|&b| is_token_byte(b)) {
        return Err(HttpError::bad(format!(
            "Invalid header name '{}'",
            lossy(name)
        )));
    }
    if !is_field_value(&field[colon + 1..]) {
        return Err(HttpError::bad(format!(
            "Invalid header value in {}: control character",
            lossy(trimmed)
        )));
    }
    Ok(spaced)
}

enum Partial {
    /// A fold or spaced name the switches allow: wait for the rest.
    Allowed,
    /// A fold the switches do not allow.
    Fold,
    Other,
}

/// Classifies an incomplete last line.
fn partial_line(rest: &[u8], limits: &Limits) -> Partial {
    if rest.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return if limits.permit_obsolete_folding {
            Partial::Allowed
        } else {
            Partial::Fold
        };
    }
    // `token OWS` so far, before any colon: the spaces may yet be stripped.
    let name = match rest.iter().position(|&b| b == b':') {
        Some(colon) => &rest[..colon],
        None => rest,
    };
    let token_len = name.iter().take_while(|&&b| is_token_byte(b)).count();
    let spaces = &name[token_len..];
    let spaced_name =
        token_len > 0 && !spaces.is_empty() && spaces.iter().all(|&b| b == b' ' || b == b'\t');
    if limits.strip_header_spaces && spaced_name {
        Partial::Allowed
    } else {
        Partial::Other
    }
}

fn fold_error(line: &[u8]) -> HttpError {
    HttpError::bad(format!(
        "Obsolete line folding is unacceptable: {}",
        lossy(line)
    ))
}

/// The head with folds joined by one space and spaces before colons removed.
fn rewrite(buf: &[u8], line_end: usize, head_end: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(head_end + 2);
    out.extend_from_slice(&buf[..line_end + 2]);
    let mut pos = line_end + 2;
    let mut first = true;
    while pos < head_end {
        let len = find_crlf(&buf[pos..]).expect("complete head");
        let field = &buf[pos..pos + len];
        if field[0] == b' ' || field[0] == b'\t' {
            out.push(b' ');
            out.extend_from_slice(trim_ws(field));
        } else {
            if !first {
                out.extend_from_slice(b"\r\n");
            }
            match field.iter().position(|&b| b == b':') {
                Some(colon) if !trim_end_ws(&field[..colon]).is_empty() => {
                    out.extend_from_slice(trim_end_ws(&field[..colon]));
                    out.extend_from_slice(&field[colon..]);
                }
                _ => out.extend_from_slice(field),
            }
            first = false;
        }
        pos += len + 2;
    }
    if !first {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// httparse's error, in words a client (and the debug log) can act on.
pub fn from_httparse(err: httparse::Error) -> HttpError {
    let what = match err {
        httparse::Error::HeaderName => "Invalid header name",
        httparse::Error::HeaderValue => "Invalid header value: control character",
        httparse::Error::NewLine => "Invalid line ending: CR without LF",
        httparse::Error::Token | httparse::Error::Status => "Invalid Request Line",
        httparse::Error::Version => "Invalid HTTP Version",
        httparse::Error::TooManyHeaders => "Too many header fields",
    };
    HttpError::bad(what)
}

/// RFC 9110 §5.5: field values are visible bytes, obs-text, SP and HTAB.
pub fn is_field_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

pub fn find_crlf(input: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = input[from..].iter().position(|&b| b == b'\n') {
        let at = from + i;
        if at > 0 && input[at - 1] == b'\r' {
            return Some(at - 1);
        }
        from = at + 1;
    }
    None
}

pub fn trim_ws(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    trim_end_ws(&bytes[start..])
}

fn trim_end_ws(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned()
}

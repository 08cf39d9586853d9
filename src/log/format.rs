//! Gunicorn's `--access-logformat`, compiled once at start-up into a list of pieces.
//!
//! Gunicorn renders an access line as `format % SafeAtoms(atoms)`: Python's
//! printf-style formatting with a mapping. This module reproduces the parts of that a
//! format can use: `%(key)s` with flags, width and precision, `%(key)d` for the numeric
//! atoms, `%%`; string values have `"` escaped as `\"`; keys that are not atoms
//! render as `-`; `{...}i`, `{...}o`, `{...}e` keys are matched case-insensitively.
//! What Python would refuse while logging (a positional `%s`, a `*` width, `%(s)d` on a
//! string atom) is refused here at start-up instead, naming the field.

use std::fmt::Write as _;

/// Gunicorn's default `access_log_format`.
pub const DEFAULT_FORMAT: &str = r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;

/// One atom of the format: what a `%(key)` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Atom {
    RemoteAddr,
    Ident,
    User,
    Time,
    RequestLine,
    Method,
    Path,
    Query,
    Protocol,
    Status,
    Sent,
    SentOrDash,
    Referer,
    UserAgent,
    Seconds,
    Micros,
    Millis,
    Decimal,
    Pid,
    /// `{name}i`, `name` lower-case.
    RequestHeader(String),
    /// `{name}o`, `name` lower-case.
    ResponseHeader(String),
    /// `{name}e`, `name` lower-case.
    Environ(String),
    /// Any other key: rendered as `-`, as Gunicorn's SafeAtoms does.
    Missing,
}

impl Atom {
    fn from_key(key: &str) -> Atom {
        if key.starts_with('{') {
            let lower = key.to_lowercase();
            let n = lower.len();
            if n >= 3 && lower.as_bytes()[n - 2] == b'}' {
                let name = lower[1..n - 2].to_string();
                return match lower.as_bytes()[n - 1] {
                    b'i' => Atom::RequestHeader(name),
                    b'o' => Atom::ResponseHeader(name),
                    b'e' => Atom::Environ(name),
                    _ => Atom::Missing,
                };
            }
            return Atom::Missing;
        }
        match key {
            "h" => Atom::RemoteAddr,
            "l" => Atom::Ident,
            "u" => Atom::User,
            "t" => Atom::Time,
            "r" => Atom::RequestLine,
            "m" => Atom::Method,
            "U" => Atom::Path,
            "q" => Atom::Query,
            "H" => Atom::Protocol,
            "s" => Atom::Status,
            "B" => Atom::Sent,
            "b" => Atom::SentOrDash,
            "f" => Atom::Referer,
            "a" => Atom::UserAgent,
            "T" => Atom::Seconds,
            "D" => Atom::Micros,
            "M" => Atom::Millis,
            "L" => Atom::Decimal,
            "p" => Atom::Pid,
            _ => Atom::Missing,
        }
    }

    /// Gunicorn gives these atoms as Python ints; every other one is a str.
    fn is_int(&self) -> bool {
        matches!(
            self,
            Atom::Sent | Atom::Seconds | Atom::Micros | Atom::Millis
        )
    }
}

/// `%[flags][width][.precision]conv` after the key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    width: usize,
    precision: Option<usize>,
    /// `d`/`i`/`u` rather than `s`.
    int: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Field(Atom, Spec),
}

/// A compiled access-log format. Cheap to render; built once from the setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessFormat {
    pieces: Vec<Piece>,
    /// Some `{...}o` atom needs the response headers kept for the log line.
    pub needs_response_headers: bool,
    /// The environ keys (lower-case) `{...}e` atoms need, read after the app call.
    pub environ_keys: Vec<String>,
    /// Atoms Gunicorn reads from the environ after the app ran (`h` REMOTE_ADDR, `U`
    /// PATH_INFO, `q` QUERY_STRING, `m` REQUEST_METHOD, `H` SERVER_PROTOCOL), so that
    /// middleware rewriting them in place (werkzeug's ProxyFix, DispatcherMiddleware)
    /// shows in the line.
    pub environ_atoms: Vec<Atom>,
}

/// A value for one atom of one request.
pub enum Value<'a> {
    Str(&'a str),
    /// A str value given without the `"` escape (the `-` of a missing atom, or a
    /// non-str environ value's `str()`).
    Raw(&'a str),
    Int(u64),
}

/// What rendering needs from the request (see [`crate::log::access`]).
pub trait Atoms {
    fn value<'s>(&'s self, atom: &'s Atom, scratch: &'s mut String) -> Value<'s>;
}

impl AccessFormat {
    /// Parses `format` the way Python's `%` operator does with a mapping argument.
    pub fn compile(format: &str) -> Result<AccessFormat, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = format.char_indices().peekable();
        while let Some((start, c)) = chars.next() {
            if c != '%' {
                literal.push(c);
                continue;
            }
            if let Some(&(_, '%')) = chars.peek() {
                chars.next();
                literal.push('%');
                continue;
            }
            let key = match chars.next() {
                Some((_, '(')) => read_key(&mut chars)
                    .ok_or_else(|| format!("incomplete format key at byte {start}"))?,
                Some(_) => {
                    return Err(format!(
                        "a field without a name at byte {start}: Gunicorn formats access lines \
                         with a mapping, so every field names its atom, like %(h)s"
                    ))
                }
                None => return Err("the format ends with an incomplete '%'".into()),
            };
            let spec = read_spec(&mut chars, &key)?;
            let atom = Atom::from_key(&key);
            if spec.int && !atom.is_int() {
                return Err(format!(
                    "%({key})d: this atom is a string in Gunicorn (only B, T, D and M are \
                     numbers); use %({key})s"
                ));
            }
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Field(atom, spec));
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        let needs_response_headers = pieces
            .iter()
            .any(|p| matches!(p, Piece::Field(Atom::ResponseHeader(_), _)));
        let mut environ_keys: Vec<String> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Field(Atom::Environ(k), _) => Some(k.clone()),
                _ => None,
            })
            .collect();
        environ_keys.sort();
        environ_keys.dedup();
        let environ_atoms = [
            Atom::RemoteAddr,
            Atom::Path,
            Atom::Query,
            Atom::Method,
            Atom::Protocol,
        ]
        .into_iter()
        .filter(|a| {
            // `r` is REQUEST_METHOD, RAW_URI and SERVER_PROTOCOL from the environ too.
            let in_r = matches!(a, Atom::Method | Atom::Protocol);
            pieces.iter().any(
                |p| matches!(p, Piece::Field(f, _) if f == a || (in_r && *f == Atom::RequestLine)),
            )
        })
        .collect();
        Ok(AccessFormat {
            pieces,
            needs_response_headers,
            environ_keys,
            environ_atoms,
        })
    }

    /// Appends one line (without the newline) to `out`.
    pub fn render(&self, atoms: &dyn Atoms, out: &mut String) {
        let mut scratch = String::new();
        let mut escaped = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Field(atom, spec) => {
                    scratch.clear();
                    match atoms.value(atom, &mut scratch) {
                        Value::Int(n) => pad_int(out, spec, n),
                        Value::Raw(s) => pad_str(out, spec, s),
                        Value::Str(s) if s.contains('"') => {
                            escaped.clear();
                            escaped.push_str(&s.replace('"', "\\\""));
                            pad_str(out, spec, &escaped);
                        }
                        Value::Str(s) => pad_str(out, spec, s),
                    }
                }
            }
        }
    }
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

/// The key up to the `)` that closes the `(`, counting nested parentheses (Python's rule).
fn read_key(chars: &mut Chars<'_>) -> Option<String> {
    let mut depth = 1;
    let mut key = String::new();
    for (_, c) in chars.by_ref() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(key);
                }
            }
            _ => {}
        }
        key.push(c);
    }
    None
}

fn read_spec(chars: &mut Chars<'_>, key: &str) -> Result<Spec, String> {
    let mut spec = Spec::default();
    while let Some(&(_, c)) = chars.peek() {
        match c {
            '-' => spec.left = true,
            '0' => spec.zero = true,
            '+' => spec.plus = true,
            ' ' => spec.space = true,
            '#' => {}
            _ => break,
        }
        chars.next();
    }
    spec.width = read_number(chars, key)?.unwrap_or(0);
    if let Some(&(_, '.')) = chars.peek() {
        chars.next();
        spec.precision = Some(read_number(chars, key)?.unwrap_or(0));
    }
    while let Some(&(_, 'h' | 'l' | 'L')) = chars.peek() {
        chars.next();
    }
    match chars.next() {
        Some((_, 's')) => {}
        Some((_, 'd' | 'i' | 'u')) => spec.int = true,
        Some((_, c)) => {
            return Err(format!(
                "%({key}){c}: rustcorn renders the conversions s and d (and i, u); \
                 Gunicorn's atoms are used with s"
            ))
        }
        None => return Err(format!("%({key}) has no conversion; write %({key})s")),
    }
    Ok(spec)
}

fn read_number(chars: &mut Chars<'_>, key: &str) -> Result<Option<usize>, String> {
    if let Some(&(_, '*')) = chars.peek() {
        return Err(format!(
            "%({key}) uses a '*' width, which needs a positional argument Gunicorn does not give"
        ));
    }
    let mut n: Option<usize> = None;
    while let Some(&(_, c @ '0'..='9')) = chars.peek() {
        chars.next();
        let d = c as usize - '0' as usize;
        n = Some(
            n.unwrap_or(0)
                .checked_mul(10)
                .and_then(|v| v.checked_add(d))
                .filter(|&v| v < 10_000)
                .ok_or_else(|| format!("%({key}): width or precision too large"))?,
        );
    }
    Ok(n)
}

fn pad(out: &mut String, spec: &Spec, body: &str, zero_fill_after: Option<usize>) {
    let len = body.chars().count();
    if len >= spec.width {
        out.push_str(body);
        return;
    }
    let fill = spec.width - len;
    if spec.left {
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if let Some(sign_len) = zero_fill_after {
        out.push_str(&body[..sign_len]);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(&body[sign_len..]);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(body);
    }
}

/// `%s` of a str: precision truncates, width pads with spaces (`0` is ignored).
fn pad_str(out: &mut String, spec: &Spec, s: &str) {
    match spec.precision {
        Some(p) => {
            let cut = s.char_indices().nth(p).map_or(s.len(), |(i, _)| i);
            pad(out, spec, &s[..cut], None)
        }
        None => pad(out, spec, s, None),
    }
}

/// `%d` of an int (and `%s` of an int, which is `str(n)` then as a str).
fn pad_int(out: &mut String, spec: &Spec, n: u64) {
    if !spec.int {
        let mut s = String::new();
        let _ = write!(s, "{n}");
        return pad_str(out, spec, &s);
    }
    let mut body = String::new();
    let sign = if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    body.push_str(sign);
    let digits = n.to_string();
    if let Some(p) = spec.precision {
        body.extend(std::iter::repeat_n('0', p.saturating_sub(digits.len())));
    }
    body.push_str(&digits);
    let zero = (spec.zero && !spec.left).then_some(sign.len());
    pad(out, spec, &body, zero)
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;

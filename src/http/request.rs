//! Request heads: the request line is checked here ([`line`]), httparse tokenises the
//! header fields, and this module applies the rest of RFC 9112/9110 the way Gunicorn 27
//! does — framing (body length, keep-alive, Expect), the size limits, bare LF, control
//! bytes, singletons, obsolete folding and `--header-map`. Every refusal carries the
//! status it is answered with.

use std::mem::MaybeUninit;

use super::HttpError;
use fields::Repair;

mod fast;
mod fields;
mod from_fields;
mod line;

/// Whether `value` is tab, space and visible ASCII only (a header value that needs no
/// per-char check), eight bytes a step.
pub fn is_plain_value(value: &[u8]) -> bool {
    fast::first_unplain(value).is_none()
}

/// Size limits on a request and the strictness switches, resolved from Gunicorn's
/// flags (`--limit-request-*`, `--permit-*`, `--header-map`…) in [`crate::config::http`].
/// The defaults are Gunicorn's.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest request line (without CRLF); `None` means unlimited (414 beyond).
    pub request_line: Option<usize>,
    /// Most header fields (431 beyond).
    pub fields: usize,
    /// Longest header field line (431 beyond).
    pub field_size: usize,
    /// Largest request body; `None` means unlimited (413 beyond).
    pub body: Option<u64>,
    pub permit_obsolete_folding: bool,
    pub header_map: HeaderMap,
    pub permit_unconventional_method: bool,
    pub permit_unconventional_version: bool,
    /// Uppercase methods (`--casefold-http-method`).
    pub casefold_method: bool,
    pub strip_header_spaces: bool,
    /// Under `--header-map refuse`, the `_` names a trusted peer may still send
    /// (`--forwarder-headers`, as Gunicorn exempts them). Empty for other peers: the
    /// connection parses with [`Limits::for_untrusted_peer`].
    pub forwarder_headers: &'static [String],
}

impl Limits {
    /// The limits for a peer not in `--forwarded-allow-ips`: no exemptions.
    pub fn for_untrusted_peer(self) -> Limits {
        Limits {
            forwarder_headers: &[],
            ..self
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_line: Some(4094),
            fields: 100,
            field_size: 8190,
            body: None,
            permit_obsolete_folding: false,
            header_map: HeaderMap::Drop,
            permit_unconventional_method: false,
            permit_unconventional_version: false,
            casefold_method: false,
            strip_header_spaces: false,
            forwarder_headers: &[],
        }
    }
}

/// Header names with `_` would land in the same environ key as their `-` twins
/// (`X_Forwarded_For` and `X-Forwarded-For`); Gunicorn's `--header-map` says what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderMap {
    /// Leave them out of the request (they still count against the limits).
    Drop,
    /// Answer 400.
    Refuse,
    /// Keep them, mapped like `-`.
    Dangerous,
}

/// How the request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// Where a piece of the head lies in [`Head::raw`].
#[derive(Clone, Copy, Debug)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The span of `part`, a subslice of `whole`.
    fn within(whole: &[u8], part: &[u8]) -> Span {
        let start = part.as_ptr() as usize - whole.as_ptr() as usize;
        Span {
            start: start as u32,
            end: (start + part.len()) as u32,
        }
    }

    fn of(self, raw: &[u8]) -> &[u8] {
        &raw[self.start as usize..self.end as usize]
    }

    /// The span as text. Only for method, target and field names, which the parser
    /// has checked: tokens (ASCII), and a target that is UTF-8.
    fn text(self, raw: &[u8]) -> &str {
        let bytes = self.of(raw);
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        // SAFETY: see above; every Head is made by `parse_head` (or `from_parts`, from
        // &str), and these spans only ever cover checked bytes. Validating again on
        // every look at a header name was a visible share of a request's CPU.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }
}

/// A parsed request head.
#[derive(Clone, Debug)]
pub struct Head {
    /// The head's bytes as parsed (obsolete line folds already unfolded). Method,
    /// target and fields are spans of it: a request costs one copy of its head
    /// instead of an allocation per name and value.
    raw: Vec<u8>,
    method: Span,
    /// The request target exactly as sent (RAW_URI).
    target: Span,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Header names as sent, values trimmed, in order.
    fields: Vec<(Span, Span)>,
    pub body: BodyFraming,
    /// The client allows the connection to stay open after this request.
    pub keep_alive: bool,
    /// The client itself asked to close after this request (`Connection: close`, or
    /// HTTP/1.0 without keep-alive), so it sends nothing more; `keep_alive` is also
    /// false when the server must close (a coded body).
    pub client_closes: bool,
    pub expect_continue: bool,
    /// What a trusted proxy's secure-scheme headers said (`Some(true)` = https); set
    /// after parsing, where the peer is known (see `http::forwarded`).
    pub forwarded_https: Option<bool>,
    /// The request came in a uwsgi packet: its front end reads the response as
    /// HTTP/1.0 (no chunked framing; a body without a length ends with the connection).
    pub uwsgi: bool,
    /// The request came on an HTTP/2 stream ([`Head::from_fields`]); `minor_version`
    /// is then 1, so HTTP/1.1 semantics (Expect, no HTTP/1.0 rules) apply.
    pub http2: bool,
    /// Where the Host field is, as [`apply_field_rules`] found it on its pass (every
    /// request's SERVER_NAME reads it: a second pass over the names was ~100
    /// instructions per request).
    host: HostField,
    /// One bit per field-name length (bit 63: that long or longer), set by
    /// [`apply_field_rules`]; all bits until then. A look-up of names of other lengths
    /// (a trusted peer's secure-scheme headers, on every request) needs no pass.
    name_lengths: u64,
}

/// Where a head's Host field is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HostField {
    /// Not looked for yet: [`Head::host`] searches.
    Unknown,
    Absent,
    At(usize),
}

/// The bit of a name's length in [`Head::name_lengths`].
pub fn name_length_bit(len: usize) -> u64 {
    1u64 << len.min(63)
}

impl Head {
    /// The method (uppercased under `--casefold-http-method`).
    pub fn method(&self) -> &str {
        self.method.text(&self.raw)
    }

    /// The request target exactly as sent (checked to be UTF-8 by the parser).
    pub fn target(&self) -> &str {
        self.target.text(&self.raw)
    }

    /// Header fields in order: names as sent (tokens, so ASCII), values as bytes.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &[u8])> + Clone + '_ {
        self.fields
            .iter()
            .map(|&(name, value)| (name.text(&self.raw), value.of(&self.raw)))
    }

    /// The head's bytes from the first field's name through the `n`th field's value
    /// (`None` for `n` 0 or more than there are): equal bytes here mean equal first `n`
    /// fields, names and values, as the parser splits a line by its bytes alone (the
    /// `n`th value's end is part of the slice, so a longer value differs).
    /// Only for a head parsed from HTTP/1 bytes (uwsgi's too): an HTTP/2 head's `raw`
    /// holds names and values with nothing between them, so the same bytes could be
    /// split otherwise.
    pub fn leading_fields(&self, n: usize) -> Option<&[u8]> {
        if self.http2 {
            return None;
        }
        let first = self.fields.first()?.0.start as usize;
        let end = self.fields.get(n.checked_sub(1)?)?.1.end as usize;
        self.raw.get(first..end)
    }

    /// How many header fields there are.
    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// A head with nothing in it, for the parser to fill.
    fn empty() -> Head {
        Head {
            raw: Vec::new(),
            method: Span { start: 0, end: 0 },
            target: Span { start: 0, end: 0 },
            minor_version: 1,
            fields: Vec::new(),
            body: BodyFraming::None,
            keep_alive: false,
            client_closes: false,
            expect_continue: false,
            forwarded_https: None,
            uwsgi: false,
            http2: false,
            host: HostField::Unknown,
            name_lengths: u64::MAX,
        }
    }

    /// A head as the parser would make it, from its parts (for tests elsewhere).
    #[cfg(test)]
    pub fn from_parts(method: &str, target: &str, minor: u8, fields: &[(&str, &[u8])]) -> Head {
        let mut raw = Vec::new();
        let span = |raw: &mut Vec<u8>, bytes: &[u8]| {
            let start = raw.len() as u32;
            raw.extend_from_slice(bytes);
            Span {
                start,
                end: raw.len() as u32,
            }
        };
        // Laid out as on the wire, as the parser's heads are (`leading_fields` relies on it).
        let method = span(&mut raw, method.as_bytes());
        raw.push(b' ');
        let target = span(&mut raw, target.as_bytes());
        raw.extend_from_slice(if minor == 0 {
            b" HTTP/1.0\r\n"
        } else {
            b" HTTP/1.1\r\n"
        });
        let fields = fields
            .iter()
            .map(|(n, v)| {
                let name = span(&mut raw, n.as_bytes());
                raw.extend_from_slice(b": ");
                let value = span(&mut raw, v);
                raw.extend_from_slice(b"\r\n");
                (name, value)
            })
            .collect();
        raw.extend_from_slice(b"\r\n");
        Head {
            raw,
            method,
            target,
            minor_version: minor,
            fields,
            body: BodyFraming::None,
            keep_alive: minor >= 1,
            client_closes: minor == 0,
            expect_continue: false,
            forwarded_https: None,
            uwsgi: false,
            http2: false,
            host: HostField::Unknown,
            name_lengths: u64::MAX,
        }
    }

    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0` (Gunicorn's gthread `SERVER_PROTOCOL`).
    pub fn protocol(&self) -> &'static str {
        if self.http2 {
            "HTTP/2.0"
        } else if self.minor_version == 0 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        }
    }

    /// The Host field's value (there is at most one once the field rules passed).
    pub fn host(&self) -> Option<&[u8]> {
        match self.host {
            HostField::Unknown => self.header("host"),
            HostField::Absent => None,
            HostField::At(i) => self.fields.get(i).map(|&(_, value)| value.of(&self.raw)),
        }
    }

    /// The lengths of the field names, one bit each (see [`name_length_bit`]): a name
    /// whose length's bit is clear is not among the fields.
    pub fn name_lengths(&self) -> u64 {
        self.name_lengths
    }

    /// The first value of a header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.values(name).next()
    }

    /// Every value of a header, case-insensitively, in order (the last one with
    /// `next_back`).
    pub fn values<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl DoubleEndedIterator<Item = &'a [u8]> + use<'a, 'n> {
        self.fields
            .iter()
            .filter(move |(n, _)| n.text(&self.raw).eq_ignore_ascii_case(name))
            .map(|&(_, value)| value.of(&self.raw))
    }

    /// Whether this is a HEAD request (its response carries no body bytes).
    pub fn is_head(&self) -> bool {
        self.method() == "HEAD"
    }
}

/// Header slots kept on the stack while parsing; a head with more fields (allowed by
/// a larger `--limit-request-fields`) is parsed again with slots on the heap.
const STACK_SLOTS: usize = 128;

/// Fields that may appear once: a second one makes the message ambiguous
/// (RFC 9110 §5.3; Gunicorn refuses both).
/// Kept in this order: [`apply_field_rules`] finds them by length (4 and 12).
const SINGLETONS: [&str; 2] = ["host", "content-type"];

/// Parses the request head at the start of `buf`. `Ok(None)` means more bytes are
/// needed (a state, not an error); `Ok(Some((head, n)))` consumed `n` bytes.
///
/// This is the whole request-head parser, public so that the fuzz targets in `fuzz/`
/// drive exactly what the server runs. It never panics, and allocates in proportion
/// to `buf` and `limits`.
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<(Head, usize)>, HttpError> {
    let mut head = Head::empty();
    Ok(parse_head_into(buf, limits, &mut head)?.map(|n| (head, n)))
}

thread_local! {
    /// Served requests' heads, whose buffers the next [`parse_head_reusing`] calls on
    /// this thread fill instead of allocating their own (see [`recycle`]). Several: under
    /// load a loop turn parses a head on each of tens of connections before any of them
    /// is served, and with one spare all but one allocated anyway. Boxed: the box is
    /// what the connection holds, and reusing it saves its allocation too.
    #[allow(clippy::vec_box)]
    static SPARE: std::cell::RefCell<Vec<Box<Head>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// At most this many spare heads, each keeping its buffers only up to these sizes, so
/// a burst of connections or a very large head does not stay in memory for good (at
/// most about 400 KiB; a typical head's buffers are well under 1 KiB).
const SPARE_HEADS: usize = 64;
const SPARE_RAW_MAX: usize = 4 * 1024;
const SPARE_FIELDS_MAX: usize = 128;

/// [`parse_head`], into a boxed head whose buffers a served request left (see
/// [`recycle`]): the box, the head's bytes and its field list were three allocations
/// and three frees per request (~800 of a hello request's 20k instructions).
pub fn parse_head_reusing(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(Box<Head>, usize)>, HttpError> {
    let mut head = spare_head();
    match parse_head_into(buf, limits, &mut head) {
        Ok(Some(n)) => Ok(Some((head, n))),
        other => {
            recycle(head);
            other.map(|_| None)
        }
    }
}

/// A head to fill ([`parse_head_reusing`], [`Head::fill_from_fields`]): a served
/// request's, with its buffers, when this thread has one (see [`recycle`]).
pub fn spare_head() -> Box<Head> {
    SPARE
        .with_borrow_mut(Vec::pop)
        .unwrap_or_else(|| Box::new(Head::empty()))
}

/// Gives a served request's head back for a later [`parse_head_reusing`] on this
/// thread (up to [`SPARE_HEADS`]; a head grown past the bounds is dropped).
pub fn recycle(head: Box<Head>) {
    if head.raw.capacity() <= SPARE_RAW_MAX && head.fields.capacity() <= SPARE_FIELDS_MAX {
        SPARE.with_borrow_mut(|spare| {
            if spare.len() < SPARE_HEADS {
                spare.push(head);
            }
        });
    }
}

/// [`parse_head`] into `head`, whose buffers are reused; `Ok(Some(n))`: it holds the
/// head now, which took `n` bytes (otherwise what it holds is meaningless).
fn parse_head_into(
    buf: &[u8],
    limits: &Limits,
    head: &mut Head,
) -> Result<Option<usize>, HttpError> {
    // RFC 9112 §2.2: one empty line (CRLF, and only one) before the request line is
    // ignored, as Gunicorn 27 does; a second one is a bad request line.
    match buf {
        [b'\r'] => Ok(None),
        [b'\r', b'\n', rest @ ..] => Ok(parse_one_head(rest, limits, head)?.map(|n| n + 2)),
        _ => parse_one_head(buf, limits, head),
    }
}

/// [`parse_head_into`] once any leading empty line is gone.
fn parse_one_head(
    buf: &[u8],
    limits: &Limits,
    into: &mut Head,
) -> Result<Option<usize>, HttpError> {
    let Some(line_end) = line::find_end(buf, limits)? else {
        return Ok(None);
    };
    let line = line::parse(&buf[..line_end], limits)?;
    let patched;
    let input: &[u8] = if line.unconventional_version {
        // httparse knows HTTP/1.0 and 1.1 only; `HTTP/D.D` has the same length.
        let mut copy = buf.to_vec();
        copy[line_end - 8..line_end].copy_from_slice(b"HTTP/1.1");
        patched = copy;
        &patched
    } else {
        buf
    };
    let rewritten;
    let mut fields = std::mem::take(&mut into.fields);
    // An ordinary head in one pass; its sizes and line ends are checked on the way.
    let fast = (!line.unconventional_version)
        .then(|| fast::fields(buf, line_end + 2, limits, &mut fields))
        .flatten();
    // The parsed head (`parsed[..parsed_len]`), and how much of `buf` it stands for.
    let (parsed, parsed_len, consumed) = match fast.map_or_else(
        || parse_fields(input, limits, &mut fields),
        |n| Ok(FieldsParse::Complete(n)),
    )? {
        FieldsParse::Complete(n) => (input, n, n),
        FieldsParse::Partial => return partial(buf, limits),
        FieldsParse::Refused(err) => match fields::diagnose(input, line_end, limits, err)? {
            Repair::NeedMore => return partial(buf, limits),
            Repair::Rewritten(copy, n) => {
                rewritten = copy;
                match parse_fields(&rewritten, limits, &mut fields)? {
                    FieldsParse::Complete(len) => (&rewritten[..], len, n),
                    FieldsParse::Partial => return Err(HttpError::bad("Invalid header")),
                    FieldsParse::Refused(err) => return Err(fields::from_httparse(err)),
                }
            }
        },
    };
    check_head_size(consumed, limits)?;
    // The fast path took no bare LF.
    if let Some(at) = fast.is_none().then(|| bare_lf(&buf[..consumed])).flatten() {
        return Err(HttpError::bad(format!(
            "Invalid line ending: bare LF at byte {at}"
        )));
    }
    // The request line has the same place in every copy of the head.
    let method = Span::within(buf, line.method.as_bytes());
    let target = Span::within(buf, line.target.as_bytes());
    let mut raw = std::mem::take(&mut into.raw);
    raw.clear();
    raw.extend_from_slice(&parsed[..parsed_len]);
    if limits.casefold_method {
        raw[method.start as usize..method.end as usize].make_ascii_uppercase();
    }
    *into = Head {
        raw,
        method,
        target,
        minor_version: line.minor_version,
        fields,
        ..Head::empty()
    };
    let head = into;
    let seen = apply_field_rules(head, limits, ValuesChecked::ByHttparse)?;
    // Most requests carry none of these: their look-ups (each a pass over the fields)
    // are skipped, with the answer an absent header gives.
    let (body, must_close) = if seen.framing {
        body_framing(head, limits)?
    } else {
        (BodyFraming::None, false)
    };
    head.body = body;
    head.client_closes = if seen.connection {
        !wants_keep_alive(head)
    } else {
        head.minor_version == 0
    };
    head.keep_alive = !must_close && !head.client_closes;
    head.expect_continue = seen.expect && expects_continue(head)?;
    Ok(Some(consumed))
}

/// Header fields as parsed by httparse: spans of names and values in the parsed bytes.
type Fields = Vec<(Span, Span)>;

enum FieldsParse {
    /// The fields are in the caller's list; the head took this many bytes.
    Complete(usize),
    Partial,
    Refused(httparse::Error),
}

/// httparse over the head; stack slots first, heap slots if the limit allows more.
/// The fields go into `out` (emptied first).
fn parse_fields(input: &[u8], limits: &Limits, out: &mut Fields) -> Result<FieldsParse, HttpError> {
    let wanted = limits.fields.saturating_add(1);
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_SLOTS];
    match parse_with_slots(input, &mut stack[..wanted.min(STACK_SLOTS)], limits, out)? {
        Some(done) => Ok(done),
        None => {
            let mut heap = Vec::new();
            heap.resize_with(wanted, MaybeUninit::uninit);
            parse_with_slots(input, &mut heap, limits, out)?.ok_or_else(|| too_many(limits))
        }
    }
}

/// `Ok(None)`: the slots ran out but the limit allows more.
fn parse_with_slots<'b>(
    input: &'b [u8],
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
    limits: &Limits,
    out: &mut Fields,
) -> Result<Option<FieldsParse>, HttpError> {
    let count = slots.len();
    let mut req = httparse::Request::new(&mut []);
    Ok(Some(match req.parse_with_uninit_headers(input, slots) {
        Ok(httparse::Status::Complete(n)) => {
            check_field_sizes(input, req.headers, n, limits)?;
            out.clear();
            out.extend(req.headers.iter().map(|h| {
                (
                    Span::within(input, h.name.as_bytes()),
                    Span::within(input, h.value),
                )
            }));
            FieldsParse::Complete(n)
        }
        Ok(httparse::Status::Partial) => FieldsParse::Partial,
        Err(httparse::Error::TooManyHeaders) if count == STACK_SLOTS => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::HeadersTooLarge(format!(
                "more than {} header fields",
                count - 1
            )))
        }
        Err(e) => FieldsParse::Refused(e),
    }))
}

/// Gunicorn measures a field as its whole line with CRLF, whitespace included: each
/// line runs from its name to the next line's name (or the head's final CRLF).
fn check_field_sizes(
    input: &[u8],
    headers: &[httparse::Header<'_>],
    consumed: usize,
    limits: &Limits,
) -> Result<(), HttpError> {
    let offset = |name: &str| name.as_ptr() as usize - input.as_ptr() as usize;
    for (i, h) in headers.iter().enumerate() {
        let end = headers
            .get(i + 1)
            .map_or(consumed.saturating_sub(2), |next| offset(next.name));
        if end.saturating_sub(offset(h.name)) > limits.field_size {
            return Err(HttpError::HeadersTooLarge(format!(
                "header {} is too large",
                fields::lossy(h.name.as_bytes())
            )));
        }
    }
    Ok(())
}

fn too_many(limits: &Limits) -> HttpError {
    HttpError::HeadersTooLarge(format!("more than {} header fields", limits.fields))
}

/// An incomplete head: wait for more, unless it already exceeds what the limits allow.
fn partial(buf: &[u8], limits: &Limits) -> Result<Option<usize>, HttpError> {
    check_head_size(buf.len(), limits)?;
    Ok(None)
}

/// The most a head within the limits can take. Checked on incomplete heads (so a
/// client cannot make the buffer grow without end) and on complete ones too, so the
/// verdict never depends on how the bytes were split across reads.
fn check_head_size(len: usize, limits: &Limits) -> Result<(), HttpError> {
    let line = limits.request_line.unwrap_or(line::UNLIMITED_LINE_CAP);
    let max_head = limits
        .fields
        .saturating_add(1)
        .saturating_mul(limits.field_size.saturating_add(2))
        .saturating_add(line + 4);
    if len > max_head {
        return Err(HttpError::HeadersTooLarge("request head too large".into()));
    }
    Ok(())
}

/// The offset of an LF not preceded by CR (httparse tolerates them; RFC 9112 §2.2
/// lets a server refuse them, and a proxy may split lines differently).
fn bare_lf(head: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', head).find(|&at| at == 0 || head[at - 1] != b'\r')
}

/// Which of the headers that decide framing and the connection's fate a head has,
/// found in [`apply_field_rules`]' one pass over the fields.
#[derive(Default)]
struct Seen {
    /// Content-Length or Transfer-Encoding.
    framing: bool,
    connection: bool,
    expect: bool,
}

/// Whether field values still need checking for control bytes and trimming.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ValuesChecked {
    /// httparse has refused control bytes (its value map is RFC 9110's field-value:
    /// tab, 0x20–0x7e, obs-text) and trimmed the blanks around each value.
    ByHttparse,
    /// The values come from elsewhere (an HTTP/2 HEADERS frame).
    No,
}

/// Limits on field count and size, the header map policy, trimmed values,
/// singletons and control bytes.
fn apply_field_rules(
    head: &mut Head,
    limits: &Limits,
    values: ValuesChecked,
) -> Result<Seen, HttpError> {
    if head.fields.len() > limits.fields {
        return Err(too_many(limits));
    }
    let mut seen = [false; SINGLETONS.len()];
    let mut found = Seen::default();
    let mut lengths = 0u64;
    let mut host = HostField::Absent;
    for i in 0..head.fields.len() {
        let (name, value) = head.fields[i];
        let name_text = name.text(&head.raw);
        lengths |= name_length_bit(name_text.len());
        // By length first: one comparison at most per field, most fields none.
        let singleton = match name_text.len() {
            4 => name_text.eq_ignore_ascii_case(SINGLETONS[0]).then_some(0),
            6 => {
                found.expect |= name_text.eq_ignore_ascii_case("expect");
                None
            }
            10 => {
                found.connection |= name_text.eq_ignore_ascii_case("connection");
                None
            }
            12 => name_text.eq_ignore_ascii_case(SINGLETONS[1]).then_some(1),
            14 => {
                found.framing |= name_text.eq_ignore_ascii_case("content-length");
                None
            }
            17 => {
                found.framing |= name_text.eq_ignore_ascii_case("transfer-encoding");
                None
            }
            _ => None,
        };
        let value_bytes = value.of(&head.raw);
        if values == ValuesChecked::No && !fields::is_field_value(value_bytes) {
            return Err(HttpError::bad(format!(
                "Invalid header value in {name_text}: control character"
            )));
        }
        if let Some(s) = singleton {
            if std::mem::replace(&mut seen[s], true) {
                return Err(HttpError::bad(format!(
                    "Invalid header: more than one {name_text}"
                )));
            }
            if s == 0 {
                host = HostField::At(i);
            }
        }
        if limits.header_map == HeaderMap::Refuse
            && name_text.contains('_')
            && !crate::http::forwarded::forwarder_may_set(name_text, true, limits.forwarder_headers)
        {
            return Err(HttpError::bad(format!("Invalid header name '{name_text}'")));
        }
        if values == ValuesChecked::No {
            let trimmed = Span::within(&head.raw, fields::trim_ws(value_bytes));
            head.fields[i].1 = trimmed;
        }
    }
    head.host = host;
    head.name_lengths = lengths;
    // Under `drop`, names with `_` stay in the head: the environ leaves them out unless
    // a trusted peer sends one `--forwarder-headers` names, which only it can tell.
    Ok(found)
}

/// Comma-separated tokens of every instance of a header, trimmed and lowercased.
fn tokens(head: &Head, name: &str) -> Vec<String> {
    head.values(name)
        .flat_map(|v| v.split(|&b| b == b','))
        .map(|t| String::from_utf8_lossy(t).trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// RFC 9112 §6.3 with Gunicorn's reading of it: chunked must come last and once,
/// `identity` is a no-op before it, gzip/deflate/compress pass through to the app (and
/// close the connection afterwards), anything else is 501; chunked excludes
/// Content-Length and HTTP/1.0. Content-Length is one plain decimal number.
/// Returns the framing and whether the connection must close after this request.
fn body_framing(head: &Head, limits: &Limits) -> Result<(BodyFraming, bool), HttpError> {
    let mut lengths = head.values("content-length");
    let (first_length, more_lengths) = (lengths.next(), lengths.next().is_some());
    let (present, chunked, coded) = transfer_codings(head)?;
    if chunked {
        if head.minor_version == 0 {
            return Err(HttpError::bad(
                "Invalid header: chunked Transfer-Encoding on HTTP/1.0",
            ));
        }
        if first_length.is_some() {
            return Err(HttpError::bad(
                "Invalid header: both Content-Length and Transfer-Encoding",
            ));
        }
        return Ok((BodyFraming::Chunked, coded));
    }
    if present {
        // RFC 9112 §6.3: no length can be determined (identity or gzip alone too,
        // whatever Content-Length says).
        return Err(HttpError::bad(
            "Invalid header: Transfer-Encoding does not end in chunked",
        ));
    }
    let framing = match (first_length, more_lengths) {
        (None, _) => BodyFraming::None,
        (Some(one), false) => match content_length(one)? {
            0 => BodyFraming::None,
            n => BodyFraming::Length(n),
        },
        (Some(_), true) => {
            return Err(HttpError::bad(
                "Invalid header: more than one Content-Length",
            ))
        }
    };
    if let (BodyFraming::Length(n), Some(max)) = (framing, limits.body) {
        if n > max {
            return Err(HttpError::PayloadTooLarge(format!(
                "Content-Length {n} is over the limit of {max} bytes"
            )));
        }
    }
    Ok((framing, false))
}

/// (a Transfer-Encoding field is present, chunked is the final coding, another coding
/// than identity precedes it).
fn transfer_codings(head: &Head) -> Result<(bool, bool, bool), HttpError> {
    let (mut present, mut chunked, mut coded) = (false, false, false);
    for value in head.values("transfer-encoding") {
        present = true;
        for coding in value.split(|&b| b == b',') {
            let coding = fields::trim_ws(coding).to_ascii_lowercase();
            match coding.as_slice() {
                _ if chunked => {
                    return Err(HttpError::bad(
                        "Invalid header: Transfer-Encoding continues after chunked",
                    ))
                }
                b"chunked" => chunked = true,
                b"identity" => {}
                b"gzip" | b"deflate" | b"compress" => coded = true,
                _ => {
                    return Err(HttpError::NotImplemented(format!(
                        "Unsupported transfer coding: '{}'",
                        fields::lossy(value)
                    )))
                }
            }
        }
    }
    Ok((present, chunked, coded))
}

fn content_length(value: &[u8]) -> Result<u64, HttpError> {
    let bad = || {
        HttpError::bad(format!(
            "Invalid header: Content-Length '{}'",
            fields::lossy(value)
        ))
    };
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
        .ok_or_else(bad)
}

fn wants_keep_alive(head: &Head) -> bool {
    // Compared in place: this runs for every request, and most say one of these.
    let has = |wanted: &[u8]| {
        head.values("connection")
            .flat_map(|v| v.split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(wanted))
    };
    !has(b"close") && (head.minor_version >= 1 || has(b"keep-alive"))
}

fn expects_continue(head: &Head) -> Result<bool, HttpError> {
    // Nearly every request has no Expect: one look, no token list.
    if head.header("expect").is_none() {
        return Ok(false);
    }
    let expect = tokens(head, "expect");
    match expect.as_slice() {
        [] => Ok(false),
        [one] if one == "100-continue" => Ok(head.minor_version >= 1),
        _ => Err(HttpError::ExpectationFailed(expect.join(", "))),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod strict_tests;

//! A connection's worth of bytes — heads, bodies, pipelined requests — driven the way
//! a connection drives the parser: parse a head, decode its body, repeat. Fed whole
//! and fed in small pieces (re-parsing after every piece, as the server does), the
//! two must see the same requests, and fail or not alike.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustcorn::http::body::{Body, BodyBuffer, Decoder};
use rustcorn::http::request::{parse_head, Head, Limits};

/// (method, target, body) of each complete request, and whether the stream failed.
type Seen = (Vec<(String, String, Vec<u8>)>, bool);

enum State {
    Head,
    Body(Box<Head>, Decoder, BodyBuffer),
}

/// Parses as far as `buf` allows; `Err` on a refused request.
fn advance(
    buf: &mut Vec<u8>,
    state: &mut State,
    limits: &Limits,
    seen: &mut Vec<(String, String, Vec<u8>)>,
) -> Result<(), ()> {
    loop {
        match state {
            State::Head => match parse_head(buf, limits).map_err(|_| ())? {
                None => return Ok(()),
                Some((head, used)) => {
                    assert!(used > 0 && used <= buf.len(), "no progress");
                    buf.drain(..used);
                    let decoder = Decoder::with_limit(head.body, limits.body);
                    *state = State::Body(Box::new(head), decoder, BodyBuffer::default());
                }
            },
            State::Body(_, decoder, out) => {
                let used = decoder.decode(buf, out).map_err(|_| ())?;
                assert!(used <= buf.len());
                buf.drain(..used);
                if !decoder.is_done() {
                    return Ok(());
                }
                let State::Body(head, _, out) = std::mem::replace(state, State::Head) else {
                    unreachable!()
                };
                let Body::Memory(body) = out.finish().expect("in-memory body") else {
                    panic!("fuzz inputs stay under the memory limit");
                };
                seen.push((head.method().to_owned(), head.target().to_owned(), body));
            }
        }
    }
}

fn drive(input: &[u8], step: usize, limits: &Limits) -> Seen {
    let (mut buf, mut state, mut seen) = (Vec::new(), State::Head, Vec::new());
    for piece in input.chunks(step.max(1)) {
        buf.extend_from_slice(piece);
        if advance(&mut buf, &mut state, limits, &mut seen).is_err() {
            return (seen, true);
        }
    }
    (seen, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, input)) = data.split_first() else {
        return;
    };
    let mut limits = Limits::default();
    limits.permit_obsolete_folding = knobs & 1 != 0;
    limits.strip_header_spaces = knobs & 2 != 0;
    limits.permit_unconventional_version = knobs & 4 != 0;
    if knobs & 8 != 0 {
        limits.request_line = Some(48);
        limits.fields = 4;
        limits.field_size = 64;
        limits.body = Some(24);
    }
    let step = usize::from(knobs >> 4) + 1;
    let whole = drive(input, input.len(), &limits);
    let pieces = drive(input, step, &limits);
    assert_eq!(whole, pieces, "fed whole and in pieces of {step}");
});

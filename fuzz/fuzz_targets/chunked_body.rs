//! The chunked decoder on arbitrary bytes, fed whole and in pieces: both ways must
//! agree on the body, the bytes left for the next request, and success or failure.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustcorn::http::body::{Body, BodyBuffer, Decoder};
use rustcorn::http::request::BodyFraming;

/// (body, bytes not consumed, finished) or the status of the error.
fn run(input: &[u8], step: usize, limit: Option<u64>) -> Result<(Vec<u8>, usize, bool), u16> {
    let mut decoder = Decoder::with_limit(BodyFraming::Chunked, limit);
    let mut out = BodyBuffer::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut fed = 0;
    while !decoder.is_done() && fed < input.len() {
        let end = (fed + step).min(input.len());
        pending.extend_from_slice(&input[fed..end]);
        fed = end;
        let used = decoder
            .decode(&pending, &mut out)
            .map_err(|e| e.status().0)?;
        assert!(used <= pending.len());
        pending.drain(..used);
    }
    let done = decoder.is_done();
    let body = match out.finish().expect("in-memory body") {
        Body::Memory(v) => v,
        Body::File(..) => panic!("fuzz inputs stay under the memory limit"),
    };
    Ok((body, pending.len() + input.len() - fed, done))
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, input)) = data.split_first() else {
        return;
    };
    let step = usize::from(knobs & 0x0f) + 1;
    let limit = (knobs & 0x80 != 0).then_some(u64::from(knobs & 0x70));
    let whole = run(input, input.len().max(1), limit);
    let split = run(input, step, limit);
    match (&whole, &split) {
        (Ok((b1, l1, true)), Ok((b2, l2, true))) => assert_eq!((b1, l1), (b2, l2)),
        // Unfinished: whatever was decoded so far must be a prefix of the same body.
        (Ok((b1, _, d1)), Ok((b2, _, d2))) => {
            assert_eq!(d1, d2, "finished one way but not the other");
            let n = b1.len().min(b2.len());
            assert_eq!(b1[..n], b2[..n]);
        }
        // An error may show up one way only when the other stopped short of it.
        (Err(_), Ok((_, _, done))) | (Ok((_, _, done)), Err(_)) => assert!(!done),
        (Err(_), Err(_)) => {}
    }
});

//! The Content-Length decoder: it takes exactly the declared bytes, however they are
//! split, and leaves the rest for the next request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustcorn::http::body::{Body, BodyBuffer, Decoder};
use rustcorn::http::request::BodyFraming;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let declared = u64::from(u16::from_le_bytes([data[0], data[1]]));
    let step = usize::from(data[2] & 0x3f) + 1;
    let input = &data[3..];
    let mut decoder = Decoder::new(BodyFraming::Length(declared.max(1)));
    let mut out = BodyBuffer::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut fed = 0;
    while !decoder.is_done() && fed < input.len() {
        let end = (fed + step).min(input.len());
        pending.extend_from_slice(&input[fed..end]);
        fed = end;
        let used = decoder
            .decode(&pending, &mut out)
            .expect("length bodies never fail");
        pending.drain(..used);
    }
    let want = declared.max(1).min(input.len() as u64) as usize;
    assert_eq!(decoder.is_done(), input.len() as u64 >= declared.max(1));
    assert_eq!(out.len(), want as u64);
    assert_eq!(pending.len() + input.len() - fed, input.len() - want);
    let Body::Memory(body) = out.finish().expect("in-memory body") else {
        panic!("fuzz inputs stay under the memory limit");
    };
    assert_eq!(body, &input[..want]);
});

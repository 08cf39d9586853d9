//! The request-head parser on arbitrary bytes, under several flag combinations.
//! Beyond "no panic, no hang": a head that parses to `n` bytes parses the same from
//! exactly those `n` bytes (the boundary with a pipelined request never moves), and
//! the fields the server relies on are non-empty.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustcorn::http::request::{parse_head, HeaderMap, Limits};

/// The first input byte picks the switches; the rest is the request.
fn limits(flags: u8) -> Limits {
    let mut l = Limits::default();
    l.permit_obsolete_folding = flags & 1 != 0;
    l.strip_header_spaces = flags & 2 != 0;
    l.permit_unconventional_method = flags & 4 != 0;
    l.permit_unconventional_version = flags & 8 != 0;
    l.casefold_method = flags & 16 != 0;
    l.header_map = match (flags >> 5) & 3 {
        0 => HeaderMap::Drop,
        1 => HeaderMap::Refuse,
        _ => HeaderMap::Dangerous,
    };
    if flags & 128 != 0 {
        // Small limits reach the 414/431 paths with short inputs.
        l.request_line = Some(64);
        l.fields = 4;
        l.field_size = 64;
        l.body = Some(16);
    }
    l
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, raw)) = data.split_first() else {
        return;
    };
    let limits = limits(flags);
    let first = parse_head(raw, &limits);
    if let Ok(Some((head, used))) = &first {
        assert!(*used <= raw.len());
        assert!(!head.method().is_empty() && !head.target().is_empty());
        assert!(head.fields().count() <= limits.fields);
        match parse_head(&raw[..*used], &limits) {
            Ok(Some((again, n))) => {
                assert_eq!(n, *used);
                assert!(again.fields().eq(head.fields()));
                assert_eq!(again.body, head.body);
            }
            other => panic!("the head's own bytes parse differently: {other:?}"),
        }
    }
});
